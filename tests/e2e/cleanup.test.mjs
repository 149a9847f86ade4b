// Cleanup of the shards (src/edge/shard_object.rs, core/maintenance.rs): each shard's own alarm
// removes its expired state, and the cron handler (`wrangler dev --test-scheduled` exposes it at
// /__scheduled) asks every shard to do the same. Old state goes, live state stays.
//
// Old state is planted with sqlite3 into the shards' files while the worker is stopped (it
// cannot be made by the API: it is years old), then a worker is started on the same state.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';
import { shardFiles, shardRows } from './shard-db.mjs';

const CB = 'http://127.0.0.1:9/cb';
const workers = [];
after(() => Promise.all(workers.map((w) => w.stop())));

const OLD = `INSERT INTO families (family_id, client_id, user_id, scopes, auth_time, created_at, last_used_ms, revoked_at) VALUES
    ('old-revoked', 'c', 'u', '[]', 1000, 1000, 1000000, 1000), ('old-spent', 'c', 'u', '[]', 1000, 1000, 1000000, NULL);
  INSERT INTO tokens (token_hash, family_id, kind, scopes, created_at, expires_at, state, rotated_ms) VALUES
    ('h-rt', 'old-revoked', 'refresh', '[]', 1000, NULL, 'rotated', 1000000), ('h-at', 'old-spent', 'access', '[]', 1000, 2000, 'active', NULL);
  INSERT INTO code_redemptions (code_hash, family_id, redeemed_at) VALUES ('old-code', 'old-spent', 1000);
  INSERT INTO registration_tokens (token_hash, expires_at) VALUES ('old-reg', 2000);
  INSERT INTO epochs (subject, valid_from_ms) VALUES ('user:old', 1000000);
  INSERT INTO device_grants (device_hash, user_code, grant_json, expires_at, interval_s) VALUES ('old-device', 'OLDCODE1', '{}', 2000, 5);`;

const count = (file, sql) => JSON.parse(execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8' }) || '[{"n":0}]')[0].n;
const oldRows = (file) => count(file, `SELECT
    (SELECT count(*) FROM families WHERE family_id LIKE 'old-%') + (SELECT count(*) FROM tokens WHERE token_hash IN ('h-rt', 'h-at'))
  + (SELECT count(*) FROM code_redemptions WHERE code_hash = 'old-code') + (SELECT count(*) FROM registration_tokens WHERE token_hash = 'old-reg')
  + (SELECT count(*) FROM epochs WHERE subject = 'user:old') + (SELECT count(*) FROM device_grants WHERE device_hash = 'old-device') AS n`);

/** A worker with live tokens, stopped; old state planted in every shard; a worker on the same state. */
async function withOldState(name, vars = {}) {
  const first = await startTestWorker({ keep: true, vars: { SHARDS: '4' } });
  const app = (await first.admin('POST', '/admin/apps', { name, callback_urls: [CB], scopes: ['api', 'refresh_token'] })).json;
  await first.admin('POST', '/admin/users', { username: `${name}@example.com`, password: 'clean up please', email: 'c@example.com', name: 'C' });
  const live = [];
  for (let i = 0; i < 8; i++) {
    const { verifier, challenge } = pkcePair();
    const a = await authorize(first.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge }, { username: `${name}@example.com`, password: 'clean up please' });
    const t = await tokenRequest(first.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(t.status, 200, JSON.stringify(t.json));
    live.push(t.json);
  }
  await first.stop({ keepState: true });
  const files = shardFiles(first.stateDir);
  assert.ok(files.length >= 2, `the families went to ${files.length} shard(s)`);
  for (const f of files) execFileSync('sqlite3', [f, OLD]);
  const w = await startTestWorker({ stateDir: first.stateDir, args: ['--test-scheduled'], vars: { SHARDS: '4', ...vars } });
  workers.push(w);
  return { w, app, live, files };
}

async function liveTokensWork(w, app, live) {
  for (const t of live) {
    const ui = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(ui.status, 200);
  }
  const rf = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: live[0].refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(rf.status, 200, JSON.stringify(rf.json));
}

test('the cron handler has every shard remove expired and long-revoked state; live tokens keep working', async () => {
  const { w, app, live, files } = await withOldState('cleanup-cron');
  const liveCounts = { families: shardRows(w.stateDir, 'SELECT count(*) AS n FROM families').reduce((n, r) => n + r.n, 0) - 2 * files.length };
  for (const f of files) assert.equal(oldRows(f), 8, `old state planted in ${f}`);

  const r = await fetch(`${w.baseUrl}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(r.status, 200, await r.text());

  for (const f of files) assert.equal(oldRows(f), 0, `old state left in ${f}`);
  // Today's families (and their tokens and code redemptions) are untouched, and the tokens work.
  assert.equal(shardRows(w.stateDir, 'SELECT count(*) AS n FROM families').reduce((n, r) => n + r.n, 0), liveCounts.families);
  assert.equal(shardRows(w.stateDir, 'SELECT count(*) AS n FROM code_redemptions').reduce((n, r) => n + r.n, 0), live.length);
  await liveTokensWork(w, app, live);
});

test("a shard's own alarm removes its expired state after a write", async () => {
  // Development-only: the shards' alarm comes 1 s after a write instead of an hour.
  const { w, app, live, files } = await withOldState('cleanup-alarm', { DEV_SHARD_ALARM_MS: '1000' });
  // A refresh writes in its family's shard (the route is the token's first two characters) and
  // sets that shard's alarm; the other shards see no write and keep their old state.
  const rf = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: live[0].refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(rf.status, 200, JSON.stringify(rf.json));
  const route = parseInt(live[0].refresh_token.slice(0, 2), 10);
  const stats = (await w.admin('GET', '/dev/shards')).json;
  assert.ok(stats.counts[route].families > 0, JSON.stringify(stats));
  const before = files.map(oldRows);
  assert.ok(before.every((n) => n === 8), JSON.stringify(before));
  let cleaned = 0;
  for (let i = 0; i < 40 && cleaned === 0; i++) {
    await new Promise((r) => setTimeout(r, 250));
    cleaned = files.filter((f) => oldRows(f) === 0).length;
  }
  assert.equal(cleaned, 1, 'exactly the shard that was written to cleaned itself');
  await liveTokensWork(w, app, live.slice(1));
});
