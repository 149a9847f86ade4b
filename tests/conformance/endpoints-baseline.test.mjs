// Checklist section B (core protocol baseline per endpoint: RFC 6749, 6750, 7636, 9207, OIDC)
// against the real worker: the authorization endpoint (B.68–B.87), the token endpoint (B.89–B.94),
// the code grant (B.95–B.98), PKCE (B.101–B.102), refresh tokens (B.105–B.107), ID tokens and
// inbound JWTs (B.110, B.112) and userinfo (B.113–B.115). Items whose test lives in another file
// of tests/conformance are listed in /work/notes14/table-AB.md. One worker for the file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { createHmac, createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { startTestWorker } from '../e2e/harness.mjs';
import { CookieJar, formFields, pkcePair, tokenRequest } from '../e2e/flow.mjs';
import { halfHash } from '../e2e/ua-helpers.mjs';
import {
  CB, assertAuthzError, assertCodeAnswer, assertErrorPage, assertRegisteredClientRefused, assertTokenError, assertTokenResponse, authz, basic, checkIdToken,
  codeParams, entropyBits, exchange, newApp, newUser, nowS, refresh, serverInfo, sleep, uniq, userinfoGet,
} from './oidc-ab-helpers.mjs';

const APP_CB = 'https://app.example.com/cb';
const APP_Q = 'https://app.example.com/q?a=1';
const LOCALHOST_CB = 'http://localhost:7/cb';
const ALL = 'openid profile email api refresh_token offline_access';

let w;
let issuer;
let md;
let jwks;
let app;
let app2;
let user;
let jar;
let iat; // an initial access token for registrations

before(async () => {
  w = await startTestWorker();
  ({ md, issuer, jwks } = await serverInfo(w));
  app = await newApp(w, { callback_urls: [CB, APP_CB, APP_Q, LOCALHOST_CB] });
  app2 = await newApp(w);
  user = await newUser(w, 'baseline');
  const first = await authz(w.baseUrl, codeParams(app, { scope: ALL }), { user });
  assert.deepEqual(first.pages, ['login', 'consent'], first.body);
  jar = first.jar;
  const t = await w.admin('POST', '/admin/registration-tokens', { expires_in_s: 3600 });
  assert.equal(t.status, 201, t.text);
  iat = t.json.token;
});

after(async () => {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
});

const get = (path, headers = {}) => fetch(w.baseUrl + path, { headers, redirect: 'manual' });
const postForm = (path, fields, headers = {}) => fetch(w.baseUrl + path, {
  method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields),
});

async function register(body) {
  const r = await fetch(md.registration_endpoint, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify(body) });
  const json = await r.json();
  assert.equal(r.status, 201, JSON.stringify(json));
  return json;
}

/** A code for `a` in the logged-in browser. */
async function code(extra = {}, a = app) {
  const p = codeParams(a, extra);
  const r = await authz(w.baseUrl, p, { user, jar });
  assertCodeAnswer(r, { state: p.state, issuer, target: p.redirect_uri.split('?')[0] });
  return { code: r.code, p, r };
}

// ================================================================================ authorization endpoint

test('B.68 unknown client_id, or missing, unregistered or malformed redirect_uri → a 400 page, never a redirect (GET and POST, text and HTML)', async () => {
  const cases = [
    [{ client_id: 'no-such-client', redirect_uri: CB }, 'invalid_client_id'],
    [{ redirect_uri: CB }, 'invalid_client_id'],
    [{ client_id: app.client_id }, 'redirect_uri_missing'],
    [{ client_id: app.client_id, redirect_uri: 'https://evil.example.com/cb' }, 'redirect_uri_mismatch'],
    [{ client_id: app.client_id, redirect_uri: 'not a url' }, 'redirect_uri_mismatch'],
    [{ client_id: 'no-such-client', redirect_uri: 'https://evil.example.com/cb' }, 'invalid_client_id'],
  ];
  for (const [params, error] of cases) {
    const p = { response_type: 'code', state: 's', ...params };
    for (const method of ['GET', 'POST']) {
      assertErrorPage(await authz(w.baseUrl, p, { jar, method }), error, `${method} ${JSON.stringify(params)}`);
    }
    const html = await authz(w.baseUrl, p, { jar, headers: { accept: 'text/html' } });
    assert.equal(html.status, 400);
    assert.equal(html.location, null);
    assert.match(html.body, new RegExp(`error=${error}`));
  }
});

test('B.69 redirect_uri is compared as an exact string: no trailing slash, path, query, case, userinfo, encoding or fragment leeway; only a loopback IP literal\'s port may differ', async () => {
  const nearMisses = [
    `${APP_CB}/`, `${APP_CB}/x`, `${APP_CB}x`, 'https://app.example.com/cb/../cb', `${APP_CB}?x=1`, 'https://app.example.com/q?a=2', 'https://app.example.com/q?a=1&b=2',
    'https://app.example.com/q', 'https://APP.example.com/cb', 'https://app.example.com/CB', 'https://app.example.com@evil.example/cb',
    'https://user@app.example.com/cb', 'https://app.example.com/%63b', 'https://app.example.com%2F@evil.example/cb', `${APP_CB}#x`,
    'https://app.example.com:443/cb', 'http://app.example.com/cb', 'https://app.example.com.evil.example/cb', 'http://[::1]:9/cb',
    'http://localhost:8/cb', 'http://127.0.0.1:10/cb/', 'http://127.0.0.1:10/CB', 'HTTP://127.0.0.1:9/cb', 'http://127.0.0.01:9/cb',
  ];
  for (const redirect_uri of nearMisses) {
    assertErrorPage(await authz(w.baseUrl, codeParams(app, { redirect_uri }), { jar }), 'redirect_uri_mismatch', redirect_uri);
  }
  for (const redirect_uri of [APP_CB, APP_Q, CB, 'http://127.0.0.1:5555/cb', LOCALHOST_CB]) {
    const r = await authz(w.baseUrl, codeParams(app, { redirect_uri }), { jar });
    assert.ok(r.code, `${redirect_uri}: ${r.status} ${r.body?.slice(0, 100)}`);
    assert.ok(r.location.startsWith(redirect_uri.split('?')[0]), 'sent to the URI used');
  }
});

test('B.70 a client with several registered redirect URIs (and one with a single one) must send redirect_uri: redirect_uri_missing page', async () => {
  for (const a of [app, app2]) {
    const p = codeParams(a);
    delete p.redirect_uri;
    assertErrorPage(await authz(w.baseUrl, p, { jar }), 'redirect_uri_missing', a === app ? 'four URIs' : 'one URI');
  }
});

test('B.72 a parameter sent twice is invalid_request (a page for client_id/redirect_uri, else redirected with state); an empty value counts as absent; unknown parameters are ignored', async () => {
  const base = codeParams(app);
  const pairs = (extra) => [...Object.entries(base), ...extra];
  assertErrorPage(await authz(w.baseUrl, pairs([['redirect_uri', APP_CB]]), { jar }), 'invalid_request', 'two redirect_uri');
  assertErrorPage(await authz(w.baseUrl, pairs([['client_id', app2.client_id]]), { jar }), 'invalid_request', 'two client_id');
  for (const name of ['scope', 'response_type', 'nonce', 'code_challenge', 'prompt', 'max_age', 'response_mode']) {
    const value = { scope: 'openid', response_type: 'code', nonce: 'x', code_challenge: pkcePair().challenge, prompt: 'login', max_age: '5', response_mode: 'query' }[name];
    const extra = base[name] === undefined ? [[name, value], [name, value]] : [[name, value]];
    const r = await authz(w.baseUrl, pairs(extra), { jar });
    assertAuthzError(r, { error: 'invalid_request', state: base.state, issuer, mode: 'query' });
  }
  // Two states: there is no single state to echo, so none is.
  const two = await authz(w.baseUrl, pairs([['state', 'other']]), { jar });
  assertAuthzError(two, { error: 'invalid_request', state: undefined, issuer });
  // POST form too.
  assertAuthzError(await authz(w.baseUrl, pairs([['scope', 'openid']]), { jar, method: 'POST' }), { error: 'invalid_request', state: base.state, issuer });
  // Empty scope = absent (all the app's scopes); unknown parameters ignored.
  const { r } = await code({ scope: '', foo: 'bar', 'x-unknown': '1' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, r.code));
  assert.ok(t.scope.split(' ').includes('api'));
});

test('B.73 response_type missing → invalid_request; unknown → unsupported_response_type; both redirected with state and iss only once client and redirect URI are valid', async () => {
  const missing = codeParams(app);
  delete missing.response_type;
  assertAuthzError(await authz(w.baseUrl, missing, { jar }), { error: 'invalid_request', state: missing.state, issuer, mode: 'query' });
  for (const rt of ['bogus', 'id_token code token', 'device_code', 'code_credentials']) {
    const p = codeParams(app, { response_type: rt });
    const r = await authz(w.baseUrl, p, { jar });
    assertAuthzError(r, { error: 'unsupported_response_type', state: p.state, issuer });
  }
  // The same errors with an unknown client or an unregistered redirect URI: pages.
  assertErrorPage(await authz(w.baseUrl, codeParams(app, { response_type: 'bogus', redirect_uri: 'https://evil.example.com/cb' }), { jar }), 'redirect_uri_mismatch');
  assertErrorPage(await authz(w.baseUrl, codeParams({ client_id: 'nope' }, { response_type: 'bogus' }), { jar }), 'invalid_client_id');
  // A registered client asking for a response type it did not register: unauthorized_client
  // (as a page instead, where the server does not redirect to a self-registered URI).
  const reg = await register({ redirect_uris: [CB], scope: 'openid' });
  const p = codeParams(reg, { response_type: 'token', scope: 'openid' });
  assertRegisteredClientRefused(await authz(w.baseUrl, p, { jar }), { error: 'unauthorized_client', state: p.state, issuer, mode: 'fragment' });
});

test('B.74 error redirects carry state exactly (it cannot inject parameters) and iss, nothing unexpected, and an error_description of RFC 6749 characters', async () => {
  const nasty = 'a&code=injected&iss=https://evil.example#frag x=+%41';
  const p = codeParams(app, { state: nasty, scope: 'openid bad"scope\\x\u00e9' });
  const r = await authz(w.baseUrl, p, { jar });
  assertAuthzError(r, { error: 'invalid_scope', state: nasty, issuer, mode: 'query' });
  assert.equal(r.params.getAll('iss').length, 1);
  assert.equal(r.code, null);
  assert.ok(r.params.get('error_description').length <= 256);
});

test('B.76 scope: without openid no ID token; a scope the app lacks → invalid_scope (redirected); the token response returns the granted scope', async () => {
  const { code: c1 } = await code({ scope: 'api refresh_token' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c1));
  assert.equal(t.id_token, undefined, 'no openid, no ID token');
  assert.deepEqual(new Set(t.scope.split(' ')), new Set(['api', 'refresh_token']));
  const p = codeParams(app, { scope: 'openid full' });
  assertAuthzError(await authz(w.baseUrl, p, { jar }), { error: 'invalid_scope', state: p.state, issuer, mode: 'query' });
  const { code: c2 } = await code({ scope: 'openid api' });
  const t2 = assertTokenResponse(await exchange(w.baseUrl, app, c2));
  assert.equal(t2.scope, 'openid api');
  assert.ok(t2.id_token);
});

test('B.78 prompt=none never shows a page: login_required without a session, consent_required without approval; none combined with login or consent, or an unknown value → invalid_request', async () => {
  const p1 = codeParams(app, { prompt: 'none' });
  const r1 = await authz(w.baseUrl, p1);
  assertAuthzError(r1, { error: 'login_required', state: p1.state, issuer, mode: 'query' });
  const p2 = codeParams(app2, { prompt: 'none' });
  const r2 = await authz(w.baseUrl, p2, { jar });
  assertAuthzError(r2, { error: 'consent_required', state: p2.state, issuer, mode: 'query' });
  for (const prompt of ['none login', 'login none', 'none consent', 'none bogus', 'bogus']) {
    const p = codeParams(app, { prompt });
    assertAuthzError(await authz(w.baseUrl, p, { jar }), { error: 'invalid_request', state: p.state, issuer, mode: 'query' });
  }
  for (const r of [r1, r2]) assert.equal(r.status, 302);
});

test('B.82 the authorization endpoint takes GET and POST (same answer); other methods are 405 with Allow', async () => {
  for (const method of ['GET', 'POST']) {
    const p = codeParams(app);
    assertCodeAnswer(await authz(w.baseUrl, p, { jar, method }), { state: p.state, issuer });
  }
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    const r = await fetch(`${w.baseUrl}/services/oauth2/authorize`, { method, redirect: 'manual' });
    assert.equal(r.status, 405, method);
    assert.match(r.headers.get('allow') ?? '', /GET/);
    assert.match(r.headers.get('allow') ?? '', /POST/);
  }
});

test('B.83 consent takes an explicit action of the user: a consent form without approve/deny, or a login form posted as approval, issues nothing', async () => {
  const u = await newUser(w, 'csrf');
  const fresh = new CookieJar();
  const login = await authz(w.baseUrl, codeParams(app), { jar: fresh, stopAt: 'login' });
  assert.equal(login.page, 'login');
  const lf = formFields(login.body);
  // The login form's interaction "approved" without logging in.
  const skip = await postForm('/services/oauth2/authorize', { ...lf, approve: '1' }, { cookie: fresh.header() });
  assert.equal(skip.status, 400);
  assert.equal(skip.headers.get('location'), null);
  // Logged in, at the consent page: a post with neither button.
  const atConsent = await authz(w.baseUrl, codeParams(app), { user: u, jar: fresh, stopAt: 'consent' });
  assert.equal(atConsent.page, 'consent');
  const cf = formFields(atConsent.body);
  const neither = await postForm('/services/oauth2/authorize', cf, { cookie: fresh.header() });
  assert.equal(neither.status, 400);
  assert.equal(neither.headers.get('location'), null);
  // Without the CSRF token, nothing either (attacks.test.mjs (i) covers every variant).
  const noCsrf = await postForm('/services/oauth2/authorize', { interaction: cf.interaction, approve: '1' }, { cookie: fresh.header() });
  assert.equal(noCsrf.status, 400);
  // Control: approving works.
  const ok = await postForm('/services/oauth2/authorize', { ...cf, approve: '1' }, { cookie: fresh.header() });
  assert.equal(ok.status, 303);
  assert.ok(new URL(ok.headers.get('location')).searchParams.get('code'));
});

function assertNoFraming(headers, what) {
  assert.match(headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`);
  assert.equal(headers.get('x-frame-options'), 'DENY', `${what}: X-Frame-Options`);
}

/** The pages a person sees at the authorization server: login, wrong password, consent, HTML error, device entry, form_post. */
async function pages() {
  const u = await newUser(w, 'pages');
  const fresh = new CookieJar();
  const login = await authz(w.baseUrl, codeParams(app), { jar: fresh, stopAt: 'login' });
  const wrong = await authz(w.baseUrl, codeParams(app), { user: { username: u.username, password: 'wrong password!' }, jar: fresh });
  const consent = await authz(w.baseUrl, codeParams(app), { user: u, jar: fresh, stopAt: 'consent' });
  const error = await authz(w.baseUrl, codeParams(app, { redirect_uri: 'https://evil.example.com/' }), { headers: { accept: 'text/html' } });
  const device = await fetch(`${w.baseUrl}/setup/connect`);
  const formPost = await authz(w.baseUrl, codeParams(app, { response_mode: 'form_post' }), { jar });
  return {
    login: { status: login.status, headers: login.headers, body: login.body },
    'wrong password': { status: wrong.status, headers: wrong.headers, body: wrong.body },
    consent: { status: consent.status, headers: consent.headers, body: consent.body },
    'error page': { status: error.status, headers: error.headers, body: error.body },
    'device verification': { status: device.status, headers: device.headers, body: await device.text() },
    form_post: { status: formPost.status, headers: formPost.headers, body: formPost.body },
  };
}

test('B.84 clickjacking: CSP frame-ancestors \'none\' and X-Frame-Options DENY on the login, consent, error, device verification and form_post pages', async () => {
  const all = await pages();
  assert.match(all.login.body, /name="password"/);
  assert.equal(all['wrong password'].status, 401);
  assert.match(all['wrong password'].body, /name="password"/);
  assert.match(all.consent.body, /name="approve"/);
  assert.equal(all['error page'].status, 400);
  assert.match(all['error page'].body, /error=redirect_uri_mismatch/);
  assert.equal(all['device verification'].status, 200);
  assert.match(all['device verification'].body, /name="user_code"/);
  assert.match(all.form_post.body, /<form method="post" action="http:\/\/127\.0\.0\.1:9\/cb"/);
  for (const [what, p] of Object.entries(all)) {
    assert.match(p.headers.get('content-type') ?? '', /^text\/html/, what);
    assertNoFraming(p.headers, what);
  }
});

test('B.85 after a POST carrying credentials (login) or consent, the redirect is 303, never 307/302', async () => {
  const u = await newUser(w, 'see-other');
  const r = await authz(w.baseUrl, codeParams(app), { user: u });
  assert.deepEqual(r.pages, ['login', 'consent']);
  assert.equal(r.status, 303, 'consent POST');
  // Logged in and approved: the login POST itself redirects.
  const again = await authz(w.baseUrl, codeParams(app, { prompt: 'login' }), { user: u, jar: r.jar });
  assert.deepEqual(again.pages, ['login']);
  assert.equal(again.status, 303, 'login POST');
  const denied = await authz(w.baseUrl, codeParams(app2), { user: u, jar: r.jar, approve: false });
  assert.equal(denied.status, 303, 'deny POST');
  // The GET answers 302 (no body to re-send).
  const silent = await authz(w.baseUrl, codeParams(app), { jar: r.jar });
  assert.equal(silent.status, 302);
});

test('B.86 Referrer-Policy no-referrer and no third-party resources on the authorization pages and redirects', async () => {
  const all = await pages();
  for (const [what, p] of Object.entries(all)) {
    assert.equal(p.headers.get('referrer-policy'), 'no-referrer', what);
    const csp = p.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/, `${what}: default-src 'none'`);
    assert.doesNotMatch(csp, /(style|script|img|font|connect)-src[^;]*(https?:|\*)/, `${what}: no third-party sources`);
    for (const m of p.body.matchAll(/\b(?:src|href)="([^"]*)"/g)) {
      assert.ok(m[1].startsWith('/') && !m[1].startsWith('//'), `${what}: ${m[1]} is same-origin`);
    }
  }
  const redirect = await authz(w.baseUrl, codeParams(app), { jar });
  assert.equal(redirect.headers.get('referrer-policy'), 'no-referrer', 'the redirect carrying the code');
});

test('B.87 no CORS at the authorization endpoint; CORS at token (registered origins), metadata, JWKS and registration', async () => {
  const origin = 'https://spa.example.com';
  await w.admin('PATCH', `/admin/apps/${app2.client_id}`, { allowed_origins: [origin] });
  const preflight = (path) => fetch(w.baseUrl + path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
  const authzPre = await preflight('/services/oauth2/authorize');
  assert.equal(authzPre.headers.get('access-control-allow-origin'), null, 'authorize preflight');
  const authzGet = await get(`/services/oauth2/authorize?${new URLSearchParams(codeParams(app))}`, { origin });
  assert.equal(authzGet.headers.get('access-control-allow-origin'), null, 'authorize GET');
  assert.equal((await preflight('/services/oauth2/token')).headers.get('access-control-allow-origin'), origin, 'token: a registered origin');
  const other = await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null, 'token: unknown origin');
  for (const path of ['/.well-known/openid-configuration', '/id/keys']) {
    assert.equal((await get(path, { origin })).headers.get('access-control-allow-origin'), '*', path);
  }
  assert.equal((await preflight('/services/oauth2/register')).headers.get('access-control-allow-origin'), '*', 'registration');
});

// ================================================================================ token endpoint

test('B.89 token endpoint: POST with a form body only — GET is 405 (Allow: POST), JSON and text bodies are invalid_request, grant_type is required, credentials in the URL are refused', async () => {
  const g = await get('/services/oauth2/token?grant_type=client_credentials');
  assert.equal(g.status, 405);
  assert.equal(g.headers.get('allow'), 'POST');
  assert.equal((await g.json()).error, 'invalid_request');
  for (const [type, body] of [['application/json', JSON.stringify({ grant_type: 'client_credentials' })], ['text/plain', 'grant_type=client_credentials']]) {
    const r = await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'POST', headers: { 'content-type': type, ...basic(app.client_id, app.client_secret) }, body });
    assert.equal(r.status, 400, type);
    assert.equal((await r.json()).error, 'invalid_request', type);
  }
  assertTokenError(await tokenRequest(w.baseUrl, { client_id: app.client_id, client_secret: app.client_secret }), 400, 'invalid_request', 'no grant_type');
  for (const name of ['client_secret', 'code', 'code_verifier', 'refresh_token']) {
    const r = await fetch(`${w.baseUrl}/services/oauth2/token?${name}=x`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code' });
    assert.equal(r.status, 400, name);
    assert.equal((await r.json()).error, 'invalid_request', `${name} in the URL`);
  }
});

test('B.90 token responses (code, refresh, client_credentials): 200, application/json, Cache-Control no-store, Pragma no-cache, token_type Bearer, integer expires_in', async () => {
  const { code: c } = await code({ scope: 'openid api refresh_token' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c), 'code');
  assertTokenResponse(await refresh(w.baseUrl, app, t.refresh_token), 'refresh');
  const runAs = await newUser(w, 'cc90');
  const cc = await newApp(w, { client_credentials_user: runAs.username });
  assertTokenResponse(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, basic(cc.client_id, cc.client_secret)), 'client_credentials');
});

test('B.91 token errors: 400 JSON {error, error_description} for invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope; invalid_client 401 with WWW-Authenticate: Basic', async () => {
  const creds = { client_id: app.client_id, client_secret: app.client_secret };
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', redirect_uri: CB, ...creds }), 400, 'invalid_request', 'code missing');
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: CB, ...creds }), 400, 'invalid_grant', 'unknown code');
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'urn:example:bogus', ...creds }), 400, 'unsupported_grant_type');
  const { code: c } = await code({ scope: 'api refresh_token' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
  assertTokenError(await refresh(w.baseUrl, app, t.refresh_token, { scope: 'api refresh_token email' }), 400, 'invalid_scope', 'wider scope');
  const reg = await register({ redirect_uris: [CB], grant_types: ['authorization_code'] });
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, basic(reg.client_id, reg.client_secret)), 400, 'unauthorized_client', 'unregistered grant');
  for (const [what, headers, fields] of [
    ['Basic, wrong secret', basic(app.client_id, 'wrong'), {}],
    ['post, wrong secret', {}, { client_id: app.client_id, client_secret: 'wrong' }],
  ]) {
    const r = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', ...fields }, headers);
    assertTokenError(r, 401, 'invalid_client', what);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic\b/, `${what}: WWW-Authenticate`);
  }
});

test('B.92 client authentication: Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1), client_secret_post works, a secret in the query is refused, confidential clients must authenticate', async () => {
  const tilde = `conf~client.${randomUUID().slice(0, 8)}_x-y`;
  const r = await w.admin('POST', '/admin/apps', { client_id: tilde, name: 'tilde', callback_urls: [CB], scopes: ['api', 'openid'], client_credentials_user: user.username });
  assert.equal(r.status, 201, r.text);
  const secret = r.json.client_secret;
  const encoded = `Basic ${Buffer.from(`${new URLSearchParams({ x: tilde }).toString().slice(2)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  assert.ok(encoded !== `Basic ${Buffer.from(`${tilde}:${secret}`).toString('base64')}`, 'the id really is changed by form encoding');
  assertTokenResponse(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, { authorization: encoded }), 'form-urlencoded Basic');
  assertTokenResponse(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${tilde}:${secret}`).toString('base64')}` }), 'plain Basic');
  assertTokenResponse(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_id: tilde, client_secret: secret }), 'client_secret_post');
  const q = await fetch(`${w.baseUrl}/services/oauth2/token?client_secret=${secret}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: tilde }) });
  assert.equal(q.status, 400);
  assert.equal((await q.json()).error, 'invalid_request');
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_id: tilde }), 401, 'invalid_client', 'no secret');
  const { code: c } = await code();
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: c, redirect_uri: CB, client_id: app.client_id }), 401, 'invalid_client', 'code without the secret');
});

test('B.93 client_id in the body must be the authenticated client; two authentication methods at once are invalid_request', async () => {
  const { code: c } = await code();
  const mismatch = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: c, redirect_uri: CB, client_id: app2.client_id }, basic(app.client_id, app.client_secret));
  assertTokenError(mismatch, 400, 'invalid_request', 'client_id ≠ Basic');
  const both = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: c, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret }, basic(app.client_id, app.client_secret));
  assertTokenError(both, 400, 'invalid_request', 'Basic and client_secret');
  assertTokenResponse(await exchange(w.baseUrl, app, c), 'the code survived');
});

test('B.94 secrets, codes and tokens: ≥128 bits of entropy, and none of them stored in the clear anywhere in the worker\'s state', async () => {
  const { code: c } = await code({ scope: 'openid api refresh_token' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
  const reg = await register({ redirect_uris: [CB] });
  const session = jar.cookies.get('eo_sid');
  const secrets = { code: c, client_secret: app.client_secret, access_token: t.access_token, refresh_token: t.refresh_token, registration_access_token: reg.registration_access_token, dcr_client_secret: reg.client_secret, session, initial_access_token: iat };
  for (const [k, v] of Object.entries(secrets)) {
    assert.ok(typeof v === 'string' && v.length > 0, k);
    assert.ok(entropyBits(v) >= 128, `${k}: ${entropyBits(v).toFixed(0)} estimated bits`);
  }
  assert.match(c, /^[0-9A-Za-z]{43}$/, 'code: 43 base62 characters (256 bits)');
  assert.match(app.client_secret, /^[0-9A-Za-z]{64}$/);
  await sleep(300);
  const filesHolding = (v) => {
    let hits = '';
    try {
      hits = execFileSync('grep', ['-rlaF', '--', v, w.stateDir], { encoding: 'utf8' });
    } catch (e) {
      if (e.status !== 1) throw e;
    }
    return hits.split('\n').filter((f) => f && !f.endsWith('test.vars'));
  };
  // Control: what is stored in the clear (the client_id) is found, so the search reaches the stores.
  assert.ok(filesHolding(reg.client_id).length > 0, 'the search sees the stored data');
  for (const [k, v] of Object.entries(secrets)) {
    const files = filesHolding(v);
    assert.deepEqual(files, [], `${k} found in the clear in ${files}`);
  }
});

// ================================================================================ code grant

test('B.95 a code is single-use: of 10 parallel redemptions exactly one wins; the replays are invalid_grant and revoke what the winner got', async () => {
  const { code: c } = await code({ scope: 'openid api refresh_token' });
  const all = await Promise.all(Array.from({ length: 10 }, () => exchange(w.baseUrl, app, c)));
  const won = all.filter((r) => r.status === 200);
  assert.equal(won.length, 1, `${all.map((r) => r.status)}`);
  for (const r of all.filter((x) => x.status !== 200)) assertTokenError(r, 400, 'invalid_grant', 'parallel replay');
  assert.equal((await userinfoGet(w.baseUrl, won[0].json.access_token)).status, 401, 'revoked by the replay');
  assertTokenError(await refresh(w.baseUrl, app, won[0].json.refresh_token), 400, 'invalid_grant', 'refresh token revoked');
});

test('B.97 a code is bound to its client and its redirect URI: another client → invalid_grant; another or missing redirect_uri → 400 (Salesforce\'s redirect_uri_mismatch), no token', async () => {
  const { code: c } = await code({ redirect_uri: APP_CB });
  assertTokenError(await exchange(w.baseUrl, app2, c, { redirect_uri: APP_CB }), 400, 'invalid_grant', 'other client');
  for (const redirect_uri of [CB, `${APP_CB}/`, undefined]) {
    const r = await exchange(w.baseUrl, app, c, { redirect_uri });
    assertTokenError(r, 400, ['invalid_grant', 'redirect_uri_mismatch'], `redirect_uri ${redirect_uri}`);
  }
  assertTokenResponse(await exchange(w.baseUrl, app, c, { redirect_uri: APP_CB }));
});

test('B.98 a failed redemption (wrong redirect_uri, secret, verifier or client) does not use up the code; the right one then succeeds once', async () => {
  const { verifier, challenge } = pkcePair();
  const { code: c } = await code({ code_challenge: challenge });
  assertTokenError(await exchange(w.baseUrl, app, c, { code_verifier: verifier, redirect_uri: APP_CB }), 400, ['invalid_grant', 'redirect_uri_mismatch']);
  assertTokenError(await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: c, redirect_uri: CB, code_verifier: verifier, client_id: app.client_id, client_secret: 'wrong' }), 401, 'invalid_client');
  assertTokenError(await exchange(w.baseUrl, app, c, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant');
  assertTokenError(await exchange(w.baseUrl, app2, c, { code_verifier: verifier }), 400, 'invalid_grant');
  assertTokenResponse(await exchange(w.baseUrl, app, c, { code_verifier: verifier }), 'right request');
  assertTokenError(await exchange(w.baseUrl, app, c, { code_verifier: verifier }), 400, 'invalid_grant', 'then used');
});

// ================================================================================ PKCE

test('B.101 PKCE downgrade: a code_verifier for a code issued without a challenge → invalid_grant', async () => {
  const { code: c } = await code();
  assertTokenError(await exchange(w.baseUrl, app, c, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant');
});

test('B.102 PKCE policy: public clients must send a challenge; plain and unknown methods, malformed challenges → invalid_request; verifiers outside [A-Za-z0-9-._~]{43,} → invalid_grant; no method means S256', async () => {
  const pub = await register({ redirect_uris: [CB], token_endpoint_auth_method: 'none', scope: 'openid api' });
  const noPkce = codeParams(pub, { scope: 'openid' });
  assertRegisteredClientRefused(await authz(w.baseUrl, noPkce, { jar }), { error: 'invalid_request', state: noPkce.state, issuer, mode: 'query' });
  const { verifier, challenge } = pkcePair();
  for (const [extra, what] of [
    [{ code_challenge: verifier, code_challenge_method: 'plain' }, 'plain'],
    [{ code_challenge: challenge, code_challenge_method: 'S512' }, 'unknown method'],
    [{ code_challenge: challenge.slice(0, 42) }, 'challenge of 42 characters'],
    [{ code_challenge: `${challenge.slice(0, 42)}=` }, 'padded challenge'],
    [{ code_challenge: `${challenge.slice(0, 42)}+` }, 'non-base64url challenge'],
    [{ code_challenge_method: 'S256' }, 'method without challenge'],
  ]) {
    const p = codeParams(pub, { scope: 'openid', ...extra });
    assertRegisteredClientRefused(await authz(w.baseUrl, p, { jar }), { error: 'invalid_request', state: p.state, issuer, mode: 'query' });
  }
  // No method: S256 (Salesforce clients send none); the public client redeems without a secret.
  const p = codeParams(pub, { scope: 'openid', code_challenge: challenge });
  const r = await authz(w.baseUrl, p, { user, jar });
  assert.ok(r.code, r.location);
  for (const bad of ['short', 'a'.repeat(42), `${'a'.repeat(42)}!`, `${'a'.repeat(50)} b`]) {
    assertTokenError(await exchange(w.baseUrl, pub, r.code, { auth: 'none', code_verifier: bad }), 400, 'invalid_grant', `verifier ${bad}`);
  }
  assertTokenResponse(await exchange(w.baseUrl, pub, r.code, { auth: 'none', code_verifier: verifier }));
});

// ================================================================================ refresh tokens

test('B.105 refresh scope: wider → invalid_scope; narrower works; a rotated refresh token still carries the original grant\'s scope', async () => {
  const rot = await newApp(w, { rotate_refresh_tokens: true, scopes: ['openid', 'api', 'refresh_token', 'web'] });
  const p = codeParams(rot, { scope: 'openid api refresh_token' });
  const r = await authz(w.baseUrl, p, { user, jar });
  const t0 = assertTokenResponse(await exchange(w.baseUrl, rot, r.code));
  for (const scope of ['openid api refresh_token web', 'web', 'full']) {
    assertTokenError(await refresh(w.baseUrl, rot, t0.refresh_token, { scope }), 400, 'invalid_scope', scope);
  }
  const narrow = assertTokenResponse(await refresh(w.baseUrl, rot, t0.refresh_token, { scope: 'api' }));
  assert.equal(narrow.scope, 'api');
  assert.ok(narrow.refresh_token, 'rotated');
  // RFC 6749 §6: the new refresh token's scope is the one of the token presented.
  const full = assertTokenResponse(await refresh(w.baseUrl, rot, narrow.refresh_token, { scope: 'openid api refresh_token' }));
  assert.deepEqual(new Set(full.scope.split(' ')), new Set(['openid', 'api', 'refresh_token']));
});

test('B.106 a public client\'s refresh tokens rotate, and replaying a rotated one revokes the family; the admin API refuses a public refresh client that does not rotate', async () => {
  const refused = await w.admin('POST', '/admin/apps', { name: 'no rotate', callback_urls: [CB], scopes: ['api', 'refresh_token'], secret_required_refresh: false });
  assert.equal(refused.status, 400, refused.text);
  const pub = await newApp(w, { secret_required_web_server: false, secret_required_refresh: false, rotate_refresh_tokens: true });
  const { verifier, challenge } = pkcePair();
  const r = await authz(w.baseUrl, codeParams(pub, { scope: 'api refresh_token', code_challenge: challenge }), { user, jar });
  const t0 = assertTokenResponse(await exchange(w.baseUrl, pub, r.code, { auth: 'none', code_verifier: verifier }));
  const pubRefresh = (rt) => tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: rt, client_id: pub.client_id });
  const t1 = assertTokenResponse(await pubRefresh(t0.refresh_token));
  assert.ok(t1.refresh_token && t1.refresh_token !== t0.refresh_token);
  assertTokenError(await pubRefresh(t0.refresh_token), 400, 'invalid_grant', 'replayed rotated token');
  assertTokenError(await pubRefresh(t1.refresh_token), 400, 'invalid_grant', 'the successor is revoked too');
  assert.equal((await userinfoGet(w.baseUrl, t1.access_token)).status, 401);
});

test('B.107 refresh tokens only with refresh_token/offline_access and a non-zero policy; an inactivity policy expires them; a password change revokes them', async () => {
  const { code: c1 } = await code({ scope: 'openid api' });
  assert.equal(assertTokenResponse(await exchange(w.baseUrl, app, c1)).refresh_token, undefined, 'no refresh scope');
  const { code: c2 } = await code({ scope: 'offline_access' });
  assert.ok(assertTokenResponse(await exchange(w.baseUrl, app, c2)).refresh_token, 'offline_access alone');
  const zero = await newApp(w, { refresh_token_policy: 'zero' });
  const z = await authz(w.baseUrl, codeParams(zero, { scope: 'api refresh_token' }), { user, jar });
  assert.equal(assertTokenResponse(await exchange(w.baseUrl, zero, z.code)).refresh_token, undefined, 'policy zero');
  const idle = await newApp(w, { refresh_token_policy: { inactivity_s: 1 } });
  const i = await authz(w.baseUrl, codeParams(idle, { scope: 'api refresh_token' }), { user, jar });
  const it = assertTokenResponse(await exchange(w.baseUrl, idle, i.code));
  await sleep(1300);
  assertTokenError(await refresh(w.baseUrl, idle, it.refresh_token), 400, 'invalid_grant', 'idle longer than inactivity_s');
  const u = await newUser(w, 'pwchange');
  const pr = await authz(w.baseUrl, codeParams(app, { scope: 'api refresh_token' }), { user: u });
  const pt = assertTokenResponse(await exchange(w.baseUrl, app, pr.code));
  assert.equal((await w.admin('PATCH', `/admin/users/${u.user_id}`, { password: 'a brand new password 123' })).status, 200);
  assertTokenError(await refresh(w.baseUrl, app, pt.refresh_token), 400, 'invalid_grant', 'after a password change');
});

// ================================================================================ ID token / JOSE

test('B.110 a code-flow ID token carries iss, sub (≤255 ASCII), aud, azp, exp, iat, auth_time, the nonce, and at_hash of the access token beside it', async () => {
  const { code: c, p } = await code({ scope: 'openid' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
  const claims = await checkIdToken(t.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce, accessToken: t.access_token });
  for (const k of ['iss', 'sub', 'aud', 'azp', 'exp', 'iat', 'auth_time', 'nonce', 'at_hash']) assert.ok(k in claims, k);
  assert.equal(claims.at_hash, halfHash(t.access_token));
});

test('B.112 inbound JWTs: alg none, HS256 keyed with the public key, a jku/x5u pointing elsewhere, a crit header, an ID token, and a client assertion used as a grant are all refused; jku/x5u are never fetched', async () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' });
  const runAs = await newUser(w, 'jose');
  const a = await newApp(w, { certificate: pem, client_credentials_user: runAs.username });
  await w.admin('POST', `/admin/apps/${a.client_id}/users/${runAs.user_id}`);
  let hits = 0;
  const srv = http.createServer((req, res) => { hits++; res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"keys":[]}'); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const evil = `http://127.0.0.1:${srv.address().port}/keys`;
  try {
    const claims = () => ({ iss: a.client_id, sub: a.client_id, aud: issuer, jti: randomUUID(), exp: nowS() + 60 });
    const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims())}`;
    const hs = `${hsInput}.${createHmac('sha256', pem).update(hsInput).digest('base64url')}`;
    const sign = (header, k = key.privateKey, body = claims()) => new jose.SignJWT(body).setProtectedHeader({ alg: 'RS256', ...header }).sign(k);
    const cases = {
      'alg none': none,
      'HS256 keyed with the public key': hs,
      'jku to the attacker': await sign({ jku: evil, kid: 'x' }, attacker.privateKey),
      'x5u to the attacker': await sign({ x5u: evil }, attacker.privateKey),
      'embedded jwk of the attacker': await sign({ jwk: await jose.exportJWK(attacker.publicKey) }, attacker.privateKey),
      'crit header': (() => {
        const input = `${b64({ alg: 'RS256', typ: 'JWT', crit: ['x-ext'], 'x-ext': 1 })}.${b64(claims())}`;
        return `${input}.${createSign('RSA-SHA256').update(input).sign(key.privateKey).toString('base64url')}`;
      })(),
    };
    for (const [what, jwt] of Object.entries(cases)) {
      const r = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt });
      assertTokenError(r, 401, 'invalid_client', what);
    }
    assert.equal(hits, 0, 'jku / x5u never fetched');
    // An ID token of ours as a client assertion, and as a JWT bearer grant.
    const { code: c } = await code({ scope: 'openid' });
    const idt = assertTokenResponse(await exchange(w.baseUrl, app, c)).id_token;
    const asAssertion = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: idt });
    assert.ok([400, 401].includes(asAssertion.status) && !asAssertion.json.access_token, asAssertion.text);
    const asGrant = await tokenRequest(w.baseUrl, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: idt });
    assert.ok(asGrant.status >= 400 && !asGrant.json.access_token, asGrant.text);
    // A client assertion (sub = the client) presented as a JWT bearer grant for a user.
    const asUserGrant = await tokenRequest(w.baseUrl, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: await sign({}) });
    assert.ok(asUserGrant.status >= 400 && !asUserGrant.json.access_token, asUserGrant.text);
    // Control: a proper assertion works.
    assertTokenResponse(await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await sign({}) }), 'control');
  } finally {
    await new Promise((r) => srv.close(r));
  }
});

// ================================================================================ userinfo

test('B.113 userinfo takes Authorization: Bearer (GET and POST) and a form-body access_token, never a token in the query', async () => {
  const { code: c } = await code({ scope: 'openid' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
  assert.equal((await userinfoGet(w.baseUrl, t.access_token)).status, 200);
  assert.equal((await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${t.access_token}` } })).status, 200);
  assert.equal((await postForm('/services/oauth2/userinfo', { access_token: t.access_token })).status, 200);
  for (const name of ['access_token', 'oauth_token']) {
    const q = await get(`/services/oauth2/userinfo?${name}=${encodeURIComponent(t.access_token)}`);
    assert.equal(q.status, 401, `${name} in the query`);
  }
});

test('B.114 userinfo errors: no token → 401 with WWW-Authenticate: Bearer; an unknown, revoked, refresh or ID token → 401 error="invalid_token"', async () => {
  const none = await get('/services/oauth2/userinfo');
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer\b/);
  const { code: c } = await code({ scope: 'openid api refresh_token' });
  const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
  const revokedToken = assertTokenResponse(await refresh(w.baseUrl, app, t.refresh_token)).access_token;
  const rv = await postForm('/services/oauth2/revoke', { token: revokedToken });
  assert.equal(rv.status, 200);
  for (const [what, token] of [['unknown', `00D${'x'.repeat(15)}!${'y'.repeat(71)}`], ['revoked', revokedToken], ['refresh token', t.refresh_token], ['ID token', t.id_token]]) {
    const r = await userinfoGet(w.baseUrl, token);
    assert.equal(r.status, 401, what);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, what);
    assert.equal(r.json.error, 'invalid_token', what);
  }
  // A token without openid still reads userinfo (Salesforce clients call it with "api web
  // refresh_token"; docs/endpoints.md): only the base claims, no profile or email.
  const { code: c2 } = await code({ scope: 'api' });
  const api = assertTokenResponse(await exchange(w.baseUrl, app, c2));
  const u = await userinfoGet(w.baseUrl, api.access_token);
  assert.equal(u.status, 200);
  assert.equal(u.json.email, undefined);
  assert.equal(u.json.name, undefined);
});

test('B.114 a request without any token gets a bare Bearer challenge, no error code (RFC 6750 §3.1: SHOULD NOT include error information)', async () => {
  const none = await get('/services/oauth2/userinfo');
  assert.equal(none.status, 401);
  assert.doesNotMatch(none.headers.get('www-authenticate') ?? '', /error=/);
});

test('B.115 userinfo sub equals the ID token sub; claims follow the granted scopes', async () => {
  for (const [scope, has, lacks] of [['openid', [], ['name', 'email']], ['openid profile', ['name'], ['email']], ['openid email', ['email', 'email_verified'], ['name']]]) {
    const { code: c, p } = await code({ scope });
    const t = assertTokenResponse(await exchange(w.baseUrl, app, c));
    const claims = await checkIdToken(t.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce });
    const u = await userinfoGet(w.baseUrl, t.access_token);
    assert.equal(u.json.sub, claims.sub, scope);
    for (const k of has) assert.ok(k in u.json, `${scope}: ${k}`);
    for (const k of lacks) assert.ok(!(k in u.json), `${scope}: no ${k}`);
  }
});
