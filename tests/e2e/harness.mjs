// End-to-end harness: the real worker (wrangler dev → workerd) on a free loopback port with a
// throwaway STATE_DIR and its own secrets; stopped by PID when the tests end.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, migrate, newSigningKey, randomToken, startWorker, writeEnvFile } from '../../scripts/worker.mjs';

export async function startTestWorker({ vars = {} } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'edge-oauth-test-'));
  const adminToken = randomToken();
  // Two keys: the first signs, the second is "retired" and must stay published.
  const envFile = join(stateDir, 'test.vars');
  writeEnvFile(envFile, {
    ADMIN_TOKEN: adminToken,
    SIGNING_KEYS: newSigningKey() + newSigningKey(),
    EXPOSE_ROUND_TRIPS: '1',
  });
  migrate(stateDir);
  const port = await freePort();
  const worker = await startWorker({ port, stateDir, envFile, vars });
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
