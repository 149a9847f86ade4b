// Race tests (checklist §F items 181, 182, 185, 186, 189; top checks T2, T6, T21): 50 parallel
// requests spending one single-use credential, against the real worker (workerd under wrangler
// dev; run with SHARDS=1 and SHARDS=4). Exactly one request may win; every loser gets the error
// docs/endpoints.md (and docs/gateway.md for registration) names for a spent credential:
//   - one authorization code → one 200, 49 × invalid_grant / `expired authorization code`, and
//     the replays revoke what the winner got (RFC 6749 §4.1.2);
//   - one approved device code → one 200, the rest slow_down or invalid_grant (the device
//     section's table: too soon after the previous poll, or the code was used), never tokens;
//   - one rotating refresh token → one 200, 49 × invalid_grant / `expired access/refresh token`,
//     and, because the losers present a rotated-out token, the whole family is revoked;
//   - one JWT bearer assertion `jti` → one 200, 49 × invalid_grant / `the assertion's jti was
//     used before`;
//   - one initial access token with max_uses 1 → one 201, 49 × 401 invalid_token with
//     `WWW-Authenticate: Bearer error="invalid_token"`, and exactly one new client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { startTestWorker } from '../e2e/harness.mjs';
import { CookieJar, authorize, formFields, pkcePair, tokenRequest } from '../e2e/flow.mjs';

const N = 50;
const CB = 'http://127.0.0.1:9/cb';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

let w;

before(async () => {
  w = await startTestWorker();
});

after(async () => {
  if (!w) return;
  assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
  await w.stop();
});

// --- Fixtures ---------------------------------------------------------------------------------

async function newApp(fields = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `race app ${randomUUID().slice(0, 8)}`,
    callback_urls: [CB],
    scopes: ['api', 'refresh_token', 'openid'],
    ...fields,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser() {
  const username = `racer-${randomUUID().slice(0, 8)}@example.com`;
  const password = `race password ${randomUUID()}`;
  const r = await w.admin('POST', '/admin/users', { username, password, email: username, name: 'Race User' });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password };
}

const creds = (app) => ({ client_id: app.client_id, client_secret: app.client_secret });

/** Runs `request` N times at once. */
const race = (request) => Promise.all(Array.from({ length: N }, () => request()));

const statuses = (results) => results.map((r) => `${r.status}${r.json?.error ? ` ${r.json.error}` : ''}`).join(', ');

/** Splits `results` into the one winner (asserted to be exactly one) and the losers. */
function oneWinner(results, status = 200) {
  const won = results.filter((r) => r.status === status);
  assert.equal(won.length, 1, `exactly one of ${N} parallel requests wins; got: ${statuses(results)}`);
  const lost = results.filter((r) => r.status !== status);
  assert.equal(lost.length, N - 1);
  return { winner: won[0], losers: lost };
}

function assertOAuthError(r, status, errors, description) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json, `a JSON error body: ${r.text}`);
  assert.ok([errors].flat().includes(r.json.error), r.text);
  if (description !== undefined) assert.equal(r.json.error_description, description, r.text);
  for (const k of ['access_token', 'refresh_token', 'id_token']) assert.equal(r.json[k], undefined, `a loser gets no ${k}: ${r.text}`);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
}

async function userinfo(accessToken) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

async function introspect(app, token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...creds(app) }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

const refresh = (app, refreshToken) => tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, ...creds(app) });

/** A code for `app` and `user` through the login and consent pages, and its PKCE verifier. */
async function codeFor(app, user) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'api refresh_token', state: 's1', code_challenge: challenge },
    { username: user.username, password: user.password },
  );
  assert.ok(a.code, `a code: ${a.location ?? a.body}`);
  return { code: a.code, verifier };
}

const exchange = (app, code, verifier) =>
  tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, ...creds(app) });

// --- The races -------------------------------------------------------------------------------

test('race: one authorization code redeemed 50 times at once → one 200, 49 invalid_grant, the winner revoked (T2, 95, 135, 181, 186)', async () => {
  const app = await newApp();
  const user = await newUser();
  const { code, verifier } = await codeFor(app, user);

  const { winner, losers } = oneWinner(await race(() => exchange(app, code, verifier)));
  for (const r of losers) assertOAuthError(r, 400, 'invalid_grant', 'expired authorization code');
  assert.ok(winner.json.access_token && winner.json.refresh_token, winner.text);

  // The replays revoked every token the redemption issued (docs/endpoints.md, authorization_code).
  const u = await userinfo(winner.json.access_token);
  assert.equal(u.status, 401, u.text);
  assert.deepEqual(await introspect(app, winner.json.access_token), { active: false });
  assertOAuthError(await refresh(app, winner.json.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  // And the code stays spent.
  assertOAuthError(await exchange(app, code, verifier), 400, 'invalid_grant', 'expired authorization code');
});

test('race: one approved device code polled 50 times at once → one 200 with tokens, the rest slow_down or invalid_grant (T21, 165)', async () => {
  const app = await newApp({ scopes: ['api', 'refresh_token'] });
  const user = await newUser();
  const start = await tokenRequest(w.baseUrl, { response_type: 'device_code', client_id: app.client_id, scope: 'api refresh_token' });
  assert.equal(start.status, 200, start.text);
  const d = start.json;
  // No poll before the approval, so the first poll after it is not "too soon".
  await approveDevice(d.user_code, user);

  const poll = () => tokenRequest(w.baseUrl, { grant_type: 'device', client_id: app.client_id, code: d.device_code });
  const { winner, losers } = oneWinner(await race(poll));
  assert.ok(winner.json.access_token && winner.json.refresh_token, winner.text);
  assert.equal((await userinfo(winner.json.access_token)).json?.preferred_username, user.username);
  // docs/endpoints.md, device flow polls: `slow_down` (sooner than the interval after the
  // previous poll) or `invalid_grant` (the code was used); nothing else, and never tokens.
  for (const r of losers) assertOAuthError(r, 400, ['slow_down', 'invalid_grant']);
  // The code stays spent (after the grown interval, so the answer is not slow_down).
  await new Promise((r) => setTimeout(r, 5500));
  const later = await poll();
  assertOAuthError(later, 400, 'invalid_grant');
  // The winner's tokens were not disturbed by the losers.
  assert.equal((await userinfo(winner.json.access_token)).status, 200);
});

test('race: one rotating refresh token used 50 times at once → one 200, 49 invalid_grant, then the family is revoked (T6, 106, 182, 185)', async () => {
  const app = await newApp({ rotate_refresh_tokens: true });
  const user = await newUser();
  const { code, verifier } = await codeFor(app, user);
  const first = await exchange(app, code, verifier);
  assert.equal(first.status, 200, first.text);
  const t0 = first.json;

  const { winner, losers } = oneWinner(await race(() => refresh(app, t0.refresh_token)));
  for (const r of losers) assertOAuthError(r, 400, 'invalid_grant', 'expired access/refresh token');
  assert.ok(winner.json.refresh_token, 'rotation issues a new refresh token');
  assert.notEqual(winner.json.refresh_token, t0.refresh_token);

  // docs/endpoints.md (refresh_token, refresh_reuse_grace_s 0 by default): presenting a retired
  // token again revokes the whole family — the losers did, so every token of it is dead,
  // including the winner's fresh pair.
  assertOAuthError(await refresh(app, winner.json.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  for (const at of [t0.access_token, winner.json.access_token]) {
    const u = await userinfo(at);
    assert.equal(u.status, 401, `a revoked family's access token: ${u.text}`);
    assert.deepEqual(await introspect(app, at), { active: false });
  }
  assert.deepEqual(await introspect(app, winner.json.refresh_token), { active: false });
});

test("race: one JWT bearer assertion (one jti) presented 50 times at once → one 200, 49 invalid_grant (T12, 159, 181)", async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
  const app = await newApp({ scopes: ['api'], certificate: await jose.exportSPKI(publicKey) });
  const user = await newUser();
  const pre = await w.admin('POST', `/admin/apps/${app.client_id}/users/${user.user_id}`);
  assert.equal(pre.status, 200, pre.text);

  const now = Math.floor(Date.now() / 1000);
  const assertion = await new jose.SignJWT({ iss: app.client_id, sub: user.username, aud: w.baseUrl, exp: now + 300, iat: now, jti: randomUUID() })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .sign(privateKey);
  const bearer = () => tokenRequest(w.baseUrl, { grant_type: JWT_BEARER, assertion });

  const { winner, losers } = oneWinner(await race(bearer));
  for (const r of losers) assertOAuthError(r, 400, 'invalid_grant', "the assertion's jti was used before");
  assert.ok(winner.json.access_token, winner.text);
  assert.equal(winner.json.refresh_token, undefined, 'the JWT bearer grant issues no refresh token');
  const u = await userinfo(winner.json.access_token);
  assert.equal(u.status, 200, u.text);
  assert.equal(u.json.preferred_username, user.username);
  assertOAuthError(await bearer(), 400, 'invalid_grant', "the assertion's jti was used before");
});

test('race: one single-use initial access token raced by 50 registrations → one 201, 49 × 401 invalid_token (171, RFC 7591 §3)', async () => {
  const minted = await w.admin('POST', '/admin/registration-tokens', { max_uses: 1 });
  assert.equal(minted.status, 201, minted.text);
  const token = minted.json.token;
  const appsBefore = await listApps();

  const register = async (i) => {
    const r = await fetch(`${w.baseUrl}/services/oauth2/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ redirect_uris: [CB], client_name: `race registration ${i}` }),
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, headers: r.headers };
  };
  const results = await Promise.all(Array.from({ length: N }, (_, i) => register(i)));
  const { winner, losers } = oneWinner(results, 201);
  assert.ok(winner.json.client_id && winner.json.client_secret && winner.json.registration_access_token, winner.text);
  for (const r of losers) {
    // docs/endpoints.md, dynamic client registration: a used-up token is 401 invalid_token with
    // `WWW-Authenticate: Bearer error="invalid_token"`.
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json?.error, 'invalid_token', r.text);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="invalid_token"/);
    assert.equal(r.json.client_id, undefined);
  }
  // Exactly one client was stored: the winner's.
  const appsAfter = await listApps();
  const added = appsAfter.filter((a) => !appsBefore.some((b) => b.client_id === a.client_id)).map((a) => a.client_id);
  assert.deepEqual(added, [winner.json.client_id]);
  assert.equal((await register('late')).status, 401, 'the token stays used up');
});

async function listApps() {
  const r = await w.admin('GET', '/admin/apps');
  assert.equal(r.status, 200, r.text);
  return r.json.apps;
}

// --- The person approving a device, over plain HTTP ---------------------------------------------

let lastIp = 0;

/**
 * Types `userCode` on /setup/connect, logs in as `user` and allows, following redirects (the
 * pages are the authorization endpoint's) until the "Device connected" page.
 */
async function approveDevice(userCode, user) {
  const jar = new CookieJar();
  // Code entries are throttled per address: this person gets one of their own.
  const ip = `198.51.100.${200 + (++lastIp % 50)}`;
  const send = async (url, init = {}) => {
    const r = await fetch(new URL(url, w.baseUrl), {
      ...init,
      headers: { cookie: jar.header(), 'cf-connecting-ip': ip, ...(init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      redirect: 'manual',
    });
    jar.store(r);
    return r;
  };
  let r = await send('/setup/connect');
  const entry = formFields(await r.text());
  r = await send('/setup/connect', { method: 'POST', body: new URLSearchParams({ ...entry, user_code: userCode, continue: '1' }) });
  for (let step = 0; step < 6; step++) {
    if (r.status >= 300 && r.status < 400) {
      r = await send(r.headers.get('location'));
      continue;
    }
    const html = await r.text();
    if (/Device connected/.test(html)) return;
    if (html.includes('name="password"')) {
      r = await send('/services/oauth2/authorize', { method: 'POST', body: new URLSearchParams({ ...formFields(html), username: user.username, password: user.password, login: '1' }) });
    } else if (html.includes('name="approve"')) {
      r = await send('/services/oauth2/authorize', { method: 'POST', body: new URLSearchParams({ ...formFields(html), approve: '1' }) });
    } else {
      assert.fail(`unexpected page while approving the device (${r.status}): ${html.slice(0, 500)}`);
    }
  }
  assert.fail('the device approval did not end on the "Device connected" page');
}
