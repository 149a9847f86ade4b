// Checklist items about clients that register themselves, against the real worker: the OpenID
// Foundation Dynamic OP plan (A.4, A.12, A.43–A.48, A.50, A.52), "a response type disabled for
// this client" (A.62), and the baseline items B.71 (registered redirect URIs) and B.88 (no
// automatic redirects for untrusted clients). One worker for the file, plus a loopback server
// playing the relying party's jwks_uri (DEV_MODE lets the worker fetch from loopback).
//
// oidcc-refresh-token-rp-key-rotation (A.50) rotates the RP's key and waits 60 s before using the
// new kid: the rotation happens in before(), the check in the last test, so the wait overlaps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import * as client from 'openid-client';
import { startTestWorker } from '../e2e/harness.mjs';
import { tokenRequest } from '../e2e/flow.mjs';
import {
  CB, assertAuthzError, assertCodeAnswer, assertErrorPage, assertRegisteredClientRefused, assertTokenError, assertTokenResponse, authz, checkIdToken, codeParams,
  exchange, newUser, nowS, serverInfo, sleep, uniq, userinfoGet,
} from './oidc-ab-helpers.mjs';

const CAT = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let w;
let issuer;
let md;
let jwks;
let regEndpoint;
let iat; // an initial access token
let user;
let jar; // the user's browser, logged in
// The relying party's jwks_uri on loopback: serves `jwksServer.keys`, counts fetches.
let jwksServer;
// A.50: a private_key_jwt client keyed by jwks_uri, its tokens, and when its key was rotated.
let rotating;

async function register(body, token = iat) {
  const r = await fetch(regEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

async function registered(body) {
  const r = await register({ client_name: `dcr ${uniq()}`, ...body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

/** Authorization request parameters for a registered client (default scope: api refresh_token openid). */
const dcrParams = (c, extra = {}) => codeParams(c, { scope: 'openid', ...extra });

async function rsaKey(kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function clientAssertion(clientId, key, claims = {}) {
  return new jose.SignJWT({ iss: clientId, sub: clientId, aud: issuer, jti: randomUUID(), iat: nowS(), exp: nowS() + 60, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(key.privateKey);
}

before(async () => {
  w = await startTestWorker();
  ({ md, issuer, jwks } = await serverInfo(w));
  regEndpoint = md.registration_endpoint;
  const t = await w.admin('POST', '/admin/registration-tokens', { expires_in_s: 3600 });
  assert.equal(t.status, 201, t.text);
  iat = t.json.token;
  user = await newUser(w, 'dcr');
  // The user logs in once (with an operator's app), so later flows only see consent pages.
  const op = await w.admin('POST', '/admin/apps', { name: 'dcr login', callback_urls: [CB], scopes: ['openid'] });
  const first = await authz(w.baseUrl, codeParams(op.json, { scope: 'openid' }), { user });
  assert.deepEqual(first.pages, ['login', 'consent']);
  jar = first.jar;

  jwksServer = { keys: [], hits: 0 };
  jwksServer.server = http.createServer((req, res) => {
    jwksServer.hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwksServer.keys }));
  });
  await new Promise((r) => jwksServer.server.listen(0, '127.0.0.1', r));
  jwksServer.url = `http://127.0.0.1:${jwksServer.server.address().port}/jwks.json`;

  // A.47 (registration-jwks-uri) and A.50: register with jwks_uri, sign in and redeem with key 1.
  const k1 = await rsaKey('rp-key-1');
  const k2 = await rsaKey('rp-key-2');
  jwksServer.keys = [k1.publicJwk];
  const meta = await registered({
    redirect_uris: [CB], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksServer.url,
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'openid offline_access',
  });
  const p = codeParams({ client_id: meta.client_id }, { scope: 'openid offline_access', prompt: 'consent' });
  const a = await authz(w.baseUrl, p, { user, jar });
  assert.ok(a.code, a.location ?? a.body);
  const tokenRes = await tokenRequest(w.baseUrl, {
    grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_assertion_type: CAT, client_assertion: await clientAssertion(meta.client_id, k1),
  });
  const hitsAfterFirstUse = jwksServer.hits;
  // Rotate: the RP's jwks_uri now holds only key 2.
  jwksServer.keys = [k2.publicJwk];
  rotating = { meta, p, tokenRes, hitsAfterFirstUse, k1, k2, rotatedAt: Date.now() };
});

after(async () => {
  await new Promise((r) => (jwksServer?.server ? jwksServer.server.close(r) : r()));
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
});

// ================================================================================== A.1

let dyn; // A.4's client: { config, meta, key, tokens, claims }

test('A.4 oidcc-dynamic-certification-test-plan: openid-client discovers, registers (private_key_jwt, jwks), signs in, redeems, reads userinfo and refreshes', async () => {
  const key = await rsaKey('dyn-1');
  const config = await client.dynamicClientRegistration(new URL(w.baseUrl), {
    redirect_uris: [CB], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] },
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'openid profile email offline_access',
    id_token_signed_response_alg: 'RS256', userinfo_signed_response_alg: 'RS256', client_name: 'Dynamic RP',
  }, client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }), { initialAccessToken: iat, execute: [client.allowInsecureRequests] });
  const meta = config.clientMetadata();
  assert.equal(meta.token_endpoint_auth_method, 'private_key_jwt');
  assert.equal(meta.client_secret, undefined, 'no secret for private_key_jwt');
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CB, scope: 'openid profile email offline_access', prompt: 'consent', state, nonce,
    code_challenge_method: 'S256', code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  });
  const a = await authz(w.baseUrl, Object.fromEntries(url.searchParams), { user, jar });
  assert.deepEqual(a.pages, ['consent']);
  const tokens = await client.authorizationCodeGrant(config, a.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims();
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.ok(tokens.refresh_token);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);
  dyn = { config, meta, key, tokens, claims, nonce };
});

// ================================================================================== A.2 / A.6

test('A.12 oidcc-idtoken-unsigned: alg none is not advertised, is not registered for a client asking for it, and that client still gets RS256 ID tokens', async () => {
  assert.ok(!md.id_token_signing_alg_values_supported.includes('none'));
  const r = await register({ redirect_uris: [CB], id_token_signed_response_alg: 'none', scope: 'openid' });
  if (r.status !== 201) {
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error, 'invalid_client_metadata');
    return;
  }
  assert.notEqual(r.json.id_token_signed_response_alg, 'none', 'none is not registered');
  const p = dcrParams(r.json);
  const a = await authz(w.baseUrl, p, { user, jar });
  const t = assertTokenResponse(await exchange(w.baseUrl, r.json, a.code, { auth: 'basic' }));
  assert.equal(jose.decodeProtectedHeader(t.id_token).alg, 'RS256');
  await checkIdToken(t.id_token, { issuer, clientId: r.json.client_id, jwks, nonce: p.nonce });
});

test('A.43 oidcc-idtoken-rs256: a client registered with id_token_signed_response_alg RS256 gets verified RS256 ID tokens; oidcc-userinfo-rs256: signed userinfo is not shipped — not advertised, not registered, userinfo stays JSON', async () => {
  assert.ok(dyn, 'A.4 ran');
  assert.equal(jose.decodeProtectedHeader(dyn.tokens.id_token).alg, 'RS256');
  await checkIdToken(dyn.tokens.id_token, { issuer, clientId: dyn.meta.client_id, jwks, nonce: dyn.nonce });
  assert.equal(md.userinfo_signing_alg_values_supported, undefined);
  assert.notEqual(dyn.meta.userinfo_signed_response_alg, 'RS256', 'not claimed as registered (RFC 7591 §3.2.1)');
  const u = await userinfoGet(w.baseUrl, dyn.tokens.access_token);
  assert.match(u.headers.get('content-type'), /^application\/json/);
  assert.equal(u.json.sub, dyn.claims.sub);
});

test('A.44 oidcc-ensure-redirect-uri-in-authorization-request: a client with two redirect URIs that sends none gets the redirect_uri_missing page', async () => {
  const two = await registered({ redirect_uris: [CB, 'http://127.0.0.1:9/cb2'] });
  const p = dcrParams(two);
  delete p.redirect_uri;
  const r = await authz(w.baseUrl, p, { jar });
  assertErrorPage(r, 'redirect_uri_missing');
  // One registered URI: required all the same (Salesforce's rule, stricter than RFC 6749 §3.1.2.3).
  const one = await registered({ redirect_uris: [CB] });
  const q = dcrParams(one);
  delete q.redirect_uri;
  assertErrorPage(await authz(w.baseUrl, q, { jar }), 'redirect_uri_missing');
});

test('A.45 oidcc-redirect-uri-query-OK, -query-mismatch, -query-added: the registered query must be sent exactly', async () => {
  const withQuery = 'http://127.0.0.1:9/cb?foo=bar';
  const c = await registered({ redirect_uris: [withQuery, CB] });
  const ok = dcrParams(c, { redirect_uri: withQuery });
  const r = await authz(w.baseUrl, ok, { user, jar });
  assertCodeAnswer(r, { state: ok.state, issuer });
  assert.equal(r.url.searchParams.get('foo'), 'bar', 'the registered query is kept');
  assertTokenResponse(await exchange(w.baseUrl, c, r.code, { auth: 'basic', redirect_uri: withQuery }));
  assertErrorPage(await authz(w.baseUrl, dcrParams(c, { redirect_uri: 'http://127.0.0.1:9/cb?foo=baz' }), { jar }), 'redirect_uri_mismatch', 'query mismatch');
  assertErrorPage(await authz(w.baseUrl, dcrParams(c, { redirect_uri: `${CB}?foo=bar&x=1` }), { jar }), 'redirect_uri_mismatch', 'query added');
  assertErrorPage(await authz(w.baseUrl, dcrParams(c, { redirect_uri: `${CB}?extra=1` }), { jar }), 'redirect_uri_mismatch', 'query added to a URI without one');
});

test('A.46 oidcc-redirect-uri-regfrag: registering a redirect URI with a fragment → 400 JSON invalid_redirect_uri', async () => {
  for (const uri of ['https://rp.example.com/cb#frag', 'https://rp.example.com/cb#']) {
    const r = await register({ redirect_uris: [uri] });
    assert.equal(r.status, 400, `${uri}: ${r.text}`);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.ok(['invalid_redirect_uri', 'invalid_client_metadata'].includes(r.json.error), r.text);
  }
});

test('A.47 oidcc-registration-logo-uri, -policy-uri, -tos-uri: https values are registered and returned; other schemes are refused', async () => {
  const urls = { logo_uri: 'https://rp.example.com/logo.png', policy_uri: 'https://rp.example.com/policy', tos_uri: 'https://rp.example.com/tos' };
  const c = await registered({ redirect_uris: [CB], ...urls });
  for (const [k, v] of Object.entries(urls)) assert.equal(c[k], v, k);
  for (const k of Object.keys(urls)) {
    const r = await register({ redirect_uris: [CB], [k]: 'http://rp.example.com/x' });
    assert.equal(r.status, 400, `${k} over http`);
    assert.equal(r.json.error, 'invalid_client_metadata');
  }
});

test('A.47 oidcc-registration-logo-uri/-policy-uri/-tos-uri: the approval page shows the client\'s policy and terms links (OIDC Registration §2: the OP SHOULD display them)', async () => {
  const c = await registered({ redirect_uris: [CB], policy_uri: 'https://rp.example.com/policy', tos_uri: 'https://rp.example.com/tos' });
  const r = await authz(w.baseUrl, dcrParams(c), { jar, stopAt: 'consent' });
  assert.equal(r.page, 'consent');
  assert.match(r.body, /href="https:\/\/rp\.example\.com\/policy"/);
  assert.match(r.body, /href="https:\/\/rp\.example\.com\/tos"/);
});

test('A.47 oidcc-registration-jwks-uri: a private_key_jwt client registered with a jwks_uri redeems its code; the server fetched the RP\'s keys', async () => {
  const tokens = assertTokenResponse(rotating.tokenRes, 'code exchange with the jwks_uri key');
  await checkIdToken(tokens.id_token, { issuer, clientId: rotating.meta.client_id, jwks, nonce: rotating.p.nonce, accessToken: tokens.access_token });
  assert.ok(tokens.refresh_token);
  assert.ok(rotating.hitsAfterFirstUse >= 1, 'the jwks_uri was fetched');
  assert.equal(rotating.meta.jwks_uri, jwksServer.url);
});

test('A.48 third-party-initiated login is not shipped: an http initiate_login_uri is never registered', async () => {
  const r = await register({ redirect_uris: [CB], initiate_login_uri: 'http://rp.example.com/login' });
  if (r.status === 201) assert.equal(r.json.initiate_login_uri, undefined);
  else assert.equal(r.status, 400);
});

test('A.52 oidcc-ensure-client-assertion-with-iss-aud-succeeds: a client assertion whose aud is the issuer is accepted (and the token endpoint URL too)', async () => {
  assert.ok(dyn, 'A.4 ran');
  for (const aud of [issuer, `${issuer}/services/oauth2/token`]) {
    const t = await tokenRequest(w.baseUrl, {
      grant_type: 'refresh_token', refresh_token: dyn.tokens.refresh_token, client_assertion_type: CAT,
      client_assertion: await clientAssertion(dyn.meta.client_id, dyn.key, { aud }),
    });
    assertTokenResponse(t, `aud ${aud}`);
  }
  const wrongAud = await tokenRequest(w.baseUrl, {
    grant_type: 'refresh_token', refresh_token: dyn.tokens.refresh_token, client_assertion_type: CAT,
    client_assertion: await clientAssertion(dyn.meta.client_id, dyn.key, { aud: 'https://elsewhere.example.com' }),
  });
  assertTokenError(wrongAud, 401, 'invalid_client', 'another audience');
});

test('A.62 ensure-response-type-token-fails / -code-idtoken-fails: response types the client did not register → unauthorized_client (redirected with state and iss, or a page), no token', async () => {
  assert.ok(dyn, 'A.4 ran');
  assert.deepEqual(dyn.meta.response_types, ['code']);
  for (const rt of ['token', 'token id_token', 'code id_token']) {
    const p = { ...codeParams(dyn.meta), response_type: rt };
    const r = await authz(w.baseUrl, p, { jar });
    assertRegisteredClientRefused(r, { error: 'unauthorized_client', state: p.state, issuer, mode: 'fragment' });
  }
});

// ================================================================================== B

test('B.71 registered redirect URIs: absolute, no fragment, https or loopback http (or a private-use scheme); others refused at registration and by the admin API', async () => {
  const bad = ['/relative/cb', 'https://rp.example.com/cb#f', 'http://rp.example.com/cb', 'javascript:alert(1)', 'data:text/html,x', 'file:///etc/passwd'];
  for (const uri of bad) {
    const r = await register({ redirect_uris: [uri] });
    assert.equal(r.status, 400, `${uri}: ${r.text}`);
    assert.equal(r.json.error, 'invalid_redirect_uri', uri);
    const a = await w.admin('POST', '/admin/apps', { name: 'bad cb', callback_urls: [uri], scopes: ['api'] });
    assert.equal(a.status, 400, `admin ${uri}: ${a.text}`);
  }
  for (const uri of ['https://rp.example.com/cb', 'http://127.0.0.1:8123/cb', 'http://[::1]:8123/cb', 'http://localhost:8123/cb', 'com.example.app:/cb']) {
    assert.equal((await register({ redirect_uris: [uri] })).status, 201, uri);
  }
});

test('B.88 a self-registered client: the consent page tells the user where the answer goes, so a denial redirects only after the user saw it', async () => {
  const c = await registered({ redirect_uris: ['https://phish.example.net/cb'] });
  const p = dcrParams(c, { redirect_uri: 'https://phish.example.net/cb' });
  const r = await authz(w.baseUrl, p, { jar, stopAt: 'consent' });
  assert.equal(r.page, 'consent');
  assert.match(r.body, /registered itself/);
  assert.match(r.body, /phish\.example\.net/);
  const denied = await authz(w.baseUrl, p, { jar, approve: false });
  assertAuthzError(denied, { error: 'access_denied', state: p.state, issuer, target: 'https://phish.example.net/cb' });
});

test('B.88 a self-registered client\'s erroneous request (invalid scope) is not redirected to its URI automatically, before the user authenticated or was told (RFC 9700 §4.11.2)', async () => {
  const c = await registered({ redirect_uris: ['https://phish.example.net/cb'] });
  const p = dcrParams(c, { redirect_uri: 'https://phish.example.net/cb', scope: 'no-such-scope' });
  const r = await authz(w.baseUrl, p);
  assert.ok(!(r.status >= 300 && r.status < 400 && (r.location ?? '').startsWith('https://phish.example.net/')),
    `redirected straight to the self-registered URI: ${r.status} ${r.location}`);
});

// ================================================================================== A.50 (last)

test('A.50 oidcc-refresh-token-rp-key-rotation: 60 s after the RP rotated the key at its jwks_uri, a refresh with an assertion signed by the new kid is accepted', async () => {
  const first = assertTokenResponse(rotating.tokenRes);
  await sleep(Math.max(0, rotating.rotatedAt + 60_000 - Date.now()));
  const t = await tokenRequest(w.baseUrl, {
    grant_type: 'refresh_token', refresh_token: first.refresh_token, client_assertion_type: CAT,
    client_assertion: await clientAssertion(rotating.meta.client_id, rotating.k2),
  });
  assertTokenResponse(t, `refresh with the rotated key (the RP's jwks_uri was fetched ${jwksServer.hits} time(s), ${rotating.hitsAfterFirstUse} before the rotation): ${t.text}`);
});
