// `make bench`: numbers, never pass/fail. Our worker side by side with a minimal worker around
// @cloudflare/workers-oauth-provider (bench/peer) and a "floor" worker that only makes the
// storage round trips each scenario needs at least (bench/floor), each in its own `wrangler dev`
// on the same local workerd. Closed-loop load at several connection counts, alternating rounds,
// medians; server CPU per request from /proc; cold start; deployed sizes. The table goes to
// stdout and to bench/results/latest.md; progress goes to stderr. A second instance of ours,
// started with `--var SHARDS:4`, runs the refresh and code-flow scenarios in the same rounds, for a
// table of our rates with 1 and 4 token shards side by side (issue 15).
//
//   BENCH_SECONDS (10)  measured window per scenario, after BENCH_WARMUP seconds (1)
//   BENCH_ROUNDS (2)    rounds, each running ours, the peer and the floor (order rotates)
//   BENCH_CONNECTIONS   comma-separated connection counts (default 1,8)
//   (The defaults take about 13 minutes; BENCH_ROUNDS=3 BENCH_CONNECTIONS=1,2,8 about 27.)
//   BENCH_QUICK=1       2-second windows, 1 round, 2 connections: for development
//   BENCH_SHARDS (4)    shard count of the second instance of ours, which runs the refresh and
//                       code-flow scenarios next to ours (1 shard) for the "Shards" table
//   BENCH_STEPS=1       also the sequential per-step latency of the web server flow (ours alone)
//   BENCH_GATEWAY_PATH  the prefix of ours' gateway route (GATEWAY_ROUTES) in the jwt-route
//                       scenario: a JWT access token for its resource is checked and the
//                       request forwarded to a local upstream that answers 200 at once
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { cpuMeter } from '../bench/cpu.mjs';
import { client, newAgent, runClosedLoops } from '../bench/load.mjs';
import { floor, preparePeer, prepareOurs, scenarios } from '../bench/scenarios.mjs';
import { bundleSizes, deploySize, wasmSize } from '../bench/sizes.mjs';
import { FLOOR_CONFIG, PEER_CONFIG, startFloor, startOurs, startPeer } from '../bench/workers.mjs';
import { ROOT } from './worker.mjs';

// The least storage round trips each scenario needs: what the floor worker does per request.
const FLOOR_OPS = {
  // userinfo, introspection, JWT at a route: the token's edge copy, which the isolate caches for
  // 5 s, so a client calling again soon costs no round trip (a new token costs one kv_get).
  validate: [],
  refresh: ['d1_read', 'd1_batch', 'kv_put'],
  authorize: ['kv_get', 'd1_read', 'kv_put'], // authorize + code is two requests:
  exchange: ['kv_get', 'd1_batch', 'kv_put'], //   authorize, then the code exchange
  register: ['d1_write'],
  clientCredentials: ['kv_put'],
};

const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const SECONDS = Number(env.BENCH_SECONDS || (QUICK ? 2 : 10));
const WARMUP = Number(env.BENCH_WARMUP || (QUICK ? 0.5 : 1));
const ROUNDS = Number(env.BENCH_ROUNDS || (QUICK ? 1 : 2));
const CONNECTIONS = (env.BENCH_CONNECTIONS || (QUICK ? '2' : '1,8')).split(',').map(Number);
const GATEWAY_PATH = env.BENCH_GATEWAY_PATH || '/services/data/v62.0/';
const KINDS = ['ours', 'peer', 'floor'];
// Ours with BENCH_SHARDS shards: only these scenarios, run next to ours in every round.
const SHARDS_B = Number(env.BENCH_SHARDS || 4);
const SHARDED = 'oursSharded';
const SHARD_SCENARIOS = ['refresh', 'code'];
const log = (...a) => console.error('bench:', ...a);

const version = (pkg) => JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [, cpus()[0]?.model])[1];
const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
const started = new Date();

const out = [];
const emit = (line = '') => { out.push(line); console.log(line); };
const median = (xs) => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] / 2 + s[s.length >> 1] / 2 : NaN; };
const fmt = (x, d = 1) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(d)) : '–');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}` : '–');

const workers = {};
let results; let status; let list; let loadSeconds;
const coldReady = {};
const perOp = {};
try {
  // Started one after the other, so each cold start has the machine to itself.
  log('starting ours (prebuilt build/, SHARDS=1) …');
  // The gateway route's upstream: answers at once, so the scenario measures the check and the
  // forward (the peer's API route answers from the worker itself; there is no upstream there).
  const upstream = createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  upstream.unref();
  const gatewayRoutes = JSON.stringify([{ prefix: GATEWAY_PATH, upstream: `http://127.0.0.1:${upstream.address().port}`, resource: `{issuer}${GATEWAY_PATH.replace(/\/$/, '')}`, required_scopes: ['api'] }]);
  workers.ours = await startOurs({ vars: { GATEWAY_ROUTES: gatewayRoutes } });
  log(`starting ours with SHARDS=${SHARDS_B} (refresh and code flow only) …`);
  workers[SHARDED] = await startOurs({ shards: SHARDS_B, vars: { GATEWAY_ROUTES: gatewayRoutes } });
  log('starting the peer (bench/peer) …');
  workers.peer = await startPeer();
  log('starting the floor (bench/floor) …');
  workers.floor = await startFloor();
  const ctx = {
    ours: await prepareOurs(workers.ours, { gatewayPath: GATEWAY_PATH }),
    peer: await preparePeer(workers.peer),
    [SHARDED]: await prepareOurs(workers[SHARDED], { gatewayPath: GATEWAY_PATH }),
  };
  list = scenarios(FLOOR_OPS);

  // results[scenario][c][kind] = [run per round]; floor runs are shared by scenarios with the same requests.
  results = {};
  status = {}; // status[scenario][kind] = 'not yet …' | 'n/a …'
  const floorRuns = new Map();
  const loadStart = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    const order = KINDS.map((_, k) => KINDS[(k + round) % KINDS.length]);
    for (const c of CONNECTIONS) {
      for (const s of list) {
        // The sharded instance runs right after ours in even rounds, right before it in odd ones.
        const kinds = !SHARD_SCENARIOS.includes(s.id) ? order
          : order.flatMap((k) => (k !== 'ours' ? [k] : round % 2 ? [SHARDED, k] : [k, SHARDED]));
        for (const kind of kinds) {
          const driver = kind === 'floor' ? s.floor.driver() : s[kind === SHARDED ? 'ours' : kind](ctx[kind]);
          status[s.id] ??= {};
          if (!status[s.id][kind]?.startsWith('failed')) status[s.id][kind] = driver.notYet || driver.na;
          if (!driver.loop) continue;
          const key = kind === 'floor' && `${JSON.stringify(s.floor.requests)}|${c}|${round}`;
          let res = key && floorRuns.get(key);
          if (!res) {
            const agent = newAgent(c);
            try {
              const http = client(workers[kind].baseUrl, agent);
              const loops = [];
              for (let i = 0; i < c; i++) loops.push(await driver.loop(i, http));
              res = await runClosedLoops(loops, { warmupMs: WARMUP * 1000, windowMs: SECONDS * 1000, meter: cpuMeter(workers[kind].pid, workers[kind].port) });
            } catch (e) { // a setup that fails is reported, and the other scenarios still run
              status[s.id][kind] = `failed: ${e.message.slice(0, 300)}`;
              log(`round ${round + 1}/${ROUNDS} c=${c} ${s.id} ${kind}: FAILED ${e.message}`);
              continue;
            } finally {
              agent.destroy();
            }
            if (key) floorRuns.set(key, res);
            log(`round ${round + 1}/${ROUNDS} c=${c} ${s.id} ${kind}: ${fmt(res.rps)}/s p50 ${fmt(res.p50, 2)} ms, CPU ms/req workerd ${fmt(res.cpu.workerd, 2)} (worker ${fmt(res.cpu.worker, 2)}), node ${fmt(res.cpu.node, 2)}${res.errors ? `, ${res.errors} errors: ${res.errorSamples.join(' | ')}` : ''}`);
          }
          ((results[s.id] ??= {})[c] ??= {})[kind] ??= [];
          results[s.id][c][kind].push(res);
        }
      }
    }
  }
  loadSeconds = (performance.now() - loadStart) / 1000;
  // What one storage round trip costs on this machine: the floor with one op per request, c=1.
  // Then the two password-hash candidates, in the same wasm runtime (no storage).
  for (const op of ['', 'kv_get', 'kv_put', 'd1_read', 'd1_write', 'd1_batch', 'argon2id', 'pbkdf2']) {
    const agent = newAgent(1);
    const loop = await floor({ method: 'GET', ops: op ? [op] : [] }).driver().loop(0, client(workers.floor.baseUrl, agent));
    perOp[op || '(none)'] = await runClosedLoops([loop], { warmupMs: 300, windowMs: (QUICK ? 1 : 3) * 1000, meter: cpuMeter(workers.floor.pid, workers.floor.port) });
    agent.destroy();
  }
  await Promise.all(Object.values(workers).map((w) => w.stop()));
  // A second fresh start of each, on an idle machine, whose first request waits until wrangler
  // says the worker is loaded: the worker's own first request, without wrangler's startup.
  for (const [kind, start] of [['ours', startOurs], ['peer', startPeer], ['floor', startFloor]]) {
    log(`cold start of ${kind}, first request after "Ready on" …`);
    const w = await start({ untilReady: true });
    coldReady[kind] = w.cold;
    await w.stop();
  }
} finally {
  await Promise.all(Object.values(workers).map((w) => w.stop()));
}

// ── report ──
const agg = (runs) => runs && {
  rps: median(runs.map((r) => r.rps)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)),
  cpu: median(runs.map((r) => r.cpu.workerd)), own: median(runs.map((r) => r.cpu.worker)), node: median(runs.map((r) => r.cpu.node)),
  errors: runs.reduce((n, r) => n + r.errors, 0), errorSamples: runs.flatMap((r) => r.errorSamples), trips: runs.find((r) => r.trips)?.trips,
};
emit(`# edge-oauth bench — ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
emit();
emit(`Machine: ${nproc} cores, ${cpuModel}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end; node ${process.version}, wrangler ${version('wrangler')}, ` +
  `@cloudflare/workers-oauth-provider ${version('@cloudflare/workers-oauth-provider')}. Settings: ${SECONDS} s window after ${WARMUP} s warm-up, ` +
  `${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (medians), connections ${CONNECTIONS.join(', ')}${QUICK ? ' (BENCH_QUICK)' : ''}; load phase ${(loadSeconds / 60).toFixed(1)} min.`);
emit();
emit('Each cell is **ours · peer · floor**. req/s counts successful steps only (for authorize + code, a flow of two requests is one step). ' +
  'CPU is user+system ms per step of all workerd processes of that `wrangler dev`; "worker CPU" is the user worker\'s workerd alone, without wrangler\'s proxy worker, which forwards every request. ' +
  'Ratios are ours ÷ peer and ours ÷ floor (req/s · CPU · worker CPU). Trips are our `x-storage-round-trips` per step. Local workerd with local KV/D1: a storage round trip costs far less here than at the edge.');
emit();
emit('| scenario | c | req/s | p50 ms | p99 ms | CPU ms/req | worker CPU ms/req | ours÷peer | ours÷floor | our trips |');
emit('|---|---|---|---|---|---|---|---|---|---|');
const notes = [];
const nodeShare = { ours: [], peer: [], floor: [] };
for (const s of list) {
  const st = status[s.id] || {};
  for (const c of CONNECTIONS) {
    const a = Object.fromEntries(KINDS.map((k) => [k, agg(results[s.id]?.[c]?.[k])]));
    const absent = (k) => (st[k]?.startsWith('failed') ? 'failed' : k === 'ours' && st.ours?.startsWith('not yet') ? 'not yet' : 'n/a');
    const three = (f, d, withErrors) => KINDS.map((k) => (a[k] ? fmt(f(a[k]), d) + (withErrors && a[k].errors ? ` (${a[k].errors} err)` : '') : absent(k))).join(' · ');
    const vs = (k) => (a.ours && a[k] ? `${ratio(a.ours.rps, a[k].rps)} · ${ratio(a.ours.cpu, a[k].cpu)} · ${ratio(a.ours.own, a[k].own)}` : '–');
    emit(`| ${s.title} | ${c} | ${three((r) => r.rps, 0, true)} | ${three((r) => r.p50, 2)} | ${three((r) => r.p99, 2)} | ${three((r) => r.cpu, 2)} | ${three((r) => r.own, 2)} | ${vs('peer')} | ${vs('floor')} | ${a.ours?.trips || '–'} |`);
    for (const k of KINDS) {
      if (a[k]?.errors) notes.push(`- ${s.id} c=${c} ${k}: ${a[k].errors} errors: ${[...new Set(a[k].errorSamples)].slice(0, 3).join(' | ')}`);
      if (a[k]) nodeShare[k].push(a[k].node);
    }
  }
  for (const k of KINDS) if (st[k]) notes.push(`- ${s.title}, ${k}: ${st[k]}`);
}
emit();
emit(`Floor round trips per step: ${Object.entries(FLOOR_OPS).map(([k, v]) => `${k} = ${v.join(', ')}`).join('; ')}.`);
const nodeMax = Math.max(...Object.values(nodeShare).flat());
emit(nodeMax >= 0.05
  ? `wrangler's own node process (not included above) used ${KINDS.map((k) => `${k} ${fmt(Math.min(...nodeShare[k]), 2)}–${fmt(Math.max(...nodeShare[k]), 2)}`).join(', ')} CPU ms per step.`
  : 'wrangler\'s own node process used under 0.05 CPU ms per step (not included above).');
if (notes.length) { emit(); emit('Not measured, and errors:'); emit(); notes.forEach((n) => emit(n)); }

emit();
emit(`## Shards: ours with 1 and ${SHARDS_B} shards`);
emit();
emit(`Our refresh and code-flow rates with the token state on 1 shard (ours in the table above) and on ${SHARDS_B} shards (a second instance of our worker, ` +
  `\`--var SHARDS:${SHARDS_B}\`, run next to it in every round with the same settings). Locally every shard is a Durable Object in the same workerd on these ` +
  `${nproc} cores and D1 has no replicas, so the two are not expected to differ here: the ceilings at the edge are in docs/scaling.md.`);
emit();
emit(`| scenario | c | 1 shard req/s | p50 ms | p99 ms | ${SHARDS_B} shards req/s | p50 ms | p99 ms | ${SHARDS_B} ÷ 1 req/s |`);
emit('|---|---|---|---|---|---|---|---|---|');
const shardNotes = [];
for (const s of list.filter((x) => SHARD_SCENARIOS.includes(x.id))) {
  const st = status[s.id] || {};
  for (const c of CONNECTIONS) {
    const one = agg(results[s.id]?.[c]?.ours);
    const many = agg(results[s.id]?.[c]?.[SHARDED]);
    const cells = (a, k) => (a ? [fmt(a.rps, 0) + (a.errors ? ` (${a.errors} err)` : ''), fmt(a.p50, 2), fmt(a.p99, 2)]
      : Array(3).fill(st[k]?.startsWith('failed') ? 'failed' : '–'));
    emit(`| ${s.title} | ${c} | ${cells(one, 'ours').join(' | ')} | ${cells(many, SHARDED).join(' | ')} | ${one && many ? ratio(many.rps, one.rps) : '–'} |`);
    if (many?.errors) shardNotes.push(`- ${s.id} c=${c} ${SHARDS_B} shards: ${many.errors} errors: ${[...new Set(many.errorSamples)].slice(0, 3).join(' | ')}`);
  }
  if (st[SHARDED]) shardNotes.push(`- ${s.title}, ${SHARDS_B} shards: ${st[SHARDED]}`);
}
if (shardNotes.length) { emit(); shardNotes.forEach((n) => emit(n)); }

emit();
emit('## One storage round trip, locally');
emit();
emit('The floor with one op per request, one connection: what each kind of round trip costs on this machine. ' +
  'Locally a D1 query is a fetch from the worker to miniflare\'s D1 service, and wrangler\'s inspector proxy forwards the DevTools Network events of every such fetch to wrangler\'s node process, ' +
  'which is why D1 round trips cost node CPU here (a dev-only cost that competes for the same cores; KV calls make none). None of this exists at the edge, where each round trip is instead a network hop.');
emit();
emit('| op | p50 ms | CPU ms/req (all workerd) | worker CPU ms/req | wrangler node CPU ms/req |');
emit('|---|---|---|---|---|');
for (const [op, r] of Object.entries(perOp)) emit(`| ${op} | ${fmt(r.p50, 2)} | ${fmt(r.cpu.workerd, 2)} | ${fmt(r.cpu.worker, 2)} | ${fmt(r.cpu.node, 2)} |`);
emit();
emit('`argon2id` and `pbkdf2` make no round trip: each hashes a 16-character password with a fresh 16-byte salt, the login\'s password check. ' +
  '`argon2id` is the main server\'s Argon2id (m = 19 MiB, t = 2, p = 1, OWASP\'s first recommended configuration) in wasm; ' +
  '`pbkdf2` is PBKDF2-HMAC-SHA256 in WebCrypto at 100,000 iterations, workerd\'s cap, where OWASP asks for 600,000 for the equivalent.');

emit();
emit('## Cold start');
emit();
emit('Two fresh `wrangler dev` starts per worker. (1) the measured instance: spawn → its TCP port accepts a connection (nothing sent before), then the first HTTP request at once. ' +
  'wrangler opens the port (its proxy worker) before the user worker is loaded, so that first request waits for the rest of the startup. ' +
  '(2) a second start whose first request waits for wrangler\'s "Ready on" line (the user worker is loaded): the worker\'s own first request. Warm = median of the next 25.');
emit();
emit('| worker | request | spawn → port ms | (1) first request ms | (2) spawn → ready ms | (2) first request ms | warm ms |');
emit('|---|---|---|---|---|---|---|');
for (const k of KINDS) {
  const c = workers[k].cold; const r = coldReady[k];
  const first = (x) => `${fmt(x.firstMs, 1)}${x.firstStatus !== 200 ? ` (${x.firstStatus}; 200 after ${fmt(x.readyMs, 0)})` : ''}`;
  emit(`| ${k} | GET ${c.path} | ${fmt(c.portMs, 0)} | ${first(c)} | ${r ? fmt(r.readyLineMs, 0) : '–'} | ${r ? first(r) : '–'} | ${fmt(r?.warmMs ?? c.warmMs, 2)} |`);
}

emit();
emit('## Sizes');
emit();
emit('`wrangler deploy --dry-run` (what would be uploaded):');
emit();
emit('| worker | total upload KiB | gzip KiB |');
emit('|---|---|---|');
for (const [k, cfg] of [['ours', undefined], ['peer', PEER_CONFIG], ['floor', FLOOR_CONFIG]]) {
  const z = deploySize(cfg);
  emit(z.error ? `| ${k} | ${z.error} | |` : `| ${k} | ${z.uploadKiB.toFixed(1)} | ${z.gzipKiB.toFixed(1)} |`);
}
const ourWasm = wasmSize(join(ROOT, 'build', 'index_bg.wasm'));
const floorWasm = wasmSize(join(ROOT, 'bench', 'floor', 'build', 'index_bg.wasm'));
emit();
emit(`Our wasm: ${ourWasm.rawKiB.toFixed(0)} KiB raw, ${ourWasm.gzipKiB.toFixed(0)} KiB gzip (the floor's: the \`worker\` crate plus argon2 for its password-hashing op: ${floorWasm.rawKiB.toFixed(0)} KiB raw, ${floorWasm.gzipKiB.toFixed(0)} KiB gzip).`);

// Issue 11: everything the demo app at / downloads, against oidc-client-ts measured the same way.
const bundle = bundleSizes();
emit();
emit('The browser bundle: everything `/` (the demo app) loads, `gzip -9` bytes each:');
emit();
emit('| file | raw B | gzip -9 B |');
emit('|---|---|---|');
for (const f of bundle.files) emit(`| ${f.file} | ${f.raw} | ${f.gzip} |`);
emit(`| **all of /** | ${bundle.files.reduce((s, f) => s + f.raw, 0)} | **${bundle.total}** |`);
emit(`| oidc-client-ts ${bundle.oidcClientTs.version} \`min.js\` | ${bundle.oidcClientTs.raw} | ${bundle.oidcClientTs.gzip} |`);
emit();
emit(`All of / is ${bundle.total < bundle.oidcClientTs.gzip ? 'under' : 'OVER'} oidc-client-ts's min.js: ${bundle.total} B against ${bundle.oidcClientTs.gzip} B gzip -9.`);

if (env.BENCH_STEPS === '1') {
  const { runSteps } = await import('../bench/steps.mjs');
  log('per-step latency (BENCH_STEPS=1) …');
  const { results, concurrentWallMs } = await runSteps();
  emit();
  emit('## Per step (ours alone, sequential)');
  emit();
  emit('| step | n | median ms | p95 ms | round trips |');
  emit('|---|---|---|---|---|');
  for (const r of results) emit(`| ${r.name} | ${r.n} | ${r.median_ms} | ${r.p95_ms} | ${r.round_trips ?? ''} |`);
  emit();
  emit(`20 concurrent userinfo requests: ${concurrentWallMs.toFixed(1)} ms wall.`);
}

mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'latest.md'), out.join('\n') + '\n');
log(`written to bench/results/latest.md (${(performance.now() / 60000).toFixed(1)} min in all)`);
