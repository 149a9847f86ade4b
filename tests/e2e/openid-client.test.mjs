// openid-client v6 (a certified OpenID Connect relying party library) against the real worker,
// with the login and consent pages driven in headless Chromium. The library does the protocol
// checks itself: discovery issuer match, RFC 9207 `iss` on the authorization response, ID token
// signature (via the JWKS), iss, aud, exp/iat, nonce, PKCE, and the userinfo `sub` match.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import * as client from 'openid-client';
import { chromium } from 'playwright-core';
import { startTestWorker } from './harness.mjs';

const SCOPE = 'openid api refresh_token profile email';
const USER = { username: 'oidc.user@example.com', password: 'correct-horse-42', email: 'oidc.user@example.com', name: 'Oidc User' };

/** Base64url of the left half of SHA-256 (OIDC Core §3.1.3.6 at_hash for RS256). */
function halfHash(token) {
  return createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url');
}

/** A client callback on loopback that records every request it gets. */
async function startCallbackServer() {
  const hits = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname === '/cb') {
      hits.push(url);
      for (const w of waiters.splice(0)) w(url);
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('callback received');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const redirectUri = `http://127.0.0.1:${server.address().port}/cb`;
  return {
    redirectUri,
    hits,
    /** Resolves with the next /cb request URL (as the client's server saw it). */
    next(timeoutMs = 15000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no request reached the callback')), timeoutMs);
        waiters.push((u) => { clearTimeout(t); resolve(u); });
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('openid-client v6 against edge-oauth', () => {
  let w;
  let browser;
  let cb;
  let config;
  let app;
  let user;
  let orgId;
  let context; // the browser context that logged in (shared by the later runs)
  // Results of the first run, used by later tests.
  let tokens;
  let claims;
  let refreshed;

  before(async () => {
    w = await startTestWorker();
    cb = await startCallbackServer();
    const a = await w.admin('POST', '/admin/apps', {
      name: 'OIDC RP',
      callback_urls: [cb.redirectUri],
      scopes: ['openid', 'api', 'refresh_token', 'profile', 'email'],
    });
    assert.equal(a.status, 201, a.text);
    app = a.json;
    const u = await w.admin('POST', '/admin/users', USER);
    assert.equal(u.status, 201, u.text);
    user = u.json;
    orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
    assert.match(orgId, /^00D\w{15}$/);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
    });
    context = await browser.newContext();
  });

  after(async () => {
    await browser?.close();
    await cb?.close();
    w?.stop();
  });

  /** Authorization request parameters with fresh PKCE, state and nonce. */
  async function newRequest(extra = {}) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: cb.redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    return { url, codeVerifier, state, nonce };
  }

  /** Opens `url` in a page of the shared context and records every document the browser loaded. */
  async function open(url) {
    const page = await context.newPage();
    const documents = [];
    page.on('response', (r) => {
      if (r.request().resourceType() === 'document') documents.push({ url: r.url(), status: r.status() });
    });
    const arrived = cb.next();
    const response = await page.goto(url.href);
    return { page, documents, arrived, response };
  }

  test('discovery: issuer is the base URL, endpoints are the Salesforce paths', async () => {
    config = await client.discovery(new URL(w.baseUrl), app.client_id, app.client_secret, undefined, {
      execute: [client.allowInsecureRequests],
    });
    const md = config.serverMetadata();
    assert.equal(md.issuer, w.baseUrl);
    assert.equal(md.authorization_endpoint, `${w.baseUrl}/services/oauth2/authorize`);
    assert.equal(md.token_endpoint, `${w.baseUrl}/services/oauth2/token`);
    assert.equal(md.userinfo_endpoint, `${w.baseUrl}/services/oauth2/userinfo`);
    assert.equal(md.revocation_endpoint, `${w.baseUrl}/services/oauth2/revoke`);
    assert.equal(md.introspection_endpoint, `${w.baseUrl}/services/oauth2/introspect`);
    assert.equal(md.jwks_uri, `${w.baseUrl}/id/keys`);
    assert.equal(md.authorization_response_iss_parameter_supported, true);
    assert.ok(md.code_challenge_methods_supported.includes('S256'));
  });

  test('code flow with PKCE in Chromium: login, consent, callback, ID token validated by the library', async () => {
    const req = await newRequest();
    assert.equal(req.url.origin + req.url.pathname, `${w.baseUrl}/services/oauth2/authorize`);

    const { page, arrived } = await open(req.url);
    // Login page.
    await page.locator('input[name="username"]').fill(USER.username);
    await page.locator('input[name="password"]').fill(USER.password);
    const cookiesBeforeLogin = new Set((await context.cookies(w.baseUrl)).map((c) => c.name));
    await Promise.all([page.waitForURL(`${w.baseUrl}/services/oauth2/authorize`), page.locator('button[name="login"]').click()]);
    // Consent page: lists what the app asks for and has both buttons.
    await page.locator('button[name="approve"]').waitFor();
    assert.equal(await page.locator('button[name="deny"]').count(), 1);
    assert.equal(await page.locator('input[name="password"]').count(), 0);
    const consentText = await page.locator('main').innerText();
    assert.match(consentText, /OIDC RP/);
    assert.match(consentText, /\bapi\b/);

    // The session cookie set at login: HttpOnly and SameSite=Lax (like every cookie of ours).
    const cookies = await context.cookies(w.baseUrl);
    const session = cookies.filter((c) => !cookiesBeforeLogin.has(c.name));
    assert.ok(session.length >= 1, `login set a session cookie (cookies: ${cookies.map((c) => c.name)})`);
    for (const c of cookies) {
      assert.equal(c.httpOnly, true, `${c.name} is HttpOnly`);
      assert.equal(c.sameSite, 'Lax', `${c.name} is SameSite=Lax`);
      assert.equal(c.path, '/');
    }

    await page.locator('button[name="approve"]').click();
    const seen = await arrived;
    await page.waitForURL((u) => u.href.startsWith(cb.redirectUri));
    const callbackUrl = new URL(page.url());
    assert.equal(callbackUrl.search, seen.search, 'the browser landed where the client server was hit');
    assert.equal(callbackUrl.searchParams.get('state'), req.state);
    assert.equal(callbackUrl.searchParams.get('iss'), w.baseUrl);
    assert.ok(callbackUrl.searchParams.get('code'));
    await page.close();

    // A wrong state is refused by the library before any request (so the code stays usable).
    await assert.rejects(
      client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: req.codeVerifier, expectedState: 'other', expectedNonce: req.nonce }),
      (e) => /"state"/.test(e.cause?.message),
    );

    tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: req.codeVerifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.match(tokens.access_token, new RegExp(`^${orgId}!`));
    assert.ok(tokens.refresh_token);
    assert.ok(tokens.id_token);
    assert.ok(tokens.expires_in > 0);
    assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(SCOPE.split(' ')));

    claims = tokens.claims();
    const identityUrl = `${w.baseUrl}/id/${orgId}/${user.user_id}`;
    assert.equal(tokens.id, identityUrl);
    assert.equal(claims.sub, identityUrl);
    assert.equal(claims.iss, w.baseUrl);
    assert.ok(claims.aud === app.client_id || (Array.isArray(claims.aud) && claims.aud.includes(app.client_id)));
    assert.equal(claims.nonce, req.nonce);
    assert.equal(claims.at_hash, halfHash(tokens.access_token));
    assert.ok(claims.exp > claims.iat);
    assert.ok(typeof claims.auth_time === 'number' || claims.auth_time === undefined);
  });

  test('a made-up code is refused (invalid_grant); a foreign iss is refused by the library', async () => {
    const fake = new URL(cb.redirectUri);
    fake.searchParams.set('code', 'not-a-real-code');
    fake.searchParams.set('state', 'st');
    fake.searchParams.set('iss', w.baseUrl);
    await assert.rejects(
      client.authorizationCodeGrant(config, fake, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: 'st' }),
      (e) => e.error === 'invalid_grant',
    );
    // A callback whose iss is not the issuer is refused by the library (RFC 9207).
    const badIss = new URL(fake);
    badIss.searchParams.set('iss', 'http://127.0.0.1:1');
    await assert.rejects(
      client.authorizationCodeGrant(config, badIss, { pkceCodeVerifier: 'x'.repeat(43), expectedState: 'st' }),
      (e) => /"iss"/.test(e.cause?.message),
    );
  });

  test('userinfo: the library checks sub against the ID token subject', async () => {
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub);
    assert.equal(info.preferred_username, USER.username);
    assert.equal(info.email, USER.email);
    assert.equal(info.name, USER.name);
    assert.equal(info.user_id, user.user_id);
    assert.equal(info.organization_id, orgId);
    // A different expected subject must make the library reject the response.
    await assert.rejects(
      client.fetchUserInfo(config, tokens.access_token, `${w.baseUrl}/id/${orgId}/005000000000000AAA`),
      (e) => /"sub"/.test(e.cause?.message),
    );
  });

  test('refresh: new access token works at userinfo, new ID token validated', async () => {
    refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
    assert.notEqual(refreshed.access_token, tokens.access_token);
    assert.match(refreshed.access_token, new RegExp(`^${orgId}!`));
    assert.ok(refreshed.id_token, 'openid was granted, so a refresh returns an ID token');
    const c = refreshed.claims();
    assert.equal(c.sub, claims.sub);
    assert.equal(c.iss, w.baseUrl);
    assert.ok(c.aud === app.client_id || c.aud.includes(app.client_id));
    assert.equal(c.at_hash, halfHash(refreshed.access_token));
    const info = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
    assert.equal(info.preferred_username, USER.username);
  });

  test('introspection: active with client_id, username, scope', async () => {
    const i = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(i.active, true);
    assert.equal(i.client_id, app.client_id);
    assert.equal(i.username, USER.username);
    assert.deepEqual(new Set(i.scope.split(' ')), new Set(SCOPE.split(' ')));
    assert.ok(i.exp > Math.floor(Date.now() / 1000));
    const r = await client.tokenIntrospection(config, tokens.refresh_token);
    assert.equal(r.active, true);
    assert.equal(r.client_id, app.client_id);
    const junk = await client.tokenIntrospection(config, `${orgId}!nonsense`);
    assert.equal(junk.active, false);
  });

  test('remembered approval: a new authorization in the same browser skips login and consent', async () => {
    const req = await newRequest();
    const { page, documents, arrived } = await open(req.url);
    const seen = await arrived;
    await page.waitForURL((u) => u.href.startsWith(cb.redirectUri));
    // The authorize request answered with a redirect straight to the callback: no login page,
    // no consent page was rendered.
    assert.deepEqual(documents.map((d) => [new URL(d.url).pathname, d.status]), [['/services/oauth2/authorize', 302], ['/cb', 200]]);
    assert.equal(await page.locator('input[name="password"]').count(), 0);
    const callbackUrl = new URL(page.url());
    assert.equal(callbackUrl.search, seen.search);
    assert.equal(callbackUrl.searchParams.get('state'), req.state);
    await page.close();
    const t = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: req.codeVerifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    assert.equal(t.claims().sub, claims.sub);
    assert.equal(t.claims().nonce, req.nonce);
    // Replaying that same callback (same code) is refused.
    await assert.rejects(
      client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: req.codeVerifier, expectedState: req.state, expectedNonce: req.nonce }),
      (e) => e.error === 'invalid_grant',
    );

    // Once more, silently: an ID token whose nonce is not the expected one is refused by the
    // library, and a wrong PKCE verifier is refused by the server.
    for (const bad of ['nonce', 'verifier']) {
      const r = await newRequest();
      const o = await open(r.url);
      await o.arrived;
      await o.page.waitForURL((u) => u.href.startsWith(cb.redirectUri));
      const u = new URL(o.page.url());
      await o.page.close();
      const checks = { pkceCodeVerifier: r.codeVerifier, expectedState: r.state, expectedNonce: r.nonce };
      if (bad === 'nonce') {
        checks.expectedNonce = client.randomNonce();
        await assert.rejects(client.authorizationCodeGrant(config, u, checks), (e) => /nonce/.test(e.cause?.message));
      } else {
        checks.pkceCodeVerifier = client.randomPKCECodeVerifier();
        await assert.rejects(client.authorizationCodeGrant(config, u, checks), (e) => e.error === 'invalid_grant');
      }
    }
  });

  test('prompt=consent shows consent again; deny returns access_denied with state', async () => {
    const req = await newRequest({ prompt: 'consent' });
    const { page, arrived } = await open(req.url);
    await page.locator('button[name="deny"]').waitFor();
    assert.equal(await page.locator('input[name="password"]').count(), 0, 'still logged in: no login page');
    assert.equal(await page.locator('button[name="approve"]').count(), 1);
    await page.locator('button[name="deny"]').click();
    const seen = await arrived;
    await page.waitForURL((u) => u.href.startsWith(cb.redirectUri));
    const callbackUrl = new URL(page.url());
    assert.equal(callbackUrl.search, seen.search);
    assert.equal(callbackUrl.searchParams.get('error'), 'access_denied');
    assert.equal(callbackUrl.searchParams.get('state'), req.state);
    assert.equal(callbackUrl.searchParams.get('code'), null);
    assert.equal(callbackUrl.searchParams.get('iss'), w.baseUrl);
    await page.close();
    // The library surfaces it as an authorization error.
    await assert.rejects(
      client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: req.codeVerifier, expectedState: req.state, expectedNonce: req.nonce }),
      (e) => e.error === 'access_denied',
    );
  });

  test('revocation of the refresh token ends it and its access tokens', async () => {
    await client.tokenRevocation(config, tokens.refresh_token);
    for (const t of [tokens.access_token, refreshed.access_token, tokens.refresh_token]) {
      const i = await client.tokenIntrospection(config, t);
      assert.equal(i.active, false, `introspection after revocation: ${t.slice(0, 20)}…`);
    }
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => {
      assert.equal(e.error, 'invalid_grant');
      return true;
    });
    await assert.rejects(client.fetchUserInfo(config, refreshed.access_token, claims.sub), (e) => {
      assert.equal(e.status ?? e.response?.status ?? e.cause?.status, 401);
      return true;
    });
  });
});
