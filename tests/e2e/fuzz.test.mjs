// Property-based fuzzing with schemathesis (PyPI) from tests/fuzz/openapi.yaml: every public
// endpoint, every grant of the token endpoint and the admin API, generated requests (examples,
// coverage, fuzzing and stateful phases, fixed seed) against the real worker, with every check
// but positive_data_acceptance (tests/fuzz/schemathesis.toml, which also holds the
// per-operation exclusions and why): no 5xx, every status, content type, header and body as
// the description says, schema-violating requests refused, authentication enforced, methods
// outside the description answered 405 with Allow. The worker output must show no panic.
//
// The worker is seeded first so that requests can get past authentication: a confidential app
// (FUZZCLIENT) whose client credentials grant runs as a user (FUZZUSER), a refresh token of
// that user (FUZZREFRESH, from a code flow), an initial access token, and a dynamically
// registered client (FUZZREGCLIENT) with its registration access token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/worker.mjs';
import { authorize, tokenRequest } from './flow.mjs';
import { startTestWorker } from './harness.mjs';

const CALLBACK = 'https://app.example.com/cb';

let w;
let seed;
before(async () => {
  w = await startTestWorker();
  const user = await w.admin('POST', '/admin/users', {
    username: 'fuzz-user@example.com', password: 'fuzz user password', email: 'fuzz-user@example.com', name: 'Fuzz User',
  });
  assert.equal(user.status, 201, user.text);
  const app = await w.admin('POST', '/admin/apps', {
    name: 'Fuzz App', callback_urls: [CALLBACK], scopes: ['api', 'refresh_token', 'openid', 'profile', 'email'],
    client_credentials_user: 'fuzz-user@example.com',
  });
  assert.equal(app.status, 201, app.text);
  const settings = await w.admin('GET', '/admin/settings');
  const initial = await w.admin('POST', '/admin/registration-tokens', {});
  assert.equal(initial.status, 201, initial.text);
  const reg = await fetch(`${w.baseUrl}/services/oauth2/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${initial.json.token}` },
    body: JSON.stringify({ redirect_uris: [CALLBACK], client_name: 'Fuzz registered client' }),
  });
  const registered = await reg.json();
  assert.equal(reg.status, 201, JSON.stringify(registered));
  // A refresh token of the app (code flow as the fuzz user), for the refresh grants.
  const login = await authorize(w.baseUrl, {
    response_type: 'code', client_id: app.json.client_id, redirect_uri: CALLBACK, scope: 'api refresh_token openid',
  }, { username: 'fuzz-user@example.com', password: 'fuzz user password' });
  assert.ok(login.code, JSON.stringify(login));
  const tokens = await tokenRequest(w.baseUrl, {
    grant_type: 'authorization_code', code: login.code, redirect_uri: CALLBACK,
    client_id: app.json.client_id, client_secret: app.json.client_secret,
  });
  assert.ok(tokens.json?.refresh_token, tokens.text);
  seed = {
    FUZZREFRESH: tokens.json.refresh_token,
    FUZZCLIENT: app.json.client_id,
    FUZZ_CLIENT_SECRET: app.json.client_secret,
    FUZZORG: settings.json.org_id,
    FUZZUSER: user.json.user_id,
    FUZZREGCLIENT: registered.client_id,
    FUZZ_REGISTRATION_TOKEN: registered.registration_access_token,
    FUZZ_INITIAL_TOKEN: initial.json.token,
  };
});
after(() => w?.stop());

/** Runs a command to its end: { status, stdout, stderr }. */
function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600000);
    child.on('error', reject);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** The worker's request log lines so far. */
function requestLines() {
  return w.output().split('\n').flatMap((line) => {
    const i = line.indexOf('{"event":"request"');
    if (i < 0) return [];
    try { return [JSON.parse(line.slice(i))]; } catch { return []; }
  });
}

test('generated requests get no 5xx and answer as tests/fuzz/openapi.yaml says (schemathesis, all checks)', async () => {
  let spec = readFileSync(join(ROOT, 'tests', 'fuzz', 'openapi.yaml'), 'utf8');
  for (const name of ['FUZZCLIENT', 'FUZZORG', 'FUZZUSER', 'FUZZREGCLIENT', 'FUZZREFRESH']) {
    spec = spec.replaceAll(name, seed[name]);
  }
  const requestsBefore = requestLines().length;
  const specFile = join(w.stateDir, 'openapi.yaml');
  writeFileSync(specFile, spec);
  // Asynchronously: a synchronous child would stop this process from reading the worker's
  // output, and wrangler blocks once that pipe is full.
  const r = await run(join(ROOT, '.venv', 'bin', 'st'), [
    '--config-file', join(ROOT, 'tests', 'fuzz', 'schemathesis.toml'), '--no-color',
    'run', specFile, '--url', w.baseUrl, '--max-examples', '60',
    '--phases', 'examples,coverage,fuzzing,stateful', '--seed', '20261129', '--workers', '2',
    '--max-failures', '50',
  ], {
    ...process.env,
    SCHEMATHESIS_HOOKS: '',
    ADMIN_TOKEN: w.adminToken,
    FUZZ_CLIENT_ID: seed.FUZZCLIENT,
    FUZZ_CLIENT_SECRET: seed.FUZZ_CLIENT_SECRET,
    FUZZ_INITIAL_TOKEN: seed.FUZZ_INITIAL_TOKEN,
    FUZZ_REGISTRATION_TOKEN: seed.FUZZ_REGISTRATION_TOKEN,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  // The whole report, for reading the failures.
  const dir = join(ROOT, 'test-results', 'fuzz');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `schemathesis-shards${process.env.SHARDS ?? 'default'}.txt`), out);
  process.stdout.write(out.slice(-3000));
  // The worker logs one line per request (src/core/log.rs): what schemathesis sent, by status.
  const sent = requestLines().slice(requestsBefore);
  const byStatus = {};
  for (const l of sent) byStatus[l.status] = (byStatus[l.status] ?? 0) + 1;
  process.stdout.write(`schemathesis sent ${sent.length} requests; by status: ${JSON.stringify(byStatus)}\n`);
  // What reached past validation: successes by route (and grant).
  const ok = {};
  for (const l of sent.filter((x) => x.status < 300)) {
    const key = `${l.method} ${l.route}${l.grant ? ` ${l.grant}` : ''}`;
    ok[key] = (ok[key] ?? 0) + 1;
  }
  writeFileSync(join(dir, `successes-shards${process.env.SHARDS ?? 'default'}.json`), JSON.stringify(ok, null, 1));
  assert.equal(r.status, 0, out.slice(-12000));
  const m = out.match(/(\d+) generated, (\d+) passed/);
  assert.ok(m, out.slice(-2000));
  assert.ok(Number(m[1]) > 1000, `only ${m[1]} cases generated`);
  assert.equal(m[1], m[2]);
  assert.deepEqual(sent.filter((l) => l.status >= 500), []);
  assert.doesNotMatch(w.output(), /panicked/);
});
