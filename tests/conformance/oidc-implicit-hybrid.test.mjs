// Checklist items about tokens and ID tokens from the authorization endpoint, against the real
// worker: the OpenID Foundation Implicit and Hybrid OP plans (A.2), the form_post plans (A.5),
// oidcc-ensure-request-without-nonce-fails (A.38), the hybrid sub/c_hash/at_hash checks (A.39),
// and the baseline items B.75 (iss in every authorization response), B.77 (nonce), B.81
// (response modes) and B.108 (no refresh token from the implicit grant). One worker for the file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import { startTestWorker } from '../e2e/harness.mjs';
import { pkcePair, tokenRequest } from '../e2e/flow.mjs';
import { halfHash } from '../e2e/ua-helpers.mjs';
import {
  CB, assertAuthzError, assertCodeAnswer, assertTokenResponse, authz, checkIdToken, codeParams, exchange, newApp, newUser,
  serverInfo, uniq, userinfoGet,
} from './oidc-ab-helpers.mjs';

const NATIVE = 'com.example.app:/cb';
const WITH_QUERY = 'http://127.0.0.1:9/cb?tenant=a';

let w;
let issuer;
let jwks;
let md;
let app;
let user;
let jar;

before(async () => {
  w = await startTestWorker();
  ({ md, issuer, jwks } = await serverInfo(w));
  app = await newApp(w, { callback_urls: [CB, NATIVE, WITH_QUERY] });
  user = await newUser(w, 'implicit');
  const p = codeParams(app, { scope: 'openid profile email address phone api refresh_token offline_access' });
  const first = await authz(w.baseUrl, p, { user });
  assert.deepEqual(first.pages, ['login', 'consent'], first.body);
  assert.ok(first.code);
  jar = first.jar;
});

after(async () => {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
});

const params = (response_type, extra = {}) => ({
  response_type, client_id: app.client_id, redirect_uri: CB, scope: 'openid profile email', state: `st-${uniq()}`, nonce: `n-${uniq()}`, ...extra,
});

/** The fields of a successful token answer from the authorization endpoint. */
function assertImplicitFields(res, p) {
  assert.ok(res.params, `no answer: ${res.status} ${res.body?.slice(0, 200)}`);
  assert.equal(res.error, null, res.location);
  assert.equal(res.params.get('state'), p.state);
  assert.equal(res.params.get('iss'), issuer);
  assert.equal(res.params.get('token_type'), 'Bearer');
  const expiresIn = Number(res.params.get('expires_in'));
  assert.ok(Number.isInteger(expiresIn) && expiresIn > 0, 'expires_in');
  return Object.fromEntries(res.params);
}

// ================================================================================== A.2

test('A.2 oidcc-implicit/-hybrid-certification-test-plan: "id_token token" and "code id_token" complete (openid-client validates the hybrid answer); the other OIDC response types are refused, not advertised', async () => {
  // Implicit: id_token token (in this order too).
  const p = params('id_token token');
  const r = await authz(w.baseUrl, p, { jar });
  assert.equal(r.mode, 'fragment');
  const f = assertImplicitFields(r, p);
  const claims = await checkIdToken(f.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce, accessToken: f.access_token });
  const u = await userinfoGet(w.baseUrl, f.access_token);
  assert.equal(u.status, 200);
  assert.equal(u.json.sub, claims.sub);

  // Hybrid: code id_token, through a certified relying party library.
  const config = await client.discovery(new URL(w.baseUrl), app.client_id, app.client_secret, client.ClientSecretBasic(app.client_secret), {
    execute: [client.allowInsecureRequests, client.useCodeIdTokenResponseType],
  });
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CB, scope: 'openid profile', state, nonce, code_challenge_method: 'S256', code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  });
  assert.equal(url.searchParams.get('response_type'), 'code id_token');
  const h = await authz(w.baseUrl, Object.fromEntries(url.searchParams), { jar });
  assert.equal(h.mode, 'fragment');
  const tokens = await client.authorizationCodeGrant(config, new URL(h.location), { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
  assert.equal(tokens.claims().sub, claims.sub);

  // Not shipped: response_type=id_token (Implicit OP), "code token" and "code id_token token"
  // (Hybrid OP): refused cleanly in the fragment, and absent from discovery.
  for (const rt of ['id_token', 'code token', 'code id_token token']) {
    assert.ok(!md.response_types_supported.includes(rt), `${rt} not advertised`);
    const q = params(rt);
    const refused = await authz(w.baseUrl, q, { jar });
    assertAuthzError(refused, { error: 'unsupported_response_type', state: q.state, issuer, mode: 'fragment' });
  }
});

// ================================================================================== A.5

test('A.5 oidcc-formpost-{basic,implicit,hybrid}: response_mode=form_post answers with a self-submitting POST form to the registered redirect URI carrying the response, state and iss', async () => {
  for (const rt of ['code', 'token id_token', 'code id_token']) {
    const { verifier, challenge } = pkcePair();
    const p = params(rt, { response_mode: 'form_post', code_challenge: challenge });
    const r = await authz(w.baseUrl, p, { jar });
    assert.equal(r.status, 200, `${rt}: ${r.status}`);
    assert.equal(r.mode, 'form_post', rt);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.equal(r.form.method, 'post');
    assert.equal(r.form.action, CB, 'posts to the exact redirect URI');
    assert.equal(r.params.get('state'), p.state);
    assert.equal(r.params.get('iss'), issuer);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /form-action http:\/\/127\.0\.0\.1:9(;|$)/, csp);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/, 'the auto-submit script is allowed by its hash only');
    assert.match(r.body, /<script>document\.forms\[0\]\.submit\(\)<\/script>/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
    if (rt.split(' ').includes('token')) {
      const f = assertImplicitFields(r, p);
      await checkIdToken(f.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce, accessToken: f.access_token });
    }
    if (rt.startsWith('code')) {
      const code = r.params.get('code');
      assert.ok(code, rt);
      if (rt === 'code id_token') await checkIdToken(r.params.get('id_token'), { issuer, clientId: app.client_id, jwks, nonce: p.nonce, code });
      assertTokenResponse(await exchange(w.baseUrl, app, code, { code_verifier: verifier }), `${rt} code redeems`);
    }
  }
  // Errors come the same way.
  const e = params('code', { response_mode: 'form_post', prompt: 'none' });
  const err = await authz(w.baseUrl, e);
  assert.equal(err.mode, 'form_post');
  assertAuthzError(err, { error: 'login_required', state: e.state, issuer, mode: 'form_post' });
});

// ================================================================================== A.3

test('A.38 oidcc-ensure-request-without-nonce-fails: token id_token, id_token token and code id_token without nonce → invalid_request in the fragment (state, iss), before any login', async () => {
  for (const rt of ['token id_token', 'id_token token', 'code id_token']) {
    for (const via of [jar, undefined]) {
      const p = params(rt, { nonce: undefined });
      const r = await authz(w.baseUrl, p, { jar: via });
      assertAuthzError(r, { error: 'invalid_request', state: p.state, issuer, mode: 'fragment' });
      assert.equal(r.pages.length, 0);
    }
  }
  // id_token alone is not shipped: refused too (another error, still never a token).
  const p = params('id_token', { nonce: undefined });
  const r = await authz(w.baseUrl, p, { jar });
  assertAuthzError(r, { error: ['invalid_request', 'unsupported_response_type'], state: p.state, issuer, mode: 'fragment' });
});

test('A.39 hybrid (code id_token): the front-channel ID token\'s c_hash binds the code, its sub equals the token endpoint ID token\'s, whose at_hash binds the access token', async () => {
  const { verifier, challenge } = pkcePair();
  const p = params('code id_token', { code_challenge: challenge });
  const r = await authz(w.baseUrl, p, { jar });
  assert.equal(r.mode, 'fragment');
  const code = r.params.get('code');
  assert.ok(code);
  assert.equal(r.params.get('access_token'), null, 'code id_token issues no access token at the authorization endpoint');
  const front = await checkIdToken(r.params.get('id_token'), { issuer, clientId: app.client_id, jwks, nonce: p.nonce, code });
  assert.equal(front.c_hash, halfHash(code));
  const tokens = assertTokenResponse(await exchange(w.baseUrl, app, code, { code_verifier: verifier, auth: 'basic' }));
  const back = await checkIdToken(tokens.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce, accessToken: tokens.access_token });
  assert.equal(back.sub, front.sub, 'VerifyIdTokenSubConsistentHybridFlow');
  assert.equal(back.iss, front.iss);
  assert.equal(back.auth_time, front.auth_time);
  // A swapped code does not match the c_hash a client checks.
  assert.notEqual(front.c_hash, halfHash(`${code}x`));
});

test('A.39 implicit (id_token token): at_hash validates against the access token beside it', async () => {
  const p = params('token id_token');
  const r = await authz(w.baseUrl, p, { jar });
  const f = assertImplicitFields(r, p);
  const c = await checkIdToken(f.id_token, { issuer, clientId: app.client_id, jwks, nonce: p.nonce, accessToken: f.access_token });
  assert.equal(c.at_hash, halfHash(f.access_token));
});

// ================================================================================== B

test('B.75 RFC 9207 iss is in every authorization response — code (query and fragment), token id_token, code id_token, form_post, and errors — equal to the issuer; discovery says so', async () => {
  assert.equal(md.authorization_response_iss_parameter_supported, true);
  const cases = [
    [params('code'), 'query'],
    [params('code', { response_mode: 'fragment' }), 'fragment'],
    [params('token id_token'), 'fragment'],
    [params('code id_token'), 'fragment'],
    [params('code', { response_mode: 'form_post' }), 'form_post'],
    [params('token id_token', { response_mode: 'form_post' }), 'form_post'],
  ];
  for (const [p, mode] of cases) {
    const r = await authz(w.baseUrl, p, { jar });
    assert.equal(r.mode, mode, `${p.response_type} ${p.response_mode ?? ''}`);
    assert.equal(r.error, null);
    assert.equal(r.params.getAll('iss').length, 1);
    assert.equal(r.params.get('iss'), issuer, `${p.response_type} ${mode}`);
  }
  for (const [p, mode] of [[params('code', { scope: 'nonsense' }), 'query'], [params('token id_token', { scope: 'nonsense' }), 'fragment'], [params('code', { scope: 'nonsense', response_mode: 'form_post' }), 'form_post']]) {
    assertAuthzError(await authz(w.baseUrl, p, { jar }), { error: 'invalid_scope', state: p.state, issuer, mode });
  }
});

test('B.77 nonce: required when an ID token leaves the authorization endpoint (A.38) and echoed unchanged, odd characters included, in both ID tokens of a hybrid flow', async () => {
  const nonce = `a b+c/d=e&f%20g~é-${randomUUID()}`;
  for (const rt of ['token id_token', 'code id_token']) {
    const p = params(rt, { nonce });
    const r = await authz(w.baseUrl, p, { jar });
    const c = await checkIdToken(r.params.get('id_token'), { issuer, clientId: app.client_id, jwks, nonce });
    assert.equal(c.nonce, nonce, rt);
    if (rt === 'code id_token') {
      const tokens = assertTokenResponse(await exchange(w.baseUrl, app, r.params.get('code')));
      assert.equal((await checkIdToken(tokens.id_token, { issuer, clientId: app.client_id, jwks, nonce })).nonce, nonce, 'token endpoint ID token');
    }
  }
});

test('B.81 response modes: fragment is the default for token types; response_mode=query is refused for them (in the fragment); form_post targets the exact registered URI, query included', async () => {
  for (const rt of ['token', 'token id_token', 'code id_token']) {
    const p = params(rt);
    const ok = await authz(w.baseUrl, p, { jar });
    assert.equal(ok.mode, 'fragment', `${rt} defaults to the fragment`);
    assert.equal(ok.url.search, '', `${rt}: nothing in the query`);
    const q = params(rt, { response_mode: 'query' });
    const refused = await authz(w.baseUrl, q, { jar });
    assertAuthzError(refused, { error: 'invalid_request', state: q.state, issuer, mode: 'fragment' });
    assert.equal(refused.url.search, '', 'never in the query');
  }
  const p = params('code', { redirect_uri: WITH_QUERY, response_mode: 'form_post' });
  const r = await authz(w.baseUrl, p, { jar });
  assert.equal(r.form.action, WITH_QUERY);
  assert.ok(r.params.get('code'));
  const q = params('code', { redirect_uri: WITH_QUERY });
  const viaQuery = await authz(w.baseUrl, q, { jar });
  assert.equal(viaQuery.url.searchParams.get('tenant'), 'a', 'the registered query is kept (RFC 6749 §3.1.2)');
  assertCodeAnswer(viaQuery, { state: q.state, issuer, target: 'http://127.0.0.1:9/cb' });
});

test('B.108 no refresh token from the implicit grant to a web redirect URI, nor from client_credentials (the native-scheme exception is Salesforce\'s, pinned here)', async () => {
  for (const rt of ['token', 'token id_token']) {
    const p = params(rt, { scope: 'openid api refresh_token offline_access' });
    const f = assertImplicitFields(await authz(w.baseUrl, p, { jar }), p);
    assert.equal(f.refresh_token, undefined, `${rt} to an http redirect URI: no refresh token (RFC 6749 §4.2.2)`);
    assert.ok(f.access_token);
  }
  // Salesforce's user-agent flow returns a refresh token to a native app's private-use scheme
  // (docs/endpoints.md, salesforce-reference.md §2): a documented deviation from §4.2.2.
  const n = params('token', { redirect_uri: NATIVE, scope: 'api refresh_token' });
  const native = await authz(w.baseUrl, n, { jar });
  assert.equal(native.target, NATIVE);
  assert.ok(native.params.get('refresh_token'), 'native scheme: refresh token (Salesforce mobile contract)');
  // client_credentials (RFC 6749 §4.4.3): no refresh token even with the scope.
  const runAs = await newUser(w, 'cc');
  const cc = await newApp(w, { client_credentials_user: runAs.username });
  const t = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_id: cc.client_id, client_secret: cc.client_secret });
  const tokens = assertTokenResponse(t, 'client_credentials');
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(tokens.id_token, undefined);
});
