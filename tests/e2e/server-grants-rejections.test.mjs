// Issue 8, over HTTP against the real worker (workerd under wrangler dev): every way the
// server-to-server grants refuse a request, and the shapes they accept.
//
// - JWT bearer (RFC 7523 §2.1): the assertion's signature, aud, exp (seconds, milliseconds, a
//   numeric string), jti reuse (sequential and two concurrent presentations), iss, the user's
//   pre-authorization or interactive approval, admin-approved apps, inactive users, alg none,
//   HS256 keyed with the public key, apps without a certificate, malformed and missing
//   assertions; and the accepted forms of the key (PEM public key, X.509 certificate, ES256 JWK).
// - Client credentials: no run-as user, wrong secret, inactive run-as user; Basic auth.
// - Password: off, wrong password and unknown user answer byte for byte alike; confidential
//   clients only; the per-username+IP throttle (9 a minute).
// - private_key_jwt (RFC 7523 §2.2) at the token, introspection and revocation endpoints.
// - The admin API refusing certificates it could not verify with.
//
// Every refusal is checked for its status, `error`, description (exactly, where Salesforce
// clients string-match it), `Cache-Control: no-store`, and the absence of any access token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, createSign, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestWorker, inOneRateWindow } from './harness.mjs';
import { authorize, tokenRequest } from './flow.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'correct horse battery';

// ------------------------------------------------------------------------------------ keys

/** The key registered on the apps (as a PEM public key), and another one nobody registered. */
const KEY = generateKeyPairSync('rsa', { modulusLength: 2048 });
const OTHER_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_PEM = KEY.publicKey.export({ type: 'spki', format: 'pem' });

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** A compact JWS: `signer(signingInput)` returns the signature bytes. */
function jws(header, claims, signer) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${Buffer.from(signer(input)).toString('base64url')}`;
}

/** RS256 with `privateKey` (the registered KEY unless said otherwise). */
function rs256(claims, { privateKey = KEY.privateKey, header = {} } = {}) {
  return jws({ alg: 'RS256', typ: 'JWT', ...header }, claims, (input) => createSign('RSA-SHA256').update(input).sign(privateKey));
}

/** ES256: the raw r || s signature (RFC 7518 §3.4). */
function es256(claims, privateKey, header = {}) {
  return jws({ alg: 'ES256', typ: 'JWT', ...header }, claims, (input) => cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

const nowS = () => Math.floor(Date.now() / 1000);

// --------------------------------------------------------------------------------- worker

let w;
/** The issuer, as discovery names it (the worker's origin). */
let issuer;
let seq = 0;
const uniq = () => `${++seq}-${randomUUID().slice(0, 8)}`;

before(async () => {
  w = await startTestWorker();
  const meta = await (await fetch(`${w.baseUrl}/.well-known/openid-configuration`)).json();
  issuer = meta.issuer;
});

after(async () => {
  if (w) {
    const out = w.output();
    assert.doesNotMatch(out, /panicked/, 'the worker must not panic');
    await w.stop();
  }
});

/** A connected app whose `certificate` is KEY's public key unless `overrides` say otherwise. */
async function newApp(overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `server grants app ${uniq()}`,
    callback_urls: [CB],
    scopes: ['api', 'openid', 'refresh_token', 'profile'],
    certificate: KEY_PEM,
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser(prefix = 'sg-user') {
  const username = `${prefix}-${uniq()}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Server Grants ${seq}` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

async function preauthorize(app, user) {
  const r = await w.admin('POST', `/admin/apps/${app.client_id}/users/${user.user_id}`);
  assert.equal(r.status, 200, r.text);
}

async function deactivate(user) {
  const r = await w.admin('PATCH', `/admin/users/${user.user_id}`, { active: false });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.active, false);
}

async function allowPasswordFlow(on) {
  const r = await w.admin('PATCH', '/admin/settings', { allow_username_password_flow: on });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.allow_username_password_flow, on);
}

/** POSTs a form to any endpoint; `ip` becomes CF-Connecting-IP. */
async function postForm(path, fields, { headers = {}, ip } = {}) {
  const h = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  if (ip) h['cf-connecting-ip'] = ip;
  const r = await fetch(w.baseUrl + path, { method: 'POST', headers: h, body: new URLSearchParams(fields) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

const token = (fields, opts) => postForm('/services/oauth2/token', fields, opts);
const bearer = (assertion) => tokenRequest(w.baseUrl, { grant_type: JWT_BEARER, assertion });

/** Salesforce's JWT bearer claims: iss client id, sub username, aud issuer, exp in seconds. */
const bearerClaims = (app, user, extra = {}) => ({ iss: app.client_id, sub: user.username, aud: issuer, exp: nowS() + 180, ...extra });

/** A private_key_jwt client assertion for `app`: iss = sub = client_id, a fresh jti. */
const clientClaims = (app, extra = {}) => ({ iss: app.client_id, sub: app.client_id, aud: issuer, exp: nowS() + 60, jti: randomUUID(), ...extra });

const withAssertion = (assertion) => ({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion });

// ------------------------------------------------------------------------------ assertions

function assertNoStore(r, what = '') {
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, `${what} Cache-Control: no-store`);
}

/**
 * A refusal: `status`, a JSON body with `error`, the description (a string: exactly that; a
 * RegExp: matching), no-store, and no token of any kind.
 */
function assertRefused(r, status, error, description, what = '') {
  const ctx = `${what} ${r.status} ${r.text}`;
  assert.equal(r.status, status, ctx);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/, ctx);
  assert.ok(r.json, `a JSON body: ${ctx}`);
  assert.equal(r.json.error, error, ctx);
  if (description instanceof RegExp) assert.match(r.json.error_description, description, ctx);
  else if (description !== undefined) assert.equal(r.json.error_description, description, ctx);
  assertNoStore(r, what);
  assert.equal(r.json.access_token, undefined, `no access token: ${ctx}`);
  assert.equal(r.json.refresh_token, undefined, `no refresh token: ${ctx}`);
  assert.equal(r.json.id_token, undefined, `no id token: ${ctx}`);
  if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm=/, `WWW-Authenticate: ${ctx}`);
}

/** A server-to-server grant's success: an access token, never a refresh token, no-store. */
function assertIssued(r, what = '') {
  assert.equal(r.status, 200, `${what} ${r.text}`);
  assert.equal(typeof r.json.access_token, 'string', `${what} ${r.text}`);
  assert.equal(r.json.refresh_token, undefined, `${what}: no refresh token`);
  assert.doesNotMatch(r.json.scope ?? '', /refresh_token/, what);
  assertNoStore(r, what);
  return r.json;
}

/** An app with KEY registered and a user pre-authorized for it. */
async function bearerSetup(appOverrides = {}) {
  const app = await newApp(appOverrides);
  const user = await newUser('bearer');
  await preauthorize(app, user);
  return { app, user };
}

// ===================================================================== JWT bearer: refusals

test('JWT bearer: a signature by a key the app did not register is refused', async () => {
  const { app, user } = await bearerSetup();
  const r = await bearer(rs256(bearerClaims(app, user), { privateKey: OTHER_KEY.privateKey }));
  assertRefused(r, 400, 'invalid_grant', 'invalid assertion signature');
  // The same claims signed with the registered key are fine: only the key was wrong.
  assertIssued(await bearer(rs256(bearerClaims(app, user))));
});

test('JWT bearer: an aud that is not this server is refused, as a string and as an array', async () => {
  const { app, user } = await bearerSetup();
  for (const aud of ['https://evil.example', ['https://evil.example', 'https://other.example'], `${issuer}/services/oauth2/revoke`, `${issuer}.evil.example`]) {
    const r = await bearer(rs256(bearerClaims(app, user, { aud })));
    assertRefused(r, 400, 'invalid_grant', /audience/, `aud ${JSON.stringify(aud)}`);
  }
  // No aud at all.
  const { aud: _, ...noAud } = bearerClaims(app, user);
  assertRefused(await bearer(rs256(noAud)), 400, 'invalid_grant', /audience/, 'no aud');
});

test('JWT bearer: an expired assertion is refused, whether exp is in seconds or milliseconds', async () => {
  const { app, user } = await bearerSetup();
  const past = nowS() - 3600;
  for (const [what, exp] of [['seconds', past], ['milliseconds', past * 1000], ['a numeric string', String(past)], ['beyond the 30 s leeway', nowS() - 120]]) {
    const r = await bearer(rs256(bearerClaims(app, user, { exp })));
    assertRefused(r, 400, 'invalid_grant', 'the assertion has expired', `exp in ${what}`);
  }
});

test('JWT bearer: an exp more than 10 minutes ahead is refused, in seconds and in milliseconds', async () => {
  const { app, user } = await bearerSetup();
  const ahead = nowS() + 3600;
  for (const [what, exp] of [['seconds', ahead], ['milliseconds', ahead * 1000], ['a far future', 1e300]]) {
    const r = await bearer(rs256(bearerClaims(app, user, { exp })));
    assertRefused(r, 400, 'invalid_grant', "the assertion's exp is more than 10 minutes ahead", `exp in ${what}`);
  }
  // No exp, and an nbf or iat in the future.
  const { exp: _, ...noExp } = bearerClaims(app, user);
  assertRefused(await bearer(rs256(noExp)), 400, 'invalid_grant', 'the assertion has no valid exp', 'no exp');
  assertRefused(await bearer(rs256(bearerClaims(app, user, { nbf: nowS() + 300 }))), 400, 'invalid_grant', "the assertion's nbf is in the future");
  assertRefused(await bearer(rs256(bearerClaims(app, user, { iat: nowS() + 300 }))), 400, 'invalid_grant', "the assertion's iat is in the future");
});

test('JWT bearer: a jti is single-use; of two concurrent presentations exactly one gets a token', async () => {
  const { app, user } = await bearerSetup();
  const assertion = rs256(bearerClaims(app, user, { jti: randomUUID() }));
  assertIssued(await bearer(assertion), 'first use');
  assertRefused(await bearer(assertion), 400, 'invalid_grant', "the assertion's jti was used before", 'second use');
  // A new jti is a new assertion.
  assertIssued(await bearer(rs256(bearerClaims(app, user, { jti: randomUUID() }))), 'another jti');

  // Races: two fetches of one assertion at once, several rounds.
  for (let round = 0; round < 5; round++) {
    const raced = rs256(bearerClaims(app, user, { jti: `race-${round}-${randomUUID()}` }));
    const results = await Promise.all([bearer(raced), bearer(raced)]);
    const won = results.filter((r) => r.status === 200);
    assert.equal(won.length, 1, `round ${round}: exactly one 200, got ${results.map((r) => `${r.status} ${r.text}`).join(' | ')}`);
    assertIssued(won[0], `round ${round} winner`);
    const lost = results.find((r) => r.status !== 200);
    assertRefused(lost, 400, 'invalid_grant', "the assertion's jti was used before", `round ${round} loser`);
  }
});

test('JWT bearer: an iss that is no app is invalid_client_id', async () => {
  const { app, user } = await bearerSetup();
  const r = await bearer(rs256(bearerClaims(app, user, { iss: `3MVG9${'x'.repeat(80)}` })));
  assertRefused(r, 400, 'invalid_client_id', 'client identifier invalid');
  const { iss: _, ...noIss } = bearerClaims(app, user);
  assertRefused(await bearer(rs256(noIss)), 400, 'invalid_grant', 'the assertion has no iss', 'no iss');
});

test('JWT bearer: a sub that is no user is refused', async () => {
  const { app } = await bearerSetup();
  const r = await bearer(rs256(bearerClaims(app, { username: `nobody-${uniq()}@example.com` })));
  assertRefused(r, 400, 'invalid_grant', /sub/);
});

test('JWT bearer: a user who never approved the app is refused until they approve it interactively', async () => {
  const app = await newApp();
  const user = await newUser('unapproved');
  const r = await bearer(rs256(bearerClaims(app, user)));
  // simple-salesforce matches this text exactly.
  assertRefused(r, 400, 'invalid_grant', "user hasn't approved this consumer");
  // The user logs in and approves the app in the browser flow…
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB }, { username: user.username, password: user.password });
  assert.deepEqual(a.pages, ['login', 'consent'], `${a.status} ${a.body ?? a.location}`);
  assert.ok(a.code, `${a.status} ${a.body ?? a.location}`);
  // …and from then on the server may act for them.
  const t = assertIssued(await bearer(rs256(bearerClaims(app, user))), 'after approval');
  assert.ok(t.id.endsWith(user.user_id), t.id);
});

test('JWT bearer: an admin-approved app refuses a user who is not pre-authorized', async () => {
  const app = await newApp({ permitted_users: 'admin_approved' });
  const user = await newUser('admin-approved');
  const r = await bearer(rs256(bearerClaims(app, user)));
  assertRefused(r, 400, 'invalid_app_access', 'user is not admin approved to access this app');
  await preauthorize(app, user);
  assertIssued(await bearer(rs256(bearerClaims(app, user))), 'pre-authorized');
});

test('JWT bearer: an inactive user is refused', async () => {
  const { app, user } = await bearerSetup();
  assertIssued(await bearer(rs256(bearerClaims(app, user))), 'while active');
  await deactivate(user);
  assertRefused(await bearer(rs256(bearerClaims(app, user))), 400, 'invalid_grant', 'inactive user');
});

test('JWT bearer: alg none and HS256 keyed with the registered public key are refused', async () => {
  const { app, user } = await bearerSetup();
  const claims = bearerClaims(app, user);
  const none = jws({ alg: 'none', typ: 'JWT' }, claims, () => Buffer.alloc(0));
  assertRefused(await bearer(none), 400, 'invalid_grant', 'unsigned assertions (alg none) are refused', 'alg none');
  // The classic key-confusion attack (RFC 8725 §2.1): the public key's PEM text as HMAC secret.
  const hs = jws({ alg: 'HS256', typ: 'JWT' }, claims, (input) => createHmac('sha256', KEY_PEM).update(input).digest());
  assertRefused(await bearer(hs), 400, 'invalid_grant', /^HMAC-signed assertions are refused/, 'HS256');
  // An RS256 header over an empty signature is a bad signature, nothing else.
  const empty = jws({ alg: 'RS256' }, claims, () => Buffer.alloc(0));
  assertRefused(await bearer(empty), 400, 'invalid_grant', 'invalid assertion signature', 'empty signature');
});

test('JWT bearer: an app without a certificate cannot verify assertions', async () => {
  const app = await newApp({ certificate: null });
  assert.equal(app.certificate, null);
  const user = await newUser('keyless');
  await preauthorize(app, user);
  const r = await bearer(rs256(bearerClaims(app, user)));
  assertRefused(r, 400, 'invalid_grant', 'the app has no certificate to verify assertions with');
});

test('JWT bearer: a malformed assertion is invalid_grant, a missing one invalid_request', async () => {
  for (const assertion of ['a.b', 'not-a-jwt', 'a.b.c.d', 'e30.e30.!!', '...']) {
    assertRefused(await bearer(assertion), 400, 'invalid_grant', 'the assertion is not a signed JWT', JSON.stringify(assertion));
  }
  assertRefused(await tokenRequest(w.baseUrl, { grant_type: JWT_BEARER }), 400, 'invalid_request', 'assertion required', 'no assertion');
});

test('JWT bearer: odd claim values never produce a 5xx', async () => {
  const { app, user } = await bearerSetup();
  const odd = [
    { exp: 'NaN' }, { exp: 'Infinity' }, { exp: -1 }, { exp: null }, { exp: [1] }, { exp: 1.5 },
    { nbf: 'soon' }, { iat: {} }, { aud: 42 }, { aud: [] }, { sub: 7 }, { sub: '' },
    { jti: '' }, { jti: 'j'.repeat(257) }, { jti: 12 },
  ];
  for (const extra of odd) {
    const r = await bearer(rs256(bearerClaims(app, user, extra)));
    assert.ok(r.status < 500, `${JSON.stringify(extra)}: ${r.status} ${r.text}`);
    assertRefused(r, 400, 'invalid_grant', undefined, JSON.stringify(extra));
  }
  // An unknown kid and an unknown alg.
  assertRefused(await bearer(rs256(bearerClaims(app, user), { header: { alg: 'PS256' } })), 400, 'invalid_grant', /PS256/, 'PS256');
  assertRefused(await bearer(rs256(bearerClaims(app, user), { header: { crit: ['exp'] } })), 400, 'invalid_grant', /crit/, 'crit');
});

// ================================================================ JWT bearer: accepted shapes

test('JWT bearer: what Salesforce clients send is accepted (exp in ms, exp as a string, aud login.salesforce.com, the token URL)', async () => {
  const { app, user } = await bearerSetup();
  for (const [what, extra] of [
    // sfdx-core: exp = Date.now() + 300, milliseconds, 300 ms ahead.
    ['exp in milliseconds (sfdx-core)', { exp: Date.now() + 300 }],
    // simple-salesforce: exp as a numeric string.
    ['exp as a string (simple-salesforce)', { exp: String(nowS() + 120) }],
    ['aud https://login.salesforce.com', { aud: 'https://login.salesforce.com' }],
    ['aud the token URL', { aud: `${issuer}/services/oauth2/token` }],
    ['aud an array holding the issuer', { aud: ['https://other.example', issuer] }],
  ]) {
    const t = assertIssued(await bearer(rs256(bearerClaims(app, user, extra))), what);
    assert.ok(t.id.endsWith(user.user_id), `${what}: ${t.id}`);
    // The token works.
    const info = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(info.status, 200, what);
    assert.equal((await info.json()).preferred_username, user.username, what);
  }
});

test('JWT bearer: an app may register a real X.509 certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=t'], { stdio: 'ignore' });
    const certificate = readFileSync(join(dir, 'c.pem'), 'utf8');
    const privateKey = readFileSync(join(dir, 'k.pem'), 'utf8');
    assert.match(certificate, /-----BEGIN CERTIFICATE-----/);
    const { app, user } = await bearerSetup({ certificate });
    assertIssued(await bearer(rs256(bearerClaims(app, user), { privateKey })), 'signed with the certificate key');
    // The certificate's key only: KEY is not registered on this app.
    assertRefused(await bearer(rs256(bearerClaims(app, user))), 400, 'invalid_grant', 'invalid assertion signature', 'another key');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('JWT bearer: an app may register an ES256 JWK; RS256 assertions are then refused', async () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' };
  const { app, user } = await bearerSetup({ certificate: JSON.stringify(jwk) });
  assertIssued(await bearer(es256(bearerClaims(app, user), ec.privateKey, { kid: 'ec-1' })), 'ES256 with the kid');
  assertIssued(await bearer(es256(bearerClaims(app, user), ec.privateKey)), 'ES256 without a kid');
  // Another P-256 key, a kid the app does not have, and an RS256 assertion.
  const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assertRefused(await bearer(es256(bearerClaims(app, user), otherEc.privateKey, { kid: 'ec-1' })), 400, 'invalid_grant', 'invalid assertion signature', 'another EC key');
  assertRefused(await bearer(es256(bearerClaims(app, user), ec.privateKey, { kid: 'ec-2' })), 400, 'invalid_grant', 'no registered key verifies ES256 assertions', 'unknown kid');
  assertRefused(await bearer(rs256(bearerClaims(app, user))), 400, 'invalid_grant', 'no registered key verifies RS256 assertions', 'RS256');
});

// ===================================================================== client credentials

const clientCredentials = (app, extra = {}, opts) => token({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, ...extra }, opts);

test('client credentials: an app without a run-as user is refused', async () => {
  const app = await newApp();
  assert.equal(app.client_credentials_user, null);
  assertRefused(await clientCredentials(app), 400, 'invalid_grant', 'no client credentials user enabled');
  // A run-as username that is nobody's is the same.
  const ghost = await newApp({ client_credentials_user: `ghost-${uniq()}@example.com` });
  assertRefused(await clientCredentials(ghost), 400, 'invalid_grant', 'no client credentials user enabled', 'unknown run-as user');
});

test('client credentials: a wrong or missing secret is 401 invalid_client with WWW-Authenticate', async () => {
  const user = await newUser('cc');
  const app = await newApp({ client_credentials_user: user.username });
  assertRefused(await clientCredentials(app, { client_secret: 'not-the-secret' }), 401, 'invalid_client', 'invalid client credentials', 'wrong secret');
  assertRefused(await token({ grant_type: 'client_credentials', client_id: app.client_id }), 401, 'invalid_client', 'invalid client credentials', 'no secret');
  const basic = Buffer.from(`${app.client_id}:wrong`).toString('base64');
  assertRefused(await token({ grant_type: 'client_credentials' }, { headers: { authorization: `Basic ${basic}` } }), 401, 'invalid_client', 'invalid client credentials', 'wrong Basic');
  assertRefused(await token({ grant_type: 'client_credentials' }), 401, 'invalid_client', undefined, 'no client at all');
});

test('client credentials: an inactive run-as user is refused', async () => {
  const user = await newUser('cc-inactive');
  const app = await newApp({ client_credentials_user: user.username });
  assertIssued(await clientCredentials(app), 'while active');
  await deactivate(user);
  assertRefused(await clientCredentials(app), 400, 'invalid_grant', 'the client credentials user is inactive');
});

test('client credentials: Basic authentication works, as the run-as user, without refresh token or id token', async () => {
  const user = await newUser('cc-basic');
  const app = await newApp({ client_credentials_user: user.username });
  const basic = Buffer.from(`${encodeURIComponent(app.client_id)}:${encodeURIComponent(app.client_secret)}`).toString('base64');
  const t = assertIssued(await token({ grant_type: 'client_credentials', scope: 'api' }, { headers: { authorization: `Basic ${basic}` } }), 'Basic');
  assert.equal(t.scope, 'api');
  assert.equal(t.id_token, undefined);
  assert.ok(t.id.endsWith(user.user_id), t.id);
  const body = assertIssued(await clientCredentials(app), 'secret in the body');
  assert.doesNotMatch(body.scope, /openid|refresh_token/);
  assert.equal(body.id_token, undefined);
});

// =============================================================================== password

const passwordGrant = (app, username, password, opts) => token({ grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret, username, password }, opts);

test('password: off, wrong password and unknown user answer byte for byte alike; on with the right password issues no refresh token', async () => {
  const app = await newApp();
  const user = await newUser('pw');
  await allowPasswordFlow(false);
  try {
    const off = await passwordGrant(app, user.username, user.password);
    await allowPasswordFlow(true);
    const wrong = await passwordGrant(app, user.username, 'wrong password');
    const unknown = await passwordGrant(app, `nobody-${uniq()}@example.com`, user.password);
    for (const [what, r] of [['flow off, right password', off], ['on, wrong password', wrong], ['on, unknown user', unknown]]) {
      assertRefused(r, 400, 'invalid_grant', 'authentication failure', what);
      assert.equal(r.text, '{"error":"invalid_grant","error_description":"authentication failure"}', what);
      assert.equal(r.headers.get('content-type'), off.headers.get('content-type'), what);
    }
    // An inactive user's right password is the same failure.
    const inactive = await newUser('pw-inactive');
    await deactivate(inactive);
    const r = await passwordGrant(app, inactive.username, inactive.password);
    assert.equal(r.status, off.status);
    assert.equal(r.text, off.text, 'inactive user');

    const t = assertIssued(await passwordGrant(app, user.username, user.password), 'on, right password');
    assert.ok(t.id.endsWith(user.user_id), t.id);
    assert.equal(t.refresh_token, undefined);
  } finally {
    await allowPasswordFlow(false);
  }
});

test('password: confidential clients only — no secret, or a wrong one, is 401 invalid_client', async () => {
  const user = await newUser('pw-public');
  // A public app (no secret needed for its code exchange or refresh)…
  const app = await newApp({ secret_required_web_server: false, secret_required_refresh: false, rotate_refresh_tokens: true });
  await allowPasswordFlow(true);
  try {
    const noSecret = await token({ grant_type: 'password', client_id: app.client_id, username: user.username, password: user.password });
    assertRefused(noSecret, 401, 'invalid_client', 'invalid client credentials', 'no secret');
    const wrong = await passwordGrant({ ...app, client_secret: 'wrong' }, user.username, user.password);
    assertRefused(wrong, 401, 'invalid_client', 'invalid client credentials', 'wrong secret');
    // …which with its secret gets its token.
    assertIssued(await passwordGrant(app, user.username, user.password), 'with the secret');
  } finally {
    await allowPasswordFlow(false);
  }
});

test('password: 9 wrong guesses for a user from one IP, then the right password is refused with 429; from another IP it works', async () => {
  const app = await newApp();
  await allowPasswordFlow(true);
  try {
    await inOneRateWindow(25000, async (attempt) => {
      const user = await newUser('pw-throttle');
      const ip = `203.0.113.${40 + attempt}`;
      for (let i = 0; i < 9; i++) {
        // Mixed case: usernames, and so the throttle key, are case-insensitive.
        const username = i % 2 ? user.username.toUpperCase() : user.username;
        const r = await passwordGrant(app, username, `guess-${i}`, { ip });
        assertRefused(r, 400, 'invalid_grant', 'authentication failure', `guess ${i + 1}`);
      }
      const r = await passwordGrant(app, user.username.toUpperCase(), user.password, { ip });
      assertRefused(r, 429, 'rate_limit_exceeded', /./, 'the tenth attempt, with the right password');
      assert.equal(r.headers.get('retry-after'), '60');
      assert.deepEqual(Object.keys(r.json).sort(), ['error', 'error_description']);
      // The same user from another address is not locked out.
      assertIssued(await passwordGrant(app, user.username, user.password, { ip: `198.51.100.${40 + attempt}` }), 'another IP');
    });
  } finally {
    await allowPasswordFlow(false);
  }
});

// ========================================================================= private_key_jwt

async function pkjSetup() {
  const user = await newUser('pkj');
  const app = await newApp({ client_credentials_user: user.username });
  return { app, user };
}

const ccWithAssertion = (assertion, extra = {}) => token({ grant_type: 'client_credentials', ...withAssertion(assertion), ...extra });

test('private_key_jwt at the token endpoint: accepted once; a replayed jti is refused', async () => {
  const { app, user } = await pkjSetup();
  const assertion = rs256(clientClaims(app));
  const t = assertIssued(await ccWithAssertion(assertion), 'first use');
  assert.ok(t.id.endsWith(user.user_id), t.id);
  assert.equal(t.signature, undefined, 'no secret, no signature');
  assertRefused(await ccWithAssertion(assertion), 401, 'invalid_client', 'client assertion: jti already used', 'replayed');
  // The token URL as aud, and a client_id beside the assertion, are fine too.
  assertIssued(await ccWithAssertion(rs256(clientClaims(app, { aud: `${issuer}/services/oauth2/token` })), { client_id: app.client_id }), 'aud token URL');
});

test('private_key_jwt at the token endpoint: refusals', async () => {
  const { app } = await pkjSetup();
  const { jti: _, ...noJti } = clientClaims(app);
  assertRefused(await ccWithAssertion(rs256(noJti)), 401, 'invalid_client', 'client assertion: the assertion has no jti', 'no jti');
  assertRefused(await ccWithAssertion(rs256(clientClaims(app, { aud: 'https://evil.example' }))), 401, 'invalid_client', /^client assertion: .*audience/, 'wrong aud');
  assertRefused(await ccWithAssertion(rs256(clientClaims(app), { privateKey: OTHER_KEY.privateKey })), 401, 'invalid_client', 'client assertion: invalid assertion signature', 'wrong key');
  assertRefused(await ccWithAssertion(rs256(clientClaims(app, { sub: 'someone-else' }))), 401, 'invalid_client', 'client assertion: iss and sub must both be the client_id', 'iss ≠ sub');
  assertRefused(await ccWithAssertion(rs256(clientClaims(app, { exp: nowS() - 3600 }))), 401, 'invalid_client', 'client assertion: the assertion has expired', 'expired');
  assertRefused(await ccWithAssertion(rs256(clientClaims(app)), { client_id: 'someone-else' }), 401, 'invalid_client', 'client_id differs from the client assertion\'s iss', 'client_id ≠ iss');
  // A secret and an assertion together are two authentication methods (RFC 6749 §2.3).
  const both = await ccWithAssertion(rs256(clientClaims(app)), { client_id: app.client_id, client_secret: app.client_secret });
  assertRefused(both, 400, 'invalid_request', 'a client assertion and a client secret were both sent: use one', 'secret + assertion');
  const basic = Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64');
  const viaHeader = await token({ grant_type: 'client_credentials', ...withAssertion(rs256(clientClaims(app))) }, { headers: { authorization: `Basic ${basic}` } });
  assertRefused(viaHeader, 400, 'invalid_request', 'a client assertion and a client secret were both sent: use one', 'Basic + assertion');
  // Malformed assertions and types.
  assertRefused(await ccWithAssertion('a.b'), 401, 'invalid_client', undefined, 'malformed');
  assertRefused(await token({ grant_type: 'client_credentials', client_assertion_type: 'urn:other', client_assertion: rs256(clientClaims(app)) }), 401, 'invalid_client', /client_assertion_type/, 'other type');
  assertRefused(await token({ grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE }), 400, 'invalid_request', 'client_assertion required', 'type without assertion');
});

test('private_key_jwt at introspection (aud the introspection URL) and revocation (aud the issuer); revoked tokens introspect inactive', async () => {
  const { app } = await pkjSetup();
  const { access_token } = assertIssued(await ccWithAssertion(rs256(clientClaims(app))));
  const introspectUrl = `${issuer}/services/oauth2/introspect`;
  const introspect = (aud) => postForm('/services/oauth2/introspect', { token: access_token, ...withAssertion(rs256(clientClaims(app, { aud }))) });

  const before = await introspect(introspectUrl);
  assert.equal(before.status, 200, before.text);
  assert.equal(before.json.active, true, before.text);
  assert.equal(before.json.client_id, app.client_id);
  // Another endpoint's URL is not an audience here.
  assertRefused(await introspect(`${issuer}/services/oauth2/revoke`), 401, 'invalid_client', /^client assertion: .*audience/, 'aud of the revocation URL at introspection');
  // An introspection assertion replayed.
  const once = rs256(clientClaims(app, { aud: introspectUrl }));
  assert.equal((await postForm('/services/oauth2/introspect', { token: access_token, ...withAssertion(once) })).status, 200);
  assertRefused(await postForm('/services/oauth2/introspect', { token: access_token, ...withAssertion(once) }), 401, 'invalid_client', 'client assertion: jti already used', 'replay at introspection');
  // A bad assertion at revocation revokes nothing.
  const badRevoke = await postForm('/services/oauth2/revoke', { token: access_token, ...withAssertion(rs256(clientClaims(app), { privateKey: OTHER_KEY.privateKey })) });
  assertRefused(badRevoke, 401, 'invalid_client', 'client assertion: invalid assertion signature', 'wrong key at revocation');
  assert.equal((await introspect(issuer)).json.active, true, 'still active after the refused revocation');

  const revoked = await postForm('/services/oauth2/revoke', { token: access_token, ...withAssertion(rs256(clientClaims(app, { aud: issuer }))) });
  assert.equal(revoked.status, 200, revoked.text);
  const after = await introspect(introspectUrl);
  assert.equal(after.status, 200, after.text);
  assert.equal(after.json.active, false, after.text);
});

// ============================================================================== admin API

test('the admin API refuses certificates it could not verify with, and keeps the old one', async () => {
  const privatePem = KEY.privateKey.export({ type: 'pkcs8', format: 'pem' });
  const cases = [
    ['a private key PEM', privatePem, /PRIVATE KEY/],
    ['garbage', 'not a key', /./],
    ['a truncated PEM', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /./],
    ['a private JWK', JSON.stringify(KEY.privateKey.export({ format: 'jwk' })), /private/],
    ['a P-384 JWK', JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' })), /P-256/],
    ['a 1024-bit RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }), /./],
  ];
  for (const [what, certificate, why] of cases) {
    const r = await w.admin('POST', '/admin/apps', { name: `bad cert ${uniq()}`, callback_urls: [CB], scopes: ['api'], certificate });
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal(r.json.error, 'invalid_request', what);
    assert.match(r.json.error_description, /^certificate: /, what);
    assert.match(r.json.error_description, why, what);
    assert.doesNotMatch(r.text, /BEGIN PRIVATE KEY|MII/, `${what}: the key is not echoed back`);
  }
  // A PATCH with a bad certificate changes nothing: the registered key still verifies.
  const { app, user } = await bearerSetup();
  const r = await w.admin('PATCH', `/admin/apps/${app.client_id}`, { certificate: privatePem });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error_description, /^certificate: /);
  assert.equal((await w.admin('GET', `/admin/apps/${app.client_id}`)).json.certificate, KEY_PEM);
  assertIssued(await bearer(rs256(bearerClaims(app, user))), 'the old key still works');
});
