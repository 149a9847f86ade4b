// Issue 13, server side on the real worker: the audit trail in D1 (written after the response,
// queried through the admin API, pruned by the cron), signing keys managed through the admin
// API with WebCrypto (sealed in D1, published before they sign, retired keys still verify), and
// one JSON log line per request that never holds a secret.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'operators test password';
const workers = [];
after(() => Promise.all(workers.map((w) => w.stop())));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start(opts) {
  const w = await startTestWorker(opts);
  workers.push(w);
  return w;
}

/** An app and a user, and one code flow's tokens (openid, refresh). */
async function setup(w, name) {
  const app = (await w.admin('POST', '/admin/apps', { name, callback_urls: [CB], scopes: ['api', 'refresh_token', 'openid', 'profile'] })).json;
  const user = (await w.admin('POST', '/admin/users', { username: `${name}@example.com`, password: PASSWORD, email: `${name}@example.com`, name })).json;
  return { app, user };
}

async function codeFlow(w, app, name, headers = {}) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'openid api refresh_token', code_challenge: challenge, nonce: 'n1' }, { username: `${name}@example.com`, password: PASSWORD });
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret }, headers);
  assert.equal(t.status, 200, JSON.stringify(t.json));
  return { ...t.json, code: a.code };
}

/** The audit events once `pred` holds (they are written after the response: waitUntil). */
async function auditUntil(w, query, pred) {
  let events = [];
  for (let i = 0; i < 50; i++) {
    const r = await w.admin('GET', `/admin/audit${query}`);
    assert.equal(r.status, 200, r.text);
    events = r.json.events;
    if (pred(events)) return events;
    await sleep(100);
  }
  assert.fail(`audit events never matched: ${JSON.stringify(events, null, 1)}`);
}

function d1File(stateDir) {
  const dir = join(stateDir, 'v3', 'd1', 'miniflare-D1DatabaseObject');
  return join(dir, readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite'));
}

test('the audit trail records logins, consent, tokens, revocation and admin changes with actor, client, IP and time', async () => {
  const w = await start();
  const { app, user } = await setup(w, 'audit');
  // A failed login first: the login page with a wrong password.
  const refused = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: pkcePair().challenge }, { username: 'audit@example.com', password: 'not the password' });
  assert.equal(refused.code, undefined);
  assert.equal(refused.status, 401);
  const t = await codeFlow(w, app, 'audit', { 'cf-connecting-ip': '198.51.100.7' });
  const rv = await fetch(`${w.baseUrl}/services/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': '198.51.100.8' }, body: new URLSearchParams({ token: t.refresh_token }) });
  assert.equal(rv.status, 200);

  const want = ['admin/success', 'login/failure', 'login/success', 'consent/success', 'token/success', 'revoke/success'];
  const events = await auditUntil(w, '', (ev) => want.every((k) => ev.some((e) => `${e.kind}/${e.outcome}` === k)));
  const token = events.find((e) => e.kind === 'token');
  assert.equal(token.user_id, user.user_id);
  assert.equal(token.client_id, app.client_id);
  assert.equal(token.actor, app.client_id);
  assert.equal(token.ip, '198.51.100.7');
  assert.equal(token.detail, 'authorization_code');
  assert.ok(Math.abs(token.at - Date.now() / 1000) < 120, `time ${token.at}`);
  assert.equal(events.find((e) => e.kind === 'revoke').ip, '198.51.100.8');
  const failed = events.find((e) => e.kind === 'login' && e.outcome === 'failure');
  assert.equal(failed.user_id, user.user_id, 'a failed login names the user whose username was typed');
  const created = events.find((e) => e.kind === 'admin' && e.detail === 'POST /admin/apps 201');
  assert.equal(created.actor, 'admin');

  // Filters and paging, as the admin API documents them.
  const mine = (await w.admin('GET', `/admin/audit?user=${user.user_id}&kind=login`)).json.events;
  assert.ok(mine.length >= 2 && mine.every((e) => e.user_id === user.user_id && e.kind === 'login'), JSON.stringify(mine));
  const page1 = (await w.admin('GET', '/admin/audit?limit=2')).json;
  assert.equal(page1.events.length, 2);
  const page2 = (await w.admin('GET', `/admin/audit?limit=2&before=${page1.next}`)).json;
  assert.ok(page2.events.every((e) => e.id < page1.events[1].id));
  assert.equal((await w.admin('GET', '/admin/audit?limit=500')).status, 400);
  assert.equal((await w.admin('GET', '/admin/audit', undefined, { token: 'wrong' })).status, 401);

  // No secret in any row: client secret, password, code, tokens, admin token.
  const rows = w.d1('SELECT * FROM audit_events');
  for (const secret of [app.client_secret, PASSWORD, 'not the password', t.code, t.access_token, t.refresh_token, t.id_token, w.adminToken]) {
    assert.ok(!rows.includes(secret), 'a secret reached the audit table');
  }
});

test('the cron prunes audit events past the retention and keeps recent ones', async () => {
  const first = await start({ keep: true });
  await setup(first, 'prune');
  await auditUntil(first, '', (ev) => ev.length >= 2);
  await first.stop({ keepState: true });
  const file = d1File(first.stateDir);
  execFileSync('sqlite3', [file, "INSERT INTO audit_events (at, kind, outcome, actor, detail) VALUES (1000, 'admin', 'success', 'admin', 'old-1'), (2000, 'login', 'failure', 'anonymous', 'old-2'), (3000, 'token', 'success', 'c', 'old-3')"]);
  const count = (sql) => JSON.parse(execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8' }) || '[{"n":0}]')[0].n;
  const recent = count("SELECT count(*) AS n FROM audit_events WHERE detail NOT LIKE 'old-%'");
  assert.equal(count("SELECT count(*) AS n FROM audit_events WHERE detail LIKE 'old-%'"), 3);

  const w = await start({ stateDir: first.stateDir, args: ['--test-scheduled'] });
  const r = await fetch(`${w.baseUrl}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(r.status, 200, await r.text());
  assert.equal(count("SELECT count(*) AS n FROM audit_events WHERE detail LIKE 'old-%'"), 0, 'events older than 90 days are gone');
  assert.ok(count("SELECT count(*) AS n FROM audit_events WHERE detail NOT LIKE 'old-%'") >= recent, 'recent events stay');
  // The worker's output reaches us through wrangler's pipe a moment after the answer.
  const cleanupLine = () => w.output().split('\n').map((l) => l.match(/\{.*"event":"cleanup".*\}/)?.[0]).find(Boolean);
  for (let i = 0; i < 50 && !cleanupLine(); i++) await sleep(100);
  const line = cleanupLine();
  assert.ok(line, `no cleanup log line in:\n${w.output().slice(-2000)}`);
  assert.equal(JSON.parse(line).audit_events, 3);
});

test('signing keys made through the admin API are sealed in D1, published before they sign, and old tokens still verify', async () => {
  const w = await start({ keep: true, vars: { JWKS_MAX_AGE_S: '2', KEYS_REFRESH_S: '1' } });
  const { app } = await setup(w, 'keys');
  const old = await codeFlow(w, app, 'keys');
  const oldKid = decodeProtectedHeader(old.id_token).kid;
  const jwksRes = await fetch(`${w.baseUrl}/id/keys`);
  assert.equal(jwksRes.headers.get('cache-control'), 'public, max-age=2');
  const before = (await jwksRes.json()).keys.map((k) => k.kid);

  const created = await w.admin('POST', '/admin/keys', { activate: true });
  assert.equal(created.status, 201, created.text);
  const kid = created.json.kid;
  assert.equal(created.json.status, 'pending');
  assert.equal(created.json.activates_at, created.json.created_at + 2);
  // Published at once (this isolate forgot its copy), not yet signing.
  const published = (await (await fetch(`${w.baseUrl}/id/keys`)).json()).keys;
  assert.ok(published.some((k) => k.kid === kid && k.kty === 'RSA' && !('d' in k)), JSON.stringify(published));
  assert.ok(before.every((k) => published.some((p) => p.kid === k)), 'the keys published before are still published');
  const early = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: old.refresh_token, client_id: app.client_id, client_secret: app.client_secret, scope: 'openid api refresh_token' });
  assert.equal(early.status, 200, JSON.stringify(early.json));
  if (early.json.id_token) assert.equal(decodeProtectedHeader(early.json.id_token).kid, oldKid, 'the new key does not sign before its time');

  // The private key is stored sealed: no PEM, no DER, only the envelope.
  const row = JSON.parse(w.d1(`SELECT kid, alg, sealed, created_at, activates_at FROM signing_keys WHERE kid = '${kid}'`))[0];
  assert.equal(row.alg, 'RS256');
  const sealed = Buffer.from(row.sealed, 'base64url');
  assert.ok(sealed.length > 1000 && !row.sealed.includes('PRIVATE'), 'sealed');
  assert.notEqual(sealed.subarray(12, 14).toString('hex'), '3082', 'the body is not plain DER');

  // After the JWKS cache lifetime the new key signs; tokens of both keys verify against the JWKS.
  await sleep(2500);
  const list = (await w.admin('GET', '/admin/keys')).json;
  assert.equal(list.jwks_max_age_s, 2);
  assert.equal(list.keys.find((k) => k.kid === kid).status, 'active');
  assert.equal(list.keys.filter((k) => k.status === 'active').length, 1);
  const fresh = await codeFlow(w, app, 'keys');
  assert.equal(decodeProtectedHeader(fresh.id_token).kid, kid);
  const jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
  for (const t of [old, fresh]) {
    const { payload } = await jwtVerify(t.id_token, jwks, { audience: app.client_id });
    assert.equal(payload.aud, app.client_id);
  }
  const ui = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${old.access_token}` } });
  assert.equal(ui.status, 200, 'an access token from before the rotation still works');
  // The signer cannot be deleted; an ES256 key can be made too.
  assert.equal((await w.admin('DELETE', `/admin/keys/${kid}`)).status, 409);
  const es = await w.admin('POST', '/admin/keys', { alg: 'ES256' });
  assert.equal(es.status, 201, es.text);
  assert.ok((await (await fetch(`${w.baseUrl}/id/keys`)).json()).keys.some((k) => k.kid === es.json.kid && k.kty === 'EC' && k.crv === 'P-256'));

  // With another KEY_WRAPPING_KEY the sealed keys do not open: they are neither published nor
  // used, the worker says why, and the SIGNING_KEYS key signs again.
  await w.stop({ keepState: true });
  const other = await start({ stateDir: w.stateDir, secrets: { KEY_WRAPPING_KEY: 'a different wrapping key, 32+ characters long' }, vars: { JWKS_MAX_AGE_S: '2' } });
  const keysNow = (await (await fetch(`${other.baseUrl}/id/keys`)).json()).keys.map((k) => k.kid);
  assert.ok(!keysNow.includes(kid) && !keysNow.includes(es.json.kid), JSON.stringify(keysNow));
  assert.ok(keysNow.includes(oldKid));
  assert.match(other.output(), /does not open with KEY_WRAPPING_KEY/);
});

test('one JSON log line per request: route, grant, client, outcome, error, duration, round trips; never a secret', async () => {
  const w = await start();
  const { app } = await setup(w, 'logs');
  const t = await codeFlow(w, app, 'logs');
  const bad = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: t.code, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret, code_verifier: 'x'.repeat(43) });
  assert.equal(bad.status, 400);
  await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.access_token}` } });
  await sleep(300);
  const lines = w.output().split('\n').map((l) => l.match(/\{"event":"request".*\}/)?.[0]).filter(Boolean).map((l) => JSON.parse(l));
  const tokenLines = lines.filter((l) => l.route === '/services/oauth2/token');
  assert.equal(tokenLines.length, 2, JSON.stringify(lines));
  const [ok, refused] = tokenLines;
  assert.deepEqual({ method: ok.method, status: ok.status, outcome: ok.outcome, grant: ok.grant, client_id: ok.client_id }, { method: 'POST', status: 200, outcome: 'ok', grant: 'authorization_code', client_id: app.client_id });
  assert.ok(ok.shard >= 1 && Number.isInteger(ok.kv) && Number.isInteger(ok.d1) && Number.isInteger(ok.duration_ms), JSON.stringify(ok));
  assert.equal(refused.error, 'invalid_grant');
  assert.equal(refused.outcome, 'refused');
  assert.ok(lines.some((l) => l.route === '/services/oauth2/userinfo' && l.status === 200));
  assert.ok(lines.some((l) => l.route === '/admin/apps' && l.status === 201));
  assert.ok(lines.some((l) => l.route === '/services/oauth2/authorize' && l.method === 'POST'));
  const out = w.output();
  for (const secret of [app.client_secret, PASSWORD, t.code, t.access_token, t.refresh_token, t.id_token, w.adminToken]) {
    assert.ok(!out.includes(secret), 'a secret reached the log');
  }
});
