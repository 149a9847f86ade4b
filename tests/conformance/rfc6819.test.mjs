// Checklist section D: the RFC 6819 threat model, server-side countermeasures, one test per
// applicable item over HTTP against the real worker. The worker pins its issuer (ISSUER) to a
// name it is not served on, so D.156 can show the issuer never follows the request. Also F.187
// (what KV holds), which needs the state a few flows leave behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';
import { startTestWorker } from '../e2e/harness.mjs';
import { shardRows } from '../e2e/shard-db.mjs';
import { fragmentOf, queryOf, halfHash } from '../e2e/ua-helpers.mjs';
import { cookieAttrs, formFields } from '../e2e/flow.mjs';
import {
  CB, newApp, newUser, call, postForm, token, introspect, revoke, userinfo, basic, assertOAuthError,
  loginBrowser, codeFor, tokensFor, exchange, refresh, ccApp, ccToken, mintIat, register, sha256hex, uniq,
  assertNoPanic, CookieJar,
} from './cg-support.mjs';

const ISSUER = 'https://issuer.example.test';
let w;
let app;
let user;
let jar;
let jwks;

before(async () => {
  // KEYS_REFRESH_S: the managed signing keys are re-read from D1 at most hourly, so no such read
  // lands in a round-trip count (D.148).
  w = await startTestWorker({ vars: { ISSUER, KEYS_REFRESH_S: '3600' } });
  app = await newApp(w);
  user = await newUser(w, 'd');
  ({ jar } = await loginBrowser(w, app, user));
  jwks = jose.createLocalJWKSet((await call(w, '/id/keys')).json);
});

after(async () => {
  if (w) {
    assertNoPanic(w);
    await w.stop();
  }
});

const authzGet = (params, opts = {}) => call(w, `/services/oauth2/authorize?${new URLSearchParams(params)}`, opts);
const trips = (r) => r.headers.get('x-storage-round-trips');

// ----------------------------------------------------------------------------------- D.141

test('D.141 secrets, codes and tokens are stored only as hashes; SQL metacharacters in every input are data', async () => {
  // Injection probes: each is an ordinary refusal, and the tables are intact afterwards.
  const usersBefore = (await w.admin('GET', '/admin/users')).json.users.length;
  const sqli = ["' OR '1'='1", "x'; DROP TABLE users; --", '" OR 1=1 --', "3MVG9' UNION SELECT secret_hash FROM apps --"];
  for (const s of sqli) {
    assertOAuthError(await token(w, { grant_type: 'client_credentials', client_id: s, client_secret: 'not the secret' }), 400, 'invalid_client_id', `client_id ${s}`);
    assert.deepEqual((await introspect(w, app, s)).json, { active: false }, `introspect ${s}`);
    assert.equal((await userinfo(w, s)).status, 401, `userinfo ${s}`);
    assertOAuthError(await refresh(w, app, s), 400, 'invalid_grant', `refresh ${s}`);
    assert.equal((await w.admin('GET', `/admin/users/${encodeURIComponent(s)}`)).status, 404, `admin user ${s}`);
    const login = await codeFor(w, new CookieJar(), app, {}, { username: s, password: 'not the password' });
    assert.equal(login.status, 401, `login as ${s}: ${login.status}`);
    assert.equal(login.code ?? null, null);
  }
  assert.equal((await w.admin('GET', '/admin/users')).json.users.length, usersBefore, 'the users table is intact');

  // At rest: only SHA-256 hashes of what was handed out.
  const a = await codeFor(w, jar, app);
  const t = await exchange(w, app, a.code);
  assert.equal(t.status, 200, t.text);
  const handedOut = [app.client_secret, a.code, t.json.access_token, t.json.refresh_token, user.password];
  const hashes = shardRows(w.stateDir, 'select token_hash from tokens').map((r) => r.token_hash);
  assert.ok(hashes.includes(sha256hex(t.json.access_token)) && hashes.includes(sha256hex(t.json.refresh_token)));
  assert.equal(JSON.parse(w.d1(`select secret_hash from apps where client_id = '${app.client_id}'`))[0].secret_hash, sha256hex(app.client_secret));
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name !== 'test.vars') files.push(p);
    }
  };
  walk(w.stateDir);
  assert.ok(files.length > 3);
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const s of handedOut) assert.ok(!bytes.includes(Buffer.from(s)), `${f} holds a raw secret ${s.slice(0, 6)}…`);
  }
});

// ----------------------------------------------------------------------------------- D.142

test('D.142 every guessable credential is long and random: codes, tokens, secrets, device and registration codes', async () => {
  const B62 = (n) => new RegExp(`^[0-9A-Za-z]{${n}}$`);
  assert.match(app.client_secret, B62(64), 'client secret: 64 base62 (≈381 bits)');
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await codeFor(w, jar, app)).code);
  for (const c of codes) assert.match(c, B62(43), 'code: 43 base62 (256 bits)');
  assert.equal(new Set(codes).size, codes.length);
  const t = await exchange(w, app, codes[0]);
  assert.match(t.json.refresh_token, B62(64), 'refresh token: route 2 + 62 base62');
  assert.match(t.json.access_token, /^00D\w{15}![0-9A-Za-z]{71}$/, 'access token: org id ! route 2 + random 41 + stamp 28');
  const d = await token(w, { response_type: 'device_code', client_id: app.client_id, scope: 'api' });
  assert.equal(d.status, 200, d.text);
  assert.match(d.json.device_code, B62(45), 'device code: route 2 + 43 base62 (256 bits)');
  assert.match(d.json.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/, 'user code: 8 of 20 letters (34.5 bits), throttled (G.194)');
  const iat = await mintIat(w);
  assert.match(iat, B62(45), 'initial access token: route 2 + 43 base62 (admin-api.md)');
  const reg = await register(w, { redirect_uris: [CB], client_name: 'entropy' }, { iat });
  assert.match(reg.json.registration_access_token, B62(43), 'registration access token: 43 base62');
  assert.match(reg.json.client_secret, B62(64));
});

// ----------------------------------------------------------------------------------- D.143

test('D.143 a code is bound to its client and redirect URI; attempts by others neither work nor burn it', async () => {
  const other = await newApp(w, { callback_urls: [CB, 'http://127.0.0.1:9/other'] });
  const a = await codeFor(w, jar, app);
  assertOAuthError(await exchange(w, other, a.code), 400, 'invalid_grant', 'another client');
  assertOAuthError(await exchange(w, app, a.code, { redirect_uri: 'http://127.0.0.1:9/other' }), 400, 'redirect_uri_mismatch', 'another redirect_uri');
  assertOAuthError(await token(w, { grant_type: 'authorization_code', code: a.code, client_id: app.client_id, client_secret: app.client_secret }), 400, 'redirect_uri_mismatch', 'no redirect_uri');
  const own = await exchange(w, app, a.code);
  assert.equal(own.status, 200, own.text);
});

// ----------------------------------------------------------------------------------- D.144

test('D.144 consent names the app, the user and every scope; only the asked scopes are granted; an unapproved or self-registered client is never auto-approved', async () => {
  const named = await newApp(w, { name: `Consent Shown ${uniq()}`, scopes: ['api', 'refresh_token', 'email', 'profile', 'web'] });
  const page = await authzGet({ response_type: 'code', client_id: named.client_id, redirect_uri: CB, scope: 'api email' }, { jar });
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /name="approve"/);
  assert.ok(page.text.includes(named.name), 'the app name');
  assert.ok(page.text.includes(user.username), 'the user');
  assert.match(page.text, /\(api\)/);
  assert.match(page.text, /\(email\)/);
  assert.doesNotMatch(page.text, /\(web\)|\(refresh_token\)/, 'only the scopes asked for');
  // prompt=none for an app the user never approved: consent_required, never a silent code.
  const silent = await authzGet({ response_type: 'code', client_id: named.client_id, redirect_uri: CB, prompt: 'none', state: 'q' }, { jar });
  assert.equal(queryOf(silent.location).get('error'), 'consent_required', silent.location);
  // Approving a subset grants exactly that subset.
  const t = await tokensFor(w, jar, named, { scope: 'api email' });
  assert.deepEqual(t.scope.split(' ').sort(), ['api', 'email']);
  assert.equal(t.refresh_token, undefined);
  // A self-registered client: consent every time it is new, with the redirect host named.
  const reg = await register(w, { redirect_uris: ['https://rp.example.net/cb'], client_name: 'Self Registered', scope: 'api' }, { iat: await mintIat(w) });
  const regSilent = await authzGet({ response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://rp.example.net/cb', prompt: 'none' }, { jar });
  assert.equal(queryOf(regSilent.location).get('error'), 'consent_required');
  const regPage = await authzGet({ response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://rp.example.net/cb' }, { jar });
  assert.match(regPage.text, /registered itself/);
  assert.match(regPage.text, /rp\.example\.net/);
});

// ----------------------------------------------------------------------------------- D.146

test('D.146 state comes back exactly, on success and on error, and cannot inject parameters', async () => {
  const state = 'a&code=evil#frag é/?=%20';
  const ok = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state }, { jar });
  assert.equal(ok.status, 302);
  const q = queryOf(ok.location);
  assert.equal(q.get('state'), state);
  assert.equal(q.getAll('code').length, 1);
  assert.notEqual(q.get('code'), 'evil');
  const err = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state, scope: 'nope' });
  assert.equal(queryOf(err.location).get('state'), state);
  assert.equal(queryOf(err.location).get('code'), null);
  const frag = await authzGet({ response_type: 'token', client_id: app.client_id, redirect_uri: CB, state }, { jar });
  assert.equal(fragmentOf(frag.location).get('state'), state);
  assert.equal(fragmentOf(frag.location).getAll('access_token').length, 1);
});

// ----------------------------------------------------------------------------------- D.147

test('D.147 a client cannot click consent for the user: the page cannot be framed, its form needs the browser cookie (SameSite=Lax) and the CSRF token of that page', async () => {
  const fresh = await newApp(w);
  const page = await authzGet({ response_type: 'code', client_id: fresh.client_id, redirect_uri: CB, state: 'i' }, { jar });
  assert.equal(page.status, 200, page.text);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  const fields = formFields(page.text);
  assert.ok(fields.interaction && fields.csrf_token);
  // A cross-site auto-submit carries no SameSite=Lax cookie: refused, no code.
  const noCookie = await postForm(w, '/services/oauth2/authorize', { ...fields, approve: '1' });
  assert.equal(noCookie.status, 400, noCookie.text);
  assert.equal(noCookie.location, null);
  // Nor does a made-up or another page's token.
  const forged = await postForm(w, '/services/oauth2/authorize', { ...fields, csrf_token: 'A'.repeat(43), approve: '1' }, { jar });
  assert.equal(forged.status, 400);
  assert.equal(forged.location, null);
  // The browser cookie the CSRF token is bound to is SameSite=Lax and HttpOnly.
  const lp = await authzGet({ response_type: 'code', client_id: fresh.client_id, redirect_uri: CB });
  const bid = lp.setCookies.map(cookieAttrs).find((c) => c.name.endsWith('eo_bid'));
  assert.ok(bid, `no browser cookie: ${lp.setCookies}`);
  assert.equal(bid.attrs.get('samesite'), 'Lax');
  assert.equal(bid.attrs.get('httponly'), true);
  // The real browser with its own token approves.
  const ok = await postForm(w, '/services/oauth2/authorize', { ...fields, approve: '1' }, { jar });
  assert.equal(ok.status, 303, ok.text);
  assert.ok(queryOf(ok.location).get('code'));
});

// ----------------------------------------------------------------------------------- D.148

test('D.148 junk is rejected before storage or crypto: random tokens, oversized bodies and parameters touch neither D1 nor a shard', async () => {
  const org = (await w.admin('GET', '/admin/settings')).json.org_id;
  for (const bogus of [`${org}!${'x'.repeat(71)}`, 'garbage', 'a'.repeat(4000)]) {
    const r = await userinfo(w, bogus);
    assert.equal(r.status, 401);
    assert.match(trips(r), /d1=0; do=0$/, `userinfo ${bogus.slice(0, 20)}: ${trips(r)}`);
  }
  const big = await call(w, '/services/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&x=${'a'.repeat(70000)}` });
  assert.equal(big.status, 413);
  assert.equal(trips(big), 'kv=0; d1=0; do=0', 'refused before reading');
  const longParam = await token(w, { grant_type: 'client_credentials', client_id: 'c'.repeat(9000) });
  assert.equal(longParam.status, 400, longParam.text);
  assert.equal(trips(longParam), 'kv=0; d1=0; do=0');
  const badType = await call(w, '/services/oauth2/token', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'grant_type=client_credentials' });
  assert.equal(badType.status, 400);
  assert.equal(trips(badType), 'kv=0; d1=0; do=0');
});

// ----------------------------------------------------------------------------------- D.149

test('D.149 the ID token is bound to its client (aud, azp) and to the request (nonce); another client cannot pass it off', async () => {
  const nonce = `n-${uniq()}`;
  const t = await tokensFor(w, jar, app, { nonce, scope: 'openid api' });
  const { payload, protectedHeader } = await jose.jwtVerify(t.id_token, jwks, { issuer: ISSUER, audience: app.client_id });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.nonce, nonce);
  assert.equal(payload.azp, app.client_id);
  assert.equal(payload.at_hash, halfHash(t.access_token));
  const other = await newApp(w);
  await assert.rejects(jose.jwtVerify(t.id_token, jwks, { issuer: ISSUER, audience: other.client_id }), /aud/);
  // The ID token is no access token anywhere.
  assert.equal((await userinfo(w, t.id_token)).status, 401);
  assert.deepEqual((await introspect(w, app, t.id_token)).json, { active: false });
});

// ----------------------------------------------------------------------------------- D.150

test('D.150 user-agent flow: tokens only in the fragment, never the query; scope as asked; short lifetime as the app sets it', async () => {
  const ua = await newApp(w, { access_token_ttl_s: 300 });
  const first = await codeFor(w, jar, ua, { scope: 'api' }, user); // approve the app once
  assert.ok(first.code);
  const r = await authzGet({ response_type: 'token', client_id: ua.client_id, redirect_uri: CB, scope: 'api', state: 't' }, { jar });
  assert.equal(r.status, 302, r.text);
  assert.equal(queryOf(r.location).get('access_token'), null);
  assert.equal(r.location.split('#')[0].includes('access_token'), false, 'nothing before the fragment');
  const f = fragmentOf(r.location);
  assert.ok(f.get('access_token'));
  assert.equal(f.get('scope'), 'api');
  assert.equal(f.get('expires_in'), '300');
  assert.equal(f.get('refresh_token'), null);
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  const q = await authzGet({ response_type: 'token', response_mode: 'query', client_id: ua.client_id, redirect_uri: CB, state: 'u' }, { jar });
  assert.equal(queryOf(q.location).get('access_token'), null);
  assert.equal(fragmentOf(q.location).get('error'), 'invalid_request', q.location);
  assert.equal(fragmentOf(q.location).get('access_token'), null);
});

// ----------------------------------------------------------------------------------- D.152

test('D.152 client credentials: confidential clients only; a rotated secret stops at once; a deleted app\'s tokens and credentials end', async () => {
  const { app: m2m } = await ccApp(w, { secret_required_web_server: false });
  // No public use: the secret is needed even though the app's code flow may omit it.
  assertOAuthError(await token(w, { grant_type: 'client_credentials', client_id: m2m.client_id }), 401, 'invalid_client', 'no secret');
  const before = await ccToken(w, m2m, { scope: 'api' });
  const rot = await w.admin('POST', `/admin/apps/${m2m.client_id}/secret`);
  assert.equal(rot.status, 200, rot.text);
  assertOAuthError(await token(w, { grant_type: 'client_credentials' }, { headers: basic(m2m.client_id, m2m.client_secret) }), 401, 'invalid_client', 'old secret');
  const after = await ccToken(w, { ...m2m, client_secret: rot.json.client_secret }, { scope: 'api' });
  assert.ok(after.access_token);
  const del = await w.admin('DELETE', `/admin/apps/${m2m.client_id}`);
  assert.equal(del.status, 200, del.text);
  for (const at of [before.access_token, after.access_token]) assert.equal((await userinfo(w, at)).status, 401, 'a deleted app\'s tokens end');
  const gone = await token(w, { grant_type: 'client_credentials' }, { headers: basic(m2m.client_id, rot.json.client_secret) });
  assert.equal(gone.json.error, 'invalid_client_id', gone.text);
});

// ----------------------------------------------------------------------------------- D.153

test('D.153 refresh tokens: issued only with refresh_token/offline_access and a policy that allows it, bound to the client, revocable', async () => {
  const noScope = await tokensFor(w, jar, app, { scope: 'api openid' });
  assert.equal(noScope.refresh_token, undefined, 'no refresh_token scope, no refresh token');
  const zero = await newApp(w, { refresh_token_policy: 'zero' });
  const z = await tokensFor(w, jar, zero, { scope: 'api refresh_token' }, user);
  assert.equal(z.refresh_token, undefined, 'policy zero, no refresh token');
  const t = await tokensFor(w, jar, app, { scope: 'api refresh_token' });
  assert.ok(t.refresh_token);
  const other = await newApp(w);
  assertOAuthError(await refresh(w, other, t.refresh_token), 400, 'invalid_grant', 'another client');
  assertOAuthError(await refresh(w, app, t.refresh_token, { client_secret: 'wrong' }), 401, 'invalid_client', 'wrong secret');
  assert.equal((await refresh(w, app, t.refresh_token)).status, 200);
  assert.equal((await revoke(w, t.refresh_token)).status, 200);
  assertOAuthError(await refresh(w, app, t.refresh_token), 400, 'invalid_grant', 'revoked');
});

// ----------------------------------------------------------------------------------- D.154

test('D.154 JWT access tokens are signed (RFC 9068: at+jwt, JWKS-verifiable), scoped, short-lived per the app, bound to client and audience; a forged one is refused', async () => {
  const jwtApp = await newApp(w, { jwt_access_tokens: true, access_token_ttl_s: 600 });
  const t = await tokensFor(w, jar, jwtApp, { scope: 'api' }, user);
  const { payload, protectedHeader } = await jose.jwtVerify(t.access_token, jwks, { issuer: ISSUER, typ: 'at+jwt' });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(payload.client_id, jwtApp.client_id);
  assert.equal(payload.aud, ISSUER);
  assert.equal(payload.scope, 'api');
  assert.equal(payload.exp - payload.iat, 600);
  assert.ok(payload.jti);
  assert.equal((await userinfo(w, t.access_token)).status, 200);
  // Payload changed (wider scope), signature kept: refused.
  const [h, , s] = t.access_token.split('.');
  const widened = `${h}.${Buffer.from(JSON.stringify({ ...payload, scope: 'api full', scp: ['api', 'full'] })).toString('base64url')}.${s}`;
  assert.equal((await userinfo(w, widened)).status, 401);
  // alg none.
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;
  assert.equal((await userinfo(w, none)).status, 401);
  assert.deepEqual((await introspect(w, jwtApp, widened)).json, { active: false });
});

// ----------------------------------------------------------------------------------- D.155

test('D.155 no password, secret, code or token appears in error bodies, the audit trail or the worker\'s log', async () => {
  const u = await newUser(w, 'd155');
  const a = await newApp(w);
  const pj = new CookieJar();
  // A failed login that typed the password into the username field (a common slip).
  const slip = await codeFor(w, pj, a, {}, { username: u.password + 'X', password: u.password });
  assert.equal(slip.status, 401);
  const got = await codeFor(w, pj, a, {}, u);
  assert.ok(got.code);
  const t = await exchange(w, a, got.code);
  assert.equal(t.status, 200, t.text);
  const secrets = [u.password, a.client_secret, got.code, t.json.access_token, t.json.refresh_token, t.json.id_token];
  // Errors that could echo what was sent.
  const errors = [
    await exchange(w, a, got.code), // replay: the code itself
    await token(w, { grant_type: 'client_credentials', client_id: a.client_id, client_secret: t.json.refresh_token }),
    await refresh(w, a, `${t.json.refresh_token}x`),
    await token(w, { grant_type: 'password', username: u.username, password: u.password, client_id: a.client_id, client_secret: a.client_secret }),
    await userinfo(w, `${t.json.access_token}x`),
  ];
  for (const e of errors) {
    assert.ok(e.status >= 400);
    for (const s of secrets) assert.ok(!e.text.includes(s) && !e.text.includes(s.slice(0, 24)), `an error body echoes a secret: ${e.text.slice(0, 200)}`);
    for (const [, v] of e.headers) for (const s of secrets) assert.ok(!v.includes(s), 'a header echoes a secret');
  }
  await new Promise((r) => setTimeout(r, 500)); // audit rows are written after the response
  const audit = await w.admin('GET', '/admin/audit?limit=200');
  assert.equal(audit.status, 200, audit.text);
  assert.ok(audit.json.events.length > 5);
  const auditText = JSON.stringify(audit.json);
  const out = w.output();
  for (const s of [...secrets, u.password + 'X']) {
    assert.ok(!auditText.includes(s), `audit trail holds ${s.slice(0, 6)}…`);
    assert.ok(!out.includes(s), `worker output holds ${s.slice(0, 6)}…`);
  }
});

// ----------------------------------------------------------------------------------- D.156

test('D.156 the issuer is fixed: discovery, ID tokens and authorization responses name the pinned ISSUER whatever the request\'s host or forwarding headers say', async () => {
  for (const headers of [{}, { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' }, { forwarded: 'host=evil.example;proto=http' }]) {
    const d = await call(w, '/.well-known/openid-configuration', { headers });
    assert.equal(d.json.issuer, ISSUER, JSON.stringify(headers));
    assert.ok(d.json.token_endpoint.startsWith(`${ISSUER}/`));
  }
  assert.notEqual(new URL(w.baseUrl).origin, ISSUER, 'served on another origin than the issuer');
  const r = await authzGet({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'i' }, { jar, headers: { 'x-forwarded-host': 'evil.example' } });
  assert.equal(queryOf(r.location).get('iss'), ISSUER);
  const t = await exchange(w, app, queryOf(r.location).get('code'));
  assert.equal(t.json.instance_url, ISSUER);
  assert.ok(t.json.id.startsWith(`${ISSUER}/id/`));
  const info = await introspect(w, app, t.json.access_token);
  assert.equal(info.json.iss, ISSUER);
});

// ----------------------------------------------------------------------------------- F.187

test('F.187 KV holds only short-lived payloads whose use is decided elsewhere, under hashed keys: no refresh-token state, used flags or revocation lists', () => {
  const dir = join(w.stateDir, 'v3', 'kv', 'miniflare-KVNamespaceObject');
  const file = readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  const keys = JSON.parse(execFileSync('sqlite3', ['-readonly', '-json', join(dir, file), 'SELECT key FROM _mf_entries'], { encoding: 'utf8' }) || '[]').map((r) => r.key);
  assert.ok(keys.length > 10, `only ${keys.length} KV keys after this file's flows`);
  const allowed = /^(code|session|at|interaction):[0-9a-f]{64}$/;
  const other = keys.filter((k) => !allowed.test(k));
  assert.deepEqual(other, [], 'KV keys outside code:/session:/at:/interaction: + SHA-256 hex');
  // Every kind of single-use or revocable state the flows above produced lives in the shards.
  const count = (sql) => shardRows(w.stateDir, sql).reduce((n, r) => n + r.n, 0);
  assert.ok(count('select count(*) as n from code_redemptions') > 0, 'code redemptions in the shards');
  assert.ok(count("select count(*) as n from tokens where kind = 'refresh'") > 0, 'refresh tokens in the shards');
});
