// ES256 signing keys and the other accepted key formats, signed by the real worker's WebCrypto:
// the active key's type decides the tokens' `alg`; every key is published with its own; the
// public keys the worker derives are the ones Node derives from the same private keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, importJWK, calculateJwkThumbprint, errors } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A fresh key of `type` ('ec' on P-256, or 'rsa') as PEM in `format` (pkcs8, pkcs1, sec1). */
function pem(type, format) {
  const options = type === 'ec' ? { namedCurve: 'P-256' } : { modulusLength: 2048 };
  const { privateKey } = generateKeyPairSync(type, options);
  return privateKey.export({ type: format, format: 'pem' });
}

/** The public JWK Node derives from a private key PEM. */
const publicJwk = (privatePem) => createPublicKey(privatePem).export({ format: 'jwk' });

/** Workers and the PEMs they were given, newest (signing) key first. */
const workers = {
  // The brief's setup: an EC P-256 PKCS#8 key signs, an RSA key is retired.
  es256: { pems: [pem('ec', 'pkcs8'), pem('rsa', 'pkcs8')] },
  // The other formats WebCrypto only takes once the core wraps them into PKCS#8.
  wrapped: { pems: [pem('rsa', 'pkcs1'), pem('ec', 'sec1')] },
};

before(async () => {
  for (const w of Object.values(workers)) {
    w.worker = await startTestWorker({ secrets: { SIGNING_KEYS: w.pems.join('') } });
  }
});

after(() => {
  for (const { worker } of Object.values(workers)) {
    if (!worker) continue;
    assert.doesNotMatch(worker.output(), /panicked|SIGNING_KEYS unusable/);
    worker.stop();
  }
});

async function getJson(w, path) {
  const r = await fetch(w.baseUrl + path);
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

/** One code flow with scope=openid for an app with JWT access tokens. */
async function codeFlow(w) {
  const app = await w.admin('POST', '/admin/apps', { name: 'ES256 App', callback_urls: [CB], scopes: ['api', 'openid'], jwt_access_tokens: true });
  assert.equal(app.status, 201, app.text);
  const username = `es-${Math.random().toString(36).slice(2)}@example.com`;
  const user = await w.admin('POST', '/admin/users', { username, password: 'es256-pass-1', email: username, name: 'Eve Curve' });
  assert.equal(user.status, 201, user.text);
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.json.client_id, redirect_uri: CB, state: 'st', nonce: 'n-es', scope: 'openid api', code_challenge: challenge },
    { username, password: 'es256-pass-1' },
  );
  assert.ok(a.code, `no code: ${a.body ?? a.location}`);
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, client_id: app.json.client_id, client_secret: app.json.client_secret, redirect_uri: CB, code_verifier: verifier });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.json.token_format, 'jwt');
  return { app: app.json, token: t.json };
}

/** Each published key is the public half of the PEM at the same position, with the right alg. */
async function assertPublishes(w, pems) {
  const { keys } = await getJson(w, '/id/keys');
  assert.equal(keys.length, pems.length, JSON.stringify(keys));
  for (const [i, k] of keys.entries()) {
    const expected = publicJwk(pems[i]);
    assert.equal(k.kty, expected.kty);
    assert.equal(k.alg, k.kty === 'EC' ? 'ES256' : 'RS256');
    assert.equal(k.use, 'sig');
    for (const m of k.kty === 'EC' ? ['crv', 'x', 'y'] : ['n', 'e']) assert.equal(k[m], expected[m], `key ${i} ${m}`);
    for (const m of PRIVATE_MEMBERS) assert.equal(k[m], undefined, `private member ${m} published`);
    assert.equal(k.kid, await calculateJwkThumbprint(expected, 'sha256'), 'kid is the RFC 7638 thumbprint');
    assert.equal((await importJWK(k, k.alg)).type, 'public');
  }
  return keys;
}

test('JWKS: the active EC P-256 key (ES256) and the retired RSA key (RS256), public members only', async () => {
  const { worker, pems } = workers.es256;
  const keys = await assertPublishes(worker, pems);
  assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.crv]), [['EC', 'ES256', 'P-256'], ['RSA', 'RS256', undefined]]);
  for (const c of ['x', 'y']) assert.equal(Buffer.from(keys[0][c], 'base64url').length, 32);
});

test('discovery lists the algorithms of the published keys, RS256 first', async () => {
  for (const { worker } of Object.values(workers)) {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const d = await getJson(worker, path);
      assert.deepEqual(d.id_token_signing_alg_values_supported, ['RS256', 'ES256'], path);
    }
  }
});

test('with an EC key active, the ID token and the JWT access token are ES256 and verify with jose', async () => {
  const { worker: w } = workers.es256;
  const { keys } = await getJson(w, '/id/keys');
  const { app, token } = await codeFlow(w);
  const remote = createRemoteJWKSet(new URL(w.baseUrl + '/id/keys'));

  const id = await jwtVerify(token.id_token, remote, { issuer: w.baseUrl, audience: app.client_id, algorithms: ['ES256'], typ: 'JWT' });
  assert.deepEqual([id.protectedHeader.alg, id.protectedHeader.kid], ['ES256', keys[0].kid]);
  assert.equal(id.payload.nonce, 'n-es');
  assert.equal(id.payload.sub, token.id);
  // JWS ECDSA signatures are the raw r || s (RFC 7518 §3.4), not DER.
  assert.equal(Buffer.from(token.id_token.split('.')[2], 'base64url').length, 64);

  const at = await jwtVerify(token.access_token, remote, { issuer: w.baseUrl, audience: w.baseUrl, algorithms: ['ES256'], typ: 'at+jwt' });
  assert.deepEqual([at.protectedHeader.alg, at.protectedHeader.kid], ['ES256', keys[0].kid]);
  assert.equal(at.payload.client_id, app.client_id);
  assert.equal(at.protectedHeader.tty, 'sfdc-core-token', 'extra header fields survive');

  // The retired RSA key verifies neither; a relying party pinned to RS256 refuses them.
  const retired = await importJWK(keys[1], 'RS256');
  await assert.rejects(jwtVerify(token.id_token, retired));
  await assert.rejects(jwtVerify(token.id_token, remote, { algorithms: ['RS256'] }), errors.JOSEAlgNotAllowed);
  // A flipped signature bit fails.
  const [h, p, s] = token.id_token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[20] ^= 0x01;
  await assert.rejects(jwtVerify(`${h}.${p}.${sig.toString('base64url')}`, remote), errors.JWSSignatureVerificationFailed);
  // The JWT access token works as a bearer token.
  const u = await fetch(w.baseUrl + '/services/oauth2/userinfo', { headers: { authorization: `Bearer ${token.access_token}` } });
  assert.equal(u.status, 200, await u.text());
});

test('PKCS#1 RSA and SEC1 EC keys are wrapped into PKCS#8 and imported: same public keys as Node derives, and the PKCS#1 key signs RS256', async () => {
  const { worker: w, pems } = workers.wrapped;
  assert.match(pems[0], /BEGIN RSA PRIVATE KEY/);
  assert.match(pems[1], /BEGIN EC PRIVATE KEY/);
  const keys = await assertPublishes(w, pems);
  const { app, token } = await codeFlow(w);
  const remote = createRemoteJWKSet(new URL(w.baseUrl + '/id/keys'));
  const id = await jwtVerify(token.id_token, remote, { issuer: w.baseUrl, audience: app.client_id, algorithms: ['RS256'] });
  assert.deepEqual([id.protectedHeader.alg, id.protectedHeader.kid], ['RS256', keys[0].kid]);
  assert.equal(decodeProtectedHeader(token.access_token).alg, 'RS256');
  await jwtVerify(token.access_token, remote, { audience: w.baseUrl, algorithms: ['RS256'], typ: 'at+jwt' });
});
