// Checklist section C: RFC 9700 (OAuth 2.0 Security BCP) items binding on the authorization
// server, one test per applicable item, over HTTP against the real worker (one worker for the
// file). Items answered elsewhere: C.120 / C.132 / C.136 headers / C.137 in
// tests/conformance/http-hardening.test.mjs, C.135 races in tests/conformance/races.test.mjs,
// C.139 in throttling.test.mjs (it needs a rate-limit window). docs/security.md has the table.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { startTestWorker } from '../e2e/harness.mjs';
import { parseForms, fragmentOf, queryOf, baseOf } from '../e2e/ua-helpers.mjs';
import {
  CB, CLIENT_ASSERTION_TYPE, newApp, newUser, setting, call, postForm, token, introspect, userinfo, basic,
  discovery, assertOAuthError, loginBrowser, codeFor, exchange, refresh, ccApp, ccToken, mintIat,
  register, jwtPayload, pkcePair, nowS, assertNoPanic, uniq,
} from './cg-support.mjs';

let w;
let issuer;
let app; // the file's confidential app, approved by `user` in `jar`
let user;
let jar;

before(async () => {
  w = await startTestWorker();
  issuer = (await discovery(w)).issuer;
  app = await newApp(w, { callback_urls: [CB, 'https://app.example.com/cb'] });
  user = await newUser(w, 'c');
  ({ jar } = await loginBrowser(w, app, user));
});

after(async () => {
  if (w) {
    assertNoPanic(w);
    await w.stop();
  }
});

/** A GET of the authorization endpoint (no cookies unless `jar`). */
const authzGet = (params, opts = {}) => call(w, `/services/oauth2/authorize?${new URLSearchParams(params)}`, opts);

function assertErrorPage(r, error, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.location ?? ''} ${r.text.slice(0, 200)}`);
  assert.equal(r.location, null, `${what}: never a redirect`);
  assert.equal(new URLSearchParams(r.text).get('error'), error, `${what}: ${r.text.slice(0, 200)}`);
}

// ----------------------------------------------------------------------------------- C.118

test('C.118 redirect URIs match by exact string; only a loopback IP literal may change its port, and the code stays bound to the port used', async () => {
  const near = [
    'https://app.example.com/cb/', 'https://app.example.com/CB', 'https://APP.example.com/cb', 'https://app.example.com:443/cb',
    'https://app.example.com/cb?x=1', 'https://app.example.com/cb#f', 'https://app.example.com/cb/../cb', 'https://app.example.com/%63b',
    'http://app.example.com/cb', 'https://app.example.com.evil.example/cb', 'https://evil.example/?https://app.example.com/cb',
    'http://localhost:9/cb', 'http://[::1]:9/cb', 'http://127.0.0.1:9/cb/', 'http://127.0.0.1:10/cb2', 'http://127.0.0.2:9/cb',
  ];
  for (const redirect_uri of near) {
    assertErrorPage(await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri, state: 's' }, { jar }), 'redirect_uri_mismatch', redirect_uri);
  }
  // The registered ones, byte for byte, work (with the session: straight back with a code).
  for (const redirect_uri of ['https://app.example.com/cb', CB]) {
    const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri, state: 's' }, { jar });
    assert.equal(r.status, 302, `${redirect_uri}: ${r.text.slice(0, 200)}`);
    assert.equal(baseOf(r.location), redirect_uri);
    assert.ok(queryOf(r.location).get('code'));
  }
  // RFC 8252 §7.3 / RFC 9700 §2.1: a loopback IP literal with another port.
  const moved = 'http://127.0.0.1:5555/cb';
  const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: moved, state: 'p' }, { jar });
  assert.equal(r.status, 302, r.text);
  assert.equal(baseOf(r.location), moved);
  const code = queryOf(r.location).get('code');
  assertOAuthError(await exchange(w, app, code, { redirect_uri: CB }), 400, 'redirect_uri_mismatch', 'the registered port instead of the one used');
  const ok = await exchange(w, app, code, { redirect_uri: moved });
  assert.equal(ok.status, 200, ok.text);
});

// ----------------------------------------------------------------------------------- C.119

test('C.119 no open redirector: unknown clients, unregistered URIs, frontdoor retURLs, stray paths and "next" parameters never send the browser elsewhere', async () => {
  const evil = 'https://evil.example/phish';
  // The authorization endpoint: every request whose client or redirect URI is not right is a page.
  const pages = [
    [{ response_type: 'code', client_id: 'no-such-client', redirect_uri: evil }, 'invalid_client_id'],
    [{ response_type: 'code', redirect_uri: evil }, 'invalid_client_id'],
    [{ response_type: 'code', client_id: app.client_id, redirect_uri: evil }, 'redirect_uri_mismatch'],
    [{ response_type: 'nonsense', client_id: app.client_id, redirect_uri: evil, scope: 'bogus' }, 'redirect_uri_mismatch'],
    [{ response_type: 'code', client_id: app.client_id, redirect_uri: evil, prompt: 'none' }, 'redirect_uri_mismatch'],
    [{ response_type: 'token', client_id: app.client_id, redirect_uri: evil }, 'redirect_uri_mismatch'],
  ];
  for (const [params, error] of pages) {
    assertErrorPage(await authzGet(params), error, JSON.stringify(params));
    assertErrorPage(await authzGet(params, { jar }), error, `${JSON.stringify(params)} with a session`);
  }
  // "continue"-style parameters are ignored: the answer goes to the registered callback only.
  const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'n', startURL: evil, retURL: evil, next: evil, returnTo: evil }, { jar });
  assert.equal(r.status, 302, r.text);
  assert.equal(baseOf(r.location), CB);
  // frontdoor.jsp: an absolute or protocol-relative retURL is a page, never a redirect.
  for (const retURL of [evil, '//evil.example/x', '/\\evil.example', 'https:evil.example', 'javascript:alert(1)']) {
    const f = await call(w, `/secur/frontdoor.jsp?${new URLSearchParams({ sid: 'x'.repeat(45), retURL })}`);
    assert.ok(f.status >= 400 && f.status < 500, `frontdoor retURL ${retURL}: ${f.status}`);
    assert.equal(f.location, null, `frontdoor retURL ${retURL}`);
  }
  // Stray paths (including ones a static-asset layer might "normalise") stay on this origin.
  for (const path of ['//evil.example/', '//evil.example/admin/', '/%2F%2Fevil.example/', '/admin/', '/admin.html', '/setup/connect?next=https://evil.example', '/services/oauth2/authorize/', '/secur/logout.jsp?retURL=https://evil.example']) {
    const s = await call(w, path);
    assert.ok(s.status < 500, `${path}: ${s.status}`);
    if (s.location) assert.equal(new URL(s.location, w.baseUrl).origin, new URL(w.baseUrl).origin, `${path} redirected to ${s.location}`);
  }
});

// ----------------------------------------------------------------------------------- C.121

test('C.121 PKCE: S256 advertised (no plain); a challenge needs its verifier; a verifier without a challenge is refused (downgrade); plain is refused', async () => {
  const meta = await discovery(w);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);

  const { verifier, challenge } = pkcePair();
  // Challenge sent, no verifier / a wrong one / the challenge itself as a "plain" verifier.
  const a = await codeFor(w, jar, app, { code_challenge: challenge });
  assertOAuthError(await exchange(w, app, a.code), 400, 'invalid_grant', 'no verifier');
  assertOAuthError(await exchange(w, app, a.code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant', 'wrong verifier');
  assertOAuthError(await exchange(w, app, a.code, { code_verifier: challenge }), 400, 'invalid_grant', 'challenge as verifier');
  assert.equal((await exchange(w, app, a.code, { code_verifier: verifier })).status, 200, 'the right verifier still works');
  // No challenge at authorize, a verifier at the token endpoint: the downgrade of RFC 9700 §4.8.2.
  const b = await codeFor(w, jar, app);
  assert.ok(b.code);
  assertOAuthError(await exchange(w, app, b.code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant', 'verifier without challenge');
  // plain, and unknown methods, are refused at authorize (redirected with state).
  for (const method of ['plain', 'S512', 's256x']) {
    const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'pk', code_challenge: verifier, code_challenge_method: method }, { jar });
    assert.equal(r.status, 302, r.text);
    assert.equal(queryOf(r.location).get('error'), 'invalid_request', `${method}: ${r.location}`);
    assert.equal(queryOf(r.location).get('code'), null);
    assert.equal(queryOf(r.location).get('state'), 'pk');
  }
});

// ----------------------------------------------------------------------------------- C.123

test('C.123 the implicit flow can be switched off for the org and is refused to registered clients that did not register it', async () => {
  const nonce = randomUUID();
  // On (Salesforce's default): tokens in the fragment.
  const on = await authzGet({ response_type: 'token', client_id: app.client_id, redirect_uri: CB, state: 'i1' }, { jar });
  assert.equal(on.status, 302, on.text);
  assert.ok(fragmentOf(on.location).get('access_token'), on.location);
  await setting(w, { allow_user_agent_flow: false });
  try {
    const meta = await discovery(w);
    for (const t of ['token', 'token id_token', 'hybrid_token']) assert.ok(!meta.response_types_supported.includes(t), `${t} still advertised`);
    for (const response_type of ['token', 'token id_token', 'hybrid_token']) {
      const r = await authzGet({ response_type, client_id: app.client_id, redirect_uri: CB, state: 'i2', nonce }, { jar });
      assert.equal(r.status, 302, r.text);
      const f = fragmentOf(r.location);
      assert.equal(f.get('error'), 'unsupported_response_type', `${response_type}: ${r.location}`);
      assert.equal(f.get('access_token'), null);
      assert.equal(f.get('state'), 'i2');
      assert.equal(queryOf(r.location).get('access_token'), null);
    }
  } finally {
    await setting(w, { allow_user_agent_flow: true });
  }
  // A self-registered client gets only the response types it registered (default: code).
  const reg = await register(w, { redirect_uris: [CB], client_name: 'code only' }, { iat: await mintIat(w) });
  assert.equal(reg.status, 201, reg.text);
  assert.deepEqual(reg.json.response_types, ['code']);
  // Before anyone logged in, a self-registered client hears it on the error page, not at its
  // own redirect URI (C.138, RFC 9700 §4.11.2).
  const r = await authzGet({ response_type: 'token', client_id: reg.json.client_id, redirect_uri: CB, state: 'i3' });
  assertErrorPage(r, 'unauthorized_client', 'response_type=token from a code-only registered client');
});

// ----------------------------------------------------------------------------------- C.125

test('C.125 public-client refresh tokens rotate; replaying a rotated one revokes the family; scope cannot widen; a tampered token is unknown', async () => {
  // The admin API refuses a public refresh client that would not rotate (RFC 9700 §2.2.2).
  const refused = await w.admin('POST', '/admin/apps', { name: 'no rotation', callback_urls: [CB], scopes: ['api', 'refresh_token'], secret_required_refresh: false });
  assert.equal(refused.status, 400, refused.text);
  assert.match(refused.json.error_description, /rotate_refresh_tokens/);
  const pub = await newApp(w, { secret_required_web_server: false, secret_required_refresh: false, rotate_refresh_tokens: true, scopes: ['api', 'refresh_token', 'openid'] });
  const { verifier, challenge } = pkcePair();
  const a = await codeFor(w, jar, pub, { code_challenge: challenge, scope: 'api refresh_token' }, user);
  assert.ok(a.code, `${a.status} ${a.location ?? a.body}`);
  const t0 = await token(w, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_id: pub.client_id, code_verifier: verifier });
  assert.equal(t0.status, 200, t0.text);
  const pubRefresh = (rt, extra = {}) => token(w, { grant_type: 'refresh_token', refresh_token: rt, client_id: pub.client_id, ...extra });
  // Integrity: one character changed is an unknown token, and the real one is unharmed.
  const rt0 = t0.json.refresh_token;
  const tampered = rt0.slice(0, -1) + (rt0.endsWith('A') ? 'B' : 'A');
  assertOAuthError(await pubRefresh(tampered), 400, 'invalid_grant', 'tampered');
  assertOAuthError(await pubRefresh(rt0, { scope: 'api refresh_token openid' }), 400, 'invalid_scope', 'widening to openid');
  const t1 = await pubRefresh(rt0);
  assert.equal(t1.status, 200, t1.text);
  assert.ok(t1.json.refresh_token && t1.json.refresh_token !== rt0, 'a new refresh token');
  const t2 = await pubRefresh(t1.json.refresh_token);
  assert.equal(t2.status, 200, t2.text);
  // Replay of rt0 (rotated out): reuse detected, the whole family ends.
  assertOAuthError(await pubRefresh(rt0), 400, 'invalid_grant', 'replayed rotated token');
  assertOAuthError(await pubRefresh(t2.json.refresh_token), 400, 'invalid_grant', 'the newest token after the replay');
  for (const at of [t0.json.access_token, t1.json.access_token, t2.json.access_token]) {
    assert.equal((await userinfo(w, at)).status, 401, 'every access token of the family is revoked');
  }
});

// ----------------------------------------------------------------------------------- C.126

test('C.126 access tokens are audience-restricted: resource (RFC 8707) becomes aud; unknown, fragment or two resources are refused', async () => {
  const uri = `https://api-${uniq()}.example.com/v1`;
  const res = await w.admin('POST', '/admin/resources', { uri, name: 'C126 API', scopes: ['api'] });
  assert.equal(res.status, 201, res.text);
  const { app: m2m } = await ccApp(w, { jwt_access_tokens: true });
  const withResource = await ccToken(w, m2m, { resource: uri, scope: 'api' });
  const claims = jwtPayload(withResource.access_token);
  assert.equal(claims.aud, uri, 'aud is the resource');
  assert.equal(claims.client_id, m2m.client_id);
  const info = await introspect(w, m2m, withResource.access_token);
  assert.equal(info.json.active, true, info.text);
  assert.equal(info.json.aud, uri);
  // Without resource: the issuer, never the client id.
  const plain = jwtPayload((await ccToken(w, m2m, { scope: 'api' })).access_token);
  assert.equal(plain.aud, issuer);
  const cc = (fields) => token(w, { grant_type: 'client_credentials', scope: 'api', ...fields }, { headers: basic(m2m.client_id, m2m.client_secret) });
  assertOAuthError(await cc({ resource: 'https://unknown.example/api' }), 400, 'invalid_target', 'unknown resource');
  assertOAuthError(await cc({ resource: `${uri}#frag` }), 400, 'invalid_target', 'fragment');
  const two = await token(w, new URLSearchParams([['grant_type', 'client_credentials'], ['resource', uri], ['resource', 'https://unknown.example/api']]), { headers: basic(m2m.client_id, m2m.client_secret) });
  assertOAuthError(two, 400, 'invalid_request', 'two resources');
  // A code bound to a resource cannot be exchanged for another one.
  const a = await codeFor(w, jar, app, { resource: uri, scope: 'api' });
  assert.ok(a.code, `${a.status} ${a.location ?? a.body}`);
  assertOAuthError(await exchange(w, app, a.code, { resource: issuer }), 400, 'invalid_target', 'another resource at the exchange');
});

// ----------------------------------------------------------------------------------- C.127

test('C.127 the password grant is off by default (not advertised, refused like bad credentials even with the right password); when on, its tokens are audited', async () => {
  assert.equal((await w.admin('GET', '/admin/settings')).json.allow_username_password_flow, false, 'off by default');
  assert.ok(!(await discovery(w)).grant_types_supported.includes('password'));
  const ip = '192.0.2.127';
  const pw = (a, fields = {}) => token(w, { grant_type: 'password', username: user.username, password: user.password, client_id: a.client_id, client_secret: a.client_secret, ...fields }, { ip });
  const off = await pw(app);
  assertOAuthError(off, 400, 'invalid_grant', 'off, right password');
  assert.equal(off.json.error_description, 'authentication failure');
  await setting(w, { allow_username_password_flow: true });
  try {
    assert.ok((await discovery(w)).grant_types_supported.includes('password'));
    const ok = await pw(app); // the app's scopes include refresh_token
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.refresh_token, undefined, 'no refresh token from the password grant');
    // The issuance is on the audit trail (kind token, the client, the grant type).
    // Audit rows are written after the response (waitUntil): look a few times.
    let events = [];
    for (let i = 0; i < 20 && !events.some((e) => e.detail === 'password'); i++) {
      if (i) await new Promise((r) => setTimeout(r, 150));
      const audit = await w.admin('GET', `/admin/audit?kind=token&client=${encodeURIComponent(app.client_id)}`);
      assert.equal(audit.status, 200, audit.text);
      events = audit.json.events;
    }
    assert.ok(events.some((e) => e.detail === 'password' && e.outcome === 'success' && e.ip === ip), JSON.stringify(events));
  } finally {
    await setting(w, { allow_username_password_flow: false });
  }
});

// ----------------------------------------------------------------------------------- C.128

test('C.128 client authentication is enforced where credentials are issued, and private_key_jwt (asymmetric) is offered and works', async () => {
  const meta = await discovery(w);
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt']) assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m);
  assert.ok(meta.token_endpoint_auth_signing_alg_values_supported.includes('RS256'));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { app: m2m } = await ccApp(w, { certificate: publicKey.export({ type: 'spki', format: 'pem' }) });
  // No secret, a wrong one, or a client_id alone: 401 invalid_client with WWW-Authenticate.
  for (const [what, fields, headers] of [
    ['no credentials', { grant_type: 'client_credentials' }, {}],
    ['client_id alone', { grant_type: 'client_credentials', client_id: m2m.client_id }, {}],
    ['wrong secret', { grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: 'wrong' }, {}],
    ['wrong Basic secret', { grant_type: 'client_credentials' }, basic(m2m.client_id, 'wrong')],
  ]) {
    const r = await token(w, fields, { headers });
    assertOAuthError(r, 401, 'invalid_client', what);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/, what);
  }
  // A confidential app's code cannot be redeemed without its secret, PKCE or not.
  const { verifier, challenge } = pkcePair();
  const a = await codeFor(w, jar, app, { code_challenge: challenge });
  assertOAuthError(await token(w, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_id: app.client_id, code_verifier: verifier }), 401, 'invalid_client', 'code without secret');
  // private_key_jwt: a signed assertion instead of a secret.
  const input = (c) => `${Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(c)).toString('base64url')}`;
  const sign = (c) => { const i = input(c); return `${i}.${createSign('RSA-SHA256').update(i).sign(privateKey).toString('base64url')}`; };
  const assertion = sign({ iss: m2m.client_id, sub: m2m.client_id, aud: issuer, exp: nowS() + 60, jti: randomUUID() });
  const ok = await token(w, { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.json.access_token);
});

// ----------------------------------------------------------------------------------- C.129

test('C.129 RFC 8414 metadata is published at both well-known paths, identical, with the required fields and this issuer', async () => {
  const oidc = await call(w, '/.well-known/openid-configuration');
  const oauth = await call(w, '/.well-known/oauth-authorization-server');
  assert.equal(oidc.status, 200);
  assert.equal(oauth.status, 200);
  assert.match(oauth.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(oauth.json, oidc.json);
  const m = oauth.json;
  assert.equal(m.issuer, w.baseUrl, 'the issuer is this origin, no trailing slash');
  for (const f of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'device_authorization_endpoint', 'userinfo_endpoint']) {
    assert.equal(typeof m[f], 'string', f);
    assert.ok(m[f].startsWith(`${m.issuer}/`), `${f} on the issuer: ${m[f]}`);
  }
  for (const f of ['response_types_supported', 'grant_types_supported', 'code_challenge_methods_supported', 'token_endpoint_auth_methods_supported', 'scopes_supported']) {
    assert.ok(Array.isArray(m[f]) && m[f].length > 0, f);
  }
  assert.ok(m.response_types_supported.includes('code'));
  // Every advertised endpoint answers (not 404) on its documented method.
  for (const f of ['jwks_uri']) assert.equal((await call(w, m[f])).status, 200, f);
  for (const f of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'device_authorization_endpoint']) {
    const r = await postForm(w, m[f], {});
    assert.notEqual(r.status, 404, `${f}: ${r.status}`);
  }
});

// ----------------------------------------------------------------------------------- C.130

test('C.130 clients cannot choose their client_id at registration; client-only tokens are told apart from user tokens', async () => {
  const iat = await mintIat(w);
  for (const wanted of [app.client_id, user.user_id, 'edge-oauth-demo', `005${'A'.repeat(15)}`]) {
    const r = await register(w, { redirect_uris: [CB], client_name: 'chooser', client_id: wanted }, { iat });
    // Refused, or ignored: either way the client does not get the id it asked for.
    assert.ok(r.status === 201 || r.status === 400, `${wanted}: ${r.status} ${r.text}`);
    if (r.status === 201) {
      assert.notEqual(r.json.client_id, wanted);
      assert.match(r.json.client_id, /^3MVG9[0-9A-Za-z]{80}$/, 'server-assigned');
    }
  }
  // A client credentials token runs as the app's integration user and says which client got it.
  const { app: m2m, user: runAs } = await ccApp(w);
  const t = await ccToken(w, m2m, { scope: 'api' });
  const info = await introspect(w, m2m, t.access_token);
  assert.equal(info.json.active, true, info.text);
  assert.equal(info.json.client_id, m2m.client_id);
  assert.equal(info.json.username, runAs.username);
  assert.ok(info.json.sub.endsWith(`/${runAs.user_id}`), info.json.sub);
  assert.notEqual(info.json.sub, m2m.client_id, 'a client id never appears as a subject');
});

// ----------------------------------------------------------------------------------- C.131

test('C.131 plain-http redirect URIs are refused except loopback, by the admin API and by registration', async () => {
  const iat = await mintIat(w);
  for (const uri of ['http://app.example.com/cb', 'http://10.0.0.5/cb', 'http://example.com:8080/cb']) {
    const a = await w.admin('POST', '/admin/apps', { name: 'http', callback_urls: [uri], scopes: ['api'] });
    assert.equal(a.status, 400, `admin ${uri}: ${a.text}`);
    const r = await register(w, { redirect_uris: [uri], client_name: 'http' }, { iat });
    assert.equal(r.status, 400, `register ${uri}: ${r.text}`);
    assert.equal(r.json.error, 'invalid_redirect_uri');
  }
  for (const uri of ['http://127.0.0.1/cb', 'http://[::1]:8080/cb']) {
    const a = await w.admin('POST', '/admin/apps', { name: 'loopback', callback_urls: [uri], scopes: ['api'] });
    assert.equal(a.status, 201, `admin ${uri}: ${a.text}`);
    const r = await register(w, { redirect_uris: [uri], client_name: 'loopback' }, { iat });
    assert.equal(r.status, 201, `register ${uri}: ${r.text}`);
  }
});

// ----------------------------------------------------------------------------------- C.134

test('C.134 every authorization response carries iss (RFC 9207): code, error, fragment and form_post; discovery says so', async () => {
  assert.equal((await discovery(w)).authorization_response_iss_parameter_supported, true);
  const code = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'a' }, { jar });
  assert.equal(queryOf(code.location).get('iss'), issuer, code.location);
  const error = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'b', scope: 'not_a_scope' });
  assert.equal(queryOf(error.location).get('error'), 'invalid_scope', error.location);
  assert.equal(queryOf(error.location).get('iss'), issuer);
  const silent = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'c', prompt: 'none' });
  assert.equal(queryOf(silent.location).get('error'), 'login_required');
  assert.equal(queryOf(silent.location).get('iss'), issuer);
  const frag = await authzGet({ response_type: 'token', client_id: app.client_id, redirect_uri: CB, state: 'd' }, { jar });
  assert.equal(fragmentOf(frag.location).get('iss'), issuer, frag.location);
  const posted = await authzGet({ response_type: 'code', response_mode: 'form_post', client_id: app.client_id, redirect_uri: CB, state: 'e' }, { jar });
  assert.equal(posted.status, 200, posted.text);
  const [form] = parseForms(posted.text);
  assert.equal(form.action, CB);
  assert.equal(form.fields.iss, issuer);
  assert.ok(form.fields.code);
});

// ----------------------------------------------------------------------------------- C.135

test('C.135 a code works once; the second redemption is invalid_grant and revokes what the first one issued', async () => {
  const a = await codeFor(w, jar, app);
  const first = await exchange(w, app, a.code);
  assert.equal(first.status, 200, first.text);
  assert.equal((await userinfo(w, first.json.access_token)).status, 200);
  const second = await exchange(w, app, a.code);
  assertOAuthError(second, 400, 'invalid_grant', 'replay');
  assert.equal(second.json.error_description, 'expired authorization code');
  assert.equal((await userinfo(w, first.json.access_token)).status, 401, 'the first access token is revoked');
  assertOAuthError(await refresh(w, app, first.json.refresh_token), 400, 'invalid_grant', 'the first refresh token is revoked');
  assert.deepEqual((await introspect(w, app, first.json.access_token)).json, { active: false });
});

// ----------------------------------------------------------------------------------- C.136

test('C.136 login, consent, device, error and form_post pages load nothing from third parties and send Referrer-Policy no-referrer', async () => {
  const origin = new URL(w.baseUrl).origin;
  const fresh = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB });
  const otherApp = await newApp(w);
  const consent = await codeFor(w, jar, otherApp, {}, user); // approves; fetch its page again below
  assert.ok(consent.code);
  const consentPage = await authzGet({ response_type: 'code', client_id: otherApp.client_id, redirect_uri: CB, prompt: 'consent' }, { jar });
  const pages = {
    login: fresh,
    consent: consentPage,
    device: await call(w, '/setup/connect'),
    'error (html)': await authzGet({ client_id: 'nope', redirect_uri: CB }, { headers: { accept: 'text/html' } }),
    form_post: await authzGet({ response_type: 'code', response_mode: 'form_post', client_id: app.client_id, redirect_uri: CB }, { jar }),
  };
  assert.match(pages.consent.text, /name="approve"/);
  for (const [name, p] of Object.entries(pages)) {
    assert.ok(p.status < 500 && /<html/i.test(p.text), `${name}: ${p.status}`);
    assert.equal(p.headers.get('referrer-policy'), 'no-referrer', name);
    // Subresources: scripts, styles, images, frames, fonts — same origin (relative) only.
    for (const m of p.text.matchAll(/<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(src|href|data)\s*=\s*["']?([^"'\s>]+)/gi)) {
      const url = new URL(m[3].replace(/&amp;/g, '&'), w.baseUrl);
      assert.equal(url.origin, origin, `${name}: <${m[1]} ${m[2]}=${m[3]}> loads from another origin`);
    }
    assert.doesNotMatch(p.text, /@import|url\(\s*["']?https?:/i, `${name}: no third-party CSS`);
  }
});

// ----------------------------------------------------------------------------------- C.138

test('C.138 the user is authenticated before any redirect a request earns: a valid request shows the login page; prompt=none (silent) answers at once; a self-registered client names where the answer goes', async () => {
  const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'x' });
  assert.equal(r.status, 200, 'the login page, not a redirect');
  assert.equal(r.location, null);
  assert.match(r.text, /name="password"/);
  const silent = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'y', prompt: 'none' });
  assert.equal(silent.status, 302);
  assert.equal(queryOf(silent.location).get('error'), 'login_required');
  // A client that registered itself: the consent page says which host the answer goes to.
  const reg = await register(w, { redirect_uris: ['https://phish.example/cb'], client_name: 'Totally Legit', scope: 'api' }, { iat: await mintIat(w) });
  assert.equal(reg.status, 201, reg.text);
  const page = await authzGet({ response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://phish.example/cb', state: 'z' }, { jar });
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /name="approve"/);
  assert.match(page.text, /registered itself/);
  assert.match(page.text, /phish\.example/);
});

test('C.138 a self-registered client\'s erroneous request from a browser without a session is not redirected before the user is authenticated (RFC 9700 §4.11.2 attack 1)', async () => {
  const reg = await register(w, { redirect_uris: ['https://phish.example/cb'], client_name: 'Phisher', scope: 'api' }, { iat: await mintIat(w) });
  assert.equal(reg.status, 201, reg.text);
  for (const params of [{ scope: 'not_a_scope' }, { response_type: 'token' }, { response_type: 'nonsense' }, { code_challenge_method: 'plain', code_challenge: 'x'.repeat(43) }]) {
    const r = await authzGet({ response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://phish.example/cb', state: 'p', ...params });
    assert.ok(!(r.status >= 300 && r.status < 400 && r.location?.startsWith('https://phish.example/')), `${JSON.stringify(params)}: redirected to the self-registered URI with nobody logged in: ${r.status} ${r.location}`);
  }
});

// ----------------------------------------------------------------------------------- C.140

test('C.140 userinfo never takes an access token from the URI query; the header and a form body work', async () => {
  const { app: m2m } = await ccApp(w);
  const t = await ccToken(w, m2m, { scope: 'api' });
  const inQuery = await call(w, `/services/oauth2/userinfo?access_token=${encodeURIComponent(t.access_token)}`);
  assert.equal(inQuery.status, 401, inQuery.text);
  assert.equal(inQuery.json.error, 'invalid_token');
  const postQuery = await call(w, `/services/oauth2/userinfo?access_token=${encodeURIComponent(t.access_token)}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  assert.equal(postQuery.status, 401, postQuery.text);
  assert.equal((await userinfo(w, t.access_token)).status, 200);
  const form = await postForm(w, '/services/oauth2/userinfo', { access_token: t.access_token });
  assert.equal(form.status, 200, form.text);
});
