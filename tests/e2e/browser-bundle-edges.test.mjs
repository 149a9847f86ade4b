// The browser bundle (issue 11) at its edges, in headless Chromium against the real worker and
// the demo single-page app at `/`:
// - "Deny" on the consent page: back at `/` with access_denied shown, nothing stored, the answer
//   gone from the address bar;
// - forged callbacks (no login pending in the tab; a state that is not the pending one):
//   invalid_state, no token request, the address bar cleaned;
// - logging out in one tab logs the other tab out without a reload (local storage:
//   BroadcastChannel and the `tokens` event);
// - `refreshSkew`: a skew longer than the access token's lifetime makes the token due at once
//   (exactly one refresh request); the default skew makes none;
// - the popup login refused: a blocked popup (popup_blocked) and a popup closed by the user
//   (popup_closed);
// - a wrong password on the login page of a user-agent flow started from the demo: the login page
//   again with an alert, the demo not logged in.
//
// Run alone: node --test --test-concurrency=1 tests/e2e/browser-bundle-edges.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './ua-helpers.mjs';
import { startTestWorker } from './harness.mjs';
import {
  DEMO_SCOPE, addPopupButton, assertLoggedIn, assertNoTokens, assertNothingStored, browserState, bundleKit,
  demoFailed, demoLoggedInOrFailed, demoSettled, logIn, storageKey, text,
} from './bundle-helpers.mjs';

let w;
let browser;

before(async () => {
  w = await startTestWorker();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
});

// --- Fixtures (in bundle-helpers.mjs) ----------------------------------------------------------

const {
  newApp, newUser, newContext, allTokenRequests, tokenRequests, authorizeRequests, consentPosts, openDemo, atDemo,
  demoLogin, assertCleanUrl,
} = bundleKit({ worker: () => w, browser: () => browser });

// --- 1. Deny --------------------------------------------------------------------------------------

test('1. Deny on the consent page (demo, PKCE): back at / with access_denied shown, nothing stored, no code/error/state left in the URL', async () => {
  const app = await newApp();
  const user = await newUser('deny');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    const sent = new URL(page.url()).searchParams;
    assert.ok((await browserState(page, app)).pending, 'a login is pending in this tab');
    await logIn(page, user);
    await page.getByRole('button', { name: 'Deny', exact: true }).click();
    await page.waitForURL(atDemo);
    await demoFailed(page);

    // The server answered the redirect URI with access_denied and the login's state.
    const [deny] = consentPosts(context, 'deny');
    assert.ok(deny, 'the Deny button was posted');
    assert.equal(consentPosts(context, 'approve').length, 0);
    const location = new URL((await deny.response()).headers().location);
    assert.equal(`${location.origin}${location.pathname}`, `${w.baseUrl}/`);
    assert.equal(location.searchParams.get('error'), 'access_denied');
    assert.equal(location.searchParams.get('state'), sent.get('state'));
    assert.equal(location.searchParams.get('code'), null);
    const description = location.searchParams.get('error_description');
    assert.ok(description, 'the answer has an error_description');

    assert.equal(await text(page, '#error'), `access_denied: ${description}`);
    assert.equal(await page.locator('#error').getAttribute('role'), 'alert');
    assertCleanUrl(page);
    await assertNothingStored(page, app);
    assert.equal(await page.locator('#pkce').isEnabled(), true, 'the user can try again');
    assert.equal(allTokenRequests(context).length, 0, 'no token request');
    assert.deepEqual(context.problems, []);
  } finally {
    await context.close();
  }
});

// --- 2. Forged callbacks --------------------------------------------------------------------------

test('2a. a forged callback in a fresh tab (no login pending): invalid_state, no token request, the URL cleaned', async () => {
  const app = await newApp();
  const context = await newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${w.baseUrl}/?${new URLSearchParams({ client_id: app.client_id, code: 'abc', state: 'xyz' })}`);
    await demoSettled(page);
    await demoFailed(page);

    assert.match(await text(page, '#error'), /^invalid_state: \S/);
    assertCleanUrl(page);
    await assertNothingStored(page, app);
    assert.equal(allTokenRequests(context).length, 0, 'the forged code was never sent to the token endpoint');
  } finally {
    await context.close();
  }
});

test('2b. a callback whose state is not the pending login\'s: invalid_state, no token request, the pending login dropped, the URL cleaned', async () => {
  const app = await newApp();
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    const state = new URL(page.url()).searchParams.get('state');
    assert.ok(state);
    const pending = JSON.parse((await browserState(page, app)).pending);
    assert.equal(pending.state, state, 'the pending login is the one at the server');

    const other = `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`;
    assert.notEqual(other, state);
    await page.goto(`${w.baseUrl}/?${new URLSearchParams({ code: 'abc', state: other })}`);
    await demoSettled(page);
    await demoFailed(page);

    assert.match(await text(page, '#error'), /^invalid_state: \S/);
    assertCleanUrl(page);
    await assertNothingStored(page, app); // includes: the pending login is gone
    assert.equal(allTokenRequests(context).length, 0, 'no token request');
  } finally {
    await context.close();
  }
});

// --- 3. Logout across tabs ------------------------------------------------------------------------

test('3. logout in one tab (storage=local) logs the other tab out without a reload: tokens() null, "Not logged in.", localStorage key removed', async () => {
  const app = await newApp();
  const user = await newUser('tablogout');
  const context = await newContext();
  try {
    const a = await openDemo(context, app, { storage: 'local' });
    await demoLogin(a, user);
    const { access_token: at } = (await browserState(a, app)).tokens;
    assert.equal(JSON.parse((await browserState(a, app)).local).access_token, at, 'kept in localStorage');

    const b = await openDemo(context, app, { storage: 'local' });
    await demoLoggedInOrFailed(b);
    await assertLoggedIn(b, user);
    assert.equal((await browserState(b, app)).tokens.access_token, at);

    // B: a marker that a reload would lose, its navigations, and what its client tells the app.
    let bNavigations = 0;
    b.on('framenavigated', (f) => { if (f === b.mainFrame()) bNavigations++; });
    await b.evaluate(() => {
      window.notReloaded = true;
      window.seenTokens = [];
      window.demo.client.addEventListener('tokens', (e) => window.seenTokens.push(e.detail));
    });

    await a.getByRole('button', { name: 'Log out', exact: true }).click();
    await a.waitForFunction(() => document.getElementById('who').textContent === 'Not logged in.');
    await assertNothingStored(a, app);

    // B hears of it (BroadcastChannel → tokens event → render), without a reload.
    await b.waitForFunction(() => document.getElementById('who').textContent === 'Not logged in.');
    assert.equal(await b.evaluate(() => window.notReloaded), true, 'tab B was not reloaded');
    assert.equal(bNavigations, 0, 'tab B did not navigate');
    assert.deepEqual(await b.evaluate(() => window.seenTokens), [null], 'tab B got one tokens event, with null');
    assert.equal(await b.evaluate(() => window.demo.client.tokens()), null);
    assert.equal(await b.evaluate((k) => localStorage.getItem(k), storageKey(app)), null, 'the localStorage key is removed');
    assert.equal(await text(b, '#status'), 'Demo single-page app');
    assert.equal(await b.locator('#logout').isDisabled(), true);
    assert.equal(await b.locator('#pkce').isEnabled(), true);
    assert.equal(await text(b, '#error'), '');

    // Only tab A talked to the revocation endpoint.
    const revokes = context.requests.filter((r) => r.method() === 'POST' && r.url() === `${w.baseUrl}/services/oauth2/revoke`);
    assert.equal(revokes.length, 2, 'refresh token and access token revoked once');
    assert.ok(revokes.every((r) => r.frame().page() === a));
  } finally {
    await context.close();
  }
});

// --- 4. refreshSkew -------------------------------------------------------------------------------

test('4. refreshSkew: a skew longer than the access token lifetime makes getAccessToken() refresh once; the default skew refreshes nothing', async () => {
  const TTL = 3600;
  const app = await newApp({ access_token_ttl_s: TTL });
  const user = await newUser('skew');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await demoLogin(page, user);
    const [code] = tokenRequests(context, 'authorization_code');
    assert.equal((await (await code.response()).json()).expires_in, TTL, 'the app\'s access token lifetime applies');
    const old = (await browserState(page, app)).tokens;
    assert.ok(old.access_token && old.refresh_token);
    assert.equal(tokenRequests(context, 'refresh_token').length, 0);

    // Second clients in the same page (the same sessionStorage login), from the served bundle.
    const options = { issuer: w.baseUrl, clientId: app.client_id, redirectUri: `${w.baseUrl}/`, scope: DEMO_SCOPE, storage: 'session' };
    const viaClient = (skew) => page.evaluate(async ({ opts, skew }) => {
      const { createClient } = await import('/sdk/edge-oauth.js');
      const client = await createClient(skew === undefined ? opts : { ...opts, refreshSkew: skew });
      return client.getAccessToken().then((token) => ({ token }), (e) => ({ error: `${e.error}: ${e.error_description}` }));
    }, { opts: options, skew });

    // Default skew (60 s) against a 3600 s token: fresh, no request.
    const plain = await viaClient(undefined);
    assert.deepEqual(plain, { token: old.access_token });
    assert.equal(tokenRequests(context, 'refresh_token').length, 0, 'the default skew makes no refresh');

    // A skew of 7200 s > 3600 s: due at once, refreshed exactly once.
    const skewed = await viaClient(7200);
    assert.equal(skewed.error, undefined, skewed.error);
    const refreshes = tokenRequests(context, 'refresh_token');
    assert.equal(refreshes.length, 1, 'exactly one refresh request');
    const body = new URLSearchParams(refreshes[0].postData());
    assert.equal(body.get('refresh_token'), old.refresh_token);
    assert.equal(body.get('client_id'), app.client_id);
    const answer = await (await refreshes[0].response()).json();
    assert.equal(skewed.token, answer.access_token, 'the refreshed access token is returned');
    assert.notEqual(skewed.token, old.access_token);
    const stored = JSON.parse((await browserState(page, app)).session);
    assert.equal(stored.access_token, skewed.token, 'the new token set is stored');
    assert.equal(stored.refresh_token, answer.refresh_token, 'the rotated refresh token is stored');
    assert.notEqual(stored.refresh_token, old.refresh_token);

    // And the default skew still leaves that (fresh) token alone.
    assert.deepEqual(await viaClient(undefined), { token: skewed.token });
    assert.equal(tokenRequests(context, 'refresh_token').length, 1, 'still one refresh request');
    assert.deepEqual(context.problems, []);
  } finally {
    await context.close();
  }
});

// --- 5. Popup refused -----------------------------------------------------------------------------

// Playwright starts Chromium with --disable-popup-blocking (a default switch of playwright-core
// that launchChromium() keeps), so a window.open() without a user gesture is NOT blocked there.
// A popup blocker makes window.open() return null; that is what this page is given.
test('5a. a blocked popup (window.open answers null, as under a popup blocker): login({popup: true}) rejects with popup_blocked, nothing stored', async () => {
  const app = await newApp();
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    let popups = 0;
    context.on('page', () => { popups++; });
    const outcome = await page.evaluate(() => {
      window.open = () => null;
      return window.demo.client.login({ popup: true })
        .then((t) => ({ tokens: t }), (e) => ({ error: e.error, error_description: e.error_description }));
    });
    assert.equal(outcome.error, 'popup_blocked', JSON.stringify(outcome));
    assert.ok(outcome.error_description);
    assert.equal(popups, 0);
    assert.equal(authorizeRequests(context).length, 0, 'no authorization request');
    await assertNothingStored(page, app);
    assert.equal(page.url(), `${w.baseUrl}/?client_id=${app.client_id}`, 'the page did not leave');
  } finally {
    await context.close();
  }
});

test('5b. a popup closed before logging in: login({popup: true}) from a click rejects with popup_closed, nothing stored', async () => {
  const app = await newApp();
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await addPopupButton(page);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#popup-login').click()]);
    await popup.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    await popup.locator('#username').waitFor();
    assert.equal(await popup.evaluate(() => window.name), 'edge-oauth-login');
    await popup.close();

    const outcome = await page.evaluate(() => window.popupResult);
    assert.equal(outcome.error, 'popup_closed', JSON.stringify(outcome));
    assert.ok(outcome.error_description);
    assert.equal(tokenRequests(context, 'authorization_code').length, 0);
    await assertNothingStored(page, app);
    assert.equal(page.url(), `${w.baseUrl}/?client_id=${app.client_id}`, 'the opener did not leave');
  } finally {
    await context.close();
  }
});

// --- 6. Wrong password ----------------------------------------------------------------------------

test('6. user-agent flow from the demo, wrong password: the login page again with an alert, the demo not logged in', async () => {
  const app = await newApp();
  const user = await newUser('wrongpw');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await page.getByRole('button', { name: 'Log in with the user-agent flow', exact: true }).click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    assert.equal(new URL(page.url()).searchParams.get('response_type'), 'token id_token');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before a wrong password');

    await page.locator('#username').fill(user.username);
    await page.locator('#password').fill(`${user.password}-wrong`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${w.baseUrl}/services/oauth2/authorize`),
      page.locator('button[name="login"]').click(),
    ]);
    assert.equal(response.status(), 401);
    await page.getByRole('alert').waitFor();
    assert.equal(await page.getByRole('alert').textContent(), 'Wrong username or password.');
    assert.equal(new URL(page.url()).pathname, '/services/oauth2/authorize', 'still on the server');
    assert.equal(await page.locator('#username').inputValue(), user.username, 'the username is kept');
    assert.equal(await page.locator('#password').inputValue(), '', 'the password is not');
    assert.equal(await page.locator('button[name="login"]').count(), 1, 'the login page, not consent');
    assert.equal(await page.locator('button[name="approve"]').count(), 0);
    assert.equal(consentPosts(context, 'approve').length, 0);

    // The demo in this tab is not logged in.
    await page.goto(`${w.baseUrl}/`);
    await demoSettled(page);
    await assertNoTokens(page, app);
    assert.equal(await text(page, '#error'), '');
    assert.equal(await page.locator('#logout').isDisabled(), true);
  } finally {
    await context.close();
  }
});
