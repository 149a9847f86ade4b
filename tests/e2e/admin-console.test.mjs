// The operator console at /admin (www/admin, served as a static asset) end to end, in headless
// Chromium against the real worker. Each test starts its own worker.
// 1. an app created in the console (client_id and secret shown once, never again) used by the
//    demo SPA at / for a PKCE login of a user created in the console; the tokens work;
// 2. Settings: the user-agent flow switched off and saved; the demo's user-agent login refused;
// 3. Signing keys: rotation (pending → active), old tokens still verify and work, new ones carry
//    the new kid;
// 4. sign-in: a wrong token shows an error and no data; the token in sessionStorage, no cookie;
//    a 401 returns to the sign-in form; Sign out forgets the token;
// 5. registration tokens usable at /services/oauth2/register; the audit log with its filters;
// 6. a 375 px phone (no horizontal scroll) and the New app form with the keyboard alone;
// 7. the response headers of /admin (CSP, framing, no-store) and no inline script or style;
// 8. editing an app (policy fields, certificate file, asset tokens, rotate secret, delete) and
//    managing a user (pre-authorize, reset password, deactivate).
//
// Run alone: SHARDS=1 node --test --test-concurrency=1 tests/e2e/admin-console.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import { inlineScripts, launchChromium, userinfo } from './ua-helpers.mjs';
import { assertLoggedIn, bundleKit, demoFailed, logIn, text } from './bundle-helpers.mjs';

const TOKEN_KEY = 'edge-oauth-admin:token';
const DEMO_SCOPES = ['openid', 'profile', 'email', 'api', 'refresh_token'];
const NAV = ['Apps', 'Users', 'Settings', 'Signing keys', 'Registration tokens', 'Audit'];

let browser;
let tmp;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edge-oauth-console-'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs `fn(w, kit)` with a worker of its own (stopped afterwards) and the bundle fixtures. */
async function withWorker(options, fn) {
  const w = await startTestWorker(options);
  try {
    return await fn(w, bundleKit({ worker: () => w, browser: () => browser }));
  } finally {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
}

// --- Console helpers ----------------------------------------------------------------------------

const heading2 = (page, name) => page.getByRole('heading', { level: 2, name, exact: true });
const alertText = (page) => page.locator('#error').textContent();
const nav = (page) => page.getByRole('navigation', { name: 'Sections' });

/** Opens /admin in a new page of `context` and, unless `token` is null, signs in with it. */
async function openConsole(context, w, { token = w.adminToken } = {}) {
  const page = await context.newPage();
  await page.goto(`${w.baseUrl}/admin`);
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  if (token !== null) await signIn(page, token);
  return page;
}

async function signIn(page, token) {
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await heading2(page, 'Apps').waitFor();
  assert.equal(await nav(page).isVisible(), true);
}

/** Marks what the view shows now, so that a wait can tell it from what is drawn next. */
const markStale = (page) => page.evaluate(() => document.querySelector('#view > section')?.setAttribute('data-stale', ''));
const fresh = (page) => page.locator('#view > section:not([data-stale])');

/** Clicks (or taps) a section of the navigation and waits until that section is drawn anew. */
async function go(page, label, { tap = false } = {}) {
  await markStale(page);
  const link = nav(page).getByRole('link', { name: label, exact: true });
  await (tap ? link.tap() : link.click());
  await fresh(page).getByRole('heading', { level: 2, name: label, exact: true }).waitFor();
}

/** Creates a user on the Users page; returns its fields and user_id (read from the page). */
async function createUserInConsole(page, label) {
  const tag = randomUUID().slice(0, 8);
  const user = { username: `${label}.${tag}@example.com`, password: `pw-${randomUUID()}`, name: `${label} Tester ${tag}` };
  user.email = user.username;
  await go(page, 'Users');
  await page.getByRole('button', { name: 'New user', exact: true }).click();
  await heading2(page, 'New user').waitFor();
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Full name').fill(user.name);
  await page.getByRole('button', { name: 'Create user', exact: true }).click();
  await heading2(page, `User: ${user.username}`).waitFor();
  user.user_id = (await page.locator('dl.facts dd code').first().textContent()).trim();
  assert.match(user.user_id, /^005[A-Za-z0-9]{15}$/);
  return user;
}

/**
 * Creates an app on the Apps page (New app → form → Create); `publicClient` unticks the secret
 * for the web server flow. Returns {name, client_id, client_secret} as the page showed them once.
 */
async function createAppInConsole(page, { name, callbackUrls, scopes, publicClient = false }) {
  await go(page, 'Apps');
  await page.getByRole('button', { name: 'New app', exact: true }).click();
  await heading2(page, 'New app').waitFor();
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Callback URLs').fill(callbackUrls.join('\n'));
  await page.getByLabel('Scopes').fill(scopes.join('\n'));
  const secretBox = page.getByLabel('Secret required for the web server flow');
  assert.equal(await secretBox.isChecked(), true, 'the default: a secret is required');
  if (publicClient) await secretBox.uncheck();
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await heading2(page, `App created: ${name}`).waitFor();
  const client_id = (await page.locator('#shown-client-id').textContent()).trim();
  const client_secret = (await page.locator('#shown-client-secret').textContent()).trim();
  assert.match(client_id, /^3MVG9[A-Za-z0-9]{80}$/);
  assert.match(client_secret, /^[A-Za-z0-9]{64}$/);
  return { name, client_id, client_secret };
}

/** Demo login with PKCE for `app` in a page of `context`; returns the tokens the demo holds. */
async function demoTokens(kit, context, app, user) {
  const page = await kit.openDemo(context, app);
  await kit.demoLogin(page, user);
  const tokens = await page.evaluate(() => window.demo.client.tokens());
  assert.ok(tokens?.access_token && tokens.id_token, 'the demo holds an access token and an ID token');
  return { page, tokens };
}

async function introspect(w, app, token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

/** The signing keys table: [{kid, status}] as the page shows it. */
const keyRows = (page) => page.locator('tr[data-kid]').evaluateAll((rows) => rows.map((r) => ({
  kid: r.dataset.kid, status: r.querySelector('td.status').textContent, source: r.children[2].textContent,
})));

/** The audit table: [{kind, user, client}] as the page shows it. */
const auditRows = (page) => page.locator('tr[data-kind]').evaluateAll((rows) => rows.map((r) => ({
  kind: r.children[1].textContent, outcome: r.children[2].textContent, user: r.children[4].textContent, client: r.children[5].textContent,
})));

/**
 * No console error (a CSP violation is one), no uncaught exception, in the context's pages;
 * `expected` lists the API refusals a test provoked (Chromium logs each as a failed load).
 */
function assertNoProblems(context, expected = []) {
  const problems = context.problems.filter((p) => !expected.some((re) => re.test(p)));
  assert.deepEqual(problems, [], 'no console errors, CSP violations or exceptions');
}

// --- 1. App and user from the console, used by the demo SPA -------------------------------------


// The console drives the admin API; nothing it does depends on how many token shards there are,
// so the suite's SHARDS=4 run skips it (the API itself runs under both in admin.test.mjs).
const skip = process.env.SHARDS === '4' && 'runs once, with SHARDS=1';

test('1. New app and New user in the console; the demo SPA logs that user in with that client_id; the secret is shown once', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    const context = await kit.newContext();
    try {
      const page = await openConsole(context, w);
      const user = await createUserInConsole(page, 'console');
      const created = await createAppInConsole(page, {
        name: `Console SPA ${randomUUID().slice(0, 6)}`, callbackUrls: [`${w.baseUrl}/`], scopes: DEMO_SCOPES, publicClient: true,
      });

      // What the API stored is what the form said.
      const stored = await w.admin('GET', `/admin/apps/${created.client_id}`);
      assert.equal(stored.status, 200, stored.text);
      assert.equal(stored.json.name, created.name);
      assert.deepEqual(stored.json.callback_urls, [`${w.baseUrl}/`]);
      assert.deepEqual(stored.json.scopes, DEMO_SCOPES);
      assert.equal(stored.json.secret_required_web_server, false);
      assert.equal(stored.json.secret_required_refresh, true, 'untouched fields keep their defaults');
      assert.equal(stored.json.client_secret, undefined);
      const storedUser = await w.admin('GET', `/admin/users/${user.user_id}`);
      assert.equal(storedUser.json.username, user.username);
      assert.equal(storedUser.json.active, true);

      // The secret is shown nowhere again: not after a reload, not on the app's own page, not in storage.
      await page.reload();
      await heading2(page, 'Apps').waitFor();
      await page.getByRole('cell', { name: created.name, exact: true }).waitFor();
      const secretAnywhere = () => page.evaluate((s) => document.documentElement.outerHTML.includes(s)
        || Object.values(sessionStorage).some((v) => v.includes(s)) || Object.values(localStorage).some((v) => v.includes(s)), created.client_secret);
      assert.equal(await secretAnywhere(), false, 'the apps list does not show the secret');
      await page.getByRole('button', { name: `Edit ${created.name}`, exact: true }).click();
      await heading2(page, `App: ${created.name}`).waitFor();
      assert.equal(await page.locator('dl.facts code').first().textContent(), created.client_id);
      assert.equal(await secretAnywhere(), false, 'the app page does not show the secret');

      // The demo at / with that client_id: PKCE login of the console's user.
      const { page: demo, tokens } = await demoTokens(kit, context, created, user);
      await assertLoggedIn(demo, user);
      assert.equal(tokens.claims.aud, created.client_id);
      const ui = await userinfo(w.baseUrl, tokens.access_token);
      assert.equal(ui.status, 200, ui.text);
      assert.equal(ui.json.preferred_username, user.username);
      assert.equal(ui.json.email, user.email);
      assert.equal(ui.json.user_id, user.user_id);
      // The secret the console showed is the app's real secret.
      const intro = await introspect(w, created, tokens.access_token);
      assert.equal(intro.status, 200);
      assert.equal(intro.json.active, true);
      assert.equal(intro.json.client_id, created.client_id);
      assertNoProblems(context);
    } finally {
      await context.close();
    }
  });
});

// --- 2. Settings --------------------------------------------------------------------------------

test('2. Settings: the user-agent flow switched off and saved; the demo\'s user-agent login is refused; the setting persisted', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    const app = await kit.newApp();
    const context = await kit.newContext();
    try {
      const page = await openConsole(context, w);
      await go(page, 'Settings');
      const sw = page.getByLabel('Allow the user-agent flow');
      assert.equal(await sw.isChecked(), true, 'on by default');
      for (const label of ['Require PKCE for every code flow', 'Allow the username-password flow', 'Allow the code credentials (headless) flow', 'Open dynamic registration']) {
        assert.equal(await page.getByLabel(label).getAttribute('type'), 'checkbox', `${label} is a labelled checkbox`);
      }
      await sw.uncheck();
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.locator('#notice').filter({ hasText: 'Saved allow_user_agent_flow' }).waitFor();
      assert.equal(await alertText(page), '');

      const settings = await w.admin('GET', '/admin/settings');
      assert.equal(settings.json.allow_user_agent_flow, false, 'persisted');
      assert.equal(settings.json.require_pkce, false, 'the other switches are unchanged');
      await page.reload();
      await heading2(page, 'Settings').waitFor();
      assert.equal(await page.getByLabel('Allow the user-agent flow').isChecked(), false, 'the page shows the saved value');

      const demo = await kit.openDemo(context, app);
      await demo.getByRole('button', { name: 'Log in with the user-agent flow', exact: true }).click();
      await demoFailed(demo);
      const error = await text(demo, '#error');
      assert.match(error, /^unsupported_response_type: .*allow_user_agent_flow/, error);
      assert.equal(await text(demo, '#who'), 'Not logged in.');
      assert.equal(kit.authorizeRequests(context).length, 1);
      assert.equal(new URL(kit.authorizeRequests(context)[0].url()).searchParams.get('response_type'), 'token id_token');
    } finally {
      await context.close();
    }
  });
});

// --- 3. Signing keys ----------------------------------------------------------------------------

test('3. Signing keys: Rotate signing key → pending, then active; old tokens still verify and work; new tokens carry the new kid', { skip }, async () => {
  await withWorker({ vars: { JWKS_MAX_AGE_S: '2' } }, async (w, kit) => {
    const app = await kit.newApp();
    const user = await kit.newUser('keys');
    const context = await kit.newContext();
    try {
      const { tokens: oldTokens } = await demoTokens(kit, context, app, user);
      const oldKid = decodeProtectedHeader(oldTokens.id_token).kid;
      assert.ok(oldKid);

      const page = await openConsole(context, w);
      await go(page, 'Signing keys');
      assert.equal(await alertText(page), '', 'the keys load');
      const before = await keyRows(page);
      assert.deepEqual(before.filter((k) => k.status === 'active').map((k) => k.kid), [oldKid], 'the key that signed is the active one');

      await page.getByRole('button', { name: 'Rotate signing key', exact: true }).click();
      await page.locator('#notice').filter({ hasText: 'is published' }).waitFor();
      const rotated = await keyRows(page);
      const fresh = rotated.filter((k) => !before.some((b) => b.kid === k.kid));
      assert.equal(fresh.length, 1, `one new key: ${JSON.stringify(rotated)}`);
      const newKid = fresh[0].kid;
      assert.equal(fresh[0].status, 'pending');
      assert.equal(fresh[0].source, 'managed');
      assert.equal(rotated.find((k) => k.kid === oldKid).status, 'active', 'the old key signs until the new one is due');
      const api = await w.admin('GET', '/admin/keys');
      assert.equal(api.json.jwks_max_age_s, 2);
      const pending = api.json.keys.find((k) => k.kid === newKid);
      assert.ok(pending.activates_at >= pending.created_at + 2, JSON.stringify(pending));
      const published = await (await fetch(`${w.baseUrl}/id/keys`)).json();
      assert.ok(published.keys.some((k) => k.kid === newKid), 'the pending key is published before it signs');

      // One JWKS cache lifetime later the new key signs.
      await new Promise((r) => setTimeout(r, Math.max(0, pending.activates_at * 1000 - Date.now()) + 1000));
      await page.reload();
      await heading2(page, 'Signing keys').waitFor();
      const after = await keyRows(page);
      assert.equal(after.find((k) => k.kid === newKid)?.status, 'active', JSON.stringify(after));
      assert.ok(['retired', 'published'].includes(after.find((k) => k.kid === oldKid)?.status), JSON.stringify(after));
      assert.equal(after.filter((k) => k.status === 'active').length, 1);

      // Old tokens: the ID token verifies against the published keys, the access token works.
      const jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
      const { payload } = await jwtVerify(oldTokens.id_token, jwks, { issuer: w.baseUrl, audience: app.client_id });
      assert.equal(payload.email, user.email);
      assert.equal((await userinfo(w.baseUrl, oldTokens.access_token)).status, 200);

      // A new login is signed with the new key (the user approved the app before: no consent
      // page this time).
      const context2 = await kit.newContext();
      try {
        const page2 = await kit.openDemo(context2, app);
        await page2.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
        await page2.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
        await logIn(page2, user);
        await kit.backAtDemo(page2);
        const newTokens = await page2.evaluate(() => window.demo.client.tokens());
        assert.equal(decodeProtectedHeader(newTokens.id_token).kid, newKid);
        await jwtVerify(newTokens.id_token, createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`)), { issuer: w.baseUrl, audience: app.client_id });
        assert.equal((await userinfo(w.baseUrl, newTokens.access_token)).status, 200);
      } finally {
        await context2.close();
      }
      assertNoProblems(context);
    } finally {
      await context.close();
    }
  });
});

// --- 4. Sign-in -------------------------------------------------------------------------------

test('4. Sign-in: a wrong token shows the error and no data; the token lives in sessionStorage, never a cookie; a 401 and Sign out return to the form', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    // A name with markup: the console shows it as text.
    const app = await kit.newApp({ name: `<img src=x onerror="window.pwned=1"><b>Name</b> ${randomUUID().slice(0, 6)}` });
    const context = await kit.newContext();
    const apiRequests = [];
    context.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/admin/') && r.resourceType() === 'fetch') apiRequests.push(r); });
    try {
      const page = await openConsole(context, w, { token: null });
      assert.equal(await nav(page).isVisible(), false, 'no navigation before sign-in');

      await page.getByLabel('Admin token').fill(`${w.adminToken}x`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
      assert.match(await alertText(page), /^Sign-in failed: the admin token was refused/);
      assert.equal(await nav(page).isVisible(), false);
      assert.equal(await page.locator('#view').isVisible(), false);
      assert.equal(await page.locator('#view').innerHTML(), '', 'no API data in the page');
      assert.ok(!(await page.locator('body').innerText()).includes(app.name));
      assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, 'a refused token is not kept');

      await signIn(page, w.adminToken);
      await page.getByRole('cell', { name: app.name, exact: true }).waitFor();
      assert.equal(await page.locator('#view img, #view b').count(), 0, 'data is never parsed as HTML');
      assert.equal(await page.evaluate(() => window.pwned), undefined);
      assert.equal(await alertText(page), '', 'the old error is gone');
      const storage = await page.evaluate((k) => ({ session: sessionStorage.getItem(k), local: localStorage.length, cookie: document.cookie }), TOKEN_KEY);
      assert.deepEqual(storage, { session: w.adminToken, local: 0, cookie: '' });
      assert.deepEqual(await context.cookies(w.baseUrl), [], 'no cookie for the console');
      const listed = apiRequests.find((r) => new URL(r.url()).pathname === '/admin/apps');
      assert.equal((await listed.allHeaders()).authorization, `Bearer ${w.adminToken}`);

      // The origin's other cookies (e.g. a login session) are not sent with admin requests.
      await context.addCookies([{ name: 'eo_sid', value: 'not-for-the-admin-api', url: w.baseUrl }]);
      await go(page, 'Users');
      const users = apiRequests.findLast((r) => new URL(r.url()).pathname === '/admin/users');
      assert.equal((await users.allHeaders()).cookie, undefined, 'credentials are omitted');
      await context.clearCookies();

      // A reload keeps the tab signed in; another tab is not (sessionStorage is per tab).
      await page.reload();
      await heading2(page, 'Users').waitFor();
      const other = await openConsole(context, w, { token: null });
      assert.equal(await nav(other).isVisible(), false);
      await other.close();

      // A 401 later (the token no longer accepted) returns to the sign-in form with the reason.
      await page.evaluate((k) => sessionStorage.setItem(k, 'no-longer-valid'), TOKEN_KEY);
      await nav(page).getByRole('link', { name: 'Apps', exact: true }).click();
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      assert.match(await alertText(page), /^Signed out: the admin token was refused/);
      assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
      assert.equal(await nav(page).isVisible(), false);

      // Sign out.
      await signIn(page, w.adminToken);
      await nav(page).getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, 'Sign out forgets the token');
      assert.equal(await page.locator('#view').innerHTML(), '');
      assert.ok(!(await page.locator('body').innerText()).includes(app.name), 'no API data left in the page');
      await page.reload();
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      assert.equal(await nav(page).isVisible(), false, 'still signed out after a reload');
      assert.deepEqual(await context.cookies(w.baseUrl), []);
      assertNoProblems(context, [/status of 401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/admin\/(settings|apps)\)$/]);
    } finally {
      await context.close();
    }
  });
});

// --- 5. Registration tokens and audit -----------------------------------------------------------

test('5. Registration tokens: one created in the console registers a client once; Audit lists admin and login events and filters by user and client', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    const context = await kit.newContext();
    try {
      const page = await openConsole(context, w);
      await go(page, 'Registration tokens');
      await page.getByLabel('Expires in (seconds)').fill('3600');
      await page.getByLabel('Maximum uses').fill('1');
      await page.getByRole('button', { name: 'Create token', exact: true }).click();
      const shown = page.locator('#shown-registration-token');
      await shown.waitFor();
      const token = (await shown.textContent()).trim();
      assert.ok(token.length >= 43, token);
      const register = (bearer) => fetch(`${w.baseUrl}/services/oauth2/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Registered through a console token', redirect_uris: ['https://app.example.com/cb'] }),
      });
      const first = await register(token);
      assert.equal(first.status, 201, await first.clone().text());
      const registered = await first.json();
      assert.ok(registered.client_id && registered.registration_access_token);
      const second = await register(token);
      assert.equal(second.status, 401, 'max_uses 1: used up');

      // An app created in the console (admin event) and a login with it (login event).
      const user = await kit.newUser('audit');
      const app = await createAppInConsole(page, {
        name: `Audited ${randomUUID().slice(0, 6)}`, callbackUrls: [`${w.baseUrl}/`], scopes: DEMO_SCOPES, publicClient: true,
      });
      const other = await kit.newApp();
      await demoTokens(kit, context, app, user);

      await go(page, 'Audit');
      assert.equal(await alertText(page), '', 'the audit log loads');
      const all = await auditRows(page);
      const kinds = new Set(all.map((e) => e.kind));
      assert.ok(kinds.has('admin') && kinds.has('login'), `kinds shown: ${[...kinds]}`);

      /** Filter, and wait until the view is drawn again with the answer to that query. */
      const filtered = async (param, value) => {
        await markStale(page);
        await Promise.all([
          page.waitForResponse((r) => r.url().includes('/admin/audit?') && new URL(r.url()).searchParams.get(param) === value),
          page.getByRole('button', { name: 'Filter', exact: true }).click(),
        ]);
        await fresh(page).waitFor();
      };
      await page.getByLabel('User ID').fill(user.user_id);
      await filtered('user', user.user_id);
      const byUser = await auditRows(page);
      assert.ok(byUser.length > 0 && byUser.some((e) => e.kind === 'login'), JSON.stringify(byUser));
      assert.ok(byUser.every((e) => e.user === user.user_id));
      assert.equal(await page.getByLabel('User ID').inputValue(), user.user_id, 'the filter stays filled in');

      await page.getByLabel('User ID').fill('');
      await page.getByLabel('Client ID').fill(app.client_id);
      await filtered('client', app.client_id);
      const byClient = await auditRows(page);
      assert.ok(byClient.length > 0 && byClient.every((e) => e.client === app.client_id), JSON.stringify(byClient));
      assert.ok(!byClient.some((e) => e.client === other.client_id));

      await page.getByLabel('Client ID').fill('');
      await page.getByLabel('Kind').selectOption('admin');
      await filtered('kind', 'admin');
      const admins = await auditRows(page);
      assert.ok(admins.length > 0 && admins.every((e) => e.kind === 'admin'), JSON.stringify(admins));
      assertNoProblems(context);
    } finally {
      await context.close();
    }
  });
});

// --- 6. Phone and keyboard ----------------------------------------------------------------------

test('6. a 375x740 phone: navigation and forms without horizontal scroll; New app completed with the keyboard alone', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    await kit.newApp(); // a row with a long client_id in the apps table
    const context = await kit.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
      const page = await context.newPage();
      await page.goto(`${w.baseUrl}/admin`);
      const noScroll = async (where) => {
        const m = await page.evaluate(() => ({ inner: window.innerWidth, scroll: document.documentElement.scrollWidth }));
        assert.equal(m.inner, 375, 'the viewport meta makes the layout 375 px wide');
        assert.ok(m.scroll <= 375, `${where}: scrollWidth ${m.scroll} > 375`);
      };
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      await noScroll('sign-in');

      // Sign in with the keyboard: the token field has the focus.
      assert.equal(await page.evaluate(() => document.activeElement.id), 'admin-token');
      await page.keyboard.type(w.adminToken);
      await page.keyboard.press('Enter');
      await heading2(page, 'Apps').waitFor();

      for (const label of NAV) {
        const link = nav(page).getByRole('link', { name: label, exact: true });
        const box = await link.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${label} fits the screen: ${JSON.stringify(box)}`);
        assert.ok(box.height >= 40, `${label} is a usable tap target (${box.height} px)`);
        await go(page, label, { tap: true });
        assert.equal(await alertText(page), '', `${label} loads`);
        await noScroll(label);
      }
      await go(page, 'Users');
      await page.getByRole('button', { name: 'New user', exact: true }).tap();
      await heading2(page, 'New user').waitFor();
      await noScroll('New user');

      // New app with the keyboard alone, from the navigation.
      await go(page, 'Settings');
      const focused = () => page.evaluate(() => {
        const e = document.activeElement;
        return { tag: e.tagName, type: e.type, label: (e.labels?.[0]?.textContent ?? e.getAttribute('aria-label') ?? e.textContent).trim(), outline: getComputedStyle(e).outlineStyle };
      });
      const tabTo = async (label, { max = 60, back = false } = {}) => {
        for (let i = 0; i < max; i++) {
          await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
          const f = await focused();
          if (f.label === label) return f;
        }
        assert.fail(`Tab never reached ${label}`);
      };
      const appsLink = await tabTo('Apps', { back: true });
      assert.equal(appsLink.tag, 'A');
      assert.notEqual(appsLink.outline, 'none', 'focus is visible');
      await page.keyboard.press('Enter');
      await heading2(page, 'Apps').waitFor();
      assert.equal((await focused()).tag, 'H2', 'the view\'s heading takes the focus');
      await tabTo('New app');
      await page.keyboard.press('Enter');
      await heading2(page, 'New app').waitFor();
      await noScroll('New app form');
      const name = `Keyboard app ${randomUUID().slice(0, 6)}`;
      await tabTo('Name');
      await page.keyboard.type(name);
      await tabTo('Callback URLs');
      await page.keyboard.type('https://kb.example.com/cb');
      await page.keyboard.press('Enter');
      await page.keyboard.type('http://localhost:8080/cb');
      await tabTo('Scopes');
      await page.keyboard.type('openid');
      await page.keyboard.press('Enter');
      await page.keyboard.type('api');
      const pkce = await tabTo('PKCE required');
      assert.equal(pkce.type, 'checkbox');
      await page.keyboard.press('Space');
      await tabTo('Secret required for the web server flow');
      await page.keyboard.press('Space');
      await tabTo('Permitted users');
      await page.keyboard.press('ArrowDown'); // a closed select changes with the arrow keys
      const create = await tabTo('Create');
      assert.equal(create.tag, 'BUTTON');
      assert.notEqual(create.outline, 'none', 'focus is visible');
      await page.keyboard.press('Space');
      await heading2(page, `App created: ${name}`).waitFor();
      await noScroll('app created');
      const clientId = (await page.locator('#shown-client-id').textContent()).trim();
      const stored = await w.admin('GET', `/admin/apps/${clientId}`);
      assert.equal(stored.status, 200, stored.text);
      assert.equal(stored.json.name, name);
      assert.deepEqual(stored.json.callback_urls, ['https://kb.example.com/cb', 'http://localhost:8080/cb']);
      assert.deepEqual(stored.json.scopes, ['openid', 'api']);
      assert.equal(stored.json.pkce_required, true);
      assert.equal(stored.json.secret_required_web_server, false);
      assert.equal(stored.json.permitted_users, 'admin_approved');

      // The edit form of that app on the phone.
      await go(page, 'Apps');
      await page.getByRole('button', { name: `Edit ${name}`, exact: true }).tap();
      await heading2(page, `App: ${name}`).waitFor();
      await noScroll('edit app');
      assertNoProblems(context);
    } finally {
      await context.close();
    }
  });
});

// --- 7. Headers ---------------------------------------------------------------------------------

test('7. /admin: CSP with frame-ancestors \'none\', X-Frame-Options DENY, no-store, no referrer; no inline script or style; the API still reaches the worker', { skip }, async () => {
  await withWorker({}, async (w) => {
    const r = await fetch(`${w.baseUrl}/admin`, { redirect: 'manual' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    const csp = r.headers.get('content-security-policy');
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
    assert.equal(directives['frame-ancestors'], "'none'");
    assert.equal(directives['default-src'], "'none'");
    assert.equal(directives['script-src'], "'self'");
    assert.equal(directives['connect-src'], "'self'");
    assert.equal(directives['style-src'], "'self'");
    assert.equal(directives['form-action'], "'none'");
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|,/, 'one policy, no unsafe sources');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.match(r.headers.get('cache-control'), /(^|,\s*)no-store(,|$)/);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const html = await r.text();
    assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.deepEqual(inlineScripts(html), [], 'no inline script');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler');
    assert.match(html, /<script type="module" src="\/admin\/admin.js"><\/script>/);

    // The other spellings lead to /admin; the script is served; the API is still the worker's.
    for (const p of ['/admin/', '/admin.html']) {
      const red = await fetch(`${w.baseUrl}${p}`, { redirect: 'manual' });
      assert.equal(red.status, 307, p);
      assert.equal(red.headers.get('location'), '/admin', p);
    }
    const js = await fetch(`${w.baseUrl}/admin/admin.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /javascript/);
    const css = await fetch(`${w.baseUrl}/admin/admin.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type'), /^text\/css/);
    const api = await fetch(`${w.baseUrl}/admin/apps`);
    assert.equal(api.status, 401);
    assert.equal((await api.json()).error, 'unauthorized');
    assert.match(api.headers.get('cache-control'), /no-store/);
  });
});

// --- 8. Edit app, manage user -------------------------------------------------------------------

test('8. Edit app: policy fields, certificate from a PEM file, asset tokens JSON, an API error shown; Rotate secret; delete. Users: pre-authorize, reset password, deactivate', { skip }, async () => {
  await withWorker({}, async (w, kit) => {
    const context = await kit.newContext();
    try {
      const page = await openConsole(context, w);
      const app = await createAppInConsole(page, { name: `Editable ${randomUUID().slice(0, 6)}`, callbackUrls: ['https://edit.example.com/cb'], scopes: ['api'] });
      await page.getByRole('button', { name: 'Edit app', exact: true }).click();
      await heading2(page, `App: ${app.name}`).waitFor();

      // A refused change: the server's description in the alert, nothing stored.
      await page.getByLabel('Secret required for the refresh token flow').uncheck();
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'rotate_refresh_tokens' }).waitFor();
      assert.equal((await w.admin('GET', `/admin/apps/${app.client_id}`)).json.secret_required_refresh, true);

      const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).trim();
      const pemFile = join(tmp, 'client.pem');
      writeFileSync(pemFile, `${pem}\n`);
      const assetTokens = { audiences: ['https://assets.example.com'], ttl_s: 600 };
      await page.getByLabel('Rotate refresh tokens').check();
      await page.getByLabel('Refresh token reuse grace (seconds)').fill('5');
      await page.getByLabel('Policy', { exact: true }).selectOption('inactivity_s');
      await page.getByLabel('Seconds', { exact: true }).fill('3600');
      await page.getByLabel('Permitted users').selectOption('admin_approved');
      await page.getByLabel('Access token lifetime (seconds)').fill('600');
      await page.getByLabel('ID token lifetime (seconds)').fill('300');
      await page.getByLabel('JWT access tokens').check();
      await page.getByLabel('Enable for device flow').uncheck();
      await page.getByLabel('May introspect every client\'s tokens').check();
      await page.getByLabel('PKCE required').check();
      await page.getByLabel('Client credentials run-as user').fill('robot@example.com');
      await page.getByLabel('Allowed origins (CORS)').fill('https://edit.example.com\nhttps://other.example.com');
      await page.getByLabel('Load a PEM file').setInputFiles(pemFile);
      await page.waitForFunction((v) => [...document.querySelectorAll('textarea')].some((t) => t.value === v), pem);
      await page.getByLabel('Asset tokens (JSON)').fill(JSON.stringify(assetTokens));
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.locator('#notice').filter({ hasText: /^Saved / }).waitFor();
      assert.equal(await alertText(page), '');
      const saved = (await w.admin('GET', `/admin/apps/${app.client_id}`)).json;
      assert.deepEqual({
        secret_required_refresh: saved.secret_required_refresh, rotate_refresh_tokens: saved.rotate_refresh_tokens,
        refresh_reuse_grace_s: saved.refresh_reuse_grace_s, refresh_token_policy: saved.refresh_token_policy,
        permitted_users: saved.permitted_users, access_token_ttl_s: saved.access_token_ttl_s, id_token_ttl_s: saved.id_token_ttl_s,
        jwt_access_tokens: saved.jwt_access_tokens, device_flow: saved.device_flow, introspect_all_tokens: saved.introspect_all_tokens,
        pkce_required: saved.pkce_required, client_credentials_user: saved.client_credentials_user,
        allowed_origins: saved.allowed_origins, certificate: saved.certificate?.trim(),
      }, {
        secret_required_refresh: false, rotate_refresh_tokens: true, refresh_reuse_grace_s: 5, refresh_token_policy: { inactivity_s: 3600 },
        permitted_users: 'admin_approved', access_token_ttl_s: 600, id_token_ttl_s: 300, jwt_access_tokens: true, device_flow: false,
        introspect_all_tokens: true, pkce_required: true, client_credentials_user: 'robot@example.com',
        allowed_origins: ['https://edit.example.com', 'https://other.example.com'], certificate: pem,
      });
      assert.deepEqual(saved.asset_tokens.audiences, assetTokens.audiences);
      assert.equal(saved.asset_tokens.ttl_s, assetTokens.ttl_s);

      // The form shows what was stored; clearing the optional fields stores null.
      await page.reload();
      await page.getByRole('button', { name: `Edit ${app.name}`, exact: true }).click();
      await heading2(page, `App: ${app.name}`).waitFor();
      assert.equal(await page.getByLabel('Policy', { exact: true }).inputValue(), 'inactivity_s');
      assert.equal(await page.getByLabel('Seconds', { exact: true }).inputValue(), '3600');
      assert.equal(await page.getByLabel('Permitted users').inputValue(), 'admin_approved');
      assert.equal(await page.getByLabel('Enable for device flow').isChecked(), false);
      await page.getByLabel('Certificate or public key').fill('');
      await page.getByLabel('Asset tokens (JSON)').fill('');
      await page.getByLabel('Client credentials run-as user').fill('');
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.locator('#notice').filter({ hasText: 'Saved client_credentials_user, certificate, asset_tokens' }).waitFor();
      const cleared = (await w.admin('GET', `/admin/apps/${app.client_id}`)).json;
      assert.deepEqual([cleared.certificate, cleared.asset_tokens, cleared.client_credentials_user], [null, null, null]);
      assert.equal(cleared.refresh_reuse_grace_s, 5, 'fields not changed are not sent');

      // Bad JSON is caught in the page.
      await page.getByLabel('Asset tokens (JSON)').fill('{"audiences": [');
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'Asset tokens (JSON): not valid JSON' }).waitFor();
      await page.getByLabel('Asset tokens (JSON)').fill('');

      // Rotate secret: a new one shown once; the old one stops working.
      const user = await createUserInConsole(page, 'managed');
      page.on('dialog', (d) => d.accept());
      await go(page, 'Apps');
      await page.getByRole('button', { name: `Edit ${app.name}`, exact: true }).click();
      await page.getByRole('button', { name: 'Rotate secret', exact: true }).click();
      await heading2(page, `New secret for ${app.name}`).waitFor();
      const newSecret = (await page.locator('#shown-client-secret').textContent()).trim();
      assert.match(newSecret, /^[A-Za-z0-9]{64}$/);
      assert.notEqual(newSecret, app.client_secret);
      const cc = (secret) => fetch(`${w.baseUrl}/services/oauth2/introspect`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.client_id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: 'nothing' }),
      }).then((r) => r.status);
      assert.equal(await cc(newSecret), 200, 'the new secret authenticates the client');
      assert.equal(await cc(app.client_secret), 401, 'the old secret no longer does');

      // Users: pre-authorize for the app, reset the password, deactivate.
      await go(page, 'Users');
      await page.getByRole('button', { name: `Manage ${user.username}`, exact: true }).click();
      await heading2(page, `User: ${user.username}`).waitFor();
      await page.getByLabel('App', { exact: true }).selectOption(app.client_id);
      await page.getByRole('button', { name: 'Pre-authorize', exact: true }).click();
      await page.locator('#notice').filter({ hasText: 'is pre-authorized' }).waitFor();
      /** A code-flow login to the app in a fresh page: where the browser ends (the app's callback, or the login page). */
      const login = async (password) => {
        const p = await context.newPage();
        try {
          await p.route('https://edit.example.com/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'callback' }));
          await p.goto(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({
            response_type: 'code', client_id: app.client_id, redirect_uri: 'https://edit.example.com/cb',
            code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
          })}`);
          await p.locator('#username').fill(user.username);
          await p.locator('#password').fill(password);
          await p.locator('button[name="login"]').click();
          const atApp = p.waitForURL((u) => u.hostname === 'edit.example.com');
          const refused = p.locator('p.error[role="alert"]').filter({ hasText: /./ }).waitFor();
          atApp.catch(() => {});
          refused.catch(() => {});
          await Promise.race([atApp, refused]);
          return new URL(p.url());
        } finally {
          await p.close();
          await context.clearCookies();
        }
      };
      const ok = await login(user.password);
      assert.equal(ok.hostname, 'edit.example.com', `an admin-approved app lets a pre-authorized user in without consent: ${ok}`);
      assert.ok(ok.searchParams.get('code'));

      const newPassword = `pw-${randomUUID()}`;
      await page.getByLabel('New password').fill(newPassword);
      await page.getByRole('button', { name: 'Reset password', exact: true }).click();
      await page.locator('#notice').filter({ hasText: 'reset' }).waitFor();
      assert.equal((await login(user.password)).hostname, '127.0.0.1', 'the old password no longer logs in');
      assert.equal((await login(newPassword)).hostname, 'edit.example.com', 'the new one does');

      await page.getByRole('button', { name: 'Deactivate', exact: true }).click();
      await page.getByRole('button', { name: 'Reactivate', exact: true }).waitFor();
      assert.equal((await w.admin('GET', `/admin/users/${user.user_id}`)).json.active, false);

      // Delete the app.
      await go(page, 'Apps');
      await page.getByRole('button', { name: `Edit ${app.name}`, exact: true }).click();
      await page.getByRole('button', { name: 'Delete app', exact: true }).click();
      await page.locator('#notice').filter({ hasText: `Deleted ${app.name}.` }).waitFor();
      await heading2(page, 'Apps').waitFor();
      assert.equal((await w.admin('GET', `/admin/apps/${app.client_id}`)).status, 404);
      assertNoProblems(context, [
        /status of 400 \(Bad Request\) \(http:\/\/127\.0\.0\.1:\d+\/admin\/apps\/[^/]+\)$/, // the refused PATCH
        /status of 401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/services\/oauth2\/authorize\)$/, // the old password
      ]);
    } finally {
      await context.close();
    }
  });
});
