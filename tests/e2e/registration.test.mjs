// Dynamic client registration (RFC 7591) and its management protocol (RFC 7592) against the real
// worker (issue 10). It shows:
//  1. openid-client v6 registers a confidential client with an initial access token the operator
//     minted (`POST /admin/registration-tokens`), at the `registration_endpoint` discovery names;
//     that client runs a code + PKCE flow through the login and consent pages (the library checks
//     the ID token), a refresh, and client credentials (400 invalid_grant until the operator
//     names a `client_credentials_user`, then tokens).
//  2. RFC 7592: GET the metadata, PUT new redirect URIs and name (a new registration access token;
//     the old one is 401 at once), DELETE (204): the client's tokens, active to a gateway app
//     (`introspect_all_tokens`) before, introspect `{"active":false}` after; its token is 401.
//  3. Every refusal: missing, bogus, used-up and expired initial access tokens (401 invalid_token),
//     each kind of invalid metadata (400 invalid_redirect_uri / invalid_client_metadata), a body
//     over 16 KiB (413), a grant the client did not register (400 unauthorized_client), and open
//     registration switched on (201 without a token) and off again (401).
//  4. Races: a single-use initial token raced by 50 registrations (one app), a 3-use one by 20,
//     and one registration access token raced by 50 PUTs (one rotation wins).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import * as client from 'openid-client';
import { authorize, tokenRequest } from './flow.mjs';
import { startTestWorker } from './harness.mjs';

const REDIRECT = 'http://127.0.0.1:9/cb'; // loopback, never contacted (flow.mjs stops at the redirect)
const REDIRECT2 = 'http://127.0.0.1:9/cb2';
const SCOPE = 'openid api refresh_token profile email';

let w;
let orgId;
let regEndpoint; // `${w.baseUrl}/services/oauth2/register`
let openToken; // an initial access token without max_uses, for the refusal cases
let expiring; // minted at the start with the minimum lifetime (60 s); the last test sees it expire
let user;
let gateway; // an operator's app with introspect_all_tokens: true
let bystander; // an operator's app without it
// Step 1's results, used by step 2.
let config;
let registered;
let codeTokens;
let ccToken;

const identityUrl = (u) => `${w.baseUrl}/id/${orgId}/${u.user_id}`;
const basic = (id, secret) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const asSet = (s) => new Set(s.split(' '));

async function call(method, url, { token, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined || raw !== undefined) h['content-type'] = 'application/json';
  if (token) h.authorization = `Bearer ${token}`;
  const r = await fetch(url, { method, headers: h, body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

const register = (body, opts = {}) => call('POST', regEndpoint, { body, ...opts });

async function mint(fields = {}) {
  const r = await w.admin('POST', '/admin/registration-tokens', fields);
  assert.equal(r.status, 201, r.text);
  assert.equal(typeof r.json.token, 'string');
  return r.json;
}

async function newUser(label) {
  const username = `${label}.${randomUUID().slice(0, 8)}@example.com`;
  const fields = { username, password: `pw-${randomUUID()}`, email: username, name: `${label} User` };
  const r = await w.admin('POST', '/admin/users', fields);
  assert.equal(r.status, 201, r.text);
  return { ...fields, user_id: r.json.user_id };
}

async function apps() {
  const r = await w.admin('GET', '/admin/apps');
  assert.equal(r.status, 200, r.text);
  return r.json.apps;
}

async function introspect(app, token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(app.client_id, app.client_secret) },
    body: new URLSearchParams({ token }),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

/** A 401 from the registration endpoint for a refused initial access token. */
function assertInvalidToken(r, what) {
  assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error, 'invalid_token', `${what}: ${r.text}`);
  assert.equal(typeof r.json.error_description, 'string', what);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="invalid_token"/, `${what}: WWW-Authenticate`);
}

function assertError(r, status, error, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error, error, `${what}: ${r.text}`);
  assert.equal(typeof r.json.error_description, 'string', `${what}: error_description`);
}

/** How an openid-client call failed. */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (e.code === 'OAUTH_RESPONSE_BODY_ERROR') return { status: e.status, error: e.error };
    throw e;
  }
  assert.fail('expected the call to fail');
}

/** The RFC 7592 PUT body: the client's full metadata with `changes`. */
function fullMetadata(md, changes = {}) {
  const { client_id, redirect_uris, client_name, grant_types, response_types, token_endpoint_auth_method, scope } = md;
  return { client_id, redirect_uris, client_name, grant_types, response_types, token_endpoint_auth_method, scope, ...changes };
}

before(async () => {
  w = await startTestWorker();
  expiring = await mint({ expires_in_s: 60 });
  orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
  regEndpoint = `${w.baseUrl}/services/oauth2/register`;
  openToken = (await mint()).token;
  user = await newUser('dcr');
  for (const [name, all] of [['Gateway', true], ['Bystander', false]]) {
    const a = await w.admin('POST', '/admin/apps', { name, callback_urls: [REDIRECT], scopes: ['api'] });
    assert.equal(a.status, 201, a.text);
    if (all) {
      const p = await w.admin('PATCH', `/admin/apps/${a.json.client_id}`, { introspect_all_tokens: true });
      assert.equal(p.status, 200, p.text);
      assert.equal(p.json.introspect_all_tokens, true);
      gateway = a.json;
    } else {
      assert.equal(a.json.introspect_all_tokens, false, 'off by default');
      bystander = a.json;
    }
  }
});

after(async () => {
  await w?.stop();
});

test('discovery names the registration endpoint; the admin mints initial access tokens within bounds', async () => {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const md = await (await fetch(w.baseUrl + path)).json();
    assert.equal(md.registration_endpoint, regEndpoint, path);
  }
  assert.ok(Math.abs(expiring.expires_at - (Math.floor(Date.now() / 1000) + 60)) <= 10, `expires_at ${expiring.expires_at}`);
  assert.equal(expiring.max_uses, null, 'no max_uses: any number until expiry');
  const one = await mint({ max_uses: 1, expires_in_s: 600 });
  assert.equal(one.max_uses, 1);
  for (const expires_in_s of [59, 0, 31536001]) {
    const r = await w.admin('POST', '/admin/registration-tokens', { expires_in_s });
    assert.equal(r.status, 400, `expires_in_s ${expires_in_s}: ${r.text}`);
    assert.match(r.json.error_description, /expires_in_s/);
  }
  // The 60 s token works, more than once (it expires in the last test).
  for (let i = 0; i < 2; i++) {
    const r = await register({ redirect_uris: [REDIRECT], client_name: `expiring ${i}` }, { token: expiring.token });
    assert.equal(r.status, 201, r.text);
  }
});

test('1. openid-client registers a client, runs code + PKCE, refresh and client credentials with it', async () => {
  const tok = (await mint({ max_uses: 1 })).token;
  const requests = [];
  const recording = async (url, options) => {
    const r = await fetch(url, options);
    requests.push({ url: String(url), method: options?.method ?? 'GET', status: r.status, cacheControl: r.headers.get('cache-control') });
    return r;
  };
  config = await client.dynamicClientRegistration(new URL(w.baseUrl), {
    redirect_uris: [REDIRECT],
    client_name: 'Registered RP',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    scope: SCOPE,
    contacts: ['ops@example.com'],
    client_uri: 'https://rp.example.com/',
  }, undefined, { initialAccessToken: tok, execute: [client.allowInsecureRequests], [client.customFetch]: recording });

  // The library POSTed to the registration_endpoint it discovered; the 201 is not cacheable.
  const post = requests.find((r) => r.method === 'POST');
  assert.deepEqual([post.url, post.status], [regEndpoint, 201]);
  assert.match(post.cacheControl ?? '', /no-store/);

  registered = config.clientMetadata();
  const now = Math.floor(Date.now() / 1000);
  assert.equal(typeof registered.client_id, 'string');
  assert.equal(typeof registered.client_secret, 'string');
  assert.equal(registered.client_secret_expires_at, 0);
  assert.ok(Math.abs(registered.client_id_issued_at - now) <= 60, `client_id_issued_at ${registered.client_id_issued_at}`);
  assert.equal(typeof registered.registration_access_token, 'string');
  assert.equal(registered.registration_client_uri, `${w.baseUrl}/services/oauth2/register/${registered.client_id}`);
  assert.equal(registered.token_endpoint_auth_method, 'client_secret_post');
  assert.equal(registered.client_name, 'Registered RP');
  assert.deepEqual(registered.redirect_uris, [REDIRECT]);
  assert.deepEqual(registered.grant_types, ['authorization_code', 'refresh_token', 'client_credentials']);
  assert.deepEqual(registered.response_types, ['code']);
  assert.deepEqual(asSet(registered.scope), asSet(SCOPE));
  assert.deepEqual(new Set(registered.scopes), asSet(SCOPE), 'scopes: the array shape');
  assert.deepEqual(registered.contacts, ['ops@example.com']);
  // The token was single-use: spent by this registration.
  assertInvalidToken(await register({ redirect_uris: [REDIRECT] }, { token: tok }), 'max_uses 1, second use');
  // It is a connected app like any other.
  const app = await w.admin('GET', `/admin/apps/${registered.client_id}`);
  assert.equal(app.status, 200, app.text);
  assert.equal(app.json.name, 'Registered RP');

  // Code flow with PKCE through the login and consent pages.
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: SCOPE, state, nonce, code_challenge_method: 'S256',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  });
  assert.equal(url.origin + url.pathname, `${w.baseUrl}/services/oauth2/authorize`);
  const a = await authorize(w.baseUrl, Object.fromEntries(url.searchParams), { username: user.username, password: user.password });
  assert.deepEqual(a.pages, ['login', 'consent'], JSON.stringify(a));
  assert.ok(a.code, `no code: ${a.location ?? a.body}`);
  assert.equal(a.url.origin + a.url.pathname, REDIRECT);
  // The library checks state, iss (RFC 9207), the ID token's signature, iss, aud, exp and nonce.
  await assert.rejects(client.authorizationCodeGrant(config, a.url, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state, expectedNonce: nonce }),
    (e) => e.error === 'invalid_grant', 'a wrong verifier is refused by the server');
  const a2 = await authorize(w.baseUrl, Object.fromEntries(url.searchParams), { jar: a.jar });
  assert.ok(a2.code, 'same browser: a new code without login');
  codeTokens = await client.authorizationCodeGrant(config, a2.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
  assert.equal(codeTokens.token_type.toLowerCase(), 'bearer');
  assert.ok(codeTokens.access_token && codeTokens.refresh_token && codeTokens.id_token);
  const claims = codeTokens.claims();
  assert.equal(claims.sub, identityUrl(user));
  assert.equal(claims.iss, w.baseUrl);
  assert.ok([].concat(claims.aud).includes(registered.client_id));
  assert.equal(claims.nonce, nonce);
  const info = await client.fetchUserInfo(config, codeTokens.access_token, claims.sub);
  assert.equal(info.preferred_username, user.username);

  // Refresh (registered grant): a new access token and a validated ID token.
  const refreshed = await client.refreshTokenGrant(config, codeTokens.refresh_token);
  assert.ok(refreshed.access_token && refreshed.access_token !== codeTokens.access_token);
  assert.equal(refreshed.claims().sub, claims.sub);
  codeTokens = { access_token: refreshed.access_token, refresh_token: refreshed.refresh_token ?? codeTokens.refresh_token };

  // Client credentials: refused until the operator names the user it runs as.
  assert.deepEqual(await failure(client.clientCredentialsGrant(config, { scope: 'api' })), { status: 400, error: 'invalid_grant' });
  const ccUser = await newUser('dcr.cc');
  const p = await w.admin('PATCH', `/admin/apps/${registered.client_id}`, { client_credentials_user: ccUser.username });
  assert.equal(p.status, 200, p.text);
  const cc = await client.clientCredentialsGrant(config, { scope: 'api' });
  assert.ok(cc.access_token);
  assert.equal(cc.scope, 'api');
  assert.equal(cc.refresh_token, undefined);
  assert.equal((await client.fetchUserInfo(config, cc.access_token, identityUrl(ccUser))).preferred_username, ccUser.username);
  ccToken = cc.access_token;
});

test('2. RFC 7592: GET, PUT (token rotates), DELETE (tokens end) with the registration access token', async () => {
  const uri = registered.registration_client_uri;
  const oldRat = registered.registration_access_token;

  const got = await call('GET', uri, { token: oldRat });
  assert.equal(got.status, 200, got.text);
  assert.match(got.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(got.json.client_id, registered.client_id);
  assert.equal(got.json.client_name, 'Registered RP');
  assert.deepEqual(got.json.redirect_uris, [REDIRECT]);
  assert.deepEqual(got.json.grant_types, registered.grant_types);
  assert.deepEqual(got.json.response_types, ['code']);
  assert.equal(got.json.token_endpoint_auth_method, 'client_secret_post');
  assert.deepEqual(asSet(got.json.scope), asSet(SCOPE));
  assert.equal(got.json.client_secret, undefined, 'GET never shows the secret');
  assert.equal(got.json.registration_access_token, undefined, 'GET never shows the token');
  // Another client's id, or no token, is refused.
  assertError(await call('GET', `${regEndpoint}/${gateway.client_id}`, { token: oldRat }), 401, 'invalid_token', 'a token for another client');
  assertError(await call('GET', uri), 401, 'invalid_token', 'no token');

  const put = await call('PUT', uri, { token: oldRat, body: fullMetadata(got.json, { redirect_uris: [REDIRECT2], client_name: 'Renamed RP' }) });
  assert.equal(put.status, 200, put.text);
  assert.match(put.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(put.json.client_id, registered.client_id);
  assert.equal(put.json.client_name, 'Renamed RP');
  assert.deepEqual(put.json.redirect_uris, [REDIRECT2]);
  const newRat = put.json.registration_access_token;
  assert.equal(typeof newRat, 'string');
  assert.notEqual(newRat, oldRat);
  assertError(await call('GET', uri, { token: oldRat }), 401, 'invalid_token', 'the rotated-out token');
  assertError(await call('PUT', uri, { token: oldRat, body: fullMetadata(got.json) }), 401, 'invalid_token', 'PUT with the rotated-out token');
  const again = await call('GET', uri, { token: newRat });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.client_name, 'Renamed RP');
  assert.deepEqual(again.json.redirect_uris, [REDIRECT2]);
  // The authorize endpoint follows: the old redirect URI is no longer registered.
  const old = await authorize(w.baseUrl, { response_type: 'code', client_id: registered.client_id, redirect_uri: REDIRECT, state: 's' });
  assert.equal(old.status, 400);
  assert.match(old.body, /^error=redirect_uri_mismatch/);

  // Before the delete: active to the gateway app, with every claim; inactive to a bystander.
  const tokens = [[codeTokens.access_token, 'access_token'], [codeTokens.refresh_token, 'refresh_token'], [ccToken, 'access_token']];
  for (const [token, kind] of tokens) {
    const i = await introspect(gateway, token);
    assert.equal(i.status, 200, i.text);
    assert.equal(i.json.active, true, `${kind}: ${i.text}`);
    assert.equal(i.json.client_id, registered.client_id);
    assert.equal(i.json.token_type, kind);
    assert.equal(i.json.iss, w.baseUrl);
    assert.deepEqual([].concat(i.json.aud), [w.baseUrl], `${kind}: aud is the issuer (no resource): ${i.text}`);
    assert.equal(typeof i.json.iat, 'number');
    for (const f of ['sub', 'username', 'scope']) assert.equal(typeof i.json[f], 'string', `${kind}: ${f} in ${i.text}`);
    // Refresh tokens of an "infinite" policy never expire, so only access tokens carry exp.
    if (kind === 'access_token') assert.ok(i.json.exp > Date.now() / 1000, `exp in ${i.text}`);
    assert.deepEqual((await introspect(bystander, token)).json, { active: false }, 'only gateway-grade apps see other clients\' tokens');
  }
  const ci = (await introspect(gateway, codeTokens.access_token)).json;
  assert.equal(ci.sub, identityUrl(user));
  assert.equal(ci.username, user.username);
  assert.deepEqual(asSet(ci.scope), asSet(SCOPE));

  const del = await call('DELETE', uri, { token: newRat });
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
  for (const [token, kind] of tokens) {
    const i = await introspect(gateway, token);
    assert.equal(i.status, 200, i.text);
    assert.deepEqual(i.json, { active: false }, `${kind} after DELETE`);
  }
  assert.equal((await call('GET', `${w.baseUrl}/services/oauth2/userinfo`, { token: codeTokens.access_token })).status, 401);
  assertError(await call('GET', uri, { token: newRat }), 401, 'invalid_token', 'GET after DELETE');
  assertError(await call('DELETE', uri, { token: newRat }), 401, 'invalid_token', 'DELETE again');
  assert.equal((await w.admin('GET', `/admin/apps/${registered.client_id}`)).status, 404, 'the app is gone');
  assert.ok(!(await apps()).some((x) => x.client_id === registered.client_id));
});

test('3a. initial access tokens: missing, bogus and used-up ones are 401 invalid_token', async () => {
  const body = { redirect_uris: [REDIRECT], client_name: 'refused' };
  const before = (await apps()).length;
  assertInvalidToken(await register(body), 'no token');
  assertInvalidToken(await register(body, { token: 'not-a-token' }), 'bogus token');
  assertInvalidToken(await register(body, { token: `${openToken}x` }), 'a real token with a byte added');
  assertInvalidToken(await register(body, { headers: { authorization: `Basic ${Buffer.from(`a:${openToken}`).toString('base64')}` } }), 'not a Bearer token');
  const once = (await mint({ max_uses: 1 })).token;
  const ok = await register(body, { token: once });
  assert.equal(ok.status, 201, ok.text);
  assertInvalidToken(await register(body, { token: once }), 'used up');
  assert.equal((await apps()).length, before + 1, 'only the accepted registration created an app');
});

test('3b. invalid metadata: the contract\'s error code for each case; the good variants pass', async () => {
  const { publicKey } = await jose.generateKeyPair('RS256');
  const jwks = { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  const base = { redirect_uris: [REDIRECT], client_name: 'metadata case' };
  const uri = (u) => ({ ...base, redirect_uris: [u] });
  const cases = [
    ['relative redirect', uri('/cb'), 'invalid_redirect_uri'],
    ['redirect without scheme', uri('rp.example.com/cb'), 'invalid_redirect_uri'],
    ['fragment', uri('https://rp.example.com/cb#frag'), 'invalid_redirect_uri'],
    ['http non-loopback', uri('http://rp.example.com/cb'), 'invalid_redirect_uri'],
    ['javascript:', uri('javascript:alert(1)'), 'invalid_redirect_uri'],
    ['data:', uri('data:text/html,<b>hi</b>'), 'invalid_redirect_uri'],
    ['file:', uri('file:///etc/passwd'), 'invalid_redirect_uri'],
    ['one bad redirect among good ones', { ...base, redirect_uris: [REDIRECT, 'javascript:alert(1)'] }, 'invalid_redirect_uri'],
    ['token response without implicit', { ...base, grant_types: ['authorization_code'], response_types: ['code', 'token'] }, 'invalid_client_metadata'],
    ['implicit without token response', { ...base, grant_types: ['authorization_code', 'implicit'], response_types: ['code'] }, 'invalid_client_metadata'],
    ['code response without authorization_code', { ...base, grant_types: ['implicit'], response_types: ['code', 'token'] }, 'invalid_client_metadata'],
    ['authorization_code without code response', { ...base, grant_types: ['authorization_code', 'implicit'], response_types: ['token'] }, 'invalid_client_metadata'],
    ['unsupported auth method', { ...base, token_endpoint_auth_method: 'client_secret_jwt' }, 'invalid_client_metadata'],
    ['unsupported grant', { ...base, grant_types: ['authorization_code', 'password'] }, 'invalid_client_metadata'],
    ['unsupported response type', { ...base, grant_types: ['implicit'], response_types: ['id_token'] }, 'invalid_client_metadata'],
    ['private_key_jwt without jwks', { ...base, token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
    ['jwks and jwks_uri both', { ...base, token_endpoint_auth_method: 'private_key_jwt', jwks, jwks_uri: 'https://rp.example.com/jwks' }, 'invalid_client_metadata'],
    ['none + client_credentials', { ...base, token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'client_credentials'] }, 'invalid_client_metadata'],
    ['unknown scope', { ...base, scope: 'api not_a_scope' }, 'invalid_client_metadata'],
    ['missing redirect_uris', { client_name: 'no redirect' }, 'invalid_client_metadata'],
    ['empty redirect_uris', { ...base, redirect_uris: [] }, 'invalid_client_metadata'],
    ['missing redirect_uris (implicit)', { client_name: 'x', grant_types: ['implicit'], response_types: ['token'] }, 'invalid_client_metadata'],
  ];
  const before = (await apps()).length;
  // Every case is tried; the ones answered otherwise than the contract says are listed at the end.
  const wrong = [];
  const check = (r, error, what) => {
    if (r.status !== 400 || r.json?.error !== error || typeof r.json?.error_description !== 'string') wrong.push(`${what}: expected 400 ${error}, got ${r.status} ${r.text}`);
  };
  for (const [what, body, error] of cases) check(await register(body, { token: openToken }), error, what);
  for (const raw of ['[]', '"client"', '42', 'null', `[${JSON.stringify(base)}]`]) {
    check(await register(undefined, { token: openToken, raw }), 'invalid_client_metadata', `body ${raw.slice(0, 20)}`);
  }
  assert.equal((await apps()).length, before, 'no refused registration created an app');

  // The close good variants are accepted: a secretless `none` client, private_key_jwt with a
  // JWK Set (no secret either), client_credentials without redirect URIs, unknown fields.
  const none = await register({ ...base, token_endpoint_auth_method: 'none' }, { token: openToken });
  assert.equal(none.status, 201, none.text);
  assert.equal(none.json.client_secret, undefined);
  assert.equal(none.json.token_endpoint_auth_method, 'none');
  const pkj = await register({ ...base, token_endpoint_auth_method: 'private_key_jwt', jwks, unknown_field: { x: 1 } }, { token: openToken });
  assert.equal(pkj.status, 201, pkj.text);
  assert.equal(pkj.json.client_secret, undefined);
  assert.deepEqual(pkj.json.jwks, jwks);
  const m2m = await register({ client_name: 'm2m', grant_types: ['client_credentials'], response_types: [], scope: 'api' }, { token: openToken });
  assert.equal(m2m.status, 201, m2m.text);
  assert.equal(typeof m2m.json.client_secret, 'string');
  assert.deepEqual(wrong, [], 'metadata refusals that differ from the contract');
});

test('3c. a body over 16 KiB is 413 invalid_request; just under is fine', async () => {
  const body = (size) => {
    const b = { redirect_uris: [REDIRECT], client_name: 'big', padding: '' };
    b.padding = 'x'.repeat(size - JSON.stringify(b).length);
    assert.equal(JSON.stringify(b).length, size);
    return b;
  };
  assertError(await register(body(16 * 1024 + 1), { token: openToken }), 413, 'invalid_request', '16 KiB + 1');
  assertError(await register(body(64 * 1024), { token: openToken }), 413, 'invalid_request', '64 KiB');
  const ok = await register(body(16000), { token: openToken });
  assert.equal(ok.status, 201, ok.text);
});

test('3d. registered grant types are enforced at the token endpoint (unauthorized_client)', async () => {
  const r = await register({ redirect_uris: [REDIRECT], client_name: 'code only' }, { token: openToken });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.token_endpoint_auth_method, 'client_secret_basic', 'default');
  assert.deepEqual(r.json.grant_types, ['authorization_code'], 'default');
  assert.deepEqual(r.json.response_types, ['code'], 'default');
  assert.deepEqual(asSet(r.json.scope), asSet('api refresh_token openid'), 'default');
  // Even with an operator's client credentials user, the grant was not registered.
  const ccUser = await newUser('dcr.cc2');
  const p = await w.admin('PATCH', `/admin/apps/${r.json.client_id}`, { client_credentials_user: ccUser.username });
  assert.equal(p.status, 200, p.text);
  const t = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, basic(r.json.client_id, r.json.client_secret));
  assertError(t, 400, 'unauthorized_client', 'client_credentials for a code-only client');
  // The secret itself is right: a made-up code gets past client authentication to invalid_grant.
  const c = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: 'nope', redirect_uri: REDIRECT }, basic(r.json.client_id, r.json.client_secret));
  assertError(c, 400, 'invalid_grant', 'a registered grant with a bad code');
});

test('3e. open registration: on, a registration without a token is 201; off again, 401', async () => {
  const body = { redirect_uris: [REDIRECT], client_name: 'open' };
  assert.equal((await w.admin('GET', '/admin/settings')).json.open_registration, false, 'off by default');
  assertInvalidToken(await register(body), 'closed');
  const on = await w.admin('PATCH', '/admin/settings', { open_registration: true });
  assert.equal(on.status, 200, on.text);
  try {
    assert.equal(on.json.open_registration, true);
    const r = await register(body);
    assert.equal(r.status, 201, r.text);
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
    assert.equal(typeof r.json.client_id, 'string');
    assert.equal(typeof r.json.registration_access_token, 'string');
    const got = await call('GET', r.json.registration_client_uri, { token: r.json.registration_access_token });
    assert.equal(got.status, 200, got.text);
  } finally {
    const off = await w.admin('PATCH', '/admin/settings', { open_registration: false });
    assert.equal(off.status, 200, off.text);
  }
  assertInvalidToken(await register(body), 'closed again');
});

test('4a. max_uses 1 raced by 50 registrations: one 201, 49 × 401, one new app', async () => {
  const tok = (await mint({ max_uses: 1 })).token;
  const before = await apps();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => register({ redirect_uris: [REDIRECT], client_name: `race a ${i}` }, { token: tok })));
  const won = results.filter((r) => r.status === 201);
  assert.equal(won.length, 1, `statuses: ${results.map((r) => r.status)}`);
  const lost = results.filter((r) => r.status !== 201);
  assert.equal(lost.length, 49);
  for (const r of lost) assertInvalidToken(r, 'a losing registration');
  const afterApps = await apps();
  assert.equal(afterApps.length, before.length + 1);
  const added = afterApps.filter((a) => !before.some((b) => b.client_id === a.client_id));
  assert.deepEqual(added.map((a) => a.client_id), [won[0].json.client_id]);
});

test('4b. one registration access token raced by 50 PUTs: one 200, 49 × 401; the winner\'s token works', async () => {
  const r = await register({ redirect_uris: [REDIRECT], client_name: 'race b' }, { token: openToken });
  assert.equal(r.status, 201, r.text);
  const uri = r.json.registration_client_uri;
  const oldRat = r.json.registration_access_token;
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    call('PUT', uri, { token: oldRat, body: fullMetadata(r.json, { client_name: `race b ${i}` }) })));
  const wonIdx = results.map((x, i) => (x.status === 200 ? i : -1)).filter((i) => i >= 0);
  assert.equal(wonIdx.length, 1, `statuses: ${results.map((x) => x.status)}`);
  for (const x of results.filter((y) => y.status !== 200)) assertError(x, 401, 'invalid_token', 'a losing PUT');
  const winner = results[wonIdx[0]].json;
  assert.equal(winner.client_name, `race b ${wonIdx[0]}`);
  assert.notEqual(winner.registration_access_token, oldRat);
  const got = await call('GET', uri, { token: winner.registration_access_token });
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.client_name, `race b ${wonIdx[0]}`, 'the stored metadata is the winner\'s');
  assertError(await call('GET', uri, { token: oldRat }), 401, 'invalid_token', 'the old token after the race');
});

test('4c. max_uses 3 raced by 20 registrations: exactly 3 succeed', async () => {
  const tok = (await mint({ max_uses: 3 })).token;
  const before = (await apps()).length;
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => register({ redirect_uris: [REDIRECT], client_name: `race c ${i}` }, { token: tok })));
  const won = results.filter((r) => r.status === 201);
  assert.equal(won.length, 3, `statuses: ${results.map((r) => r.status)}`);
  for (const r of results.filter((x) => x.status !== 201)) assertInvalidToken(r, 'a losing registration');
  assert.equal(new Set(won.map((r) => r.json.client_id)).size, 3);
  assert.equal((await apps()).length, before + 3);
  assertInvalidToken(await register({ redirect_uris: [REDIRECT] }, { token: tok }), 'after the three uses');
});

test('3f. an expired initial access token is 401 invalid_token (waits for the 60 s token minted at the start)', async () => {
  const wait = (expiring.expires_at + 2) * 1000 - Date.now();
  assert.ok(wait <= 65000, `would wait ${wait} ms`);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  assertInvalidToken(await register({ redirect_uris: [REDIRECT], client_name: 'too late' }, { token: expiring.token }), 'expired');
});
