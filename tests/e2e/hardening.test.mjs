// Hardening of the protocol surface, against the real worker (wrangler dev → workerd, local KV
// and D1). Each test name starts with the item it pins. Throttling is in
// hardening-throttle.test.mjs; workers with other configuration (an https ISSUER, broken
// signing keys) are in hardening-workers.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, tokenRequest, pkcePair, CookieJar, formFields, cookieAttrs } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'correct horse battery';
const LIMIT = 65536;
const TOKEN = '/services/oauth2/token';
const REVOKE = '/services/oauth2/revoke';
const INTROSPECT = '/services/oauth2/introspect';
const USERINFO = '/services/oauth2/userinfo';
const AUTHZ = '/services/oauth2/authorize';

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

// ------------------------------------------------------------------------------------ helpers

async function newApp(overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `hardening app ${++seq}`,
    callback_urls: [CB],
    scopes: ['api', 'openid', 'refresh_token', 'profile', 'email'],
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser() {
  const username = `hardening-user-${++seq}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Hardening User ${seq}` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

function creds(app) {
  return { client_id: app.client_id, client_secret: app.client_secret };
}

async function getCode(app, user, params = {}, opts = {}) {
  return authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'st-' + seq, ...params },
    { username: user.username, password: user.password, ...opts },
  );
}

async function exchange(app, code, extra = {}) {
  return tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, ...creds(app), ...extra });
}

/** Code → tokens (with PKCE), asserting success. */
async function tokensFor(app, user, params = {}, opts = {}) {
  const { verifier, challenge } = pkcePair();
  const a = await getCode(app, user, { code_challenge: challenge, ...params }, opts);
  assert.ok(a.code, `no code: ${a.status} ${a.location ?? a.body}`);
  const t = await exchange(app, a.code, { code_verifier: verifier, redirect_uri: params.redirect_uri ?? CB });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

async function refresh(app, refreshToken, extra = {}) {
  return tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, ...creds(app), ...extra });
}

async function call(method, path, { headers = {}, form, query, body } = {}) {
  const url = new URL(w.baseUrl + path);
  if (query) url.search = new URLSearchParams(query).toString();
  const h = { ...headers };
  let b = body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    b = new URLSearchParams(form).toString();
  }
  const r = await fetch(url, { method, headers: h, body: b, redirect: 'manual' });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, text, json, headers: r.headers, location: r.headers.get('location') };
}

const userinfo = (token) => call('GET', USERINFO, { headers: { authorization: `Bearer ${token}` } });

async function introspect(app, token) {
  const r = await call('POST', INTROSPECT, { form: { token, ...creds(app) } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function assertOAuthError(r, status, error) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json, `JSON error body expected, got ${r.text}`);
  assert.equal(r.json.error, error, r.text);
}

function assertBearerRefused(r, what) {
  assert.equal(r.status, 401, `${what}: ${r.text}`);
  assert.match(r.headers.get('www-authenticate') ?? '', /invalid_token/, what);
}

async function authorizeGet(params, jar) {
  const headers = jar ? { cookie: jar.header() } : {};
  const r = await fetch(`${w.baseUrl}${AUTHZ}?${new URLSearchParams(params)}`, { headers, redirect: 'manual' });
  if (jar) jar.store(r);
  return { status: r.status, location: r.headers.get('location'), headers: r.headers, body: await r.text() };
}

async function authorizePost(fields, jar) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (jar) headers.cookie = jar.header();
  const r = await fetch(`${w.baseUrl}${AUTHZ}`, { method: 'POST', headers, body: new URLSearchParams(fields), redirect: 'manual' });
  if (jar) jar.store(r);
  return { status: r.status, location: r.headers.get('location'), headers: r.headers, body: await r.text() };
}

/** Asserts an error redirect back to `cb` with `error` (and `state`). */
function assertErrorRedirect(r, error, state, cb = CB) {
  assert.ok(r.status === 302 || r.status === 303, `${r.status} ${r.body}`);
  const url = new URL(r.location);
  assert.equal(url.origin + url.pathname, cb);
  assert.equal(url.searchParams.get('error'), error, r.location);
  assert.equal(url.searchParams.get('code'), null);
  if (state !== undefined) assert.equal(url.searchParams.get('state'), state, r.location);
  return url;
}

/** An unredirectable authorize error: a 400 text page `error=…`, never a Location. */
function assertErrorPage(r, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.location ?? ''} ${r.body.slice(0, 200)}`);
  assert.equal(r.location, null, `${what}: no redirect`);
  assert.ok(r.body.startsWith('error='), `${what}: ${r.body.slice(0, 200)}`);
}

/** From a login page: log in, approve if asked; returns the final redirect. */
async function completeLogin(page, jar, user) {
  assert.equal(page.status, 200, page.body);
  assert.match(page.body, /name="password"/);
  let r = await authorizePost({ ...formFields(page.body), username: user.username, password: user.password, login: '1' }, jar);
  if (r.status === 200 && r.body.includes('name="approve"')) r = await authorizePost({ ...formFields(r.body), approve: '1' }, jar);
  assert.equal(r.status, 303, r.body);
  return new URL(r.location);
}

// -------------------------------------------------------------------- 1. body size limit

/** A form body of exactly `size` bytes: `prefix` plus an ignored padding parameter. */
function formOfSize(prefix, size) {
  const head = `${prefix}&pad=`;
  assert.ok(size > head.length);
  return head + 'a'.repeat(size - head.length);
}

function assertTooLarge(r, what) {
  assert.equal(r.status, 413, `${what}: ${r.status} ${r.text?.slice(0, 200)}`);
  assert.ok(r.json, `${what}: JSON body expected, got ${r.text?.slice(0, 200)}`);
  assert.equal(r.json.error, 'invalid_request', what);
  assert.match(r.json.error_description ?? '', /too large/i, what);
}

test('6.1 a form body over 65536 bytes (Content-Length) is 413 invalid_request "too large" at token, revoke and introspect', async () => {
  const app = await newApp();
  const prefix = `grant_type=refresh_token&refresh_token=junk&token=junk&${new URLSearchParams(creds(app))}`;
  for (const path of [TOKEN, REVOKE, INTROSPECT]) {
    for (const size of [LIMIT + 1, 200 * 1024]) {
      const body = formOfSize(prefix, size);
      assert.equal(Buffer.byteLength(body), size);
      const r = await call('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      assertTooLarge(r, `${path} ${size}`);
      assert.match(r.headers.get('cache-control') ?? '', /no-store/, path);
    }
  }
});

test('6.1 an admin JSON body over 65536 bytes is 413 with error invalid_request', async () => {
  const raw = JSON.stringify({ name: 'n'.repeat(LIMIT + 10), callback_urls: [CB], scopes: ['api'] });
  const r = await w.admin('POST', '/admin/apps', undefined, { raw });
  assert.equal(r.status, 413, r.text.slice(0, 200));
  assert.equal(r.json?.error, 'invalid_request', r.text.slice(0, 200));
  const list = await w.admin('GET', '/admin/apps');
  assert.ok(!list.json.apps.some((a) => a.name.length > 1000), 'nothing was created');
});

/** POSTs `chunks` with Transfer-Encoding: chunked (no Content-Length) through node:http. */
function chunkedPost(path, chunks, contentType = 'application/x-www-form-urlencoded') {
  const { hostname, port } = new URL(w.baseUrl);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ hostname, port, path, method: 'POST', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', (e) => { if (!answered) reject(e); });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

test('6.1 a chunked body over 65536 bytes without Content-Length is 413', async () => {
  const app = await newApp();
  const head = `grant_type=refresh_token&refresh_token=junk&token=junk&${new URLSearchParams(creds(app))}&pad=`;
  const chunks = [head, ...Array.from({ length: 5 }, () => 'b'.repeat(16 * 1024))];
  assert.ok(chunks.reduce((n, c) => n + Buffer.byteLength(c), 0) > LIMIT);
  // One after another over node's keep-alive agent: a refused body must not leave the
  // connection unusable for the next request (wrangler's proxy then answers 503).
  for (const path of [TOKEN, REVOKE, INTROSPECT, '/admin/apps']) {
    const r = await chunkedPost(path, chunks);
    assert.equal(r.status, 413, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  // Control: a small chunked body is read normally (a junk refresh token is invalid_grant).
  const small = await chunkedPost(TOKEN, [`grant_type=refresh_token&refresh_token=junk&`, `${new URLSearchParams(creds(app))}`]);
  assert.equal(small.status, 400, small.text);
  assert.equal(JSON.parse(small.text).error, 'invalid_grant');
});

test('6.1 a multipart/form-data body over 65536 bytes is 413 (text field or file part)', async () => {
  const app = await newApp();
  const base = () => {
    const fd = new FormData();
    fd.set('grant_type', 'refresh_token');
    fd.set('refresh_token', 'junk');
    fd.set('client_id', app.client_id);
    fd.set('client_secret', app.client_secret);
    return fd;
  };
  const text = base();
  text.set('pad', 'c'.repeat(LIMIT + 1000));
  const file = base();
  file.set('upload', new Blob(['d'.repeat(LIMIT + 1000)]), 'pad.txt');
  for (const [what, fd] of [['text field', text], ['file part', file]]) {
    const r = await fetch(w.baseUrl + TOKEN, { method: 'POST', body: fd });
    const body = await r.text();
    assert.equal(r.status, 413, `${what}: ${r.status} ${body.slice(0, 200)}`);
  }
  // Control: a small multipart body is read normally.
  const r = await fetch(w.baseUrl + TOKEN, { method: 'POST', body: base() });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error, 'invalid_grant');
});

test('6.1 a body of exactly 65536 bytes is not refused for size (normal token/revoke answers)', async () => {
  const app = await newApp();
  const tokenBody = formOfSize(`grant_type=refresh_token&refresh_token=junk&${new URLSearchParams(creds(app))}`, LIMIT);
  assert.equal(Buffer.byteLength(tokenBody), LIMIT);
  const t = await call('POST', TOKEN, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tokenBody });
  assertOAuthError(t, 400, 'invalid_grant');
  const wrongSecret = formOfSize(`grant_type=refresh_token&refresh_token=junk&client_id=${app.client_id}&client_secret=wrong`, LIMIT);
  assertOAuthError(await call('POST', TOKEN, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: wrongSecret }), 401, 'invalid_client');
  const rv = await call('POST', REVOKE, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formOfSize('token=junk', LIMIT) });
  assert.equal(rv.status, 200, rv.text);
});

// ------------------------------------------------------- 3. JWT access tokens vs ID tokens

test('6.3 a JWT access token has typ at+jwt and aud = issuer (not the client id); jose tells it apart from the ID token', async () => {
  const app = await newApp({ jwt_access_tokens: true, scopes: ['api', 'openid', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.equal(t.token_format, 'jwt');
  assert.ok(t.id_token, 'openid was granted');
  const issuer = t.instance_url;
  assert.equal(issuer, w.baseUrl);

  const header = decodeProtectedHeader(t.access_token);
  assert.equal(header.typ, 'at+jwt', `access token header ${JSON.stringify(header)}`);
  assert.equal(decodeProtectedHeader(t.id_token).typ, 'JWT', 'the ID token keeps typ JWT');
  const claims = decodeJwt(t.access_token);
  const auds = [].concat(claims.aud);
  assert.ok(auds.length >= 1 && auds.every((a) => a === issuer), `aud ${JSON.stringify(claims.aud)}`);
  assert.ok(!auds.includes(app.client_id), 'the client id is not an audience of the access token');
  assert.equal(claims.client_id, app.client_id);
  assert.ok(Array.isArray(claims.scp), 'scp is an array');
  assert.deepEqual([...claims.scp].sort(), ['api', 'openid', 'refresh_token']);
  for (const c of ['jti', 'iss', 'sub', 'exp', 'iat']) assert.ok(claims[c] !== undefined, `claim ${c}`);
  assert.equal(claims.iss, issuer);
  assert.equal(claims.sub, t.id);

  const jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
  // A relying party checking for an ID token (audience = its client id) refuses it.
  await assert.rejects(jwtVerify(t.access_token, jwks, { audience: app.client_id }), /aud/i);
  // A resource server checking for an access token accepts it...
  const ok = await jwtVerify(t.access_token, jwks, { audience: issuer, issuer, typ: 'at+jwt' });
  assert.equal(ok.payload.client_id, app.client_id);
  // ...and refuses the ID token.
  await assert.rejects(jwtVerify(t.id_token, jwks, { typ: 'at+jwt' }), /typ/i);
  // Control: the ID token is still a valid ID token.
  await jwtVerify(t.id_token, jwks, { audience: app.client_id, issuer, typ: 'JWT' });
  // The JWT access token works as a bearer token.
  const u = await userinfo(t.access_token);
  assert.equal(u.status, 200, u.text);
});

test('6.3 an ID token presented as a bearer token is refused at userinfo and the identity URL, and introspects inactive', async () => {
  const app = await newApp({ jwt_access_tokens: true, scopes: ['api', 'openid', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  assertBearerRefused(await userinfo(t.id_token), 'userinfo');
  assertBearerRefused(await call('GET', new URL(t.id).pathname, { headers: { authorization: `Bearer ${t.id_token}` } }), 'identity URL');
  assert.deepEqual(await introspect(app, t.id_token), { active: false });
  // Control: the access token is live everywhere.
  assert.equal((await call('GET', new URL(t.id).pathname, { headers: { authorization: `Bearer ${t.access_token}` } })).status, 200);
  assert.equal((await introspect(app, t.access_token)).active, true);
});

// ------------------------------------------- 4. introspection applies refresh policy / family

test('6.4 introspection applies the app\'s refresh_token_policy: after a switch to "zero" the refresh token is inactive', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.ok(t.refresh_token);
  const before = await introspect(app, t.refresh_token);
  assert.equal(before.active, true);
  assert.equal(before.token_type, 'refresh_token');
  const p = await w.admin('PATCH', `/admin/apps/${app.client_id}`, { refresh_token_policy: 'zero' });
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(await introspect(app, t.refresh_token), { active: false });
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
});

test('6.4 revoking a refresh token revokes its family: its access token introspects inactive too', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.equal((await introspect(app, t.access_token)).active, true);
  const r = await call('POST', REVOKE, { form: { token: t.refresh_token } });
  assert.equal(r.status, 200);
  assert.deepEqual(await introspect(app, t.refresh_token), { active: false });
  assert.deepEqual(await introspect(app, t.access_token), { active: false });
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
});

// ------------------------------------------------------ 5. authorization requests by POST

test('6.5 an authorization request by POST (OIDC Core §3.1.2.1) shows the login page and completes to a code', async () => {
  const app = await newApp();
  const user = await newUser();
  const jar = new CookieJar();
  const page = await authorizePost({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'post-st', scope: 'api refresh_token' }, jar);
  assert.equal(page.status, 200, page.body.slice(0, 300));
  assert.match(page.body, /name="password"/);
  const url = await completeLogin(page, jar, user);
  assert.equal(url.origin + url.pathname, CB);
  assert.equal(url.searchParams.get('state'), 'post-st');
  const code = url.searchParams.get('code');
  assert.ok(code, url.href);
  const t = await exchange(app, code);
  assert.equal(t.status, 200, t.text);
  assert.deepEqual(t.json.scope.split(' ').sort(), ['api', 'refresh_token']);

  // With the session and approval in place, the POST answers with a redirect carrying a code.
  const again = await authorizePost({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'post-2', scope: 'api refresh_token' }, jar);
  assert.ok(again.status === 302 || again.status === 303, `${again.status} ${again.body.slice(0, 200)}`);
  const u2 = new URL(again.location);
  assert.equal(u2.origin + u2.pathname, CB);
  assert.equal(u2.searchParams.get('state'), 'post-2');
  assert.ok(u2.searchParams.get('code'));
  assert.equal((await exchange(app, u2.searchParams.get('code'))).status, 200);
});

test('6.5 a POST authorization request with an unknown client_id is a 400 error page, not a redirect', async () => {
  const r = await authorizePost({ response_type: 'code', client_id: '3MVG9nosuchclient', redirect_uri: CB, state: 's' });
  assertErrorPage(r, 'unknown client');
  assert.equal(new URLSearchParams(r.body).get('error'), 'invalid_client_id');
});

test('6.5 the login/consent form POSTs still require the CSRF token and browser cookie', async () => {
  const app = await newApp();
  const user = await newUser();
  const jar = new CookieJar();
  const page = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'c' }, jar);
  assert.equal(page.status, 200);
  const fields = formFields(page.body);
  assert.ok(fields.interaction && fields.csrf_token);
  const login = { username: user.username, password: user.password, login: '1' };
  for (const [what, f, j] of [
    ['no csrf_token', { interaction: fields.interaction, ...login }, jar],
    ['wrong csrf_token', { ...fields, csrf_token: 'x'.repeat(43), ...login }, jar],
    ['no browser cookie', { ...fields, ...login }, undefined],
  ]) {
    const r = await authorizePost(f, j);
    assert.equal(r.status, 400, `${what}: ${r.status}`);
    assert.equal(r.location, null, what);
    assert.match(r.body, /^error=invalid_request/, what);
    assert.ok(!r.headers.getSetCookie().some((c) => /eo_sid=/.test(c)), `${what}: no session`);
  }
  // Control.
  const ok = await authorizePost({ ...fields, ...login }, jar);
  assert.equal(ok.status, 200, ok.body);
  assert.match(ok.body, /name="approve"/);
});

// ------------------------------------------------------------------ 6. refresh reuse grace

test('6.6 refresh_reuse_grace_s is an integer 0–60, default 0; the admin API refuses 61 and -1 naming the field', async () => {
  const base = { name: 'grace app', callback_urls: [CB], scopes: ['api', 'refresh_token'], rotate_refresh_tokens: true };
  for (const bad of [61, -1, 3600]) {
    const r = await w.admin('POST', '/admin/apps', { ...base, refresh_reuse_grace_s: bad });
    assert.equal(r.status, 400, `${bad}: ${r.text}`);
    assert.match(r.json.error_description, /refresh_reuse_grace_s/, `${bad}: ${r.text}`);
  }
  const dflt = await w.admin('POST', '/admin/apps', base);
  assert.equal(dflt.status, 201, dflt.text);
  assert.equal(dflt.json.refresh_reuse_grace_s, 0);
  const sixty = await w.admin('POST', '/admin/apps', { ...base, refresh_reuse_grace_s: 60 });
  assert.equal(sixty.status, 201, sixty.text);
  assert.equal(sixty.json.refresh_reuse_grace_s, 60);
  const patch = await w.admin('PATCH', `/admin/apps/${dflt.json.client_id}`, { refresh_reuse_grace_s: 61 });
  assert.equal(patch.status, 400, patch.text);
  assert.match(patch.json.error_description, /refresh_reuse_grace_s/);
  assert.equal((await w.admin('GET', `/admin/apps/${dflt.json.client_id}`)).json.refresh_reuse_grace_s, 0, 'the refused patch wrote nothing');
});

test('6.6 with refresh_reuse_grace_s 10, two parallel refreshes with one token both succeed, each with its own working successor', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'], rotate_refresh_tokens: true, refresh_reuse_grace_s: 10 });
  const user = await newUser();
  const t = await tokensFor(app, user);
  const [a, b] = await Promise.all([refresh(app, t.refresh_token), refresh(app, t.refresh_token)]);
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.ok(a.json.refresh_token && b.json.refresh_token, 'rotation issues new refresh tokens');
  assert.notEqual(a.json.refresh_token, b.json.refresh_token);
  assert.notEqual(a.json.refresh_token, t.refresh_token);
  assert.notEqual(b.json.refresh_token, t.refresh_token);
  const a2 = await refresh(app, a.json.refresh_token);
  assert.equal(a2.status, 200, a2.text);
  const b2 = await refresh(app, b.json.refresh_token);
  assert.equal(b2.status, 200, b2.text);
});

test('6.6 with grace 0 (default), two parallel refreshes: at most one wins and the whole family is revoked', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'], rotate_refresh_tokens: true });
  const user = await newUser();
  const t = await tokensFor(app, user);
  const results = await Promise.all([refresh(app, t.refresh_token), refresh(app, t.refresh_token)]);
  const ok = results.filter((r) => r.status === 200);
  assert.ok(ok.length <= 1, `at most one winner: ${results.map((r) => r.status)}`);
  for (const r of results.filter((x) => x.status !== 200)) assertOAuthError(r, 400, 'invalid_grant');
  for (const r of ok) assertOAuthError(await refresh(app, r.json.refresh_token), 400, 'invalid_grant');
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
  assert.deepEqual(await introspect(app, t.access_token), { active: false });
});

test('6.6 with grace 0, sequential reuse of a rotated-out refresh token is invalid_grant and revokes its successor', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'], rotate_refresh_tokens: true, refresh_reuse_grace_s: 0 });
  const user = await newUser();
  const t = await tokensFor(app, user);
  const r1 = await refresh(app, t.refresh_token);
  assert.equal(r1.status, 200, r1.text);
  assert.ok(r1.json.refresh_token);
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
  assertOAuthError(await refresh(app, r1.json.refresh_token), 400, 'invalid_grant');
  assertBearerRefused(await userinfo(r1.json.access_token), 'successor access token');
});

// ------------------------------------------------- 7. error_description character set

function assertRfc6749Description(desc, what) {
  assert.equal(typeof desc, 'string', `${what}: error_description present`);
  assert.ok(desc.length <= 256, `${what}: ${desc.length} characters`);
  for (const ch of desc) {
    const c = ch.codePointAt(0);
    const ok = c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
    assert.ok(ok, `${what}: U+${c.toString(16).padStart(4, '0')} in ${JSON.stringify(desc.slice(0, 300))}`);
  }
}

const WEIRD = 'api "<x>\\ é\nsecond line';
const WEIRD_LONG = 'api ' + '"<x>\\é\n'.repeat(715); // > 5000 characters, < 8 KiB

test('6.7 redirected authorize errors carry an error_description of RFC 6749 characters only, at most 256 long', async () => {
  const app = await newApp();
  const cases = [
    ['scope', { scope: WEIRD }, 'invalid_scope'],
    ['long scope', { scope: WEIRD_LONG }, 'invalid_scope'],
    ['prompt', { prompt: 'bogus"<x>\\é\n' }, 'invalid_request'],
    ['long prompt', { prompt: 'x"\\é\n'.repeat(1000) }, 'invalid_request'],
    ['code_challenge_method', { code_challenge: pkcePair().challenge, code_challenge_method: 'S"\\é\n256' }, 'invalid_request'],
  ];
  for (const [what, extra, error] of cases) {
    const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'd7', ...extra });
    const url = assertErrorRedirect(r, error, 'd7');
    assertRfc6749Description(url.searchParams.get('error_description'), what);
  }
});

test('6.7 token endpoint error_description is limited to RFC 6749 characters, at most 256 long', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  const cases = [
    ['refresh scope', await refresh(app, t.refresh_token, { scope: WEIRD }), 'invalid_scope'],
    ['long refresh scope', await refresh(app, t.refresh_token, { scope: WEIRD_LONG }), 'invalid_scope'],
    ['code grant with scope', await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: 'c"\\é\n'.repeat(100), scope: WEIRD_LONG, redirect_uri: CB, ...creds(app) }), 'invalid_grant'],
    ['grant_type', await tokenRequest(w.baseUrl, { grant_type: 'x"\\é\n'.repeat(1000), ...creds(app) }), 'unsupported_grant_type'],
  ];
  for (const [what, r, error] of cases) {
    assertOAuthError(r, 400, error);
    assertRfc6749Description(r.json.error_description, what);
  }
});

// ------------------------------------------------------------------- 8. tokens in URLs

test('6.8 userinfo refuses an access_token in the query; the identity URL takes oauth_token; Bearer and POST form work', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  const q = await call('GET', USERINFO, { query: { access_token: t.access_token } });
  assert.equal(q.status, 401, q.text);
  assert.equal(q.json?.error, 'invalid_token');
  const id = await call('GET', new URL(t.id).pathname, { query: { oauth_token: t.access_token } });
  assert.equal(id.status, 200, id.text);
  assert.equal(id.json.username, user.username);
  const bearer = await userinfo(t.access_token);
  assert.equal(bearer.status, 200, bearer.text);
  const form = await call('POST', USERINFO, { form: { access_token: t.access_token } });
  assert.equal(form.status, 200, form.text);
  assert.equal(form.json.preferred_username, user.username);
});

test('6.8 revocation by GET ?token= still answers 200 and revokes', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const t = await tokensFor(app, user);
  assert.equal((await introspect(app, t.access_token)).active, true);
  const r = await call('GET', REVOKE, { query: { token: t.access_token } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(await introspect(app, t.access_token), { active: false });
});

// ------------------------------------------------------------ 9. userinfo claims by scope

test('6.9 userinfo returns claims by granted scope (OIDC Core §5.4)', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token', 'openid', 'profile', 'email'] });
  const user = await newUser();
  const get = async (scope) => {
    const t = await tokensFor(app, user, { scope });
    assert.deepEqual(t.scope.split(' ').sort(), scope.split(' ').sort());
    const u = await userinfo(t.access_token);
    assert.equal(u.status, 200, u.text);
    return u.json;
  };
  const plain = await get('api refresh_token');
  for (const c of ['sub', 'user_id', 'organization_id', 'preferred_username']) assert.ok(plain[c], `${c} with api refresh_token`);
  assert.equal(plain.preferred_username, user.username);
  assert.equal(plain.email, undefined, 'no email without the email scope');
  assert.equal(plain.name, undefined, 'no name without the profile scope');
  const full = await get('openid profile email api');
  assert.equal(full.name, user.name);
  assert.equal(full.email, user.email);
  const profile = await get('openid profile');
  assert.equal(profile.name, user.name);
  assert.equal(profile.email, undefined, 'no email without the email scope');
});

// ---------------------------------------------------------- 10. public clients always rotate

test('6.10 a public refresh client (secret_required_refresh false) must rotate refresh tokens', async () => {
  const base = { name: 'public app', callback_urls: [CB], scopes: ['api', 'refresh_token'] };
  for (const body of [{ ...base, secret_required_refresh: false }, { ...base, secret_required_refresh: false, rotate_refresh_tokens: false }]) {
    const r = await w.admin('POST', '/admin/apps', body);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error_description, /secret_required_refresh/);
    assert.match(r.json.error_description, /rotate_refresh_tokens/);
  }
  const pub = await w.admin('POST', '/admin/apps', { ...base, secret_required_refresh: false, rotate_refresh_tokens: true });
  assert.equal(pub.status, 201, pub.text);
  const off = await w.admin('PATCH', `/admin/apps/${pub.json.client_id}`, { rotate_refresh_tokens: false });
  assert.equal(off.status, 400, off.text);
  assert.match(off.json.error_description, /rotate_refresh_tokens/);

  const conf = await w.admin('POST', '/admin/apps', base);
  assert.equal(conf.status, 201);
  const p = await w.admin('PATCH', `/admin/apps/${conf.json.client_id}`, { secret_required_refresh: false });
  assert.equal(p.status, 400, p.text);
  assert.match(p.json.error_description, /secret_required_refresh/);
  assert.match(p.json.error_description, /rotate_refresh_tokens/);
  const after = await w.admin('GET', `/admin/apps/${conf.json.client_id}`);
  assert.equal(after.json.secret_required_refresh, true, 'the refused patch wrote nothing');
  const both = await w.admin('PATCH', `/admin/apps/${conf.json.client_id}`, { secret_required_refresh: false, rotate_refresh_tokens: true });
  assert.equal(both.status, 200, both.text);
});

// ------------------------------------------------------- 6.11 loopback redirect URIs, any port

const LOOPBACK_APP = { callback_urls: ['http://127.0.0.1:9/cb', 'http://[::1]:9/cb', 'http://localhost:9/cb'] };

test('6.11 a loopback IP redirect URI matches with any port (RFC 8252 §7.3); the code is bound to the port used', async () => {
  const app = await newApp(LOOPBACK_APP);
  const user = await newUser();
  const cb = 'http://127.0.0.1:54321/cb';
  const page = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: cb });
  assert.equal(page.status, 200, page.body.slice(0, 200));
  assert.match(page.body, /name="password"/);
  const a = await getCode(app, user, { redirect_uri: cb, state: 'lb' });
  assert.ok(a.code, `${a.status} ${a.location ?? a.body}`);
  assert.equal(a.url.origin + a.url.pathname, cb);
  assert.equal(a.state, 'lb');
  const ok = await exchange(app, a.code, { redirect_uri: cb });
  assert.equal(ok.status, 200, ok.text);

  const b = await getCode(app, user, { redirect_uri: cb });
  assert.ok(b.code);
  for (const other of ['http://127.0.0.1:54322/cb', 'http://127.0.0.1:9/cb']) {
    assertOAuthError(await exchange(app, b.code, { redirect_uri: other }), 400, 'redirect_uri_mismatch');
  }
  assert.equal((await exchange(app, b.code, { redirect_uri: cb })).status, 200, 'the mismatches did not burn the code');

  const v6 = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: 'http://[::1]:54321/cb' });
  assert.equal(v6.status, 200, v6.body.slice(0, 200));
  assert.match(v6.body, /name="password"/);
});

test('6.11 loopback port leeway covers neither path, query nor the name localhost', async () => {
  const app = await newApp(LOOPBACK_APP);
  for (const redirect_uri of ['http://127.0.0.1:54321/cb2', 'http://127.0.0.1:54321/cb?x=1', 'http://127.0.0.1:54321/cb/', 'http://localhost:54321/cb', 'https://127.0.0.1:54321/cb', 'http://[::1]:54321/cb2']) {
    const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri, state: 's' });
    assertErrorPage(r, redirect_uri);
    assert.equal(new URLSearchParams(r.body).get('error'), 'redirect_uri_mismatch', redirect_uri);
  }
  // localhost still matches exactly.
  const exact = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: 'http://localhost:9/cb' });
  assert.equal(exact.status, 200);
});

// -------------------------------------------------------------- 6.12 request objects

test('6.12 request and request_uri parameters are refused with request_not_supported / request_uri_not_supported', async () => {
  const app = await newApp();
  const jwt = 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImFwaSJ9.';
  const r1 = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'ro-1', request: jwt });
  assertErrorRedirect(r1, 'request_not_supported', 'ro-1');
  const r2 = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'ro-2', request_uri: 'https://client.example/request.jwt' });
  assertErrorRedirect(r2, 'request_uri_not_supported', 'ro-2');
});

// ------------------------------------- 6.13 password change / deactivation end sessions

async function loggedInWithTokens() {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const jar = new CookieJar();
  const t = await tokensFor(app, user, {}, { jar });
  assert.ok(t.refresh_token);
  // The session works silently before the change.
  const silent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'pre' }, jar);
  assert.ok(new URL(silent.location).searchParams.get('code'), silent.location);
  return { app, user, jar, t };
}

async function assertLoggedOutAndRevoked({ app, jar, t }, what) {
  const silent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'post' }, jar);
  assertErrorRedirect(silent, 'login_required', 'post');
  assertOAuthError(await refresh(app, t.refresh_token), 400, 'invalid_grant');
  assertBearerRefused(await userinfo(t.access_token), `${what}: old access token`);
}

test('6.13 a password change ends the user\'s sessions and refresh token families', async () => {
  const s = await loggedInWithTokens();
  const p = await w.admin('PATCH', `/admin/users/${s.user.user_id}`, { password: 'a new password 123' });
  assert.equal(p.status, 200, p.text);
  await assertLoggedOutAndRevoked(s, 'password change');
  // The new password logs in.
  const again = await getCode(s.app, { ...s.user, password: 'a new password 123' });
  assert.ok(again.code, `${again.status}`);
});

test('6.13 deactivation ends sessions and tokens, and reactivation does not revive them', async () => {
  const s = await loggedInWithTokens();
  const off = await w.admin('PATCH', `/admin/users/${s.user.user_id}`, { active: false });
  assert.equal(off.status, 200, off.text);
  await assertLoggedOutAndRevoked(s, 'deactivation');
  const on = await w.admin('PATCH', `/admin/users/${s.user.user_id}`, { active: true });
  assert.equal(on.status, 200, on.text);
  assert.equal(on.json.active, true);
  await assertLoggedOutAndRevoked(s, 'reactivation');
  // The user can log in afresh.
  const again = await getCode(s.app, s.user);
  assert.ok(again.code, `${again.status}`);
});

// ------------------------------------------------------------------------- 6.14 cookies


test('6.14 on plain-http loopback the login sets eo_sid and eo_bid: Path=/, HttpOnly, SameSite=Lax, no Domain, no Secure', async () => {
  const app = await newApp();
  const user = await newUser();
  const first = await fetch(`${w.baseUrl}${AUTHZ}?${new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB })}`);
  const bid = first.headers.getSetCookie().map(cookieAttrs).find((c) => c.name === 'eo_bid');
  assert.ok(bid, `eo_bid set: ${first.headers.getSetCookie()}`);
  const jar = new CookieJar();
  jar.store(first);
  const login = await authorizePost({ ...formFields(await first.text()), username: user.username, password: user.password, login: '1' }, jar);
  assert.equal(login.status, 200, login.body);
  const sid = login.headers.getSetCookie().map(cookieAttrs).find((c) => c.name === 'eo_sid');
  assert.ok(sid, `eo_sid set: ${login.headers.getSetCookie()}`);
  for (const c of [bid, sid]) {
    assert.equal(c.attrs.get('path'), '/', c.name);
    assert.equal(c.attrs.get('httponly'), true, c.name);
    assert.equal(String(c.attrs.get('samesite')).toLowerCase(), 'lax', c.name);
    assert.ok(!c.attrs.has('domain'), `${c.name}: no Domain`);
    assert.ok(!c.attrs.has('secure'), `${c.name}: no Secure on plain-http loopback`);
  }
});

// ------------------------------------------------------------------ 6.15 admin bounds

test('6.15 the admin API refuses out-of-range refresh_token_policy durations and access_token_ttl_s', async () => {
  const head = `{"name":"bounds","callback_urls":["${CB}"],"scopes":["api","refresh_token"]`;
  for (const tail of [
    '"refresh_token_policy":{"lifetime_s":1e20}',
    '"refresh_token_policy":{"lifetime_s":100000000000000000000}',
    '"refresh_token_policy":{"inactivity_s":18446744073709551615}',
    '"refresh_token_policy":{"lifetime_s":18446744073709551615}',
    '"refresh_token_policy":{"lifetime_s":0}',
    '"access_token_ttl_s":1e12',
    '"access_token_ttl_s":1000000000000',
  ]) {
    const r = await w.admin('POST', '/admin/apps', undefined, { raw: `${head},${tail}}` });
    assert.equal(r.status, 400, `${tail}: ${r.text}`);
  }
  const ok = await w.admin('POST', '/admin/apps', undefined, { raw: `${head},"refresh_token_policy":{"lifetime_s":3600}}` });
  assert.equal(ok.status, 201, ok.text);
  assert.deepEqual(ok.json.refresh_token_policy, { lifetime_s: 3600 });
  const p = await w.admin('PATCH', `/admin/apps/${ok.json.client_id}`, undefined, { raw: '{"refresh_token_policy":{"inactivity_s":18446744073709551615}}' });
  assert.equal(p.status, 400, p.text);
});

// ---------------------------------------------------------------------- 6.16 max_age=0

test('6.16 max_age=0 always forces a fresh login, right after one', async () => {
  const app = await newApp();
  const user = await newUser();
  const jar = new CookieJar();
  const first = await getCode(app, user, {}, { jar });
  assert.ok(first.code);
  // Control: without max_age the session is used.
  const silent = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB }, jar);
  assert.ok(new URL(silent.location).searchParams.get('code'));
  const r = await authorizeGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, max_age: '0' }, jar);
  assert.equal(r.status, 200, `${r.status} ${r.location}`);
  assert.match(r.body, /name="password"/);
  assert.equal(r.location, null);
});
