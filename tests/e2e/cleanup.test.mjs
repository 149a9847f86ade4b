// The scheduled cleanup of D1 (core/maintenance.rs), run by the real cron handler in workerd
// (`wrangler dev --test-scheduled` exposes it at /__scheduled): old state goes, live state stays.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';
import { ROOT } from '../../scripts/worker.mjs';

const CB = 'http://127.0.0.1:9/cb';
let w;
before(async () => { w = await startTestWorker({ args: ['--test-scheduled'] }); });
after(() => w?.stop());

/** Writes to the worker's local D1 (the harness's `d1()` only reads). */
function execute(sql) {
  const r = spawnSync(`${ROOT}/node_modules/.bin/wrangler`, ['d1', 'execute', 'DB', '--local', '--persist-to', w.stateDir, '--command', sql], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' },
  });
  assert.equal(r.status, 0, r.stderr);
}
const count = (sql) => JSON.parse(w.d1(sql))[0].n;

test('the cron handler removes expired and long-revoked state; live tokens keep working', async () => {
  const app = (await w.admin('POST', '/admin/apps', { name: 'Cleanup', callback_urls: [CB], scopes: ['api', 'refresh_token'] })).json;
  await w.admin('POST', '/admin/users', { username: 'cleanup@example.com', password: 'clean up please', email: 'c@example.com', name: 'C' });
  const { verifier, challenge } = pkcePair();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge }, { username: 'cleanup@example.com', password: 'clean up please' });
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: a.code, redirect_uri: CB, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(t.status, 200);

  // State from long ago: a revoked family with its tokens and a rotation marker, a family whose
  // only token is an expired access token, an old code redemption, an expired registration token.
  execute(`INSERT INTO token_families (family_id, client_id, user_id, scopes, auth_time, created_at, last_used_ms, revoked_at) VALUES
      ('old-revoked', 'c', 'u', '[]', 1000, 1000, 1000000, 1000), ('old-spent', 'c', 'u', '[]', 1000, 1000, 1000000, NULL);
    INSERT INTO tokens (token_hash, family_id, kind, scopes, created_at, expires_at, state) VALUES
      ('h-rt', 'old-revoked', 'refresh', '[]', 1000, NULL, 'rotated'), ('h-at', 'old-spent', 'access', '[]', 1000, 2000, 'active');
    INSERT INTO refresh_rotations (token_hash, family_id, rotated_ms) VALUES ('h-rt', 'old-revoked', 1000000);
    INSERT INTO code_redemptions (code_hash, family_id, redeemed_at) VALUES ('old-code', 'old-spent', 1000);
    INSERT INTO registration_tokens (token_hash, expires_at) VALUES ('old-reg', 2000);`);
  const live = { families: count('SELECT count(*) AS n FROM token_families') - 2, tokens: count('SELECT count(*) AS n FROM tokens') - 2 };

  const r = await fetch(`${w.baseUrl}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(r.status, 200, await r.text());

  assert.equal(count(`SELECT count(*) AS n FROM token_families WHERE family_id LIKE 'old-%'`), 0);
  assert.equal(count(`SELECT count(*) AS n FROM tokens WHERE token_hash IN ('h-rt', 'h-at')`), 0);
  assert.equal(count(`SELECT count(*) AS n FROM refresh_rotations WHERE token_hash = 'h-rt'`), 0);
  assert.equal(count(`SELECT count(*) AS n FROM code_redemptions WHERE code_hash = 'old-code'`), 0);
  assert.equal(count(`SELECT count(*) AS n FROM registration_tokens WHERE token_hash = 'old-reg'`), 0);
  // Today's family, tokens and code redemption are untouched, and the tokens work.
  assert.equal(count('SELECT count(*) AS n FROM token_families'), live.families);
  assert.equal(count('SELECT count(*) AS n FROM tokens'), live.tokens);
  assert.equal(count('SELECT count(*) AS n FROM code_redemptions'), 1);
  const ui = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.json.access_token}` } });
  assert.equal(ui.status, 200);
  const rf = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token, client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(rf.status, 200, JSON.stringify(rf.json));
});
