// Checklist section G (brute force and rate limiting), plus C.139 (only CF-Connecting-IP is the
// caller's address) and the open-registration throttle of E.171, against the real rate-limit
// bindings of the local worker. Those count in fixed wall-clock minutes: each scenario runs
// inside one (inOneRateWindow) and uses caller addresses (CF-Connecting-IP, which wrangler dev
// passes through) of its own, varied by attempt, so scenarios never share a counter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker, inOneRateWindow } from '../e2e/harness.mjs';
import { CookieJar, formFields } from '../e2e/flow.mjs';
import {
  CB, newApp, newUser, setting, call, postForm, token, introspect, revoke, basic, discovery, assertOAuthError,
  register, mintIat, uniq, assertNoPanic,
} from './cg-support.mjs';

let w;
let app;
/** Responses kept for the G.195 header check (set by the scenarios that produce them). */
const throttledPages = {};

before(async () => {
  w = await startTestWorker();
  app = await newApp(w);
});

after(async () => {
  if (w) {
    assertNoPanic(w);
    await w.stop();
  }
});

/** A login page for `app` in a new browser at `ip`: its jar and form fields. */
async function loginPage(ip) {
  const jar = new CookieJar();
  const r = await call(w, `/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB })}`, { jar, ip });
  assert.equal(r.status, 200, r.text);
  return { jar, fields: formFields(r.text) };
}

async function login(page, username, password, ip, headers = {}) {
  return postForm(w, '/services/oauth2/authorize', { ...page.fields, username, password, login: '1' }, { jar: page.jar, ip, headers });
}

const hasSession = (r) => r.setCookies.some((c) => /^(__Host-)?eo_sid=[^;]/.test(c));

function assertThrottledJson(r, what) {
  assertOAuthError(r, 429, 'rate_limit_exceeded', what);
  assert.equal(r.headers.get('retry-after'), '60', `${what}: Retry-After`);
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'error_description'], what);
}

const passwordGrant = (username, password, ip, headers = {}) =>
  token(w, { grant_type: 'password', username, password, client_id: app.client_id, client_secret: app.client_secret }, { ip, headers });

// --------------------------------------------------------------------------------- logins

test('G.194 login: the 11th attempt in a minute for one username from one address is 429 even with the right password; the same user from another address logs in', async () => {
  await inOneRateWindow(20000, async (attempt) => {
    const user = await newUser(w, 'g-login');
    const ip = `203.0.113.${60 + attempt}`;
    const page = await loginPage(ip);
    for (let i = 0; i < 10; i++) {
      const r = await login(page, i % 2 ? user.username.toUpperCase() : user.username, `guess-${i}`, ip);
      assert.equal(r.status, 401, `attempt ${i + 1}: ${r.status}`);
    }
    const r = await login(page, user.username, user.password, ip);
    assert.equal(r.status, 429, `11th attempt: ${r.status}`);
    assert.match(r.text, /Too many attempts/);
    assert.ok(!hasSession(r), 'no session while throttled');
    throttledPages.login = r;
    const elsewhere = `198.51.100.${60 + attempt}`;
    const ok = await login(await loginPage(elsewhere), user.username, user.password, elsewhere);
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.match(ok.text, /name="approve"/);
    assert.ok(hasSession(ok));
  });
});

// ------------------------------------------------------------------------ password grant

test('G.194 password grant: 9 attempts a minute per username and address, the 10th refused with 429 + Retry-After even when right; another address is not locked out', async () => {
  await setting(w, { allow_username_password_flow: true });
  try {
    await inOneRateWindow(20000, async (attempt) => {
      const user = await newUser(w, 'g-pw');
      const ip = `203.0.113.${70 + attempt}`;
      for (let i = 0; i < 9; i++) assertOAuthError(await passwordGrant(user.username, `guess-${i}`, ip), 400, 'invalid_grant', `guess ${i + 1}`);
      assertThrottledJson(await passwordGrant(user.username, user.password, ip), '10th, right password');
      const ok = await passwordGrant(user.username, user.password, `198.51.100.${70 + attempt}`);
      assert.equal(ok.status, 200, ok.text);
    });
  } finally {
    await setting(w, { allow_username_password_flow: false });
  }
});

test('C.139 only CF-Connecting-IP is the caller\'s address: X-Forwarded-For, X-Real-IP, True-Client-IP and Forwarded neither evade a throttle nor reach the audit trail; X-Forwarded-Host does not move the issuer', async () => {
  await setting(w, { allow_username_password_flow: true });
  try {
    await inOneRateWindow(20000, async (attempt) => {
      const user = await newUser(w, 'g-xff');
      const ip = `203.0.113.${80 + attempt}`;
      for (let i = 0; i < 9; i++) {
        const spoof = `10.9.${attempt}.${i}`;
        const headers = { 'x-forwarded-for': spoof, 'x-real-ip': spoof, 'true-client-ip': spoof, forwarded: `for=${spoof}` };
        assertOAuthError(await passwordGrant(user.username, `guess-${i}`, ip, headers), 400, 'invalid_grant', `guess ${i + 1}`);
      }
      assertThrottledJson(await passwordGrant(user.username, user.password, ip, { 'x-forwarded-for': '10.9.9.9', 'x-real-ip': '10.9.9.9' }), 'a fresh X-Forwarded-For does not reset the count');
    });
  } finally {
    await setting(w, { allow_username_password_flow: false });
  }
  // The audit trail records CF-Connecting-IP, never a forwarded address.
  const user = await newUser(w, 'g-audit');
  const ip = '192.0.2.139';
  const page = await loginPage(ip);
  const r = await login(page, user.username, 'wrong password', ip, { 'x-forwarded-for': '10.1.2.3', 'x-real-ip': '10.1.2.4' });
  assert.equal(r.status, 401);
  let events = [];
  for (let i = 0; i < 20 && !events.length; i++) {
    if (i) await new Promise((res) => setTimeout(res, 150));
    events = (await w.admin('GET', `/admin/audit?kind=login&user=${user.user_id}`)).json.events;
  }
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0].ip, ip);
  assert.equal(events[0].outcome, 'failure');
  const d = await call(w, '/.well-known/openid-configuration', { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
  assert.equal(d.json.issuer, (await discovery(w)).issuer);
  assert.equal(d.json.issuer, w.baseUrl);
});

// ------------------------------------------------------------------------ device user codes

test('G.194 device user codes: 10 entries a minute per address, then 429 before any lookup (even the right code); another address still gets on', async () => {
  const d = await token(w, { response_type: 'device_code', client_id: app.client_id, scope: 'api' });
  assert.equal(d.status, 200, d.text);
  await inOneRateWindow(20000, async (attempt) => {
    const ip = `203.0.113.${90 + attempt}`;
    const jar = new CookieJar();
    const form = await call(w, '/setup/connect', { jar, ip });
    const { csrf_token } = formFields(form.text);
    const enter = (code, from = ip) => postForm(w, '/setup/connect', { csrf_token, user_code: code, continue: '1' }, { jar, ip: from });
    for (let i = 0; i < 10; i++) {
      const r = await enter(`BCDF-${'GHJK'.slice(0, 3)}${'BCDFGHJKLM'[i]}`);
      assert.equal(r.status, 400, `entry ${i + 1}: ${r.status}`);
    }
    const r = await enter(d.json.user_code);
    assert.equal(r.status, 429, r.text.slice(0, 300));
    assert.match(r.text, /Too many codes/);
    assert.doesNotMatch(r.text, /name="password"/, 'no way forward while throttled');
    throttledPages.userCode = r;
    const ok = await enter(d.json.user_code, `198.51.100.${90 + attempt}`);
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.match(ok.text, /name="password"/, 'the right code from another address leads to the login page');
  });
});

// ------------------------------------------------------------ failed client authentication

test('G.194 failed client authentications (introspection, token, revocation share one count per client and address): 429 + Retry-After after 600; the client\'s valid calls and other addresses are not locked out', async () => {
  const victim = await newApp(w);
  const bad = { client_id: victim.client_id, client_secret: 'not-the-secret' };
  await inOneRateWindow(40000, async (attempt) => {
    const flood = `203.0.113.${100 + attempt}`;
    let limited;
    let n = 0;
    for (; n < 620 && !limited; n++) {
      const r = await postForm(w, '/services/oauth2/introspect', { token: 'junk', ...bad }, { ip: flood });
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 401, `attempt ${n + 1}: ${r.text}`);
    }
    assert.ok(limited, 'no 429 within 620 failed authentications');
    assert.ok(n > 590, `throttled after only ${n - 1} failures`);
    assertThrottledJson(limited, 'introspection');
    assertThrottledJson(await token(w, { grant_type: 'client_credentials', ...bad }, { ip: flood }), 'token endpoint, same count');
    assertThrottledJson(await revoke(w, 'junk', bad, { ip: flood }), 'revocation, same count');
    // The real client is not locked out, even from the flooding address.
    const ok = await postForm(w, '/services/oauth2/introspect', { token: 'junk' }, { ip: flood, headers: basic(victim.client_id, victim.client_secret) });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { active: false });
    // Another address has its own count.
    const other = await postForm(w, '/services/oauth2/introspect', { token: 'junk', ...bad }, { ip: `198.51.100.${100 + attempt}` });
    assertOAuthError(other, 401, 'invalid_client', 'another address');
  });
});

// -------------------------------------------------------------------- open registration

test('E.171 open registration is throttled per address (20 a minute, then 429 + Retry-After); another address, and registrations with an initial access token, are not', async () => {
  await setting(w, { open_registration: true });
  try {
    await inOneRateWindow(20000, async (attempt) => {
      const ip = `203.0.113.${110 + attempt}`;
      for (let i = 0; i < 20; i++) {
        const r = await register(w, { redirect_uris: [CB], client_name: `open ${i}` }, { ip });
        assert.equal(r.status, 201, `registration ${i + 1}: ${r.text}`);
      }
      const r = await register(w, { redirect_uris: [CB], client_name: 'one too many' }, { ip });
      assertThrottledJson(r, '21st open registration');
      const elsewhere = await register(w, { redirect_uris: [CB], client_name: 'elsewhere' }, { ip: `198.51.100.${110 + attempt}` });
      assert.equal(elsewhere.status, 201, elsewhere.text);
      const withToken = await register(w, { redirect_uris: [CB], client_name: 'with token' }, { ip, iat: await mintIat(w) });
      assert.equal(withToken.status, 201, withToken.text);
    });
  } finally {
    await setting(w, { open_registration: false });
  }
});

// ------------------------------------------------------------------------------ G.195

test('G.195 device polling too fast is 400 slow_down (RFC 8628 §3.5, JSON, no-store), not a 429; other device codes are not slowed', async () => {
  const start = () => token(w, { response_type: 'device_code', client_id: app.client_id, scope: 'api' });
  const poll = (dc) => token(w, { grant_type: 'device', code: dc, client_id: app.client_id });
  const a = (await start()).json;
  const b = (await start()).json;
  assertOAuthError(await poll(a.device_code), 400, 'authorization_pending', 'first poll');
  for (let i = 0; i < 3; i++) {
    const r = await poll(a.device_code);
    assertOAuthError(r, 400, 'slow_down', `too fast ${i + 1}`);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  }
  assertOAuthError(await poll(b.device_code), 400, 'authorization_pending', 'another device code');
});

test('G.195 throttled pages (login, user code entry) carry Retry-After like the JSON endpoints', () => {
  for (const [what, r] of Object.entries({ login: throttledPages.login, 'user code entry': throttledPages.userCode })) {
    assert.ok(r, `${what}: the throttle scenario above did not run`);
    assert.equal(r.status, 429, what);
    assert.ok(r.headers.get('retry-after'), `${what}: no Retry-After`);
  }
});
