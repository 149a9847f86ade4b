// Bad input at every endpoint of the real worker: missing, duplicate, oversized and wrongly typed
// parameters, wrong methods and content types, broken client authentication, garbage tokens and
// paths, and CORS. Every single response is checked: status < 500 and no stack trace or panic
// text in the body (CONTRACT §2: "Nothing a caller sends produces a 5xx or a stack trace").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker } from './harness.mjs';
import { authorize, tokenRequest, pkcePair, CookieJar, formFields } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const ORIGIN = 'http://127.0.0.1:5555';
const TOKEN = '/services/oauth2/token';
const AUTHZ = '/services/oauth2/authorize';
const REVOKE = '/services/oauth2/revoke';
const INTROSPECT = '/services/oauth2/introspect';
const USERINFO = '/services/oauth2/userinfo';
const FORM = 'application/x-www-form-urlencoded';
const STACK = /panicked|RuntimeError|stack backtrace|wasm-function|unreachable executed|\bat \S+ \(|\.rs:\d+|node_modules|Traceback/i;

let w;
let app; // confidential app with a registered CORS origin
let user;
let tokens; // a live token response of `app` for `user`
let requests = 0;

// Every request this file makes to the worker, including those of the harness and the flow
// helper, goes through this check: status < 500 and no stack trace or panic text in the body.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const r = await realFetch(input, init);
  const url = String(input?.url ?? input);
  if (w && url.startsWith(w.baseUrl)) {
    requests++;
    const text = await r.clone().text();
    const what = `${init.method ?? 'GET'} ${url.slice(w.baseUrl.length, w.baseUrl.length + 80)}`;
    assert.ok(r.status < 500, `${what} → ${r.status}: ${text.slice(0, 300)}`);
    assert.doesNotMatch(text, STACK, `${what}: stack trace or panic in the body`);
  }
  return r;
};

before(async () => {
  w = await startTestWorker();
  const a = await w.admin('POST', '/admin/apps', {
    name: 'bad input app',
    callback_urls: [CB],
    scopes: ['api', 'openid', 'refresh_token', 'profile'],
    allowed_origins: [ORIGIN],
  });
  assert.equal(a.status, 201, a.text);
  app = a.json;
  const u = await w.admin('POST', '/admin/users', { username: 'bad-input@example.com', password: 'correct horse battery', email: 'bad-input@example.com', name: 'Bad Input' });
  assert.equal(u.status, 201, u.text);
  user = { ...u.json, password: 'correct horse battery' };
  tokens = await freshTokens();
});

after(() => {
  globalThis.fetch = realFetch;
  if (!w) return;
  try {
    assert.ok(requests > 100, `expected to have checked many requests, checked ${requests}`);
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
  } finally {
    w.stop();
  }
});

async function freshTokens() {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge },
    { username: user.username, password: user.password },
  );
  assert.ok(a.code, a.location ?? a.body);
  const t = await call('POST', TOKEN, {
    form: { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret, code_verifier: verifier },
  });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

/**
 * One HTTP request, never following redirects. `form` (object or raw string) is sent as
 * form-urlencoded. Every response is checked for < 500 and the absence of stack traces.
 */
async function call(method, path, { headers = {}, body, form, query } = {}) {
  const h = { ...headers };
  if (form !== undefined) {
    h['content-type'] ??= FORM;
    body = typeof form === 'string' ? form : new URLSearchParams(form).toString();
  }
  const url = w.baseUrl + path + (query === undefined ? '' : '?' + (typeof query === 'string' ? query : new URLSearchParams(query)));
  const r = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, location: r.headers.get('location') };
}

function basic(id, secret) {
  return 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');
}

/** An RFC 6749 §5.2 JSON error with no-store. */
function oauthError(r, status, error, description) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, r.text);
  assert.ok(r.json, r.text);
  assert.equal(r.json.error, error, r.text);
  assert.equal(typeof r.json.error_description, 'string');
  if (description !== undefined) assert.equal(r.json.error_description, description);
  return r;
}

function tokenError(r, status, error, description) {
  oauthError(r, status, error, description);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, 'token responses carry no-store');
  if (error === 'invalid_client') assert.ok(r.headers.get('www-authenticate'), 'invalid_client carries WWW-Authenticate');
  return r;
}

const client = () => ({ client_id: app.client_id, client_secret: app.client_secret });

// ------------------------------------------------------------------------------------------ token

test('token: wrong methods are 405 with a JSON invalid_request', async () => {
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'PROPFIND']) {
    const r = await call(method, TOKEN, { query: { grant_type: 'authorization_code' } });
    oauthError(r, 405, 'invalid_request');
    assert.match(r.headers.get('allow') ?? '', /POST/);
  }
});

test('token: wrong content types are 400 invalid_request', async () => {
  const fields = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...client() };
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'text/plain' }, body: new URLSearchParams(fields).toString() }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'application/xml' }, body: '<grant_type>refresh_token</grant_type>' }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, {}), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'multipart/form-data' }, body: 'not multipart at all' }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'multipart/form-data; boundary=XX' }, body: '--XX\r\ngarbage\r\n--XX--' }), 400, 'invalid_request');
  // Control: the same fields form-encoded, and multipart, are accepted.
  const ok = await call('POST', TOKEN, { form: fields });
  assert.equal(ok.status, 200, ok.text);
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  const mp = await call('POST', TOKEN, { body: fd });
  assert.equal(mp.status, 200, mp.text);
  assert.match(mp.headers.get('cache-control') ?? '', /no-store/);
});

test('token: missing, empty and unknown grant_type', async () => {
  tokenError(await call('POST', TOKEN, { form: { ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: '', ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: '' }), 400, 'invalid_request');
  for (const grant_type of ['foo', 'AUTHORIZATION_CODE', 'urn:example:nope', 'authorization_code ', '\u0000', 'x'.repeat(2000)]) {
    tokenError(await call('POST', TOKEN, { form: { grant_type, ...client() } }), 400, 'unsupported_grant_type', 'grant type not supported');
  }
});

test('token: duplicate parameters are invalid_request', async () => {
  const cases = [
    'grant_type=authorization_code&grant_type=refresh_token',
    'grant_type=authorization_code&code=a&code=b&redirect_uri=' + encodeURIComponent(CB),
    `grant_type=refresh_token&refresh_token=a&refresh_token=b`,
    `grant_type=refresh_token&refresh_token=a&client_id=${app.client_id}&client_id=${app.client_id}`,
    `grant_type=authorization_code&code=a&redirect_uri=x&redirect_uri=y`,
    `grant_type=authorization_code&code=a&code_verifier=x&code_verifier=y`,
    `grant_type=refresh_token&refresh_token=${tokens.refresh_token}&scope=api&scope=openid`,
  ];
  for (const form of cases) {
    const body = `${form}&client_id=${app.client_id}&client_secret=${app.client_secret}`;
    // A second client_id makes the body carry three, still a duplicate.
    tokenError(await call('POST', TOKEN, { form: body }), 400, 'invalid_request');
  }
  // Duplicate client_secret.
  tokenError(await call('POST', TOKEN, { form: `grant_type=refresh_token&refresh_token=x&client_id=${app.client_id}&client_secret=a&client_secret=b` }), 400, 'invalid_request');
});

test('token: missing grant parameters are invalid_request', async () => {
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'authorization_code', redirect_uri: CB, ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'authorization_code', code: '', redirect_uri: CB, ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', ...client() } }), 400, 'invalid_request');
});

test('token: oversized bodies are 413 and oversized parameters 400, never 5xx', async () => {
  const big = 'a'.repeat(100 * 1024);
  // Bodies over 64 KiB: 413 (hardening 6.1; this test pinned 400 before).
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: big, ...client() } }), 413, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: `grant_type=refresh_token&refresh_token=x&${'junk=1&'.repeat(20000)}` }), 413, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: 'r'.repeat(10 * 1024), ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'authorization_code', code: 'c'.repeat(10 * 1024), redirect_uri: CB, ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'authorization_code', code: 'abc', redirect_uri: CB, code_verifier: 'v'.repeat(10 * 1024), ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: 'x', client_id: 'i'.repeat(10 * 1024), client_secret: 's' } }), 400, 'invalid_request');
  // A 1 MB multipart body.
  const fd = new FormData();
  fd.append('grant_type', 'refresh_token');
  fd.append('refresh_token', 'm'.repeat(1024 * 1024));
  tokenError(await call('POST', TOKEN, { body: fd }), 413, 'invalid_request');
});

test('token: undecodable bytes and odd encodings are handled', async () => {
  const raw = Buffer.from([0x67, 0x72, 0x61, 0x6e, 0x74, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x3d, 0xff, 0xfe, 0x00, 0x26, 0x25, 0x5a, 0x5a]);
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': FORM }, body: raw }), 400, 'unsupported_grant_type');
  tokenError(await call('POST', TOKEN, { form: 'grant_type=refresh_token&refresh_token=%ZZ%&client_id=%&client_secret=%%' }), 400, 'invalid_client_id');
  tokenError(await call('POST', TOKEN, { form: '&&&==&=x&grant_type' }), 400, 'invalid_request');
  tokenError(await call('POST', TOKEN, { headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: 'grant_type=nope' }), 400, 'unsupported_grant_type');
});

test('token: unknown client_id is invalid_client_id / client identifier invalid', async () => {
  for (const fields of [
    { grant_type: 'authorization_code', code: 'nope', redirect_uri: CB },
    { grant_type: 'refresh_token', refresh_token: 'nope' },
  ]) {
    tokenError(await call('POST', TOKEN, { form: { ...fields, client_id: '3MVG9doesnotexist', client_secret: 'x' } }), 400, 'invalid_client_id', 'client identifier invalid');
    tokenError(await call('POST', TOKEN, { form: fields, headers: { authorization: basic('3MVG9doesnotexist', 'x') } }), 400, 'invalid_client_id', 'client identifier invalid');
  }
});

test('token: a wrong secret is 401 invalid_client / invalid client credentials with WWW-Authenticate', async () => {
  const fields = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
  for (const r of [
    await call('POST', TOKEN, { form: { ...fields, client_id: app.client_id, client_secret: 'wrong' } }),
    await call('POST', TOKEN, { form: { ...fields, client_id: app.client_id, client_secret: app.client_secret + 'x' } }),
    await call('POST', TOKEN, { form: { ...fields, client_id: app.client_id, client_secret: app.client_secret.slice(0, -1) } }),
    await call('POST', TOKEN, { form: fields, headers: { authorization: basic(app.client_id, 'wrong') } }),
    await call('POST', TOKEN, { form: { grant_type: 'authorization_code', code: 'nope', redirect_uri: CB, client_id: app.client_id, client_secret: 'wrong' } }),
  ]) {
    tokenError(r, 401, 'invalid_client', 'invalid client credentials');
  }
  // No secret at all for a confidential client.
  tokenError(await call('POST', TOKEN, { form: { ...fields, client_id: app.client_id } }), 401, 'invalid_client');
  // No client at all.
  tokenError(await call('POST', TOKEN, { form: fields }), 401, 'invalid_client');
  // Control: Basic with the right secret works.
  const ok = await call('POST', TOKEN, { form: fields, headers: { authorization: basic(app.client_id, app.client_secret) } });
  assert.equal(ok.status, 200, ok.text);
});

test('token: malformed Basic headers are refused without a 5xx', async () => {
  const fields = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
  for (const authorization of [
    'Basic !!!not-base64!!!',
    'Basic ' + Buffer.from('no-colon-here').toString('base64'),
    'Basic ' + Buffer.from([0xff, 0xfe, 0x3a, 0x00]).toString('base64'),
    'Basic ' + 'A'.repeat(9000),
    'Basic ====',
  ]) {
    const r = await call('POST', TOKEN, { form: fields, headers: { authorization } });
    assert.ok([400, 401].includes(r.status), `${authorization.slice(0, 30)} → ${r.status}`);
    assert.ok(['invalid_client', 'invalid_request', 'invalid_client_id'].includes(r.json?.error), r.text);
    if (r.status === 401) assert.ok(r.headers.get('www-authenticate'));
  }
  // An empty Basic value.
  const r = await call('POST', TOKEN, { form: { ...fields, ...client() }, headers: { authorization: 'Basic' } });
  assert.ok(r.status === 200 || r.status === 400 || r.status === 401, r.text);
});

test('token: Basic and client_secret together are invalid_request', async () => {
  const fields = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
  tokenError(
    await call('POST', TOKEN, { form: { ...fields, client_secret: app.client_secret }, headers: { authorization: basic(app.client_id, app.client_secret) } }),
    400, 'invalid_request',
  );
  // Basic for one client and client_id of another in the body.
  tokenError(
    await call('POST', TOKEN, { form: { ...fields, client_id: 'someoneelse' }, headers: { authorization: basic(app.client_id, app.client_secret) } }),
    400, 'invalid_request',
  );
});

test('token: unknown code and unknown refresh token are invalid_grant with Salesforce descriptions', async () => {
  for (const code of ['nope', 'a'.repeat(43), tokens.access_token, tokens.refresh_token]) {
    tokenError(await call('POST', TOKEN, { form: { grant_type: 'authorization_code', code, redirect_uri: CB, ...client() } }), 400, 'invalid_grant', 'expired authorization code');
  }
  for (const refresh_token of ['nope', 'b'.repeat(64), tokens.access_token, '00D!x']) {
    tokenError(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token, ...client() } }), 400, 'invalid_grant', 'expired access/refresh token');
  }
});

test('token: format=urlencoded (or Accept) makes errors form-encoded', async () => {
  const check = (r, status, error) => {
    assert.equal(r.status, status, r.text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/x-www-form-urlencoded/);
    assert.equal(r.json, undefined, 'not JSON');
    const p = new URLSearchParams(r.text);
    assert.equal(p.get('error'), error, r.text);
    assert.ok(p.get('error_description'));
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  };
  check(await call('POST', TOKEN, { form: { grant_type: 'nope', format: 'urlencoded' } }), 400, 'unsupported_grant_type');
  check(await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: 'nope', format: 'urlencoded', ...client() } }), 400, 'invalid_grant');
  const wrong = await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: 'nope', format: 'urlencoded', client_id: app.client_id, client_secret: 'bad' } });
  check(wrong, 401, 'invalid_client');
  assert.ok(wrong.headers.get('www-authenticate'));
  check(await call('POST', TOKEN, { form: { grant_type: 'nope' }, headers: { accept: FORM } }), 400, 'unsupported_grant_type');
  // format=json wins over Accept; unknown formats fall back to JSON.
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'nope', format: 'json' }, headers: { accept: FORM } }), 400, 'unsupported_grant_type');
  tokenError(await call('POST', TOKEN, { form: { grant_type: 'nope', format: 'bogus' } }), 400, 'unsupported_grant_type');
  // A duplicated format is still an error, not a crash.
  const dup = await call('POST', TOKEN, { form: 'grant_type=nope&format=urlencoded&format=json' });
  assert.equal(dup.status, 400);
  // Success comes form-encoded too.
  const ok = await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, format: 'urlencoded', ...client() } });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.headers.get('content-type') ?? '', /^application\/x-www-form-urlencoded/);
  assert.ok(new URLSearchParams(ok.text).get('access_token'));
  assert.match(ok.headers.get('cache-control') ?? '', /no-store/);
});

test('token: successful responses carry Cache-Control: no-store', async () => {
  const r = await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...client() } });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  assert.ok(r.json.access_token);
});

// -------------------------------------------------------------------------------------- authorize

function authzQuery(extra = {}) {
  return { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'bad-state', ...extra };
}

/** An unredirectable authorize error: a 400 text/plain page, never a redirect. */
function errorPage(r, error) {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.location, null, 'never a redirect');
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(new URLSearchParams(r.text).get('error'), error, r.text);
  assert.ok(r.text.startsWith(`error=${error}&error_description=`), r.text);
}

/** A redirected authorize error, at the registered callback, with state where it was valid. */
function errorRedirect(r, error, state = 'bad-state') {
  assert.equal(r.status, 302, r.text);
  const url = new URL(r.location);
  assert.equal(url.origin + url.pathname, CB);
  assert.equal(url.searchParams.get('error'), error, r.location);
  assert.equal(url.searchParams.get('code'), null);
  assert.ok(url.searchParams.get('error_description'));
  if (state !== null) assert.equal(url.searchParams.get('state'), state);
  return url;
}

test('authorize GET: missing, duplicate and oversized client_id / redirect_uri are error pages', async () => {
  errorPage(await call('GET', AUTHZ), 'invalid_client_id');
  errorPage(await call('GET', AUTHZ, { query: { response_type: 'code', redirect_uri: CB } }), 'invalid_client_id');
  errorPage(await call('GET', AUTHZ, { query: `response_type=code&client_id=${app.client_id}&client_id=${app.client_id}&redirect_uri=${encodeURIComponent(CB)}` }), 'invalid_request');
  errorPage(await call('GET', AUTHZ, { query: `response_type=code&client_id=${app.client_id}&redirect_uri=${encodeURIComponent(CB)}&redirect_uri=${encodeURIComponent(CB)}` }), 'invalid_request');
  errorPage(await call('GET', AUTHZ, { query: { ...authzQuery(), client_id: 'c'.repeat(10 * 1024) } }), 'invalid_request');
  errorPage(await call('GET', AUTHZ, { query: { ...authzQuery(), redirect_uri: CB + '?' + 'r'.repeat(10 * 1024) } }), 'invalid_request');
  errorPage(await call('GET', AUTHZ, { query: { ...authzQuery(), redirect_uri: '' } }), 'redirect_uri_missing');
  errorPage(await call('GET', AUTHZ, { query: { ...authzQuery(), redirect_uri: 'not a url' } }), 'redirect_uri_mismatch');
  errorPage(await call('GET', AUTHZ, { query: 'client_id=%ZZ&redirect_uri=%' }), 'invalid_client_id');
  errorPage(await call('GET', AUTHZ, { query: { ...authzQuery(), client_id: '\u0000\u202e' } }), 'invalid_client_id');
});

test('authorize GET: bad parameters after the client is known are redirected with state', async () => {
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ max_age: 'abc' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ max_age: '-1' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ max_age: '1e3' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ max_age: '99999999999999999999999' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ response_type: 'foo' }) }), 'unsupported_response_type');
  const rt = errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ response_type: 'CODE' }) }), 'unsupported_response_type');
  assert.equal(rt.searchParams.get('error_description'), 'response type not supported');
  const q = authzQuery();
  delete q.response_type;
  errorRedirect(await call('GET', AUTHZ, { query: q }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ scope: 'api bogus' }) }), 'invalid_scope');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ scope: 'full' }) }), 'invalid_scope');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ prompt: 'bogus' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ prompt: 'none login' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ code_challenge: 'short' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ code_challenge: '!'.repeat(43) }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ code_challenge_method: 'S256' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ code_challenge: pkcePair().challenge, code_challenge_method: 'S512' }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ nonce: 'n'.repeat(10 * 1024) }) }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ login_hint: 'h'.repeat(10 * 1024) }) }), 'invalid_request');
  const base = new URLSearchParams(authzQuery()).toString();
  errorRedirect(await call('GET', AUTHZ, { query: `${base}&scope=api&scope=openid` }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: `${base}&response_type=code` }), 'invalid_request');
  errorRedirect(await call('GET', AUTHZ, { query: `${base}&prompt=login&prompt=consent` }), 'invalid_request');
  // A duplicated or oversized state cannot be echoed, but is still an error, not a crash.
  errorRedirect(await call('GET', AUTHZ, { query: `${base}&state=other` }), 'invalid_request', null);
  errorRedirect(await call('GET', AUTHZ, { query: authzQuery({ state: 's'.repeat(10 * 1024) }) }), 'invalid_request', null);
  // Unknown parameters are ignored: the login page.
  const ok = await call('GET', AUTHZ, { query: authzQuery({ unknown_param: 'x', display: 'touch', device_id: 'abc' }) });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.text, /name="password"/);
});

test('authorize GET: a huge query string is refused without a 5xx', async () => {
  const r = await call('GET', AUTHZ, { query: { ...authzQuery(), junk: 'j'.repeat(100 * 1024) } });
  assert.ok(r.status >= 400 && r.status < 500, `${r.status}`);
  assert.equal(r.location, null);
  const many = await call('GET', AUTHZ, { query: new URLSearchParams(authzQuery()).toString() + '&x=1'.repeat(3000) });
  assert.ok(many.status === 200 || (many.status >= 400 && many.status < 500), `${many.status}`);
});

test('authorize: wrong methods are 405 JSON', async () => {
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    oauthError(await call(method, AUTHZ, { query: authzQuery() }), 405, 'invalid_request');
  }
});

/** A fresh login page: its hidden fields and browser cookie. */
async function loginForm() {
  const jar = new CookieJar();
  const r = await fetch(`${w.baseUrl}${AUTHZ}?${new URLSearchParams(authzQuery())}`, { redirect: 'manual' });
  jar.store(r);
  const html = await r.text();
  assert.equal(r.status, 200);
  const fields = formFields(html);
  assert.ok(fields.interaction && fields.csrf_token);
  return { fields, cookie: jar.header() };
}

test('authorize POST: missing, wrong, duplicate and oversized form input → 400 page, no session', async () => {
  const noSession = (r, what, status = 400) => {
    assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.location, null, what);
    assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('eo_sid=')), `${what}: no session cookie`);
    assert.ok(r.json?.error === 'invalid_request' || new URLSearchParams(r.text).get('error') === 'invalid_request', `${what}: ${r.text}`);
  };
  noSession(await call('POST', AUTHZ), 'empty');
  noSession(await call('POST', AUTHZ, { headers: { 'content-type': 'application/json' }, body: '{"interaction":"x"}' }), 'json');
  noSession(await call('POST', AUTHZ, { form: {} }), 'no fields');
  noSession(await call('POST', AUTHZ, { form: { interaction: 'x', csrf_token: 'y', login: '1', username: user.username, password: user.password } }), 'unknown interaction');
  const { fields, cookie } = await loginForm();
  const login = { username: user.username, password: user.password, login: '1' };
  noSession(await call('POST', AUTHZ, { form: `interaction=${fields.interaction}&interaction=${fields.interaction}&csrf_token=${fields.csrf_token}&login=1`, headers: { cookie } }), 'duplicate interaction');
  noSession(await call('POST', AUTHZ, { form: `interaction=${fields.interaction}&csrf_token=${fields.csrf_token}&csrf_token=${fields.csrf_token}&login=1`, headers: { cookie } }), 'duplicate csrf');
  noSession(await call('POST', AUTHZ, { form: { ...fields, ...login, interaction: 'i'.repeat(10 * 1024) }, headers: { cookie } }), '10 KB interaction');
  noSession(await call('POST', AUTHZ, { form: { ...fields, ...login, username: 'u'.repeat(10 * 1024) }, headers: { cookie } }), '10 KB username');
  noSession(await call('POST', AUTHZ, { form: new URLSearchParams({ ...fields, ...login }) + '&password=again', headers: { cookie } }), 'duplicate password');
  noSession(await call('POST', AUTHZ, { form: { ...fields, ...login, pad: 'p'.repeat(100 * 1024) }, headers: { cookie } }), '100 KB body', 413);
  // Approving on a login-stage form (nobody logged in) must not issue a code.
  noSession(await call('POST', AUTHZ, { form: { ...fields, approve: '1' }, headers: { cookie } }), 'approve before login');
  noSession(await call('POST', AUTHZ, { form: { ...fields }, headers: { cookie } }), 'no action');
  // A garbage cookie header does not crash anything.
  noSession(await call('POST', AUTHZ, { form: { ...fields, ...login }, headers: { cookie: ';;;=;eo_bid;eo_bid==;\u00ff' } }), 'garbage cookie');
  // A wrong password re-shows the login page (no session), a right one goes on to consent.
  const wrong = await call('POST', AUTHZ, { form: { ...fields, ...login, password: 'wrong password' }, headers: { cookie } });
  assert.ok([200, 401].includes(wrong.status), `${wrong.status}`);
  assert.match(wrong.text, /name="password"/);
  assert.ok(!wrong.headers.getSetCookie().some((c) => c.startsWith('eo_sid=')));
  const ok = await call('POST', AUTHZ, { form: { ...fields, ...login }, headers: { cookie } });
  // The user approved this app in before(): straight to the code, with a 303 after the POST.
  assert.equal(ok.status, 303, ok.text);
  assert.ok(new URL(ok.location).searchParams.get('code'), ok.location);
  assert.ok(ok.headers.getSetCookie().some((c) => c.startsWith('eo_sid=')));
});

// ----------------------------------------------------------------------------------------- revoke

test('revoke: missing, duplicate, oversized token; wrong method and content type', async () => {
  tokenError(await call('POST', REVOKE, { form: {} }), 400, 'invalid_request');
  tokenError(await call('POST', REVOKE, { form: { token: '' } }), 400, 'invalid_request');
  tokenError(await call('GET', REVOKE), 400, 'invalid_request');
  tokenError(await call('POST', REVOKE, { form: 'token=a&token=b' }), 400, 'invalid_request');
  tokenError(await call('GET', REVOKE, { query: 'token=a&token=b' }), 400, 'invalid_request');
  tokenError(await call('POST', REVOKE, { form: { token: 't'.repeat(10 * 1024) } }), 400, 'invalid_request');
  tokenError(await call('POST', REVOKE, { form: { token: 'x', pad: 'p'.repeat(100 * 1024) } }), 413, 'invalid_request');
  tokenError(await call('POST', REVOKE, { headers: { 'content-type': 'application/json' }, body: '{"token":"x"}' }), 400, 'invalid_request');
  tokenError(await call('POST', REVOKE), 400, 'invalid_request');
  for (const method of ['PUT', 'DELETE', 'PATCH']) oauthError(await call(method, REVOKE, { form: { token: 'x' } }), 405, 'invalid_request');
  // A client that authenticates wrongly is refused.
  tokenError(await call('POST', REVOKE, { form: { token: 'x', client_id: app.client_id, client_secret: 'wrong' } }), 401, 'invalid_client');
  tokenError(await call('POST', REVOKE, { form: { token: 'x', client_id: 'nobody', client_secret: 'wrong' } }), 400, 'invalid_client_id');
});

test('revoke: an unknown token is 200; a real one is revoked (control)', async () => {
  for (const token of ['nope', '00Dxx!yy', 'z'.repeat(500)]) {
    assert.equal((await call('POST', REVOKE, { form: { token } })).status, 200);
    assert.equal((await call('GET', REVOKE, { query: { token } })).status, 200);
  }
  const t = await freshTokens();
  const before = await call('GET', USERINFO, { headers: { authorization: `Bearer ${t.access_token}` } });
  assert.equal(before.status, 200);
  assert.equal((await call('POST', REVOKE, { form: { token: t.access_token } })).status, 200);
  assert.equal((await call('GET', USERINFO, { headers: { authorization: `Bearer ${t.access_token}` } })).status, 401);
});

// ------------------------------------------------------------------------------------- introspect

test('introspect: client authentication required; garbage is {"active":false}', async () => {
  tokenError(await call('POST', INTROSPECT, { form: { token: 'garbage' } }), 401, 'invalid_client');
  tokenError(await call('POST', INTROSPECT, { form: { token: tokens.access_token, client_id: app.client_id } }), 401, 'invalid_client');
  tokenError(await call('POST', INTROSPECT, { form: { token: tokens.access_token, client_id: app.client_id, client_secret: 'wrong' } }), 401, 'invalid_client', 'invalid client credentials');
  tokenError(await call('POST', INTROSPECT, { form: { token: 'x' }, headers: { authorization: basic(app.client_id, 'wrong') } }), 401, 'invalid_client');
  tokenError(await call('POST', INTROSPECT, { form: { token: 'x' }, headers: { authorization: 'Basic %%%' } }), 401, 'invalid_client');
  tokenError(await call('POST', INTROSPECT, { form: { ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', INTROSPECT, { form: `token=a&token=b&client_id=${app.client_id}&client_secret=${app.client_secret}` }), 400, 'invalid_request');
  tokenError(await call('POST', INTROSPECT, { form: { token: 't'.repeat(10 * 1024), ...client() } }), 400, 'invalid_request');
  tokenError(await call('POST', INTROSPECT, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x', ...client() }) }), 400, 'invalid_request');
  for (const method of ['GET', 'PUT', 'DELETE']) oauthError(await call(method, INTROSPECT, { query: { token: 'x' } }), 405, 'invalid_request');
  for (const token of ['garbage', 'a'.repeat(64), '00D!', '\u0000', '%ZZ']) {
    const r = await call('POST', INTROSPECT, { form: { token, ...client() } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { active: false });
  }
  // Control: a live token with Basic auth is active.
  const live = await call('POST', INTROSPECT, { form: { token: tokens.access_token }, headers: { authorization: basic(app.client_id, app.client_secret) } });
  assert.equal(live.status, 200);
  assert.equal(live.json.active, true);
  assert.equal(live.json.client_id, app.client_id);
});

// --------------------------------------------------------------------------- userinfo and identity

function bearerError(r) {
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json?.error, 'invalid_token', r.text);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
}

test('userinfo: missing or bad bearer tokens are 401 invalid_token with WWW-Authenticate', async () => {
  bearerError(await call('GET', USERINFO));
  bearerError(await call('POST', USERINFO));
  for (const authorization of ['Bearer garbage', 'Bearer', 'Bearer ', 'bearer 00D!x', `Bearer ${'t'.repeat(10 * 1024)}`, 'Basic Zm9vOmJhcg==', 'Token abc', `Bearer ${tokens.refresh_token}`, `Bearer ${tokens.access_token}x`]) {
    bearerError(await call('GET', USERINFO, { headers: { authorization } }));
  }
  bearerError(await call('GET', USERINFO, { query: { oauth_token: 'garbage' } }));
  bearerError(await call('POST', USERINFO, { form: { access_token: 'garbage' } }));
  bearerError(await call('POST', USERINFO, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: tokens.access_token }) }));
  // Userinfo never reads a token from the query (hardening 6.8): query junk is simply no token.
  bearerError(await call('GET', USERINFO, { query: 'oauth_token=a&oauth_token=b' }));
  bearerError(await call('GET', USERINFO, { query: { access_token: tokens.access_token } }));
  bearerError(await call('GET', USERINFO, { query: { oauth_token: 'o'.repeat(10 * 1024) } }));
  for (const method of ['PUT', 'DELETE']) oauthError(await call(method, USERINFO), 405, 'invalid_request');
  // Control.
  const ok = await call('GET', USERINFO, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.preferred_username, user.username);
});

test('identity URL: bad tokens, wrong ids, bad paths and methods', async () => {
  const idPath = new URL(tokens.id).pathname;
  const [, , org, uid] = idPath.split('/');
  bearerError(await call('GET', idPath));
  bearerError(await call('GET', idPath, { headers: { authorization: 'Bearer garbage' } }));
  bearerError(await call('GET', idPath, { query: { oauth_token: 'garbage', format: 'json' } }));
  const other = await call('GET', `/id/${org}/005xxxxxxxxxxxxxxx`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(other.status, 404, other.text);
  assert.ok(other.json?.error);
  const otherOrg = await call('GET', `/id/00Dxxxxxxxxxxxxxxx/${uid}`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(otherOrg.status, 404);
  for (const p of [`/id/${org}/${uid}/extra`, '/id/x', '/id/', `/id/${org}/${uid}/..%2F..`, '/id/%00/%00/%00']) {
    const r = await call('GET', p, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(r.status, 404, `${p}: ${r.text}`);
    assert.ok(r.json, `${p}: JSON 404`);
  }
  for (const method of ['PUT', 'DELETE']) oauthError(await call(method, idPath), 405, 'invalid_request');
  // Control.
  const ok = await call('GET', idPath, { query: { oauth_token: tokens.access_token, format: 'json' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.user_id, uid);
});

// -------------------------------------------------------------------------------- JWKS, discovery

test('JWKS and discovery: junk input, other methods', async () => {
  for (const path of ['/id/keys', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    const ok = await call('GET', path, { query: 'x=1&x=2&%ZZ=%&' + 'q'.repeat(5000) });
    assert.equal(ok.status, 200, `${path}: ${ok.text}`);
    assert.ok(ok.json);
    const head = await call('HEAD', path);
    assert.equal(head.status, 200);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await call(method, path, { form: { a: 'b' } });
      assert.ok(r.status === 404 || r.status === 405, `${method} ${path} → ${r.status}`);
      assert.ok(r.json?.error, `${method} ${path}: JSON error`);
    }
  }
  const jwks = (await call('GET', '/id/keys')).json;
  assert.ok(jwks.keys.length >= 2, 'retired key still published');
  for (const k of jwks.keys) {
    assert.equal(k.kty, 'RSA');
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `JWKS leaks ${priv}`);
  }
  const meta = (await call('GET', '/.well-known/openid-configuration')).json;
  assert.equal(meta.token_endpoint, w.baseUrl + TOKEN);
});

// ------------------------------------------------------------------------------------------ admin

test('admin: missing or wrong admin token is 401', async () => {
  for (const token of [null, 'wrong', w.adminToken + 'x', w.adminToken.slice(1), '']) {
    const r = await w.admin('GET', '/admin/apps', undefined, { token });
    assert.equal(r.status, 401, r.text);
    assert.ok(r.headers.get('www-authenticate'));
  }
  const basicAdmin = await call('GET', '/admin/apps', { headers: { authorization: `Basic ${Buffer.from('admin:' + w.adminToken).toString('base64')}` } });
  assert.equal(basicAdmin.status, 401);
  const noAuthPost = await call('POST', '/admin/users', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x', password: 'xxxxxxxxxxxx', email: 'x@x.io', name: 'x' }) });
  assert.equal(noAuthPost.status, 401);
});

test('admin: malformed, unknown, wrongly typed and oversized input is 400 naming the problem', async () => {
  const adm = async (method, path, body, raw) => {
    return w.admin(method, path, body, raw === undefined ? {} : { raw });
  };
  const bad = (r, re) => {
    assert.equal(r.status, 400, r.text);
    assert.ok(r.json?.error_description, r.text);
    if (re) assert.match(r.json.error_description, re);
  };
  const okApp = { name: 'x', callback_urls: [CB], scopes: ['api'] };
  bad(await adm('POST', '/admin/apps', undefined, '{not json'), /JSON/i);
  bad(await adm('POST', '/admin/apps', undefined, ''));
  bad(await adm('POST', '/admin/apps', undefined, '[]'));
  bad(await adm('POST', '/admin/apps', undefined, 'null'));
  bad(await adm('POST', '/admin/apps', undefined, '"string"'));
  bad(await adm('POST', '/admin/apps', { ...okApp, bogus_field: 1, other_bogus: 2 }), /bogus_field.*other_bogus|other_bogus.*bogus_field/);
  bad(await adm('POST', '/admin/apps', { ...okApp, callback_urls: 'http://127.0.0.1:9/cb' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, scopes: 'api' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, scopes: [] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, scopes: ['api', 'nonsense_scope'] }), /nonsense_scope/);
  bad(await adm('POST', '/admin/apps', { ...okApp, callback_urls: ['javascript:alert(1)'] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, callback_urls: ['http://evil.example/cb'] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, callback_urls: ['https://a.example/cb#f'] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, callback_urls: [123] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, pkce_required: 'yes' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, access_token_ttl_s: -5 }));
  bad(await adm('POST', '/admin/apps', { ...okApp, access_token_ttl_s: 1e30 }));
  bad(await adm('POST', '/admin/apps', { ...okApp, access_token_ttl_s: 'abc' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, permitted_users: 'everyone' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, refresh_token_policy: 'sometimes' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, allowed_origins: ['http://127.0.0.1:5555/path'] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, allowed_origins: ['*'] }));
  bad(await adm('POST', '/admin/apps', { ...okApp, name: '' }));
  bad(await adm('POST', '/admin/apps', { ...okApp, name: 'n'.repeat(300) }));
  bad(await adm('POST', '/admin/apps', { name: 'x', scopes: ['api'] }), /callback_urls/);
  const huge = await adm('POST', '/admin/apps', { ...okApp, pad: 'p'.repeat(100 * 1024) });
  assert.equal(huge.status, 413, huge.text);
  assert.equal(huge.json?.error, 'invalid_request');
  bad(await adm('POST', '/admin/users', { username: 'u1', password: 'short', email: 'u1@example.com', name: 'U' }), /password/);
  bad(await adm('POST', '/admin/users', { username: 'u2', password: 'long enough password', email: 'not-an-email', name: 'U' }), /email/);
  bad(await adm('POST', '/admin/users', { username: '', password: 'long enough password', email: 'u3@example.com', name: 'U' }));
  bad(await adm('POST', '/admin/users', { username: 'u\u0000x', password: 'long enough password', email: 'u4@example.com', name: 'U' }));
  bad(await adm('POST', '/admin/users', { username: 'u5', password: 'long enough password', email: 'u5@example.com', name: 'U', admin: true }), /admin/);
  bad(await adm('POST', '/admin/users', { username: 'u6', password: 12345678901, email: 'u6@example.com', name: 'U' }));
  bad(await adm('POST', '/admin/users', { username: 'u7', password: 'p'.repeat(2000), email: 'u7@example.com', name: 'U' }));
  bad(await adm('POST', '/admin/users', { username: user.username, password: 'long enough password', email: 'dup@example.com', name: 'Dup' }), /exists/);
  bad(await adm('PATCH', '/admin/users/' + user.user_id, { active: 'no' }));
  bad(await adm('PATCH', '/admin/users/' + user.user_id, { username: 'renamed' }));
  bad(await adm('PATCH', '/admin/settings', { require_pkce: 'true' }));
  bad(await adm('PATCH', '/admin/settings', { org_id: '00Dhijack' }));
  bad(await adm('PATCH', '/admin/settings', undefined, '{'));
  bad(await adm('PATCH', `/admin/apps/${app.client_id}`, { client_secret: 'chosen' }));
  bad(await adm('PATCH', `/admin/apps/${app.client_id}`, { scopes: ['bogus'] }));
  // The failed patches changed nothing.
  const still = await adm('GET', `/admin/apps/${app.client_id}`);
  assert.equal(still.status, 200);
  assert.deepEqual(still.json.scopes, ['api', 'openid', 'refresh_token', 'profile']);
  assert.equal(still.json.client_secret, undefined, 'secret never shown again');
  const settings = await adm('GET', '/admin/settings');
  assert.equal(settings.json.require_pkce, false);
});

test('admin: unknown resources are 404, wrong methods 405', async () => {
  const adm = async (method, path, body) => {
    const r = await w.admin(method, path, body);
    assert.ok(r.json, `${method} ${path}: JSON`);
    return r;
  };
  for (const [method, path] of [
    ['GET', '/admin/apps/nope'], ['PATCH', '/admin/apps/nope'], ['DELETE', '/admin/apps/nope'],
    ['POST', '/admin/apps/nope/secret'], ['GET', '/admin/users/nope'], ['DELETE', '/admin/users/nope'],
    ['POST', `/admin/apps/${app.client_id}/users/nope`], ['GET', '/admin/nope'], ['GET', '/admin/apps/a/b/c/d/e'],
    ['GET', '/admin/users/%00'], ['GET', '/admin/' + 'x'.repeat(5000)],
  ]) {
    const r = await adm(method, path, method === 'PATCH' ? { name: 'x' } : undefined);
    assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
  }
  for (const [method, path] of [['PUT', '/admin/apps'], ['DELETE', '/admin/apps'], ['PUT', `/admin/apps/${app.client_id}`], ['DELETE', '/admin/settings'], ['GET', '/admin/registration-tokens']]) {
    const r = await adm(method, path);
    assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
  }
});

// -------------------------------------------------------------------------------- garbage paths

test('garbage paths are 404 JSON', async () => {
  for (const path of [
    '/nope', '/services/oauth2/nope', '/services/oauth2/token/extra', '/services/oauth2', '/services',
    '/.well-known/nope', '/%00', '/%2e%2e/%2e%2e/etc/passwd', '/services/oauth2/%74oken%2F..',
    '/' + 'a'.repeat(8000), '/idx/keys', '/admin_', '/wp-login.php', '/.env', '/favicon.ico',
  ]) {
    const r = await call('GET', path);
    assert.equal(r.status, 404, `${path.slice(0, 60)} → ${r.status}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/, path.slice(0, 60));
    assert.ok(r.json?.error, path.slice(0, 60));
    const p = await call('POST', path, { form: { grant_type: 'authorization_code' } });
    assert.equal(p.status, 404);
  }
});

// ------------------------------------------------------------------------------------------- CORS

test('CORS: registered origins are echoed on preflight and responses; others get nothing', async () => {
  const preflight = (path, origin) => call('OPTIONS', path, {
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
  });
  for (const path of [TOKEN, REVOKE, INTROSPECT, USERINFO]) {
    const r = await preflight(path, ORIGIN);
    assert.ok(r.status === 200 || r.status === 204, `${path} → ${r.status}`);
    assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN, path);
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(r.headers.get('vary') ?? '', /Origin/i);
  }
  for (const origin of ['http://evil.example', 'http://127.0.0.1:55555', 'http://127.0.0.1:5555/', 'HTTP://127.0.0.1:5555', 'null', 'http://127.0.0.1', 'o'.repeat(5000)]) {
    const r = await preflight(TOKEN, origin);
    assert.equal(r.headers.get('access-control-allow-origin'), null, `${origin.slice(0, 40)} must not be allowed`);
    const post = await call('POST', TOKEN, { form: { grant_type: 'nope' }, headers: { origin } });
    assert.equal(post.status, 400);
    assert.equal(post.headers.get('access-control-allow-origin'), null);
  }
  // The actual cross-origin response carries the header too, on success and on error.
  const err = await call('POST', TOKEN, { form: { grant_type: 'nope' }, headers: { origin: ORIGIN } });
  assert.equal(err.headers.get('access-control-allow-origin'), ORIGIN);
  const ok = await call('POST', TOKEN, { form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...client() }, headers: { origin: ORIGIN } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
  // The admin API and the authorize pages are never CORS-readable.
  const adminPre = await call('OPTIONS', '/admin/apps', { headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
  assert.equal(adminPre.headers.get('access-control-allow-origin'), null);
  const authzPre = await call('OPTIONS', AUTHZ, { headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
  assert.equal(authzPre.headers.get('access-control-allow-origin'), null);
});

test('CORS: discovery and JWKS answer any origin with *', async () => {
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/id/keys']) {
    for (const origin of ['http://evil.example', ORIGIN, 'null']) {
      const r = await call('GET', path, { headers: { origin } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), '*', `${path} from ${origin}`);
      const pre = await call('OPTIONS', path, { headers: { origin, 'access-control-request-method': 'GET' } });
      assert.ok(pre.status === 200 || pre.status === 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    }
    const noOrigin = await call('GET', path);
    assert.equal(noOrigin.status, 200);
  }
});
