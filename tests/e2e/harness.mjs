// End-to-end harness: the real worker (wrangler dev → workerd) on a free loopback port with a
// throwaway STATE_DIR and its own secrets; stopped by PID when the tests end.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, migrate, newSigningKey, randomToken, startWorker, writeEnvFile } from '../../scripts/worker.mjs';

/**
 * `config` is another wrangler config file (in the project root, so its paths resolve);
 * `vars` are passed as `--var`; `secrets` override entries of the generated env file (e.g.
 * `{ SIGNING_KEYS: 'not a key' }` for a worker with unusable keys); `args` are more
 * `wrangler dev` arguments (e.g. `--test-scheduled`).
 */
export async function startTestWorker({ vars = {}, secrets = {}, config, args = [] } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'edge-oauth-test-'));
  const adminToken = randomToken();
  // Two keys: the first signs, the second is "retired" and must stay published.
  const envFile = join(stateDir, 'test.vars');
  writeEnvFile(envFile, {
    ADMIN_TOKEN: adminToken,
    SIGNING_KEYS: newSigningKey() + newSigningKey(),
    EXPOSE_ROUND_TRIPS: '1',
    ...secrets,
  });
  migrate(stateDir);
  const port = await freePort();
  const worker = await startWorker({ port, stateDir, envFile, vars, config, args });
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

  function stop() {
    worker.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }

  return { baseUrl, adminToken, stateDir, admin, d1, stop, output: worker.output };
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
