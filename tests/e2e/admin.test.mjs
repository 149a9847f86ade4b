// The admin API (CONTRACT §4) end to end against the real worker: connected apps and users
// through their whole life, secrets at rest and in logs, every kind of bad input (and that a
// refused request writes nothing), 401/404/405, org settings and registration tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestWorker } from './harness.mjs';
import { shardRows } from './shard-db.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const BASE62 = /^[0-9A-Za-z]+$/;

let w;
/** Every response this file saw: [label, status]. None may be 5xx. */
const seen = [];
/** Every client secret, password and registration token handed out or chosen in this file. */
const secrets = new Set();
const passwords = new Set();

const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
const nowS = () => Math.floor(Date.now() / 1000);

function record(label, status, text) {
  seen.push([label, status]);
  assert.ok(status < 500, `${label} answered ${status}: ${text}`);
}

async function admin(method, path, body, opts) {
  const r = await w.admin(method, path, body, opts);
  record(`${method} ${path}`, r.status, r.text);
  return r;
}

async function token(fields, headers) {
  const r = await tokenRequest(w.baseUrl, fields, headers);
  record(`token ${fields.grant_type}`, r.status, r.text);
  return r;
}

async function get(path, headers = {}) {
  const r = await fetch(w.baseUrl + path, { headers });
  const text = await r.text();
  record(`GET ${path}`, r.status, text);
  return { status: r.status, text, headers: r.headers };
}

/** Logs `username` in, approves consent, returns the code (and the verifier used). */
async function codeFor(client_id, username, password, extra = {}) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id, redirect_uri: CB, state: 'st', code_challenge: challenge, ...extra },
    { username, password },
  );
  if (a.status !== undefined) record('authorize', a.status, a.body ?? a.location);
  return { ...a, verifier };
}

/** The audit trail records refused admin requests too (docs/admin-api.md "Audit trail"); the
 * registry is every other table. */
const TRAIL = ['audit_events', 'sqlite_sequence'];

function tables({ registry = false } = {}) {
  // `_cf_*` tables are miniflare's own bookkeeping (a counter that moves on every query).
  const sql = "select name from sqlite_master where type = 'table' and name not like '\\_cf\\_%' escape '\\' order by name";
  return JSON.parse(w.d1(sql)).map((r) => r.name).filter((t) => !registry || !TRAIL.includes(t));
}

/** The whole local D1 as text: every row of every table (of the registry only, if asked). */
function dumpD1(opts) {
  return tables(opts)
    .map((t) => `${t}: ${w.d1(`select * from "${t}"`)}`)
    .join('\n');
}

function rowCounts() {
  const counts = {};
  for (const t of tables({ registry: true })) counts[t] = JSON.parse(w.d1(`select count(*) as n from "${t}"`))[0].n;
  return counts;
}

function rows(sql) {
  const out = w.d1(sql).trim();
  return out ? JSON.parse(out) : [];
}

/** What an observer could see of the registry: both lists and the D1 row counts. */
async function snapshot() {
  const apps = await admin('GET', '/admin/apps');
  const users = await admin('GET', '/admin/users');
  const settings = await admin('GET', '/admin/settings');
  assert.equal(apps.status, 200);
  assert.equal(users.status, 200);
  assert.equal(settings.status, 200);
  return { apps: apps.json, users: users.json, settings: settings.json, counts: rowCounts(), db: dumpD1({ registry: true }) };
}

/** Sends a request that must be refused with 400, a message matching every pattern, and no write. */
async function rejected(method, path, body, patterns, opts) {
  const before = await snapshot();
  const r = await admin(method, path, body, opts);
  const label = `${method} ${path} ${opts?.raw !== undefined ? opts.raw : JSON.stringify(body)}`;
  assert.equal(r.status, 400, `${label}: ${r.text}`);
  assert.equal(r.json?.error, 'invalid_request', `${label}: ${r.text}`);
  assert.equal(typeof r.json.error_description, 'string');
  for (const p of patterns) assert.match(r.json.error_description, p, `${label}: ${r.text}`);
  const afterwards = await snapshot();
  assert.deepEqual(afterwards.apps, before.apps, `${label} changed the app list`);
  assert.deepEqual(afterwards.users, before.users, `${label} changed the user list`);
  assert.deepEqual(afterwards.settings, before.settings, `${label} changed the settings`);
  assert.deepEqual(afterwards.counts, before.counts, `${label} changed D1 row counts`);
  assert.equal(afterwards.db, before.db, `${label} changed D1 contents`);
  return r;
}

const validApp = (over = {}) => ({ name: 'Valid App', callback_urls: [CB], scopes: ['api', 'openid', 'refresh_token'], ...over });

async function newApp(over = {}) {
  const r = await admin('POST', '/admin/apps', validApp(over));
  assert.equal(r.status, 201, r.text);
  secrets.add(r.json.client_secret);
  return r.json;
}

let userSeq = 0;
async function newUser(over = {}) {
  userSeq += 1;
  const body = { username: `user${userSeq}@example.com`, password: `Pa55word-${userSeq}-xyz`, email: `u${userSeq}@example.com`, name: `User ${userSeq}`, ...over };
  passwords.add(body.password);
  const r = await admin('POST', '/admin/users', body);
  assert.equal(r.status, 201, r.text);
  return { ...r.json, password: body.password };
}

before(async () => {
  w = await startTestWorker();
  // The org (settings row) comes into being on first use; make that happen before snapshots.
  const s = await admin('GET', '/admin/settings');
  assert.equal(s.status, 200, s.text);
});

after(() => {
  w?.stop();
});

test('missing or wrong admin token is 401 with WWW-Authenticate, and writes nothing', async () => {
  const before = rowCounts();
  const cases = [
    ['GET', '/admin/apps', undefined],
    ['POST', '/admin/apps', validApp()],
    ['POST', '/admin/users', { username: 'intruder', password: 'intruder-pw-1', email: 'i@example.com', name: 'I' }],
    ['PATCH', '/admin/settings', { allow_username_password_flow: true }],
    ['POST', '/admin/registration-tokens', {}],
    ['GET', '/admin/no-such-thing', undefined],
  ];
  const badTokens = [null, 'wrong-token', w.adminToken + 'x', w.adminToken.slice(0, -1), ''];
  for (const [method, path, body] of cases) {
    for (const tok of badTokens) {
      const r = await admin(method, path, body, { token: tok });
      assert.equal(r.status, 401, `${method} ${path} with token ${JSON.stringify(tok)}: ${r.text}`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/i);
      assert.equal(r.json?.error, 'unauthorized');
      assert.ok(!r.text.includes(w.adminToken), 'the admin token is echoed');
    }
    // The right token under another scheme is not accepted either.
    const r = await fetch(w.baseUrl + path, {
      method,
      headers: { authorization: `Basic ${w.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    record(`${method} ${path} basic`, r.status, '');
    assert.equal(r.status, 401);
  }
  assert.deepEqual(rowCounts(), before);
  const s = await admin('GET', '/admin/settings');
  assert.equal(s.json.allow_username_password_flow, false, 'unauthorized PATCH took effect');
  // Sanity: the right token works, and the scheme is case-insensitive (RFC 6750 / 7235).
  assert.equal((await admin('GET', '/admin/apps')).status, 200);
  const lower = await fetch(w.baseUrl + '/admin/apps', { headers: { authorization: `bearer ${w.adminToken}` } });
  record('GET /admin/apps lower-case scheme', lower.status, '');
  assert.equal(lower.status, 200);
});

test('connected app: create, read, list, patch, rotate the secret, delete', async () => {
  const t0 = nowS();
  const created = await admin('POST', '/admin/apps', validApp({ name: 'Lifecycle App', scopes: ['api', 'openid', 'refresh_token', 'profile'] }));
  assert.equal(created.status, 201, created.text);
  const app = created.json;
  secrets.add(app.client_secret);
  assert.equal(typeof app.client_id, 'string');
  assert.ok(app.client_id.length >= 20, app.client_id);
  assert.equal(app.client_secret.length, 64);
  assert.match(app.client_secret, BASE62);
  assert.equal(app.name, 'Lifecycle App');
  assert.deepEqual(app.callback_urls, [CB]);
  assert.deepEqual(app.scopes, ['api', 'openid', 'refresh_token', 'profile']);
  // Policy defaults (model.rs / salesforce-reference.md).
  assert.equal(app.pkce_required, false);
  assert.equal(app.secret_required_web_server, true);
  assert.equal(app.secret_required_refresh, true);
  assert.equal(app.permitted_users, 'all_self_authorize');
  assert.equal(app.refresh_token_policy, 'infinite');
  assert.equal(app.access_token_ttl_s, 7200);
  assert.ok(app.created_at >= t0 - 5 && app.created_at <= nowS() + 5, `created_at ${app.created_at}`);
  assert.equal(app.secret_hash, undefined);
  assert.match(created.headers.get('cache-control') ?? '', /no-store/);

  // Read: the same record, without the secret.
  const read = await admin('GET', `/admin/apps/${app.client_id}`);
  assert.equal(read.status, 200);
  const { client_secret, ...withoutSecret } = app;
  assert.deepEqual(read.json, withoutSecret);
  assert.ok(!read.text.includes(client_secret));
  assert.equal(read.json.secret_hash, undefined);

  // List: contains it, and no secrets or hashes.
  const list = await admin('GET', '/admin/apps');
  assert.equal(list.status, 200);
  const listed = list.json.apps.find((a) => a.client_id === app.client_id);
  assert.deepEqual(listed, withoutSecret);
  for (const a of list.json.apps) {
    assert.equal(a.client_secret, undefined);
    assert.equal(a.secret_hash, undefined);
  }
  assert.ok(!list.text.includes(client_secret));
  assert.ok(!list.text.includes(sha256hex(client_secret)), 'the secret hash is exposed');

  // D1 holds the hash of the secret and nothing else of it.
  const [row] = rows(`select * from apps where client_id = '${app.client_id}'`);
  assert.equal(row.secret_hash, sha256hex(app.client_secret));
  assert.match(row.secret_hash, /^[0-9a-f]{64}$/);

  // Patch (merge): changed fields change, the others stay.
  const patched = await admin('PATCH', `/admin/apps/${app.client_id}`, {
    name: 'Renamed App',
    access_token_ttl_s: 900,
    refresh_token_policy: { lifetime_s: 3600 },
    allowed_origins: ['https://spa.example.com'],
  });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.name, 'Renamed App');
  assert.equal(patched.json.access_token_ttl_s, 900);
  assert.deepEqual(patched.json.refresh_token_policy, { lifetime_s: 3600 });
  assert.deepEqual(patched.json.allowed_origins, ['https://spa.example.com']);
  assert.deepEqual(patched.json.callback_urls, [CB]);
  assert.deepEqual(patched.json.scopes, app.scopes);
  assert.equal(patched.json.pkce_required, false);
  assert.equal(patched.json.client_id, app.client_id);
  assert.equal(patched.json.created_at, app.created_at);
  assert.equal(patched.json.client_secret, undefined);
  const reread = await admin('GET', `/admin/apps/${app.client_id}`);
  assert.deepEqual(reread.json, patched.json, 'the patch did not persist');
  // A second patch switches the refresh policy variant rather than mixing the two.
  const patched2 = await admin('PATCH', `/admin/apps/${app.client_id}`, { refresh_token_policy: { inactivity_s: 600 }, allowed_origins: [] });
  assert.equal(patched2.status, 200, patched2.text);
  assert.deepEqual(patched2.json.refresh_token_policy, { inactivity_s: 600 });
  assert.deepEqual(patched2.json.allowed_origins, []);
  assert.equal(patched2.json.name, 'Renamed App');
  const [row2] = rows(`select * from apps where client_id = '${app.client_id}'`);
  assert.equal(row2.name, 'Renamed App');
  assert.equal(JSON.parse(row2.policy).access_token_ttl_s, 900);
  assert.deepEqual(JSON.parse(row2.policy).refresh_token_policy, { inactivity_s: 600 });
  assert.equal(row2.secret_hash, row.secret_hash, 'a patch changed the secret');
  // Back to the default policy for the token checks below.
  assert.equal((await admin('PATCH', `/admin/apps/${app.client_id}`, { refresh_token_policy: 'infinite' })).status, 200);

  // A real code flow with the original secret.
  const user = await newUser();
  const c1 = await codeFor(app.client_id, user.username, user.password);
  assert.ok(c1.code, `no code: ${JSON.stringify(c1.pages)} ${c1.body ?? c1.location}`);
  const t1 = await token({ grant_type: 'authorization_code', code: c1.code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: CB, code_verifier: c1.verifier });
  assert.equal(t1.status, 200, t1.text);
  assert.ok(t1.json.refresh_token);

  // Rotate.
  const rotated = await admin('POST', `/admin/apps/${app.client_id}/secret`);
  assert.equal(rotated.status, 200, rotated.text);
  const newSecret = rotated.json.client_secret;
  secrets.add(newSecret);
  assert.equal(rotated.json.client_id, app.client_id);
  assert.equal(newSecret.length, 64);
  assert.match(newSecret, BASE62);
  assert.notEqual(newSecret, app.client_secret);
  assert.equal(rotated.json.name, 'Renamed App', 'rotation changed other fields');
  const [row3] = rows(`select secret_hash from apps where client_id = '${app.client_id}'`);
  assert.equal(row3.secret_hash, sha256hex(newSecret));
  // Reading the app afterwards does not show the new secret again.
  const afterRotate = await admin('GET', `/admin/apps/${app.client_id}`);
  assert.ok(!afterRotate.text.includes(newSecret));

  // The old secret is refused at the token endpoint (body and Basic), the new one accepted.
  const oldRefresh = await token({ grant_type: 'refresh_token', refresh_token: t1.json.refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(oldRefresh.status, 401, oldRefresh.text);
  assert.equal(oldRefresh.json.error, 'invalid_client');
  assert.ok(oldRefresh.headers.get('www-authenticate'), 'no WWW-Authenticate on invalid_client');
  const basic = (id, s) => ({ authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(s)}`).toString('base64') });
  const oldBasic = await token({ grant_type: 'refresh_token', refresh_token: t1.json.refresh_token }, basic(app.client_id, app.client_secret));
  assert.equal(oldBasic.status, 401, oldBasic.text);
  assert.equal(oldBasic.json.error, 'invalid_client');
  const newRefresh = await token({ grant_type: 'refresh_token', refresh_token: t1.json.refresh_token, client_id: app.client_id, client_secret: newSecret });
  assert.equal(newRefresh.status, 200, newRefresh.text);
  assert.ok(newRefresh.json.access_token);
  // The Salesforce signature is keyed by the secret the client used: the new one.
  const expectedSig = createHmac('sha256', newSecret).update(newRefresh.json.id + newRefresh.json.issued_at).digest('base64');
  assert.equal(newRefresh.json.signature, expectedSig);

  // A fresh code: the old secret fails (and does not burn the code), the new one redeems it.
  const c2 = await codeFor(app.client_id, user.username, user.password);
  assert.ok(c2.code, `no code: ${c2.body ?? c2.location}`);
  const code = { grant_type: 'authorization_code', code: c2.code, client_id: app.client_id, redirect_uri: CB, code_verifier: c2.verifier };
  const oldCode = await token({ ...code, client_secret: app.client_secret });
  assert.equal(oldCode.status, 401, oldCode.text);
  assert.equal(oldCode.json.error, 'invalid_client');
  const noSecret = await token(code);
  assert.equal(noSecret.status, 401, noSecret.text);
  const newCode = await token({ ...code, client_secret: newSecret });
  assert.equal(newCode.status, 200, newCode.text);
  const newCodeBasic = await token({ grant_type: 'refresh_token', refresh_token: newCode.json.refresh_token }, basic(app.client_id, newSecret));
  assert.equal(newCodeBasic.status, 200, newCodeBasic.text);

  // Delete.
  const del = await admin('DELETE', `/admin/apps/${app.client_id}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.deleted, true);
  assert.equal(del.json.client_id, app.client_id);
  const gone = await admin('GET', `/admin/apps/${app.client_id}`);
  assert.equal(gone.status, 404, gone.text);
  assert.equal(gone.json.error, 'not_found');
  const list2 = await admin('GET', '/admin/apps');
  assert.ok(!list2.json.apps.some((a) => a.client_id === app.client_id));
  assert.deepEqual(rows(`select * from apps where client_id = '${app.client_id}'`), []);
  assert.equal((await admin('DELETE', `/admin/apps/${app.client_id}`)).status, 404);
  assert.equal((await admin('PATCH', `/admin/apps/${app.client_id}`, { name: 'zombie' })).status, 404);
  assert.equal((await admin('POST', `/admin/apps/${app.client_id}/secret`)).status, 404);
  // Its tokens and its credentials are dead.
  const afterDelete = await token({ grant_type: 'refresh_token', refresh_token: newCode.json.refresh_token, client_id: app.client_id, client_secret: newSecret });
  assert.ok(afterDelete.status === 400 || afterDelete.status === 401, afterDelete.text);
  assert.equal(afterDelete.json.access_token, undefined);
  const ui = await get('/services/oauth2/userinfo', { authorization: `Bearer ${newCode.json.access_token}` });
  assert.equal(ui.status, 401, 'an access token outlived its app');
});

test('user: create, read, list, change, deactivate', async () => {
  const t0 = nowS();
  const body = { username: 'alice@example.com', password: 'alice-original-pw', email: 'alice@example.com', name: 'Alice Example' };
  passwords.add(body.password);
  const created = await admin('POST', '/admin/users', body);
  assert.equal(created.status, 201, created.text);
  const user = created.json;
  assert.match(user.user_id, /^005[0-9A-Za-z]{15}$/);
  assert.equal(user.username, body.username);
  assert.equal(user.email, body.email);
  assert.equal(user.name, body.name);
  assert.equal(user.active, true);
  assert.ok(user.created_at >= t0 - 5 && user.created_at <= nowS() + 5);
  assert.equal(user.password, undefined);
  assert.equal(user.password_hash, undefined);
  assert.ok(!created.text.includes(body.password));
  assert.ok(!created.text.includes('argon2'));

  const read = await admin('GET', `/admin/users/${user.user_id}`);
  assert.equal(read.status, 200);
  assert.deepEqual(read.json, user);

  const list = await admin('GET', '/admin/users');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.users.find((u) => u.user_id === user.user_id), user);
  assert.ok(!list.text.includes('argon2'), 'password hashes are listed');
  for (const u of list.json.users) assert.equal(u.password_hash, undefined);

  const [row] = rows(`select * from users where user_id = '${user.user_id}'`);
  assert.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(row.active, 1);

  // The user can log in to an app.
  const app = await newApp({ name: 'Users App', scopes: ['api', 'openid', 'refresh_token'] });
  const c1 = await codeFor(app.client_id, body.username, body.password);
  assert.ok(c1.code, `login failed: ${c1.body ?? c1.location}`);
  const t1 = await token({ grant_type: 'authorization_code', code: c1.code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: CB, code_verifier: c1.verifier });
  assert.equal(t1.status, 200, t1.text);
  assert.ok(t1.json.id.endsWith(`/${user.user_id}`), t1.json.id);

  // Change name, email and password.
  const patched = await admin('PATCH', `/admin/users/${user.user_id}`, { name: 'Alice Renamed', email: 'alice2@example.org' });
  assert.equal(patched.status, 200, patched.text);
  assert.deepEqual(patched.json, { ...user, name: 'Alice Renamed', email: 'alice2@example.org' });
  assert.deepEqual((await admin('GET', `/admin/users/${user.user_id}`)).json, patched.json);
  const [row2] = rows(`select * from users where user_id = '${user.user_id}'`);
  assert.equal(row2.name, 'Alice Renamed');
  assert.equal(row2.email, 'alice2@example.org');
  assert.equal(row2.password_hash, row.password_hash, 'a name change rehashed the password');

  const newPassword = 'alice-changed-pw-2';
  passwords.add(newPassword);
  const pw = await admin('PATCH', `/admin/users/${user.user_id}`, { password: newPassword });
  assert.equal(pw.status, 200, pw.text);
  assert.ok(!pw.text.includes(newPassword));
  const [row3] = rows(`select * from users where user_id = '${user.user_id}'`);
  assert.notEqual(row3.password_hash, row.password_hash);
  assert.match(row3.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const oldLogin = await codeFor(app.client_id, body.username, body.password);
  assert.equal(oldLogin.code ?? undefined, undefined, 'the old password still logs in');
  const newLogin = await codeFor(app.client_id, body.username, newPassword);
  assert.ok(newLogin.code, `the new password does not log in: ${newLogin.body ?? newLogin.location}`);

  // The username is not changeable (it is the login), and unknown users are 404.
  await rejected('PATCH', `/admin/users/${user.user_id}`, { username: 'mallory' }, [/username/]);
  assert.equal((await admin('GET', '/admin/users/005000000000000AAA')).status, 404);

  // Deactivate: the record stays, inactive; tokens die; login fails.
  const del = await admin('DELETE', `/admin/users/${user.user_id}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.active, false);
  assert.equal(del.json.user_id, user.user_id);
  const gone = await admin('GET', `/admin/users/${user.user_id}`);
  assert.equal(gone.status, 200);
  assert.equal(gone.json.active, false);
  assert.equal((await admin('GET', '/admin/users')).json.users.find((u) => u.user_id === user.user_id).active, false);
  const [row4] = rows(`select * from users where user_id = '${user.user_id}'`);
  assert.equal(row4.active, 0);
  const ui = await get('/services/oauth2/userinfo', { authorization: `Bearer ${t1.json.access_token}` });
  assert.equal(ui.status, 401, `access token of a deactivated user still works: ${ui.text}`);
  const refresh = await token({ grant_type: 'refresh_token', refresh_token: t1.json.refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(refresh.status, 400, refresh.text);
  assert.equal(refresh.json.error, 'invalid_grant');
  const login = await codeFor(app.client_id, body.username, newPassword);
  assert.equal(login.code ?? undefined, undefined, 'a deactivated user logged in');

  // Reactivation through PATCH.
  const re = await admin('PATCH', `/admin/users/${user.user_id}`, { active: true });
  assert.equal(re.status, 200, re.text);
  assert.equal(re.json.active, true);
  // PATCH active:false also deactivates (and revokes).
  const again = await codeFor(app.client_id, body.username, newPassword);
  assert.ok(again.code, `reactivated user cannot log in: ${again.body ?? again.location}`);
  const t2 = await token({ grant_type: 'authorization_code', code: again.code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: CB, code_verifier: again.verifier });
  assert.equal(t2.status, 200, t2.text);
  const off = await admin('PATCH', `/admin/users/${user.user_id}`, { active: false });
  assert.equal(off.status, 200);
  assert.equal(off.json.active, false);
  const ui2 = await get('/services/oauth2/userinfo', { authorization: `Bearer ${t2.json.access_token}` });
  assert.equal(ui2.status, 401, 'PATCH active:false left tokens alive');

  assert.equal((await admin('DELETE', '/admin/users/005000000000000AAA')).status, 404);
});

test('pre-authorizing a user for an app', async () => {
  const app = await newApp({ name: 'Admin Approved', permitted_users: 'admin_approved' });
  const user = await newUser();
  const denied = await codeFor(app.client_id, user.username, user.password);
  assert.equal(denied.code ?? undefined, undefined, 'a user who was not approved got a code');
  assert.equal((await admin('POST', `/admin/apps/${app.client_id}/users/005000000000000AAA`)).status, 404);
  assert.equal((await admin('POST', `/admin/apps/nope/users/${user.user_id}`)).status, 404);
  const ok = await admin('POST', `/admin/apps/${app.client_id}/users/${user.user_id}`);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.preauthorized, true);
  const [g] = rows(`select * from app_user_grants where client_id = '${app.client_id}' and user_id = '${user.user_id}'`);
  assert.equal(g.preauthorized, 1);
  const allowed = await codeFor(app.client_id, user.username, user.password);
  assert.ok(allowed.code, `approved user got no code: ${allowed.body ?? allowed.location}`);
  assert.deepEqual(allowed.pages, ['login'], 'admin-approved apps show no consent page');
});

test('bad app input is 400 naming the problem, and writes nothing', async () => {
  await rejected('POST', '/admin/apps', undefined, [/JSON/i], { raw: '{"name": "x", ' });
  await rejected('POST', '/admin/apps', undefined, [/JSON/i], { raw: '' });
  await rejected('POST', '/admin/apps', undefined, [/object/i], { raw: '[1, 2]' });
  await rejected('POST', '/admin/apps', undefined, [/object/i], { raw: '"name"' });
  await rejected('POST', '/admin/apps', undefined, [/object/i], { raw: 'null' });
  await rejected('POST', '/admin/apps', validApp({ colour: 'red', flavour: 1 }), [/unknown/i, /colour/, /flavour/]);
  await rejected('POST', '/admin/apps', validApp({ client_secret: 'chosen-by-me' }), [/client_secret/]);
  // A chosen client_id is allowed (docs/admin-api.md), but only in its shape.
  await rejected('POST', '/admin/apps', validApp({ client_id: 'has space' }), [/client_id/]);
  await rejected('POST', '/admin/apps', validApp({ client_id: 'https://x.example/doc' }), [/client_id/]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['/relative/cb'] }), [/absolute/i, /\/relative\/cb/]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['cb.example.com/x'] }), [/absolute/i]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['https://app.example.com/cb#frag'] }), [/fragment/i]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['https://app.example.com/cb#'] }), [/fragment/i]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['http://app.example.com/cb'] }), [/https/i, /app\.example\.com/]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: ['javascript:alert(1)'] }), [/scheme|callback/i]);
  await rejected('POST', '/admin/apps', validApp({ scopes: ['api', 'superpowers'] }), [/scope/i, /superpowers/]);
  await rejected('POST', '/admin/apps', validApp({ scopes: [] }), [/scopes/]);
  const { name, ...noName } = validApp();
  await rejected('POST', '/admin/apps', noName, [/missing/i, /\bname\b/]);
  const { callback_urls, ...noCallbacks } = validApp();
  await rejected('POST', '/admin/apps', noCallbacks, [/callback_urls/]);
  await rejected('POST', '/admin/apps', validApp({ name: '' }), [/name/]);
  await rejected('POST', '/admin/apps', validApp({ name: 42 }), [/name/, /string/]);
  await rejected('POST', '/admin/apps', validApp({ pkce_required: 'yes' }), [/pkce_required/, /bool/i]);
  await rejected('POST', '/admin/apps', validApp({ access_token_ttl_s: 'long' }), [/access_token_ttl_s/]);
  await rejected('POST', '/admin/apps', validApp({ access_token_ttl_s: 5 }), [/access_token_ttl_s/]);
  await rejected('POST', '/admin/apps', validApp({ permitted_users: 'everyone' }), [/permitted_users/]);
  await rejected('POST', '/admin/apps', validApp({ callback_urls: 'http://127.0.0.1:9/cb' }), [/callback_urls/]);
  await rejected('POST', '/admin/apps', validApp({ allowed_origins: ['https://spa.example.com/path'] }), [/allowed_origins/]);

  // The same checks guard PATCH, and a refused patch leaves the app as it was.
  const app = await newApp({ name: 'Patch Target' });
  const path = `/admin/apps/${app.client_id}`;
  await rejected('PATCH', path, undefined, [/JSON/i], { raw: '{' });
  await rejected('PATCH', path, undefined, [/object/i], { raw: '[]' });
  await rejected('PATCH', path, { name: 'ok', colour: 'red' }, [/unknown/i, /colour/]);
  await rejected('PATCH', path, { client_id: 'other' }, [/client_id/]);
  await rejected('PATCH', path, { created_at: 1 }, [/created_at/]);
  await rejected('PATCH', path, { callback_urls: ['https://x.example.com/cb#f'] }, [/fragment/i]);
  await rejected('PATCH', path, { callback_urls: ['http://evil.example.com/cb'] }, [/https/i]);
  await rejected('PATCH', path, { scopes: ['nope'] }, [/nope/]);
  await rejected('PATCH', path, { pkce_required: 'yes' }, [/pkce_required/, /bool/i]);
  await rejected('PATCH', path, { name: null }, [/name/]);
  const still = await admin('GET', path);
  const { client_secret, ...expected } = app;
  assert.deepEqual(still.json, expected);
});

test('bad user input is 400 naming the problem, and writes nothing', async () => {
  const valid = { username: 'bob@example.com', password: 'bob-password-1', email: 'bob@example.com', name: 'Bob' };
  passwords.add(valid.password);
  const bob = await admin('POST', '/admin/users', valid);
  assert.equal(bob.status, 201, bob.text);
  const dupPassword = 'another-password-9';
  passwords.add(dupPassword);
  await rejected('POST', '/admin/users', { ...valid, password: dupPassword, name: 'Other Bob' }, [/username/, /bob@example\.com/, /exist/i]);
  await rejected('POST', '/admin/users', undefined, [/JSON/i], { raw: '{"username":' });
  await rejected('POST', '/admin/users', undefined, [/object/i], { raw: '[]' });
  await rejected('POST', '/admin/users', { ...valid, username: 'carol', shoe_size: 44 }, [/shoe_size/]);
  await rejected('POST', '/admin/users', { ...valid, username: 'carol', password_hash: '$argon2id$...' }, [/password_hash/]);
  const { password, ...noPassword } = { ...valid, username: 'carol' };
  await rejected('POST', '/admin/users', noPassword, [/missing/i, /password/]);
  await rejected('POST', '/admin/users', { ...valid, username: 'carol', password: 'short' }, [/password/]);
  await rejected('POST', '/admin/users', { ...valid, username: 'carol', email: 'not-an-email' }, [/email/]);
  await rejected('POST', '/admin/users', { ...valid, username: '' }, [/username/]);
  await rejected('POST', '/admin/users', { ...valid, username: 7 }, [/username/, /string/]);
  const path = `/admin/users/${bob.json.user_id}`;
  await rejected('PATCH', path, { active: 'no' }, [/active/, /bool/i]);
  await rejected('PATCH', path, { email: 'nope' }, [/email/]);
  await rejected('PATCH', path, { password: 'short' }, [/password/]);
  await rejected('PATCH', path, { nickname: 'b' }, [/nickname/]);
  await rejected('PATCH', path, { user_id: '005x' }, [/user_id/]);
  await rejected('PATCH', path, undefined, [/JSON/i], { raw: 'not json' });
  assert.deepEqual((await admin('GET', path)).json, bob.json);
});

test('unknown admin resources are 404 and wrong methods 405', async () => {
  for (const path of ['/admin/nothing', '/admin/apps/x/y', '/admin/users/x/y/z', '/admin/settings/x']) {
    const r = await admin('GET', path);
    assert.equal(r.status, 404, `GET ${path}: ${r.text}`);
    assert.equal(r.json?.error, 'not_found');
  }
  // `/admin` itself is the operator console, a static page (`/admin/` redirects to it).
  for (const path of ['/admin', '/admin/']) {
    const r = await admin('GET', path);
    assert.equal(r.status, 200, `GET ${path}`);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /<title>edge-oauth admin<\/title>/);
  }
  for (const [m, p] of [['GET', '/admin/apps/3MVGnope'], ['PATCH', '/admin/apps/3MVGnope'], ['DELETE', '/admin/apps/3MVGnope'],
    ['POST', '/admin/apps/3MVGnope/secret'], ['GET', '/admin/users/005nope'], ['PATCH', '/admin/users/005nope'], ['DELETE', '/admin/users/005nope']]) {
    const r = await admin(m, p, m === 'PATCH' ? { name: 'x' } : undefined);
    assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
    assert.equal(r.json?.error, 'not_found');
  }
  const before = rowCounts();
  for (const [m, p] of [['PUT', '/admin/apps'], ['DELETE', '/admin/apps'], ['PATCH', '/admin/apps'], ['POST', '/admin/apps/abc'],
    ['PUT', '/admin/apps/abc'], ['GET', '/admin/apps/abc/secret'], ['DELETE', '/admin/users'], ['PUT', '/admin/users/005abc'],
    ['POST', '/admin/users/005abc'], ['POST', '/admin/settings'], ['DELETE', '/admin/settings'], ['GET', '/admin/registration-tokens'],
    ['GET', '/admin/apps/abc/users/005abc']]) {
    const r = await admin(m, p, m === 'GET' || m === 'DELETE' ? undefined : {});
    assert.equal(r.status, 405, `${m} ${p}: ${r.text}`);
    assert.equal(r.json?.error, 'method_not_allowed');
  }
  assert.deepEqual(rowCounts(), before);
});

test('org settings: CONTRACT §4 defaults, a switch changes, org_id cannot', async () => {
  const r = await admin('GET', '/admin/settings');
  assert.equal(r.status, 200);
  const s = r.json;
  assert.deepEqual(Object.keys(s).sort(), ['allow_code_credentials_flow', 'allow_user_agent_flow', 'allow_username_password_flow', 'client_id_metadata_document_prefixes', 'open_registration', 'org_id', 'require_pkce']);
  assert.match(s.org_id, /^00D[0-9A-Za-z]{15}$/);
  assert.equal(s.allow_username_password_flow, false);
  assert.equal(s.allow_user_agent_flow, true);
  assert.equal(s.allow_code_credentials_flow, false);
  assert.equal(s.require_pkce, false);
  assert.equal(s.open_registration, false);
  assert.deepEqual(s.client_id_metadata_document_prefixes, []);
  const [row] = rows('select * from settings');
  assert.equal(row.org_id, s.org_id);

  const p = await admin('PATCH', '/admin/settings', { require_pkce: true });
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(p.json, { ...s, require_pkce: true });
  assert.deepEqual((await admin('GET', '/admin/settings')).json, p.json);
  assert.equal(rows('select require_pkce from settings')[0].require_pkce, 1);
  // The switch takes effect: an authorization request without PKCE is refused.
  const app = await newApp({ name: 'Settings App' });
  const user = await newUser();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'np' }, { username: user.username, password: user.password });
  record('authorize without pkce', a.status ?? 0, a.body ?? '');
  assert.equal(a.code ?? undefined, undefined, 'require_pkce let a request without code_challenge through');
  assert.equal(a.error, 'invalid_request');
  assert.equal(a.state, 'np');

  await rejected('PATCH', '/admin/settings', { org_id: '00D000000000001AAA' }, [/org_id/]);
  await rejected('PATCH', '/admin/settings', { require_pkce: true, org_id: '00D000000000001AAA' }, [/org_id/]);
  await rejected('PATCH', '/admin/settings', { require_pkce: 'no' }, [/require_pkce/, /bool/i]);
  await rejected('PATCH', '/admin/settings', { allow_everything: true }, [/allow_everything/]);
  await rejected('PATCH', '/admin/settings', undefined, [/JSON/i], { raw: '{{' });

  const back = await admin('PATCH', '/admin/settings', { require_pkce: false, allow_username_password_flow: true });
  assert.equal(back.status, 200);
  assert.deepEqual(back.json, { ...s, allow_username_password_flow: true });
  const reset = await admin('PATCH', '/admin/settings', { allow_username_password_flow: false });
  assert.deepEqual(reset.json, s);
  assert.equal((await admin('GET', '/admin/settings')).json.org_id, s.org_id, 'org_id changed');
});

test('registration tokens: 201, at least 256 bits, only the hash stored', async () => {
  const t0 = nowS();
  const r = await admin('POST', '/admin/registration-tokens', {});
  assert.equal(r.status, 201, r.text);
  const tok = r.json.token;
  secrets.add(tok);
  assert.equal(typeof tok, 'string');
  assert.ok(tok.length >= 43, tok);
  assert.match(tok, BASE62);
  assert.ok(r.json.expires_at >= t0 + 86400 - 5 && r.json.expires_at <= nowS() + 86400 + 5, `expires_at ${r.json.expires_at}`);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  // Single use is decided in the shard the token's route names (its first two characters).
  const stored = shardRows(w.stateDir, 'select * from registration_tokens');
  const mine = stored.find((x) => x.token_hash === sha256hex(tok));
  assert.ok(mine, `no row with the token's hash: ${JSON.stringify(stored)}`);
  assert.equal(mine.expires_at, r.json.expires_at);
  assert.equal(mine.used_at, null);

  // An empty body is fine; a chosen lifetime is honoured; two tokens differ.
  const empty = await admin('POST', '/admin/registration-tokens', undefined, { raw: '' });
  assert.equal(empty.status, 201, empty.text);
  secrets.add(empty.json.token);
  assert.notEqual(empty.json.token, tok);
  const short = await admin('POST', '/admin/registration-tokens', { expires_in_s: 600 });
  assert.equal(short.status, 201, short.text);
  secrets.add(short.json.token);
  assert.ok(Math.abs(short.json.expires_at - (nowS() + 600)) <= 5);

  await rejected('POST', '/admin/registration-tokens', { expires_in_s: 5 }, [/expires_in_s/]);
  await rejected('POST', '/admin/registration-tokens', { expires_in_s: 'soon' }, [/expires_in_s/]);
  await rejected('POST', '/admin/registration-tokens', { scope: 'all' }, [/scope/]);
  await rejected('POST', '/admin/registration-tokens', undefined, [/object/i], { raw: '[]' });
});

test('secrets and passwords: only hashes in D1 and local state, never in the worker output', async () => {
  // A dedicated app: the stored hash follows the secret through a rotation.
  const app = await newApp({ name: 'At Rest' });
  const [r1] = rows(`select secret_hash from apps where client_id = '${app.client_id}'`);
  assert.equal(r1.secret_hash, sha256hex(app.client_secret));
  const rot = await admin('POST', `/admin/apps/${app.client_id}/secret`);
  assert.equal(rot.status, 200);
  secrets.add(rot.json.client_secret);
  const [r2] = rows(`select secret_hash from apps where client_id = '${app.client_id}'`);
  assert.equal(r2.secret_hash, sha256hex(rot.json.client_secret));
  assert.notEqual(r2.secret_hash, sha256hex(app.client_secret));

  // Tokens issued by a real flow, also secret.
  const user = await newUser();
  const c = await codeFor(app.client_id, user.username, user.password);
  assert.ok(c.code);
  const t = await token({ grant_type: 'authorization_code', code: c.code, client_id: app.client_id, client_secret: rot.json.client_secret, redirect_uri: CB, code_verifier: c.verifier });
  assert.equal(t.status, 200, t.text);
  const tokens = [t.json.access_token, t.json.refresh_token, c.code];
  const storedTokens = shardRows(w.stateDir, 'select token_hash from tokens').map((x) => x.token_hash);
  assert.ok(storedTokens.includes(sha256hex(t.json.access_token)));
  assert.ok(storedTokens.includes(sha256hex(t.json.refresh_token)));

  assert.ok(secrets.size >= 6, `too few secrets collected: ${secrets.size}`);
  assert.ok(passwords.size >= 5, `too few passwords collected: ${passwords.size}`);
  const everything = [...secrets, ...passwords, ...tokens];

  // Every row of every D1 table, as text.
  const db = dumpD1();
  assert.ok(db.includes(app.client_id), 'the dump is not of the worker database');
  for (const s of everything) assert.ok(!db.includes(s), `a secret or password is stored in D1: ${s.slice(0, 6)}…`);

  // Passwords: Argon2id PHC strings with OWASP's parameters, never the password.
  const users = rows('select username, password_hash from users');
  assert.ok(users.length >= 5);
  for (const u of users) {
    assert.match(u.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, u.username);
  }
  assert.equal(new Set(users.map((u) => u.password_hash)).size, users.length, 'two hashes are equal (no salt?)');

  // Every file of the worker's local state (D1, KV, caches), byte for byte.
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name !== 'test.vars') files.push(p);
    }
  };
  walk(w.stateDir);
  assert.ok(files.some((f) => f.endsWith('.sqlite')), 'no D1 file found in the state directory');
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const s of everything) assert.ok(!bytes.includes(Buffer.from(s)), `${f} holds a secret or password: ${s.slice(0, 6)}…`);
  }

  // The worker's own output (logs, errors) never carries them either.
  const out = w.output();
  for (const s of everything) assert.ok(!out.includes(s), `the worker output holds a secret or password: ${s.slice(0, 6)}…`);
  assert.ok(!out.includes(w.adminToken), 'the worker output holds the admin token');
});

test('no admin or protocol response in this file was a 5xx', () => {
  assert.ok(seen.length > 100, `only ${seen.length} responses recorded`);
  const bad = seen.filter(([, s]) => s >= 500);
  assert.deepEqual(bad, []);
});
