// Throttling through the real Workers rate-limit bindings (wrangler.toml [[ratelimits]]):
// login attempts per username and client IP (10 per 60 s) and per client IP across usernames
// (100 per 60 s); failed client authentications per client_id and client IP (600 per 60 s).
// Password guessing is refused before any hashing. hardening-throttle.test.mjs (item 6.2) pins
// the keying in more detail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker, inOneRateWindow } from './harness.mjs';
import { CookieJar, formFields } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
let w;
let app;

before(async () => {
  w = await startTestWorker();
  app = (await w.admin('POST', '/admin/apps', { name: 'T', callback_urls: [CB], scopes: ['api'] })).json;
});
after(() => w?.stop());

async function loginPage(jar) {
  const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB });
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize?${q}`, { headers: { cookie: jar.header() } });
  jar.store(r);
  return formFields(await r.text());
}

async function login(jar, fields, username, password, headers = {}) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ ...fields, username, password, login: '1' }),
  });
  return { status: r.status, body: await r.text(), cookies: r.headers.getSetCookie() };
}

test('the 11th login attempt for one username in a minute is refused, even with the right password', async () => {
  const user = { username: 'victim@example.com', password: 'the right password' };
  assert.equal((await w.admin('POST', '/admin/users', { ...user, email: user.username, name: 'V' })).status, 201);
  const jar = new CookieJar();
  const fields = await loginPage(jar);
  for (let i = 0; i < 10; i++) {
    // Mixed case: the throttle key is the username case-insensitively.
    const r = await login(jar, fields, i % 2 ? 'VICTIM@example.com' : user.username, `guess-${i}`);
    assert.equal(r.status, 401, `attempt ${i + 1}`);
    assert.match(r.body, /Wrong username or password/);
  }
  const r = await login(jar, fields, user.username, user.password);
  assert.equal(r.status, 429);
  assert.match(r.body, /Too many attempts/);
  assert.ok(!r.cookies.some((c) => c.startsWith('eo_sid=')), 'no session while throttled');
  // Another user is not affected.
  await w.admin('POST', '/admin/users', { username: 'other@example.com', password: 'other password', email: 'o@example.com', name: 'O' });
  const ok = await login(jar, fields, 'other@example.com', 'other password');
  assert.equal(ok.status, 200, ok.body);
  assert.match(ok.body, /name="approve"/, 'logged in: the consent page is next');
});

test('one client IP guessing across many usernames is throttled too (100 attempts a minute per IP)', async () => {
  // Updated for the per-IP rule of 100 attempts a minute across usernames (it was 10).
  await inOneRateWindow(30000, async (attempt) => {
    const jar = new CookieJar();
    const fields = await loginPage(jar);
    const ip = { 'cf-connecting-ip': '203.0.113.7' };
    const statuses = [];
    for (let i = 0; i < 101; i++) statuses.push((await login(jar, fields, `nobody-${attempt}-${i}@example.com`, 'x', ip)).status);
    assert.deepEqual(statuses.slice(0, 100), Array(100).fill(401));
    assert.equal(statuses[100], 429);
    const elsewhere = await login(jar, fields, `nobody-${attempt}-999@example.com`, 'x', { 'cf-connecting-ip': '198.51.100.1' });
    assert.equal(elsewhere.status, 401, 'another IP is not throttled');
  });
});

test('a client failing authentication at the token endpoint gets 429 rate_limit_exceeded with Retry-After, in RFC 6749 JSON', async () => {
  // Updated: only failed client authentications count (per client_id and client IP), so the
  // flood uses a wrong secret; calls with the right secret are never throttled.
  const send = (secret) => fetch(`${w.baseUrl}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': '203.0.113.8' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'nope', client_id: app.client_id, client_secret: secret }),
  });
  await inOneRateWindow(30000, async () => {
    let limited;
    for (let i = 0; i < 620 && !limited; i++) {
      const r = await send('wrong secret');
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 401);
    }
    assert.ok(limited, 'no 429 within 620 requests (limit is 600 failed authentications per minute)');
    assert.equal(limited.headers.get('retry-after'), '60');
    assert.equal(limited.headers.get('cache-control'), 'no-store');
    const body = await limited.json();
    assert.equal(body.error, 'rate_limit_exceeded');
    assert.match(body.error_description, /retry later/);
    // The right secret is not throttled: the junk refresh token is an ordinary invalid_grant.
    const ok = await send(app.client_secret);
    assert.equal(ok.status, 400);
    assert.equal((await ok.json()).error, 'invalid_grant');
  });
});
