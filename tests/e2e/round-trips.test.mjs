// Storage round trips per request, as counted by the KV/D1/shard adapters and exposed in
// development (`X-Storage-Round-Trips`, EXPOSE_ROUND_TRIPS=1; `do` = calls to a token shard).
// Every round trip is latency at the edge, and every D1 query counts against the one
// database's ceiling (docs/scaling.md), so the counts of the web server flow are pinned here; a
// change that adds one must say why. The same with 1 and with 4 shards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWorker } from './harness.mjs';
import { CookieJar, formFields, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
let w;
// The managed signing keys are read from D1 once per KEYS_REFRESH_S (30 s) per isolate
// (docs/performance.md); pinned to an hour so that such a read never lands in a count below.
before(async () => { w = await startTestWorker({ vars: { KEYS_REFRESH_S: '3600' } }); });
after(() => w?.stop());

const trips = (r) => r.headers.get('x-storage-round-trips');

test('each step of the web server flow makes the documented KV and D1 round trips', async () => {
  const app = (await w.admin('POST', '/admin/apps', { name: 'RT', callback_urls: [CB], scopes: ['api', 'refresh_token', 'openid'] })).json;
  await w.admin('POST', '/admin/users', { username: 'rt@example.com', password: 'round trips!', email: 'rt@example.com', name: 'R T' });
  // The org exists (created on first use) and this isolate has cached its id, as in steady state.
  assert.equal((await w.admin('GET', '/admin/settings')).status, 200);
  assert.equal(trips(await fetch(`${w.baseUrl}/id/keys`)), 'kv=0; d1=0; do=0');

  const jar = new CookieJar();
  const { verifier, challenge } = pkcePair();
  const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge, state: 's' });
  let r = await fetch(`${w.baseUrl}/services/oauth2/authorize?${q}`, { redirect: 'manual' });
  jar.store(r);
  assert.equal(trips(r), 'kv=1; d1=1; do=0', 'authorize → login page: app; put interaction');
  const post = (fields) => fetch(`${w.baseUrl}/services/oauth2/authorize`, {
    method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields),
  });
  r = await post({ ...formFields(await r.text()), username: 'rt@example.com', password: 'round trips!', login: '1' });
  jar.store(r);
  assert.equal(trips(r), 'kv=3; d1=2; do=0', 'login: get interaction, put session, put interaction; user, grant (the app is cached)');
  r = await post({ ...formFields(await r.text()), approve: '1' });
  assert.equal(trips(r), 'kv=2; d1=1; do=0', 'consent: get interaction, put code; record approval');
  r = await fetch(`${w.baseUrl}/services/oauth2/authorize?${q}`, { redirect: 'manual', headers: { cookie: jar.header() } });
  assert.equal(trips(r), 'kv=2; d1=1; do=0', 'authorize with session: get session, put code; user joined with grant');
  const code = new URL(r.headers.get('location')).searchParams.get('code');

  const cred = { client_id: app.client_id, client_secret: app.client_secret };
  const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, ...cred });
  assert.equal(t.status, 200);
  assert.equal(trips(t), 'kv=2; d1=0; do=1', 'code exchange: get code, put the access token copy; the family\'s shard redeems, checks the user\'s epoch and issues in one transaction; no D1');
  const rf = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token, ...cred });
  assert.equal(trips(rf), 'kv=1; d1=0; do=2', 'refresh: token+family with the user\'s claims from the shard; extend in the shard; put the access token copy; no D1');
  const ui = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.json.access_token}` } });
  assert.equal(trips(ui), 'kv=0; d1=0; do=0', 'userinfo: the access token copy this isolate wrote a moment ago (cached for 5 s)');
  const it = await fetch(`${w.baseUrl}/services/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.json.access_token, ...cred }) });
  assert.equal(trips(it), 'kv=0; d1=0; do=0', 'introspect: the same cached copy; the app is cached too');
  const rv = await fetch(`${w.baseUrl}/services/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.json.refresh_token }) });
  assert.equal(trips(rv), 'kv=2; d1=0; do=1', 'revoke: one shard call; then the copies of the two access tokens it ended are deleted, side by side');
  // Validation of tokens that were never ours (or are too old to lack a copy) never reaches D1.
  const org = t.json.access_token.split('!')[0];
  for (const bogus of [`${org}!${'x'.repeat(71)}`, 'garbage', t.json.access_token.slice(0, -1) + (t.json.access_token.endsWith('a') ? 'b' : 'a')]) {
    const r2 = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${bogus}` } });
    assert.equal(r2.status, 401);
    assert.equal(trips(r2), 'kv=1; d1=0; do=0', `no D1 or shard read for ${bogus}`);
  }
});
