// The user-agent (implicit) flow and response_mode=form_post (issue 7) against the real worker,
// with a page on another loopback origin (the "SPA") driven in headless Chromium: the page
// redirects to /services/oauth2/authorize with response_type=token id_token, Chromium fills the
// worker's login and consent pages, and the page's /cb reads the tokens from its fragment. The
// ID token is validated with `jose` against the worker's JWKS. Custom-scheme redirects (refresh
// tokens) are driven with the scripted flow helper, reading the 302/303 Location.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, CookieJar, tokenRequest } from './flow.mjs';
import {
  baseOf, cspHash, fragmentOf, guardResponses, halfHash, inlineScripts, launchChromium, parseForms,
  queryOf, raw, startSpaServer, userinfo,
} from './ua-helpers.mjs';

const SCOPE = 'openid api refresh_token profile';
const USER = { username: 'ua.user@example.com', password: 'correct-horse-ua-7', email: 'ua.user@example.com', name: 'Ua User' };
const CUSTOM = 'myapp://cb';

const rand = (p) => `${p}-${randomBytes(6).toString('hex')}`;
const sameSet = (a, b) => assert.deepEqual(new Set(a.split(' ')), new Set(b.split(' ')));

describe('user-agent flow and form_post against the real worker', () => {
  let w;
  let spa;
  let app;
  let user;
  let orgId;
  let browser;
  let context; // logged in by the first test; later browser tests reuse the session
  let jwks;
  const jar = new CookieJar(); // the scripted flows' login session
  const consoleCsp = [];
  const guard = guardResponses(() => w?.baseUrl);

  before(async () => {
    w = await startTestWorker();
    spa = await startSpaServer(w.baseUrl);
    const a = await w.admin('POST', '/admin/apps', {
      name: 'UA SPA',
      callback_urls: [spa.cbUrl, CUSTOM],
      scopes: ['openid', 'api', 'refresh_token', 'profile', 'email'],
    });
    assert.equal(a.status, 201, a.text);
    app = a.json;
    const u = await w.admin('POST', '/admin/users', USER);
    assert.equal(u.status, 201, u.text);
    user = u.json;
    orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
    assert.match(orgId, /^00D\w{15}$/);
    jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
    browser = await launchChromium();
    context = await browser.newContext();
    guard.watchContext(context);
  });

  after(async () => {
    guard.restore();
    await browser?.close();
    await spa?.close();
    if (w) {
      const out = w.output();
      await w.stop();
      assert.doesNotMatch(out, /panicked/, 'the worker must not panic');
    }
    assert.deepEqual(guard.bad, [], 'no 5xx from the worker');
  });

  async function newPage() {
    const page = await context.newPage();
    const documents = [];
    page.on('response', (r) => {
      if (r.request().resourceType() === 'document') documents.push({ url: r.url(), status: r.status(), method: r.request().method() });
    });
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) consoleCsp.push(m.text()); });
    return { page, documents };
  }

  /** Reads what the SPA's /cb page parsed out of its fragment. */
  async function cbResult(page) {
    await page.waitForURL((u) => u.href.startsWith(spa.cbUrl), { timeout: 20000 });
    await page.waitForFunction(() => window.result !== undefined);
    return page.evaluate(() => ({ result: window.result, rawHash: window.rawHash, query: window.query }));
  }

  /** The scripted flow (no browser): returns the helper's result. */
  function scripted(params) {
    return authorize(w.baseUrl, { client_id: app.client_id, ...params }, { username: USER.username, password: USER.password, jar });
  }

  async function verifyIdToken(idToken) {
    const { payload, protectedHeader } = await jwtVerify(idToken, jwks, { issuer: w.baseUrl, audience: app.client_id });
    assert.ok(['RS256', 'ES256'].includes(protectedHeader.alg), protectedHeader.alg);
    return payload;
  }

  test('Chromium: a page on another origin completes token id_token and reads its fragment; jose validates the ID token', async () => {
    const state = rand('st');
    const nonce = rand('n');
    const t0 = Date.now();
    const { page, documents } = await newPage();
    const start = `${spa.origin}/start?${new URLSearchParams({ response_type: 'token id_token', client_id: app.client_id, scope: SCOPE, state, nonce })}`;
    await page.goto(start);
    // The SPA page redirected to the worker's login page.
    await page.locator('input[name="username"]').waitFor();
    assert.ok(page.url().startsWith(`${w.baseUrl}/services/oauth2/authorize`), page.url());
    await page.locator('input[name="username"]').fill(USER.username);
    await page.locator('input[name="password"]').fill(USER.password);
    await page.locator('button[name="login"]').click();
    await page.locator('button[name="approve"]').waitFor();
    await page.locator('button[name="approve"]').click();
    const { result, rawHash, query } = await cbResult(page);
    await page.close();

    const f = result.fields;
    for (const [k, vs] of Object.entries(result.all)) assert.equal(vs.length, 1, `${k} appears once in the fragment`);
    assert.ok(rawHash.length > 1, 'the tokens came in the fragment');
    assert.deepEqual(query, {}, 'nothing in the query of the callback');
    // The SPA's server never saw the tokens (fragments are not sent).
    const hit = spa.gets.at(-1);
    assert.equal(hit.search, '');
    assert.deepEqual(documents.map((d) => new URL(d.url).origin).at(0), spa.origin);

    assert.match(f.access_token ?? '', new RegExp(`^${orgId}!`), 'access_token');
    assert.equal(f.token_type, 'Bearer');
    assert.match(f.issued_at ?? '', /^\d+$/, 'issued_at in ms');
    assert.ok(Number(f.issued_at) >= t0 - 60000 && Number(f.issued_at) <= Date.now() + 60000, `issued_at ${f.issued_at} is now, in ms`);
    const identityUrl = `${w.baseUrl}/id/${orgId}/${user.user_id}`;
    assert.equal(f.id, identityUrl);
    assert.equal(f.instance_url, w.baseUrl);
    sameSet(f.scope, SCOPE);
    assert.equal(f.state, state);
    assert.equal(f.iss, w.baseUrl);
    assert.match(f.expires_in ?? '', /^\d+$/);
    assert.ok(Number(f.expires_in) > 0 && Number(f.expires_in) <= 7200, f.expires_in);
    assert.equal(f.refresh_token, undefined, 'no refresh token for an http(s) redirect URI, even with refresh_token granted');
    assert.equal(f.code, undefined);

    // The ID token, validated by jose: signature via the JWKS, iss, aud, then nonce and at_hash.
    assert.ok(f.id_token, 'id_token in the fragment');
    const claims = await verifyIdToken(f.id_token);
    assert.equal(claims.iss, w.baseUrl);
    assert.ok(claims.aud === app.client_id || (Array.isArray(claims.aud) && claims.aud.includes(app.client_id)));
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.at_hash, halfHash(f.access_token));
    assert.equal(claims.sub, identityUrl);
    assert.ok(claims.exp > Math.floor(Date.now() / 1000));
    // jose really checks the signature: a tampered payload is refused.
    const [h, p, s] = f.id_token.split('.');
    const forged = JSON.parse(Buffer.from(p, 'base64url').toString());
    forged.nonce = 'other';
    await assert.rejects(jwtVerify(`${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`, jwks));

    // The access token works at userinfo.
    const info = await userinfo(w.baseUrl, f.access_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.user_id, user.user_id);
    assert.equal(info.json.preferred_username, USER.username);
    assert.equal(info.json.sub, identityUrl);
  });

  test('Chromium: with the live session, token + prompt=none redirects straight back (no login, no consent)', async () => {
    const state = rand('st');
    const { page, documents } = await newPage();
    await page.goto(`${spa.origin}/start?${new URLSearchParams({ response_type: 'token', client_id: app.client_id, scope: 'api', state, prompt: 'none' })}`);
    const { result } = await cbResult(page);
    await page.close();
    assert.deepEqual(
      documents.map((d) => [new URL(d.url).origin === w.baseUrl ? 'worker' : 'spa', new URL(d.url).pathname, d.status]),
      [['spa', '/start', 200], ['worker', '/services/oauth2/authorize', 302], ['spa', '/cb', 200]],
    );
    const f = result.fields;
    assert.equal(f.state, state);
    assert.equal(f.scope, 'api');
    assert.equal(f.token_type, 'Bearer');
    assert.equal(f.id_token, undefined, 'no openid, no ID token');
    assert.equal(f.refresh_token, undefined);
    assert.equal((await userinfo(w.baseUrl, f.access_token)).status, 200);
  });

  test('scripted: "id_token token" (other order) works; token id_token without nonce → invalid_request in the fragment', async () => {
    const state = rand('st');
    const nonce = rand('n');
    const a = await scripted({ response_type: 'id_token token', redirect_uri: spa.cbUrl, scope: 'openid api', state, nonce });
    assert.ok(a.location, a.body);
    assert.equal(baseOf(a.location), spa.cbUrl);
    assert.equal(queryOf(a.location).toString(), '', 'nothing in the query');
    const f = fragmentOf(a.location);
    assert.ok(f.get('access_token'));
    assert.equal(f.get('state'), state);
    const claims = await verifyIdToken(f.get('id_token'));
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.at_hash, halfHash(f.get('access_token')));

    const state2 = rand('st');
    const b = await scripted({ response_type: 'token id_token', redirect_uri: spa.cbUrl, scope: 'openid api', state: state2 });
    assert.ok(b.location, b.body);
    assert.equal(baseOf(b.location), spa.cbUrl);
    const e = fragmentOf(b.location);
    assert.equal(e.get('error'), 'invalid_request', b.location);
    assert.equal(e.get('state'), state2);
    assert.equal(e.get('access_token'), null);
    assert.equal(queryOf(b.location).get('error'), null, 'the error is in the fragment, not the query');
  });

  test('scripted: token with a custom-scheme redirect and refresh_token → refresh token in the fragment, and it refreshes', async () => {
    const state = rand('st');
    const a = await scripted({ response_type: 'token', redirect_uri: CUSTOM, scope: 'api refresh_token', state });
    assert.ok(a.status === 302 || a.status === 303, `${a.status} ${a.body ?? ''}`);
    assert.ok(a.location.startsWith(`${CUSTOM}#`), a.location);
    const f = fragmentOf(a.location);
    assert.ok(f.get('access_token'));
    assert.ok(f.get('refresh_token'), 'a refresh token for a custom-scheme redirect with refresh_token granted');
    assert.equal(f.get('state'), state);
    assert.equal(f.get('token_type'), 'Bearer');
    sameSet(f.get('scope'), 'api refresh_token');
    assert.equal(f.get('iss'), w.baseUrl);

    const r = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: f.get('refresh_token'), client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.access_token);
    assert.notEqual(r.json.access_token, f.get('access_token'));
    const info = await userinfo(w.baseUrl, r.json.access_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.user_id, user.user_id);
  });

  test('scripted: token with an http redirect and refresh_token scope → no refresh token', async () => {
    const state = rand('st');
    const a = await scripted({ response_type: 'token', redirect_uri: spa.cbUrl, scope: 'api refresh_token', state });
    assert.ok(a.location, a.body);
    assert.equal(baseOf(a.location), spa.cbUrl);
    const f = fragmentOf(a.location);
    assert.ok(f.get('access_token'));
    assert.equal(f.get('state'), state);
    assert.equal(f.get('refresh_token'), null);
    assert.equal((await userinfo(w.baseUrl, f.get('access_token'))).status, 200);
  });

  test('scripted: response_mode=fragment for code puts the code in the fragment; it redeems', async () => {
    const state = rand('st');
    const a = await scripted({ response_type: 'code', response_mode: 'fragment', redirect_uri: spa.cbUrl, scope: 'api', state });
    assert.ok(a.location, a.body);
    assert.equal(queryOf(a.location).get('code'), null);
    const f = fragmentOf(a.location);
    assert.ok(f.get('code'), a.location);
    assert.equal(f.get('state'), state);
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: f.get('code'), redirect_uri: spa.cbUrl, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(t.status, 200, t.text);
  });

  test('scripted: code id_token (OIDC hybrid) puts a code and an ID token bound to it by c_hash in the fragment; jose verifies it; the code redeems', async () => {
    const state = rand('st');
    const nonce = rand('n');
    const a = await scripted({ response_type: 'code id_token', redirect_uri: spa.cbUrl, scope: 'openid api', state, nonce });
    assert.ok(a.location, a.body);
    assert.equal(queryOf(a.location).get('code'), null, 'nothing in the query');
    const f = fragmentOf(a.location);
    assert.equal(f.get('access_token'), null, 'no access token from the authorization endpoint');
    assert.equal(f.get('state'), state);
    const code = f.get('code');
    assert.ok(code && f.get('id_token'), a.location);
    const jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
    const { payload } = await jwtVerify(f.get('id_token'), jwks, { issuer: w.baseUrl, audience: app.client_id, typ: 'JWT' });
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.c_hash, halfHash(code), 'OIDC Core §3.3.2.11 c_hash');
    assert.equal(payload.at_hash, undefined);
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: spa.cbUrl, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(t.status, 200, t.text);
    const { payload: fromToken } = await jwtVerify(t.json.id_token, jwks, { issuer: w.baseUrl, audience: app.client_id });
    assert.equal(fromToken.nonce, nonce);
    assert.equal(fromToken.at_hash, halfHash(t.json.access_token));
    const d = await (await fetch(`${w.baseUrl}/.well-known/openid-configuration`)).json();
    assert.ok(d.response_types_supported.includes('code id_token'), d.response_types_supported);
  });

  test('form_post page (raw): 200 HTML, a POST form to redirect_uri with code and state, script allowed by CSP hash', async () => {
    // The scripted session has approved `api` by now, so the authorize GET answers at once.
    const state = rand('fp');
    const params = { response_type: 'code', response_mode: 'form_post', client_id: app.client_id, redirect_uri: spa.cbUrl, scope: 'api', state };
    const r = await raw(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams(params)}`, { headers: { cookie: jar.header() } });
    assert.equal(r.status, 200, r.text.slice(0, 500));
    assert.equal(r.location, null);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    const forms = parseForms(r.text);
    assert.equal(forms.length, 1, r.text);
    assert.equal(forms[0].method, 'post');
    assert.equal(forms[0].action, spa.cbUrl);
    assert.ok(forms[0].fields.code, JSON.stringify(forms[0].fields));
    assert.equal(forms[0].fields.state, state);
    assert.equal(forms[0].fields.access_token, undefined);
    const csp = r.headers.get('content-security-policy') ?? '';
    const scripts = inlineScripts(r.text);
    assert.ok(scripts.length >= 1, 'a script submits the form');
    for (const s of scripts) assert.ok(csp.includes(cspHash(s)), `CSP ${csp} allows the script by its hash ${cspHash(s)}`);
    const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? '';
    assert.ok(scriptSrc, `a script-src directive: ${csp}`);
    assert.doesNotMatch(scriptSrc, /'unsafe-inline'|'unsafe-eval'|\*/, 'only the hashed script may run');
    assert.match(csp, new RegExp(`form-action [^;]*${spa.origin.replace(/[.:/]/g, '\\$&')}`), 'the form may post to the redirect URI');
    // The code in the page is a real one.
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: forms[0].fields.code, redirect_uri: spa.cbUrl, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(t.status, 200, t.text);
  });

  test('Chromium: response_mode=form_post for code auto-submits to the SPA origin (code + state), under the page CSP', async () => {
    const state = rand('fp');
    const before = consoleCsp.length;
    const { page, documents } = await newPage();
    const posted = spa.nextPost();
    await page.goto(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', response_mode: 'form_post', client_id: app.client_id, redirect_uri: spa.cbUrl, scope: 'api', state })}`);
    const p = await posted;
    await page.waitForURL(spa.cbUrl);
    assert.equal(await page.title(), 'posted');
    await page.close();
    assert.deepEqual(
      documents.map((d) => [d.method, new URL(d.url).origin === w.baseUrl ? 'worker' : 'spa', new URL(d.url).pathname, d.status]),
      [['GET', 'worker', '/services/oauth2/authorize', 200], ['POST', 'spa', '/cb', 200]],
    );
    assert.match(p.contentType, /application\/x-www-form-urlencoded/);
    assert.equal(p.url.search, '', 'fields in the body, not the URL');
    assert.ok(p.fields.code, p.raw);
    assert.equal(p.fields.state, state);
    assert.equal(p.fields.access_token, undefined);
    assert.deepEqual(consoleCsp.slice(before), [], 'no CSP violation');
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: p.fields.code, redirect_uri: spa.cbUrl, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(t.status, 200, t.text);
    assert.equal((await userinfo(w.baseUrl, t.json.access_token)).json.user_id, user.user_id);
  });

  test('Chromium: response_mode=form_post for token auto-submits access_token + state; the token works', async () => {
    const state = rand('fp');
    const before = consoleCsp.length;
    const { page } = await newPage();
    const posted = spa.nextPost();
    await page.goto(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({ response_type: 'token', response_mode: 'form_post', client_id: app.client_id, redirect_uri: spa.cbUrl, scope: 'api refresh_token', state })}`);
    const p = await posted;
    await page.waitForURL(spa.cbUrl);
    await page.close();
    assert.ok(p.fields.access_token, p.raw);
    assert.equal(p.fields.token_type, 'Bearer');
    assert.equal(p.fields.state, state);
    assert.equal(p.fields.refresh_token, undefined, 'http redirect: no refresh token');
    assert.equal(p.fields.code, undefined);
    assert.deepEqual(consoleCsp.slice(before), [], 'no CSP violation');
    const info = await userinfo(w.baseUrl, p.fields.access_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.user_id, user.user_id);
  });
});
