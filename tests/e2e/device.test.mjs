// The device flow (RFC 8628 and Salesforce's dialect) end to end: the client libraries that use
// it against the real worker, with the person approving on /setup/connect in headless Chromium.
// - openid-client v6 (RFC dialect: /services/oauth2/device, client_secret_post, its own polling)
//   gets tokens it validates itself (ID token, userinfo `sub`) after an approval through
//   `verification_uri_complete`;
// - @salesforce/core's DeviceOauthService (what `sf org login device` runs: multipart, client_id
//   alone, at the token endpoint) gets a working Salesforce-shaped access token after the person
//   typed the code at `verification_uri`;
// - every polling answer over plain HTTP: authorization_pending, slow_down (and the interval
//   growing), access_denied, tokens exactly once (also under 20 parallel polls), invalid_grant
//   for unknown and foreign codes, unauthorized_client when the app's device flow is off;
// - the page: the per-IP throttle on code entries, its CSRF check, and a code answered twice.
// Expiry (10 minutes) is covered by the native flow tests on a mock clock.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { launchChromium } from './ua-helpers.mjs';
import { CookieJar, formFields, tokenRequest } from './flow.mjs';
import { inOneRateWindow, startTestWorker } from './harness.mjs';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_SHAPE = /^00D\w{12,15}![.\w]*$/; // sfdx-core's access-token detection
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
const CALLBACK = 'http://127.0.0.1:9/cb'; // never contacted: the device flow has no redirect

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let w;
let browser;
let orgId;
let tmp;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edge-oauth-device-'));
  w = await startTestWorker();
  orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
  assert.match(orgId, /^00D\w{15}$/);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await w?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// --- Fixtures -------------------------------------------------------------------------------

async function newApp(fields = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `Device app ${randomUUID().slice(0, 6)}`,
    callback_urls: [CALLBACK],
    scopes: ['api', 'refresh_token', 'openid', 'web'],
    ...fields,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function newUser(label) {
  const username = `${label}.${randomUUID().slice(0, 8)}@example.com`;
  const fields = { username, password: `pw-${randomUUID()}`, email: username, name: `${label} Person` };
  const r = await w.admin('POST', '/admin/users', fields);
  assert.equal(r.status, 201, r.text);
  return { ...fields, user_id: r.json.user_id };
}

const identityUrl = (user) => `${w.baseUrl}/id/${orgId}/${user.user_id}`;

/**
 * Every code typed on /setup/connect counts against a per-address throttle (10 a minute), so
 * each person (browser or cookie jar) gets an address of its own: the tests never share one.
 */
let lastIp = 0;
const nextIp = () => `198.51.100.${++lastIp}`;

async function bearerGet(url, accessToken) {
  const r = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

// --- The device, over HTTP (Salesforce's dialect, form-urlencoded) ---------------------------

async function startDevice(app, scope = 'api refresh_token') {
  const r = await tokenRequest(w.baseUrl, { response_type: 'device_code', client_id: app.client_id, scope });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const poll = (app, deviceCode) => tokenRequest(w.baseUrl, { grant_type: 'device', client_id: app.client_id, code: deviceCode });

/** `[status, error]` of a poll, for compact assertions. */
const answer = (r) => [r.status, r.json?.error];

// --- The person, in Chromium ------------------------------------------------------------------

/** A browser of its own (own cookies, own address). */
function newPerson() {
  return browser.newContext({ extraHTTPHeaders: { 'cf-connecting-ip': nextIp() } });
}

/**
 * Opens `url` (the verification URI, with or without the code), types `typeCode` if given,
 * continues, logs in as `user`, and returns the page once the consent page shows the code.
 */
async function reachConsent(context, { url, userCode, typeCode = false, user }) {
  const page = await context.newPage();
  await page.goto(url);
  const field = page.locator('input[name="user_code"]');
  if (typeCode) {
    assert.equal(await field.inputValue(), '', 'nothing prefilled without ?user_code=');
    await field.fill(userCode);
  } else {
    assert.equal(await field.inputValue(), userCode, 'verification_uri_complete fills the code in');
  }
  await page.locator('button[name="continue"]').click();
  await page.locator('input[name="username"]').fill(user.username);
  await page.locator('input[name="password"]').fill(user.password);
  await page.locator('button[name="login"]').click();
  await page.locator('button[name="approve"]').waitFor();
  assert.equal(await page.locator('button[name="deny"]').count(), 1);
  assert.match(await page.locator('main').innerText(), new RegExp(userCode), 'the consent page shows the code it approves');
  return page;
}

/** Clicks `button` (approve or deny) on a consent page: the status and text of the page shown. */
async function decide(page, button) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.request().resourceType() === 'document'),
    page.locator(`button[name="${button}"]`).click(),
  ]);
  await page.waitForLoadState();
  return { status: response.status(), text: await page.locator('body').innerText() };
}

/** A whole approval (or denial) in a fresh browser. */
async function personAnswers(button, { url, userCode, typeCode, user }) {
  const context = await newPerson();
  try {
    const page = await reachConsent(context, { url, userCode, typeCode, user });
    return await decide(page, button);
  } finally {
    await context.close();
  }
}

// --- The person, over HTTP (for the page's own checks) -----------------------------------------

/** GET /setup/connect in a new "browser": its cookie jar and the form's csrf_token. */
async function codeEntryPage() {
  const jar = new CookieJar();
  const r = await fetch(`${w.baseUrl}/setup/connect`);
  assert.equal(r.status, 200);
  jar.store(r);
  assert.ok(jar.cookies.has('eo_bid') || jar.cookies.has('__Host-eo_bid'), `browser cookie set: ${[...jar.cookies.keys()]}`);
  const { csrf_token: csrf } = formFields(await r.text());
  assert.ok(csrf);
  return { jar, csrf };
}

/** Submits the code entry form: `fields` over the form's, from `ip`. */
async function enterCode({ jar, ip, ...fields }) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': ip };
  if (jar) headers.cookie = jar.header();
  const r = await fetch(`${w.baseUrl}/setup/connect`, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ continue: '1', ...fields }),
    redirect: 'manual',
  });
  return { status: r.status, body: await r.text() };
}

const isLoginPage = (body) => /name="password"/.test(body) && /name="login"/.test(body);

// --- Client libraries -------------------------------------------------------------------------

test('openid-client v6: initiateDeviceAuthorization + pollDeviceAuthorizationGrant while Chromium approves via verification_uri_complete', async () => {
  const app = await newApp({ name: 'OIDC TV app' });
  const user = await newUser('oidc');

  // Record what the library sends and what it hears.
  const exchanges = [];
  const config = await client.discovery(new URL(w.baseUrl), app.client_id, app.client_secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  assert.equal(config.serverMetadata().device_authorization_endpoint, `${w.baseUrl}/services/oauth2/device`);
  config[client.customFetch] = async (url, options) => {
    const sent = { at: Date.now(), url: String(url), body: new URLSearchParams(options.body?.toString() ?? '') };
    const response = await fetch(url, options);
    exchanges.push({ ...sent, status: response.status, json: await response.clone().json().catch(() => undefined) });
    return response;
  };

  const device = await client.initiateDeviceAuthorization(config, { scope: 'openid api refresh_token' });
  assert.match(device.user_code, USER_CODE);
  assert.equal(device.verification_uri, `${w.baseUrl}/setup/connect`);
  assert.equal(device.verification_uri_complete, `${w.baseUrl}/setup/connect?user_code=${device.user_code}`);
  assert.equal(device.interval, 5);
  assert.equal(device.expires_in, 600);
  // RFC dialect: the app requires its secret, which the library sends in the body.
  const [start] = exchanges;
  assert.equal(start.url, `${w.baseUrl}/services/oauth2/device`);
  assert.equal(start.body.get('client_id'), app.client_id);
  assert.equal(start.body.get('client_secret'), app.client_secret);

  const polling = client.pollDeviceAuthorizationGrant(config, device);
  const done = await personAnswers('approve', { url: device.verification_uri_complete, userCode: device.user_code, user });
  assert.equal(done.status, 200);
  assert.match(done.text, /Device connected/);
  const tokens = await polling;

  // The library validated the ID token (signature via the JWKS, iss, aud, exp/iat).
  const claims = tokens.claims();
  assert.equal(claims.sub, identityUrl(user));
  assert.equal(claims.iss, w.baseUrl);
  assert.ok(claims.aud === app.client_id || claims.aud.includes(app.client_id));
  assert.equal(claims.nonce, undefined, 'no nonce in the device flow');
  assert.match(tokens.access_token, TOKEN_SHAPE);
  assert.ok(tokens.refresh_token, 'refresh_token scope granted');
  assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['openid', 'api', 'refresh_token']));
  assert.equal(tokens.id, identityUrl(user));
  assert.equal(tokens.instance_url, w.baseUrl);

  // Polls: RFC grant type, device_code, client auth; the library waits the interval before
  // every poll (the first one too), so it never hears slow_down.
  const polls = exchanges.filter((e) => e.url === `${w.baseUrl}/services/oauth2/token`);
  assert.ok(polls.length >= 1);
  assert.ok(polls[0].at - start.at >= 5000, 'the library waits the interval before its first poll');
  for (const p of polls) {
    assert.equal(p.body.get('grant_type'), DEVICE_GRANT);
    assert.equal(p.body.get('device_code'), device.device_code);
    assert.equal(p.body.get('client_secret'), app.client_secret);
  }
  assert.deepEqual(polls.slice(0, -1).map((p) => p.json?.error), polls.slice(0, -1).map(() => 'authorization_pending'));
  assert.equal(polls.at(-1).status, 200);

  // The tokens work: userinfo (the library checks its sub), and a refresh.
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, user.username);
  assert.equal(info.user_id, user.user_id);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);
  assert.equal((await client.fetchUserInfo(config, refreshed.access_token, claims.sub)).preferred_username, user.username);

  // Redeemed once: the library's next poll of the same code is refused.
  await assert.rejects(client.pollDeviceAuthorizationGrant(config, { ...device, interval: 0 }), (e) => e.error === 'invalid_grant');
});

/**
 * A loopback proxy in front of the worker that records each request (method, path, content
 * type, raw body), so the test can see exactly what the Salesforce CLI code sends.
 */
async function startRecordingProxy(target) {
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const record = { at: Date.now(), method: req.method, path: req.url, contentType: req.headers['content-type'] ?? '', body: body.toString('latin1') };
    seen.push(record);
    const headers = { ...req.headers };
    for (const h of ['host', 'content-length', 'transfer-encoding', 'connection']) delete headers[h];
    try {
      const r = await fetch(target + req.url, { method: req.method, headers, body: req.method === 'GET' ? undefined : body });
      const out = Buffer.from(await r.arrayBuffer());
      record.status = r.status;
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(out);
    } catch (e) {
      record.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => new Promise((resolve) => { server.close(resolve); server.closeAllConnections(); });
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close };
}

/** The fields of a multipart/form-data body (text fields only). */
function multipartFields({ contentType, body }) {
  const boundary = contentType.match(/boundary=(.+)$/)[1];
  const fields = {};
  for (const part of body.split(`--${boundary}`)) {
    const m = part.match(/name="([^"]+)"\r\n\r\n([\s\S]*)\r\n$/);
    if (m) fields[m[1]] = m[2];
  }
  return fields;
}

test('@salesforce/core DeviceOauthService (sf org login device): multipart, client_id alone; Chromium types the code at verification_uri', async () => {
  const app = await newApp({ name: 'sf cli device' });
  const user = await newUser('sfcli');
  // Keep the CLI's state (auth files, logs) out of the real home.
  process.env.HOME = join(tmp, 'home');
  process.env.SF_DISABLE_LOG_FILE = 'true';
  process.env.SFDX_DISABLE_LOG_FILE = 'true';
  process.env.SF_USE_GENERIC_UNIX_KEYCHAIN = 'true';
  const { DeviceOauthService } = await import('@salesforce/core');

  const proxy = await startRecordingProxy(w.baseUrl);
  try {
    const service = await DeviceOauthService.create({ clientId: app.client_id, loginUrl: proxy.url });
    const login = await service.requestDeviceLogin();
    assert.match(login.user_code, USER_CODE);
    // The server names itself, not the proxy the CLI was pointed at.
    assert.equal(login.verification_uri, `${w.baseUrl}/setup/connect`);
    assert.equal(login.interval, 5);

    const approval = service.awaitDeviceApproval(login);
    const done = await personAnswers('approve', { url: login.verification_uri, userCode: login.user_code, typeCode: true, user });
    assert.equal(done.status, 200);
    assert.match(done.text, /Device connected/);
    const tokens = await approval;

    assert.match(tokens.access_token, TOKEN_SHAPE);
    assert.ok(tokens.access_token.startsWith(`${orgId}!`));
    assert.ok(tokens.refresh_token, 'the CLI asks for refresh_token');
    assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['refresh_token', 'web', 'api']));
    assert.equal(tokens.instance_url, w.baseUrl);
    assert.equal(tokens.id, identityUrl(user));
    assert.equal(tokens.token_type, 'Bearer');
    assert.match(String(tokens.issued_at), /^\d{13}$/);

    // What the CLI does next with the token: the identity URL, and userinfo.
    const id = await bearerGet(tokens.id, tokens.access_token);
    assert.equal(id.status, 200, id.text);
    assert.equal(id.json.username, user.username);
    assert.equal(id.json.organization_id, orgId);
    const info = await bearerGet(`${w.baseUrl}/services/oauth2/userinfo`, tokens.access_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.preferred_username, user.username);

    // What it sent: multipart/form-data to the token endpoint, client_id and no secret, the
    // device code in `code`; the first poll at once, then one every 5 s (never slow_down).
    assert.ok(proxy.seen.every((s) => s.method === 'POST' && s.path === '/services/oauth2/token'), JSON.stringify(proxy.seen.map((s) => s.path)));
    assert.ok(proxy.seen.every((s) => s.contentType.startsWith('multipart/form-data; boundary=')));
    const [start, ...polls] = proxy.seen.map((s) => ({ ...multipartFields(s), at: s.at, status: s.status }));
    assert.deepEqual({ ...start, at: undefined, status: undefined }, { client_id: app.client_id, response_type: 'device_code', scope: 'refresh_token web api', at: undefined, status: undefined });
    assert.ok(polls.length >= 2, 'polled while the person was approving');
    for (const p of polls) {
      assert.deepEqual([p.client_id, p.grant_type, p.code, p.client_secret], [app.client_id, 'device', login.device_code, undefined]);
    }
    assert.ok(polls[0].at - proxy.seen[0].at < 4000, 'the first poll comes at once');
    for (let i = 1; i < polls.length; i++) assert.ok(polls[i].at - polls[i - 1].at >= 5000, `poll ${i} waited the interval`);
    assert.deepEqual(polls.map((p) => p.status), [...polls.slice(0, -1).map(() => 400), 200]);
  } finally {
    await proxy.close();
  }
});

// --- Every polling answer ---------------------------------------------------------------------

test('polling: authorization_pending at once, slow_down when too quick, and each slow_down adds 5 s to the interval', async () => {
  const app = await newApp();
  const d = await startDevice(app);
  assert.match(d.user_code, USER_CODE);
  assert.equal(d.interval, 5);

  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending'], 'the first poll may come at once');
  const slow = await poll(app, d.device_code);
  assert.deepEqual(answer(slow), [400, 'slow_down'], 'the second came at once');
  // 6 s later is past the first interval (5 s) but not the grown one (10 s).
  await sleep(6000);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'slow_down'], 'the interval is 10 s now');
  // Now 15 s: waiting that long is in time again.
  await sleep(15500);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending']);
});

test('polling: access_denied once the person denies in the browser', async () => {
  const app = await newApp();
  const user = await newUser('denier');
  const d = await startDevice(app);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending']);
  const started = Date.now();

  const done = await personAnswers('deny', { url: d.verification_uri_complete, userCode: d.user_code, user });
  assert.equal(done.status, 200);
  assert.match(done.text, /Access denied/);

  await sleep(Math.max(0, 5500 - (Date.now() - started)));
  const r = await poll(app, d.device_code);
  assert.deepEqual(answer(r), [400, 'access_denied'], r.text);
  assert.equal(r.json.access_token, undefined);
});

test('polling: approved → 200 with the tokens once; the second redemption is invalid_grant', async () => {
  const app = await newApp();
  const user = await newUser('approver');
  const d = await startDevice(app, 'api refresh_token');
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending']);
  const started = Date.now();

  const done = await personAnswers('approve', { url: d.verification_uri_complete, userCode: d.user_code, user });
  assert.match(done.text, /Device connected/);

  await sleep(Math.max(0, 5500 - (Date.now() - started)));
  const r = await poll(app, d.device_code);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.match(r.json.access_token, TOKEN_SHAPE);
  assert.ok(r.json.refresh_token);
  assert.equal(r.json.scope, 'api refresh_token');
  assert.equal(r.json.id_token, undefined, 'openid was not asked for');
  assert.equal(r.json.instance_url, w.baseUrl);
  assert.equal(r.json.id, identityUrl(user));
  assert.equal(r.json.token_type, 'Bearer');
  assert.ok(Math.abs(Number(r.json.issued_at) - Date.now()) < 60000);
  const info = await bearerGet(`${w.baseUrl}/services/oauth2/userinfo`, r.json.access_token);
  assert.equal(info.json.preferred_username, user.username);

  // At once, and invalid_grant rather than slow_down: the code is spent.
  const again = await poll(app, d.device_code);
  assert.deepEqual(answer(again), [400, 'invalid_grant'], again.text);
});

test('polling: unknown device codes are invalid_grant in both dialects', async () => {
  const app = await newApp();
  const d = await startDevice(app);
  // One that looks like a real one (same route prefix and length), and plain garbage.
  const lookalike = d.device_code.slice(0, -6) + (d.device_code.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
  for (const code of [lookalike, 'nonsense']) {
    assert.deepEqual(answer(await poll(app, code)), [400, 'invalid_grant'], `Salesforce dialect: ${code}`);
    const r = await tokenRequest(w.baseUrl, { grant_type: DEVICE_GRANT, client_id: app.client_id, client_secret: app.client_secret, device_code: code });
    assert.deepEqual(answer(r), [400, 'invalid_grant'], `RFC dialect: ${code}`);
  }
  // The real one was not disturbed by those.
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending']);
});

test("polling: another client's approved device code is invalid_grant, and the owner still gets its tokens", async () => {
  const owner = await newApp({ name: 'Owner app' });
  const other = await newApp({ name: 'Other app' });
  const user = await newUser('owner');
  const d = await startDevice(owner);
  await personAnswers('approve', { url: d.verification_uri_complete, userCode: d.user_code, user });

  const r = await poll(other, d.device_code);
  assert.deepEqual(answer(r), [400, 'invalid_grant'], r.text);

  await sleep(5500);
  const mine = await poll(owner, d.device_code);
  assert.equal(mine.status, 200, mine.text);
  assert.equal(mine.json.id, identityUrl(user));
});

test("polling: another client's pending device code is invalid_grant, and does not count as the owner's poll", async () => {
  const owner = await newApp({ name: 'Owner app' });
  const other = await newApp({ name: 'Other app' });
  const d = await startDevice(owner);

  const r = await poll(other, d.device_code);
  assert.deepEqual(answer(r), [400, 'invalid_grant'], `a client polling a code issued to another: ${r.text}`);
  // The owner's first poll: the foreign one must not make it "too quick".
  const mine = await poll(owner, d.device_code);
  assert.deepEqual(answer(mine), [400, 'authorization_pending'], mine.text);
});

test('polling: an app whose device flow is off gets unauthorized_client, at the start and at a poll', async () => {
  const off = await newApp({ device_flow: false });
  const sf = await tokenRequest(w.baseUrl, { response_type: 'device_code', client_id: off.client_id, scope: 'api' });
  assert.deepEqual(answer(sf), [400, 'unauthorized_client'], sf.text);
  const r = await fetch(`${w.baseUrl}/services/oauth2/device`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: off.client_id, client_secret: off.client_secret, scope: 'api' }),
  });
  const body = await r.json();
  assert.deepEqual([r.status, body.error], [400, 'unauthorized_client'], JSON.stringify(body));

  // Switched off after a code was issued: its polls are refused too.
  const app = await newApp();
  const d = await startDevice(app);
  const patched = await w.admin('PATCH', `/admin/apps/${app.client_id}`, { device_flow: false });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.device_flow, false);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'unauthorized_client']);
});

// --- Single use under concurrency -------------------------------------------------------------

test('20 parallel polls of one approved device code: exactly one 200, the rest slow_down or invalid_grant', async () => {
  const app = await newApp();
  const user = await newUser('racer');
  const d = await startDevice(app);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'authorization_pending']);
  const started = Date.now();
  await personAnswers('approve', { url: d.verification_uri_complete, userCode: d.user_code, user });
  await sleep(Math.max(0, 5500 - (Date.now() - started)));

  const results = await Promise.all(Array.from({ length: 20 }, () => poll(app, d.device_code)));
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, `statuses: ${results.map((r) => r.status)}`);
  for (const r of results.filter((x) => x.status !== 200)) {
    assert.equal(r.status, 400, r.text);
    assert.ok(['slow_down', 'invalid_grant'].includes(r.json.error), r.text);
    assert.equal(r.json.access_token, undefined);
  }
  // The one set of tokens works.
  const info = await bearerGet(`${w.baseUrl}/services/oauth2/userinfo`, ok[0].json.access_token);
  assert.equal(info.status, 200, info.text);
  assert.equal(info.json.preferred_username, user.username);
  // And the code stays spent.
  await sleep(5500);
  assert.deepEqual(answer(await poll(app, d.device_code)), [400, 'invalid_grant']);
});

// --- The verification page --------------------------------------------------------------------

test('the code entry throttle: 10 entries per address a minute, then 429 even for the right code; another address still works', async () => {
  const app = await newApp();
  const d = await startDevice(app);
  await inOneRateWindow(30000, async (attempt) => {
    const ip = `203.0.113.${10 + attempt}`;
    const { jar, csrf } = await codeEntryPage();
    // Every entry counts, whatever it is: well-formed codes nobody was given, and junk.
    const wrong = ['BCDF-GHJK', 'ZZZZ-ZZZZ', 'qrst-vwxz', 'LMNP QRST', 'BBBB-CCCC', 'nonsense', '1234-5678', 'ABCD-EFGH', '', 'XXXX-XXX'];
    for (const [i, code] of wrong.entries()) {
      const r = await enterCode({ jar, ip, csrf_token: csrf, user_code: code });
      assert.equal(r.status, 400, `entry ${i + 1} (${code}): ${r.body}`);
      assert.match(r.body, /That code is not valid/);
    }
    const eleventh = await enterCode({ jar, ip, csrf_token: csrf, user_code: d.user_code });
    assert.equal(eleventh.status, 429, eleventh.body);
    assert.match(eleventh.body, /Too many codes/);
    assert.ok(!isLoginPage(eleventh.body), 'no way forward while throttled');
    // Per address, not per browser: a fresh browser from the same address is throttled too.
    const fresh = await codeEntryPage();
    const again = await enterCode({ jar: fresh.jar, ip, csrf_token: fresh.csrf, user_code: d.user_code });
    assert.equal(again.status, 429, again.body);
    // Another address is not affected, and the code still works.
    const elsewhere = await enterCode({ jar, ip: `192.0.2.${10 + attempt}`, csrf_token: csrf, user_code: d.user_code });
    assert.equal(elsewhere.status, 200, elsewhere.body);
    assert.ok(isLoginPage(elsewhere.body), 'the right code from another address leads to the login page');
  });
});

test('the code entry form needs its csrf_token bound to the browser cookie (else a 400 error page)', async () => {
  const app = await newApp();
  const d = await startDevice(app);
  const ip = nextIp();
  const mine = await codeEntryPage();
  const theirs = await codeEntryPage();
  assert.notEqual(mine.csrf, theirs.csrf, 'the token is per browser');

  const refused = {
    'no csrf_token': await enterCode({ jar: mine.jar, ip, user_code: d.user_code }),
    'an empty csrf_token': await enterCode({ jar: mine.jar, ip, csrf_token: '', user_code: d.user_code }),
    "another browser's csrf_token": await enterCode({ jar: mine.jar, ip, csrf_token: theirs.csrf, user_code: d.user_code }),
    'the right csrf_token without the cookie': await enterCode({ ip, csrf_token: mine.csrf, user_code: d.user_code }),
  };
  for (const [what, r] of Object.entries(refused)) {
    assert.equal(r.status, 400, `${what}: ${r.body}`);
    assert.match(r.body, /error=invalid_request/, what);
    assert.match(decodeURIComponent(r.body), /CSRF/, what);
    assert.ok(!isLoginPage(r.body), what);
  }
  // The same entry with the browser's own token and cookie goes on to the login page.
  const ok = await enterCode({ jar: mine.jar, ip, csrf_token: mine.csrf, user_code: d.user_code });
  assert.equal(ok.status, 200, ok.body);
  assert.ok(isLoginPage(ok.body));
});

test('a code is answered once: consent pages left open are refused, and the approved code cannot be entered again', async () => {
  const app = await newApp();
  const alice = await newUser('alice');
  const mallory = await newUser('mallory');
  const d = await startDevice(app);

  // Three browsers reach the consent page for the same code; Alice answers first.
  const browsers = [await newPerson(), await newPerson(), await newPerson()];
  try {
    const open = (i, user) => reachConsent(browsers[i], { url: d.verification_uri_complete, userCode: d.user_code, user });
    const alicePage = await open(0, alice);
    const malloryPage = await open(1, mallory);
    const stalePage = await open(2, mallory);
    const first = await decide(alicePage, 'approve');
    assert.equal(first.status, 200);
    assert.match(first.text, /Device connected/);

    const second = await decide(malloryPage, 'approve');
    assert.equal(second.status, 400, second.text);
    assert.doesNotMatch(second.text, /Device connected/);
    assert.match(decodeURIComponent(second.text), /error=invalid_request.*answered already/);
    // Nor can the approval be turned into a denial from a page left open.
    const third = await decide(stalePage, 'deny');
    assert.equal(third.status, 400, third.text);
    assert.match(decodeURIComponent(third.text), /error=invalid_request.*answered already/);
  } finally {
    for (const b of browsers) await b.close();
  }

  // Entering the approved code again: the page says it is not valid.
  const { jar, csrf } = await codeEntryPage();
  const again = await enterCode({ jar, ip: nextIp(), csrf_token: csrf, user_code: d.user_code });
  assert.equal(again.status, 400, again.body);
  assert.match(again.body, /That code is not valid/);

  // The device gets Alice's tokens, not Mallory's.
  const r = await poll(app, d.device_code);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, identityUrl(alice));
});
