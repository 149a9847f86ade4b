// HTTP hardening (checklist 84–87, 120, 132, 136, 137, 179; top check T25), against the real
// worker: the headers of every HTML page the server shows, nosniff on JSON answers, 303 after
// the credential POSTs, no CORS at the authorization endpoint, the 64 KiB body limit, and the
// content types docs/endpoints.md says are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestWorker } from '../e2e/harness.mjs';
import { CookieJar, formFields, pkcePair } from '../e2e/flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const SPA_ORIGIN = 'https://spa.hardening.example';
const LIMIT = 64 * 1024;

let w;
let app; // a confidential app whose allowed_origins lists SPA_ORIGIN
let user;

before(async () => {
  w = await startTestWorker();
  app = await newApp({ allowed_origins: [SPA_ORIGIN] });
  user = await newUser();
});

after(async () => {
  if (!w) return;
  assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
  await w.stop();
});

// --- Fixtures and helpers -------------------------------------------------------------------------

async function newApp(fields = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `hardening app ${randomUUID().slice(0, 8)}`,
    callback_urls: [CB],
    scopes: ['api', 'refresh_token', 'openid'],
    ...fields,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser() {
  const username = `hardening-${randomUUID().slice(0, 8)}@example.com`;
  const password = `hardening password ${randomUUID()}`;
  const r = await w.admin('POST', '/admin/users', { username, password, email: username, name: 'Hardening User' });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password };
}

let lastIp = 0;
/** A browser: a cookie jar and an address of its own (the login and code throttles count per address). */
function browser() {
  const jar = new CookieJar();
  const ip = `198.51.100.${++lastIp}`;
  return {
    jar,
    async send(path, { method = 'GET', form, headers = {} } = {}) {
      const h = { cookie: jar.header(), 'cf-connecting-ip': ip, accept: 'text/html', ...headers };
      if (form) h['content-type'] = 'application/x-www-form-urlencoded';
      const r = await fetch(new URL(path, w.baseUrl), { method, headers: h, body: form ? new URLSearchParams(form) : undefined, redirect: 'manual' });
      jar.store(r);
      return { status: r.status, headers: r.headers, location: r.headers.get('location'), body: await r.text() };
    },
  };
}

const authorizeQuery = (extra = {}, forApp = app) =>
  `/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: forApp.client_id, redirect_uri: CB, state: 'st', code_challenge: pkcePair().challenge, ...extra })}`;

const isLogin = (r) => r.body.includes('name="password"') && r.body.includes('name="login"');
const isConsent = (r) => r.body.includes('name="approve"');

/** The directives of a Content-Security-Policy header. */
function csp(headers) {
  const value = headers.get('content-security-policy') ?? '';
  return Object.fromEntries(value.split(';').map((d) => d.trim().split(/\s+/)).filter(([k]) => k).map(([k, ...v]) => [k.toLowerCase(), v.join(' ')]));
}

/** Asserts the anti-framing and referrer headers of an HTML page (84, 86, 136, 137). */
function assertPageHeaders(page, label) {
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/, `${label}: an HTML page`);
  assert.equal(csp(page.headers)['frame-ancestors'], "'none'", `${label}: CSP frame-ancestors 'none' (got ${page.headers.get('content-security-policy')})`);
  assert.equal(page.headers.get('x-frame-options'), 'DENY', `${label}: X-Frame-Options DENY`);
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer', `${label}: Referrer-Policy no-referrer`);
}

/**
 * Every HTML page the server shows, fetched once for the tests below: [label, response].
 * The login, consent and form_post pages come from a real authorization; the device pages from
 * a real device approval.
 */
let pagesCache;
async function allPages() {
  if (pagesCache) return pagesCache;
  const pages = [];
  const b = browser();
  const login = await b.send(authorizeQuery());
  assert.ok(isLogin(login), `the login page: ${login.status} ${login.body.slice(0, 300)}`);
  pages.push(['login page', login]);
  const wrong = await b.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(login.body), username: user.username, password: 'not the password', login: '1' } });
  assert.equal(wrong.status, 401, 'a wrong password shows the login page again with 401');
  pages.push(['login page after a wrong password (401)', wrong]);
  const consent = await b.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(wrong.body), username: user.username, password: user.password, login: '1' } });
  assert.ok(isConsent(consent), `the consent page: ${consent.status} ${consent.body.slice(0, 300)}`);
  pages.push(['consent page', consent]);
  // form_post: the consent answer is a self-submitting page (200).
  const fp = browser();
  const fpLogin = await fp.send(authorizeQuery({ response_mode: 'form_post', prompt: 'consent' }));
  const fpConsent = await fp.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(fpLogin.body), username: user.username, password: user.password, login: '1' } });
  assert.ok(isConsent(fpConsent), fpConsent.body.slice(0, 300));
  const formPost = await fp.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(fpConsent.body), approve: '1' } });
  assert.equal(formPost.status, 200, formPost.body.slice(0, 300));
  assert.match(formPost.body, new RegExp(`action="${CB}"`));
  pages.push(['form_post page', formPost]);

  const unknown = await b.send(`/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'no-such-client', redirect_uri: CB })}`);
  assert.equal(unknown.status, 400);
  assert.match(unknown.body, /id="error-line"/, 'the HTML error page (Accept: text/html)');
  pages.push(['error page (unknown client_id)', unknown]);
  const mismatch = await b.send(`/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: 'https://evil.example/cb' })}`);
  assert.equal(mismatch.status, 400);
  pages.push(['error page (redirect_uri_mismatch)', mismatch]);

  // The device verification pages.
  const start = await post('/services/oauth2/token', { response_type: 'device_code', client_id: app.client_id, scope: 'api' });
  assert.equal(start.status, 200, start.text);
  const d = browser();
  const entry = await d.send('/setup/connect');
  assert.equal(entry.status, 200);
  assert.match(entry.body, /name="user_code"/);
  pages.push(['device code page (/setup/connect)', entry]);
  const bad = await d.send('/setup/connect', { method: 'POST', form: { ...formFields(entry.body), user_code: 'BCDF-GHJK', continue: '1' } });
  assert.equal(bad.status, 400);
  pages.push(['device code page after a wrong code (400)', bad]);
  const dLogin = await d.send('/setup/connect', { method: 'POST', form: { ...formFields(entry.body), user_code: start.json.user_code, continue: '1' } });
  assert.ok(isLogin(dLogin), dLogin.body.slice(0, 300));
  pages.push(['device login page', dLogin]);
  const dConsent = await d.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(dLogin.body), username: user.username, password: user.password, login: '1' } });
  assert.ok(isConsent(dConsent), dConsent.body.slice(0, 300));
  pages.push(['device consent page', dConsent]);
  const dDone = await d.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(dConsent.body), approve: '1' } });
  assert.match(dDone.body, /Device connected/);
  pages.push(['device connected page', dDone]);

  // The tool page, the demo and the console.
  const tool = await b.send('/tools/asset-token');
  assert.equal(tool.status, 200);
  pages.push(['asset token tool (/tools/asset-token)', tool]);
  const demo = await b.send('/');
  assert.equal(demo.status, 200);
  pages.push(['demo app (/)', demo]);
  const consoleTab = await b.send('/admin');
  assert.equal(consoleTab.status, 200);
  pages.push(['operator console (/admin)', consoleTab]);

  pagesCache = pages;
  return pages;
}

async function post(path, fields, headers = {}) {
  const r = await fetch(`${w.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
  return answer(r);
}

async function answer(r) {
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

// --- Pages ------------------------------------------------------------------------------------

test("T25 / 84 / 86 / 136 / 137 every HTML page: CSP frame-ancestors 'none', X-Frame-Options DENY, Referrer-Policy no-referrer", async () => {
  const pages = await allPages();
  assert.equal(pages.length, 14);
  for (const [label, page] of pages) {
    assertPageHeaders(page, label);
    // 86 / 136: no third-party resources (scripts, styles, images, frames from elsewhere).
    const external = [...page.body.matchAll(/<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="((?:https?:)?\/\/[^"]*)"/gi)].map((m) => m[1]);
    assert.deepEqual(external, [], `${label}: resources from another origin`);
  }
});

test('T25 / 84 the static pages (demo, console) send X-Content-Type-Options: nosniff', async () => {
  for (const [label, page] of await allPages()) {
    if (label.startsWith('demo') || label.startsWith('operator console')) {
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff', label);
    }
  }
});

test('T25 / 84 the worker\'s pages (login, consent, error, device, form_post, tool) send X-Content-Type-Options: nosniff', async () => {
  const missing = [];
  for (const [label, page] of await allPages()) {
    if (page.headers.get('x-content-type-options') !== 'nosniff') missing.push(label);
  }
  assert.deepEqual(missing, [], 'pages without nosniff');
});

test('T25 / 179 JSON answers send X-Content-Type-Options: nosniff', async () => {
  const answers = {
    discovery: await answer(await fetch(`${w.baseUrl}/.well-known/openid-configuration`)),
    jwks: await answer(await fetch(`${w.baseUrl}/id/keys`)),
    'token error': await post('/services/oauth2/token', { grant_type: 'nonsense' }),
    introspection: await post('/services/oauth2/introspect', { token: 'nonsense', client_id: app.client_id, client_secret: app.client_secret }),
    userinfo: await answer(await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: 'Bearer nonsense' } })),
    registration: await answer(await fetch(`${w.baseUrl}/services/oauth2/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })),
    'admin API': await w.admin('GET', '/admin/settings'),
    'unknown path': await answer(await fetch(`${w.baseUrl}/no/such/path`)),
  };
  const missing = [];
  for (const [label, r] of Object.entries(answers)) {
    assert.match(r.headers.get('content-type') ?? '', /json/, `${label}: a JSON answer (${r.status})`);
    if (r.headers.get('x-content-type-options') !== 'nosniff') missing.push(label);
  }
  assert.deepEqual(missing, [], 'JSON answers without nosniff');
});

// --- 303 after credential POSTs ------------------------------------------------------------------

test('T25 / 85 / 120 credential POSTs (login, consent, device code entry) answer 303 when they redirect, never 307/308', async () => {
  const credentialPosts = [];
  const check = (label, r) => {
    credentialPosts.push([label, r.status]);
    if (r.status >= 300 && r.status < 400) assert.equal(r.status, 303, `${label}: a redirect after a credential POST is 303 (got ${r.status} → ${r.location})`);
  };

  // An app nobody approved yet, so the first login is followed by the consent page.
  const fresh = await newApp();
  // Login, then consent: the consent POST redirects to the callback with 303.
  const first = browser();
  const login = await first.send(authorizeQuery({}, fresh));
  const consent = await first.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(login.body), username: user.username, password: user.password, login: '1' } });
  check('login POST (consent follows)', consent);
  assert.ok(isConsent(consent), `the consent page: ${consent.status}`);
  const approved = await first.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(consent.body), approve: '1' } });
  check('consent POST (approve)', approved);
  assert.equal(approved.status, 303);
  assert.equal(new URL(approved.location).origin + new URL(approved.location).pathname, CB);
  assert.ok(new URL(approved.location).searchParams.get('code'));

  // Deny: 303 to the callback with access_denied.
  const denier = browser();
  const l2 = await denier.send(authorizeQuery({ prompt: 'consent' }, fresh));
  const c2 = await denier.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(l2.body), username: user.username, password: user.password, login: '1' } });
  check('login POST (prompt=consent)', c2);
  const denied = await denier.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(c2.body), deny: '1' } });
  check('consent POST (deny)', denied);
  assert.equal(denied.status, 303);
  assert.equal(new URL(denied.location).searchParams.get('error'), 'access_denied');

  // A login for an app already approved: the login POST itself redirects, with 303.
  const again = browser();
  const l3 = await again.send(authorizeQuery({}, fresh));
  const direct = await again.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(l3.body), username: user.username, password: user.password, login: '1' } });
  check('login POST (approved before)', direct);
  assert.equal(direct.status, 303, `the login POST redirects to the callback: ${direct.status} ${direct.body.slice(0, 200)}`);
  assert.ok(new URL(direct.location).searchParams.get('code'));

  // A wrong password: the page again, no redirect at all.
  const wrongB = browser();
  const l4 = await wrongB.send(authorizeQuery({}, fresh));
  const wrong = await wrongB.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(l4.body), username: user.username, password: 'wrong password', login: '1' } });
  check('login POST (wrong password)', wrong);
  assert.equal(wrong.status, 401);
  assert.equal(wrong.location, null);

  // The device flow: code entry, login and allow end on pages; any redirect would be a 303.
  const start = await post('/services/oauth2/token', { response_type: 'device_code', client_id: fresh.client_id, scope: 'api' });
  assert.equal(start.status, 200, start.text);
  const d = browser();
  const entry = await d.send('/setup/connect');
  const dLogin = await d.send('/setup/connect', { method: 'POST', form: { ...formFields(entry.body), user_code: start.json.user_code, continue: '1' } });
  check('device code entry POST', dLogin);
  const dConsent = await d.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(dLogin.body), username: user.username, password: user.password, login: '1' } });
  check('device login POST', dConsent);
  const dDone = await d.send('/services/oauth2/authorize', { method: 'POST', form: { ...formFields(dConsent.body), approve: '1' } });
  check('device allow POST', dDone);
  assert.match(dDone.body, /Device connected/);

  assert.ok(credentialPosts.filter(([, s]) => s === 303).length >= 3, JSON.stringify(credentialPosts));
});

// --- No CORS at the authorization endpoint ---------------------------------------------------

test('T25 / 87 / 132 /services/oauth2/authorize answers no CORS: not to an Origin header, not to a preflight (even for an allowed origin)', async () => {
  const corsHeaders = (r) => [...r.headers.keys()].filter((k) => k.startsWith('access-control-'));
  for (const origin of [SPA_ORIGIN, 'https://evil.example', 'null']) {
    const get = await fetch(`${w.baseUrl}${authorizeQuery()}`, { headers: { origin }, redirect: 'manual' });
    assert.equal(get.status, 200, 'the login page');
    assert.deepEqual(corsHeaders(get), [], `GET with Origin ${origin}`);
    const headless = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB }),
      redirect: 'manual',
    });
    assert.deepEqual(corsHeaders(headless), [], `POST with Origin ${origin}`);
    for (const method of ['POST', 'GET']) {
      const pre = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'content-type' },
        redirect: 'manual',
      });
      assert.deepEqual(corsHeaders(pre), [], `preflight (${method}) from ${origin}: status ${pre.status}`);
    }
  }
  // Control: the same origin is allowed where CORS is offered (the token endpoint), so the
  // absence above is the authorization endpoint's rule, not an unknown origin.
  const tokenPre = await fetch(`${w.baseUrl}/services/oauth2/token`, {
    method: 'OPTIONS',
    headers: { origin: SPA_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  assert.equal(tokenPre.headers.get('access-control-allow-origin'), SPA_ORIGIN);
});

// --- Body size -------------------------------------------------------------------------------

const big = (n = LIMIT + 1) => 'a=' + 'x'.repeat(n - 2);

test('179 a body over 64 KiB is 413 at token, introspect, revoke, register, authorize and the admin API', async () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const json = { 'content-type': 'application/json' };
  const jsonBody = JSON.stringify({ redirect_uris: [CB], client_name: 'x'.repeat(LIMIT) });
  const cases = [
    ['token', '/services/oauth2/token', form, big(), true],
    ['introspect', '/services/oauth2/introspect', form, big(), true],
    ['revoke', '/services/oauth2/revoke', form, big(), true],
    ['register', '/services/oauth2/register', json, jsonBody, true],
    ['authorize (login form)', '/services/oauth2/authorize', form, big(), false],
    ['admin API', '/admin/apps', { ...json, authorization: `Bearer ${w.adminToken}` }, JSON.stringify({ name: 'x'.repeat(LIMIT), callback_urls: [CB], scopes: ['api'] }), false],
  ];
  for (const [label, path, headers, body, oauthJson] of cases) {
    assert.ok(Buffer.byteLength(body) > LIMIT);
    const r = await answer(await fetch(`${w.baseUrl}${path}`, { method: 'POST', headers, body }));
    assert.equal(r.status, 413, `${label}: ${r.text.slice(0, 200)}`);
    if (oauthJson) assert.equal(r.json?.error, 'invalid_request', `${label}: a JSON invalid_request`);
  }
  // A chunked body (no Content-Length) is cut off once it passes 64 KiB.
  const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
  let sent = 0;
  const stream = new ReadableStream({
    start(c) { c.enqueue(new TextEncoder().encode('a=')); },
    pull(c) { if (sent++ < 8) c.enqueue(chunk); else c.close(); },
  });
  const chunked = await answer(await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'POST', headers: form, body: stream, duplex: 'half' }));
  assert.equal(chunked.status, 413, `chunked: ${chunked.text.slice(0, 200)}`);
  assert.equal(chunked.json?.error, 'invalid_request');
  // Exactly 64 KiB is read, and answered on its merits: one value over 8 KiB is invalid_request.
  const atLimit = await answer(await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'POST', headers: form, body: big(LIMIT) }));
  assert.equal(atLimit.status, 400, atLimit.text);
  assert.equal(atLimit.json?.error, 'invalid_request', atLimit.text);
});

// --- Content types ----------------------------------------------------------------------------

test('179 wrong content types are refused: token, introspection and revocation take form bodies only (400 invalid_request)', async () => {
  const fields = {
    token: { grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret },
    introspect: { token: 'whatever', client_id: app.client_id, client_secret: app.client_secret },
    revoke: { token: 'whatever' },
  };
  for (const [endpoint, f] of Object.entries(fields)) {
    const bodies = [
      ['application/json', JSON.stringify(f)],
      ['text/plain', new URLSearchParams(f).toString()],
      ['application/xml', '<x/>'],
    ];
    for (const [type, body] of bodies) {
      const r = await answer(await fetch(`${w.baseUrl}/services/oauth2/${endpoint}`, { method: 'POST', headers: { 'content-type': type }, body }));
      assert.equal(r.status, 400, `${endpoint} with ${type}: ${r.text}`);
      assert.equal(r.json?.error, 'invalid_request', `${endpoint} with ${type}: ${r.text}`);
      assert.match(r.headers.get('cache-control') ?? '', /no-store/);
    }
  }
  // Control: the documented encodings are read (multipart at the token endpoint too).
  const mp = new FormData();
  mp.append('grant_type', 'no-such-grant');
  const multipart = await answer(await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'POST', body: mp }));
  assert.equal(multipart.json?.error, 'unsupported_grant_type', multipart.text);
  const urlencoded = await post('/services/oauth2/token', { grant_type: 'no-such-grant' });
  assert.equal(urlencoded.json?.error, 'unsupported_grant_type', urlencoded.text);
});
