// Fixtures of the browser bundle tests (browser-bundle.test.mjs, browser-bundle-edges.test.mjs):
// the demo single-page app at `/` of the real worker, in headless Chromium.
//
// The helpers that only look at a page are plain exports. Those that need the worker or the
// browser come from `bundleKit`, which is given getters because a test file starts both in its
// `before` hook, after this module is loaded:
//
//   let w;
//   let browser;
//   const { newApp, openDemo } = bundleKit({ worker: () => w, browser: () => browser });
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

/** The scope the demo asks for. */
export const DEMO_SCOPE = 'openid profile email api refresh_token';

/** Where the bundle keeps an app's tokens (sessionStorage or localStorage); `:pending` a login. */
export const storageKey = (app) => `edge-oauth:${app.client_id}`;

/** Waits until the demo has finished its start (callback handled, buttons set). */
export async function demoSettled(page) {
  await page.waitForFunction(() => window.demo?.client
    && (!document.getElementById('pkce').disabled || !document.getElementById('logout').disabled
      || document.getElementById('error').textContent !== ''));
}

/** Waits for the demo to show a login (userinfo rendered) or an error. */
export async function demoLoggedInOrFailed(page) {
  await page.waitForFunction(() => window.demo && (document.getElementById('error').textContent !== ''
    || (document.getElementById('who').textContent.startsWith('Logged in as')
      && document.getElementById('userinfo').textContent !== '—')));
}

/** Waits for the demo to show an error (a refused login). */
export async function demoFailed(page) {
  await page.waitForFunction(() => window.demo && document.getElementById('error').textContent !== '');
}

/** Fills and submits the server's login page. */
export async function logIn(page, user) {
  await page.locator('#username').fill(user.username);
  await page.locator('#password').fill(user.password);
  await page.locator('button[name="login"]').click();
}

/** Fills the server's login page and approves on its consent page. */
export async function loginAndApprove(page, user) {
  await logIn(page, user);
  await page.locator('button[name="approve"]').click();
}

/**
 * Adds a button `#popup-login` to the demo page whose click (a user gesture) starts
 * `login({popup: true})`; the outcome, `{tokens}` or `{error, error_description}`, is the promise
 * `window.popupResult`.
 */
export async function addPopupButton(page) {
  await page.evaluate(() => {
    const b = document.createElement('button');
    b.id = 'popup-login';
    b.textContent = 'Log in in a popup';
    b.onclick = () => {
      window.popupResult = window.demo.client.login({ popup: true })
        .then((t) => ({ tokens: t }), (e) => ({ error: e.error, error_description: e.error_description }));
    };
    document.body.append(b);
  });
}

export const text = (page, selector) => page.locator(selector).textContent();

/** The demo client's tokens, both storages and the pending login, for `app`. */
export const browserState = (page, app) => page.evaluate((k) => ({
  tokens: window.demo?.client.tokens() ?? null,
  session: sessionStorage.getItem(k),
  local: localStorage.getItem(k),
  pending: sessionStorage.getItem(`${k}:pending`),
}), storageKey(app));

export async function assertLoggedIn(page, user) {
  assert.equal(await text(page, '#error'), '', 'no error shown');
  assert.equal(await text(page, '#status'), `Hello, ${user.name}`);
  assert.equal(await text(page, '#who'), `Logged in as ${user.name} <${user.email}>`);
}

/** No tokens in the client or either storage, and the demo says "Not logged in.". */
export async function assertNoTokens(page, app) {
  const s = await browserState(page, app);
  assert.equal(s.tokens, null, 'demo.client.tokens() is null');
  assert.equal(s.session, null, 'nothing in sessionStorage');
  assert.equal(s.local, null, 'nothing in localStorage');
  assert.equal(await text(page, '#who'), 'Not logged in.');
}

/** Nothing stored (tokens, either storage, a pending login) and the demo shows it logged out. */
export async function assertNothingStored(page, app) {
  const s = await browserState(page, app);
  assert.deepEqual(s, { tokens: null, session: null, local: null, pending: null });
  assert.equal(await text(page, '#who'), 'Not logged in.');
  assert.equal(await text(page, '#status'), 'Demo single-page app');
  assert.equal(await page.locator('#logout').isDisabled(), true);
}

/** The helpers that need the test worker (`worker()`) and the Chromium (`browser()`). */
export function bundleKit({ worker, browser }) {
  const url = (path) => `${worker().baseUrl}${path}`;

  /** A public single-page app (PKCE, rotating refresh tokens) with an operator-chosen client_id. */
  async function newApp(fields = {}) {
    const client_id = fields.client_id ?? `spa-${randomUUID().slice(0, 8)}`;
    const r = await worker().admin('POST', '/admin/apps', {
      client_id,
      name: `SPA ${client_id}`,
      callback_urls: ['http://127.0.0.1/'],
      scopes: ['openid', 'profile', 'email', 'api', 'refresh_token'],
      secret_required_web_server: false,
      secret_required_refresh: false,
      rotate_refresh_tokens: true,
      allowed_origins: [],
      ...fields,
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.client_id, client_id, 'the operator-chosen client_id is kept');
    assert.ok(r.json.client_secret, 'a secret is shown once (used for introspection)');
    return r.json;
  }

  async function newUser(label) {
    const tag = randomUUID().slice(0, 8);
    const username = `${label}.${tag}@example.com`;
    const fields = { username, password: `pw-${randomUUID()}`, email: username, name: `${label[0].toUpperCase()}${label.slice(1)} Tester ${tag}` };
    const r = await worker().admin('POST', '/admin/users', fields);
    assert.equal(r.status, 201, r.text);
    return { ...fields, user_id: r.json.user_id };
  }

  /**
   * A browser context that records every request and the console errors and uncaught exceptions
   * of its pages (a CSP violation is a console error). The favicon, which the demo does not ship,
   * is left out.
   */
  async function newContext(options = {}) {
    const context = await browser().newContext(options);
    context.requests = [];
    context.problems = [];
    context.on('request', (r) => context.requests.push(r));
    context.on('console', (m) => {
      if (m.type() === 'error' && !/\/favicon\.ico$/.test(m.location()?.url ?? '')) {
        context.problems.push(`console: ${m.text()} (${m.location()?.url})`);
      }
    });
    context.on('weberror', (e) => context.problems.push(`uncaught: ${e.error()?.message}`));
    return context;
  }

  /** Every request to the token endpoint (whatever the method or grant). */
  const allTokenRequests = (context) => context.requests.filter((r) => r.url() === url('/services/oauth2/token'));
  /** The token requests (POST) of one grant_type. */
  const tokenRequests = (context, grant) => allTokenRequests(context).filter((r) => r.method() === 'POST'
    && new URLSearchParams(r.postData() ?? '').get('grant_type') === grant);
  /** The GETs of the authorization endpoint (each with its query). */
  const authorizeRequests = (context) => context.requests.filter((r) => r.method() === 'GET'
    && r.url().startsWith(url('/services/oauth2/authorize?')));
  /** The POSTs of the consent page made with `button` ('approve' or 'deny'). */
  const consentPosts = (context, button) => context.requests.filter((r) => r.method() === 'POST'
    && r.url() === url('/services/oauth2/authorize') && new URLSearchParams(r.postData() ?? '').has(button));

  /** The demo at `/` for `app` (`storage`: 'local' or the demo's default), once it has rendered. */
  async function openDemo(context, app, { storage } = {}) {
    const page = await context.newPage();
    const q = new URLSearchParams({ client_id: app.client_id, ...(storage ? { storage } : {}) });
    await page.goto(url(`/?${q}`));
    await demoSettled(page);
    return page;
  }

  /** A URL of the demo page (whatever its query or fragment). */
  const atDemo = (u) => u.origin === worker().baseUrl && u.pathname === '/';

  /** After the last page of the server: back on the demo at `/` (answer removed), then settled. */
  async function backAtDemo(page) {
    await page.waitForURL(atDemo);
    await demoLoggedInOrFailed(page);
  }

  /** Demo login with PKCE in `page`, back at `/` and logged in. */
  async function demoLogin(page, user) {
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await page.waitForURL(url('/services/oauth2/authorize?**'));
    await loginAndApprove(page, user);
    await backAtDemo(page);
    await assertLoggedIn(page, user);
  }

  /** The address bar holds the redirect URI and nothing of an authorization answer. */
  function assertCleanUrl(page) {
    assert.equal(page.url(), url('/'));
    assert.doesNotMatch(page.url(), /code=|error=|state=|#/);
  }

  return {
    newApp, newUser, newContext, allTokenRequests, tokenRequests, authorizeRequests, consentPosts,
    openDemo, atDemo, backAtDemo, demoLogin, assertCleanUrl,
  };
}
