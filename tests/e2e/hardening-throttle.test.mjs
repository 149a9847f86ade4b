// Item 6.2: throttling keyed so that one attacker cannot lock out a client or a user. Client
// authentication: only failed authentications count, per client_id and caller IP (600 per
// minute). Password logins: every attempt counts, per username and caller IP (10 per minute),
// plus 100 per minute per caller IP across usernames; loopback is not exempt. The caller IP is
// `CF-Connecting-IP`, which wrangler dev passes through. The local rate-limit bindings count in
// wall-clock minutes, so each scenario runs inside one (see inOneRateWindow in harness.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker, inOneRateWindow } from './harness.mjs';
import { authorize, tokenRequest, pkcePair, CookieJar, formFields } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'correct horse battery';
let w;
/** The app under test; each client-authentication test gets its own (the count is per client). */
let app;
let seq = 0;

async function newApp() {
  const r = await w.admin('POST', '/admin/apps', { name: `throttled app ${++seq}`, callback_urls: [CB], scopes: ['api', 'refresh_token'] });
  assert.equal(r.status, 201, r.text);
  app = r.json;
}

before(async () => {
  w = await startTestWorker();
  await newApp();
});

after(() => {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
    w.stop();
  }
});

async function newUser() {
  const username = `throttle-user-${++seq}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Throttle User ${seq}` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

const goodCreds = () => ({ client_id: app.client_id, client_secret: app.client_secret });
const badCreds = () => ({ client_id: app.client_id, client_secret: 'not-the-secret' });

async function post(path, fields, ip) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (ip) headers['cf-connecting-ip'] = ip;
  const r = await fetch(w.baseUrl + path, { method: 'POST', headers, body: new URLSearchParams(fields) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, text, json, headers: r.headers };
}

const introspectAs = (ip, fields) => post('/services/oauth2/introspect', fields, ip);
const tokenAs = (ip, fields) => post('/services/oauth2/token', fields, ip);

/** A code (with PKCE) for a fresh user, logged in without a CF-Connecting-IP header. */
async function freshCode() {
  const user = await newUser();
  const { verifier, challenge } = pkcePair();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge }, { username: user.username, password: user.password });
  assert.ok(a.code, `${a.status} ${a.body ?? a.location}`);
  return { code: a.code, verifier };
}

async function freshTokens() {
  const { code, verifier } = await freshCode();
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: CB, ...goodCreds() });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

function assertRateLimited(r, what) {
  assert.equal(r.status, 429, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error, 'rate_limit_exceeded', what);
  assert.ok(r.headers.get('retry-after'), `${what}: Retry-After`);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, what);
}

// ------------------------------------------------------------------ client authentication

test('6.2 failed client authentications are throttled per client_id and IP; the real client elsewhere, and valid calls from the flooding IP, still work', async () => {
  await inOneRateWindow(30000, async () => {
    await newApp();
    const tokens = await freshTokens();
    const pending = await freshCode();
    const flood = '203.0.113.10';
    const statuses = [];
    let limited;
    for (let i = 0; i < 620 && !limited; i++) {
      const r = await introspectAs(flood, { token: 'junk', ...badCreds() });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
      else {
        assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
        assert.equal(r.json.error, 'invalid_client');
      }
    }
    assert.ok(limited, 'no 429 within 620 failed authentications (limit: 600 per minute)');
    assert.ok(statuses.length > 500, `throttled after only ${statuses.length - 1} failures`);
    assertRateLimited(limited, 'flooding IP');
    // The token endpoint shares the count: the flooding IP's wrong secret stays throttled there.
    assertRateLimited(await tokenAs(flood, { grant_type: 'refresh_token', refresh_token: 'junk', ...badCreds() }), 'flooding IP at /token');

    // The real client, from its own IP, is not locked out.
    const real = '198.51.100.20';
    const info = await introspectAs(real, { token: tokens.access_token, ...goodCreds() });
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.active, true);
    const exchanged = await tokenAs(real, { grant_type: 'authorization_code', code: pending.code, code_verifier: pending.verifier, redirect_uri: CB, ...goodCreds() });
    assert.equal(exchanged.status, 200, exchanged.text);
    const refreshed = await tokenAs(real, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...goodCreds() });
    assert.equal(refreshed.status, 200, refreshed.text);
    // A wrong secret from another IP is an ordinary 401 (that IP has its own count).
    const otherWrong = await introspectAs(real, { token: 'junk', ...badCreds() });
    assert.equal(otherWrong.status, 401, otherWrong.text);
    assert.equal(otherWrong.json.error, 'invalid_client');
    // Valid credentials never count and are never refused, even from the flooding IP.
    const fromFlood = await introspectAs(flood, { token: tokens.access_token, ...goodCreds() });
    assert.equal(fromFlood.status, 200, fromFlood.text);
    assert.equal(fromFlood.json.active, true);
  });
});

test('6.2 a client making more than 600 successful authenticated calls a minute is never throttled', async () => {
  await inOneRateWindow(25000, async () => {
    await newApp();
    const tokens = await freshTokens();
    const ip = '192.0.2.44';
    const statuses = [];
    for (let i = 0; i < 650; i += 25) {
      const batch = await Promise.all(Array.from({ length: 25 }, () => introspectAs(ip, { token: tokens.access_token, ...goodCreds() })));
      for (const r of batch) statuses.push(r.status === 200 && r.json.active === true ? 200 : `${r.status} ${r.text}`);
    }
    assert.equal(statuses.length, 650);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every authenticated call succeeded');
    // And at the token endpoint too.
    const r = await tokenAs(ip, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...goodCreds() });
    assert.equal(r.status, 200, r.text);
  });
});

// ------------------------------------------------------------------------- password logins

async function loginPage(jar, ip) {
  const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB });
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize?${q}`, { headers: { cookie: jar.header(), 'cf-connecting-ip': ip } });
  jar.store(r);
  const html = await r.text();
  assert.equal(r.status, 200, html);
  return formFields(html);
}

async function login(jar, fields, username, password, ip) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': ip },
    body: new URLSearchParams({ ...fields, username, password, login: '1' }),
  });
  return { status: r.status, body: await r.text(), cookies: r.headers.getSetCookie(), location: r.headers.get('location') };
}

const hasSession = (cookies) => cookies.some((c) => /^(__Host-)?eo_sid=/.test(c));

function assertLoggedIn(r, what) {
  assert.ok(r.status !== 401 && r.status !== 429, `${what}: ${r.status} ${r.body.slice(0, 300)}`);
  assert.ok((r.status === 200 && /name="approve"/.test(r.body)) || (r.status >= 300 && r.status < 400), `${what}: consent page or redirect, got ${r.status}`);
  assert.ok(hasSession(r.cookies), `${what}: session cookie set`);
}

/** Ten wrong passwords for a user from `ip`, then the right one: throttled. */
async function exhaustUserAtIp(user, ip) {
  const jar = new CookieJar();
  const fields = await loginPage(jar, ip);
  for (let i = 0; i < 10; i++) {
    // Mixed case: usernames are case-insensitive, and so is the throttle key.
    const r = await login(jar, fields, i % 2 ? user.username.toUpperCase() : user.username, `guess-${i}`, ip);
    assert.equal(r.status, 401, `attempt ${i + 1}: ${r.body.slice(0, 200)}`);
    assert.match(r.body, /Wrong username or password/);
  }
  const r = await login(jar, fields, user.username, user.password, ip);
  assert.equal(r.status, 429, `11th attempt: ${r.status}`);
  assert.match(r.body, /Too many attempts/);
  assert.ok(!hasSession(r.cookies), 'no session while throttled');
}

test('6.2 ten wrong passwords for a user from one IP throttle that user at that IP only; the user elsewhere logs in', async () => {
  await inOneRateWindow(15000, async () => {
    const victim = await newUser();
    await exhaustUserAtIp(victim, '203.0.113.20');
    const jar = new CookieJar();
    const fields = await loginPage(jar, '198.51.100.30');
    assertLoggedIn(await login(jar, fields, victim.username, victim.password, '198.51.100.30'), 'the victim from another IP');
  });
});

test('6.2 successful logins count too: the 11th login for one user from one IP in a minute is throttled', async () => {
  await inOneRateWindow(15000, async () => {
    const user = await newUser();
    const ip = '192.0.2.61';
    for (let i = 0; i < 10; i++) {
      const jar = new CookieJar();
      const fields = await loginPage(jar, ip);
      assertLoggedIn(await login(jar, fields, user.username, user.password, ip), `login ${i + 1}`);
    }
    const jar = new CookieJar();
    const fields = await loginPage(jar, ip);
    const r = await login(jar, fields, user.username, user.password, ip);
    assert.equal(r.status, 429, `11th login: ${r.status}`);
    assert.ok(!hasSession(r.cookies));
  });
});

test('6.2 one IP guessing across usernames is throttled at 100 attempts a minute; other IPs are not', async () => {
  await inOneRateWindow(30000, async (attempt) => {
    const ip = '203.0.113.21';
    const jar = new CookieJar();
    const fields = await loginPage(jar, ip);
    const statuses = [];
    for (let i = 0; i < 100; i++) statuses.push((await login(jar, fields, `nobody-${attempt}-${i}@example.com`, 'x', ip)).status);
    assert.deepEqual(statuses.filter((s) => s !== 401), [], `the first 100 attempts are ordinary failures: ${statuses}`);
    const r = await login(jar, fields, `nobody-${attempt}-100@example.com`, 'x', ip);
    assert.equal(r.status, 429, `101st attempt: ${r.status}`);
    assert.match(r.body, /Too many attempts/);
    const elsewhere = await login(jar, fields, `nobody-${attempt}-101@example.com`, 'x', '198.51.100.31');
    assert.equal(elsewhere.status, 401, 'another IP is not throttled');
    assert.match(elsewhere.body, /Wrong username or password/);
  });
});

test('6.2 loopback is not exempt: CF-Connecting-IP 127.0.0.1 is throttled like any other IP', async () => {
  await inOneRateWindow(15000, async () => {
    const user = await newUser();
    await exhaustUserAtIp(user, '127.0.0.1');
    const jar = new CookieJar();
    const fields = await loginPage(jar, '198.51.100.33');
    assertLoggedIn(await login(jar, fields, user.username, user.password, '198.51.100.33'), 'the user from another IP');
  });
});
