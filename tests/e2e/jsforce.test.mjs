// jsforce 3.10 (the Salesforce JavaScript client) against the real worker: its OAuth2 class
// builds the authorize URL and calls /token and /revoke exactly as it does against Salesforce;
// its Connection parses the token response (`id`, `instance_url`) and calls the identity URL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import jsforce from 'jsforce';
import { authorize } from './flow.mjs';
import { startTestWorker } from './harness.mjs';
import { freePort } from '../../scripts/worker.mjs';

const USER = { username: 'jsforce.user@example.com', password: 'jsforce-pass-9', email: 'jsforce.user@example.com', name: 'Js Force' };
const TOKEN_SHAPE = /^00D\w{12,15}![.\w]*$/; // sfdx-core's access-token detection (reference §17)

function expectedSignature(secret, res) {
  return createHmac('sha256', secret).update(res.id + res.issued_at).digest('base64');
}

describe('jsforce 3.10 against edge-oauth', () => {
  let w;
  let app;
  let pkceApp;
  let user;
  let orgId;
  let redirectUri;
  let jar; // the scripted browser's cookies (logged in after the first run)

  before(async () => {
    w = await startTestWorker();
    // Never contacted: flow.mjs stops at the redirect to it.
    redirectUri = `http://127.0.0.1:${await freePort()}/cb`;
    const a = await w.admin('POST', '/admin/apps', { name: 'jsforce app', callback_urls: [redirectUri], scopes: ['api', 'refresh_token', 'openid'] });
    assert.equal(a.status, 201, a.text);
    app = a.json;
    const p = await w.admin('POST', '/admin/apps', {
      name: 'jsforce pkce app', callback_urls: [redirectUri], scopes: ['api', 'refresh_token', 'openid'], pkce_required: true,
    });
    assert.equal(p.status, 201, p.text);
    pkceApp = p.json;
    const u = await w.admin('POST', '/admin/users', USER);
    assert.equal(u.status, 201, u.text);
    user = u.json;
    orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
    assert.match(orgId, /^00D\w{15}$/);
  });

  after(() => w?.stop());

  /** Walks login (first time) and consent for jsforce's authorization URL; returns the redirect. */
  async function walk(authUrl, opts = {}) {
    const params = Object.fromEntries(new URL(authUrl).searchParams);
    const r = await authorize(w.baseUrl, params, { username: USER.username, password: USER.password, jar, ...opts });
    jar = r.jar;
    return r;
  }

  // State shared by the web-server-flow tests (run in order).
  let oauth2;
  let conn;
  let firstAccessToken;
  let refreshedToken;

  test('getAuthorizationUrl points at /services/oauth2/authorize with response_type=code', () => {
    oauth2 = new jsforce.OAuth2({ loginUrl: w.baseUrl, clientId: app.client_id, clientSecret: app.client_secret, redirectUri });
    const url = new URL(oauth2.getAuthorizationUrl({ scope: 'api refresh_token openid', state: 'jsf-state-1' }));
    assert.equal(url.origin + url.pathname, `${w.baseUrl}/services/oauth2/authorize`);
    assert.equal(url.searchParams.get('response_type'), 'code');
    assert.equal(url.searchParams.get('client_id'), app.client_id);
    assert.equal(url.searchParams.get('redirect_uri'), redirectUri);
    assert.equal(url.searchParams.get('scope'), 'api refresh_token openid');
    assert.equal(url.searchParams.get('state'), 'jsf-state-1');
    assert.equal(url.searchParams.get('code_challenge'), null, 'no PKCE unless useVerifier');
  });

  test('login + consent, then conn.authorize(code): Salesforce-shaped session', async () => {
    const r = await walk(oauth2.getAuthorizationUrl({ scope: 'api refresh_token openid', state: 'jsf-state-2' }));
    assert.equal(r.status, 303, r.body);
    assert.deepEqual(r.pages, ['login', 'consent']);
    assert.equal(r.url.origin + r.url.pathname, redirectUri);
    assert.equal(r.state, 'jsf-state-2');
    assert.ok(r.code);

    conn = new jsforce.Connection({ oauth2 });
    const userInfo = await conn.authorize(r.code);
    assert.match(conn.accessToken, TOKEN_SHAPE);
    assert.ok(conn.accessToken.startsWith(`${orgId}!`));
    assert.equal(conn.instanceUrl, w.baseUrl);
    assert.ok(conn.refreshToken, 'refresh_token scope granted');
    assert.equal(userInfo.id, user.user_id);
    assert.equal(userInfo.organizationId, orgId);
    assert.equal(userInfo.url, `${w.baseUrl}/id/${orgId}/${user.user_id}`);
    assert.deepEqual(conn.userInfo, userInfo);
    firstAccessToken = conn.accessToken;
  });

  test('oauth2.refreshToken: new access token with a valid signature', async () => {
    const res = await oauth2.refreshToken(conn.refreshToken);
    assert.match(res.access_token, TOKEN_SHAPE);
    assert.notEqual(res.access_token, firstAccessToken);
    assert.equal(res.instance_url, w.baseUrl);
    assert.equal(res.id, `${w.baseUrl}/id/${orgId}/${user.user_id}`);
    assert.equal(res.token_type, 'Bearer');
    assert.match(res.issued_at, /^\d{13}$/);
    assert.ok(Math.abs(Number(res.issued_at) - Date.now()) < 60_000, 'issued_at is ms since epoch, now');
    assert.equal(res.signature, expectedSignature(app.client_secret, res));
    assert.notEqual(res.signature, expectedSignature(pkceApp.client_secret, res), 'keyed by this client\'s secret');
    refreshedToken = res.access_token;

    // The refreshed token is usable (userinfo), as is the first one (no rotation by default).
    for (const t of [refreshedToken, firstAccessToken]) {
      const u = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(u.status, 200);
      assert.equal((await u.json()).preferred_username, USER.username);
    }
  });

  test('conn.identity() returns the user from the identity URL', async () => {
    conn.accessToken = refreshedToken;
    const id = await conn.identity();
    assert.equal(id.username, USER.username);
    assert.equal(id.user_id, user.user_id);
    assert.equal(id.organization_id, orgId);
    assert.equal(id.id, `${w.baseUrl}/id/${orgId}/${user.user_id}`);
    assert.equal(id.email, USER.email);
    assert.deepEqual(conn.userInfo, { id: user.user_id, organizationId: orgId, url: id.id });
  });

  test('jsforce refreshes by itself when the server answers 401', async () => {
    // An access token the server does not know: userinfo answers 401, jsforce's refresh
    // delegate runs the refresh_token grant and retries with the new token.
    conn.accessToken = `${orgId}!unknownToken0000000000000000000000`;
    const info = await conn.request(`${w.baseUrl}/services/oauth2/userinfo`);
    assert.equal(info.preferred_username, USER.username);
    assert.match(conn.accessToken, TOKEN_SHAPE);
    assert.notEqual(conn.accessToken, `${orgId}!unknownToken0000000000000000000000`);
    assert.notEqual(conn.accessToken, refreshedToken);
  });

  test('conn.logout(true) revokes the refresh token and its access tokens', async () => {
    const refreshToken = conn.refreshToken;
    const tokens = [firstAccessToken, refreshedToken, conn.accessToken];
    await conn.logout(true);
    assert.equal(conn.accessToken, null);
    assert.equal(conn.refreshToken, null);

    await assert.rejects(oauth2.refreshToken(refreshToken), (e) => {
      assert.equal(e.name, 'invalid_grant');
      assert.equal(e.message, 'expired access/refresh token');
      return true;
    });
    for (const t of tokens) {
      const u = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(u.status, 401, `access token ${t.slice(0, 22)}… after logout`);
    }
    // Revoking an already revoked token is still fine (RFC 7009 §2.2).
    await oauth2.revokeToken(refreshToken);
  });

  test('a replayed code is refused, and the tokens issued from it are revoked', async () => {
    const r = await walk(oauth2.getAuthorizationUrl({ scope: 'api refresh_token', state: 'jsf-replay' }));
    assert.equal(r.status, 302, r.body);
    assert.deepEqual(r.pages, [], 'logged in and approved before: straight back to the callback');
    const first = new jsforce.Connection({ oauth2 });
    await first.authorize(r.code);
    const info = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${first.accessToken}` } });
    assert.equal(info.status, 200);
    await assert.rejects(new jsforce.Connection({ oauth2 }).authorize(r.code), (e) => {
      assert.equal(e.name, 'invalid_grant');
      return true;
    });
    // RFC 6749 §4.1.2: tokens previously issued from that code are revoked.
    await assert.rejects(oauth2.refreshToken(first.refreshToken), (e) => e.name === 'invalid_grant');
    const after = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${first.accessToken}` } });
    assert.equal(after.status, 401);
  });

  test('PKCE with useVerifier: 171-char verifier, S256 challenge, code_verifier on exchange and refresh', async () => {
    const pkce = new jsforce.OAuth2({
      loginUrl: w.baseUrl, clientId: pkceApp.client_id, clientSecret: pkceApp.client_secret, redirectUri, useVerifier: true,
    });
    assert.equal(pkce.codeVerifier.length, 171);
    assert.match(pkce.codeVerifier, /^[\w-]{171}$/);
    const url = new URL(pkce.getAuthorizationUrl({ scope: 'api refresh_token', state: 'pkce-1' }));
    assert.equal(url.searchParams.get('response_type'), 'code');
    // jsforce sends no code_challenge_method: the server must take it as S256 (as Salesforce does).
    assert.equal(url.searchParams.get('code_challenge'), createHash('sha256').update(pkce.codeVerifier).digest('base64url'));
    assert.equal(url.searchParams.get('code_challenge_method'), null);

    // The app requires PKCE: without a challenge the authorization fails back at the callback.
    const plain = new jsforce.OAuth2({ loginUrl: w.baseUrl, clientId: pkceApp.client_id, clientSecret: pkceApp.client_secret, redirectUri });
    const refused = await walk(plain.getAuthorizationUrl({ scope: 'api refresh_token', state: 'pkce-0' }));
    assert.equal(refused.code ?? null, null);
    assert.equal(refused.error, 'invalid_request', `no challenge on a pkce_required app: ${refused.location ?? refused.status}`);
    assert.equal(refused.state, 'pkce-0');

    const r = await walk(url.href);
    assert.equal(r.status, 303, r.body);
    assert.deepEqual(r.pages, ['consent'], 'already logged in; new app needs consent');
    assert.equal(r.state, 'pkce-1');

    // Another verifier (a different OAuth2 object) cannot redeem this code...
    const other = new jsforce.OAuth2({
      loginUrl: w.baseUrl, clientId: pkceApp.client_id, clientSecret: pkceApp.client_secret, redirectUri, useVerifier: true,
    });
    await assert.rejects(new jsforce.Connection({ oauth2: other }).authorize(r.code), (e) => e.name === 'invalid_grant');

    // ...so get a fresh code (approval is now remembered) and redeem it with the right one.
    const r2 = await walk(url.href);
    assert.equal(r2.status, 302, r2.body);
    assert.deepEqual(r2.pages, []);
    const c = new jsforce.Connection({ oauth2: pkce });
    const info = await c.authorize(r2.code);
    assert.match(c.accessToken, TOKEN_SHAPE);
    assert.equal(info.id, user.user_id);
    assert.equal(info.organizationId, orgId);
    assert.equal(c.instanceUrl, w.baseUrl);

    // jsforce also sends code_verifier on refresh; the server ignores it and refreshes.
    const res = await pkce.refreshToken(c.refreshToken);
    assert.match(res.access_token, TOKEN_SHAPE);
    assert.equal(res.signature, expectedSignature(pkceApp.client_secret, res));
    const id = await new jsforce.Connection({ instanceUrl: res.instance_url, accessToken: res.access_token }).request(
      `${res.id}?format=json`,
    );
    assert.equal(id.username, USER.username);
  });
});
