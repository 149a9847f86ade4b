// Hardening items that need a worker configured differently from the default: an https ISSUER
// (6.14, `__Host-` cookies) and unusable SIGNING_KEYS (6.17).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { shardRows } from './shard-db.mjs';
import { startTestWorker } from './harness.mjs';
import { authorize, tokenRequest, CookieJar, formFields, cookieAttrs } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'correct horse battery';
const AUTHZ = '/services/oauth2/authorize';
const ISSUER = 'https://login.example.test';

let secure;
let broken;

before(async () => {
  secure = await startTestWorker({ vars: { ISSUER } });
  broken = await startTestWorker({ secrets: { SIGNING_KEYS: 'not a key' } });
});

after(() => {
  for (const w of [secure, broken]) {
    if (!w) continue;
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
    w.stop();
  }
});

async function setup(w, scopes) {
  const app = await w.admin('POST', '/admin/apps', { name: 'hardening workers app', callback_urls: [CB], scopes });
  assert.equal(app.status, 201, app.text);
  const username = `workers-${Math.random().toString(36).slice(2)}@example.com`;
  const user = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: 'Workers User' });
  assert.equal(user.status, 201, user.text);
  return { app: app.json, user: { ...user.json, username, password: PASSWORD } };
}


function assertHostCookie(c, name) {
  assert.ok(c, `${name} set`);
  assert.equal(c.attrs.get('secure'), true, `${name}: Secure`);
  assert.equal(c.attrs.get('path'), '/', `${name}: Path=/`);
  assert.equal(c.attrs.get('httponly'), true, `${name}: HttpOnly`);
  assert.ok(!c.attrs.has('domain'), `${name}: no Domain`);
}

async function post(w, fields, jar) {
  const r = await fetch(`${w.baseUrl}${AUTHZ}`, {
    method: 'POST',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
  jar.store(r);
  return { status: r.status, location: r.headers.get('location'), cookies: r.headers.getSetCookie(), body: await r.text() };
}

// ------------------------------------------------------------------------- 6.14 cookies

test('6.14 with an https ISSUER the cookies are __Host-eo_sid and __Host-eo_bid (Secure, Path=/, HttpOnly, no Domain) and the flow runs on them', async () => {
  const { app, user } = await setup(secure, ['api', 'refresh_token']);
  const jar = new CookieJar();
  const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'h1' });
  const first = await fetch(`${secure.baseUrl}${AUTHZ}?${q}`, { redirect: 'manual' });
  const page = await first.text();
  assert.equal(first.status, 200, page);
  const firstCookies = first.headers.getSetCookie();
  assertHostCookie(firstCookies.map(cookieAttrs).find((c) => c.name === '__Host-eo_bid'), '__Host-eo_bid');
  assert.ok(!firstCookies.some((c) => c.startsWith('eo_bid=')), `no unprefixed eo_bid: ${firstCookies}`);
  jar.store(first);

  const login = await post(secure, { ...formFields(page), username: user.username, password: user.password, login: '1' }, jar);
  assert.equal(login.status, 200, login.body);
  assert.match(login.body, /name="approve"/);
  assertHostCookie(login.cookies.map(cookieAttrs).find((c) => c.name === '__Host-eo_sid'), '__Host-eo_sid');
  assert.ok(!login.cookies.some((c) => c.startsWith('eo_sid=')), `no unprefixed eo_sid: ${login.cookies}`);

  const approved = await post(secure, { ...formFields(login.body), approve: '1' }, jar);
  assert.equal(approved.status, 303, approved.body);
  const url = new URL(approved.location);
  assert.equal(url.origin + url.pathname, CB);
  assert.equal(url.searchParams.get('iss'), ISSUER);
  const t = await tokenRequest(secure.baseUrl, { grant_type: 'authorization_code', code: url.searchParams.get('code'), redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.json.instance_url, ISSUER);

  // The __Host- session cookie is the session: a silent request with it gets a code.
  const silent = await authorize(secure.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none', state: 'h2' }, { jar });
  assert.ok(silent.code, `silent authorize: ${silent.status} ${silent.location ?? silent.body}`);
  assert.equal(silent.state, 'h2');
  // Without it there is no session.
  const bare = new CookieJar();
  bare.cookies.set('__Host-eo_bid', jar.cookies.get('__Host-eo_bid'));
  const none = await authorize(secure.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, prompt: 'none' }, { jar: bare });
  assert.equal(none.error, 'login_required');
});

// ------------------------------------------------------------ 6.17 broken signing keys

test('6.17 with unusable SIGNING_KEYS, /id/keys answers 500 server_error naming the signing keys, not an empty key set', async () => {
  const r = await fetch(`${broken.baseUrl}/id/keys`);
  const text = await r.text();
  assert.equal(r.status, 500, text);
  const body = JSON.parse(text);
  assert.equal(body.error, 'server_error');
  assert.match(body.error_description ?? '', /signing key/i);
  assert.equal(body.keys, undefined);
});

test('6.17 with unusable SIGNING_KEYS a code exchange that needs an ID token is 500 and does not consume the code; without openid it works', async () => {
  const { app, user } = await setup(broken, ['api', 'openid']);
  // Code redemptions and tokens live in the shards (src/edge/shard_object.rs).
  const count = (table) => shardRows(broken.stateDir, `SELECT COUNT(*) AS n FROM ${table}`).reduce((n, r) => n + r.n, 0);
  const a = await authorize(broken.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'openid api' }, { username: user.username, password: user.password });
  assert.ok(a.code, `${a.status} ${a.location ?? a.body}`);
  const exchange = (code) => tokenRequest(broken.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret });
  const r = await exchange(a.code);
  assert.equal(r.status, 500, r.text);
  assert.equal(r.json?.error, 'server_error', r.text);
  assert.equal(r.json.access_token, undefined);
  assert.equal(count('code_redemptions'), 0, 'the code was not redeemed');
  assert.equal(count('tokens'), 0, 'no token was stored');
  assert.match(broken.output(), /SIGNING_KEYS/, 'the worker logs what is wrong');

  // Opaque access tokens and no ID token need no key: that exchange works on this worker.
  const b = await authorize(broken.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'api' }, { username: user.username, password: user.password });
  assert.ok(b.code, `${b.status} ${b.location ?? b.body}`);
  const ok = await exchange(b.code);
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.json.access_token);
  assert.equal(ok.json.id_token, undefined);
  assert.equal(count('code_redemptions'), 1, 'control: the query sees redemptions');
});
