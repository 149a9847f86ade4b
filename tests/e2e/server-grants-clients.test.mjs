// The server-to-server flows (JWT bearer, client credentials, password, private_key_jwt, JWT
// access tokens) driven by the client libraries integrators really use, as outside callers over
// HTTP: jsforce, openid-client v6, authlib's AssertionSession (PyPI), and @salesforce/core (what
// `sf org login jwt` runs). Each library builds and signs its own requests; the app's key is a
// self-signed X.509 certificate made with the openssl CLI, as Salesforce admins upload. Last, a
// resource server's view of JWT access tokens: verified with the JWKS alone, and revoked tokens
// caught by introspection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import jsforce from 'jsforce';
import * as client from 'openid-client';
import { ROOT } from '../../scripts/worker.mjs';
import { tokenRequest } from './flow.mjs';
import { startTestWorker } from './harness.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_SHAPE = /^00D\w{12,15}![.\w]*$/; // sfdx-core's access-token detection
const CALLBACK = 'http://127.0.0.1:9/cb'; // never contacted

let w;
let tmp; // keys, and @salesforce/core's HOME
let key; // { keyPem, certPem, keyFile } made by openssl
let orgId;

/** A self-signed certificate and its RSA key, made by the openssl CLI in `dir`. */
function opensslCertificate(dir) {
  const keyFile = join(dir, 'server.key');
  const certFile = join(dir, 'server.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=edge-oauth e2e'], { stdio: 'pipe' });
  return { keyFile, keyPem: readFileSync(keyFile, 'utf8'), certPem: readFileSync(certFile, 'utf8') };
}

/** An RS256 assertion over `claims`, signed with the openssl key. */
async function sign(claims) {
  const privateKey = await jose.importPKCS8(key.keyPem, 'RS256');
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
}

/** A JWT bearer assertion about `username` for app `clientId`, valid 3 minutes. */
function bearerAssertion(clientId, username, extra = {}) {
  return sign({ iss: clientId, sub: username, aud: w.baseUrl, exp: Math.floor(Date.now() / 1000) + 180, ...extra });
}

/** A user with a username unique to this run. */
async function newUser(label) {
  const username = `${label}.${randomUUID().slice(0, 8)}@example.com`;
  const fields = { username, password: `pw-${randomUUID()}`, email: username, name: `${label} Integration` };
  const r = await w.admin('POST', '/admin/users', fields);
  assert.equal(r.status, 201, r.text);
  return { ...fields, user_id: r.json.user_id };
}

async function newApp(fields) {
  const r = await w.admin('POST', '/admin/apps', { callback_urls: [CALLBACK], ...fields });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function preauthorize(app, user) {
  const r = await w.admin('POST', `/admin/apps/${app.client_id}/users/${user.user_id}`);
  assert.equal(r.status, 200, r.text);
}

async function getJson(path, accessToken) {
  const r = await fetch(new URL(path, w.baseUrl), { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

/**
 * How an openid-client call failed: status, error and description. The server answers
 * `invalid_client` with 401 and `WWW-Authenticate: Basic` (RFC 6749 §5.2), which openid-client
 * throws as a challenge without reading the body; the body is read here.
 */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (e.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') {
      const body = await e.response.json();
      return { status: e.status, challenge: e.cause.map((c) => c.scheme).join(), error: body.error, error_description: body.error_description };
    }
    if (e.code === 'OAUTH_RESPONSE_BODY_ERROR') return { status: e.status, error: e.error, error_description: e.error_description };
    throw e;
  }
  assert.fail('expected the call to fail');
}

const identityUrl = (user) => `${w.baseUrl}/id/${orgId}/${user.user_id}`;
const basic = (app) => ({ authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}` });

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edge-oauth-grants-'));
  key = opensslCertificate(tmp);
  assert.match(key.certPem, /^-----BEGIN CERTIFICATE-----/);
  w = await startTestWorker();
  orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
  assert.match(orgId, /^00D\w{15}$/);
});

after(async () => {
  await w?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('jsforce: JWT bearer with OAuth2.requestToken, and Connection.login by the password flow', async () => {
  const app = await newApp({ name: 'jsforce integration', scopes: ['api', 'refresh_token'], certificate: key.certPem });
  const user = await newUser('jsforce');
  const oauth2 = new jsforce.OAuth2({ loginUrl: w.baseUrl, clientId: app.client_id });

  // A well-signed assertion, but the user is not yet authorized for the app: refused.
  await assert.rejects(
    oauth2.requestToken({ grant_type: JWT_BEARER, assertion: await bearerAssertion(app.client_id, user.username) }),
    (e) => {
      assert.equal(e.name, 'invalid_grant');
      assert.equal(e.message, "user hasn't approved this consumer");
      return true;
    },
  );

  await preauthorize(app, user);
  const res = await oauth2.requestToken({ grant_type: JWT_BEARER, assertion: await bearerAssertion(app.client_id, user.username) });
  assert.match(res.access_token, TOKEN_SHAPE);
  assert.ok(res.access_token.startsWith(`${orgId}!`));
  assert.equal(res.refresh_token, undefined, 'the JWT bearer grant never issues a refresh token');
  assert.equal(res.scope, 'api', 'refresh_token is not granted by an assertion');
  assert.equal(res.id, identityUrl(user));
  assert.equal(res.instance_url, w.baseUrl);
  assert.equal(res.token_type, 'Bearer');
  assert.equal(res.signature, undefined, 'no client secret was sent, so nothing to sign the response with');
  assert.equal(res.token_format, undefined);

  // The token is a session: a jsforce Connection reads the identity URL (`id`) with it.
  // (conn.identity() without a userInfo would first ask the REST API root for the identity URL,
  // which this server, an authorization server only, does not serve.)
  const conn = new jsforce.Connection({ instanceUrl: res.instance_url, accessToken: res.access_token });
  const identity = await conn.request(`${res.id}?format=json`);
  assert.equal(identity.username, user.username);
  assert.equal(identity.user_id, user.user_id);
  assert.equal(identity.organization_id, orgId);

  // With clientSecret configured, jsforce adds client_id and client_secret to the same request:
  // the server checks them and signs the response with the secret.
  const withSecret = new jsforce.OAuth2({ loginUrl: w.baseUrl, clientId: app.client_id, clientSecret: app.client_secret });
  const signed = await withSecret.requestToken({ grant_type: JWT_BEARER, assertion: await bearerAssertion(app.client_id, user.username) });
  assert.notEqual(signed.access_token, res.access_token);
  assert.equal(signed.signature, createHmac('sha256', app.client_secret).update(signed.id + signed.issued_at).digest('base64'));
  const wrongSecret = new jsforce.OAuth2({ loginUrl: w.baseUrl, clientId: app.client_id, clientSecret: 'not-the-secret' });
  await assert.rejects(
    wrongSecret.requestToken({ grant_type: JWT_BEARER, assertion: await bearerAssertion(app.client_id, user.username) }),
    (e) => e.name === 'invalid_client',
  );

  // The password flow (Connection.login with a client id and secret goes through OAuth2, not
  // SOAP). Off by default: the right password is refused, as Salesforce does when it is blocked.
  const pwApp = await newApp({ name: 'jsforce password app', scopes: ['api', 'refresh_token'] });
  const login = () => new jsforce.Connection({
    oauth2: { loginUrl: w.baseUrl, clientId: pwApp.client_id, clientSecret: pwApp.client_secret },
  });
  await assert.rejects(login().login(user.username, user.password), (e) => {
    assert.equal(e.name, 'invalid_grant');
    assert.match(e.message, /authentication failure/);
    return true;
  });

  const on = await w.admin('PATCH', '/admin/settings', { allow_username_password_flow: true });
  assert.equal(on.status, 200, on.text);
  try {
    const meta = await (await fetch(`${w.baseUrl}/.well-known/openid-configuration`)).json();
    assert.ok(meta.grant_types_supported.includes('password'), 'discovery lists the password grant once it is on');
    const c = login();
    const info = await c.login(user.username, user.password);
    assert.deepEqual(info, { id: user.user_id, organizationId: orgId, url: identityUrl(user) });
    assert.deepEqual(c.userInfo, info);
    assert.match(c.accessToken, TOKEN_SHAPE);
    assert.equal(c.instanceUrl, w.baseUrl);
    assert.equal(c.refreshToken ?? undefined, undefined, 'the password grant issues no refresh token');
    const id = await c.identity();
    assert.equal(id.username, user.username);
    assert.equal(id.email, user.email);
    // A wrong password is the same failure as the flow being off.
    await assert.rejects(login().login(user.username, `${user.password}x`), (e) => e.name === 'invalid_grant' && /authentication failure/.test(e.message));
  } finally {
    await w.admin('PATCH', '/admin/settings', { allow_username_password_flow: false });
  }
  await assert.rejects(login().login(user.username, user.password), (e) => /authentication failure/.test(e.message));
});

test('openid-client v6: client credentials (secret and private_key_jwt) and the JWT bearer grant', async () => {
  const ccUser = await newUser('oidc.cc');
  const app = await newApp({
    name: 'openid-client integration',
    scopes: ['api', 'openid', 'refresh_token'],
    certificate: key.certPem,
    client_credentials_user: ccUser.username,
  });
  const options = { execute: [client.allowInsecureRequests] }; // http on loopback
  const discover = (auth) => client.discovery(new URL(w.baseUrl), app.client_id, undefined, auth, options);

  // 1. client_secret_post.
  const config = await discover(client.ClientSecretPost(app.client_secret));
  const md = config.serverMetadata();
  assert.ok(md.grant_types_supported.includes('client_credentials'));
  assert.ok(md.grant_types_supported.includes(JWT_BEARER));
  assert.ok(md.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
  assert.deepEqual(md.token_endpoint_auth_signing_alg_values_supported, ['RS256', 'ES256']);

  const cc = await client.clientCredentialsGrant(config, { scope: 'api' });
  assert.match(cc.access_token, TOKEN_SHAPE);
  assert.equal(cc.token_type, 'bearer', 'openid-client lower-cases token_type');
  assert.equal(cc.scope, 'api');
  assert.equal(cc.refresh_token, undefined);
  assert.equal(cc.id_token, undefined);
  assert.equal(cc.token_format, undefined, 'opaque tokens unless the app asks for JWTs');
  assert.ok(cc.expires_in > 0);
  assert.equal(cc.id, identityUrl(ccUser), 'runs as the client credentials user');
  // The library checks the userinfo `sub` against the identity URL we expect.
  const info = await client.fetchUserInfo(config, cc.access_token, identityUrl(ccUser));
  assert.equal(info.preferred_username, ccUser.username);
  // Without a scope: the app's scopes, never openid or refresh_token.
  const all = await client.clientCredentialsGrant(config);
  assert.equal(all.scope, 'api');
  // A scope the app does not have is refused.
  assert.deepEqual(await failure(client.clientCredentialsGrant(config, { scope: 'api web' })), {
    status: 400, error: 'invalid_scope', error_description: 'scope not allowed for this app: web',
  });

  // 2. private_key_jwt: openid-client signs a client assertion (iss = sub = client_id,
  //    aud = issuer, a random jti, 60 s) with the key of the registered certificate.
  const privateKey = await jose.importPKCS8(key.keyPem, 'RS256');
  const pkj = await discover(client.PrivateKeyJwt(privateKey));
  const viaKey = await client.clientCredentialsGrant(pkj, { scope: 'api' });
  assert.match(viaKey.access_token, TOKEN_SHAPE);
  assert.equal(viaKey.scope, 'api');
  assert.equal(viaKey.id, identityUrl(ccUser));
  assert.equal((await client.fetchUserInfo(pkj, viaKey.access_token, identityUrl(ccUser))).preferred_username, ccUser.username);
  // The same key authenticates introspection and revocation.
  const active = await client.tokenIntrospection(pkj, viaKey.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, app.client_id);
  assert.equal(active.username, ccUser.username);
  await client.tokenRevocation(pkj, viaKey.access_token);
  assert.equal((await client.tokenIntrospection(pkj, viaKey.access_token)).active, false);
  assert.equal((await getJson('/services/oauth2/userinfo', viaKey.access_token)).status, 401);
  // A client assertion is single-use: the same jti twice is refused (invalid_client).
  const jti = randomUUID();
  const fixedJti = await discover(client.PrivateKeyJwt(privateKey, { [client.modifyAssertion]: (_h, p) => { p.jti = jti; } }));
  await client.clientCredentialsGrant(fixedJti, { scope: 'api' });
  assert.deepEqual(await failure(client.clientCredentialsGrant(fixedJti, { scope: 'api' })), {
    status: 401, challenge: 'basic', error: 'invalid_client', error_description: 'client assertion: jti already used',
  });
  // A key the app did not register is refused.
  const { privateKey: otherKey } = await jose.generateKeyPair('RS256');
  assert.deepEqual(await failure(client.clientCredentialsGrant(await discover(client.PrivateKeyJwt(otherKey)))), {
    status: 401, challenge: 'basic', error: 'invalid_client', error_description: 'client assertion: invalid assertion signature',
  });

  // 3. The JWT bearer grant as a generic grant, the client identified by client_id only.
  const jwtUser = await newUser('oidc.jwt');
  await preauthorize(app, jwtUser);
  const none = await discover(client.None());
  const bearer = await client.genericGrantRequest(none, JWT_BEARER, { assertion: await bearerAssertion(app.client_id, jwtUser.username) });
  assert.match(bearer.access_token, TOKEN_SHAPE);
  assert.equal(bearer.refresh_token, undefined);
  assert.deepEqual(bearer.scope.split(' ').sort(), ['api', 'openid']);
  assert.equal(bearer.token_format, undefined);
  // openid was granted, so there is an ID token; openid-client validated it (signature by the
  // JWKS, iss, aud, exp) before returning.
  const claims = bearer.claims();
  assert.equal(claims.sub, identityUrl(jwtUser));
  assert.equal(claims.aud, app.client_id);
  assert.equal(claims.iss, w.baseUrl);
  assert.equal((await client.fetchUserInfo(none, bearer.access_token, claims.sub)).preferred_username, jwtUser.username);
  // The jti of an assertion is single-use too.
  const once = await bearerAssertion(app.client_id, jwtUser.username, { jti: randomUUID() });
  await client.genericGrantRequest(none, JWT_BEARER, { assertion: once });
  assert.deepEqual(await failure(client.genericGrantRequest(none, JWT_BEARER, { assertion: once })), {
    status: 400, error: 'invalid_grant', error_description: "the assertion's jti was used before",
  });
});

test('authlib AssertionSession (PyPI): fetches its own JWT bearer token and calls userinfo', async () => {
  const app = await newApp({ name: 'authlib integration', scopes: ['api', 'refresh_token', 'profile'], certificate: key.certPem });
  const user = await newUser('authlib');
  await preauthorize(app, user);
  const out = execFileSync(join(ROOT, '.venv', 'bin', 'python'), [join(ROOT, 'tests', 'e2e', 'authlib_assertion.py')], {
    env: { ...process.env, BASE: w.baseUrl, CLIENT_ID: app.client_id, USERNAME: user.username, KEY_FILE: key.keyFile },
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  assert.equal(r.userinfo_status, 200);
  assert.equal(r.userinfo.preferred_username, user.username);
  assert.equal(r.userinfo.sub, identityUrl(user));
  assert.equal(r.userinfo.name, user.name, 'profile was granted');
  assert.match(r.access_token, TOKEN_SHAPE);
  assert.equal(r.id, identityUrl(user));
  assert.equal(r.instance_url, w.baseUrl);
  assert.ok(!r.token_keys.includes('refresh_token'));
  // authlib writes the jti it generates into the `claims` dict it was given, so its next
  // assertion repeats that jti: the server refuses the replay.
  assert.deepEqual(r.replayed_jti, { error: 'invalid_grant', description: "the assertion's jti was used before" });
  // Without `claims`, every assertion gets a new jti and a new token.
  assert.equal(r.second_fetch, null);
  assert.equal(r.tokens_differ, true);
  assert.equal(r.second_userinfo_status, 200);
  // authlib's default exp is an hour ahead; the server takes at most 10 minutes.
  assert.deepEqual(r.default_lifetime, { error: 'invalid_grant', description: "the assertion's exp is more than 10 minutes ahead" });
  // authlib's default audience, the token endpoint URL, is one of ours.
  assert.equal(r.token_url_audience_status, 200);
});

test('@salesforce/core AuthInfo (sf org login jwt): exp in milliseconds, aud the login URL', async () => {
  const app = await newApp({ name: 'sf cli integration', scopes: ['api', 'refresh_token', 'web'], certificate: key.certPem });
  const user = await newUser('sfcli');
  await preauthorize(app, user);

  // Keep the CLI's state (auth files, key, logs) out of the real home.
  const home = join(tmp, 'home');
  process.env.HOME = home;
  process.env.SF_DISABLE_LOG_FILE = 'true';
  process.env.SFDX_DISABLE_LOG_FILE = 'true';
  process.env.SF_USE_GENERIC_UNIX_KEYCHAIN = 'true';
  const { AuthInfo } = await import('@salesforce/core');

  // Record what AuthInfo signs (it calls jsonwebtoken.sign from its own dependency tree).
  const requireFromCore = createRequire(join(ROOT, 'node_modules', '@salesforce', 'core', 'lib', 'org', 'authInfo.js'));
  const jsonwebtoken = requireFromCore('jsonwebtoken');
  const signed = [];
  const realSign = jsonwebtoken.sign;
  jsonwebtoken.sign = (payload, ...rest) => { signed.push({ ...payload }); return realSign(payload, ...rest); };
  let authInfo;
  try {
    authInfo = await AuthInfo.create({
      username: user.username,
      oauth2Options: { clientId: app.client_id, loginUrl: w.baseUrl, privateKeyFile: key.keyFile },
    });
  } finally {
    jsonwebtoken.sign = realSign;
  }

  // One assertion, accepted at the first try: exp is Date.now() + 300 (milliseconds, 0.3 s
  // ahead), aud is the login URL.
  assert.equal(signed.length, 1, JSON.stringify(signed));
  assert.equal(signed[0].iss, app.client_id);
  assert.equal(signed[0].sub, user.username);
  assert.equal(signed[0].aud, w.baseUrl);
  assert.ok(signed[0].exp > 1e12, `exp ${signed[0].exp} is in milliseconds`);

  const fields = authInfo.getFields(true);
  assert.equal(fields.username, user.username);
  assert.equal(fields.orgId, orgId);
  assert.equal(fields.instanceUrl, w.baseUrl);
  assert.equal(fields.loginUrl, w.baseUrl);
  assert.equal(fields.clientId, app.client_id);
  assert.match(fields.accessToken, TOKEN_SHAPE);
  assert.equal(fields.refreshToken, undefined);
  assert.equal(authInfo.isJwt(), true);

  const id = await getJson(`/id/${fields.orgId}/${user.user_id}`, fields.accessToken);
  assert.equal(id.status, 200, id.text);
  assert.equal(id.json.username, user.username);
  const info = await getJson('/services/oauth2/userinfo', fields.accessToken);
  assert.equal(info.json.preferred_username, user.username);
});

test('JWT access tokens: verified with the JWKS alone; a revoked one still verifies but introspects inactive', async () => {
  const ccUser = await newUser('gateway');
  const app = await newApp({ name: 'jwt access tokens', scopes: ['api', 'refresh_token'], client_credentials_user: ccUser.username, jwt_access_tokens: true });
  const r = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials' }, basic(app));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_format, 'jwt');
  assert.equal(r.json.refresh_token, undefined);
  const token = r.json.access_token;

  // What a gateway does: the JWKS, and nothing else from the server.
  const jwks = jose.createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
  const verify = () => jose.jwtVerify(token, jwks, { issuer: w.baseUrl, audience: w.baseUrl, typ: 'at+jwt', algorithms: ['RS256'] });
  const { payload, protectedHeader } = await verify();
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.client_id, app.client_id);
  assert.deepEqual(payload.scp, ['api']);
  assert.equal(payload.scope, 'api');
  assert.equal(payload.sub, identityUrl(ccUser));
  assert.equal(payload.sub, r.json.id);
  assert.ok(payload.exp > Date.now() / 1000);
  assert.ok(payload.jti);
  // Not an ID token: a verifier expecting the client as audience refuses it.
  await assert.rejects(jose.jwtVerify(token, jwks, { issuer: w.baseUrl, audience: app.client_id }), (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED');

  const introspect = async () => {
    const i = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(app) },
      body: new URLSearchParams({ token }),
    });
    assert.equal(i.status, 200);
    return i.json();
  };
  const before = await introspect();
  assert.equal(before.active, true);
  assert.equal(before.client_id, app.client_id);
  assert.equal((await getJson('/services/oauth2/userinfo', token)).json.preferred_username, ccUser.username);

  const rev = await fetch(`${w.baseUrl}/services/oauth2/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  assert.equal(rev.status, 200, await rev.text());

  // The signature is forever; revocation is known only to the server.
  await verify();
  assert.deepEqual(await introspect(), { active: false });
  assert.equal((await getJson('/services/oauth2/userinfo', token)).status, 401);
});
