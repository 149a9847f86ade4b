// The JWKS (/id/keys), ID tokens checked by an outside library (jose) against it, and discovery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, importJWK, calculateJwkThumbprint, errors } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

let w;
let jwks;
/** The result of one real code flow: app, user, token response, nonce, timing. */
let flow;

async function getJson(path) {
  const r = await fetch(w.baseUrl + path);
  assert.ok(r.status < 500, `${path}: ${r.status}`);
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: JSON.parse(text) };
}

const atHash = (accessToken) => createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');

before(async () => {
  w = await startTestWorker();
  const app = await w.admin('POST', '/admin/apps', { name: 'JWKS App', callback_urls: [CB], scopes: ['api', 'openid', 'refresh_token', 'profile', 'email'] });
  assert.equal(app.status, 201, app.text);
  const user = await w.admin('POST', '/admin/users', { username: 'idt@example.com', password: 'id-token-pass-1', email: 'idt@example.com', name: 'Ida Token' });
  assert.equal(user.status, 201, user.text);
  const nonce = `n-${Math.random().toString(36).slice(2)}`;
  const startedS = Math.floor(Date.now() / 1000);
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.json.client_id, redirect_uri: CB, state: 'st', nonce, scope: 'openid api refresh_token profile email', code_challenge: challenge },
    { username: 'idt@example.com', password: 'id-token-pass-1' },
  );
  assert.ok(a.code, `no code: ${a.body ?? a.location}`);
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, client_id: app.json.client_id, client_secret: app.json.client_secret, redirect_uri: CB, code_verifier: verifier });
  assert.equal(t.status, 200, t.text);
  assert.ok(t.json.id_token, `no id_token: ${t.text}`);
  flow = { app: app.json, user: user.json, token: t.json, nonce, startedS, endedS: Math.ceil(Date.now() / 1000) };
});

after(() => {
  w?.stop();
});

test('JWKS: two public RSA signing keys, distinct kids, nothing private', async () => {
  const r = await getJson('/id/keys');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /application\/(jwk-set\+)?json/);
  jwks = r.json;
  assert.ok(Array.isArray(jwks.keys));
  assert.equal(jwks.keys.length, 2, JSON.stringify(jwks));
  for (const k of jwks.keys) {
    assert.equal(k.kty, 'RSA');
    assert.equal(k.alg, 'RS256');
    assert.equal(k.use, 'sig');
    assert.equal(typeof k.kid, 'string');
    assert.ok(k.kid.length > 0);
    assert.equal(k.e, 'AQAB');
    assert.equal(Buffer.from(k.n, 'base64url').length, 256, 'modulus is not 2048 bits');
    for (const m of PRIVATE_MEMBERS) assert.equal(k[m], undefined, `private member ${m} published`);
    // The kid is the RFC 7638 thumbprint (keys.rs), so it is stable and unique per key.
    assert.equal(k.kid, await calculateJwkThumbprint({ kty: k.kty, n: k.n, e: k.e }, 'sha256'));
  }
  assert.notEqual(jwks.keys[0].kid, jwks.keys[1].kid);
  assert.notEqual(jwks.keys[0].n, jwks.keys[1].n);
  // Every key is importable as a public key by an outside library.
  for (const k of jwks.keys) {
    const key = await importJWK(k, 'RS256');
    assert.equal(key.type, 'public');
  }
  // The same document twice: the set is stable between requests.
  assert.deepEqual((await getJson('/id/keys')).json, jwks);
});

test('ID token verifies with jose against the published JWKS and carries the right claims', async () => {
  if (!jwks) jwks = (await getJson('/id/keys')).json;
  const { app, token, nonce, startedS, endedS, user } = flow;
  const remote = createRemoteJWKSet(new URL(w.baseUrl + '/id/keys'));
  const { payload, protectedHeader } = await jwtVerify(token.id_token, remote, {
    issuer: w.baseUrl,
    audience: app.client_id,
    algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(protectedHeader.kid, jwks.keys[0].kid, 'not signed by the first (active) key');
  assert.equal(payload.iss, w.baseUrl);
  // sub is the identity URL, the token response's `id`: {issuer}/id/00D…/005…
  assert.equal(payload.sub, token.id);
  assert.match(payload.sub, new RegExp(`^${w.baseUrl.replace(/[.]/g, '\\.')}/id/00D[0-9A-Za-z]{15}/${user.user_id}$`));
  assert.ok(user.user_id.startsWith('005'));
  assert.ok(payload.aud === app.client_id || (Array.isArray(payload.aud) && payload.aud.length === 1 && payload.aud[0] === app.client_id), `aud ${payload.aud}`);
  assert.equal(payload.azp, app.client_id);
  assert.equal(typeof payload.iat, 'number');
  assert.equal(typeof payload.exp, 'number');
  assert.ok(payload.exp > payload.iat, `exp ${payload.exp} <= iat ${payload.iat}`);
  assert.equal(payload.exp - payload.iat, 120, 'default ID token validity is 2 minutes');
  assert.ok(payload.iat >= startedS - 5 && payload.iat <= endedS + 5, `iat ${payload.iat} outside the flow`);
  assert.equal(typeof payload.auth_time, 'number');
  assert.ok(payload.auth_time >= startedS - 5 && payload.auth_time <= payload.iat, `auth_time ${payload.auth_time}`);
  assert.equal(payload.nonce, nonce);
  assert.equal(payload.at_hash, atHash(token.access_token));
  assert.notEqual(payload.at_hash, atHash(token.access_token + 'x'));
  // profile and email were granted.
  assert.equal(payload.preferred_username, 'idt@example.com');
  assert.equal(payload.name, 'Ida Token');
  assert.equal(payload.email, 'idt@example.com');

  // The retired key does not verify it; only the active one does.
  const retired = await importJWK(jwks.keys[1], 'RS256');
  await assert.rejects(jwtVerify(token.id_token, retired), errors.JWSSignatureVerificationFailed);
  const active = await importJWK(jwks.keys[0], 'RS256');
  await jwtVerify(token.id_token, active, { issuer: w.baseUrl, audience: app.client_id });

  // jose itself must refuse a wrong audience or issuer for this token.
  await assert.rejects(jwtVerify(token.id_token, remote, { issuer: w.baseUrl, audience: 'someone-else' }), errors.JWTClaimValidationFailed);
  await assert.rejects(jwtVerify(token.id_token, remote, { issuer: 'https://evil.example.com', audience: app.client_id }), errors.JWTClaimValidationFailed);
});

test('a tampered ID token fails verification', async () => {
  const { app, token } = flow;
  const remote = createRemoteJWKSet(new URL(w.baseUrl + '/id/keys'));
  const [h, p, s] = token.id_token.split('.');
  const opts = { issuer: w.baseUrl, audience: app.client_id };

  // One bit of the signature (in the middle, so it is not a padding bit).
  const sig = Buffer.from(s, 'base64url');
  sig[sig.length >> 1] ^= 0x01;
  const badSig = `${h}.${p}.${sig.toString('base64url')}`;
  assert.notEqual(badSig, token.id_token);
  await assert.rejects(jwtVerify(badSig, remote, opts), errors.JWSSignatureVerificationFailed);

  // A changed claim under the original signature.
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const forged = Buffer.from(JSON.stringify({ ...claims, sub: claims.sub.replace(/005\w+$/, '005000000000000AAA') })).toString('base64url');
  await assert.rejects(jwtVerify(`${h}.${forged}.${s}`, remote, opts), errors.JWSSignatureVerificationFailed);

  // The signature of one key under the other key's kid.
  const header = decodeProtectedHeader(token.id_token);
  const otherKid = Buffer.from(JSON.stringify({ ...header, kid: jwks.keys[1].kid })).toString('base64url');
  await assert.rejects(jwtVerify(`${otherKid}.${p}.${s}`, remote, opts), errors.JWSSignatureVerificationFailed);

  // alg "none" is not accepted.
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  await assert.rejects(jwtVerify(`${none}.${p}.`, remote, opts));

  // Sanity: the untouched token still verifies.
  await jwtVerify(token.id_token, remote, opts);
});

test('the ID token of a refresh verifies too and keeps sub and auth_time', async () => {
  const { app, token } = flow;
  const remote = createRemoteJWKSet(new URL(w.baseUrl + '/id/keys'));
  const first = (await jwtVerify(token.id_token, remote, { issuer: w.baseUrl, audience: app.client_id })).payload;
  const r = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: token.refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.id_token, `no id_token on refresh: ${r.text}`);
  const { payload, protectedHeader } = await jwtVerify(r.json.id_token, remote, { issuer: w.baseUrl, audience: app.client_id });
  assert.equal(protectedHeader.kid, jwks.keys[0].kid);
  assert.equal(payload.sub, first.sub);
  assert.equal(payload.sub, r.json.id);
  assert.equal(payload.auth_time, first.auth_time);
  assert.equal(payload.at_hash, atHash(r.json.access_token));
  assert.notEqual(r.json.access_token, token.access_token);
});

/** Which method each discovery endpoint must answer on. */
const ENDPOINT_METHODS = {
  authorization_endpoint: 'GET',
  token_endpoint: 'POST',
  revocation_endpoint: 'POST',
  introspection_endpoint: 'POST',
  userinfo_endpoint: 'GET',
  jwks_uri: 'GET',
  registration_endpoint: 'POST',
  device_authorization_endpoint: 'POST',
  end_session_endpoint: 'GET',
  pushed_authorization_request_endpoint: 'POST',
};

test('discovery: issuer and jwks_uri, and every listed endpoint answers on its method', async () => {
  const docs = {};
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    const r = await getJson(path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const d = r.json;
    docs[path] = d;
    assert.equal(d.issuer, w.baseUrl, path);
    assert.equal(d.jwks_uri, w.baseUrl + '/id/keys', path);
    for (const f of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported']) assert.ok(d[f], `${path} lacks ${f}`);
    assert.ok(d.response_types_supported.includes('code'));
    assert.ok(d.id_token_signing_alg_values_supported.includes('RS256'));
    assert.ok(d.subject_types_supported.length > 0);
    assert.ok(d.code_challenge_methods_supported.includes('S256'));
    assert.ok(d.scopes_supported.includes('openid'));
  }
  const [oidc, oauth] = Object.values(docs);
  assert.deepEqual(oauth, oidc, 'the two discovery documents disagree');

  const endpoints = Object.entries(oidc).filter(([k]) => k.endsWith('_endpoint') || k === 'jwks_uri');
  assert.ok(endpoints.length >= 6, `only ${endpoints.length} endpoints listed`);
  for (const [name, url] of endpoints) {
    assert.ok(url.startsWith(w.baseUrl + '/'), `${name} ${url} is not under the issuer`);
    const method = ENDPOINT_METHODS[name];
    assert.ok(method, `discovery lists ${name}, which this test does not know the method of`);
    const r = await fetch(url, {
      method,
      redirect: 'manual',
      headers: method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
      body: method === 'POST' ? '' : undefined,
    });
    await r.arrayBuffer();
    assert.notEqual(r.status, 404, `${name} ${method} ${url} is 404`);
    assert.notEqual(r.status, 405, `${name} ${method} ${url} is 405`);
    assert.ok(r.status < 500, `${name} ${method} ${url} is ${r.status}`);
  }
  // And the token endpoint, for one, refuses the wrong method rather than answering anything.
  const wrong = await fetch(oidc.token_endpoint);
  await wrong.arrayBuffer();
  assert.equal(wrong.status, 405);
  // The JWKS that discovery points at is the one checked above.
  assert.deepEqual((await (await fetch(oidc.jwks_uri)).json()).keys.map((k) => k.kid), jwks.keys.map((k) => k.kid));
});
