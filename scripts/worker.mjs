// Starting and stopping the real worker (workerd through `wrangler dev`) with local KV and D1.
// Used by `make dev` (scripts/dev.mjs) and by the end-to-end tests (tests/e2e/harness.mjs).
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');

/** A random token of 43 base62 characters (256 bits), like the server's own. */
export function randomToken(len = 43) {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let out = '';
  while (out.length < len) {
    for (const b of randomBytes(64)) if (b < 248 && out.length < len) out += alphabet[b % 62];
  }
  return out;
}

/** A fresh RSA-2048 private key as PKCS#8 PEM. */
export function newSigningKey() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
}

/** Writes a dotenv file the worker reads its secrets from. PEM newlines are escaped. */
export function writeEnvFile(path, vars) {
  const lines = Object.entries(vars).map(([k, v]) => `${k}="${String(v).replace(/\n/g, '\\n')}"`);
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Applies the D1 migrations to the local database under `stateDir`. */
export function migrate(stateDir) {
  const r = spawnSync(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', stateDir], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' },
  });
  if (r.status !== 0) throw new Error(`migrations failed:\n${r.stdout}\n${r.stderr}`);
}

/**
 * Starts `wrangler dev` on 127.0.0.1:`port` and resolves once discovery answers 200.
 * Returns { baseUrl, pid, stop() }; stop() kills the whole process group by PID. `logLevel` is
 * wrangler's (`log` shows the worker's own log lines; default `warn`, or `info` with `inherit`).
 */
export async function startWorker({ port, stateDir, envFile, vars = {}, config, args: extra = [], prebuilt = true, inherit = false, logLevel, timeoutMs = 180000 }) {
  const args = ['dev', ...(config ? ['--config', config] : []), '--ip', '127.0.0.1', '--port', String(port), '--persist-to', stateDir,
    '--show-interactive-dev-session=false', '--log-level', logLevel ?? (inherit ? 'info' : 'warn'),
    // Its own devtools port: two workers started at once must not both take 9229.
    '--inspector-port', String(await freePort())];
  if (envFile) args.push('--env-file', envFile);
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  args.push(...extra);
  const child = spawn(WRANGLER, args, {
    cwd: ROOT,
    detached: true,
    stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EDGE_OAUTH_PREBUILT: prebuilt ? '1' : '0', WRANGLER_SEND_METRICS: 'false', CI: '1' },
  });
  let output = '';
  if (!inherit) {
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = () => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${output}`);
    try {
      const r = await fetch(`${baseUrl}/.well-known/openid-configuration`);
      if (r.status === 200) return { baseUrl, pid: child.pid, stop, output: () => output };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  stop();
  throw new Error(`worker did not become ready in ${timeoutMs} ms:\n${output}`);
}
