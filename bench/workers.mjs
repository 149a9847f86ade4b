// The three workers of `make bench`, each in its own `wrangler dev` (so each has its own workerd
// processes and their CPU can be told apart) on a free loopback port with a throwaway state dir:
// ours (the prebuilt build/), the peer (bench/peer, @cloudflare/workers-oauth-provider) and the
// floor (bench/floor, built here when its sources changed). Every one started is stopped by
// process group, and its state dir removed, on normal exit, on errors and on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, migrate, newSigningKey, randomToken, ROOT, writeEnvFile } from '../scripts/worker.mjs';
import { newAgent, request } from './load.mjs';

const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const WRANGLER_ENV = { ...process.env, EDGE_OAUTH_PREBUILT: '1', WRANGLER_SEND_METRICS: 'false', CI: '1' };
export const PEER_CONFIG = join(ROOT, 'bench', 'peer', 'wrangler.toml');
export const FLOOR_DIR = join(ROOT, 'bench', 'floor');
export const FLOOR_CONFIG = join(FLOOR_DIR, 'wrangler.toml');

const live = new Set();
const extra = new Set();
function stopAll() {
  for (const w of [...live]) w.stopNow();
  for (const fn of [...extra]) { try { fn(); } catch { /* best effort */ } }
}
/** Also runs `fn` (synchronous) on exit or Ctrl-C; returns a function that unregisters it. */
export function atExit(fn) { extra.add(fn); return () => extra.delete(fn); }
process.on('exit', stopAll);
// On Ctrl-C: SIGTERM first (wrangler then cleans up after itself), SIGKILL and rm 2 s later.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const w of live) { try { process.kill(-w.pid, 'SIGTERM'); } catch { /* gone */ } }
    setTimeout(() => { stopAll(); process.exit(130); }, live.size ? 2000 : 0);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function portOpen(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts `wrangler dev` (the same arguments as scripts/worker.mjs's startWorker) and measures the
 * cold start: time from spawn until the port accepts a TCP connection (no HTTP request is sent
 * before that), then the first HTTP request to `coldPath`, then the warm median of that request.
 * The port belongs to wrangler's proxy worker and opens before the user worker is loaded; with
 * `untilReady`, the first request waits instead for wrangler's "Ready on" line (logged once the
 * user worker is loaded), so it measures the worker's own first request.
 */
async function launch({ name, config, stateDir, envFile, vars = {}, coldPath, untilReady = false, timeoutMs = 180000 }) {
  const port = await freePort();
  const args = ['dev', ...(config ? ['--config', config] : []), '--ip', '127.0.0.1', '--port', String(port), '--persist-to', stateDir,
    '--show-interactive-dev-session=false', '--log-level', untilReady ? 'info' : 'warn'];
  if (envFile) args.push('--env-file', envFile);
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const spawnedAt = performance.now();
  const child = spawn(WRANGLER, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: WRANGLER_ENV });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((r) => child.once('exit', r));
  const w = {
    name, pid: child.pid, port, baseUrl: `http://127.0.0.1:${port}`, stateDir, output: () => output,
    stopNow() { // synchronous: also used from the 'exit' handler
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      rmSync(stateDir, { recursive: true, force: true });
      live.delete(w);
    },
    async stop() {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      w.stopNow();
    },
  };
  live.add(w);
  try {
    const deadline = Date.now() + timeoutMs;
    while (!(await portOpen(port))) {
      if (child.exitCode !== null) throw new Error(`${name}: wrangler dev exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`${name}: port ${port} not open after ${timeoutMs} ms:\n${output}`);
      await sleep(20);
    }
    const portAt = performance.now();
    let readyLineMs;
    if (untilReady) {
      while (!/Ready on/.test(output)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name}: no "Ready on" from wrangler:\n${output}`);
        await sleep(10);
      }
      readyLineMs = performance.now() - spawnedAt;
    }
    const agent = newAgent(1);
    const timed = async () => {
      const t = performance.now();
      try {
        const r = await request(agent, w.baseUrl + coldPath);
        return [performance.now() - t, r.status];
      } catch (e) {
        return [performance.now() - t, `${e.code || e.message}`];
      }
    };
    const [firstMs, firstStatus] = await timed();
    for (let s = firstStatus; s !== 200; [, s] = await timed()) { // not ready yet: wait for a 200
      if (Date.now() > deadline) throw new Error(`${name}: ${coldPath} answered ${s}:\n${output}`);
      await sleep(20);
    }
    const readyMs = firstStatus === 200 ? firstMs : performance.now() - portAt; // port open → first 200
    const warm = [];
    for (let i = 0; i < 25; i++) warm.push((await timed())[0]);
    agent.destroy();
    warm.sort((a, b) => a - b);
    w.cold = { path: coldPath, portMs: portAt - spawnedAt, readyLineMs, firstMs, firstStatus, readyMs, warmMs: warm[Math.floor(warm.length / 2)] };
    return w;
  } catch (e) {
    await w.stop();
    throw e;
  }
}

/**
 * Our worker, set up like tests/e2e/harness.mjs (two signing keys, round trips exposed), with
 * `shards` token shards (`--var SHARDS:n`; the main run uses 1, the shards table also 4).
 */
export async function startOurs({ untilReady, shards = 1, vars = {} } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), `edge-oauth-bench-ours${shards === 1 ? '' : `-${shards}shards`}-`));
  const adminToken = randomToken();
  const envFile = join(stateDir, 'bench.vars');
  writeEnvFile(envFile, { ADMIN_TOKEN: adminToken, SIGNING_KEYS: newSigningKey() + newSigningKey(), EXPOSE_ROUND_TRIPS: '1' });
  try { migrate(stateDir); } catch (e) { rmSync(stateDir, { recursive: true, force: true }); throw e; }
  const name = shards === 1 ? 'ours' : `ours (SHARDS=${shards})`;
  const w = await launch({ name, stateDir, envFile, vars: { SHARDS: String(shards), ...vars }, coldPath: '/.well-known/openid-configuration', untilReady });
  w.adminToken = adminToken;
  return w;
}

export async function startPeer({ untilReady } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'edge-oauth-bench-peer-'));
  return launch({ name: 'peer', config: PEER_CONFIG, stateDir, coldPath: '/.well-known/oauth-authorization-server', untilReady });
}

export async function startFloor({ untilReady } = {}) {
  buildFloor();
  const stateDir = mkdtempSync(join(tmpdir(), 'edge-oauth-bench-floor-'));
  const r = spawnSync(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', stateDir, '--config', FLOOR_CONFIG], { cwd: ROOT, encoding: 'utf8', env: WRANGLER_ENV });
  if (r.status !== 0) { rmSync(stateDir, { recursive: true, force: true }); throw new Error(`floor migrations failed:\n${r.stdout}\n${r.stderr}`); }
  const w = await launch({ name: 'floor', config: FLOOR_CONFIG, stateDir, coldPath: '/floor', untilReady });
  const seeded = await request(undefined, `${w.baseUrl}/seed`, { method: 'POST' });
  if (seeded.status !== 200) { await w.stop(); throw new Error(`floor /seed answered ${seeded.status}: ${seeded.body}`); }
  return w;
}

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newestMtime(join(path, f))));
}

/** Builds the floor with worker-build (as scripts/build-worker.sh does) when its sources are newer than its build. */
export function buildFloor() {
  const out = join(FLOOR_DIR, 'build', 'worker', 'shim.mjs');
  const sources = ['src', 'Cargo.toml', 'Cargo.lock'].map((f) => join(FLOOR_DIR, f));
  if (existsSync(out) && statSync(out).mtimeMs >= Math.max(...sources.map(newestMtime))) return false;
  console.error('bench: building the floor worker (bench/floor) with worker-build …');
  const path = `${join(homedir(), '.cargo', 'bin')}:${process.env.PATH}`;
  const which = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8', env: { ...process.env, PATH: path } }).stdout.trim();
  const r = spawnSync('worker-build', ['--release'], {
    cwd: FLOOR_DIR,
    stdio: ['ignore', 2, 2],
    env: {
      ...process.env, PATH: path,
      CARGO_TARGET_DIR: join(FLOOR_DIR, 'target'),
      WASM_BINDGEN_BIN: process.env.WASM_BINDGEN_BIN || which('wasm-bindgen'),
      WASM_OPT_BIN: process.env.WASM_OPT_BIN || join(ROOT, 'node_modules', '.bin', 'wasm-opt'),
      ESBUILD_BIN: process.env.ESBUILD_BIN || join(ROOT, 'node_modules', '.bin', 'esbuild'),
    },
  });
  if (r.status !== 0) throw new Error('floor build failed (worker-build --release in bench/floor)');
  return true;
}
