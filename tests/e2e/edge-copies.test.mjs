// Validation from edge-local state, against real workerd with local KV and D1
// (docs/performance.md): access tokens are validated from their KV copy; D1 is read only for a
// young token whose copy is missing; revocation reaches the copies.
//
// The copies are read and deleted in the worker's local KV files themselves (miniflare keeps a
// namespace's keys in a SQLite table, `_mf_entries`, and each value in a blob file), with the
// sqlite3 CLI: a second wrangler process on the same state (`wrangler kv … --local`), as this
// file once used, now and then made the running worker drop a request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
/** The KV namespace id of wrangler.toml's `KV` binding. */
const NAMESPACE = '00000000000000000000000000000000';
let w;
// The managed signing keys are read from D1 once per KEYS_REFRESH_S (30 s) per isolate
// (docs/performance.md); pinned to an hour so that such a read never lands in a count below.
before(async () => { w = await startTestWorker({ vars: { KEYS_REFRESH_S: '3600' } }); });
after(() => w?.stop());

const trips = (r) => r.headers.get('x-storage-round-trips');
const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
const userinfo = (token) => fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${token}` } });

/** The SQLite file of the local KV namespace's keys. */
function kvIndex() {
  const dir = join(w.stateDir, 'v3', 'kv', 'miniflare-KVNamespaceObject');
  const file = readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  assert.ok(file, `no KV index under ${dir}`);
  return join(dir, file);
}

/** Runs `sql` on the KV index (keys here are hex, so they can be inlined). */
function kvSql(sql, { readonly = true } = {}) {
  const args = [...(readonly ? ['-readonly'] : []), '-json', '-cmd', '.timeout 5000', kvIndex(), sql];
  return JSON.parse(execFileSync('sqlite3', args, { encoding: 'utf8' }) || '[]');
}

/** The value stored under `key` in the worker's local KV, or undefined. */
function kvGet(key) {
  assert.match(key, /^[\w:]+$/);
  const [row] = kvSql(`SELECT blob_id FROM _mf_entries WHERE key = '${key}'`);
  return row && readFileSync(join(w.stateDir, 'v3', 'kv', NAMESPACE, 'blobs', row.blob_id), 'utf8');
}

/** Deletes `key` from the worker's local KV, as if its write had not reached this location. */
function kvDelete(key) {
  assert.match(key, /^[\w:]+$/);
  kvSql(`DELETE FROM _mf_entries WHERE key = '${key}'`, { readonly: false });
  assert.equal(kvGet(key), undefined);
}

async function tokensFor(username, extra = {}) {
  const app = (await w.admin('POST', '/admin/apps', { name: username, callback_urls: [CB], scopes: ['api', 'refresh_token', 'openid', 'profile', 'email'], ...extra })).json;
  await w.admin('POST', '/admin/users', { username, password: 'edge copies!', email: `${username}@example.com`, name: 'Edge Copy' });
  const { verifier, challenge } = pkcePair();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge, scope: 'api refresh_token profile email' }, { username, password: 'edge copies!' });
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(t.status, 200, JSON.stringify(t.json));
  return { app, tokens: t.json };
}

test('the access token copy is written to KV at issuance, with what validation needs and no secret', async () => {
  const { app, tokens } = await tokensFor('copy-a');
  const key = `at:${sha256hex(tokens.access_token)}`;
  const stored = kvGet(key);
  assert.ok(stored, 'the copy is in KV');
  const copy = JSON.parse(stored);
  assert.equal(copy.client_id, app.client_id);
  assert.equal(copy.user.username, 'copy-a');
  assert.deepEqual(copy.scopes, ['api', 'refresh_token', 'profile', 'email']);
  assert.ok(!stored.includes(tokens.access_token) && !stored.includes(tokens.refresh_token), 'no token value in the copy');
});

test('a young token whose copy has not arrived is validated from its shard; once revoked, its copy is gone and it fails', async () => {
  const { tokens } = await tokensFor('copy-b', { jwt_access_tokens: true });
  const key = `at:${sha256hex(tokens.access_token)}`;
  // As if the copy had not reached this location: delete it from KV, and let the isolate's
  // 5-second cache of copies run out (a sleep for a cache, not a timing assertion).
  kvDelete(key);
  await new Promise((r) => setTimeout(r, 5500));
  const r = await userinfo(tokens.access_token);
  assert.equal(r.status, 200, await r.text());
  assert.equal(trips(r), 'kv=1; d1=0; do=1', 'the copy is missing (KV), the token is young: its shard answers, with the user\'s claims');
  // A forged token of the same shape is not young (its stamp does not verify): no shard or D1 read.
  const [h, p, s] = tokens.access_token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  // Same route (the first two characters), another random part: the stamp no longer verifies.
  claims.jti = `${claims.jti.slice(0, 2)}${'Z'.repeat(22)}${claims.jti.slice(24)}`;
  const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  const f = await userinfo(forged);
  assert.equal(f.status, 401);
  assert.equal(trips(f), 'kv=1; d1=0; do=0');
  // Revoking the family ends the token at once here, copy or not.
  const rv = await fetch(`${w.baseUrl}/services/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens.refresh_token }) });
  assert.equal(rv.status, 200);
  assert.equal((await userinfo(tokens.access_token)).status, 401);
});

test('a revocation deletes the copies from KV and a profile change rewrites them', async () => {
  const { app, tokens } = await tokensFor('copy-c');
  const key = `at:${sha256hex(tokens.access_token)}`;
  const users = (await w.admin('GET', '/admin/users')).json;
  const user = (users.users || users).find((u) => u.username === 'copy-c');
  assert.equal((await w.admin('PATCH', `/admin/users/${user.user_id}`, { email: 'renamed@example.com' })).status, 200);
  // A refresh reads the user's claims kept with the family in its shard (no D1 read): the
  // profile change reached them too, so the refreshed token carries the new email.
  const rf = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(rf.status, 200, JSON.stringify(rf.json));
  assert.equal(trips(rf), 'kv=1; d1=0; do=2');
  assert.equal((await (await userinfo(rf.json.access_token)).json()).email, 'renamed@example.com');
  assert.equal(JSON.parse(kvGet(key)).user.email, 'renamed@example.com');
  assert.equal((await (await userinfo(tokens.access_token)).json()).email, 'renamed@example.com');
  await fetch(`${w.baseUrl}/services/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens.access_token }) });
  assert.equal(kvGet(key), undefined, 'the copy is gone');
  assert.equal((await userinfo(tokens.access_token)).status, 401);
});
