// End-to-end harness: the real worker (wrangler dev → workerd) on a free loopback port with a
// throwaway STATE_DIR and its own secrets; stopped by PID when the tests end.
//
// Every worker gets `DEV_MODE=1` (the development-only switches and `GET /dev/shards`, see
// docs/scaling.md) and, when the environment sets `SHARDS` (`make test-e2e` runs the suite with
// 1 and with 4), `SHARDS` as a var; a test's own `vars` win over both.
//
// The leak recorder (on only when `EDGE_OAUTH_LEAK_DIR` is set; see `recorder` below) writes
// every secret the tests see, each worker's captured output and its audit trail into that
// directory; tests/conformance/zz-no-secrets-in-logs.test.mjs then checks that no secret is in
// any log line or audit row.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, migrate, newSigningKey, randomToken, startWorker, writeEnvFile } from '../../scripts/worker.mjs';

const ENV_FILE = 'test.vars';

// ── The leak recorder ─────────────────────────────────────────────────────────────────────────
//
// With `EDGE_OAUTH_LEAK_DIR` set, every secret this test process sees is appended to
// `${EDGE_OAUTH_LEAK_DIR}/secrets-<pid>.txt` (one `kind<TAB>value` a line), and each worker's
// stop() writes its captured output (`output()`: wrangler's lines and the worker's own JSON log
// lines, src/core/log.rs) to `log-<pid>-<n>.txt` and its D1 `audit_events` rows to
// `audit-<pid>-<n>.txt`, before the state directory goes. Values the tests saw as ids
// (client_id, user_id, username, …) go to `public-<pid>.txt`: a test that sends an id as a
// wrong secret must not make the id's place in a log line look like a leak.
// Secrets come from each worker's ADMIN_TOKEN, KEY_WRAPPING_KEY and SIGNING_KEYS (each base64
// line of the PEMs), and from node's global fetch, wrapped here, for requests to a running test
// worker: response fields (JSON, form-encoded, form_post hidden inputs), the same names in a
// Location's query or fragment, the login-session cookie; request body fields.
// Not seen: requests made by browsers (Playwright) or by Python clients (authlib), which do not
// go through this process's fetch. Their secrets are not recorded, though the logs they cause
// are still checked for every secret that was.
const LEAK_DIR = process.env.EDGE_OAUTH_LEAK_DIR || '';

const RESPONSE_SECRETS = new Set(['access_token', 'refresh_token', 'id_token', 'client_secret', 'registration_access_token', 'token', 'device_code', 'user_code', 'code',
  // hybrid web sessions (docs/hybrid.md)
  'sid', 'parent_sid', 'lightning_sid', 'visualforce_sid', 'content_sid']);
const REQUEST_SECRETS = new Set(['password', 'client_secret', 'code_verifier', 'assertion', 'client_assertion']);
const PUBLIC = new Set(['client_id', 'user_id', 'org_id', 'organization_id', 'id', 'username', 'preferred_username', 'email', 'kid', 'sub', 'iss', 'name']);
const SESSION_COOKIES = new Set(['eo_sid', '__Host-eo_sid']);

const recorder = LEAK_DIR ? makeRecorder(LEAK_DIR) : undefined;

function makeRecorder(dir) {
  mkdirSync(dir, { recursive: true });
  const seen = new Set();
  const bases = new Set(); // the running test workers' base URLs
  let workers = 0;

  /**
   * Notes `value` as a secret of `kind` (or a public id): one line, at least 12 characters and 6
   * different ones (shorter values would match log text by chance); a user code
   * (`XXXX-XXXX`, 9) is kept as shown.
   */
  function note(kind, value) {
    const key = `${kind === 'public' ? 'p' : 's'}:${value}`;
    if (typeof value !== 'string' || seen.has(key) || /[\t\r\n]/.test(value) || value.length > 8192) return;
    if (!(kind === 'user_code' ? /^[A-Z]{4}-[A-Z]{4}$/.test(value) : value.length >= 12 && new Set(value).size >= 6)) return;
    seen.add(key);
    if (kind === 'public') return appendFileSync(join(dir, `public-${process.pid}.txt`), `${value}\n`);
    appendFileSync(join(dir, `secrets-${process.pid}.txt`), `${kind}\t${value}\n`);
    // An opaque access token is `{org_id}!{secret}`: the part after `!` is the secret alone.
    const bang = value.indexOf('!');
    if (bang > 0) note(kind, value.slice(bang + 1));
  }

  function notePairs(pairs, names) {
    for (const [k, v] of pairs) {
      if (names.has(k)) note(k, v);
      else if (PUBLIC.has(k)) note('public', v);
    }
  }

  /** The (name, string value) pairs of a body: JSON at any depth, hidden inputs, or a form. */
  function bodyPairs(text, type = '') {
    try {
      const out = [];
      const walk = (v) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) typeof x === 'string' ? out.push([k, x]) : walk(x);
      };
      walk(JSON.parse(text));
      return out;
    } catch { /* not JSON */ }
    if (/html/i.test(type)) return [...text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&')]);
    return [...new URLSearchParams(text)];
  }

  function urlPairs(href, base) {
    try {
      const url = new URL(href, base);
      return [...url.searchParams, ...new URLSearchParams(url.hash.slice(1))];
    } catch { return []; }
  }

  const realFetch = globalThis.fetch;
  globalThis.fetch = async function recordingFetch(input, init) {
    const href = typeof input === 'string' ? input : input?.url ?? input?.href ?? '';
    const base = [...bases].find((b) => href === b || href.startsWith(`${b}/`) || href.startsWith(`${b}?`));
    if (!base) return realFetch(input, init);
    try {
      const body = init?.body;
      if (typeof body === 'string') notePairs(bodyPairs(body), REQUEST_SECRETS);
      else if (body instanceof URLSearchParams || body instanceof FormData) notePairs([...body].filter(([, v]) => typeof v === 'string'), REQUEST_SECRETS);
      else if (body === undefined && input instanceof Request && input.body) input.clone().text().then((t) => notePairs(bodyPairs(t), REQUEST_SECRETS), () => {});
      // Other bodies (buffers, streams) are a test's own raw bytes: not read.
    } catch { /* recording never breaks a request */ }
    const res = await realFetch(input, init);
    try {
      const location = res.headers.get('location');
      if (location) notePairs(urlPairs(location, base), RESPONSE_SECRETS);
      if (res.redirected) notePairs(urlPairs(res.url, base), RESPONSE_SECRETS);
      for (const c of res.headers.getSetCookie()) {
        const [name, ...value] = c.split(';')[0].split('=');
        if (SESSION_COOKIES.has(name.trim())) note('session_cookie', value.join('=').trim());
      }
      const type = res.headers.get('content-type') ?? '';
      if (/json|x-www-form-urlencoded|text\/html/i.test(type)) {
        res.clone().text().then((t) => notePairs(bodyPairs(t, type), RESPONSE_SECRETS), () => {});
      }
    } catch { /* nor a response */ }
    return res;
  };

  return {
    /** A worker started: its secrets, and its base URL for the fetch wrapper. Returns its number. */
    started(baseUrl, env) {
      bases.add(baseUrl);
      note('admin_token', env.ADMIN_TOKEN);
      note('key_wrapping_key', env.KEY_WRAPPING_KEY);
      for (const line of String(env.SIGNING_KEYS ?? '').split('\n')) {
        if (line.trim() && !line.startsWith('-----')) note('signing_key', line.trim());
      }
      return ++workers;
    },
    /**
     * A worker stopping (before its state goes): writes its output and audit rows, after a short
     * settle (the audit rows are written after each response, `waitUntil`). Returns a function
     * that appends the output that came after, once the worker is gone.
     */
    stopping(baseUrl, n, output, auditRows) {
      bases.delete(baseUrl);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
      const logFile = join(dir, `log-${process.pid}-${n}.txt`);
      const first = output();
      appendFileSync(logFile, first);
      let audit;
      try { audit = auditRows(); } catch (e) { audit = `-- audit_events could not be read: ${String(e.message ?? e).split('\n')[0]}\n`; }
      appendFileSync(join(dir, `audit-${process.pid}-${n}.txt`), audit);
      return () => appendFileSync(logFile, output().slice(first.length));
    },
  };
}

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
  let env; // the secrets the worker gets (for the leak recorder)
  if (reuse && existsSync(envFile)) {
    const existing = readEnvFile(envFile);
    if (Object.keys(secrets).length) writeEnvFile(envFile, { ...existing, ...secrets });
    env = { ...existing, ...secrets };
    adminToken = env.ADMIN_TOKEN;
  } else {
    adminToken = secrets.ADMIN_TOKEN ?? randomToken();
    // Two keys: the first signs, the second is "retired" and must stay published.
    env = {
      ADMIN_TOKEN: adminToken,
      SIGNING_KEYS: newSigningKey() + newSigningKey(),
      // Seals the signing keys made through /admin/keys (docs/configuration.md).
      KEY_WRAPPING_KEY: randomToken(43),
      EXPOSE_ROUND_TRIPS: '1',
      ...secrets,
    };
    writeEnvFile(envFile, env);
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
  const recorded = recorder?.started(baseUrl, env);

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
  let stopped = false;
  function stop({ keepState = keep } = {}) {
    // The leak recorder (when on) saves the output and the audit trail before the state goes,
    // once, after a 0.5 s settle.
    const later = recorder && !stopped ? recorder.stopping(baseUrl, recorded, worker.output, () => d1('SELECT * FROM audit_events ORDER BY id')) : undefined;
    stopped = true;
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
      later?.();
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
