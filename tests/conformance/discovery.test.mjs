// Checklist items about metadata and keys, against the real worker: the OpenID Foundation Config
// OP plan and oidcc-discovery-endpoint-verification (A.3, A.41), "advertised methods work" (A.42),
// features that are not shipped and must not be advertised (A.6, A.63), and the baseline items
// B.99 (PKCE metadata), B.109 (signing algorithms), B.116 (discovery) and B.117 (JWKS).
// One worker with the default issuer (the request origin), and one with an https ISSUER pinned,
// as a deployment has it, for the suite's "all endpoints are https" check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import * as client from 'openid-client';
import { startTestWorker } from '../e2e/harness.mjs';
import { pkcePair, tokenRequest } from '../e2e/flow.mjs';
import {
  CB, assertTokenResponse, authz, basic, checkIdToken, codeParams, exchange, newApp, newUser, nowS, serverInfo, uniq,
} from './oidc-ab-helpers.mjs';

const PINNED = 'https://login.conformance.example';

let w;
let pinned;
let issuer;
let md;
let jwks;
let jwksJson;
let app;
let user;
let jar;

before(async () => {
  w = await startTestWorker();
  ({ md, issuer, jwks, jwksJson } = await serverInfo(w));
  app = await newApp(w);
  user = await newUser(w, 'disc');
  const first = await authz(w.baseUrl, codeParams(app, { scope: 'openid profile email api refresh_token' }), { user });
  assert.ok(first.code, first.body);
  jar = first.jar;
});

after(async () => {
  for (const x of [w, pinned]) {
    if (x) {
      assert.doesNotMatch(x.output(), /panicked/);
      await x.stop();
    }
  }
});

const CONFIG_PATH = '/.well-known/openid-configuration';
const RFC8414_PATH = '/.well-known/oauth-authorization-server';

// RFC 8414 §2, OIDC Discovery §3, RFC 7009/7662/8628/9207 member types (the suite validates the
// document against a schema); values are URL strings, string arrays or booleans.
const URL_MEMBERS = ['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint',
  'revocation_endpoint', 'introspection_endpoint', 'device_authorization_endpoint', 'service_documentation', 'op_policy_uri', 'op_tos_uri',
  'end_session_endpoint', 'check_session_iframe', 'pushed_authorization_request_endpoint'];
const ARRAY_MEMBERS = ['scopes_supported', 'response_types_supported', 'response_modes_supported', 'grant_types_supported', 'acr_values_supported',
  'subject_types_supported', 'id_token_signing_alg_values_supported', 'id_token_encryption_alg_values_supported', 'userinfo_signing_alg_values_supported',
  'request_object_signing_alg_values_supported', 'token_endpoint_auth_methods_supported', 'token_endpoint_auth_signing_alg_values_supported',
  'display_values_supported', 'claim_types_supported', 'claims_supported', 'claims_locales_supported', 'ui_locales_supported',
  'revocation_endpoint_auth_methods_supported', 'revocation_endpoint_auth_signing_alg_values_supported', 'introspection_endpoint_auth_methods_supported',
  'introspection_endpoint_auth_signing_alg_values_supported', 'code_challenge_methods_supported', 'prompt_values_supported'];
const BOOLEAN_MEMBERS = ['claims_parameter_supported', 'request_parameter_supported', 'request_uri_parameter_supported', 'require_request_uri_registration',
  'authorization_response_iss_parameter_supported', 'require_pushed_authorization_requests'];
// Members this server adds beyond the registries; a new one must be added here deliberately.
const EXTENSIONS = { client_id_metadata_document_supported: 'boolean', resource_indicators_supported: 'boolean' };

// ================================================================================== A.1 plans

test('A.3 oidcc-config-certification-test-plan: openid-client discovers the configuration (issuer = the URL it was fetched from) at both well-known paths', async () => {
  const config = await client.discovery(new URL(w.baseUrl), app.client_id, app.client_secret, undefined, { execute: [client.allowInsecureRequests] });
  assert.equal(config.serverMetadata().issuer, w.baseUrl);
  const a = await (await fetch(w.baseUrl + CONFIG_PATH)).json();
  const b = await (await fetch(w.baseUrl + RFC8414_PATH)).json();
  assert.deepEqual(b, a, 'RFC 8414 and OIDC documents are the same');
});

test('A.6 logout and session plans: RP-initiated, front- and back-channel logout, session management and third-party-initiated login are not shipped, and nothing of them is advertised', async () => {
  for (const m of ['end_session_endpoint', 'check_session_iframe', 'frontchannel_logout_supported', 'frontchannel_logout_session_supported',
    'backchannel_logout_supported', 'backchannel_logout_session_supported']) {
    assert.equal(md[m], undefined, m);
  }
});

test('A.63 PAR is not shipped: no pushed_authorization_request_endpoint, PAR not required, and no such path', async () => {
  assert.equal(md.pushed_authorization_request_endpoint, undefined);
  assert.notEqual(md.require_pushed_authorization_requests, true);
  const r = await fetch(`${w.baseUrl}/services/oauth2/par`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=x' });
  assert.equal(r.status, 404);
});

// ================================================================================== A.5

test('A.41 oidcc-discovery-endpoint-verification: 200 JSON; issuer valid, equal to the discovery URL\'s prefix; required endpoints; JWKS valid; openid scope; code; subject types; RS256; well-typed flags and arrays', async () => {
  const r = await fetch(w.baseUrl + CONFIG_PATH);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const d = await r.json();
  // CheckDiscEndpointIssuer / IssuerIsValidUrl / DiscoveryUrl.
  assert.equal(`${d.issuer}${CONFIG_PATH}`, w.baseUrl + CONFIG_PATH);
  const iu = new URL(d.issuer);
  assert.equal(iu.search + iu.hash, '', 'no query or fragment in the issuer (RFC 8414 §2)');
  assert.ok(!d.issuer.endsWith('/'));
  for (const m of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint']) {
    assert.equal(typeof d[m], 'string', m);
    assert.ok(d[m].startsWith(`${d.issuer}/`), `${m} under the issuer`);
  }
  for (const [k, v] of Object.entries(d)) if (k.endsWith('_endpoint')) assert.ok(v.startsWith(`${d.issuer}/`), `${k} under the issuer (https whenever the issuer is)`);
  assert.ok(d.scopes_supported.includes('openid'));
  for (const s of d.scopes_supported) assert.match(s, /^[\x21\x23-\x5B\x5D-\x7E]+$/, `scope syntax ${s} (RFC 6749 §3.3)`);
  assert.ok(d.response_types_supported.includes('code'));
  assert.ok(d.subject_types_supported.length > 0 && d.subject_types_supported.every((t) => ['public', 'pairwise'].includes(t)));
  assert.ok(d.id_token_signing_alg_values_supported.includes('RS256'));
  assert.ok(!d.id_token_signing_alg_values_supported.includes('none'));
  assert.ok(d.grant_types_supported.includes('authorization_code'));
  assert.ok(d.grant_types_supported.includes('refresh_token'), 'EnsureServerConfigurationSupportsRefreshToken');
  assert.ok(Array.isArray(d.code_challenge_methods_supported));
  assert.ok(Array.isArray(d.claims_supported) && d.claims_supported.includes('sub'));
  // Schema: every member has its registered type; non-registered members are known extensions.
  for (const [k, v] of Object.entries(d)) {
    if (URL_MEMBERS.includes(k)) assert.doesNotThrow(() => new URL(v), k);
    else if (ARRAY_MEMBERS.includes(k)) assert.ok(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'), `${k}: non-empty string array`);
    else if (BOOLEAN_MEMBERS.includes(k)) assert.equal(typeof v, 'boolean', k);
    else assert.equal(typeof v, EXTENSIONS[k], `unregistered member ${k}`);
  }
  for (const m of ['ui_locales_supported', 'claims_locales_supported']) {
    for (const tag of d[m] ?? []) assert.match(tag, /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, `${m}: BCP 47`);
  }
  // JWKS: ValidateServerJWKs, CheckDistinctKeyIdValueInServerJWKs, CheckForKeyIdInServerJWKs,
  // EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys.
  const j = await fetch(d.jwks_uri);
  assert.equal(j.status, 200);
  assert.match(j.headers.get('content-type'), /^application\/json/);
  const { keys } = await j.json();
  assert.ok(keys.length >= 1);
  assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length, 'distinct kids');
  for (const k of keys) {
    assert.equal(typeof k.kid, 'string');
    const members = k.kty === 'RSA' ? ['n', 'e'] : ['x', 'y'];
    for (const m of members) assert.match(k[m], /^[A-Za-z0-9_-]+$/, `${k.kid}.${m}: unpadded base64url`);
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) assert.equal(k[priv], undefined, `${k.kid}: no ${priv}`);
    await jose.importJWK(k, k.alg);
  }
});

test('A.41 grant_types_supported lists "implicit" while the implicit grant (response_type token) is on (RFC 8414 §2: the list replaces the default ["authorization_code", "implicit"]; OIDC Discovery §3)', async () => {
  assert.ok(md.response_types_supported.includes('token'), 'precondition: the implicit grant is on');
  const p = { response_type: 'token', client_id: app.client_id, redirect_uri: CB, state: uniq() };
  const r = await authz(w.baseUrl, p, { jar });
  assert.ok(r.params.get('access_token'), 'precondition: the implicit grant works');
  assert.ok(md.grant_types_supported.includes('implicit'), `grant_types_supported: ${md.grant_types_supported}`);
});

test('A.42 every advertised token endpoint auth method works: client_secret_basic, client_secret_post, private_key_jwt (RS256 and ES256), none (PKCE public client); likewise at revocation and introspection', async () => {
  assert.deepEqual(new Set(md.token_endpoint_auth_methods_supported), new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaJwk = { ...(await jose.exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' };
  const ecJwk = { ...(await jose.exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' };
  const runAs = await newUser(w, 'auth-methods');
  const keyed = await newApp(w, { certificate: JSON.stringify({ keys: [rsaJwk, ecJwk] }), client_credentials_user: runAs.username });
  const assertionFor = (alg, aud = issuer) => new jose.SignJWT({ iss: keyed.client_id, sub: keyed.client_id, aud, jti: randomUUID(), exp: nowS() + 60 })
    .setProtectedHeader({ alg, kid: alg === 'RS256' ? 'rsa-1' : 'ec-1' })
    .sign(alg === 'RS256' ? rsa.privateKey : ec.privateKey);
  const viaAssertion = async (alg, path = '/services/oauth2/token', fields = { grant_type: 'client_credentials' }) => {
    const r = await fetch(w.baseUrl + path, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertionFor(alg) }),
    });
    return { status: r.status, text: await r.text() };
  };
  // Token endpoint.
  const codeFor = async (a, extra = {}) => (await authz(w.baseUrl, codeParams(a, extra), { user, jar })).code;
  assertTokenResponse(await exchange(w.baseUrl, app, await codeFor(app), { auth: 'basic' }), 'client_secret_basic');
  assertTokenResponse(await exchange(w.baseUrl, app, await codeFor(app), { auth: 'post' }), 'client_secret_post');
  for (const alg of md.token_endpoint_auth_signing_alg_values_supported) {
    const r = await viaAssertion(alg);
    assert.equal(r.status, 200, `private_key_jwt ${alg}: ${r.text}`);
  }
  const pub = await newApp(w, { secret_required_web_server: false });
  const { verifier, challenge } = pkcePair();
  assertTokenResponse(await exchange(w.baseUrl, pub, await codeFor(pub, { code_challenge: challenge }), { auth: 'none', code_verifier: verifier }), 'none');
  // Introspection and revocation.
  const { access_token } = assertTokenResponse(await exchange(w.baseUrl, app, await codeFor(app)));
  const post = (path, fields, headers = {}) => fetch(w.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields) });
  for (const m of md.introspection_endpoint_auth_methods_supported) {
    let r;
    if (m === 'client_secret_basic') r = await post('/services/oauth2/introspect', { token: access_token }, basic(app.client_id, app.client_secret));
    else if (m === 'client_secret_post') r = await post('/services/oauth2/introspect', { token: access_token, client_id: app.client_id, client_secret: app.client_secret });
    else if (m === 'private_key_jwt') r = { status: (await viaAssertion('RS256', '/services/oauth2/introspect', { token: 'x' })).status };
    assert.equal(r?.status, 200, `introspection ${m}`);
  }
  for (const m of md.revocation_endpoint_auth_methods_supported) {
    let r;
    if (m === 'client_secret_basic') r = await post('/services/oauth2/revoke', { token: 'unknown' }, basic(app.client_id, app.client_secret));
    else if (m === 'client_secret_post') r = await post('/services/oauth2/revoke', { token: 'unknown', client_id: app.client_id, client_secret: app.client_secret });
    else if (m === 'private_key_jwt') r = { status: (await viaAssertion('ES256', '/services/oauth2/revoke', { token: 'unknown' })).status };
    else if (m === 'none') r = await post('/services/oauth2/revoke', { token: access_token });
    assert.equal(r?.status, 200, `revocation ${m}`);
  }
  // The public revocation really revoked (it is not a no-op that answers 200 to everything).
  const ui = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${access_token}` } });
  assert.equal(ui.status, 401);
});

// ================================================================================== B

test('B.99 S256 is supported and published in code_challenge_methods_supported (and nothing weaker is)', async () => {
  assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
  const { verifier, challenge } = pkcePair();
  const code = (await authz(w.baseUrl, codeParams(app, { code_challenge: challenge, code_challenge_method: 'S256' }), { jar })).code;
  assertTokenResponse(await exchange(w.baseUrl, app, code, { code_verifier: verifier }));
});

test('B.109 RS256 is listed first and signs by default; the kid resolves in the JWKS; alg none is never advertised', async () => {
  assert.equal(md.id_token_signing_alg_values_supported[0], 'RS256');
  assert.ok(!md.id_token_signing_alg_values_supported.includes('none'));
  const p = codeParams(app);
  const code = (await authz(w.baseUrl, p, { jar })).code;
  const t = assertTokenResponse(await exchange(w.baseUrl, app, code));
  const header = jose.decodeProtectedHeader(t.id_token);
  assert.equal(header.alg, 'RS256');
  assert.ok(jwksJson.keys.some((k) => k.kid === header.kid && k.alg === 'RS256'));
  await checkIdToken(t.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce });
});

test('B.116 both well-known documents; issuer byte-identical to the URL prefix and to the ID token iss; https endpoints under an https issuer; only what works is advertised', async () => {
  for (const path of [CONFIG_PATH, RFC8414_PATH]) {
    const r = await fetch(w.baseUrl + path);
    assert.equal(r.status, 200, path);
    assert.equal((await r.json()).issuer, w.baseUrl, `${path}: issuer (RFC 8414 §3.3: no path, so the root well-known URL)`);
  }
  const p = codeParams(app);
  const t = assertTokenResponse(await exchange(w.baseUrl, app, (await authz(w.baseUrl, p, { jar })).code));
  assert.equal(jose.decodeJwt(t.id_token).iss, md.issuer);
  // Response types: each advertised one works.
  for (const rt of md.response_types_supported) {
    const q = { response_type: rt, client_id: app.client_id, redirect_uri: CB, scope: 'openid api', state: uniq(), nonce: uniq() };
    const r = await authz(w.baseUrl, q, { jar });
    assert.equal(r.error, null, `${rt}: ${r.location}`);
    assert.ok(r.params.get('code') || r.params.get('access_token'), rt);
  }
  // Response modes.
  for (const mode of md.response_modes_supported) {
    const r = await authz(w.baseUrl, codeParams(app, { response_mode: mode }), { jar });
    assert.equal(r.mode, mode);
    assert.ok(r.code, mode);
  }
  // Grant types: none is "unsupported" at the token endpoint (`implicit` is the authorization
  // endpoint's, RFC 6749 §4.2: no token request exists for it).
  for (const g of md.grant_types_supported.filter((x) => x !== 'implicit')) {
    const r = await tokenRequest(w.baseUrl, { grant_type: g, client_id: app.client_id, client_secret: app.client_secret });
    assert.notEqual(r.json?.error, 'unsupported_grant_type', `${g}: ${r.text}`);
  }
  // Prompt and display values.
  for (const prompt of md.prompt_values_supported) {
    const r = await authz(w.baseUrl, codeParams(app, { prompt }), { jar, stopAt: 'login' });
    assert.ok(r.code || r.page || ['login_required', 'consent_required'].includes(r.error), `prompt=${prompt}: ${r.location ?? r.status}`);
    assert.notEqual(r.error, 'invalid_request', `prompt=${prompt}`);
  }
  for (const display of md.display_values_supported) assert.ok((await authz(w.baseUrl, codeParams(app, { display }), { jar })).code, display);
  // Scopes: an app may hold every advertised scope.
  const all = await w.admin('POST', '/admin/apps', { name: 'all scopes', callback_urls: [CB], scopes: md.scopes_supported });
  assert.equal(all.status, 201, all.text);
  // Claims: every user claim userinfo sends is advertised.
  const ui = await (await fetch(md.userinfo_endpoint, { headers: { authorization: `Bearer ${t.access_token}` } })).json();
  for (const c of Object.keys(ui)) assert.ok(md.claims_supported.includes(c), `userinfo claim ${c} in claims_supported`);
  // Endpoints answer (not 404).
  const reg = await fetch(md.registration_endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(reg.status, 401, 'registration endpoint exists (and wants an initial access token)');
  const device = await fetch(md.device_authorization_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(app.client_id, app.client_secret) }, body: 'scope=api' });
  assert.equal(device.status, 200, 'device authorization endpoint');
});

test('B.116 the list follows the org switches: with allow_user_agent_flow off the token response types leave discovery and are refused; with the password flow on, password appears', async () => {
  const set = async (s) => assert.equal((await w.admin('PATCH', '/admin/settings', s)).status, 200);
  try {
    await set({ allow_user_agent_flow: false, allow_username_password_flow: true });
    const d = await (await fetch(w.baseUrl + CONFIG_PATH)).json();
    for (const rt of ['token', 'token id_token', 'hybrid_token']) assert.ok(!d.response_types_supported.includes(rt), rt);
    assert.ok(d.response_types_supported.includes('code'));
    assert.ok(d.grant_types_supported.includes('password'));
    const q = { response_type: 'token', client_id: app.client_id, redirect_uri: CB, state: uniq() };
    const r = await authz(w.baseUrl, q, { jar });
    assert.equal(r.error, 'unsupported_response_type');
    assert.equal(r.params.get('access_token'), null);
  } finally {
    await set({ allow_user_agent_flow: true, allow_username_password_flow: false });
  }
  const d = await (await fetch(w.baseUrl + CONFIG_PATH)).json();
  assert.ok(d.response_types_supported.includes('token'));
  assert.ok(!d.grant_types_supported.includes('password'), 'password is listed only while the flow is on');
});

test('B.116 with an https ISSUER pinned (a deployment): issuer exact, every *_endpoint and jwks_uri https under it, and ID tokens carry it', async () => {
  pinned = await startTestWorker({ vars: { ISSUER: PINNED } });
  const d = await (await fetch(pinned.baseUrl + CONFIG_PATH)).json();
  assert.equal(d.issuer, PINNED);
  for (const [k, v] of Object.entries(d)) {
    if (k.endsWith('_endpoint') || k === 'jwks_uri') {
      assert.equal(new URL(v).protocol, 'https:', `${k} https (CheckDiscEndpointAllEndpointsAreHttps)`);
      assert.ok(v.startsWith(`${PINNED}/`), k);
    }
  }
  const a = await newApp(pinned);
  const u = await newUser(pinned, 'pinned');
  const p = codeParams(a);
  const r = await authz(pinned.baseUrl, p, { user: u });
  assert.equal(r.params.get('iss'), PINNED);
  const t = assertTokenResponse(await exchange(pinned.baseUrl, a, r.code));
  const jwksPinned = jose.createLocalJWKSet(await (await fetch(`${pinned.baseUrl}/id/keys`)).json());
  const c = await checkIdToken(t.id_token, { issuer: PINNED, clientId: a.client_id, jwks: jwksPinned, nonce: p.nonce, accessToken: t.access_token });
  assert.ok(c.sub.startsWith(`${PINNED}/id/`));
});

test('B.117 JWKS: public members only, unique kids (RFC 7638 thumbprints), use "sig", alg matching kty; the retired key stays published', async () => {
  const r = await fetch(md.jwks_uri);
  assert.match(r.headers.get('cache-control') ?? '', /max-age=\d+/);
  const { keys } = await r.json();
  assert.equal(keys.length, 2, 'the harness\'s active and retired keys are both published');
  for (const k of keys) {
    const allowed = k.kty === 'RSA' ? ['kty', 'kid', 'use', 'alg', 'n', 'e'] : ['kty', 'kid', 'use', 'alg', 'crv', 'x', 'y'];
    for (const m of Object.keys(k)) assert.ok(allowed.includes(m), `unexpected member ${m}`);
    assert.equal(k.use, 'sig');
    assert.equal(k.alg, k.kty === 'RSA' ? 'RS256' : 'ES256');
    assert.equal(k.kid, await jose.calculateJwkThumbprint(k), 'kid is the RFC 7638 thumbprint');
    if (k.kty === 'RSA') assert.ok(Buffer.from(k.n, 'base64url').length >= 256, 'RSA ≥ 2048 bits');
  }
  assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length);
});
