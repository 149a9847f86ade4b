// Issue 10 end to end: the gateway route in front of a real MCP server, authorized by the MCP
// TypeScript SDK's own OAuth client, against the real worker (wrangler dev → workerd).
//
// What it shows:
// - The upstream is a real MCP server (the SDK's McpServer + StreamableHTTPServerTransport on a
//   node http server on 127.0.0.1) with a `whoami` tool (echoes the headers it received) and a
//   `progress` tool (streams progress notifications), plus plain /sse and /echo routes. The
//   worker runs with GATEWAY_UPSTREAM pointing at it; `/gateway/demo/…` forwards to it.
// - The SDK client (Client + StreamableHTTPClientTransport with an in-memory OAuthClientProvider)
//   gets 401 from the gateway, follows `resource_metadata` (RFC 9728) to the authorization server
//   metadata (RFC 8414), registers itself (RFC 7591; refused while open registration is off,
//   accepted once it is on), and sends the user to the authorize URL, which headless Chromium
//   drives (login, consent) to a loopback callback. finishAuth(code) gets a token whose audience
//   is the route's resource (RFC 8707, checked by introspection); the tools are then called
//   through the gateway: the upstream saw X-Auth-* and no Authorization header; progress
//   notifications arrive while the tool is still running.
// - A plain SSE upstream response arrives at the client incrementally through the gateway.
// - Forwarding: prefix stripped, query/method/body kept, caller-sent X-Auth-* replaced.
// - Refusals (status, WWW-Authenticate, JSON body, and nothing reaching the upstream): no token,
//   token in the query, unknown, revoked, expired (access_token_ttl_s 60, waited out), without
//   resource, for another route's resource, and without the `api` scope (403).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { z } from 'zod/v4';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CookieJar, authorize, pkcePair, tokenRequest } from './flow.mjs';
import { startTestWorker } from './harness.mjs';
import { guardResponses, launchChromium, revoke } from './ua-helpers.mjs';

const USER = { username: 'mcp.gateway@example.com', password: 'mcp-horse-battery-7', email: 'mcp.gateway@example.com', name: 'Mcp Gateway' };
const SSE_GAP_MS = 700;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let w;
let base; // the worker's URL = the issuer
let upstream;
let cb;
let browser;
let guard;
let orgId;
let user;
let identityUrl;
let webApp; // a confidential app (api, refresh_token) for flow.mjs tokens
const jar = new CookieJar(); // one login for every flow.mjs authorization (the login throttle)
let probeSeq = 0;
let demoToken; // an access token for `${base}/gateway/demo` (flow.mjs)
let short; // { token, exp } of an app with access_token_ttl_s 60

// ----------------------------------------------------------------------------------- upstream

/** The MCP server: `whoami` and `progress`. One per session. */
function buildMcpServer(log) {
  const server = new McpServer({ name: 'gateway-upstream', version: '1.0.0' });
  server.registerTool('whoami', { description: 'The Authorization and X-Auth-* headers this request carried' }, async (extra) => {
    const h = extra.requestInfo?.headers ?? {};
    const seen = { authorization: h.authorization ?? null };
    for (const [k, v] of Object.entries(h)) if (k.startsWith('x-auth-')) seen[k] = v;
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  server.registerTool('progress', { description: 'Streams progress', inputSchema: { steps: z.number().int().min(1).max(5) } }, async ({ steps }, extra) => {
    const token = extra._meta?.progressToken;
    log.progressSent = [];
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
      }
      log.progressSent.push({ progress: i, t: Date.now() });
      await sleep(SSE_GAP_MS);
    }
    return { content: [{ type: 'text', text: `done after ${steps} steps` }] };
  });
  return server;
}

/**
 * The gateway's upstream on a random loopback port. Every request is recorded in `hits`
 * ({ method, url, headers, t }). /mcp: the MCP server (stateful sessions); /sse: three SSE events
 * SSE_GAP_MS apart (write times in `sseSent`); anything else: JSON echo of the request.
 */
async function startUpstream() {
  const log = { hits: [], sseSent: [], progressSent: [] };
  const sessions = new Map();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://upstream');
    log.hits.push({ method: req.method, url: req.url, path: url.pathname, headers: { ...req.headers }, t: Date.now() });
    try {
      if (url.pathname === '/mcp') {
        const sid = req.headers['mcp-session-id'];
        let transport = sid ? sessions.get(sid) : undefined;
        if (!transport) {
          if (sid) { res.writeHead(404).end(); return; }
          transport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            onsessioninitialized: (id) => sessions.set(id, transport),
          });
          await buildMcpServer(log).connect(transport);
        }
        await transport.handleRequest(req, res);
        return;
      }
      if (url.pathname === '/sse') {
        log.sseSent = [];
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (let i = 1; i <= 3; i++) {
          res.write(`data: ${i}\n\n`);
          log.sseSent.push({ data: String(i), t: Date.now() });
          if (i < 3) await sleep(SSE_GAP_MS);
        }
        res.end();
        return;
      }
      let body = '';
      for await (const chunk of req) body += chunk;
      // A cookie for the authorization server's origin, which must never reach the browser.
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo', 'set-cookie': '__Host-eo_sid=fixed; Path=/; Secure' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    } catch (e) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    log,
    origin: `http://127.0.0.1:${server.address().port}`,
    hits: log.hits,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** The client's loopback redirect URI; `next()` resolves with the next /cb request URL. */
async function startCallbackServer() {
  const waiters = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname === '/cb') for (const f of waiters.splice(0)) f(url);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('callback received');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    redirectUri: `http://127.0.0.1:${server.address().port}/cb`,
    next: (timeoutMs = 20000) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('nothing reached the callback')), timeoutMs);
      waiters.push((u) => { clearTimeout(t); resolve(u); });
    }),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// ------------------------------------------------------------------------------------ helpers

/** The MCP SDK's OAuthClientProvider, all in memory. */
class MemoryAuthProvider {
  constructor(redirectUri) {
    this._redirectUri = redirectUri;
    this.authUrls = [];
    this.states = [];
  }
  get redirectUrl() { return this._redirectUri; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK e2e client',
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { const s = randomBytes(16).toString('base64url'); this.states.push(s); return s; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  redirectToAuthorization(url) { this.authUrls.push(new URL(url)); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  saveDiscoveryState(s) { this.discovery = s; }
  discoveryState() { return this.discovery; }
}

/** A fetch for the SDK that records every request (method, path, body, status, WWW-Authenticate). */
function recordingFetch(calls) {
  return async (input, init = {}) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const body = init.body === undefined ? undefined : String(init.body);
    const entry = { method: (init.method ?? 'GET').toUpperCase(), path: url.pathname, url, body, headers: new Headers(init.headers) };
    calls.push(entry);
    const r = await fetch(input, init);
    entry.status = r.status;
    entry.www = r.headers.get('www-authenticate');
    return r;
  };
}

/** The parameters of a `Bearer k="v", …` challenge. */
function parseBearer(header) {
  assert.ok(header, 'a WWW-Authenticate header');
  const m = /^Bearer(?:\s+(.*))?$/i.exec(header.trim());
  assert.ok(m, `a Bearer challenge: ${header}`);
  const params = {};
  for (const p of (m[1] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) params[p[1]] = p[2] ?? p[3];
  return params;
}

const prmUrl = (route) => `${base}/.well-known/oauth-protected-resource/gateway/${route}`;
const resourceOf = (route) => `${base}/gateway/${route}`;

async function newApp(fields) {
  const r = await w.admin('POST', '/admin/apps', { callback_urls: [cb.redirectUri], ...fields });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

let introspector;
/** Introspects with an admin-created app allowed to see every client's tokens. */
async function introspect(token) {
  if (!introspector) {
    const app = await newApp({ name: 'Gateway introspector', scopes: ['api'] });
    const p = await w.admin('PATCH', `/admin/apps/${app.client_id}`, { introspect_all_tokens: true });
    assert.equal(p.status, 200, p.text);
    introspector = app;
  }
  const r = await fetch(`${base}/services/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: introspector.client_id, client_secret: introspector.client_secret }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

/** Code flow (flow.mjs, shared session) → token response; `resource` goes in both requests. */
async function codeToken(app, params = {}) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(base, {
    response_type: 'code', client_id: app.client_id, redirect_uri: cb.redirectUri, state: 'st',
    code_challenge: challenge, code_challenge_method: 'S256', ...params,
  }, { username: USER.username, password: USER.password, jar });
  assert.ok(a.code, `no code: ${a.status} ${a.location ?? a.body?.slice(0, 300)}`);
  const t = await tokenRequest(base, {
    grant_type: 'authorization_code', code: a.code, redirect_uri: cb.redirectUri, code_verifier: verifier,
    client_id: app.client_id, client_secret: app.client_secret, ...(params.resource ? { resource: params.resource } : {}),
  });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

/** A gateway request to a fresh probe path; returns the response, its text/JSON, and the probe. */
async function gatewayProbe(route, { token, headers = {}, query = '', method = 'GET' } = {}) {
  const probe = `probe-${++probeSeq}-${randomUUID().slice(0, 8)}`;
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const r = await fetch(`${base}/gateway/${route}/${probe}${query}`, { method, headers: h });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, probe };
}

/**
 * Asserts a gateway refusal: status, the Bearer challenge (resource_metadata of the route, and
 * `error`/`scope` exactly as expected, absent when undefined), a JSON error body, and that no
 * request for that probe path reached the upstream.
 */
async function assertRefused(what, route, opts, { status, error, scope }) {
  const r = await gatewayProbe(route, opts);
  assert.equal(r.status, status, `${what}: status (${r.text.slice(0, 200)})`);
  const www = r.headers.get('www-authenticate');
  const ch = parseBearer(www);
  assert.equal(ch.resource_metadata, prmUrl(route), `${what}: resource_metadata in ${www}`);
  assert.equal(ch.error, error, `${what}: error in ${www}`);
  assert.equal(ch.scope, scope, `${what}: scope in ${www}`);
  assert.ok(r.json && typeof r.json.error === 'string', `${what}: JSON error body, got ${r.text.slice(0, 200)}`);
  if (error) assert.equal(r.json.error, error, `${what}: body error`);
  assert.equal(typeof r.json.error_description, 'string', `${what}: error_description`);
  assert.ok(!upstream.hits.some((h) => h.url.includes(r.probe)), `${what}: nothing reached the upstream`);
  return r;
}

// ---------------------------------------------------------------------------------- lifecycle

before(async () => {
  guard = guardResponses(() => base);
  upstream = await startUpstream();
  cb = await startCallbackServer();
  w = await startTestWorker({ vars: { GATEWAY_UPSTREAM: upstream.origin } });
  base = w.baseUrl;
  const u = await w.admin('POST', '/admin/users', USER);
  assert.equal(u.status, 201, u.text);
  user = u.json;
  orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
  identityUrl = `${base}/id/${orgId}/${user.user_id}`;
  webApp = await newApp({ name: 'Gateway web app', scopes: ['api', 'refresh_token'] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await cb?.close();
  await upstream?.close();
  await w?.stop();
  guard?.restore();
});

// -------------------------------------------------------------------------------------- tests

test('discovery: registration endpoint, resource indicators; RFC 9728 documents for a route and the root', async () => {
  const as = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
  assert.equal(as.issuer, base);
  assert.equal(as.registration_endpoint, `${base}/services/oauth2/register`);
  assert.equal(as.client_id_metadata_document_supported, true);
  assert.equal(as.resource_indicators_supported, true);
  assert.ok(as.code_challenge_methods_supported.includes('S256'));

  for (const route of ['demo', 'other']) {
    const r = await fetch(prmUrl(route));
    assert.equal(r.status, 200, route);
    const doc = await r.json();
    assert.equal(doc.resource, resourceOf(route));
    assert.deepEqual(doc.authorization_servers, [base]);
    assert.deepEqual(doc.scopes_supported, ['api']);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    assert.equal(typeof doc.resource_name, 'string');
  }
  const root = await (await fetch(`${base}/.well-known/oauth-protected-resource`)).json();
  assert.equal(root.resource, base);
  assert.deepEqual(root.authorization_servers, [base]);
  for (const route of ['demo', 'other']) {
    const entry = root.resources.find((x) => x.resource === resourceOf(route));
    assert.ok(entry, `root document lists ${route}: ${JSON.stringify(root.resources)}`);
    assert.equal(entry.resource_metadata, prmUrl(route));
    assert.deepEqual(entry.scopes_supported, ['api']);
  }
});

test('a token of an app with access_token_ttl_s 60 is accepted while fresh (it is waited out in the last test)', async () => {
  const app = await newApp({ name: 'Short-lived tokens', scopes: ['api'], access_token_ttl_s: 60 });
  const t = await codeToken(app, { resource: resourceOf('demo') });
  assert.equal(Number(t.expires_in), 60);
  const info = await introspect(t.access_token);
  assert.equal(info.active, true);
  short = { token: t.access_token, exp: info.exp };
  const r = await fetch(`${base}/gateway/demo/echo/fresh`, { headers: { authorization: `Bearer ${t.access_token}` } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).url, '/echo/fresh');
});

test('MCP SDK client: 401 → RFC 9728 → metadata → registration (refused, then open) → Chromium login → token for the route → tools through the gateway', async () => {
  const mcpUrl = new URL(`${base}/gateway/demo/mcp`);

  // Registration closed (the default): the SDK's discovery leads it to the registration
  // endpoint, which refuses it without an initial access token.
  const closedCalls = [];
  const closed = new MemoryAuthProvider(cb.redirectUri);
  const c0 = new Client({ name: 'e2e', version: '1.0.0' });
  await assert.rejects(
    c0.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: closed, fetch: recordingFetch(closedCalls) })),
    (e) => { assert.equal(e.errorCode, 'invalid_token', String(e)); return true; },
  );
  const reg0 = closedCalls.find((c) => c.path === '/services/oauth2/register');
  assert.ok(reg0, `the SDK reached registration: ${closedCalls.map((c) => `${c.method} ${c.path} ${c.status}`)}`);
  assert.equal(reg0.status, 401);
  assert.equal(parseBearer(reg0.www).error, 'invalid_token');
  assert.equal(closed.authUrls.length, 0);
  assert.equal(closed.client, undefined);

  const s = await w.admin('PATCH', '/admin/settings', { open_registration: true });
  assert.equal(s.status, 200, s.text);

  // Open registration: the SDK registers and asks for the user's authorization.
  const calls = [];
  const provider = new MemoryAuthProvider(cb.redirectUri);
  const sdkFetch = recordingFetch(calls);
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: sdkFetch });
  await assert.rejects(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport), UnauthorizedError);
  const seq = calls.map((c) => `${c.method} ${c.path} ${c.status}`);
  assert.deepEqual(seq.slice(0, 4), [
    'POST /gateway/demo/mcp 401',
    'GET /.well-known/oauth-protected-resource/gateway/demo 200',
    'GET /.well-known/oauth-authorization-server 200',
    'POST /services/oauth2/register 201',
  ], seq.join('\n'));
  const ch = parseBearer(calls[0].www);
  assert.equal(ch.resource_metadata, prmUrl('demo'));
  assert.equal(ch.error, undefined, 'no token was sent: no error code');
  const regBody = JSON.parse(calls[3].body);
  assert.equal(regBody.scope, 'api', 'the SDK registers with the scopes of the resource metadata');
  assert.equal(calls[3].headers.get('authorization'), null, 'open registration: no initial access token');
  assert.ok(!upstream.hits.some((h) => h.path === '/mcp'), 'nothing reached the MCP server before authorization');

  assert.ok(provider.client?.client_id, 'client information saved');
  assert.equal(provider.client.client_secret, undefined, 'a "none" client gets no secret');
  assert.equal(provider.client.token_endpoint_auth_method, 'none');
  assert.deepEqual(provider.client.redirect_uris, [cb.redirectUri]);
  assert.equal(provider.authUrls.length, 1);
  const authUrl = provider.authUrls[0];
  assert.equal(authUrl.origin + authUrl.pathname, `${base}/services/oauth2/authorize`);
  const q = authUrl.searchParams;
  assert.equal(q.get('client_id'), provider.client.client_id);
  assert.equal(q.get('resource'), resourceOf('demo'));
  assert.equal(q.get('scope'), 'api');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.equal(q.get('redirect_uri'), cb.redirectUri);

  // The user logs in and approves in Chromium; the browser lands on the client's callback.
  const context = await browser.newContext();
  guard.watchContext(context);
  const page = await context.newPage();
  const arrived = cb.next();
  await page.goto(authUrl.href);
  await page.locator('input[name="username"]').fill(USER.username);
  await page.locator('input[name="password"]').fill(USER.password);
  await page.locator('button[name="login"]').click();
  await page.locator('button[name="approve"]').waitFor();
  assert.match(await page.locator('main').innerText(), /\bapi\b/);
  await page.locator('button[name="approve"]').click();
  const callback = await arrived;
  await context.close();
  assert.equal(callback.searchParams.get('state'), provider.states.at(-1));
  assert.equal(callback.searchParams.get('iss'), base);
  const code = callback.searchParams.get('code');
  assert.ok(code, `a code at the callback: ${callback.search}`);

  await transport.finishAuth(code);
  const tokenCall = calls.findLast((c) => c.path === '/services/oauth2/token');
  assert.equal(tokenCall.status, 200);
  const sent = new URLSearchParams(tokenCall.body);
  assert.equal(sent.get('resource'), resourceOf('demo'), 'the SDK sent resource at the token endpoint');
  assert.equal(sent.get('client_id'), provider.client.client_id);
  assert.equal(sent.get('client_secret'), null);
  assert.ok(sent.get('code_verifier'));
  assert.ok(provider.saved?.access_token, 'tokens saved');
  assert.ok(provider.saved.scope.split(' ').includes('api'));

  const info = await introspect(provider.saved.access_token);
  assert.equal(info.active, true);
  assert.equal(info.aud, resourceOf('demo'), 'the token is for the route');
  assert.equal(info.client_id, provider.client.client_id);
  assert.equal(info.username, USER.username);
  assert.equal(info.iss, base);
  assert.ok(info.scope.split(' ').includes('api'));

  // Connected through the gateway: the tools run upstream with the gateway's identity headers.
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  const transport2 = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: sdkFetch });
  await client.connect(transport2);
  try {
    assert.ok(transport2.sessionId, 'the upstream Mcp-Session-Id came back through the gateway');
    const tools = await client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['progress', 'whoami']);

    const who = await client.callTool({ name: 'whoami', arguments: {} });
    const seen = JSON.parse(who.content[0].text);
    assert.equal(seen.authorization, null, 'no Authorization header reached the upstream');
    assert.equal(seen['x-auth-sub'], identityUrl);
    assert.equal(seen['x-auth-user'], USER.username);
    assert.equal(seen['x-auth-client-id'], provider.client.client_id);
    assert.ok(seen['x-auth-scope'].split(' ').includes('api'), seen['x-auth-scope']);
    assert.equal(seen['x-auth-resource'], resourceOf('demo'));
    const mcpHits = upstream.hits.filter((h) => h.path === '/mcp');
    assert.ok(mcpHits.length >= 3);
    assert.ok(mcpHits.every((h) => h.headers.authorization === undefined), 'no Authorization on any forwarded MCP request');
    assert.ok(mcpHits.some((h) => h.headers['mcp-session-id'] === transport2.sessionId), 'the session header reached the upstream');

    // Progress notifications stream through the gateway while the tool runs.
    const progress = [];
    const result = await client.callTool({ name: 'progress', arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push({ ...p, t: Date.now() }),
    });
    assert.equal(result.content[0].text, 'done after 3 steps');
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3]);
    const upstreamSent = upstream.log.progressSent;
    assert.equal(upstreamSent.length, 3);
    assert.ok(progress[0].t < upstreamSent[2].t,
      `first progress reached the client (${progress[0].t}) before the upstream sent the last (${upstreamSent[2].t})`);
  } finally {
    await client.close();
  }
});

test('streaming: an SSE response reaches the client event by event through the gateway', async () => {
  demoToken ??= (await codeToken(webApp, { resource: resourceOf('demo') })).access_token;
  const r = await fetch(`${base}/gateway/demo/sse`, { headers: { authorization: `Bearer ${demoToken}`, accept: 'text/event-stream' } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  const got = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
      const m = /^data: (.*)$/m.exec(buf.slice(0, i));
      if (m) got.push({ data: m[1], t: Date.now() });
    }
  }
  assert.deepEqual(got.map((e) => e.data), ['1', '2', '3']);
  const sent = upstream.log.sseSent;
  assert.equal(sent.length, 3);
  assert.ok(got[0].t < sent[2].t, `event 1 arrived (${got[0].t}) before the upstream wrote event 3 (${sent[2].t})`);
  const hit = upstream.hits.findLast((h) => h.path === '/sse');
  assert.equal(hit.headers.authorization, undefined);
  assert.equal(hit.headers['x-auth-sub'], identityUrl);
});

test('forwarding: prefix stripped, query, method and body kept; caller-sent X-Auth-* headers replaced or dropped; no cookie either way', async () => {
  demoToken ??= (await codeToken(webApp, { resource: resourceOf('demo') })).access_token;
  const r = await fetch(`${base}/gateway/demo/echo/a/b?x=1&y=two%20words`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${demoToken}`, 'content-type': 'text/plain',
      'x-auth-sub': 'https://evil.example/id/x', 'x-auth-user': 'evil@example.com', 'x-auth-client-id': 'evil',
      'x-auth-scope': 'full', 'x-auth-resource': 'https://evil.example', 'x-auth-admin': 'yes', 'x-other': 'kept',
      cookie: 'eo_sid=the-login-session; other=1',
    },
    body: 'hello upstream',
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-upstream'), 'echo', 'upstream response headers come back');
  assert.equal(r.headers.get('set-cookie'), null, 'an upstream cannot set cookies of our origin');
  const echo = await r.json();
  assert.equal(echo.method, 'POST');
  assert.equal(echo.url, '/echo/a/b?x=1&y=two%20words');
  assert.equal(echo.body, 'hello upstream');
  assert.equal(echo.headers.authorization, undefined);
  assert.equal(echo.headers['x-auth-sub'], identityUrl);
  assert.equal(echo.headers['x-auth-user'], USER.username);
  assert.equal(echo.headers['x-auth-client-id'], webApp.client_id);
  assert.ok(echo.headers['x-auth-scope'].split(' ').includes('api'));
  assert.ok(!echo.headers['x-auth-scope'].split(' ').includes('full'));
  assert.equal(echo.headers['x-auth-resource'], resourceOf('demo'));
  assert.equal(echo.headers['x-auth-admin'], undefined, 'an unknown caller X-Auth-* header is stripped');
  assert.equal(echo.headers['x-other'], 'kept');
  assert.equal(echo.headers.cookie, undefined, 'the login session cookie never reaches the upstream');
});

test('refused without a usable token: none, in the query, unknown', async () => {
  demoToken ??= (await codeToken(webApp, { resource: resourceOf('demo') })).access_token;
  await assertRefused('no token', 'demo', {}, { status: 401 });
  await assertRefused('no token (other route)', 'other', {}, { status: 401 });
  // RFC 9728 bearer_methods_supported is ["header"]: a query token is no token.
  const q = await assertRefused('token in ?access_token=', 'demo', { query: `?access_token=${encodeURIComponent(demoToken)}` }, { status: 401 });
  assert.ok(!q.text.includes(demoToken));
  await assertRefused('unknown opaque token', 'demo', { token: `${orgId}!AQ${randomBytes(60).toString('base64url')}` }, { status: 401, error: 'invalid_token' });
  await assertRefused('garbage token', 'demo', { token: 'not-a-token' }, { status: 401, error: 'invalid_token' });
  // The same valid header token is accepted (the refusals above were about the token).
  assert.equal((await gatewayProbe('demo', { token: demoToken })).status, 200);
});

test('refused: a revoked token (revoked at /services/oauth2/revoke)', async () => {
  const t = (await codeToken(webApp, { resource: resourceOf('demo') })).access_token;
  assert.equal((await gatewayProbe('demo', { token: t })).status, 200, 'works before revocation');
  const rv = await revoke(base, t);
  assert.equal(rv.status, 200, rv.text);
  await assertRefused('revoked token', 'demo', { token: t }, { status: 401, error: 'invalid_token' });
  assert.equal((await introspect(t)).active, false);
});

test('refused: a token without resource, and a token for another route', async () => {
  const plain = await codeToken(webApp, {});
  const info = await introspect(plain.access_token);
  assert.equal(info.active, true);
  assert.equal(info.aud, base, 'no resource: the audience is the issuer');
  await assertRefused('token without resource', 'demo', { token: plain.access_token }, { status: 401, error: 'invalid_token' });

  demoToken ??= (await codeToken(webApp, { resource: resourceOf('demo') })).access_token;
  await assertRefused('demo token at /gateway/other', 'other', { token: demoToken }, { status: 401, error: 'invalid_token' });

  const other = await codeToken(webApp, { resource: resourceOf('other') });
  assert.equal((await introspect(other.access_token)).aud, resourceOf('other'));
  const ok = await gatewayProbe('other', { token: other.access_token });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.headers['x-auth-resource'], resourceOf('other'));
  await assertRefused('other token at /gateway/demo', 'demo', { token: other.access_token }, { status: 401, error: 'invalid_token' });
});

test('refused with 403 insufficient_scope: a token for the route without the api scope', async () => {
  const app = await newApp({ name: 'No api scope', scopes: ['id', 'profile'] });
  const t = await codeToken(app, { resource: resourceOf('demo'), scope: 'id profile' });
  assert.ok(!String(t.scope ?? '').split(' ').includes('api'), t.scope);
  const info = await introspect(t.access_token);
  assert.equal(info.aud, resourceOf('demo'));
  await assertRefused('token without api', 'demo', { token: t.access_token }, { status: 403, error: 'insufficient_scope', scope: 'api' });
});

test('refused: an expired token (access_token_ttl_s 60, waited out)', async () => {
  assert.ok(short, 'the short-lived token of the earlier test');
  const wait = short.exp * 1000 + 1500 - Date.now();
  if (wait > 0) await sleep(wait);
  await assertRefused('expired token', 'demo', { token: short.token }, { status: 401, error: 'invalid_token' });
  assert.equal((await introspect(short.token)).active, false);
});
