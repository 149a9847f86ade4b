// Checklist section E: grant- and endpoint-specific checks (client credentials, JWT bearer,
// token exchange, the device flow, dynamic registration, revocation, introspection, the
// password grant, implicit, HTTP hygiene), one test per applicable item over HTTP against the
// real worker (one worker for the file). The device pages are driven over plain HTTP (the
// Chromium walks are in tests/e2e/device.test.mjs). Throttles are in throttling.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { startTestWorker } from '../e2e/harness.mjs';
import { fragmentOf, queryOf, halfHash } from '../e2e/ua-helpers.mjs';
import { formFields } from '../e2e/flow.mjs';
import {
  CB, JWT_BEARER, CLIENT_ASSERTION_TYPE, DEVICE_GRANT, TOKEN_EXCHANGE, newApp, newUser, setting, call, postForm,
  token, introspect, revoke, userinfo, basic, discovery, assertOAuthError, loginBrowser, codeFor, tokensFor,
  refresh, ccApp, ccToken, mintIat, register, jwtPayload, nowS, uniq, assertNoPanic, CookieJar,
} from './cg-support.mjs';

let w;
let issuer;
let app;
let user;
let jar;
let ipSeq = 0;
/** A caller address of its own (user-code entries are throttled per address). */
const nextIp = () => `198.18.${Math.floor(++ipSeq / 250)}.${ipSeq % 250}`;

before(async () => {
  w = await startTestWorker();
  issuer = (await discovery(w)).issuer;
  app = await newApp(w);
  user = await newUser(w, 'e');
  ({ jar } = await loginBrowser(w, app, user));
});

after(async () => {
  if (w) {
    assertNoPanic(w);
    await w.stop();
  }
});

const authzGet = (params, opts = {}) => call(w, `/services/oauth2/authorize?${new URLSearchParams(params)}`, opts);

// RS256 JWTs signed with a key registered as an app's certificate.
const KEY = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_PEM = KEY.publicKey.export({ type: 'spki', format: 'pem' });
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function rs256(claims, header = {}) {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', ...header })}.${b64(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(KEY.privateKey).toString('base64url')}`;
}

// ----------------------------------------------------------------------------------- E.158

test('E.158 client credentials: confidential and authenticated only, allowed per client, scope within the app\'s, never a refresh or ID token', async () => {
  const { app: m2m, user: runAs } = await ccApp(w, { scopes: ['api', 'refresh_token', 'openid', 'web'] });
  const ok = await token(w, { grant_type: 'client_credentials' }, { headers: basic(m2m.client_id, m2m.client_secret) });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(ok.json.refresh_token, undefined);
  assert.equal(ok.json.id_token, undefined);
  assert.deepEqual(ok.json.scope.split(' ').sort(), ['api', 'web'], 'the app\'s scopes without refresh_token and openid');
  assert.ok(ok.json.id.endsWith(`/${runAs.user_id}`));
  assertOAuthError(await token(w, { grant_type: 'client_credentials', scope: 'full' }, { headers: basic(m2m.client_id, m2m.client_secret) }), 400, 'invalid_scope', 'a scope the app lacks');
  assertOAuthError(await token(w, { grant_type: 'client_credentials', client_id: m2m.client_id }), 401, 'invalid_client', 'unauthenticated');
  assertOAuthError(await token(w, { grant_type: 'client_credentials' }), 401, 'invalid_client', 'anonymous');
  // Not allowed: an app without a run-as user, and a registered client that did not register it.
  const plain = await newApp(w);
  const none = await token(w, { grant_type: 'client_credentials' }, { headers: basic(plain.client_id, plain.client_secret) });
  assertOAuthError(none, 400, 'invalid_grant', 'no run-as user');
  assert.equal(none.json.error_description, 'no client credentials user enabled');
  const reg = await register(w, { redirect_uris: [CB], client_name: 'code only' }, { iat: await mintIat(w) });
  assert.equal((await w.admin('PATCH', `/admin/apps/${reg.json.client_id}`, { client_credentials_user: runAs.username })).status, 200);
  assertOAuthError(await token(w, { grant_type: 'client_credentials' }, { headers: basic(reg.json.client_id, reg.json.client_secret) }), 400, 'unauthorized_client', 'grant not registered');
  // A public registered client cannot even register the grant.
  const pub = await register(w, { redirect_uris: [CB], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'client_credentials'] }, { iat: await mintIat(w) });
  assert.equal(pub.status, 400, pub.text);
  assert.equal(pub.json.error, 'invalid_client_metadata');
});

// ----------------------------------------------------------------------------------- E.159

test('E.159 JWT bearer: the grant and client assertion type URNs are exact; the assertion is exactly one JWT', async () => {
  const a = await newApp(w, { certificate: KEY_PEM });
  const u = await newUser(w, 'e159');
  assert.equal((await w.admin('POST', `/admin/apps/${a.client_id}/users/${u.user_id}`)).status, 200);
  const claims = () => ({ iss: a.client_id, sub: u.username, aud: issuer, exp: nowS() + 120, jti: randomUUID() });
  const ok = await token(w, { grant_type: JWT_BEARER, assertion: rs256(claims()) });
  assert.equal(ok.status, 200, ok.text);
  for (const gt of [JWT_BEARER.toUpperCase(), 'jwt-bearer', 'urn:ietf:params:oauth:grant-type:saml2-bearer']) {
    assertOAuthError(await token(w, { grant_type: gt, assertion: rs256(claims()) }), 400, 'unsupported_grant_type', gt);
  }
  const two = await token(w, new URLSearchParams([['grant_type', JWT_BEARER], ['assertion', rs256(claims())], ['assertion', rs256(claims())]]));
  assertOAuthError(two, 400, 'invalid_request', 'two assertions');
  for (const junk of [`${rs256(claims())} ${rs256(claims())}`, `${rs256(claims())}.extra`, 'not-a-jwt']) {
    assertOAuthError(await token(w, { grant_type: JWT_BEARER, assertion: junk }), 400, 'invalid_grant', junk.slice(0, 30));
  }
  // Client authentication by assertion: only the RFC 7523 §2.2 URN.
  const { app: m2m } = await ccApp(w, { certificate: KEY_PEM });
  const cc = (type) => token(w, { grant_type: 'client_credentials', client_assertion_type: type, client_assertion: rs256({ iss: m2m.client_id, sub: m2m.client_id, aud: issuer, exp: nowS() + 60, jti: randomUUID() }) });
  assert.equal((await cc(CLIENT_ASSERTION_TYPE)).status, 200);
  for (const type of [JWT_BEARER, 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer', CLIENT_ASSERTION_TYPE.toUpperCase()]) {
    assertOAuthError(await cc(type), 401, 'invalid_client', type);
  }
});

// ----------------------------------------------------------------------------------- E.163

/** An app with asset tokens (unsigned actor tokens allowed), and a live access token of it. */
async function assetSetup() {
  const { app: a } = await ccApp(w, { scopes: ['api'], asset_tokens: { audiences: ['https://assets.example.com'], ttl_s: 300, allow_unsigned: true } });
  const subject = (await ccToken(w, a)).access_token;
  const actor = `${b64({ alg: 'none' })}.${b64({ did: `dev-${uniq()}`, Name: 'Sensor', Asset: { Name: 'Sensor', SerialNumber: uniq() } })}.`;
  const exchange = (fields = {}) => token(w, Object.fromEntries(Object.entries({
    grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    actor_token: actor, actor_token_type: 'urn:ietf:params:oauth:token-type:jwt', ...fields,
  }).filter(([, v]) => v !== undefined)));
  return { a, subject, actor, exchange };
}

test('E.163 token exchange validates the subject token, answers issued_token_type and token_type, and stays within the app\'s audiences', async () => {
  const { a, subject, exchange } = await assetSetup();
  const ok = await exchange();
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt');
  assert.equal(ok.json.token_type, 'Bearer');
  assert.deepEqual(jwtPayload(ok.json.access_token).aud, ['https://assets.example.com']);
  // Subject tokens that are not live access tokens of ours.
  for (const [what, st] of [['unknown', 'nope'], ['an id token-like JWT', ok.json.access_token], ['tampered', `${subject}x`]]) {
    assertOAuthError(await exchange({ subject_token: st }), 400, 'invalid_grant', what);
  }
  const other = await newApp(w);
  assertOAuthError(await exchange({ client_id: other.client_id, client_secret: other.client_secret }), 400, 'invalid_grant', 'another client');
  assertOAuthError(await exchange({ client_id: a.client_id, client_secret: 'wrong' }), 401, 'invalid_client', 'wrong secret');
  assert.equal((await revoke(w, subject)).status, 200);
  assertOAuthError(await exchange(), 400, 'invalid_grant', 'revoked subject');
});

test('E.163 an audience or resource the exchange cannot serve is invalid_target (RFC 8693 §2.2.2)', async () => {
  const { exchange } = await assetSetup();
  for (const fields of [{ audience: 'https://elsewhere.example' }, { resource: 'https://elsewhere.example/api' }]) {
    const r = await exchange(fields);
    assertOAuthError(r, 400, 'invalid_target', JSON.stringify(fields));
  }
});

// ----------------------------------------------------------------------------------- devices

const startDevice = (a, scope = 'api') => token(w, { response_type: 'device_code', client_id: a.client_id, scope });
const poll = (a, deviceCode) => token(w, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: a.client_id, client_secret: a.client_secret });

/** Types `userCode` on /setup/connect in the logged-in browser `jar` from a fresh address; the page it leads to. */
async function enterCode(userCode, browser = jar) {
  const ip = nextIp();
  const form = await call(w, `/setup/connect?user_code=${encodeURIComponent(userCode)}`, { jar: browser, ip });
  assert.equal(form.status, 200, form.text);
  const { csrf_token } = formFields(form.text);
  return { form, page: await postForm(w, '/setup/connect', { csrf_token, user_code: userCode, continue: '1' }, { jar: browser, ip }) };
}

/** Approves or denies a device code as the jar's user; the final page. */
async function decide(userCode, button) {
  const { page } = await enterCode(userCode);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /name="approve"/, 'a logged-in browser goes straight to consent');
  return postForm(w, '/services/oauth2/authorize', { ...formFields(page.text), [button]: '1' }, { jar });
}

test('E.164 device authorization: client_id required, confidential clients authenticate (RFC dialect), and the answer has every RFC 8628 §3.2 field', async () => {
  const device = (fields, headers = {}) => postForm(w, '/services/oauth2/device', fields, { headers });
  assertOAuthError(await device({ scope: 'api' }), 401, 'invalid_client', 'no client_id');
  assertOAuthError(await device({ client_id: app.client_id, scope: 'api' }), 401, 'invalid_client', 'confidential without secret');
  assertOAuthError(await device({ client_id: app.client_id, client_secret: 'wrong', scope: 'api' }), 401, 'invalid_client', 'wrong secret');
  assertOAuthError(await device({ client_id: 'nope', scope: 'api' }), 400, 'invalid_client_id', 'unknown client');
  assertOAuthError(await device({ client_id: app.client_id, client_secret: app.client_secret, scope: 'full' }), 400, 'invalid_scope', 'scope the app lacks');
  const r = await device({ scope: 'api' }, basic(app.client_id, app.client_secret));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  assert.deepEqual(Object.keys(r.json).sort(), ['device_code', 'expires_in', 'interval', 'user_code', 'verification_uri', 'verification_uri_complete']);
  assert.equal(r.json.verification_uri, `${issuer}/setup/connect`);
  assert.equal(r.json.verification_uri_complete, `${issuer}/setup/connect?user_code=${r.json.user_code}`);
  assert.equal(r.json.interval, 5);
  assert.equal(r.json.expires_in, 600);
  // A public app (no secret required) needs only its client_id.
  const pub = await newApp(w, { secret_required_web_server: false });
  assert.equal((await device({ client_id: pub.client_id, scope: 'api' })).status, 200);
});

test('E.165 device polling: authorization_pending, slow_down, access_denied, tokens once, and a device code bound to its client', async () => {
  const d = (await startDevice(app)).json;
  assertOAuthError(await poll(app, d.device_code), 400, 'authorization_pending', 'first poll');
  const slow = await poll(app, d.device_code);
  assertOAuthError(slow, 400, 'slow_down', 'second poll at once');
  const other = await newApp(w);
  assertOAuthError(await poll(other, d.device_code), 400, 'invalid_grant', 'another client');
  assertOAuthError(await poll(app, 'nope'), 400, 'invalid_grant', 'unknown device code');
  // Approved: tokens at the first poll, then never again.
  const ok = (await startDevice(app, 'api refresh_token')).json;
  const done = await decide(ok.user_code, 'approve');
  assert.equal(done.status, 200, done.text);
  assert.match(done.text, /Device connected/);
  assert.equal(done.location, null, 'a page, never a redirect');
  assertOAuthError(await poll(other, ok.device_code), 400, 'invalid_grant', 'another client, approved code');
  const got = await poll(app, ok.device_code);
  assert.equal(got.status, 200, got.text);
  assert.ok(got.json.access_token && got.json.refresh_token);
  assertOAuthError(await poll(app, ok.device_code), 400, 'invalid_grant', 'the code is spent');
  // Denied.
  const no = (await startDevice(app)).json;
  const denied = await decide(no.user_code, 'deny');
  assert.match(denied.text, /Access denied/);
  assertOAuthError(await poll(app, no.device_code), 400, 'access_denied', 'denied');
});

test('E.166 user codes are typed as people type them (any case, dash or spaces) and cannot be reused once answered', async () => {
  for (const typed of [(c) => c.toLowerCase(), (c) => c.replace('-', ''), (c) => c.replace('-', ' ').toLowerCase(), (c) => ` ${c.replace('-', '  ')} `]) {
    const d = (await startDevice(app)).json;
    const { page } = await enterCode(typed(d.user_code));
    assert.equal(page.status, 200, `${typed(d.user_code)}: ${page.text.slice(0, 300)}`);
    assert.match(page.text, /name="approve"/, typed(d.user_code));
  }
  // Letters outside the alphabet, and a right-looking code nobody was given, are refused.
  for (const bad of ['AEIO-UAEI', 'BCDF-GHJ', 'BCDF-GHJKL']) {
    const { page } = await enterCode(bad);
    assert.equal(page.status, 400, bad);
    assert.match(page.text, /not valid/);
  }
  const d = (await startDevice(app)).json;
  assert.equal((await decide(d.user_code, 'approve')).status, 200);
  const { page } = await enterCode(d.user_code);
  assert.equal(page.status, 400, 'an answered code is not valid any more');
});

test('E.167 the device consent page names the app, the scopes and the code with a warning, and neither page can be framed', async () => {
  const named = await newApp(w, { name: `Living Room TV ${uniq()}` });
  const d = (await startDevice(named, 'api refresh_token')).json;
  const { form, page } = await enterCode(d.user_code);
  for (const [what, p] of [['code page', form], ['consent page', page]]) {
    assert.equal(p.headers.get('x-frame-options'), 'DENY', what);
    assert.match(p.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, what);
  }
  assert.ok(page.text.includes(named.name), 'the app');
  assert.ok(page.text.includes(d.user_code), 'the code');
  assert.match(page.text, /\(api\)/);
  assert.match(page.text, /\(refresh_token\)/);
  assert.match(page.text, /Allow only if that code is on your device/);
  assert.ok(page.text.includes(user.username), 'the account that would be connected');
  // Even an app the person approved before asks again for a device (RFC 8628 §5.4).
  const again = (await startDevice(app)).json;
  assert.match((await enterCode(again.user_code)).page.text, /name="approve"/);
});

// ----------------------------------------------------------------------------------- E.168

test('E.168 registration: the server assigns client_id and says when; a secret comes with client_secret_expires_at', async () => {
  const iat = await mintIat(w);
  const before = nowS();
  const conf = await register(w, { redirect_uris: [CB], client_name: 'Registered' }, { iat });
  assert.equal(conf.status, 201, conf.text);
  assert.match(conf.headers.get('cache-control') ?? '', /no-store/);
  assert.match(conf.json.client_id, /^3MVG9/);
  assert.ok(conf.json.client_id_issued_at >= before - 1 && conf.json.client_id_issued_at <= nowS() + 1, String(conf.json.client_id_issued_at));
  assert.equal(typeof conf.json.client_secret, 'string');
  assert.equal(conf.json.client_secret_expires_at, 0, 'REQUIRED with a secret (0: does not expire)');
  assert.equal(conf.json.registration_client_uri, `${issuer}/services/oauth2/register/${conf.json.client_id}`);
  const pub = await register(w, { redirect_uris: [CB], token_endpoint_auth_method: 'none' }, { iat });
  assert.equal(pub.status, 201, pub.text);
  assert.equal(pub.json.client_secret, undefined);
  assert.notEqual(pub.json.client_id, conf.json.client_id);
  // Self-asserted metadata is echoed as stored, not trusted further: a client_name with markup
  // is shown escaped on the consent page.
  const xss = await register(w, { redirect_uris: [CB], client_name: '<script>alert(1)</script>', scope: 'api' }, { iat });
  const page = await authzGet({ response_type: 'code', client_id: xss.json.client_id, redirect_uri: CB }, { jar });
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes('<script>alert(1)</script>'), 'the name is escaped');
});

// ----------------------------------------------------------------------------------- E.170

test('E.170 fetched URIs are guarded (SSRF): jwks_uri and metadata documents only over https to public hosts; no sector_identifier_uri or pairwise subjects are claimed', async () => {
  const iat = await mintIat(w);
  const base = { redirect_uris: [CB], token_endpoint_auth_method: 'private_key_jwt' };
  for (const jwks_uri of ['http://rp.example.com/jwks', 'https://10.0.0.1/jwks', 'https://169.254.169.254/latest/meta-data', 'https://192.168.1.1/jwks', 'https://100.64.0.1/jwks', 'https://[fd00::1]/jwks', 'https://[::1]/jwks', 'https://[::ffff:10.0.0.1]/jwks', 'https://167772161/jwks', 'https://0x7f000002/jwks', 'https://localhost/jwks', 'https://x.localhost/jwks', 'https://user:pw@rp.example.com/jwks', 'file:///etc/passwd']) {
    const r = await register(w, { ...base, jwks_uri }, { iat });
    assert.equal(r.status, 400, `${jwks_uri}: ${r.status} ${r.text}`);
    assert.equal(r.json.error, 'invalid_client_metadata', jwks_uri);
  }
  for (const logo_uri of ['http://rp.example.com/logo.png', 'javascript:alert(1)']) {
    const r = await register(w, { redirect_uris: [CB], logo_uri }, { iat });
    assert.equal(r.status, 400, `${logo_uri}: ${r.text}`);
  }
  // Client ID metadata documents at private addresses are refused before any fetch.
  for (const docUrl of ['https://10.0.0.1/client.json', 'https://169.254.169.254/client.json', 'https://localhost/client.json', 'http://rp.example.com/client.json']) {
    const r = await authzGet({ response_type: 'code', client_id: docUrl, redirect_uri: CB });
    assert.ok(r.status >= 400 && r.status < 500, `${docUrl}: ${r.status}`);
    assert.equal(r.location, null, docUrl);
  }
  // Pairwise subjects are not offered: discovery says public only, and a client asking for them
  // is not told it got them.
  assert.deepEqual((await discovery(w)).subject_types_supported, ['public']);
  const pw = await register(w, { redirect_uris: [CB], subject_type: 'pairwise', sector_identifier_uri: 'https://rp.example.com/sector.json' }, { iat });
  assert.ok(pw.status === 400 || (pw.status === 201 && pw.json.subject_type !== 'pairwise' && pw.json.sector_identifier_uri === undefined), `${pw.status} ${pw.text}`);
});

// ----------------------------------------------------------------------------------- E.172

test('E.172 registration access tokens: long and random, for their own client only, rotated by an update', async () => {
  const iat = await mintIat(w);
  const a = (await register(w, { redirect_uris: [CB], client_name: 'A' }, { iat })).json;
  const b = (await register(w, { redirect_uris: [CB], client_name: 'B' }, { iat })).json;
  assert.match(a.registration_access_token, /^[0-9A-Za-z]{43}$/);
  assert.notEqual(a.registration_access_token, b.registration_access_token);
  const read = (client, tok) => call(w, client.registration_client_uri, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal((await read(a, a.registration_access_token)).status, 200);
  const cross = await read(b, a.registration_access_token);
  assert.equal(cross.status, 401, cross.text);
  assert.equal(cross.json.error, 'invalid_token');
  const put = await call(w, a.registration_client_uri, {
    method: 'PUT',
    headers: { authorization: `Bearer ${a.registration_access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: a.client_id, redirect_uris: [CB], client_name: 'A2', grant_types: a.grant_types, response_types: a.response_types, token_endpoint_auth_method: a.token_endpoint_auth_method, scope: a.scope }),
  });
  assert.equal(put.status, 200, put.text);
  assert.notEqual(put.json.registration_access_token, a.registration_access_token, 'rotated');
  assert.equal((await read(a, a.registration_access_token)).status, 401, 'the old token is dead');
  assert.equal((await read(a, put.json.registration_access_token)).status, 200);
  assert.equal((await read(a, put.json.registration_access_token)).json.registration_access_token, undefined, 'GET never shows it');
});

// ----------------------------------------------------------------------------------- E.173

test('E.173 revocation: 200 for unknown tokens; a wrong secret is 401; an authenticated client cannot revoke another\'s token; a wrong or unknown token_type_hint still finds the token', async () => {
  for (const t of ['nope', 'x'.repeat(64), '00D000000000000AAA!abc']) {
    const r = await revoke(w, t);
    assert.equal(r.status, 200, t);
    assert.equal(r.text, '');
  }
  const t = await tokensFor(w, jar, app, { scope: 'api refresh_token' });
  const other = await newApp(w);
  const wrongSecret = await revoke(w, t.access_token, { client_id: app.client_id, client_secret: 'wrong' });
  assertOAuthError(wrongSecret, 401, 'invalid_client', 'wrong secret');
  assert.equal((await introspect(w, app, t.access_token)).json.active, true, 'a refused revocation revokes nothing');
  const foreign = await revoke(w, t.refresh_token, { client_id: other.client_id, client_secret: other.client_secret });
  assert.equal(foreign.status, 200, 'no oracle');
  assert.equal((await introspect(w, app, t.refresh_token)).json.active, true, 'another client\'s revocation has no effect');
  // Hints: the wrong type, and a type nobody knows.
  assert.equal((await revoke(w, t.access_token, { token_type_hint: 'refresh_token', client_id: app.client_id, client_secret: app.client_secret })).status, 200);
  assert.equal((await introspect(w, app, t.access_token)).json.active, false, 'found despite the wrong hint');
  assert.equal((await revoke(w, t.refresh_token, { token_type_hint: 'weird_type', client_id: app.client_id, client_secret: app.client_secret })).status, 200);
  assert.equal((await introspect(w, app, t.refresh_token)).json.active, false, 'an unknown hint is ignored');
  assertOAuthError(await postForm(w, '/services/oauth2/revoke', {}), 400, 'invalid_request', 'no token');
});

// ----------------------------------------------------------------------------------- E.174

test('E.174 revoking an access token ends only it; revoking a refresh token ends every access token of its grant, at once', async () => {
  const t = await tokensFor(w, jar, app, { scope: 'api refresh_token' });
  const r1 = (await refresh(w, app, t.refresh_token)).json;
  assert.equal((await revoke(w, t.access_token)).status, 200);
  assert.equal((await userinfo(w, t.access_token)).status, 401, 'the revoked access token');
  assert.equal((await userinfo(w, r1.access_token)).status, 200, 'its sibling lives');
  const r2 = await refresh(w, app, t.refresh_token);
  assert.equal(r2.status, 200, 'the refresh token lives');
  assert.equal((await revoke(w, t.refresh_token)).status, 200);
  for (const at of [r1.access_token, r2.json.access_token]) {
    assert.equal((await userinfo(w, at)).status, 401, 'every access token of the grant');
    assert.deepEqual((await introspect(w, app, at)).json, { active: false });
  }
  assertOAuthError(await refresh(w, app, t.refresh_token), 400, 'invalid_grant', 'the refresh token');
});

// ----------------------------------------------------------------------------------- E.175

test('E.175 introspection requires client authentication: none, client_id alone, a wrong secret → 401 invalid_client', async () => {
  const t = await tokensFor(w, jar, app, { scope: 'api' });
  for (const [what, fields, headers] of [
    ['no credentials', { token: t.access_token }, {}],
    ['client_id alone', { token: t.access_token, client_id: app.client_id }, {}],
    ['wrong secret', { token: t.access_token, client_id: app.client_id, client_secret: 'wrong' }, {}],
    ['a bearer token instead', { token: t.access_token }, { authorization: `Bearer ${t.access_token}` }],
  ]) {
    const r = await postForm(w, '/services/oauth2/introspect', fields, { headers });
    assertOAuthError(r, 401, 'invalid_client', what);
    assert.ok(r.headers.get('www-authenticate'), what);
    assert.equal(r.json.active, undefined, `${what}: nothing about the token`);
  }
  const ok = await postForm(w, '/services/oauth2/introspect', { token: t.access_token }, { headers: basic(app.client_id, app.client_secret) });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.active, true);
});

// ----------------------------------------------------------------------------------- E.176

test('E.176 introspection answers exactly {"active": false} for unknown, revoked, ID and other clients\' tokens', async () => {
  const t = await tokensFor(w, jar, app, { scope: 'api openid refresh_token' });
  const other = await newApp(w);
  const gone = await tokensFor(w, jar, app, { scope: 'api refresh_token' });
  await revoke(w, gone.refresh_token);
  const cases = [
    ['unknown', app, 'nope'],
    ['revoked access token', app, gone.access_token],
    ['revoked refresh token', app, gone.refresh_token],
    ['ID token', app, t.id_token],
    ['another client\'s access token', other, t.access_token],
    ['another client\'s refresh token', other, t.refresh_token],
  ];
  for (const [what, caller, tok] of cases) {
    const r = await introspect(w, caller, tok);
    assert.equal(r.status, 200, what);
    assert.deepEqual(r.json, { active: false }, what);
    assert.match(r.headers.get('cache-control') ?? '', /no-store/, what);
  }
  const live = await introspect(w, app, t.access_token);
  assert.equal(live.json.active, true);
  assert.equal(live.json.client_id, app.client_id);
});

// ----------------------------------------------------------------------------------- E.177

test('E.177 password grant: off by default, confidential only, no refresh token, one answer for off, wrong password, unknown and inactive users', async () => {
  const ip = '192.0.2.177';
  const inactive = await newUser(w, 'e177-inactive');
  assert.equal((await w.admin('DELETE', `/admin/users/${inactive.user_id}`)).status, 200);
  const pw = (fields, headers = {}) => token(w, { grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret, ...fields }, { ip, headers });
  const bodies = {};
  bodies.off = await pw({ username: user.username, password: user.password });
  await setting(w, { allow_username_password_flow: true });
  try {
    bodies.wrong = await pw({ username: user.username, password: 'wrong password' });
    bodies.unknown = await pw({ username: `nobody-${uniq()}@example.com`, password: 'whatever1' });
    bodies.inactive = await pw({ username: inactive.username, password: inactive.password });
    for (const [what, r] of Object.entries(bodies)) {
      assertOAuthError(r, 400, 'invalid_grant', what);
      assert.equal(r.text, bodies.off.text, `${what}: byte for byte the same answer as "off"`);
    }
    assertOAuthError(await token(w, { grant_type: 'password', username: user.username, password: user.password, client_id: app.client_id }, { ip }), 401, 'invalid_client', 'no secret');
    const pubApp = await newApp(w, { secret_required_web_server: false });
    assertOAuthError(await token(w, { grant_type: 'password', username: user.username, password: user.password, client_id: pubApp.client_id }, { ip }), 401, 'invalid_client', 'a public app');
    const ok = await pw({ username: user.username, password: user.password }); // the app's scopes include refresh_token
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.refresh_token, undefined);
    assert.doesNotMatch(ok.json.scope, /refresh_token/);
  } finally {
    await setting(w, { allow_username_password_flow: false });
  }
});

// ----------------------------------------------------------------------------------- E.178

test('E.178 implicit / token id_token: fragment only, at_hash and nonce bind the ID token, no refresh token to a web page, only registered types', async () => {
  const nonce = `n-${uniq()}`;
  const r = await authzGet({ response_type: 'token id_token', client_id: app.client_id, redirect_uri: CB, state: 's', nonce }, { jar });
  assert.equal(r.status, 302, r.text);
  const f = fragmentOf(r.location);
  assert.equal(queryOf(r.location).toString(), '', 'nothing in the query');
  const at = f.get('access_token');
  assert.ok(at);
  const idt = jwtPayload(f.get('id_token'));
  assert.equal(idt.at_hash, halfHash(at));
  assert.equal(idt.nonce, nonce);
  assert.equal(idt.aud, app.client_id);
  assert.equal(f.get('refresh_token'), null, 'no refresh token to an http(s) page, although refresh_token is granted');
  assert.match(f.get('scope'), /refresh_token/);
  const missingNonce = await authzGet({ response_type: 'token id_token', client_id: app.client_id, redirect_uri: CB, state: 's' }, { jar });
  assert.equal(fragmentOf(missingNonce.location).get('error'), 'invalid_request');
  assert.equal(fragmentOf(missingNonce.location).get('access_token'), null);
  for (const rt of ['id_token', 'code token', 'token code id_token']) {
    const u = await authzGet({ response_type: rt, client_id: app.client_id, redirect_uri: CB, state: 's', nonce }, { jar });
    const err = fragmentOf(u.location).get('error') ?? queryOf(u.location).get('error');
    assert.equal(err, 'unsupported_response_type', `${rt}: ${u.location}`);
    assert.equal(fragmentOf(u.location).get('access_token'), null);
  }
});

// ----------------------------------------------------------------------------------- E.179

test('E.179 HTTP hygiene: huge, numerous, undecodable, duplicate and empty parameters and deep JSON are 4xx JSON errors, never 5xx', async () => {
  // A client that authenticates, so that every case gets past client authentication.
  const { app: m2m } = await ccApp(w);
  const raw = (body, ct = 'application/x-www-form-urlencoded') => call(w, '/services/oauth2/token', { method: 'POST', headers: { 'content-type': ct, ...basic(m2m.client_id, m2m.client_secret) }, body });
  const cases = [
    ['a 9 KB scope', raw(`grant_type=client_credentials&scope=${'a'.repeat(9000)}`), 400],
    ['a 9 KB client_id', raw(`grant_type=client_credentials&client_id=${'c'.repeat(9000)}`), 400],
    // Unknown parameters are ignored (RFC 6749 §3.1), however many fit in 64 KiB.
    ['10,000 parameters', raw(`grant_type=client_credentials&${Array.from({ length: 10000 }, (_, i) => `p${i}=1`).join('&')}`.slice(0, 65000)), 200],
    ['undecodable percent-encoding', raw('grant_type=%FF%FE'), 400],
    ['broken percent-encoding', raw('grant_type=%zz'), 400],
    ['duplicate grant_type', raw('grant_type=client_credentials&grant_type=password'), 400],
    ['empty grant_type', raw('grant_type='), 400],
    ['JSON instead of a form', raw('{"grant_type":"client_credentials"}', 'application/json'), 400],
  ];
  for (const [what, pending, status] of cases) {
    const r = await pending;
    assert.equal(r.status, status, `${what}: ${r.text.slice(0, 200)}`);
    if (status !== 200) assert.equal(typeof r.json?.error, 'string', `${what}: JSON error body`);
    assert.match(r.headers.get('cache-control') ?? '', /no-store/, what);
  }
  // Deep and odd JSON at the JSON endpoints.
  const deep = '['.repeat(3000) + ']'.repeat(3000);
  const reg = await register(w, undefined, { iat: await mintIat(w), raw: deep });
  assert.equal(reg.status, 400, reg.text.slice(0, 200));
  const regObj = await register(w, undefined, { iat: await mintIat(w), raw: `{"client_name":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)},"redirect_uris":["${CB}"]}` });
  assert.ok(regObj.status < 500, `${regObj.status} ${regObj.text.slice(0, 200)}`);
  const admin = await w.admin('POST', '/admin/apps', undefined, { raw: deep });
  assert.equal(admin.status, 400, admin.text.slice(0, 200));
  // Credentials never in the URL of the token endpoint.
  const inUrl = await call(w, `/services/oauth2/token?client_secret=${app.client_secret}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${app.client_id}` });
  assertOAuthError(inUrl, 400, 'invalid_request', 'client_secret in the query');
});
