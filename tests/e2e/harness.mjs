// End-to-end harness: the real worker (wrangler dev → workerd) on a free loopback port with a
// throwaway STATE_DIR and its own secrets; stopped by PID when the tests end.
//
// Every worker gets `DEV_MODE=1` (the development-only switches and `GET /dev/shards`, see
// docs/scaling.md) and, when the environment sets `SHARDS` (`make test-e2e` runs the suite with
// 1 and with 4), `SHARDS` as a var; a test's own `vars` win over both.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, migrate, newSigningKey, randomToken, startWorker, writeEnvFile } from '../../scripts/worker.mjs';

const ENV_FILE = 'test.vars';

/** Reads an env file written by writeEnvFile (values quoted, newlines escaped). */
function readEnvFile(path) {
  const vars = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$/);
    if (m) vars[m[1]] = m[2].replace(/\\n/g, '\n');
  }
  return vars;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether any process of the process group `pgid` is still running (zombies do not count). */
function groupAlive(pgid) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] = state, f[2] = pgrp
    if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
  }
  return false;
}

/**
 * `config` is another wrangler config file (in the project root, so its paths resolve);
 * `vars` are passed as `--var` (over the defaults `DEV_MODE=1` and the environment's `SHARDS`);
 * `secrets` override entries of the generated env file (e.g. `{ SIGNING_KEYS: 'not a key' }`
 * for a worker with unusable keys); `args` are more `wrangler dev` arguments (e.g.
 * `--test-scheduled`).
 *
 * Restarts on the same state: `stateDir` reuses the state directory of an earlier worker (its
 * local D1, KV and Durable Objects, and its env file, so the same secrets and admin token; the
 * migrations are applied again, which is idempotent). `keep: true`, or `stop({ keepState: true })`,
 * leaves the state directory in place when the worker stops; otherwise stop() removes it.
 * stop() returns a promise that resolves once every process of the worker has exited (await it
 * before starting another worker on the same state).
 */
export async function startTestWorker({ vars = {}, secrets = {}, config, args = [], stateDir: reuse, keep = false } = {}) {
  const stateDir = reuse ?? mkdtempSync(join(tmpdir(), 'edge-oauth-test-'));
  const envFile = join(stateDir, ENV_FILE);
  let adminToken;
  if (reuse && existsSync(envFile)) {
    const existing = readEnvFile(envFile);
    if (Object.keys(secrets).length) writeEnvFile(envFile, { ...existing, ...secrets });
    adminToken = { ...existing, ...secrets }.ADMIN_TOKEN;
  } else {
    adminToken = secrets.ADMIN_TOKEN ?? randomToken();
    // Two keys: the first signs, the second is "retired" and must stay published.
    writeEnvFile(envFile, {
      ADMIN_TOKEN: adminToken,
      SIGNING_KEYS: newSigningKey() + newSigningKey(),
      // Seals the signing keys made through /admin/keys (docs/configuration.md).
      KEY_WRAPPING_KEY: randomToken(43),
      EXPOSE_ROUND_TRIPS: '1',
      ...secrets,
    });
  }
  const allVars = { DEV_MODE: '1', ...(process.env.SHARDS ? { SHARDS: process.env.SHARDS } : {}), ...vars };
  let worker;
  try {
    migrate(stateDir);
    const port = await freePort();
    // `log`: the worker's own log lines (one JSON line per request, src/core/log.rs) are captured
    // in `output()` with wrangler's warnings and errors.
    worker = await startWorker({ port, stateDir, envFile, vars: allVars, config, args, logLevel: 'log' });
  } catch (e) {
    if (!reuse && !keep) rmSync(stateDir, { recursive: true, force: true });
    throw e;
  }
  const baseUrl = worker.baseUrl;

  async function admin(method, path, body, { token = adminToken, raw } = {}) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(baseUrl + path, {
      method,
      headers,
      body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, headers: r.headers };
  }

  /** Runs a read-only SQL query against the worker's local D1 file. */
  function d1(sql) {
    const dir = join(stateDir, 'v3', 'd1', 'miniflare-D1DatabaseObject');
    const file = readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
    return execFileSync('sqlite3', ['-readonly', '-json', join(dir, file), sql], { encoding: 'utf8' });
  }

  /**
   * Stops the worker (SIGTERM to its process group) and, unless the state is kept, removes the
   * state directory at once. The promise resolves when the group is gone (SIGKILL after 10 s).
   */
  function stop({ keepState = keep } = {}) {
    worker.stop();
    if (!keepState) rmSync(stateDir, { recursive: true, force: true });
    return (async () => {
      const deadline = Date.now() + 10000;
      while (groupAlive(worker.pid)) {
        if (Date.now() > deadline) {
          try { process.kill(-worker.pid, 'SIGKILL'); } catch { /* gone */ }
          await sleep(200);
          break;
        }
        await sleep(50);
      }
    })();
  }

  return { baseUrl, adminToken, stateDir, vars: allVars, admin, d1, stop, output: worker.output };
}

/**
 * The local rate-limit bindings (miniflare) count in fixed windows aligned to the wall-clock
 * period (`floor(now / 60 s)`), and clear every counter when a new window starts. A throttle
 * scenario must therefore run inside one window: this waits for the next window when fewer
 * than `needMs` remain in the current one, and returns the window's number. Nothing is
 * asserted about time; this only keeps the scenarios deterministic.
 */
export function rateWindow(periodMs = 60000) {
  return Math.floor(Date.now() / periodMs);
}

export async function freshRateWindow(needMs = 40000, periodMs = 60000) {
  const left = periodMs - (Date.now() % periodMs);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 250));
  return rateWindow(periodMs);
}

/**
 * Runs `scenario(attempt)` inside one rate-limit window; if the window turned over while it
 * ran (so counters were cleared half-way), runs it once more in a fresh window. A scenario
 * should use `attempt` to vary anything that outlives a window (users, tokens).
 */
export async function inOneRateWindow(needMs, scenario) {
  for (let attempt = 0; ; attempt++) {
    // A retry waits for a window none of the first run's requests counted in.
    const start = await freshRateWindow(attempt === 0 ? needMs : 60000);
    let result;
    try {
      result = await scenario(attempt);
    } catch (e) {
      if (rateWindow() !== start && attempt < 1) continue;
      throw e;
    }
    if (rateWindow() === start || attempt >= 1) return result;
  }
}
