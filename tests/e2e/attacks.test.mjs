// Attacks on the authorization code and refresh token flows, against the real worker (workerd
// under wrangler dev, local KV and D1): code replay races, cross-client use, PKCE downgrades,
// refresh token rotation and reuse detection, CSRF on the login/consent forms, open redirects,
// admin-approved apps and deactivated users.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker } from './harness.mjs';
import { authorize, tokenRequest, pkcePair, CookieJar, formFields } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'correct horse battery';

let w;
let seq = 0;

before(async () => {
  w = await startTestWorker();
});

after(() => {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
    w.stop();
  }
});

async function newApp(overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `attack app ${++seq}`,
    callback_urls: [CB],
    scopes: ['api', 'openid', 'refresh_token', 'profile'],
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser() {
  const username = `attack-user-${++seq}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Attack User ${seq}` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

/** Runs the authorize flow (login + consent) and returns the result with the code. */
async function getCode(app, user, params = {}, opts = {}) {
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'st-' + seq, ...params },
    { username: user.username, password: user.password, ...opts },
  );
  return a;
}

function creds(app) {
  return { client_id: app.client_id, client_secret: app.client_secret };
}

async function exchange(app, code, extra = {}) {
  return tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, ...creds(app), ...extra });
}

/** Code → tokens, asserting success. */
async function tokensFor(app, user, params = {}) {
  const { verifier, challenge } = pkcePair();
  const a = await getCode(app, user, { code_challenge: challenge, ...params });
  assert.equal(a.status, 303, a.body); // the login/consent POST redirects with 303 (RFC 9700 §4.12)
  assert.ok(a.code, `no code in ${a.location}`);
  const t = await exchange(app, a.code, { code_verifier: verifier });
  assert.equal(t.status, 200, t.text);
  assertNoStore(t);
  return t.json;
}

function assertNoStore(r) {
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, 'token responses carry Cache-Control: no-store');
}

function assertOAuthError(r, status, error, description) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json, `JSON error body expected, got ${r.text}`);
  assert.equal(r.json.error, error, r.text);
  if (description !== undefined) assert.equal(r.json.error_description, description, r.text);
  assertNoStore(r);
}

async function userinfo(token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  return { status: r.status, text, json: text ? JSON.parse(text) : undefined };
}

async function introspect(app, token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...creds(app) }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

async function refresh(app, refreshToken, extra = {}) {
  return tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, ...creds(app), ...extra });
}

/** A raw GET of an authorize URL, without following redirects. */
async function authorizeGet(params, jar) {
  const headers = jar ? { cookie: jar.header() } : {};
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams(params)}`, { headers, redirect: 'manual' });
  if (jar) jar.store(r);
  return { status: r.status, location: r.headers.get('location'), headers: r.headers, body: await r.text() };
}

async function authorizePost(fields, cookie) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (cookie) headers.cookie = cookie;
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
    method: 'POST',
    headers,
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
  return { status: r.status, location: r.headers.get('location'), headers: r.headers, body: await r.text() };
}

/** Asserts an error redirect back to the registered callback with `error` and `state`. */
function assertErrorRedirect(r, error, state, description) {
  assert.equal(r.status, 302, r.body);
  const url = new URL(r.location);
  assert.equal(url.origin + url.pathname, CB);
  assert.equal(url.searchParams.get('error'), error, r.location);
  assert.equal(url.searchParams.get('code'), null);
  if (state !== undefined) assert.equal(url.searchParams.get('state'), state, r.location);
  if (description !== undefined) assert.equal(url.searchParams.get('error_description'), description);
  return url;
}

// ---------------------------------------------------------------------------------------------

test('(a) 20 concurrent redemptions of one code: one winner, 19 invalid_grant, winner revoked', async () => {
  const app = await newApp();
  const user = await newUser();
  const { verifier, challenge } = pkcePair();
  const a = await getCode(app, user, { code_challenge: challenge });
  assert.ok(a.code);
  const results = await Promise.all(
    Array.from({ length: 20 }, () => exchange(app, a.code, { code_verifier: verifier })),
  );
  const ok = results.filter((r) => r.status === 200);
  const failed = results.filter((r) => r.status !== 200);
  assert.equal(ok.length, 1, `exactly one redemption wins: ${results.map((r) => r.status)}`);
  assert.equal(failed.length, 19);
  for (const r of failed) assertOAuthError(r, 400, 'invalid_grant', 'expired authorization code');
  assertNoStore(ok[0]);
  const winner = ok[0].json;
  assert.ok(winner.access_token && winner.refresh_token);
  // The replay revoked what the first redemption issued (RFC 6749 §4.1.2).
  const u = await userinfo(winner.access_token);
  assert.equal(u.status, 401, u.text);
  assert.equal(u.json.error, 'invalid_token');
  assertOAuthError(await refresh(app, winner.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  // And a later sequential replay still fails.
  assertOAuthError(await exchange(app, a.code, { code_verifier: verifier }), 400, 'invalid_grant');
});

test('a single redemption works and its token is live (control for the replay test)', async () => {
  const app = await newApp();
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.equal(t.token_type, 'Bearer');
  const u = await userinfo(t.access_token);
  assert.equal(u.status, 200, u.text);
  assert.equal(u.json.preferred_username, user.username);
});

test('(b) a code redeemed by another client is invalid_grant and stays usable by its owner', async () => {
  const appA = await newApp();
  const appB = await newApp();
  const user = await newUser();
  const a = await getCode(appA, user);
  assert.ok(a.code);
  const stolen = await exchange(appB, a.code);
  assertOAuthError(stolen, 400, 'invalid_grant');
  assert.equal(stolen.json.access_token, undefined);
  // Without any client secret, B's client_id alone is no better.
  const noSecret = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_id: appB.client_id });
  assert.ok(noSecret.status === 400 || noSecret.status === 401, noSecret.text);
  assert.ok(['invalid_grant', 'invalid_client'].includes(noSecret.json.error), noSecret.text);
  const own = await exchange(appA, a.code);
  assert.equal(own.status, 200, own.text);
});

test('(c) a different redirect_uri at the token endpoint is redirect_uri_mismatch', async () => {
  const app = await newApp({ callback_urls: [CB, 'http://127.0.0.1:9/other'] });
  const user = await newUser();
  const a = await getCode(app, user);
  assert.ok(a.code);
  for (const redirect_uri of ['http://127.0.0.1:9/other', CB + '/', 'http://127.0.0.1:9/CB', CB + '?x=1']) {
    const r = await exchange(app, a.code, { redirect_uri });
    assertOAuthError(r, 400, 'redirect_uri_mismatch', 'redirect_uri must match configuration');
  }
  const missing = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, ...creds(app) });
  assertOAuthError(missing, 400, 'redirect_uri_mismatch', 'redirect_uri must match configuration');
  // The right one still works: the failed attempts did not burn the code.
  assert.equal((await exchange(app, a.code)).status, 200);
});

test('(d) PKCE: mismatched verifier is invalid_grant', async () => {
  const app = await newApp();
  const user = await newUser();
  const { challenge, verifier } = pkcePair();
  const a = await getCode(app, user, { code_challenge: challenge });
  const other = pkcePair().verifier;
  assertOAuthError(await exchange(app, a.code, { code_verifier: other }), 400, 'invalid_grant');
  // A verifier that is its own challenge (a "plain" downgrade) fails too.
  assertOAuthError(await exchange(app, a.code, { code_verifier: challenge }), 400, 'invalid_grant');
  assert.equal((await exchange(app, a.code, { code_verifier: verifier })).status, 200);
});

test('(d) PKCE: challenge sent but no verifier is invalid_grant', async () => {
  const app = await newApp();
  const user = await newUser();
  const { challenge } = pkcePair();
  const a = await getCode(app, user, { code_challenge: challenge });
  assertOAuthError(await exchange(app, a.code), 400, 'invalid_grant');
});

test('(d) PKCE: verifier sent without a challenge at authorize is invalid_grant', async () => {
  const app = await newApp();
  const user = await newUser();
  const a = await getCode(app, user);
  assert.ok(a.code);
  assertOAuthError(await exchange(app, a.code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant');
});

test('(d) PKCE: code_challenge_method=plain is refused with a redirect error=invalid_request', async () => {
  const app = await newApp();
  const { verifier } = pkcePair();
  const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'plain-st', code_challenge: verifier, code_challenge_method: 'plain' });
  assertErrorRedirect(r, 'invalid_request', 'plain-st');
  // S256 spelled out is fine: the login page is shown.
  const ok = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /name="password"/);
});

test('(d) PKCE required by the app, or by the org, without a challenge → redirect error=invalid_request', async () => {
  const strict = await newApp({ pkce_required: true });
  const r = await authorizeGet({ response_type: 'code', client_id: strict.client_id, redirect_uri: CB, state: 'need-pkce' });
  assertErrorRedirect(r, 'invalid_request', 'need-pkce');
  const withChallenge = await authorizeGet({ response_type: 'code', client_id: strict.client_id, redirect_uri: CB, code_challenge: pkcePair().challenge });
  assert.equal(withChallenge.status, 200);

  const lax = await newApp();
  const before = await authorizeGet({ response_type: 'code', client_id: lax.client_id, redirect_uri: CB, state: 'org' });
  assert.equal(before.status, 200, 'without the org switch the login page is shown');
  const user = await newUser();
  const earlyCode = await getCode(lax, user); // issued before the org switch, without PKCE
  assert.ok(earlyCode.code);
  const s = await w.admin('PATCH', '/admin/settings', { require_pkce: true });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.require_pkce, true);
  try {
    const r2 = await authorizeGet({ response_type: 'code', client_id: lax.client_id, redirect_uri: CB, state: 'org' });
    assertErrorRedirect(r2, 'invalid_request', 'org');
    // A code issued without PKCE before the switch cannot be redeemed after it.
    assertOAuthError(await exchange(lax, earlyCode.code), 400, 'invalid_grant');
  } finally {
    const back = await w.admin('PATCH', '/admin/settings', { require_pkce: false });
    assert.equal(back.status, 200);
  }
});

test('(d) a public client (secret not required) without a secret works only with PKCE', async () => {
  const app = await newApp({ secret_required_web_server: false });
  const user = await newUser();
  const noPkce = await getCode(app, user);
  assert.ok(noPkce.code);
  const r = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: noPkce.code, redirect_uri: CB, client_id: app.client_id });
  assertOAuthError(r, 401, 'invalid_client');
  assert.ok(r.headers.get('www-authenticate'));

  const { verifier, challenge } = pkcePair();
  const withPkce = await getCode(app, user, { code_challenge: challenge });
  // A wrong secret is still checked although the secret is optional.
  const wrong = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: withPkce.code, redirect_uri: CB, client_id: app.client_id, client_secret: 'nope', code_verifier: verifier });
  assertOAuthError(wrong, 401, 'invalid_client', 'invalid client credentials');
  const ok = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: withPkce.code, redirect_uri: CB, client_id: app.client_id, code_verifier: verifier });
  assert.equal(ok.status, 200, ok.text);
  assertNoStore(ok);
  assert.ok(ok.json.access_token);
  assert.equal(ok.json.signature, undefined, 'no secret, no signature');
});

test('(e) a refresh token of client A used by client B is invalid_grant', async () => {
  const appA = await newApp();
  const appB = await newApp();
  const user = await newUser();
  const t = await tokensFor(appA, user);
  assert.ok(t.refresh_token);
  assertOAuthError(await refresh(appB, t.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  // A's own use still works: B learned nothing and broke nothing.
  const own = await refresh(appA, t.refresh_token);
  assert.equal(own.status, 200, own.text);
  assertNoStore(own);
  // An access token is no refresh token.
  assertOAuthError(await refresh(appA, t.access_token), 400, 'invalid_grant', 'expired access/refresh token');
});

test('(f) rotation: a new refresh token each time; reuse of a rotated one revokes the whole family', async () => {
  const app = await newApp({ rotate_refresh_tokens: true });
  const user = await newUser();
  const t0 = await tokensFor(app, user);
  const r1 = await refresh(app, t0.refresh_token);
  assert.equal(r1.status, 200, r1.text);
  assertNoStore(r1);
  assert.ok(r1.json.refresh_token, 'rotation issues a new refresh token');
  assert.notEqual(r1.json.refresh_token, t0.refresh_token);
  const r2 = await refresh(app, r1.json.refresh_token);
  assert.equal(r2.status, 200, r2.text);
  const newest = r2.json;
  assert.ok(newest.refresh_token);
  assert.notEqual(newest.refresh_token, r1.json.refresh_token);
  for (const at of [t0.access_token, r1.json.access_token, newest.access_token]) {
    assert.equal((await userinfo(at)).status, 200, 'all access tokens live before the reuse');
  }
  // Reuse of the first, rotated-out token: leaked; the whole family goes.
  assertOAuthError(await refresh(app, t0.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  assertOAuthError(await refresh(app, newest.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  assertOAuthError(await refresh(app, r1.json.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  for (const at of [t0.access_token, r1.json.access_token, newest.access_token]) {
    const u = await userinfo(at);
    assert.equal(u.status, 401, `access token must be revoked: ${u.text}`);
  }
  assert.deepEqual(await introspect(app, newest.access_token), { active: false });
  assert.deepEqual(await introspect(app, newest.refresh_token), { active: false });
});

test('(f) without rotation the same refresh token keeps working and none is re-issued', async () => {
  const app = await newApp();
  const user = await newUser();
  const t0 = await tokensFor(app, user);
  const r1 = await refresh(app, t0.refresh_token);
  assert.equal(r1.status, 200);
  assert.equal(r1.json.refresh_token, undefined);
  assert.equal((await refresh(app, t0.refresh_token)).status, 200);
});

test('(g) scope: widening on refresh is invalid_scope, narrowing works and is narrower', async () => {
  const app = await newApp({ scopes: ['api', 'openid', 'refresh_token', 'profile', 'web'] });
  const user = await newUser();
  const t = await tokensFor(app, user, { scope: 'api refresh_token openid' });
  assert.deepEqual(t.scope.split(' ').sort(), ['api', 'openid', 'refresh_token']);
  for (const scope of ['api refresh_token openid web', 'web', 'full', 'api nonsense']) {
    assertOAuthError(await refresh(app, t.refresh_token, { scope }), 400, 'invalid_scope');
  }
  const narrow = await refresh(app, t.refresh_token, { scope: 'api' });
  assert.equal(narrow.status, 200, narrow.text);
  assert.equal(narrow.json.scope, 'api');
  assert.equal(narrow.json.id_token, undefined, 'no openid, no ID token');
  const info = await introspect(app, narrow.json.access_token);
  assert.equal(info.active, true);
  assert.equal(info.scope, 'api');
  const orig = await introspect(app, t.access_token);
  assert.deepEqual(orig.scope.split(' ').sort(), ['api', 'openid', 'refresh_token']);
  // Narrowing once does not shrink the grant: the full original scope is still available.
  const again = await refresh(app, t.refresh_token, { scope: 'api openid' });
  assert.equal(again.status, 200, again.text);
});

test('(h) prompt=none: login_required without a session, consent_required without approval', async () => {
  const app = await newApp();
  const user = await newUser();
  const noSession = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'pn-1' });
  assertErrorRedirect(noSession, 'login_required', 'pn-1');

  // Log in but deny consent: the browser has a session, the app has no approval.
  const jar = new CookieJar();
  const denied = await getCode(app, user, {}, { jar, approve: false });
  assert.equal(denied.error, 'access_denied');
  assert.ok(jar.cookies.has('eo_sid'), 'the login set a session cookie');
  const noConsent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'pn-2' }, jar);
  assertErrorRedirect(noConsent, 'consent_required', 'pn-2');

  // Once approved, prompt=none silently issues a code.
  const approved = await getCode(app, user, {}, { jar });
  assert.ok(approved.code);
  assert.deepEqual(approved.pages, ['consent']);
  const silent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'pn-3' }, jar);
  assert.equal(silent.status, 302);
  const url = new URL(silent.location);
  assert.ok(url.searchParams.get('code'));
  assert.equal(url.searchParams.get('state'), 'pn-3');
});

/** The login page of a fresh authorization request, with its browser cookie. */
async function loginPage(app) {
  const jar = new CookieJar();
  const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'csrf' }, jar);
  assert.equal(r.status, 200);
  assert.match(r.body, /name="password"/);
  const fields = formFields(r.body);
  assert.ok(fields.interaction && fields.csrf_token, 'login form carries interaction and csrf_token');
  assert.ok(jar.cookies.get('eo_bid'), 'browser cookie set');
  return { jar, fields };
}

function assertRefused(r, what) {
  assert.equal(r.status, 400, `${what}: ${r.body}`);
  assert.equal(r.location, null, `${what}: no redirect`);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/, what);
  assert.match(r.body, /^error=invalid_request&/, what);
  const cookies = r.headers.getSetCookie();
  assert.ok(!cookies.some((c) => c.startsWith('eo_sid=')), `${what}: no session cookie`);
}

test('(i) CSRF on the login form: missing, wrong, or without the browser cookie → 400, no session', async () => {
  const app = await newApp();
  const user = await newUser();
  const { jar, fields } = await loginPage(app);
  const login = { username: user.username, password: user.password, login: '1' };
  const bid = `eo_bid=${jar.cookies.get('eo_bid')}`;
  assertRefused(await authorizePost({ interaction: fields.interaction, ...login }, bid), 'no csrf_token');
  assertRefused(await authorizePost({ ...fields, ...login, csrf_token: 'x'.repeat(43) }, bid), 'wrong csrf_token');
  assertRefused(await authorizePost({ ...fields, ...login, csrf_token: fields.csrf_token.slice(0, -1) }, bid), 'truncated csrf_token');
  assertRefused(await authorizePost({ ...fields, ...login }, undefined), 'no browser cookie');
  assertRefused(await authorizePost({ ...fields, ...login }, 'eo_bid=' + 'A'.repeat(43)), 'another browser cookie');
  // Another browser's own valid csrf token and cookie do not unlock this interaction.
  const other = await loginPage(app);
  assertRefused(await authorizePost({ interaction: fields.interaction, csrf_token: other.fields.csrf_token, ...login }, `eo_bid=${other.jar.cookies.get('eo_bid')}`), 'cross-browser token');
  // Control: everything right → consent page and a session cookie.
  const ok = await authorizePost({ ...fields, ...login }, bid);
  assert.equal(ok.status, 200, ok.body);
  assert.match(ok.body, /name="approve"/);
  assert.ok(ok.headers.getSetCookie().some((c) => c.startsWith('eo_sid=')));
});

test('(i) CSRF on the consent form: missing, wrong, or without the browser cookie → 400, no code', async () => {
  const app = await newApp();
  const user = await newUser();
  const { jar, fields } = await loginPage(app);
  const r = await authorizePost({ ...fields, username: user.username, password: user.password, login: '1' }, `eo_bid=${jar.cookies.get('eo_bid')}`);
  assert.equal(r.status, 200);
  const sid = r.headers.getSetCookie().find((c) => c.startsWith('eo_sid=')).split(';')[0];
  const consent = formFields(r.body);
  assert.ok(consent.interaction && consent.csrf_token);
  const both = `eo_bid=${jar.cookies.get('eo_bid')}; ${sid}`;
  assertRefused(await authorizePost({ interaction: consent.interaction, approve: '1' }, both), 'consent without csrf_token');
  assertRefused(await authorizePost({ ...consent, csrf_token: 'y'.repeat(43), approve: '1' }, both), 'consent with a wrong csrf_token');
  assertRefused(await authorizePost({ ...consent, approve: '1' }, sid), 'consent without the browser cookie');
  assertRefused(await authorizePost({ ...consent, approve: '1' }, undefined), 'consent without any cookie');
  // The login form's token does not work for the consent interaction.
  assertRefused(await authorizePost({ interaction: consent.interaction, csrf_token: fields.csrf_token, approve: '1' }, both), 'login token on consent');
  // Control: the real form approves and redirects with a code.
  const ok = await authorizePost({ ...consent, approve: '1' }, both);
  assert.equal(ok.status, 303, ok.body);
  assert.ok(new URL(ok.location).searchParams.get('code'));
});

test('(j) open redirect: every near-miss redirect_uri is a 400 page, never a redirect', async () => {
  const registered = 'https://app.example.com/cb';
  const app = await newApp({ callback_urls: [registered, 'http://127.0.0.1:9/cb'] });
  const variants = [
    'https://app.example.com/cb/extra',
    'https://app.example.com/cb/../evil',
    'https://app.example.com/cb?next=https://evil.example',
    'https://app.example.com/cb#frag',
    'https://app.example.com:8443/cb',
    'https://app.example.com:443/cb',
    'https://APP.example.com/cb',
    'https://app.example.com/CB',
    'https://app.example.com/cb/',
    'http://app.example.com/cb',
    'https://app.example.com.evil.example/cb',
    'https://evil.example/cb',
    'https://user@app.example.com/cb',
    '//evil.example/cb',
    // Updated: 'http://127.0.0.1:10/cb' is no near miss any more. Loopback IP redirect URIs
    // match with any port (RFC 8252 §7.3); hardening.test.mjs 6.11 pins that rule. Path and
    // query still have to match exactly:
    'http://127.0.0.1:10/cb2',
    'http://127.0.0.1:10/cb?x=1',
    'http://localhost:9/cb',
    'javascript:alert(1)',
  ];
  for (const redirect_uri of variants) {
    const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri, state: 's' });
    assert.equal(r.status, 400, `${redirect_uri}: ${r.status} ${r.location}`);
    assert.ok(r.status < 300 || r.status >= 400);
    assert.equal(r.location, null, redirect_uri);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/, redirect_uri);
    assert.ok(r.body.startsWith('error=redirect_uri_mismatch'), `${redirect_uri}: ${r.body}`);
    const parsed = new URLSearchParams(r.body);
    assert.equal(parsed.get('error'), 'redirect_uri_mismatch');
    assert.equal(parsed.get('error_description'), 'redirect_uri must match configuration');
  }
  // No redirect_uri at all is an error page too.
  const missing = await authorizeGet({ response_type: 'code', client_id: app.client_id });
  assert.equal(missing.status, 400);
  assert.equal(missing.location, null);
  assert.equal(new URLSearchParams(missing.body).get('error'), 'redirect_uri_missing');
  // Errors after the redirect URI is known go back to the client, but never elsewhere: a bad
  // response_type with a bad redirect_uri is still a page.
  const both = await authorizeGet({ response_type: 'nope', client_id: app.client_id, redirect_uri: 'https://evil.example/cb' });
  assert.equal(both.status, 400);
  assert.equal(both.location, null);
  // Control: the exact registered URI gets the login page.
  const ok = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: registered });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /name="password"/);
});

test('(j) unknown client_id: a 400 text page error=invalid_client_id, never a redirect', async () => {
  for (const client_id of ['3MVG9unknownclient', 'x'.repeat(200)]) {
    const r = await authorizeGet({ response_type: 'code', client_id, redirect_uri: CB, state: 's' });
    assert.equal(r.status, 400);
    assert.equal(r.location, null);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    // salesforce-reference.md §0.5: the literal page body clients scrape (%20, not +).
    assert.equal(r.body, 'error=invalid_client_id&error_description=client%20identifier%20invalid');
    assert.equal(decodeURIComponent(r.body.split('error_description=')[1]), 'client identifier invalid');
    const parsed = new URLSearchParams(r.body);
    assert.equal(parsed.get('error'), 'invalid_client_id');
    assert.equal(parsed.get('error_description'), 'client identifier invalid');
  }
  const mismatch = await authorizeGet({ response_type: 'code', client_id: (await newApp()).client_id, redirect_uri: 'https://evil.example/cb' });
  assert.equal(mismatch.body, 'error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration');
});

test('(k) admin-approved app: not pre-authorized → invalid_app_access; pre-authorized → code, no consent', async () => {
  const app = await newApp({ permitted_users: 'admin_approved' });
  const user = await newUser();
  const refused = await getCode(app, user, { state: 'aa' });
  assert.equal(refused.status, 303);
  assert.equal(refused.error, 'invalid_app_access');
  assert.equal(refused.url.searchParams.get('error_description'), 'user is not admin approved to access this app');
  assert.equal(refused.state, 'aa');
  assert.equal(refused.code, null);
  assert.deepEqual(refused.pages, ['login']);

  const pre = await w.admin('POST', `/admin/apps/${app.client_id}/users/${user.user_id}`);
  assert.equal(pre.status, 200, pre.text);
  const granted = await getCode(app, user, { state: 'bb' });
  assert.equal(granted.status, 303);
  assert.ok(granted.code, granted.location);
  assert.equal(granted.state, 'bb');
  assert.deepEqual(granted.pages, ['login'], 'no consent page for a pre-authorized user');
  assert.equal((await exchange(app, granted.code)).status, 200);

  // Another user is still refused.
  const other = await newUser();
  assert.equal((await getCode(app, other)).error, 'invalid_app_access');
  // Pre-authorizing an unknown user or app is a 404.
  assert.equal((await w.admin('POST', `/admin/apps/${app.client_id}/users/005nosuchuser`)).status, 404);
  assert.equal((await w.admin('POST', `/admin/apps/nosuchapp/users/${user.user_id}`)).status, 404);
});

test('(l) a deactivated user loses access: userinfo 401, refresh invalid_grant, no login', async () => {
  const app = await newApp();
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.equal((await userinfo(t.access_token)).status, 200);
  const jar = new CookieJar();
  await getCode(app, user, {}, { jar });
  const del = await w.admin('DELETE', `/admin/users/${user.user_id}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.active, false);
  const u = await userinfo(t.access_token);
  assert.equal(u.status, 401, u.text);
  assert.equal(u.json.error, 'invalid_token');
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
  assert.deepEqual(await introspect(app, t.access_token), { active: false });
  // The browser session of the deactivated user no longer counts as logged in.
  const silent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'x' }, jar);
  assertErrorRedirect(silent, 'login_required', 'x');
  // And the password no longer logs in: the login page is shown again, no code.
  const again = await getCode(app, user);
  assert.equal(again.status, 401, 'the login page is shown again, as a failed login');
  assert.equal(again.code ?? null, null);
  assert.ok(again.pages.length > 0 && again.pages.every((p) => p === 'login'), `${again.pages}`);
});
