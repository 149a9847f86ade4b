// Issue 10 end to end: client ID metadata documents, resource indicators (RFC 8707) and the
// gateway route with RFC 9728 protected resource metadata, against the real worker.
//
// The worker runs with GATEWAY_UPSTREAM pointing at a loopback "upstream" that records what the
// gateway forwards. A second loopback server plays the MCP client: it serves its client ID
// metadata document(s) and the redirect URI (/cb). The first test is the MCP authorization walk
// as a client scripted from the spec does it: 401 → WWW-Authenticate resource_metadata → RFC 9728
// document → authorization server metadata (openid-client discovery) → code + PKCE + resource in
// headless Chromium → token exchange with client_id = the document URL and no secret → gateway.
// The later tests use the form-driven flow.mjs helper (one logged-in cookie jar) for speed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import * as client from 'openid-client';
import { authorize, CookieJar, pkcePair, tokenRequest } from './flow.mjs';
import { startTestWorker } from './harness.mjs';
import { baseOf, launchChromium, raw } from './ua-helpers.mjs';

const SCOPE = 'api refresh_token';
const USER = { username: `mcp.user.${randomUUID().slice(0, 8)}@example.com`, password: 'correct-horse-mcp-42', name: 'Mcp User' };
const CLIENT_NAME = 'Scripted MCP Client';

/** Loopback server that records requests and answers through per-path handlers. */
async function startServer(defaultHandler) {
  const handlers = new Map();
  const hits = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, `http://${req.headers.host}`);
      const hit = { method: req.method, url: req.url, path: url.pathname, headers: req.headers, body: Buffer.concat(chunks).toString() };
      hits.push(hit);
      for (const w of waiters.splice(0)) w(hit);
      (handlers.get(url.pathname) ?? defaultHandler)(req, res, hit);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    hits,
    url: (path) => origin + path,
    on: (path, handler) => handlers.set(path, handler),
    count: (path) => hits.filter((h) => h.path === path).length,
    /** Resolves with the next request to `path`. Call before triggering it. */
    next(path, timeoutMs = 20000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no request to ${path} arrived`)), timeoutMs);
        const wait = (h) => { if (h.path !== path) { waiters.push(wait); return; } clearTimeout(t); resolve(h); };
        waiters.push(wait);
      });
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/** A loopback port nobody listens on. */
async function deadPort() {
  const s = http.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Auth-params of the Bearer challenge of a WWW-Authenticate value (RFC 9110 §11.6.1). */
function bearerParams(header) {
  const m = /(?:^|,\s*)Bearer(?:\s+(.*))?$/i.exec(header ?? '');
  assert.ok(m, `a Bearer challenge: ${header}`);
  const params = {};
  for (const p of (m[1] ?? '').matchAll(/([\w!#$%&'*+.^`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g)) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return params;
}

function assertErrorPage(r, error, description) {
  assert.equal(r.status, 400, `${r.status} ${r.location} ${r.text}`);
  assert.equal(r.location, null, 'an error page, never a redirect');
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  assert.ok(r.text.startsWith(`error=${error}&error_description=`), r.text);
  const desc = new URLSearchParams(r.text).get('error_description');
  assert.ok(desc, r.text);
  if (description) assert.match(desc, description, r.text);
}

describe('client ID metadata documents, resource indicators and the gateway', () => {
  let w;
  let up; // the gateway's upstream
  let cs; // the client's server: metadata documents and /cb
  let docUrl;
  let cbUrl;
  let user;
  let orgId;
  let gw; // an admin-created app with introspect_all_tokens
  let jar; // a logged-in form-driven browser session
  let config; // openid-client configuration of the metadata-document client
  let demo; // the demo route's resource, from its RFC 9728 document
  let other;
  let walk; // tokens of the Chromium walk

  const doc = (url, extra = {}) => ({
    client_id: url,
    client_name: CLIENT_NAME,
    redirect_uris: [cbUrl],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: SCOPE,
    ...extra,
  });
  /** Serves `body` (an object is sent as JSON) at `path` with `status` and headers. */
  const serve = (path, body, { status = 200, headers = {} } = {}) => cs.on(path, (req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  const identityUrl = () => `${w.baseUrl}/id/${orgId}/${user.user_id}`;
  const authzGet = (params) => raw(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams(params)}`);
  /** Authorize parameters for the document client `clientId`, with fresh PKCE and state. */
  function request(clientId, extra = {}) {
    const pk = pkcePair();
    const params = { response_type: 'code', client_id: clientId, redirect_uri: cbUrl, scope: SCOPE, state: `st-${randomUUID()}`, code_challenge: pk.challenge, code_challenge_method: 'S256', ...extra };
    return { params, verifier: pk.verifier };
  }
  /** Form-driven authorize in the shared logged-in session. */
  const login = (params) => authorize(w.baseUrl, params, { ...USER, jar });
  /** A code for `clientId` with `resource` (or none) and its exchange fields. */
  async function code(clientId, resource) {
    const req = request(clientId, resource ? { resource } : {});
    const r = await login(req.params);
    assert.ok(r.code, `a code: ${r.status} ${r.location ?? r.body}`);
    return { code: r.code, fields: { grant_type: 'authorization_code', code: r.code, client_id: clientId, redirect_uri: cbUrl, code_verifier: req.verifier } };
  }
  async function introspect(token) {
    const r = await raw(`${w.baseUrl}/services/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: gw.client_id, client_secret: gw.client_secret }),
    });
    assert.equal(r.status, 200, r.text);
    return r.json;
  }
  const audOf = (i) => (Array.isArray(i.aud) && i.aud.length === 1 ? i.aud[0] : i.aud);
  const gatewayGet = (path, token, headers = {}) => raw(`${w.baseUrl}${path}`, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

  before(async () => {
    up = await startServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(JSON.stringify({ upstream: true, url: req.url }));
    });
    cs = await startServer((req, res, hit) => {
      res.writeHead(hit.path === '/cb' ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(hit.path === '/cb' ? 'callback received' : 'not found');
    });
    docUrl = cs.url('/client.json');
    cbUrl = cs.url('/cb');
    serve('/client.json', doc(docUrl), { headers: { 'cache-control': 'max-age=300' } });
    w = await startTestWorker({ vars: { GATEWAY_UPSTREAM: up.origin } });
    const u = await w.admin('POST', '/admin/users', { ...USER, email: USER.username });
    assert.equal(u.status, 201, u.text);
    user = u.json;
    orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
    const a = await w.admin('POST', '/admin/apps', { name: 'Gateway introspector', callback_urls: ['http://127.0.0.1:9/cb'], scopes: ['api'] });
    assert.equal(a.status, 201, a.text);
    const p = await w.admin('PATCH', `/admin/apps/${a.json.client_id}`, { introspect_all_tokens: true });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.introspect_all_tokens, true);
    gw = a.json;
    jar = new CookieJar();
  });

  after(async () => {
    await up?.close();
    await cs?.close();
    await w?.stop();
  });

  test('1. MCP client walk: 401 → RFC 9728 → AS metadata → code + PKCE + resource in Chromium → gateway', async () => {
    // The MCP client calls the server without a token.
    const first = await raw(`${w.baseUrl}/gateway/demo/anything`);
    assert.equal(first.status, 401, first.text);
    assert.equal(up.hits.length, 0, 'nothing forwarded without a token');
    const challenge = bearerParams(first.headers.get('www-authenticate'));
    assert.equal(challenge.error, undefined, 'no error code when no token was sent (RFC 6750 §3.1)');
    assert.equal(challenge.resource_metadata, `${w.baseUrl}/.well-known/oauth-protected-resource/gateway/demo`);

    // RFC 9728 protected resource metadata.
    const prm = await raw(challenge.resource_metadata);
    assert.equal(prm.status, 200, prm.text);
    assert.match(prm.headers.get('content-type') ?? '', /^application\/json/);
    demo = prm.json.resource;
    assert.equal(demo, `${w.baseUrl}/gateway/demo`);
    assert.deepEqual(prm.json.authorization_servers, [w.baseUrl]);
    assert.deepEqual(prm.json.scopes_supported, ['api']);
    assert.deepEqual(prm.json.bearer_methods_supported, ['header']);
    assert.equal(typeof prm.json.resource_name, 'string');
    other = (await raw(`${w.baseUrl}/.well-known/oauth-protected-resource/gateway/other`)).json.resource;
    assert.equal(other, `${w.baseUrl}/gateway/other`);
    const root = await raw(`${w.baseUrl}/.well-known/oauth-protected-resource`);
    assert.equal(root.status, 200, root.text);
    assert.equal(root.json.resource, w.baseUrl);
    const listed = root.json.resources.find((r) => r.resource === demo);
    assert.equal(listed?.resource_metadata, challenge.resource_metadata);

    // Authorization server metadata (RFC 8414) by openid-client, which checks the issuer.
    const as = new URL(prm.json.authorization_servers[0]);
    config = await client.discovery(as, docUrl, undefined, client.None(), { execute: [client.allowInsecureRequests], algorithm: 'oauth2' });
    const md = config.serverMetadata();
    assert.equal(md.issuer, w.baseUrl);
    assert.equal(md.client_id_metadata_document_supported, true);
    assert.equal(md.resource_indicators_supported, true);
    assert.ok(md.code_challenge_methods_supported.includes('S256'));
    assert.equal(md.registration_endpoint, `${w.baseUrl}/services/oauth2/register`);

    // Code + PKCE (S256) + resource, the user logs in and approves in Chromium.
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: cbUrl, scope: SCOPE, state, resource: demo,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    });
    assert.equal(authUrl.searchParams.get('client_id'), docUrl);
    const browser = await launchChromium();
    let callbackUrl;
    try {
      const page = await (await browser.newContext()).newPage();
      const arrived = cs.next('/cb');
      arrived.catch(() => {}); // awaited below; a timeout must not be an unhandled rejection
      await page.goto(authUrl.href);
      assert.ok(cs.count('/client.json') >= 1, 'the server fetched the metadata document');
      await page.locator('input[name="username"]').fill(USER.username);
      await page.locator('input[name="password"]').fill(USER.password);
      await page.locator('button[name="login"]').click();
      await page.locator('button[name="approve"]').waitFor();
      const consent = await page.locator('body').innerText();
      assert.match(consent, /127\.0\.0\.1/, 'the consent page names the redirect URI host');
      assert.match(consent, /\bapi\b/);
      await page.locator('button[name="approve"]').click();
      const seen = await arrived;
      await page.waitForURL((u) => u.href.startsWith(cbUrl));
      callbackUrl = new URL(page.url());
      assert.equal(callbackUrl.search, new URL(seen.url, cs.origin).search);
      assert.equal(callbackUrl.searchParams.get('state'), state);
    } finally {
      await browser.close();
    }

    // Token exchange: client_id = the document URL, no secret, the resource again.
    walk = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state }, { resource: demo });
    assert.equal(walk.token_type.toLowerCase(), 'bearer');
    assert.ok(walk.refresh_token);
    assert.deepEqual(new Set(walk.scope.split(' ')), new Set(SCOPE.split(' ')));
    const i = await introspect(walk.access_token);
    assert.equal(i.active, true);
    assert.equal(audOf(i), demo, 'aud is exactly the resource');
    assert.equal(i.client_id, docUrl);
    assert.equal(i.username, USER.username);
    assert.equal(i.iss, w.baseUrl);
    assert.ok(i.scope.split(' ').includes('api'));

    // The gateway forwards, with identity headers, caller-sent X-Auth-* dropped, no Authorization.
    const before = up.hits.length;
    const res = await client.fetchProtectedResource(config, walk.access_token, new URL(`${w.baseUrl}/gateway/demo/hello?x=1`), 'GET', undefined,
      new Headers({ 'x-auth-user': 'spoofed', 'x-auth-client-id': 'spoofed' }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-upstream'), 'yes');
    assert.deepEqual(await res.json(), { upstream: true, url: '/hello?x=1' });
    assert.equal(up.hits.length, before + 1);
    const hit = up.hits.at(-1);
    assert.equal(hit.method, 'GET');
    assert.equal(hit.url, '/hello?x=1');
    assert.equal(hit.headers.authorization, undefined);
    assert.equal(hit.headers['x-auth-sub'], identityUrl());
    assert.equal(hit.headers['x-auth-user'], USER.username);
    assert.equal(hit.headers['x-auth-client-id'], docUrl);
    assert.ok(hit.headers['x-auth-scope'].split(' ').includes('api'), hit.headers['x-auth-scope']);
    assert.equal(hit.headers['x-auth-resource'], demo);
    // Same method and body.
    const p = await raw(`${w.baseUrl}/gateway/demo/echo`, { method: 'POST', headers: { authorization: `Bearer ${walk.access_token}`, 'content-type': 'text/plain' }, body: 'ping' });
    assert.equal(p.status, 200, p.text);
    assert.equal(up.hits.at(-1).method, 'POST');
    assert.equal(up.hits.at(-1).body, 'ping');

    // The same token at the other route: a foreign audience.
    const n = up.hits.length;
    await assert.rejects(client.fetchProtectedResource(config, walk.access_token, new URL(`${w.baseUrl}/gateway/other/hello`), 'GET'), (e) => {
      assert.equal(e.code, 'OAUTH_WWW_AUTHENTICATE_CHALLENGE', e.message);
      assert.equal(e.status ?? e.response?.status, 401);
      const c = e.cause.find((ch) => ch.scheme === 'bearer');
      assert.equal(c.parameters.error, 'invalid_token');
      assert.equal(c.parameters.resource_metadata, `${w.baseUrl}/.well-known/oauth-protected-resource/gateway/other`);
      return true;
    });
    const o = await gatewayGet('/gateway/other/hello', walk.access_token);
    assert.equal(o.status, 401);
    assert.equal(o.json?.error, 'invalid_token', o.text);
    assert.equal(bearerParams(o.headers.get('www-authenticate')).error, 'invalid_token');
    assert.equal(up.hits.length, n, 'nothing forwarded on a refusal');
  });

  test('2. the app record: a public app keyed by the document URL', async () => {
    const r = await w.admin('GET', `/admin/apps/${encodeURIComponent(docUrl)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, docUrl);
    assert.equal(r.json.name, CLIENT_NAME);
    assert.deepEqual(r.json.callback_urls, [cbUrl]);
    assert.equal(r.json.pkce_required, true, 'PKCE required');
    assert.equal(r.json.client_secret, undefined);
    const isPublic = r.json.secret_required_web_server === false
      || r.json.token_endpoint_auth_method === 'none' || r.json.registration?.token_endpoint_auth_method === 'none';
    assert.ok(isPublic, `a public app (no secret at the token endpoint): ${r.text}`);
  });

  test('3. refresh: the family\'s resource (repeated or omitted) works; another resource is invalid_target', async () => {
    const second = await w.admin('POST', '/admin/resources', { uri: 'https://api.example.com/second', name: 'Second API', scopes: ['api'] });
    assert.equal(second.status, 201, second.text);
    const repeated = await client.refreshTokenGrant(config, walk.refresh_token, { resource: demo });
    assert.ok(repeated.access_token);
    assert.equal(audOf(await introspect(repeated.access_token)), demo);
    const gwr = await gatewayGet('/gateway/demo/after-refresh', repeated.access_token);
    assert.equal(gwr.status, 200, gwr.text);
    const rt = repeated.refresh_token ?? walk.refresh_token;
    const omitted = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: rt, client_id: docUrl });
    assert.equal(omitted.status, 200, omitted.text);
    assert.equal(audOf(await introspect(omitted.json.access_token)), demo, 'omitted: the family\'s resource');
    const rt2 = omitted.json.refresh_token ?? rt;
    for (const resource of [second.json.uri, other]) {
      const bad = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: rt2, client_id: docUrl, resource });
      assert.equal(bad.status, 400, `${resource}: ${bad.text}`);
      assert.equal(bad.json?.error, 'invalid_target', bad.text);
      assert.equal(bad.json?.access_token, undefined);
    }
  });

  test('4a. document refusals: too large, client_id mismatch, secret-based auth, client_secret, 302', async () => {
    const big = (url) => JSON.stringify(doc(url, { x_padding: 'a'.repeat(6000) }));
    serve('/big.json', big(cs.url('/big.json')));
    cs.on('/big-chunked.json', (req, res) => { // no Content-Length: the limit must hold on the bytes
      res.writeHead(200, { 'content-type': 'application/json' });
      const body = big(cs.url('/big-chunked.json'));
      for (let i = 0; i < body.length; i += 1000) res.write(body.slice(i, i + 1000));
      res.end();
    });
    serve('/mismatch.json', doc(cs.url('/other.json')));
    serve('/slash.json', doc(`${cs.url('/slash.json')}/`));
    serve('/basic.json', doc(cs.url('/basic.json'), { token_endpoint_auth_method: 'client_secret_basic' }));
    serve('/post.json', doc(cs.url('/post.json'), { token_endpoint_auth_method: 'client_secret_post' }));
    serve('/secret.json', doc(cs.url('/secret.json'), { client_secret: 'sekrit-value' }));
    // If the redirect were followed, the target would be a document for the first URL.
    serve('/moved.json', '', { status: 302, headers: { location: cs.url('/moved-target.json') } });
    serve('/moved-target.json', doc(cs.url('/moved.json')));
    const cases = [
      ['/big.json', /too large/i],
      ['/big-chunked.json', /too large/i],
      ['/mismatch.json', /client_id does not match/i],
      ['/slash.json', /client_id does not match/i],
      ['/basic.json', /token_endpoint_auth_method/],
      ['/post.json', /token_endpoint_auth_method/],
      ['/secret.json', undefined],
      ['/moved.json', /redirect/i],
    ];
    for (const [path, why] of cases) {
      const r = await authzGet(request(cs.url(path)).params);
      assert.ok(cs.count(path) >= 1, `${path} was fetched`);
      assertErrorPage(r, 'invalid_client_id', why);
    }
    assert.equal(cs.count('/moved-target.json'), 0, 'redirects are not followed');
    // None of them became an app.
    for (const [path] of cases) assert.equal((await w.admin('GET', `/admin/apps/${encodeURIComponent(cs.url(path))}`)).status, 404, path);
  });

  test('4b. a redirect_uri not listed in the document is the redirect_uri_mismatch page', async () => {
    for (const redirect_uri of [cs.url('/not-listed'), 'https://evil.example/cb']) {
      const r = await authzGet(request(docUrl, { redirect_uri }).params);
      assertErrorPage(r, 'redirect_uri_mismatch');
    }
  });

  test('4c. unreachable and HTTP 500 are refused; errors are not cached (fixed answer works)', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}/client.json`;
    assertErrorPage(await authzGet(request(dead).params), 'invalid_client_id', /unreachable/i);

    const flaky = cs.url('/flaky.json');
    serve('/flaky.json', 'oops', { status: 500, headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' } });
    assertErrorPage(await authzGet(request(flaky).params), 'invalid_client_id', /500/);
    assert.equal(cs.count('/flaky.json'), 1);
    serve('/flaky.json', doc(flaky));
    const ok = await login(request(flaky).params);
    assert.ok(ok.code, `the fixed document works: ${ok.status} ${ok.location ?? ok.body}`);
    assert.ok(cs.count('/flaky.json') >= 2, 'fetched again: the error was not cached');
    assert.equal(baseOf(ok.location), cbUrl);
  });

  test('4d. the org allow-list refuses other documents; an empty list allows any again', async () => {
    const fresh = cs.url('/fresh.json');
    serve('/fresh.json', doc(fresh));
    const set = await w.admin('PATCH', '/admin/settings', { client_id_metadata_document_prefixes: ['https://only.example/'] });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.json.client_id_metadata_document_prefixes, ['https://only.example/']);
    try {
      for (const url of [docUrl, fresh]) {
        assertErrorPage(await authzGet(request(url).params), 'invalid_client_id', /not allowed/i);
        // With a session too: no login, no consent, no code.
        const r = await login(request(url).params);
        assert.equal(r.code ?? null, null, `${url}: no code`);
        assert.equal(r.status, 400);
      }
      assert.equal(cs.count('/fresh.json'), 0, 'a document outside the allow-list is not fetched');
    } finally {
      const reset = await w.admin('PATCH', '/admin/settings', { client_id_metadata_document_prefixes: [] });
      assert.equal(reset.status, 200, reset.text);
      assert.deepEqual(reset.json.client_id_metadata_document_prefixes, []);
    }
    for (const url of [docUrl, fresh]) {
      const again = await login(request(url, { resource: demo }).params);
      assert.ok(again.code, `${url} allowed again: ${again.status} ${again.location ?? again.body}`);
    }
  });

  test('5a. /admin/resources: create, list (with the gateway routes), bad URIs, delete', async () => {
    const created = await w.admin('POST', '/admin/resources', { uri: 'https://api.example.com/v2', name: 'API v2', scopes: ['api'] });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.uri, 'https://api.example.com/v2');
    assert.equal(created.json.name, 'API v2');
    assert.deepEqual(created.json.scopes, ['api']);
    assert.equal(typeof created.json.resource_id, 'string');
    assert.equal(typeof created.json.created_at, 'number');
    const list = await w.admin('GET', '/admin/resources');
    assert.equal(list.status, 200, list.text);
    assert.ok(Array.isArray(list.json), list.text);
    const mine = list.json.find((r) => r.resource_id === created.json.resource_id);
    assert.equal(mine?.uri, 'https://api.example.com/v2');
    assert.notEqual(mine.gateway, true);
    for (const g of [demo, other]) assert.equal(list.json.find((r) => r.uri === g)?.gateway, true, `${g} listed as a gateway resource`);

    for (const uri of ['https://api.example.com/v3#frag', '/relative/api', 'ftp://api.example.com/x', 'not a uri']) {
      const bad = await w.admin('POST', '/admin/resources', { uri, name: 'Bad', scopes: ['api'] });
      assert.equal(bad.status, 400, `${uri}: ${bad.status} ${bad.text}`);
    }
    assert.equal((await w.admin('GET', '/admin/resources')).json.filter((r) => r.name === 'Bad').length, 0);

    // A registered resource can be asked for; once deleted it is unknown.
    const usable = await login(request(docUrl, { resource: created.json.uri, scope: 'api' }).params);
    assert.ok(usable.code, `${usable.status} ${usable.location ?? usable.body}`);
    const del = await w.admin('DELETE', `/admin/resources/${encodeURIComponent(created.json.resource_id)}`);
    assert.equal(del.status, 204, del.text);
    assert.equal((await w.admin('GET', '/admin/resources')).json.find((r) => r.resource_id === created.json.resource_id), undefined);
    // A client that registered itself hears request errors on the error page, never by a
    // redirect to the URI it chose (RFC 9700 §4.11.2, docs/endpoints.md).
    const gone = await login(request(docUrl, { resource: created.json.uri, scope: 'api' }).params);
    assert.equal(gone.status, 400, `${gone.status} ${gone.location ?? gone.body}`);
    assert.match(gone.text ?? gone.body, /error=invalid_target/);
  });

  test('5b. authorize: unknown resource or fragment → invalid_target, two resources → invalid_request, on the error page (a self-registered client)', async () => {
    const cases = [
      ['unknown', [['resource', 'https://unknown.example/api']], 'invalid_target'],
      ['fragment', [['resource', `${demo}#frag`]], 'invalid_target'],
      ['two', [['resource', demo], ['resource', other]], 'invalid_request'],
    ];
    for (const [label, extra, error] of cases) {
      const { params } = request(docUrl);
      for (const withSession of [false, true]) {
        const r = withSession
          ? await login([...Object.entries(params), ...extra])
          : await authzGet([...Object.entries(params), ...extra]);
        assert.equal(r.status, 400, `${label}: the error page, got ${r.status} ${r.location ?? ''} ${r.text ?? r.body}`);
        assert.equal(r.location ?? null, null, `${label}: never a redirect to the client's own URI`);
        assert.equal(new URLSearchParams((r.text ?? r.body).trim()).get('error'), error, label);
      }
    }
  });

  test('5c. token endpoint: another resource than the authorize one → invalid_target; omitted → the authorize one', async () => {
    const a = await code(docUrl, demo);
    const bad = await tokenRequest(w.baseUrl, { ...a.fields, resource: other });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json?.error, 'invalid_target', bad.text);
    assert.equal(bad.json?.access_token, undefined);

    const b = await code(docUrl, demo);
    const omitted = await tokenRequest(w.baseUrl, b.fields);
    assert.equal(omitted.status, 200, omitted.text);
    assert.equal(audOf(await introspect(omitted.json.access_token)), demo);

    // Without any resource: aud is the issuer, no gateway route accepts the token, and a refresh
    // that asks for a resource is refused.
    const c = await code(docUrl);
    const plain = await tokenRequest(w.baseUrl, c.fields);
    assert.equal(plain.status, 200, plain.text);
    assert.equal(audOf(await introspect(plain.json.access_token)), w.baseUrl);
    const n = up.hits.length;
    const refused = await gatewayGet('/gateway/demo/hello', plain.json.access_token);
    assert.equal(refused.status, 401, refused.text);
    assert.equal(bearerParams(refused.headers.get('www-authenticate')).error, 'invalid_token');
    assert.equal(up.hits.length, n);
    assert.ok(plain.json.refresh_token, plain.text);
    const r = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: plain.json.refresh_token, client_id: docUrl, resource: demo });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json?.error, 'invalid_target');
  });
});
