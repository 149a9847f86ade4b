// The browser bundle (issue 11) end to end, in headless Chromium against the real worker:
// - the demo single-page app at `/` (www/demo, served as static assets under its CSP) logging in
//   with PKCE (S256, state, nonce; the code and state gone from the address bar; the ID token
//   verified in the browser) and with the user-agent flow (the fragment gone from the address bar);
// - an ID token with one byte of its signature changed (token endpoint answer, or the fragment
//   of the user-agent flow) refused as invalid_id_token, with nothing stored;
// - two tabs of one origin refreshing a due access token at once: one refresh request (Web Lock),
//   the same new token in both tabs, the other tab told over the BroadcastChannel, the old refresh
//   token refused by the server (no reuse grace);
// - logout revoking the refresh and the access token at the server (introspection: inactive);
// - the npm package (`npm pack` of build/browser-pkg) served from another loopback origin, logging
//   in across origins (CORS for an origin an app lists; refused for an origin nobody lists);
// - the popup login (window `edge-oauth-login`) resolving in the opener, the popup closing;
// - the server's pages: login and consent with the keyboard alone, the login page on a phone
//   without horizontal scrolling, the HTML error page carrying the plain-text error line;
// - full-page screenshots into test-results/browser/.
//
// Run alone: node --test --test-concurrency=1 tests/e2e/browser-bundle.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './ua-helpers.mjs';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import {
  DEMO_SCOPE, addPopupButton, assertLoggedIn, assertNoTokens, browserState, bundleKit, demoFailed,
  demoLoggedInOrFailed, loginAndApprove, storageKey, text,
} from './bundle-helpers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PKG_DIR = join(ROOT, 'build', 'browser-pkg');
const SHOTS = join(ROOT, 'test-results', 'browser');
const B64URL_43 = /^[A-Za-z0-9_-]{43}$/;

let w;
let browser;
let tmp;
let jwks;
const servers = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edge-oauth-bundle-'));
  w = await startTestWorker();
  jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => new Promise((r) => { s.closeAllConnections?.(); s.close(r); })));
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// --- Fixtures (the shared ones in bundle-helpers.mjs) ------------------------------------------

const {
  newApp, newUser, newContext, tokenRequests, authorizeRequests, consentPosts, openDemo, atDemo, backAtDemo,
} = bundleKit({ worker: () => w, browser: () => browser });

const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');
const atHash = (accessToken) => createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');

/** `jwt` with one character of its signature part changed (a whole byte of the signature). */
function tamper(jwt) {
  const [h, p, s] = jwt.split('.');
  const i = 10; // not the last character, whose low bits may be padding
  const s2 = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return [h, p, s2].join('.');
}

async function introspect(app, token) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

async function refreshAtServer(app, refreshToken) {
  const r = await fetch(`${w.baseUrl}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: app.client_id }),
  });
  return { status: r.status, json: await r.json() };
}

/** The approve POST (the Location of its response carries the answer to the app). */
const approveResponse = (context) => consentPosts(context, 'approve').at(-1);

const json = async (page, selector) => JSON.parse(await text(page, selector));

// --- 1. PKCE ----------------------------------------------------------------------------------

test('1. demo SPA, PKCE: S256 challenge, state and nonce; back at / with no code or state; verified ID token, userinfo', async () => {
  const app = await newApp();
  const taken = await w.admin('POST', '/admin/apps', { client_id: app.client_id, name: 'Same id', callback_urls: ['http://127.0.0.1/'], scopes: ['api'] });
  assert.equal(taken.status, 409, `an operator-chosen client_id that is taken: ${taken.text}`);
  const user = await newUser('pkce');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    assert.equal(await text(page, '#who'), 'Not logged in.');
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    await loginAndApprove(page, user);
    await backAtDemo(page);
    await assertLoggedIn(page, user);

    // The address bar: the redirect URI, nothing of the answer left.
    assert.equal(page.url(), `${w.baseUrl}/`);
    assert.doesNotMatch(page.url(), /code=|state=|#/);

    // The authorization request.
    const [authz] = authorizeRequests(context);
    assert.ok(authz, 'an authorization request was made');
    const q = new URL(authz.url()).searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), app.client_id);
    assert.equal(q.get('redirect_uri'), `${w.baseUrl}/`);
    assert.equal(q.get('scope'), DEMO_SCOPE);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge'), B64URL_43);
    assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{22,}$/, 'a random state');
    assert.match(q.get('nonce') ?? '', /^[A-Za-z0-9_-]{22,}$/, 'a random nonce');
    assert.notEqual(q.get('state'), q.get('nonce'));

    // The server answered to / with the code and that state; the code was redeemed with the
    // verifier of that challenge and no secret.
    const location = new URL((await approveResponse(context).response()).headers().location);
    assert.equal(`${location.origin}${location.pathname}`, `${w.baseUrl}/`);
    assert.equal(location.searchParams.get('state'), q.get('state'));
    assert.ok(location.searchParams.get('code'));
    const tokenReqs = tokenRequests(context, 'authorization_code');
    assert.equal(tokenReqs.length, 1);
    const body = new URLSearchParams(tokenReqs[0].postData());
    assert.equal(body.get('code'), location.searchParams.get('code'));
    assert.equal(body.get('redirect_uri'), `${w.baseUrl}/`);
    assert.equal(body.get('client_id'), app.client_id);
    assert.equal(s256(body.get('code_verifier')), q.get('code_challenge'), 'the verifier of the challenge sent');
    assert.equal(body.get('client_secret'), null);

    // The verified claims shown, bound to this client and this login.
    const claims = await json(page, '#id-token');
    assert.equal(claims.iss, w.baseUrl);
    assert.equal(claims.aud, app.client_id);
    assert.equal(claims.nonce, q.get('nonce'));
    assert.equal(claims.email, user.email);
    assert.equal(claims.name, user.name);
    const userinfo = await json(page, '#userinfo');
    assert.equal(userinfo.email, user.email);
    assert.equal(userinfo.preferred_username, user.username);
    const shownToken = await json(page, '#access-token');
    assert.equal(shownToken.scope, DEMO_SCOPE);
    assert.equal(shownToken.refresh_token, 'present');

    // Kept in this tab's sessionStorage (the demo's default); the pending login is gone.
    const s = await browserState(page, app);
    assert.equal(s.pending, null, 'the pending login is removed');
    assert.equal(s.local, null);
    const stored = JSON.parse(s.session);
    assert.equal(stored.access_token, s.tokens.access_token);
    assert.deepEqual(stored.claims, claims);
    assert.equal(typeof stored.expires_at, 'number');
    assert.equal((await introspect(app, stored.access_token)).active, true);

    assert.deepEqual(context.problems, [], 'no console errors, CSP violations or exceptions');
  } finally {
    await context.close();
  }
});

// --- 2. User-agent flow -----------------------------------------------------------------------

test('2. demo SPA, user-agent flow: tokens in the fragment, fragment removed, ID token verified (nonce, at_hash)', async () => {
  const app = await newApp();
  const user = await newUser('implicit');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await page.getByRole('button', { name: 'Log in with the user-agent flow', exact: true }).click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    await loginAndApprove(page, user);
    await backAtDemo(page);
    await assertLoggedIn(page, user);
    assert.equal(page.url(), `${w.baseUrl}/`);
    assert.ok(!page.url().includes('#'), `no fragment left: ${page.url()}`);
    assert.equal(await page.evaluate(() => location.hash), '');

    const q = new URL(authorizeRequests(context)[0].url()).searchParams;
    assert.equal(q.get('response_type'), 'token id_token');
    assert.equal(q.get('code_challenge'), null);
    assert.ok(q.get('nonce') && q.get('state'));

    // The tokens did come in the fragment.
    const location = (await approveResponse(context).response()).headers().location;
    const fragment = new URLSearchParams(new URL(location).hash.slice(1));
    assert.ok(fragment.get('access_token') && fragment.get('id_token'), location);
    assert.equal(fragment.get('state'), q.get('state'));
    assert.equal(tokenRequests(context, 'authorization_code').length, 0, 'no code exchange in this flow');

    const claims = await json(page, '#id-token');
    assert.equal(claims.aud, app.client_id);
    assert.equal(claims.nonce, q.get('nonce'));
    assert.equal(claims.at_hash, atHash(fragment.get('access_token')));
    assert.equal(claims.email, user.email);
    const s = await browserState(page, app);
    assert.equal(s.tokens.access_token, fragment.get('access_token'));
    assert.equal(s.tokens.id_token, fragment.get('id_token'));
    assert.equal(s.tokens.state, undefined, 'the state is not kept with the tokens');
    assert.equal(JSON.parse(s.session).access_token, fragment.get('access_token'));
    assert.equal((await json(page, '#userinfo')).email, user.email);

    assert.deepEqual(context.problems, [], 'no console errors, CSP violations or exceptions');
  } finally {
    await context.close();
  }
});

// --- 3. Tampered ID tokens --------------------------------------------------------------------

test('3a. an ID token with a changed signature byte (token endpoint answer) is refused: invalid_id_token, nothing stored', async () => {
  const app = await newApp();
  const user = await newUser('tamper');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    const seen = {};
    await page.route(`${w.baseUrl}/services/oauth2/token`, async (route) => {
      const response = await route.fetch();
      const answer = await response.json();
      seen.original = answer.id_token;
      answer.id_token = tamper(answer.id_token);
      seen.tampered = answer.id_token;
      await route.fulfill({ response, json: answer });
    });
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await loginAndApprove(page, user);
    await page.waitForURL(atDemo);
    await demoFailed(page);

    // The server's token was good; only the changed byte makes it bad.
    const { payload } = await jwtVerify(seen.original, jwks, { issuer: w.baseUrl, audience: app.client_id });
    assert.equal(payload.email, user.email);
    assert.notEqual(seen.tampered, seen.original);
    assert.equal(seen.tampered.length, seen.original.length);

    assert.match(await text(page, '#error'), /^invalid_id_token: /);
    await assertNoTokens(page, app);
    assert.doesNotMatch(page.url(), /code=|state=/);
    assert.equal(await page.locator('#logout').isDisabled(), true);
  } finally {
    await context.close();
  }
});

test('3b. an ID token with a changed signature byte (user-agent flow fragment) is refused: invalid_id_token, nothing stored', async () => {
  const app = await newApp();
  const user = await newUser('tamperua');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    const seen = {};
    // The approve POST answers 303 to /#access_token=…&id_token=…: change the id_token there.
    await page.route(`${w.baseUrl}/services/oauth2/authorize`, async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const response = await route.fetch({ maxRedirects: 0 });
      const location = response.headers().location;
      if (!location?.includes('#')) return route.fulfill({ response });
      const url = new URL(location);
      const fragment = new URLSearchParams(url.hash.slice(1));
      seen.original = fragment.get('id_token');
      fragment.set('id_token', tamper(seen.original));
      url.hash = fragment.toString();
      return route.fulfill({ status: response.status(), headers: { ...response.headers(), location: url.href } });
    });
    await page.getByRole('button', { name: 'Log in with the user-agent flow', exact: true }).click();
    await loginAndApprove(page, user);
    await page.waitForURL(atDemo);
    await demoFailed(page);

    assert.ok(seen.original, 'the fragment carried an ID token');
    await jwtVerify(seen.original, jwks, { issuer: w.baseUrl, audience: app.client_id });
    assert.match(await text(page, '#error'), /^invalid_id_token: /);
    await assertNoTokens(page, app);
    assert.ok(!page.url().includes('#'), `the fragment is removed even so: ${page.url()}`);
  } finally {
    await context.close();
  }
});

// --- 4. Two tabs --------------------------------------------------------------------------------

test('4. two tabs, local storage: a due access token is refreshed once (Web Lock), both tabs get it, the other tab hears of it, the old refresh token is dead', async () => {
  const app = await newApp({ refresh_reuse_grace_s: 0 });
  const user = await newUser('tabs');
  const context = await newContext();
  try {
    const a = await openDemo(context, app, { storage: 'local' });
    await a.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await loginAndApprove(a, user);
    await backAtDemo(a);
    await assertLoggedIn(a, user);
    const old = (await browserState(a, app)).tokens;
    assert.ok(old.access_token && old.refresh_token);
    assert.equal(JSON.parse((await browserState(a, app)).local).access_token, old.access_token, 'kept in localStorage');

    // Tab B reads the login from localStorage.
    const b = await openDemo(context, app, { storage: 'local' });
    await demoLoggedInOrFailed(b);
    await assertLoggedIn(b, user);
    assert.equal((await browserState(b, app)).tokens.access_token, old.access_token);

    for (const tab of [a, b]) {
      await tab.evaluate(() => {
        window.seenTokens = [];
        window.demo.client.addEventListener('tokens', (e) => window.seenTokens.push(e.detail?.access_token ?? null));
      });
    }
    // Make the access token due.
    await a.evaluate((k) => {
      const t = JSON.parse(localStorage.getItem(k));
      t.expires_at = Date.now() - 1000;
      localStorage.setItem(k, JSON.stringify(t));
    }, storageKey(app));
    const before = tokenRequests(context, 'refresh_token').length;
    assert.equal(before, 0);

    const got = await Promise.all([a, b].map((tab) => tab.evaluate(() => window.demo.client.getAccessToken()
      .then((token) => ({ token }), (e) => ({ error: `${e.error}: ${e.error_description}` })))));

    const refreshes = tokenRequests(context, 'refresh_token');
    assert.equal(refreshes.length, 1, `exactly one refresh request across both tabs (tabs got ${JSON.stringify(got)})`);
    assert.deepEqual(got.map((g) => g.error), [undefined, undefined], 'neither tab failed');
    const [fromA, fromB] = got.map((g) => g.token);
    const refresh = refreshes[0];
    assert.equal(new URLSearchParams(refresh.postData()).get('refresh_token'), old.refresh_token);
    assert.equal((await refresh.response()).status(), 200);
    assert.ok(fromA && fromB);
    assert.equal(fromA, fromB, 'both tabs have the same new access token');
    assert.notEqual(fromA, old.access_token, 'a new access token');
    const now = JSON.parse((await browserState(a, app)).local);
    assert.equal(now.access_token, fromA);
    assert.ok(now.refresh_token && now.refresh_token !== old.refresh_token, 'the refresh token rotated');
    assert.ok(now.expires_at > Date.now(), 'the new token is not due');
    assert.equal((await introspect(app, fromA)).active, true);

    // The tab that did not refresh heard of the new tokens (BroadcastChannel).
    const refresher = refresh.frame().page();
    const other = refresher === a ? b : a;
    await other.waitForFunction((t) => window.seenTokens.includes(t), fromA);
    assert.deepEqual(await other.evaluate(() => window.seenTokens), [fromA]);
    await other.waitForFunction((t) => document.getElementById('access-token').textContent.includes('expires_at')
      && window.demo.client.tokens()?.access_token === t, fromA);

    // No reuse grace: the old refresh token is refused.
    const reuse = await refreshAtServer(app, old.refresh_token);
    assert.equal(reuse.status, 400, JSON.stringify(reuse.json));
    assert.equal(reuse.json.error, 'invalid_grant');
  } finally {
    await context.close();
  }
});

// --- 5. Logout ------------------------------------------------------------------------------------

test('5. logout revokes the refresh token then the access token at the server and forgets them', async () => {
  const app = await newApp();
  const user = await newUser('logout');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await loginAndApprove(page, user);
    await backAtDemo(page);
    await assertLoggedIn(page, user);
    const { access_token: at, refresh_token: rt } = (await browserState(page, app)).tokens;
    assert.ok(at && rt);
    assert.equal((await introspect(app, at)).active, true);
    assert.equal((await introspect(app, rt)).active, true);

    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForFunction(() => document.getElementById('who').textContent === 'Not logged in.');
    assert.equal(await text(page, '#error'), '');
    assert.equal(await text(page, '#status'), 'Demo single-page app');
    await assertNoTokens(page, app);
    assert.equal(await page.locator('#logout').isDisabled(), true);
    assert.equal(await page.locator('#pkce').isEnabled(), true);

    const revokes = context.requests.filter((r) => r.method() === 'POST' && r.url() === `${w.baseUrl}/services/oauth2/revoke`);
    assert.deepEqual(revokes.map((r) => new URLSearchParams(r.postData()).get('token')), [rt, at], 'refresh token first, then access token');
    for (const r of revokes) assert.equal((await r.response()).status(), 200);
    assert.equal((await introspect(app, at)).active, false, 'access token revoked');
    assert.equal((await introspect(app, rt)).active, false, 'refresh token revoked');
    assert.equal((await refreshAtServer(app, rt)).json.error, 'invalid_grant');
  } finally {
    await context.close();
  }
});

// --- 6. Another origin, from the npm package --------------------------------------------------------

const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8', '.ts': 'text/plain', '.json': 'application/json', '.md': 'text/plain' };

/** An app page on another origin: the package's edge-oauth.js, PKCE by redirect back to `/`. */
function appPage(issuer) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another origin</title></head>
<body><button id="login">Log in</button>
<script type="module">
import { createClient } from './edge-oauth.js';
const q = new URLSearchParams(location.search);
if (q.has('client_id')) sessionStorage.setItem('client_id', q.get('client_id'));
const plain = (e) => ({ error: e.error ?? 'thrown', error_description: e.error_description ?? String(e) });
window.app = { error: null, result: undefined, done: false };
try {
  const client = await createClient({ issuer: ${JSON.stringify(issuer)}, clientId: sessionStorage.getItem('client_id'),
    redirectUri: location.origin + '/', scope: ${JSON.stringify(DEMO_SCOPE)}, storage: 'session' });
  window.app.client = client;
  document.getElementById('login').onclick = () => client.login().catch((e) => { window.app.error = plain(e); });
  window.app.result = await client.handleCallback();
} catch (e) {
  window.app.error = plain(e);
}
window.app.done = true;
</script></body></html>`;
}

/** Serves `dir` and `index` (at `/`) on a free loopback port; resolves to its origin and log. */
async function serve(dir, index) {
  const log = [];
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = normalize(join(dir, path));
    if (path === '/') {
      log.push({ path, type: TYPES['.html'] });
      res.writeHead(200, { 'content-type': TYPES['.html'], 'cache-control': 'no-store' });
      return res.end(index);
    }
    if (!file.startsWith(dir + '/') || !existsSync(file) || !statSync(file).isFile()) {
      log.push({ path, status: 404 });
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found');
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    log.push({ path, type });
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { origin: `http://127.0.0.1:${server.address().port}`, log };
}

let pkgDir;
/** `npm pack` of build/browser-pkg, extracted: the `package/` directory. */
function packedPackage() {
  if (pkgDir) return pkgDir;
  const dest = join(tmp, 'pack');
  mkdirSync(dest, { recursive: true });
  const out = execFileSync('npm', ['pack', '--pack-destination', dest, '--json'], { cwd: PKG_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [packed] = JSON.parse(out);
  const files = packed.files.map((f) => f.path).sort();
  for (const f of ['edge-oauth.js', 'edge-oauth.d.ts', 'edge_oauth_browser.js', 'edge_oauth_browser_bg.wasm', 'package.json']) {
    assert.ok(files.includes(f), `${f} in the package: ${files}`);
  }
  execFileSync('tar', ['xzf', join(dest, packed.filename), '-C', dest]);
  pkgDir = join(dest, 'package');
  return pkgDir;
}

/** On a page of `appPage`: waits for its start to finish. */
const appSettled = (page) => page.waitForFunction(() => window.app?.done === true);

test('6a. another origin: the npm package logs in with PKCE across origins (CORS for an allowed origin), userinfo works', async () => {
  const dir = packedPackage();
  const site = await serve(dir, appPage(w.baseUrl));
  const app = await newApp({ allowed_origins: [site.origin] });
  const user = await newUser('xorigin');
  const context = await newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${site.origin}/?client_id=${app.client_id}`);
    await appSettled(page);
    assert.deepEqual(await page.evaluate(() => [window.app.error, window.app.result]), [null, null]);
    assert.ok(site.log.some((l) => l.path === '/edge_oauth_browser_bg.wasm' && l.type === 'application/wasm'), 'the wasm came from this origin');

    await page.locator('#login').click();
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    assert.equal(new URL(page.url()).searchParams.get('redirect_uri'), `${site.origin}/`);
    assert.equal(new URL(page.url()).searchParams.get('code_challenge_method'), 'S256');
    await loginAndApprove(page, user);
    await page.waitForURL((u) => u.origin === site.origin && u.pathname === '/');
    await appSettled(page);
    const { error, result } = await page.evaluate(() => ({ error: window.app.error, result: window.app.result }));
    assert.equal(error, null, JSON.stringify(error));
    assert.ok(result?.access_token, 'handleCallback resolved to the tokens');
    assert.equal(result.claims.aud, app.client_id);
    assert.equal(result.claims.email, user.email);
    assert.equal(page.url(), `${site.origin}/`, 'code and state removed');

    // The token endpoint answered this origin.
    const tokenReq = tokenRequests(context, 'authorization_code')[0];
    assert.equal((await tokenReq.allHeaders()).origin, site.origin);
    assert.equal((await tokenReq.response()).headers()['access-control-allow-origin'], site.origin);
    const stored = await page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)), storageKey(app));
    assert.equal(stored.access_token, result.access_token);

    const userinfo = await page.evaluate(() => window.app.client.userinfo());
    assert.equal(userinfo.email, user.email);
    const uiReq = context.requests.find((r) => r.url() === `${w.baseUrl}/services/oauth2/userinfo` && r.method() === 'GET');
    assert.equal((await uiReq.response()).headers()['access-control-allow-origin'], site.origin);
  } finally {
    await context.close();
  }
});

test('6b. another origin that no app allows: the login fails at the token request, the error surfaces, nothing is stored', async () => {
  const dir = packedPackage();
  const site = await serve(dir, appPage(w.baseUrl));
  const app = await newApp({ allowed_origins: [] });
  const apps = (await w.admin('GET', '/admin/apps')).json.apps;
  assert.ok(apps.every((a) => !(a.allowed_origins ?? []).includes(site.origin)), 'no app lists this origin');
  const user = await newUser('blocked');
  const context = await newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${site.origin}/?client_id=${app.client_id}`);
    await appSettled(page);
    assert.equal(await page.evaluate(() => window.app.error), null, 'discovery and JWKS are public');
    await page.locator('#login').click();
    await loginAndApprove(page, user);
    await page.waitForURL((u) => u.origin === site.origin && u.pathname === '/');
    await appSettled(page);

    const { error, result } = await page.evaluate(() => ({ error: window.app.error, result: window.app.result ?? null }));
    assert.equal(result, null);
    assert.ok(error, 'handleCallback rejected');
    assert.equal(error.error, 'network_error', JSON.stringify(error));
    const tokenReqs = tokenRequests(context, 'authorization_code');
    assert.equal(tokenReqs.length, 1, 'the token request was attempted');
    // The browser did not let the page read the answer (no Access-Control-Allow-Origin).
    assert.equal(await tokenReqs[0].response(), null);
    assert.ok(tokenReqs[0].failure(), 'the token request failed in the browser');
    const state = await page.evaluate((k) => ({ tokens: window.app.client.tokens(), session: sessionStorage.getItem(k) }), storageKey(app));
    assert.deepEqual(state, { tokens: null, session: null });
    assert.equal(page.url(), `${site.origin}/`);
  } finally {
    await context.close();
  }
});

// --- 7. Popup -----------------------------------------------------------------------------------

test('7. popup login: login({popup: true}) from a click; the popup logs in, closes, and the opener gets the tokens', async () => {
  const app = await newApp();
  const user = await newUser('popup');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    const before = page.url();
    await addPopupButton(page);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#popup-login').click()]);
    await popup.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    assert.equal(await popup.evaluate(() => window.name), 'edge-oauth-login');
    const q = new URL(popup.url()).searchParams;
    assert.equal(q.get('code_challenge_method'), 'S256');
    const closed = popup.waitForEvent('close');
    await loginAndApprove(popup, user);
    await closed;
    assert.equal(popup.isClosed(), true);

    const outcome = await page.evaluate(() => window.popupResult);
    assert.equal(outcome.error, undefined, JSON.stringify(outcome));
    assert.ok(outcome.tokens.access_token);
    assert.equal(outcome.tokens.claims.email, user.email);
    assert.equal(outcome.tokens.claims.nonce, q.get('nonce'));
    assert.equal(page.url(), before, 'the opener never left');
    // The opener's page shows the login (the tokens event) and kept it.
    await demoLoggedInOrFailed(page);
    await assertLoggedIn(page, user);
    assert.equal(JSON.parse((await browserState(page, app)).session).access_token, outcome.tokens.access_token);
  } finally {
    await context.close();
  }
});

// --- 8. Server pages ------------------------------------------------------------------------------

test('8a. login and consent pages with the keyboard alone (Tab, typing, Enter) through a full PKCE login', async () => {
  const app = await newApp();
  const user = await newUser('keyboard');
  const context = await newContext();
  try {
    const page = await openDemo(context, app);
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      return { tag: e?.tagName, id: e?.id, name: e?.getAttribute('name'), outline: e && getComputedStyle(e).outlineStyle };
    });
    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'pkce', 'the first Tab reaches "Log in with PKCE"');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${w.baseUrl}/services/oauth2/authorize?**`);
    await page.locator('#username').waitFor();

    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'username', 'the first Tab on the login page reaches the username');
    await page.keyboard.type(user.username);
    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'password');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Tab');
    const loginButton = await focused();
    assert.equal(loginButton.name, 'login');
    assert.notEqual(loginButton.outline, 'none', 'the focused button shows a focus ring');
    await page.keyboard.press('Shift+Tab');
    assert.equal((await focused()).id, 'password');
    await page.keyboard.press('Enter'); // submits from the password field
    await page.locator('button[name="approve"]').waitFor();

    await page.keyboard.press('Tab');
    let f = await focused();
    assert.equal(f.name, 'approve', 'the first Tab on the consent page reaches "Allow"');
    assert.notEqual(f.outline, 'none', 'the focused button shows a focus ring');
    await page.keyboard.press('Tab');
    assert.equal((await focused()).name, 'deny');
    await page.keyboard.press('Shift+Tab');
    f = await focused();
    assert.equal(f.name, 'approve');
    await page.keyboard.press('Enter');
    await backAtDemo(page);
    await assertLoggedIn(page, user);
    assert.deepEqual(context.problems, [], 'no console errors, CSP violations or exceptions');
  } finally {
    await context.close();
  }
});

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };

/** A login page URL for `app` (PKCE) as an app would send the browser. */
function authorizeUrl(app, extra = {}) {
  return `${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({
    response_type: 'code', client_id: app.client_id, redirect_uri: `${w.baseUrl}/`, scope: DEMO_SCOPE,
    state: 'phone-state-0123456789', nonce: 'phone-nonce-0123456789',
    code_challenge: s256('phone-verifier-0123456789-0123456789-0123456789'), code_challenge_method: 'S256', ...extra,
  })}`;
}

test('8b. on a phone (390x844) the login page has no horizontal scroll', async () => {
  const app = await newApp();
  const context = await newContext(PHONE);
  try {
    const page = await context.newPage();
    const r = await page.goto(authorizeUrl(app));
    assert.equal(r.status(), 200);
    await page.locator('#username').waitFor();
    const m = await page.evaluate(() => ({
      inner: window.innerWidth,
      scroll: document.documentElement.scrollWidth,
      stylesheet: getComputedStyle(document.querySelector('main')).borderTopLeftRadius,
    }));
    assert.equal(m.inner, 390);
    assert.notEqual(m.stylesheet, '0px', 'the shared stylesheet applies under the page CSP');
    assert.ok(m.scroll <= 390, `scrollWidth ${m.scroll} > 390`);
    assert.deepEqual(context.problems, []);
  } finally {
    await context.close();
  }
});

test('8c. error page: unknown client_id (and unregistered redirect_uri) → text/html for browsers, #error-line equals the text/plain body', async () => {
  const app = await newApp();
  const context = await newContext();
  try {
    const page = await context.newPage();
    const cases = [
      [`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: `no-such-${randomUUID().slice(0, 6)}`, redirect_uri: `${w.baseUrl}/`, state: 's' })}`, 'invalid_client_id'],
      [authorizeUrl(app, { redirect_uri: 'http://127.0.0.1:9/elsewhere' }), 'redirect_uri_mismatch'],
    ];
    for (const [url, code] of cases) {
      const plain = await fetch(url, { headers: { accept: '*/*' }, redirect: 'manual' });
      const line = await plain.text();
      assert.equal(plain.status, 400);
      assert.equal(plain.headers.get('content-type'), 'text/plain;charset=UTF-8');
      assert.match(line, new RegExp(`^error=${code}&error_description=`));

      const r = await page.goto(url);
      assert.equal(r.status(), 400);
      assert.match(r.headers()['content-type'], /^text\/html/);
      assert.match(r.headers()['content-security-policy'], /style-src 'self'/);
      assert.equal(await text(page, '#error-line'), line, 'the page carries the same line');
      assert.equal(await page.locator('link[rel="stylesheet"]').getAttribute('href'), '/static/edge-oauth.css');
      assert.notEqual(await page.evaluate(() => getComputedStyle(document.querySelector('main')).borderTopLeftRadius), '0px',
        'the stylesheet applies');
    }
    assert.deepEqual(context.problems.filter((p) => !/status of 400/.test(p)), [], 'no CSP violations');
  } finally {
    await context.close();
  }
});

// Beyond the list: the same phone check on the error page. Its `<code id="error-line">` is one
// unbroken 70-odd character word, wider than the card: Chromium widens the layout viewport to
// ~600 px (the page is zoomed out). Kept as a TODO so it is seen, not hidden, until fixed.
test('8d. on a phone (390x844) the error page has no horizontal scroll', async () => {
  const context = await newContext(PHONE);
  try {
    const page = await context.newPage();
    const r = await page.goto(`${w.baseUrl}/services/oauth2/authorize?response_type=code&client_id=no-such-app&redirect_uri=x`);
    assert.equal(r.status(), 400);
    await page.locator('#error-line').waitFor();
    const m = await page.evaluate(() => ({ inner: window.innerWidth, scroll: document.documentElement.scrollWidth }));
    assert.deepEqual(m, { inner: 390, scroll: 390 });
  } finally {
    await context.close();
  }
});

// --- 9. Screenshots -----------------------------------------------------------------------------

/** Width and height from a PNG's IHDR, after checking the signature. */
function pngSize(file) {
  const b = readFileSync(file);
  assert.ok(b.length > 1000, `${file}: ${b.length} bytes`);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is a PNG`);
  assert.equal(b.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

test('9. full-page screenshots: demo (logged in), login, consent, error, login on a phone', async () => {
  mkdirSync(SHOTS, { recursive: true });
  const names = ['demo.png', 'login.png', 'consent.png', 'error.png', 'login-phone.png'];
  for (const n of names) rmSync(join(SHOTS, n), { force: true });
  const app = await newApp();
  const user = await newUser('screens');
  const desktop = await newContext({ viewport: { width: 1280, height: 800 } });
  const phone = await newContext(PHONE);
  try {
    const page = await openDemo(desktop, app);
    await page.getByRole('button', { name: 'Log in with PKCE', exact: true }).click();
    await page.locator('#username').waitFor();
    await page.screenshot({ path: join(SHOTS, 'login.png'), fullPage: true });
    await page.locator('#username').fill(user.username);
    await page.locator('#password').fill(user.password);
    await page.locator('button[name="login"]').click();
    await page.locator('button[name="approve"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'consent.png'), fullPage: true });
    await page.locator('button[name="approve"]').click();
    await backAtDemo(page);
    await assertLoggedIn(page, user);
    await page.screenshot({ path: join(SHOTS, 'demo.png'), fullPage: true });

    await page.goto(`${w.baseUrl}/services/oauth2/authorize?response_type=code&client_id=no-such-app&redirect_uri=${encodeURIComponent(`${w.baseUrl}/`)}`);
    await page.locator('#error-line').waitFor();
    await page.screenshot({ path: join(SHOTS, 'error.png'), fullPage: true });

    const small = await phone.newPage();
    await small.goto(authorizeUrl(app));
    await small.locator('#username').waitFor();
    await small.screenshot({ path: join(SHOTS, 'login-phone.png'), fullPage: true });
  } finally {
    await desktop.close();
    await phone.close();
  }
  for (const n of names) {
    const file = join(SHOTS, n);
    assert.ok(existsSync(file), `${file} exists`);
    const { width, height } = pngSize(file);
    assert.equal(width, n === 'login-phone.png' ? 390 : 1280, `${n} width`);
    assert.ok(height >= (n === 'login-phone.png' ? 844 : 800), `${n} height ${height}`);
  }
});
