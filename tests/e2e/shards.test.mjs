// Issue 15's "must show" for the sharded token state (SQLite-backed Durable Objects `shard-{i}`),
// against the real worker (workerd under wrangler dev, local KV, D1 and Durable Objects):
//
//   1. races: 50 parallel redemptions of one code, 50 parallel refreshes of one rotating
//      refresh token and 50 parallel polls of one approved device code have exactly one winner
//      every round, with 1 and with 4 shards;
//   2. re-layout: codes, refresh tokens and device codes issued with SHARDS=1 are redeemed
//      exactly once after a restart with SHARDS=4 on the same state (a device code still pending
//      then is found by its user code and approved), replays still fail, and the old families
//      stay on shard 0;
//   3. spread: with 4 shards new families land on all 4, and each shard holds exactly the
//      families whose tokens name it (`GET /dev/shards`, development only);
//   4. a failing shard (DEV_FAIL_SHARD, development only): its keys get 503
//      temporarily_unavailable, the other shards serve normally, nothing is lost; without
//      DEV_MODE the switch is ignored and /dev/shards does not exist.
//
// Worker starts cost seconds, so the tests share one state directory and run in order, each
// phase restarting the worker on it with other vars (1 shard → 4 shards → 4 with shard 2
// failing → the same without DEV_MODE). Every test sets SHARDS itself, so the file does the
// same whatever `SHARDS` the suite runs with.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestWorker } from './harness.mjs';
import { authorize, CookieJar, formFields, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'shards are separate';
const RACERS = 50;
const ROUNDS = 3;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

let w; // the worker now running
let stateDir; // the state every phase shares
let seq = 0;

after(async () => {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
    await w.stop({ keepState: true });
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** Stops the running worker (keeping its state) and starts one with `vars` on the same state. */
async function restart(vars) {
  if (w) {
    assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
    const old = w;
    w = undefined;
    await old.stop({ keepState: true });
  }
  w = await startTestWorker({ vars, stateDir, keep: true });
  stateDir = w.stateDir;
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

/** The shard a key names: its first two characters in base62 (0-9A-Za-z), 62*hi + lo. */
function route(key) {
  assert.equal(typeof key, 'string', `a key expected, got ${key}`);
  const hi = ALPHABET.indexOf(key[0]);
  const lo = ALPHABET.indexOf(key[1]);
  assert.ok(hi >= 0 && lo >= 0, `no route at the start of ${key}`);
  return 62 * hi + lo;
}

/** The route of an access token: after `!` for an opaque one, the start of `jti` for a JWT. */
function accessRoute(at) {
  if (at.includes('!')) return route(at.slice(at.indexOf('!') + 1));
  const [, payload] = at.split('.');
  return route(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')).jti);
}

async function newApp(overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `shard app ${++seq}`,
    callback_urls: [CB],
    scopes: ['api', 'refresh_token'],
    rotate_refresh_tokens: true,
    refresh_reuse_grace_s: 0,
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.rotate_refresh_tokens, true);
  assert.equal(r.json.refresh_reuse_grace_s, 0);
  return r.json;
}

/** A user with its own cookie jar: it logs in once, later authorizations reuse the session. */
async function newUser() {
  const username = `shard-user-${++seq}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Shard User ${seq}` });
  assert.equal(r.status, 201, r.text);
  return { username, password: PASSWORD, jar: new CookieJar() };
}

/** An authorization code (with PKCE) through the pages; nothing is redeemed. */
async function mintCode(app, user) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(
    w.baseUrl,
    { response_type: 'code', client_id: app.client_id, redirect_uri: CB, code_challenge: challenge, code_challenge_method: 'S256', state: 's' },
    { username: user.username, password: user.password, jar: user.jar },
  );
  assert.ok(a.code, `no code: status ${a.status}, pages ${a.pages}, ${a.location ?? String(a.body).slice(0, 300)}`);
  return { code: a.code, verifier };
}

const creds = (app) => ({ client_id: app.client_id, client_secret: app.client_secret });

function exchange(app, { code, verifier }) {
  return tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, ...creds(app) });
}

function refresh(app, refreshToken) {
  return tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, ...creds(app) });
}

async function form(path, fields) {
  const r = await fetch(w.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

const introspect = (app, token) => form('/services/oauth2/introspect', { token, ...creds(app) });
const revoke = (app, token) => form('/services/oauth2/revoke', { token, ...creds(app) });

/** A new family: a code through the pages and its exchange. Returns the token response. */
async function family(app, user) {
  const t = await exchange(app, await mintCode(app, user));
  assert.equal(t.status, 200, t.text);
  assert.ok(t.json.access_token && t.json.refresh_token, t.text);
  assert.equal(route(t.json.refresh_token), accessRoute(t.json.access_token), 'a family\'s tokens share one route');
  return t.json;
}

/**
 * Runs a read-only query in each shard's own SQLite file (`wrangler dev` keeps every Durable
 * Object of class TokenShard in a file under the state dir, with its name in
 * `__miniflare_do_name`). Returns [{ name, rows }] sorted by name: shard-0, shard-1, …
 */
function shardSql(sql) {
  const root = join(w.stateDir, 'v3', 'do');
  const dir = existsSync(root) && readdirSync(root).find((d) => d.endsWith('-TokenShard'));
  assert.ok(dir, `no TokenShard storage under ${root}`);
  return readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite')
    .map((f) => {
      const query = (q) => JSON.parse(execFileSync('sqlite3', ['-readonly', '-json', join(root, dir, f), q], { encoding: 'utf8' }) || '[]');
      return { name: query('SELECT name FROM __miniflare_do_name')[0]?.name ?? f, rows: query(sql) };
    })
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** `GET /dev/shards` (DEV_MODE only): { shards, high_water, counts: [{ shard, families, … }] }. */
async function devShards() {
  const r = await w.admin('GET', '/dev/shards');
  assert.equal(r.status, 200, r.text);
  const s = r.json;
  assert.ok(s && Array.isArray(s.counts), r.text);
  assert.equal(s.counts.length, Math.max(s.shards, s.high_water), `one entry per shard below max(shards, high_water): ${r.text}`);
  s.counts.forEach((c, i) => assert.equal(c.shard, i, r.text));
  return s;
}

const column = (s, field) => s.counts.map((c) => c[field]);
const minus = (a, b) => a.map((x, i) => x - (b[i] ?? 0));

function assertNoStore(r) {
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, `Cache-Control: no-store expected: ${r.status} ${r.text}`);
}

function assertOAuthError(r, status, error, description) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json, `JSON error body expected, got ${r.text}`);
  assert.equal(r.json.error, error, r.text);
  if (description !== undefined) assert.equal(r.json.error_description, description, r.text);
  assertNoStore(r);
}

/** The failing shard's answer: 503 JSON temporarily_unavailable, no-store, Retry-After. */
function assertUnavailable(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON expected: ${r.text.slice(0, 300)}`);
  assert.ok(r.json, `${what}: JSON body expected: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.error, 'temporarily_unavailable', `${what}: ${r.text}`);
  assertNoStore(r);
  assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After expected`);
}

const tally = (results) => {
  const n = new Map();
  for (const r of results) {
    const k = `${r.status}${r.json?.error ? ' ' + r.json.error : ''}`;
    n.set(k, (n.get(k) || 0) + 1);
  }
  return [...n].map(([k, v]) => `${v}× ${k}`).join(', ');
};

/** Exactly one 200; every other answer 400 invalid_grant with `description`. Returns the winner. */
function assertOneWinner(results, description, what) {
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, `${what}: exactly one winner expected, got ${tally(results)}`);
  for (const r of results) if (r.status !== 200) assertOAuthError(r, 400, 'invalid_grant', description);
  assertNoStore(ok[0]);
  return ok[0].json;
}

/** `rounds` rounds of RACERS parallel redemptions of one fresh code. Returns the winners' shards. */
async function codeRaces(app, user, rounds, label) {
  const shards = [];
  for (let round = 1; round <= rounds; round++) {
    const c = await mintCode(app, user);
    const results = await Promise.all(Array.from({ length: RACERS }, () => exchange(app, c)));
    const winner = assertOneWinner(results, 'expired authorization code', `${label}, round ${round}: ${RACERS} redemptions of one code`);
    assert.ok(winner.access_token && winner.refresh_token);
    shards.push(route(winner.refresh_token));
    // And a later replay fails too.
    assertOAuthError(await exchange(app, c), 400, 'invalid_grant', 'expired authorization code');
  }
  return shards;
}

/** RACERS parallel refreshes of one rotating refresh token (grace 0): exactly one winner. */
async function refreshRace(app, refreshToken, what) {
  const results = await Promise.all(Array.from({ length: RACERS }, () => refresh(app, refreshToken)));
  const winner = assertOneWinner(results, 'expired access/refresh token', what);
  assert.ok(winner.refresh_token, `${what}: rotation issues a new refresh token`);
  assert.notEqual(winner.refresh_token, refreshToken);
  assert.equal(route(winner.refresh_token), route(refreshToken), `${what}: the successor stays on its family's shard`);
  assertOAuthError(await refresh(app, refreshToken), 400, 'invalid_grant', 'expired access/refresh token');
}

/** Salesforce's device authorization (client_id alone), scoped for a refresh token. */
async function startDevice(app) {
  const r = await form('/services/oauth2/token', { response_type: 'device_code', client_id: app.client_id, scope: 'api refresh_token' });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const pollDevice = (app, d) => form('/services/oauth2/token', { grant_type: 'device', client_id: app.client_id, code: d.device_code });

/** `user` approves `userCode` on /setup/connect (logging in first when its jar has no session). */
async function approveDevice(user, userCode) {
  const send = async (path, fields) => {
    const r = await fetch(w.baseUrl + path, {
      method: fields ? 'POST' : 'GET',
      headers: { cookie: user.jar.header(), ...(fields ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: fields ? new URLSearchParams(fields) : undefined,
      redirect: 'manual',
    });
    user.jar.store(r);
    return { status: r.status, html: await r.text() };
  };
  const entry = await send(`/setup/connect?user_code=${userCode}`);
  assert.equal(entry.status, 200, entry.html);
  let page = await send('/setup/connect', { ...formFields(entry.html), user_code: userCode, continue: '1' });
  for (let step = 0; step < 3; step++) {
    if (page.html.includes('Device connected')) return;
    if (page.html.includes('name="password"')) {
      page = await send('/services/oauth2/authorize', { ...formFields(page.html), username: user.username, password: user.password, login: '1' });
    } else if (page.html.includes('name="approve"')) {
      page = await send('/services/oauth2/authorize', { ...formFields(page.html), approve: '1' });
    } else {
      break;
    }
  }
  assert.fail(`device ${userCode} not approved: ${page.status} ${page.html.slice(0, 300)}`);
}

/**
 * RACERS parallel polls of one approved device code: exactly one token response; the others
 * are told to slow down (they came within the interval) or that the code was used. A later poll
 * is refused. Returns the winner's shard.
 */
async function deviceRace(app, user, what) {
  const d = await startDevice(app);
  await approveDevice(user, d.user_code);
  const results = await Promise.all(Array.from({ length: RACERS }, () => pollDevice(app, d)));
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, `${what}: exactly one winner expected, got ${tally(results)}`);
  for (const r of results) {
    if (r.status === 200) continue;
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.ok(['slow_down', 'invalid_grant'].includes(r.json?.error), `${what}: ${r.text}`);
    assertNoStore(r);
  }
  assert.ok(ok[0].json.refresh_token, `${what}: ${ok[0].text}`);
  assertOAuthError(await pollDevice(app, d), 400, 'invalid_grant', 'the device code was used');
  assert.equal(route(ok[0].json.refresh_token), route(d.device_code), `${what}: the family is on the device code's shard`);
  return route(d.device_code);
}

// State handed from one phase to the next.
const relayout = {}; // issued with SHARDS=1, used with SHARDS=4
const spread = {}; // families made with SHARDS=4, by shard, used by the failing-shard phases
const failing = {}; // what the failing shard refused, checked after it is back

// ── 1 shard ─────────────────────────────────────────────────────────────────────────────────────

test('SHARDS=1: every round, 50 parallel redemptions of one code, 50 parallel refreshes of one rotating refresh token and 50 parallel polls of one approved device code have exactly one winner', async (t) => {
  await restart({ SHARDS: '1' });
  const s = await devShards();
  assert.equal(s.shards, 1, JSON.stringify(s));
  const app = await newApp();
  const user = await newUser();
  const shards = await codeRaces(app, user, ROUNDS, 'SHARDS=1');
  assert.deepEqual(shards, Array(ROUNDS).fill(0), 'with one shard every family is on shard 0');
  for (let round = 1; round <= ROUNDS; round++) {
    const tokens = await family(app, user);
    assert.equal(route(tokens.refresh_token), 0);
    await refreshRace(app, tokens.refresh_token, `SHARDS=1, round ${round}: ${RACERS} refreshes of one refresh token`);
    assert.equal(await deviceRace(app, user, `SHARDS=1, round ${round}: ${RACERS} polls of one approved device code`), 0);
  }
  t.diagnostic(`${ROUNDS} code races, ${ROUNDS} refresh races and ${ROUNDS} device races of ${RACERS}, one winner each`);
});

test('SHARDS=1: unredeemed codes, fresh refresh tokens and device codes (approved, and pending) for the re-layout; every family is on shard 0 (route 00)', async () => {
  assert.equal(w?.vars.SHARDS, '1', 'runs on the SHARDS=1 worker of the test before');
  const before = await devShards();
  const app = await newApp();
  const jwtApp = await newApp({ jwt_access_tokens: true });
  const user = await newUser();
  // Codes first (their families do not exist until they are redeemed), then fresh pairs.
  const codes = [];
  for (let i = 0; i < 6; i++) codes.push({ app: i % 2 ? jwtApp : app, ...(await mintCode(i % 2 ? jwtApp : app, user)) });
  const pairs = [];
  for (let i = 0; i < 6; i++) {
    const a = i % 2 ? jwtApp : app;
    const tokens = await family(a, user);
    assert.match(tokens.refresh_token, /^00[0-9A-Za-z]{62}$/, 'a refresh token is its route and 62 random characters');
    assert.equal(accessRoute(tokens.access_token), 0);
    pairs.push({ app: a, ...tokens });
  }
  // Device codes: one approved and not yet polled, one still waiting for its person.
  const approved = await startDevice(app);
  await approveDevice(user, approved.user_code);
  const pending = await startDevice(app);
  assert.equal(route(approved.device_code), 0);
  assert.equal(route(pending.device_code), 0);
  const s = await devShards();
  assert.equal(s.shards, 1, JSON.stringify(s));
  assert.ok(s.high_water <= 1, `nothing was ever placed beyond shard 0: ${JSON.stringify(s)}`);
  assert.equal(s.counts.length, 1, JSON.stringify(s));
  assert.equal(s.counts[0].families - before.counts[0].families, pairs.length, 'one family per exchange; unredeemed codes have none yet');
  assert.equal(s.counts[0].code_redemptions - before.counts[0].code_redemptions, pairs.length);
  Object.assign(relayout, { app, user, codes, pairs, devices: { approved, pending }, shard0: s.counts[0] });
});

// ── 1 → 4 shards on the same state ──────────────────────────────────────────────────────────────

test('restart with SHARDS=4 on the same state: each code, refresh token and device code issued with SHARDS=1 is redeemed exactly once, replays fail, and the old families stay on shard 0', async () => {
  assert.ok(relayout.codes?.length && relayout.pairs?.length, 'needs the state issued with SHARDS=1');
  await restart({ SHARDS: '4' });
  let s = await devShards();
  assert.equal(s.shards, 4, JSON.stringify(s));
  assert.equal(s.counts.length, 4, JSON.stringify(s));
  assert.equal(s.counts[0].families, relayout.shard0.families, `the families issued with SHARDS=1 are still on shard 0: ${JSON.stringify(s)}`);
  assert.equal(s.counts[0].tokens, relayout.shard0.tokens, 'and their tokens');
  assert.deepEqual(column(s, 'families').slice(1), [0, 0, 0], 'nothing moved to the new shards');

  // Codes minted with SHARDS=1: the family they name is on shard 0. Ten parallel redemptions
  // of each: exactly one wins, then a replay fails.
  for (const [i, c] of relayout.codes.entries()) {
    const results = await Promise.all(Array.from({ length: 10 }, () => exchange(c.app, c)));
    const winner = assertOneWinner(results, 'expired authorization code', `code ${i} issued with SHARDS=1`);
    assert.equal(route(winner.refresh_token), 0, 'the family keeps the route it got when its code was minted');
    assert.equal(accessRoute(winner.access_token), 0);
    assertOAuthError(await exchange(c.app, c), 400, 'invalid_grant', 'expired authorization code');
  }

  // Refresh tokens issued with SHARDS=1: each refreshes once; the chain goes on on shard 0; a
  // replay of the rotated-out token fails and (grace 0) ends the family.
  for (const [i, p] of relayout.pairs.entries()) {
    const r1 = await refresh(p.app, p.refresh_token);
    assert.equal(r1.status, 200, `refresh token ${i} issued with SHARDS=1: ${r1.text}`);
    assert.equal(route(r1.json.refresh_token), 0);
    assert.equal(accessRoute(r1.json.access_token), 0);
    const r2 = await refresh(p.app, r1.json.refresh_token);
    assert.equal(r2.status, 200, `its successor: ${r2.text}`);
    assertOAuthError(await refresh(p.app, p.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
    assertOAuthError(await refresh(p.app, r2.json.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  }

  // Device codes issued with SHARDS=1: the approved one yields tokens once (10 parallel polls);
  // the pending one is found by its user code on shard 0, approved, and yields tokens once.
  const { approved, pending } = relayout.devices;
  let results = await Promise.all(Array.from({ length: 10 }, () => pollDevice(relayout.app, approved)));
  assert.equal(results.filter((r) => r.status === 200).length, 1, `device approved with SHARDS=1: ${tally(results)}`);
  await approveDevice(relayout.user, pending.user_code);
  results = await Promise.all(Array.from({ length: 10 }, () => pollDevice(relayout.app, pending)));
  const won = results.filter((r) => r.status === 200);
  assert.equal(won.length, 1, `device pending since SHARDS=1: ${tally(results)}`);
  assert.equal(route(won[0].json.refresh_token), 0, 'its family is on the shard its device code names');
  for (const d of [approved, pending]) assertOAuthError(await pollDevice(relayout.app, d), 400, 'invalid_grant', 'the device code was used');

  s = await devShards();
  assert.equal(s.counts[0].families, relayout.shard0.families + relayout.codes.length + 2, `the codes' and devices' families were created on shard 0: ${JSON.stringify(s)}`);
  assert.equal(s.counts[0].code_redemptions, relayout.shard0.code_redemptions + relayout.codes.length);
  assert.deepEqual(column(s, 'families').slice(1), [0, 0, 0], 'still nothing on the new shards');
  assert.deepEqual(column(s, 'tokens').slice(1), [0, 0, 0]);
});

// ── 4 shards ────────────────────────────────────────────────────────────────────────────────────

test('SHARDS=4: new families spread over all 4 shards, and each shard holds exactly the families whose tokens name it', async (t) => {
  assert.equal(w?.vars.SHARDS, '4', 'runs on the SHARDS=4 worker of the test before');
  const before = await devShards();
  const app = await newApp();
  const jwtApp = await newApp({ jwt_access_tokens: true });
  const user = await newUser();
  const N = 40;
  const byShard = [[], [], [], []];
  const expected = [0, 0, 0, 0];
  for (let i = 0; i < N; i++) {
    const a = i % 4 === 3 ? jwtApp : app;
    const tokens = await family(a, user);
    const r = route(tokens.refresh_token);
    assert.ok(r < 4, `route ${r} of ${tokens.refresh_token} is below SHARDS`);
    expected[r]++;
    byShard[r].push({ app: a, ...tokens });
  }
  const s = await devShards();
  assert.equal(s.counts.length, 4, JSON.stringify(s));
  const families = minus(column(s, 'families'), column(before, 'families'));
  t.diagnostic(`new families per shard: ${families.join(', ')}`);
  assert.deepEqual(families, expected, 'each shard got exactly the families whose refresh tokens name it');
  assert.equal(families.reduce((x, y) => x + y, 0), N);
  for (let i = 0; i < 4; i++) assert.ok(families[i] > 0, `shard ${i} got no family: ${families}`);
  assert.deepEqual(minus(column(s, 'code_redemptions'), column(before, 'code_redemptions')), expected, 'each code redemption is recorded on its family\'s shard');
  const tokens = minus(column(s, 'tokens'), column(before, 'tokens'));
  for (let i = 0; i < 4; i++) assert.ok(tokens[i] >= expected[i], `shard ${i}: ${tokens[i]} new tokens for ${expected[i]} families`);
  assert.equal(s.high_water, 4, JSON.stringify(s));

  // The same from the shards' own SQLite files (Durable Objects named shard-0 … shard-3): each
  // holds the families /dev/shards counts, every family id starts with its shard's route, and
  // each refresh token (stored as its SHA-256, hex) is in the shard its first two characters
  // name and in no other.
  const files = shardSql('SELECT family_id FROM families');
  assert.deepEqual(files.map((f) => f.name), ['shard-0', 'shard-1', 'shard-2', 'shard-3']);
  assert.deepEqual(files.map((f) => f.rows.length), column(s, 'families'), 'SQLite rows = /dev/shards counts');
  files.forEach((f, i) => f.rows.forEach((r) => assert.equal(route(r.family_id), i, `family ${r.family_id} in shard-${i}`)));
  const hashes = shardSql('SELECT token_hash FROM tokens').map((f) => new Set(f.rows.map((r) => r.token_hash)));
  for (const [i, list] of byShard.entries()) {
    for (const tk of list) {
      const h = createHash('sha256').update(tk.refresh_token).digest('hex');
      assert.deepEqual(hashes.flatMap((set, j) => (set.has(h) ? [j] : [])), [i], `refresh token ${tk.refresh_token.slice(0, 6)}… is held by shard ${i} only`);
    }
  }
  Object.assign(spread, { user, byShard });
});

test('SHARDS=4: every round, 50 parallel redemptions of one code, 50 parallel refreshes of one rotating refresh token (one race per shard) and 50 parallel polls of one approved device code have exactly one winner', async (t) => {
  assert.equal(w?.vars.SHARDS, '4');
  const app = await newApp();
  const user = await newUser();
  const shards = await codeRaces(app, user, ROUNDS, 'SHARDS=4');
  // A refresh race on every shard: families until each shard has one.
  const one = new Map();
  for (let i = 0; i < 80 && one.size < 4; i++) {
    const tokens = await family(app, user);
    if (!one.has(route(tokens.refresh_token))) one.set(route(tokens.refresh_token), tokens);
  }
  assert.equal(one.size, 4, `a family on every shard: ${[...one.keys()]}`);
  for (const shard of [0, 1, 2, 3]) {
    await refreshRace(app, one.get(shard).refresh_token, `SHARDS=4, shard ${shard}: ${RACERS} refreshes of one refresh token`);
  }
  const devices = [];
  for (let round = 1; round <= ROUNDS; round++) {
    devices.push(await deviceRace(app, user, `SHARDS=4, round ${round}: ${RACERS} polls of one approved device code`));
  }
  t.diagnostic(`code races won on shards ${shards.join(', ')}; refresh races on shards 0–3; device races on shards ${devices.join(', ')}`);
});

// ── a failing shard ─────────────────────────────────────────────────────────────────────────────

test('DEV_FAIL_SHARD=2: shard 2\'s refresh tokens and codes get 503 temporarily_unavailable (JSON, no-store), the other shards serve normally', async (t) => {
  const { byShard, user } = spread;
  assert.ok(byShard?.every((l) => l.length >= 3), `needs 3 families per shard from the spread test: ${byShard?.map((l) => l.length)}`);
  await restart({ SHARDS: '4', DEV_FAIL_SHARD: '2' });
  const [f1, f2] = byShard[2];

  // Refresh tokens on shard 2: refused cleanly, again and again (a failure writes nothing).
  for (const f of [f1, f2]) {
    for (let k = 0; k < 2; k++) assertUnavailable(await refresh(f.app, f.refresh_token), `refresh of a shard-2 token, try ${k + 1}`);
  }
  assertUnavailable(await introspect(f1.app, f1.refresh_token), 'introspection of a shard-2 refresh token');
  assertUnavailable(await revoke(f2.app, f2.refresh_token), 'revocation of a shard-2 refresh token');
  // A shard-2 access token is validated from its edge copy; whatever the answer, never a 500.
  const at = await introspect(f1.app, f1.access_token);
  assert.ok(at.status === 200 || at.status === 503, `introspection of a shard-2 access token: ${at.status} ${at.text.slice(0, 200)}`);
  if (at.status === 503) assertUnavailable(at, 'introspection of a shard-2 access token');

  // The other shards: refresh and introspection as usual.
  for (const shard of [0, 1, 3]) {
    const [a, b] = byShard[shard];
    const r = await refresh(a.app, a.refresh_token);
    assert.equal(r.status, 200, `refresh on shard ${shard}: ${r.text}`);
    assert.equal(route(r.json.refresh_token), shard);
    const i = await introspect(b.app, b.refresh_token);
    assert.equal(i.status, 200, i.text);
    assert.equal(i.json.active, true, `introspection on shard ${shard}: ${i.text}`);
  }

  // Code exchanges: new codes land on any shard (their route is only known from the tokens);
  // mint until some have failed and some succeeded. The failures are clean 503s.
  const app = byShard[0][0].app;
  const failed = [];
  const succeeded = [];
  for (let i = 0; i < 100 && (failed.length < 3 || succeeded.length < 3); i++) {
    const c = await mintCode(app, user);
    const r = await exchange(app, c);
    if (r.status === 200) {
      assert.notEqual(route(r.json.refresh_token), 2, 'no family is issued on the failing shard');
      assertNoStore(r);
      succeeded.push(c);
    } else {
      assertUnavailable(r, `code exchange ${i}`);
      failed.push(c);
    }
  }
  t.diagnostic(`code exchanges: ${succeeded.length} succeeded, ${failed.length} refused by shard 2`);
  assert.ok(failed.length >= 3 && succeeded.length >= 3, `${failed.length} failed, ${succeeded.length} succeeded`);
  // A refused exchange did not spend the code: still 503, not invalid_grant.
  assertUnavailable(await exchange(app, failed[0]), 'a second exchange of a refused code');
  // A code that succeeded is spent.
  assertOAuthError(await exchange(app, succeeded[0]), 400, 'invalid_grant', 'expired authorization code');

  // The rest of the server does not depend on shard 2.
  assert.equal((await fetch(`${w.baseUrl}/.well-known/openid-configuration`)).status, 200);
  assert.equal((await w.admin('GET', '/admin/apps')).status, 200);
  Object.assign(failing, { app, codes: failed, refreshTokens: [f1, f2], untouched: byShard[2][2] });
});

test('DEV_FAIL_SHARD=2 with DEV_MODE=0 is ignored and /dev/shards is 404; nothing shard 2 refused was lost: each refused code and refresh token works exactly once', async () => {
  assert.ok(failing.codes?.length, 'needs what the failing shard refused');
  await restart({ SHARDS: '4', DEV_FAIL_SHARD: '2', DEV_MODE: '0' });
  const dev = await w.admin('GET', '/dev/shards');
  assert.equal(dev.status, 404, `/dev/shards without DEV_MODE: ${dev.status} ${dev.text.slice(0, 200)}`);

  const u = failing.untouched;
  const i = await introspect(u.app, u.refresh_token);
  assert.equal(i.status, 200, i.text);
  assert.equal(i.json.active, true, `a shard-2 refresh token is served: ${i.text}`);

  for (const [n, c] of failing.codes.entries()) {
    const r = await exchange(failing.app, c);
    assert.equal(r.status, 200, `code ${n}, refused while shard 2 failed: ${r.text}`);
    assert.equal(route(r.json.refresh_token), 2, 'its family is on shard 2');
    assertOAuthError(await exchange(failing.app, c), 400, 'invalid_grant', 'expired authorization code');
  }
  // The refresh tokens whose refresh, introspection and revocation were refused: unchanged.
  for (const [n, f] of failing.refreshTokens.entries()) {
    const r = await refresh(f.app, f.refresh_token);
    assert.equal(r.status, 200, `shard-2 refresh token ${n}: ${r.text}`);
    assert.equal(route(r.json.refresh_token), 2);
    assertOAuthError(await refresh(f.app, f.refresh_token), 400, 'invalid_grant', 'expired access/refresh token');
  }
});
