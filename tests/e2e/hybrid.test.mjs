// Hybrid app flows (issue 7) against the real worker: hybrid_token (scripted, custom-scheme
// redirect so a refresh token comes back), the session fields, /secur/frontdoor.jsp turning the
// `sid` into a browser session in a fresh headless Chromium context ("the session works":
// prompt=none authorize returns a code), revocation ending that session, hybrid_refresh issuing a
// new sid and ending the old one, grant_type=hybrid_auth_code, and frontdoor refusing absolute
// and protocol-relative retURLs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, CookieJar, pkcePair, tokenRequest } from './flow.mjs';
import {
  fragmentOf, guardResponses, halfHash, launchChromium, raw, revoke, SESSION_COOKIE, sessionCookiesSet, startSpaServer, userinfo,
} from './ua-helpers.mjs';

const SCOPES = ['api', 'refresh_token', 'web', 'lightning', 'visualforce', 'content', 'openid'];
const SCOPE = SCOPES.join(' ');
const USER = { username: 'hybrid.user@example.com', password: 'correct-horse-hy-7', email: 'hybrid.user@example.com', name: 'Hybrid User' };
const CUSTOM = 'myapp://cb';

const rand = (p) => `${p}-${randomBytes(6).toString('hex')}`;

describe('hybrid app flows and frontdoor.jsp against the real worker', () => {
  let w;
  let spa;
  let app;
  let user;
  let host;
  let browser;
  let jwks;
  const jar = new CookieJar(); // the scripted login session (the hybrid app's own login)
  const guard = guardResponses(() => w?.baseUrl);
  let first; // the first hybrid_token response (fragment fields)

  before(async () => {
    w = await startTestWorker();
    host = new URL(w.baseUrl).host;
    spa = await startSpaServer(w.baseUrl);
    const a = await w.admin('POST', '/admin/apps', { name: 'Hybrid App', callback_urls: [CUSTOM, spa.cbUrl], scopes: SCOPES });
    assert.equal(a.status, 201, a.text);
    app = a.json;
    const u = await w.admin('POST', '/admin/users', USER);
    assert.equal(u.status, 201, u.text);
    user = u.json;
    jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
    browser = await launchChromium();
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

  const creds = () => ({ client_id: app.client_id, client_secret: app.client_secret });

  /** hybrid_token through the scripted flow with the custom-scheme redirect; the fragment's fields. */
  async function hybridToken(extra = {}) {
    const state = rand('hy');
    const nonce = rand('n');
    const a = await authorize(
      w.baseUrl,
      { response_type: 'hybrid_token', client_id: app.client_id, redirect_uri: CUSTOM, scope: SCOPE, state, nonce, ...extra },
      { username: USER.username, password: USER.password, jar },
    );
    assert.ok(a.location, `no redirect: ${a.status} ${a.body?.slice(0, 300)}`);
    assert.ok(a.location.startsWith(`${CUSTOM}#`), a.location);
    const f = Object.fromEntries(fragmentOf(a.location));
    assert.equal(f.error, undefined, a.location);
    assert.equal(f.state, state);
    return { f, nonce };
  }

  /** The session fields every hybrid response carries, with this app's scopes. */
  function assertSessionFields(r, what) {
    assert.ok(r.access_token, `${what}: access_token`);
    assert.equal(typeof r.sid, 'string', `${what}: sid`);
    assert.ok(r.sid.length >= 16, `${what}: sid is a long random value: ${r.sid}`);
    assert.notEqual(r.sid, r.access_token, `${what}: sid is not the access token`);
    if (r.refresh_token) assert.notEqual(r.sid, r.refresh_token, `${what}: sid is not the refresh token`);
    assert.equal(r.sidCookieName, 'sid', what);
    assert.ok(r['cookie-sid_Client'], `${what}: cookie-sid_Client`);
    assert.ok(r['cookie-clientSrc'], `${what}: cookie-clientSrc`);
    assert.equal(r.parent_sid, r.sid, `${what}: parent_sid = sid`);
    assert.ok(r.csrf_token, `${what}: csrf_token`);
    for (const kind of ['lightning', 'visualforce', 'content']) {
      assert.equal(r[`${kind}_domain`], host, `${what}: ${kind}_domain is the issuer's host`);
      assert.ok(r[`${kind}_sid`], `${what}: ${kind}_sid`);
      assert.notEqual(r[`${kind}_sid`], r.access_token, `${what}: ${kind}_sid is not the access token`);
    }
  }

  /** GET frontdoor.jsp without following the redirect. */
  function frontdoor(params) {
    return raw(`${w.baseUrl}/secur/frontdoor.jsp?${new URLSearchParams(params)}`);
  }

  function assertRefused(r, what) {
    assert.ok(r.status === 400 || r.status === 401, `${what}: 400/401, got ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(r.location, null, `${what}: no redirect`);
    assert.deepEqual(sessionCookiesSet(r.setCookies), [], `${what}: no session cookie`);
  }

  /** The authorize URL (path + query) for a silent code request to the SPA callback. */
  function silentAuthorizePath(state) {
    return `/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: spa.cbUrl, scope: 'api', state, prompt: 'none' })}`;
  }

  /** A fresh Chromium context (no cookies) that watches the worker's responses. */
  async function freshContext() {
    const ctx = await browser.newContext();
    guard.watchContext(ctx);
    assert.deepEqual(await ctx.cookies(w.baseUrl), []);
    return ctx;
  }

  /** Opens `url` in `ctx` and returns the SPA /cb request the browser ended at. */
  async function landAtCallback(ctx, url) {
    const page = await ctx.newPage();
    const arrived = spa.nextGet();
    await page.goto(url);
    const cb = await arrived;
    await page.waitForURL((u) => u.href.startsWith(spa.cbUrl));
    const landed = new URL(page.url());
    await page.close();
    assert.equal(landed.search, cb.search, 'the browser is where the SPA server was hit');
    return cb.searchParams;
  }

  /** Bridges `sid` into `ctx` through frontdoor.jsp with retURL = a silent authorize; the /cb query. */
  function bridgeAndAuthorize(ctx, sid, state) {
    return landAtCallback(ctx, `${w.baseUrl}/secur/frontdoor.jsp?sid=${encodeURIComponent(sid)}&retURL=${encodeURIComponent(silentAuthorizePath(state))}`);
  }

  async function redeem(code) {
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: spa.cbUrl, ...creds() });
    assert.equal(t.status, 200, t.text);
    return t.json;
  }

  test('hybrid_token: tokens, a refresh token (custom scheme) and the session fields in the fragment', async () => {
    const { f, nonce } = await hybridToken();
    first = f;
    assert.equal(f.token_type, 'Bearer');
    assert.equal(f.instance_url, w.baseUrl);
    assert.equal(f.iss, w.baseUrl);
    assert.ok(f.refresh_token, 'custom-scheme redirect with refresh_token granted: a refresh token');
    assert.deepEqual(new Set(f.scope.split(' ')), new Set(SCOPES));
    assertSessionFields(f, 'hybrid_token');
    // openid granted: an ID token with the nonce and at_hash.
    const { payload } = await jwtVerify(f.id_token, jwks, { issuer: w.baseUrl, audience: app.client_id });
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.at_hash, halfHash(f.access_token));
    const info = await userinfo(w.baseUrl, f.access_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.user_id, user.user_id);
    // Two hybrid_token runs give two different sessions.
    const again = await hybridToken();
    assert.notEqual(again.f.sid, f.sid);
    assert.notEqual(again.f.access_token, f.access_token);
  });

  test('frontdoor.jsp (raw): a valid sid → 302 to the relative retURL with the session cookie; no retURL → /', async () => {
    const r = await frontdoor({ sid: first.sid, retURL: '/services/oauth2/userinfo?x=1' });
    assert.equal(r.status, 302, r.text.slice(0, 200));
    const to = new URL(r.location, w.baseUrl);
    assert.equal(to.origin, w.baseUrl);
    assert.equal(to.pathname + to.search, '/services/oauth2/userinfo?x=1');
    const set = sessionCookiesSet(r.setCookies);
    assert.equal(set.length, 1, `the session cookie is set: ${r.setCookies}`);
    assert.match(set[0], /HttpOnly/i);
    assert.match(set[0], /Path=\//i);
    const bare = await frontdoor({ sid: first.sid });
    assert.equal(bare.status, 302);
    assert.equal(new URL(bare.location, w.baseUrl).href, `${w.baseUrl}/`);
    assert.equal(sessionCookiesSet(bare.setCookies).length, 1);
    // An unknown sid: refused, no cookie.
    assertRefused(await frontdoor({ sid: 'nonsense', retURL: '/' }), 'unknown sid');
    assertRefused(await frontdoor({ retURL: '/' }), 'no sid');
  });

  test('Chromium: frontdoor bridges the sid into a fresh context; prompt=none returns a code; after revoking the refresh token, login_required', async () => {
    const ctx = await freshContext();
    try {
      const state = rand('pn');
      const q = await bridgeAndAuthorize(ctx, first.sid, state);
      assert.equal(q.get('error'), null, `prompt=none after frontdoor: ${q}`);
      assert.ok(q.get('code'), `a code: ${q}`);
      assert.equal(q.get('state'), state);
      assert.ok((await ctx.cookies(w.baseUrl)).some((c) => c.name === SESSION_COOKIE), 'frontdoor set the session cookie');
      // The session is the user's: the code gives that user's tokens.
      const t = await redeem(q.get('code'));
      assert.equal((await userinfo(w.baseUrl, t.access_token)).json.user_id, user.user_id);

      // Once more without frontdoor: the browser session alone is enough.
      const state2 = rand('pn');
      const q2 = await landAtCallback(ctx, w.baseUrl + silentAuthorizePath(state2));
      assert.ok(q2.get('code'), `${q2}`);
      assert.equal(q2.get('state'), state2);

      // Revoke the hybrid family's refresh token.
      const rv = await revoke(w.baseUrl, first.refresh_token);
      assert.equal(rv.status, 200, rv.text);
      const state3 = rand('pn');
      const q3 = await landAtCallback(ctx, w.baseUrl + silentAuthorizePath(state3));
      assert.equal(q3.get('error'), 'login_required', `${q3}`);
      assert.equal(q3.get('code'), null);
      assert.equal(q3.get('state'), state3);
      // The sid is ended too, and the family's access token.
      assertRefused(await frontdoor({ sid: first.sid, retURL: '/' }), 'sid of a revoked family');
      assert.equal((await userinfo(w.baseUrl, first.access_token)).status, 401);
      // A new context bridged with that sid gets nowhere either.
      const other = await freshContext();
      try {
        const page = await other.newPage();
        const resp = await page.goto(`${w.baseUrl}/secur/frontdoor.jsp?sid=${encodeURIComponent(first.sid)}&retURL=${encodeURIComponent(silentAuthorizePath(rand('pn')))}`);
        assert.ok(resp.status() === 400 || resp.status() === 401, `frontdoor with an ended sid: ${resp.status()}`);
        assert.ok(page.url().startsWith(`${w.baseUrl}/secur/frontdoor.jsp`), page.url());
        assert.ok(!(await other.cookies(w.baseUrl)).some((c) => c.name === SESSION_COOKIE));
        await page.close();
      } finally {
        await other.close();
      }
    } finally {
      await ctx.close();
    }
  });

  test('hybrid_refresh: new access token and a NEW sid; the old sid stops working at frontdoor and in a bridged browser', async () => {
    const { f } = await hybridToken();
    assertSessionFields(f, 'hybrid_token');
    // Bridge a browser with the first sid and show it works.
    const ctxOld = await freshContext();
    const ctxNew = await freshContext();
    try {
      const q = await bridgeAndAuthorize(ctxOld, f.sid, rand('pn'));
      assert.ok(q.get('code'), `${q}`);
      // The sid still bridges (it is not single-use), so a refusal below means it ended.
      const ok = await frontdoor({ sid: f.sid, retURL: '/' });
      assert.equal(ok.status, 302);

      const r = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_refresh', refresh_token: f.refresh_token, ...creds() });
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get('cache-control') ?? '', /no-store/);
      const n = r.json;
      assertSessionFields(n, 'hybrid_refresh');
      assert.notEqual(n.access_token, f.access_token);
      assert.notEqual(n.sid, f.sid, 'a new sid');
      assert.equal(n.token_type, 'Bearer');
      assert.equal(n.instance_url, w.baseUrl);
      assert.equal((await userinfo(w.baseUrl, n.access_token)).status, 200);

      // The old sid: refused at frontdoor, and the browser bridged with it is logged out.
      assertRefused(await frontdoor({ sid: f.sid, retURL: '/' }), 'old sid after hybrid_refresh');
      const stateOld = rand('pn');
      const qOld = await landAtCallback(ctxOld, w.baseUrl + silentAuthorizePath(stateOld));
      assert.equal(qOld.get('error'), 'login_required', `${qOld}`);
      assert.equal(qOld.get('state'), stateOld);

      // The new sid bridges a fresh browser.
      const stateNew = rand('pn');
      const qNew = await bridgeAndAuthorize(ctxNew, n.sid, stateNew);
      assert.ok(qNew.get('code'), `${qNew}`);
      assert.equal(qNew.get('state'), stateNew);

      // A second hybrid_refresh with the same refresh token rotates the sid again.
      const r2 = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_refresh', refresh_token: n.refresh_token ?? f.refresh_token, ...creds() });
      assert.equal(r2.status, 200, r2.text);
      assertSessionFields(r2.json, 'second hybrid_refresh');
      assert.notEqual(r2.json.sid, n.sid);
      assert.notEqual(r2.json.sid, f.sid);

      // hybrid_refresh with a wrong secret or a junk token is an OAuth error, not a session.
      const bad = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_refresh', refresh_token: 'junk', ...creds() });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.json.error, 'invalid_grant');
      assert.equal(bad.json.sid, undefined);
      const badSecret = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_refresh', refresh_token: f.refresh_token, client_id: app.client_id, client_secret: 'wrong' });
      assert.equal(badSecret.status, 401, badSecret.text);
      assert.equal(badSecret.json.error, 'invalid_client');
    } finally {
      await ctxOld.close();
      await ctxNew.close();
    }
  });

  test('hybrid_auth_code: a code-flow code (response_type code or hybrid_auth_code) redeemed with grant_type=hybrid_auth_code → tokens and session fields', async () => {
    for (const responseType of ['code', 'hybrid_auth_code']) {
      const { verifier, challenge } = pkcePair();
      const state = rand('hc');
      const a = await authorize(
        w.baseUrl,
        { response_type: responseType, client_id: app.client_id, redirect_uri: spa.cbUrl, scope: SCOPE, state, code_challenge: challenge, code_challenge_method: 'S256' },
        { username: USER.username, password: USER.password, jar },
      );
      assert.ok(a.code, `${responseType}: ${a.location ?? a.body}`);
      assert.equal(a.state, state);
      const t = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_auth_code', code: a.code, redirect_uri: spa.cbUrl, code_verifier: verifier, ...creds() });
      assert.equal(t.status, 200, t.text);
      assert.match(t.headers.get('cache-control') ?? '', /no-store/);
      assertSessionFields(t.json, `hybrid_auth_code (${responseType})`);
      assert.ok(t.json.refresh_token, 'the code flow returns a refresh token');
      assert.equal(t.json.instance_url, w.baseUrl);
      assert.ok(t.json.id_token);
      assert.equal((await userinfo(w.baseUrl, t.json.access_token)).json.user_id, user.user_id);
      // The sid bridges.
      const fd = await frontdoor({ sid: t.json.sid, retURL: '/' });
      assert.equal(fd.status, 302, fd.text.slice(0, 200));
      assert.equal(sessionCookiesSet(fd.setCookies).length, 1);
      // The code is single-use: a replay is refused (and gives no session).
      const again = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_auth_code', code: a.code, redirect_uri: spa.cbUrl, code_verifier: verifier, ...creds() });
      assert.equal(again.status, 400, 'a code is single-use');
      assert.equal(again.json.error, 'invalid_grant');
      assert.equal(again.json.sid, undefined);
    }
    // A hybrid_auth_code code also redeems with grant_type=authorization_code.
    const { verifier, challenge } = pkcePair();
    const a = await authorize(
      w.baseUrl,
      { response_type: 'hybrid_auth_code', client_id: app.client_id, redirect_uri: spa.cbUrl, scope: 'api', code_challenge: challenge, code_challenge_method: 'S256' },
      { username: USER.username, password: USER.password, jar },
    );
    assert.ok(a.code, a.location ?? a.body);
    const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: spa.cbUrl, code_verifier: verifier, ...creds() });
    assert.equal(t.status, 200, t.text);
    assert.ok(t.json.access_token);
  });

  test('frontdoor.jsp refuses absolute and protocol-relative retURLs: 400, no cookie, no redirect to them', async () => {
    const { f } = await hybridToken();
    for (const retURL of ['https://evil.example/', '//evil.example', '//evil.example/path', 'http://127.0.0.1:1/']) {
      const r = await frontdoor({ sid: f.sid, retURL });
      assert.equal(r.status, 400, `retURL ${retURL}: ${r.status} ${r.location ?? ''}`);
      assert.equal(r.location, null, `retURL ${retURL}: no redirect`);
      assert.deepEqual(r.setCookies, [], `retURL ${retURL}: no Set-Cookie`);
      assert.doesNotMatch(r.text, /http-equiv\s*=\s*["']?refresh/i, `retURL ${retURL}: no meta refresh`);
    }
    // Variants browsers resolve to another origin must not redirect off the issuer either.
    for (const retURL of ['/\\evil.example', '/\t/evil.example', '\\\\evil.example', ' //evil.example', 'javascript:alert(1)', '///evil.example', 'HTTPS://evil.example']) {
      const r = await frontdoor({ sid: f.sid, retURL });
      assert.ok(r.status < 500, `retURL ${JSON.stringify(retURL)}: ${r.status}`);
      if (r.status >= 300 && r.status < 400) {
        assert.equal(new URL(r.location, w.baseUrl).origin, w.baseUrl, `retURL ${JSON.stringify(retURL)} redirected to ${r.location}`);
      } else {
        assert.equal(r.location, null);
        assert.deepEqual(sessionCookiesSet(r.setCookies), [], `retURL ${JSON.stringify(retURL)}: no session cookie with a refusal`);
      }
    }
    // In Chromium too: the page stays on the worker's origin.
    const ctx = await freshContext();
    try {
      const page = await ctx.newPage();
      const resp = await page.goto(`${w.baseUrl}/secur/frontdoor.jsp?sid=${encodeURIComponent(f.sid)}&retURL=${encodeURIComponent('//evil.example/')}`);
      assert.equal(resp.status(), 400);
      assert.equal(new URL(page.url()).origin, w.baseUrl);
      assert.ok(!(await ctx.cookies(w.baseUrl)).some((c) => c.name === SESSION_COOKIE));
      await page.close();
    } finally {
      await ctx.close();
    }
    // The sid was not harmed by the refusals.
    const ok = await frontdoor({ sid: f.sid, retURL: '/' });
    assert.equal(ok.status, 302);
  });
});
