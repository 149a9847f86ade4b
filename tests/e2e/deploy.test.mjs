// Deployment (docs/deploy.md): the production environment of wrangler.toml bundles and is
// complete (wrangler inherits no bindings or vars into an environment), and `make deploy`
// (scripts/deploy.mjs) runs the right wrangler commands, in order, idempotently, with every
// secret on stdin. `make deploy` runs here against a stand-in `wrangler` (a small script that
// logs its arguments and answers like wrangler 4.86) and a temporary copy of wrangler.toml:
// no Cloudflare account is needed, and the project's wrangler.toml is never modified.
//
// Nothing here depends on the shard count, so under SHARDS=4 (the suite's second run) every
// test is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { experimental_readRawConfig as readRawConfig, unstable_readConfig as readConfig } from 'wrangler';
import { ROOT, newSigningKey } from '../../scripts/worker.mjs';

const skip = process.env.SHARDS === '4' ? 'deployment does not depend on shards: runs with SHARDS=1 only' : false;
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const CONFIG = join(ROOT, 'wrangler.toml');
const ENV = 'production';
const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('wrangler deploy --dry-run --env production bundles the worker and its wasm', { skip }, () => {
  const out = mkdtempSync(join(tmpdir(), 'edge-oauth-dry-run-'));
  try {
    const r = spawnSync(WRANGLER, ['deploy', '--dry-run', '--outdir', out, '--env', ENV], {
      cwd: ROOT,
      encoding: 'utf8',
      // The build is `make build`'s (EDGE_OAUTH_PREBUILT=1: wrangler's [build] command skips it).
      env: { ...process.env, EDGE_OAUTH_PREBUILT: '1', CI: '1', WRANGLER_SEND_METRICS: 'false' },
    });
    assert.equal(r.status, 0, `dry run failed:\n${r.stdout}\n${r.stderr}`);
    const files = readdirSync(out);
    const js = files.filter((f) => /\.m?js$/.test(f));
    const wasm = files.filter((f) => f.endsWith('.wasm'));
    assert.ok(js.length >= 1, `no JavaScript bundle in ${files.join(', ')}`);
    assert.ok(wasm.length === 1, `no single wasm module in ${files.join(', ')}`);
    assert.ok(statSync(join(out, wasm[0])).size > 100000, 'the wasm module is the real worker');
    const bundle = readFileSync(join(out, js.find((f) => !f.endsWith('.map')) ?? js[0]), 'utf8');
    assert.match(bundle, /TokenShard/, 'the bundle exports the TokenShard Durable Object class');
    // Wrangler lists the bindings the deployment would get: every one of the environment's.
    const prod = readConfig({ config: CONFIG, env: ENV });
    const names = [
      ...prod.kv_namespaces.map((b) => b.binding), ...prod.d1_databases.map((b) => b.binding),
      ...prod.durable_objects.bindings.map((b) => b.name), ...prod.ratelimits.map((b) => b.name),
      ...Object.keys(prod.vars),
    ];
    for (const name of names) assert.match(r.stdout, new RegExp(`env\\.${name}\\b`), `dry run lacks binding ${name}:\n${r.stdout}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('[env.production] repeats every binding and var of the top level, and keeps the cron', { skip }, () => {
  const { rawConfig: raw } = readRawConfig({ config: CONFIG });
  const rawEnv = raw.env?.[ENV];
  assert.ok(rawEnv, 'wrangler.toml has an [env.production]');
  const top = readConfig({ config: CONFIG });
  const prod = readConfig({ config: CONFIG, env: ENV });

  // Generic: every key wrangler's schema marks as not inherited that the top level sets is set
  // in the environment too (so a binding added at the top later must be added there as well).
  const schema = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'wrangler', 'config-schema.json'), 'utf8'));
  const notInherited = Object.entries(schema.definitions.RawEnvironment.properties)
    .filter(([, v]) => /not automatically inherited/i.test(v.description ?? '')).map(([k]) => k);
  assert.ok(notInherited.includes('vars') && notInherited.includes('kv_namespaces') && notInherited.includes('ratelimits'));
  for (const key of notInherited) {
    if (raw[key] !== undefined) assert.ok(rawEnv[key] !== undefined, `[env.production] lacks ${key} (not inherited from the top level)`);
  }

  const byName = (list, key) => Object.fromEntries(list.map((b) => [b[key], b]));
  // KV and D1: the same binding names (ids differ: production's are real once deployed).
  assert.deepEqual(Object.keys(byName(prod.kv_namespaces, 'binding')).sort(), Object.keys(byName(top.kv_namespaces, 'binding')).sort());
  assert.ok(prod.kv_namespaces.some((b) => b.binding === 'KV'));
  assert.deepEqual(Object.keys(byName(prod.d1_databases, 'binding')).sort(), Object.keys(byName(top.d1_databases, 'binding')).sort());
  const db = prod.d1_databases.find((b) => b.binding === 'DB');
  assert.ok(db, 'DB');
  assert.ok(db.database_name, 'DB has a database_name (make deploy creates it under that name)');
  assert.equal(db.migrations_dir, top.d1_databases.find((b) => b.binding === 'DB').migrations_dir, 'same migrations');
  // Durable Objects: the same binding to the same class; the class's [[migrations]] are
  // inherited (deploy creates the SQLite-backed class from them).
  assert.deepEqual(prod.durable_objects.bindings, top.durable_objects.bindings);
  assert.ok(prod.durable_objects.bindings.some((b) => b.name === 'SHARD' && b.class_name === 'TokenShard'));
  assert.deepEqual(prod.migrations, top.migrations);
  assert.ok(prod.migrations.some((m) => (m.new_sqlite_classes ?? []).includes('TokenShard')));
  // Every throttle, with the same limits.
  const rl = (c) => c.ratelimits.map(({ name, simple }) => ({ name, simple })).sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(rl(prod), rl(top));
  for (const name of ['RL_LOGIN', 'RL_LOGIN_IP', 'RL_PASSWORD', 'RL_USER_CODE', 'RL_REGISTER', 'RL_CLIENT']) {
    assert.ok(prod.ratelimits.some((b) => b.name === name), name);
  }
  assert.equal(new Set(prod.ratelimits.map((b) => b.namespace_id)).size, prod.ratelimits.length, 'distinct namespace_ids');
  // Vars: every top-level var, plus the production settings of issue 13. No development switch.
  for (const name of Object.keys(top.vars)) assert.ok(name in prod.vars, `var ${name}`);
  for (const name of ['ISSUER', 'SHARDS', 'JWKS_MAX_AGE_S', 'KEYS_REFRESH_S', 'AUDIT_RETENTION_DAYS', 'LOG_REQUESTS']) {
    assert.equal(typeof prod.vars[name], 'string', `var ${name}`);
  }
  for (const name of ['DEV_MODE', 'DEV_FAIL_SHARD', 'DEV_SHARD_ALARM_MS', 'EXPOSE_ROUND_TRIPS']) assert.ok(!(name in prod.vars), `${name} is development only`);
  // Inherited: the hourly cron, the entry point, compatibility, build, assets.
  assert.ok(prod.triggers.crons.length >= 1, 'a cron trigger');
  assert.deepEqual(prod.triggers.crons, top.triggers.crons);
  assert.equal(prod.main, top.main);
  assert.equal(prod.compatibility_date, top.compatibility_date);
  assert.deepEqual(prod.compatibility_flags, top.compatibility_flags);
  assert.equal(prod.assets?.directory, top.assets?.directory);
  assert.equal(prod.build.command, top.build.command);
  assert.equal(prod.name, 'edge-oauth-production');
  // The top level stays the local one `make dev` and the tests use.
  assert.equal(top.name, 'edge-oauth');
  assert.equal(top.vars.ISSUER, '');
});

// --- make deploy against a stand-in wrangler -------------------------------------------------

const KV_ID = '0f2ac74b498b48028cb68387c421e279';
const D1_ID = 'e7352547-963e-4c49-a0e1-7e5c0e4a3f2a';

// Answers as wrangler 4.86 does (its output captured against a mock API): the create commands
// print a TOML snippet for a wrangler.toml (STANDIN_MODE=json: the JSON one printed for a
// wrangler.json); `secret list` prints a JSON array.
const STANDIN = `#!${process.execPath}
const fs = require('fs');
const path = require('path');
const dir = __dirname;
const argv = process.argv.slice(2);
let stdin = '';
if (!process.stdin.isTTY) { try { stdin = fs.readFileSync(0, 'utf8'); } catch {} }
fs.appendFileSync(path.join(dir, 'calls.jsonl'), JSON.stringify({ argv, stdin: stdin.length > 0,
  prebuilt: argv[0] === 'deploy' ? process.env.EDGE_OAUTH_PREBUILT : undefined }) + '\\n');
const statePath = path.join(dir, 'state.json');
const state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, 'utf8'))
  : { secrets: {}, deployed: false, migrated: false, d1: [], kv: [] };
const save = () => fs.writeFileSync(statePath, JSON.stringify(state));
const mode = (process.env.STANDIN_MODE || '').split(',');
const env = argv[argv.indexOf('--env') + 1];
const worker = 'edge-oauth-' + env;
const pos = [];
for (let i = 0; i < argv.length; i++) { if (argv[i].startsWith('--')) { if (['--env', '--config', '--persist-to'].includes(argv[i])) i++; } else pos.push(argv[i]); }
const cmd = pos.join(' ');
const banner = '\\n \\u26c5\\ufe0f wrangler 4.86.0\\n' + '\\u2500'.repeat(46);
const snippet = (res, obj) => mode.includes('json')
  ? JSON.stringify({ [res]: [obj] }, null, 2)
  : '[[' + res + ']]\\n' + Object.entries(obj).map(([k, v]) => k + ' = ' + JSON.stringify(v)).join('\\n') + '\\n';
const where = ' in the "' + env + '" environment';
function die(msg) { process.stderr.write('\\u2718 [ERROR] ' + msg + '\\n'); process.exit(1); }
if (/^kv namespace create /.test(cmd)) {
  const title = env + '-' + pos[3];
  if (state.kv.some((n) => n.title === title)) die('A KV namespace with the title "' + title + '" already exists.');
  state.kv.push({ id: '${KV_ID}', title }); save();
  console.log(banner + '\\nResource location: remote \\n\\n\\u{1F300} Creating namespace with title "' + title + '"\\n\\u2728 Success!');
  console.log('To access your new KV Namespace in your Worker, add the following snippet to your configuration file' + where + ':');
  console.log(snippet('kv_namespaces', { binding: pos[3].replace(/-/g, '_'), id: '${KV_ID}' }));
} else if (cmd === 'kv namespace list') {
  console.log(JSON.stringify(state.kv, null, '  '));
} else if (/^d1 create /.test(cmd)) {
  if (mode.includes('d1-exists') || state.d1.some((d) => d.name === pos[2])) {
    if (!state.d1.some((d) => d.name === pos[2])) { state.d1.push({ uuid: '${D1_ID}', name: pos[2] }); save(); }
    die('A database with that name already exists');
  }
  state.d1.push({ uuid: '${D1_ID}', name: pos[2] }); save();
  console.log(banner + "\\n\\u2705 Successfully created DB '" + pos[2] + "' in region WEUR\\nCreated your new D1 database.\\n");
  console.log('To access your new D1 Database in your Worker, add the following snippet to your configuration file' + where + ':');
  console.log(snippet('d1_databases', { binding: pos[2].replace(/-/g, '_'), database_name: pos[2], database_id: '${D1_ID}' }));
} else if (cmd === 'd1 list') {
  console.log(JSON.stringify(state.d1.map((d) => ({ ...d, created_at: '2026-01-01T00:00:00.000Z', version: 'production' })), null, 2));
} else if (/^d1 migrations apply /.test(cmd)) {
  if (!argv.includes('--remote')) die('expected --remote');
  console.log(banner + (state.migrated ? '\\n\\u2705 No migrations to apply!' : '\\nMigrations to be applied:\\n\\u{1F6A3} Executed 6 migrations'));
  state.migrated = true; save();
} else if (cmd === 'secret list') {
  if (mode.includes('worker-not-found') && !state.deployed && !Object.keys(state.secrets).length) {
    die('Worker "' + worker + '" (env: ' + env + ') not found.\\n\\nIf this is a new Worker, run \`wrangler deploy\` first to create it.');
  }
  console.log(JSON.stringify(Object.keys(state.secrets).map((name) => ({ name, type: 'secret_text' })), null, '  '));
} else if (/^secret put /.test(cmd)) {
  if (!stdin) die('no value on stdin');
  state.secrets[pos[2]] = stdin.replace(/\\s+$/, ''); save();
  console.log(banner + '\\n\\u{1F300} Creating the secret for the Worker "' + worker + '" \\n\\u2728 Success! Uploaded secret ' + pos[2]);
} else if (cmd === 'deploy') {
  state.deployed = true; save();
  console.log(banner + '\\nTotal Upload: 1340.16 KiB / gzip: 520.73 KiB\\nUploaded ' + worker + ' (3.10 sec)\\nDeployed ' + worker + ' triggers (0.80 sec)\\n  https://' + worker + '.example.workers.dev\\n  schedule: 17 * * * *\\nCurrent Version ID: 7f0e4c1e-0000-4000-8000-000000000001');
} else {
  die('stand-in wrangler: unexpected command ' + JSON.stringify(argv));
}
`;

function standIn() {
  const dir = mkdtempSync(join(tmpdir(), 'edge-oauth-deploy-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'wrangler'), STANDIN);
  chmodSync(join(bin, 'wrangler'), 0o755);
  const config = join(dir, 'wrangler.toml');
  copyFileSync(CONFIG, config);
  const calls = () => (existsSync(join(bin, 'calls.jsonl'))
    ? readFileSync(join(bin, 'calls.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  const state = () => JSON.parse(readFileSync(join(bin, 'state.json'), 'utf8'));
  const reset = () => rmSync(join(bin, 'calls.jsonl'), { force: true });
  /** `make deploy` with the stand-in first on PATH and as WRANGLER, on the copy of the config. */
  function deploy(env = {}) {
    const base = { ...process.env };
    for (const k of ['ISSUER', 'SIGNING_KEYS_FILE', 'DEPLOY_ENV', 'EDGE_OAUTH_PREBUILT', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'STANDIN_MODE']) delete base[k];
    // -o: the build and the tools count as done (this test must never rebuild the worker).
    return spawnSync('make', ['--no-print-directory', '-o', 'tools', '-o', 'build', 'deploy'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...base, PATH: `${bin}:${process.env.PATH}`, WRANGLER: join(bin, 'wrangler'), WRANGLER_CONFIG: config, ...env },
    });
  }
  return { dir, config, calls, state, reset, deploy, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const withConfig = (config) => (args) => [...args, '--env', ENV, '--config', config];
const count = (haystack, needle) => haystack.split(needle).length - 1;

test('make deploy: the commands in order, ids into [env.production], secrets on stdin, admin token shown once; a second run creates nothing', { skip }, () => {
  const realBefore = sha256(CONFIG);
  const s = standIn();
  try {
    const rawBefore = readRawConfig({ config: s.config }).rawConfig;
    const first = s.deploy();
    assert.equal(first.status, 0, `make deploy failed:\n${first.stdout}\n${first.stderr}`);
    const c = withConfig(s.config);
    assert.deepEqual(s.calls().map(({ argv, stdin }) => ({ argv, stdin })), [
      { argv: c(['kv', 'namespace', 'create', 'edge-oauth']), stdin: false },
      { argv: c(['d1', 'create', 'edge-oauth-production']), stdin: false },
      { argv: c(['d1', 'migrations', 'apply', 'DB', '--remote']), stdin: false },
      { argv: c(['secret', 'list']), stdin: false },
      { argv: c(['secret', 'put', 'ADMIN_TOKEN']), stdin: true },
      { argv: c(['secret', 'put', 'SIGNING_KEYS']), stdin: true },
      { argv: c(['secret', 'put', 'KEY_WRAPPING_KEY']), stdin: true },
      { argv: c(['deploy']), stdin: false },
    ]);
    // make has just built: wrangler's [build] step is told to skip.
    assert.equal(s.calls().at(-1).prebuilt, '1');

    // The ids are in [env.production] of the copy; the top level is untouched.
    const raw = readRawConfig({ config: s.config }).rawConfig;
    assert.equal(raw.env.production.kv_namespaces.find((b) => b.binding === 'KV').id, KV_ID);
    assert.equal(raw.env.production.d1_databases.find((b) => b.binding === 'DB').database_id, D1_ID);
    const { env: _a, ...topAfter } = raw;
    const { env: _b, ...topBefore } = rawBefore;
    assert.deepEqual(topAfter, topBefore, 'the top level (make dev, tests) is unchanged');
    assert.deepEqual({ ...raw.env.production, kv_namespaces: undefined, d1_databases: undefined },
      { ...rawBefore.env.production, kv_namespaces: undefined, d1_databases: undefined }, 'only the ids changed');
    assert.equal(readConfig({ config: s.config, env: ENV }).kv_namespaces[0].id, KV_ID, 'wrangler reads the edited file');
    // Comments survive (the file is edited line by line, not re-serialised).
    assert.equal(count(readFileSync(s.config, 'utf8'), '#'), count(readFileSync(CONFIG, 'utf8'), '#'));

    // The secrets: strong, of the right shape, and only ever on stdin.
    const secrets = s.state().secrets;
    const { ADMIN_TOKEN: admin, SIGNING_KEYS: keys, KEY_WRAPPING_KEY: wrap } = secrets;
    for (const [name, v] of [['ADMIN_TOKEN', admin], ['KEY_WRAPPING_KEY', wrap]]) {
      assert.match(v, /^[0-9A-Za-z]+$/, name);
      assert.ok(v.length * Math.log2(62) >= 256, `${name} has at least 256 bits`);
    }
    assert.notEqual(admin, wrap);
    assert.match(keys, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM');
    const key = createPrivateKey(keys);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails.modulusLength, 2048);
    const log = readFileSync(join(s.dir, 'bin', 'calls.jsonl'), 'utf8');
    const pemBody = keys.split('\n')[1];
    for (const v of [admin, wrap, pemBody]) assert.ok(!log.includes(v), 'no secret on a command line');
    const out = first.stdout + first.stderr;
    assert.equal(count(out, admin), 1, 'the admin token is shown exactly once');
    assert.match(first.stdout, /shown only this once/);
    assert.ok(!out.includes(wrap), 'KEY_WRAPPING_KEY is never printed');
    assert.ok(!out.includes(pemBody), 'the signing key is never printed');
    assert.ok(!out.includes('PRIVATE KEY'), 'no PEM in the output');

    // Second run: nothing created, no secret replaced, the same file; migrations and deploy again.
    const configAfterFirst = readFileSync(s.config, 'utf8');
    s.reset();
    const second = s.deploy();
    assert.equal(second.status, 0, `second make deploy failed:\n${second.stdout}\n${second.stderr}`);
    assert.deepEqual(s.calls().map(({ argv, stdin }) => ({ argv, stdin })), [
      { argv: c(['d1', 'migrations', 'apply', 'DB', '--remote']), stdin: false },
      { argv: c(['secret', 'list']), stdin: false },
      { argv: c(['deploy']), stdin: false },
    ]);
    assert.equal(readFileSync(s.config, 'utf8'), configAfterFirst);
    assert.deepEqual(s.state().secrets, secrets, 'no secret replaced');
    assert.equal(s.state().kv.length, 1);
    assert.equal(s.state().d1.length, 1);
    assert.ok(!(second.stdout + second.stderr).includes(admin), 'the admin token is not shown again');
    assert.match(second.stdout, /ADMIN_TOKEN: already set/);
  } finally {
    s.cleanup();
  }
  assert.equal(sha256(CONFIG), realBefore, 'the project wrangler.toml was not modified');
});

test('make deploy: ISSUER and its custom domain, SIGNING_KEYS_FILE, a database that already exists, a Worker not yet created, JSON snippets', { skip }, () => {
  const s = standIn();
  const keyFile = join(s.dir, 'signing.pem');
  const pem = newSigningKey();
  writeFileSync(keyFile, pem, { mode: 0o600 });
  try {
    // A bad ISSUER stops before anything is created.
    const bad = s.deploy({ ISSUER: 'http://auth.example.com' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /ISSUER must be https/);
    assert.deepEqual(s.calls(), []);
    const withPath = s.deploy({ ISSUER: 'https://auth.example.com/oauth' });
    assert.notEqual(withPath.status, 0);
    assert.deepEqual(s.calls(), []);

    const r = s.deploy({ ISSUER: 'https://auth.example.com/', SIGNING_KEYS_FILE: keyFile, STANDIN_MODE: 'json,d1-exists,worker-not-found' });
    assert.equal(r.status, 0, `make deploy failed:\n${r.stdout}\n${r.stderr}`);
    const c = withConfig(s.config);
    assert.deepEqual(s.calls().map((x) => x.argv), [
      c(['kv', 'namespace', 'create', 'edge-oauth']),
      c(['d1', 'create', 'edge-oauth-production']),
      c(['d1', 'list', '--json']), // it exists: its id is looked up by name
      c(['d1', 'migrations', 'apply', 'DB', '--remote']),
      c(['secret', 'list']), // "Worker not found": no secrets yet
      c(['secret', 'put', 'ADMIN_TOKEN']),
      c(['secret', 'put', 'SIGNING_KEYS']),
      c(['secret', 'put', 'KEY_WRAPPING_KEY']),
      c(['deploy']),
    ]);
    const raw = readRawConfig({ config: s.config }).rawConfig;
    assert.equal(raw.env.production.kv_namespaces[0].id, KV_ID, 'id parsed from the JSON snippet');
    assert.equal(raw.env.production.d1_databases[0].database_id, D1_ID);
    assert.equal(raw.env.production.vars.ISSUER, 'https://auth.example.com');
    assert.deepEqual(raw.env.production.routes, [{ pattern: 'auth.example.com', custom_domain: true }]);
    assert.equal(raw.vars.ISSUER, '', 'the top-level ISSUER stays empty');
    assert.equal(raw.routes, undefined);
    assert.equal(s.state().secrets.SIGNING_KEYS, pem.trimEnd(), 'SIGNING_KEYS from the file');
    assert.ok(!(r.stdout + r.stderr).includes(pem.split('\n')[1]));

    // Again, with another ISSUER: the route this script wrote is replaced, nothing else is made.
    s.reset();
    const again = s.deploy({ ISSUER: 'https://login.example.org', STANDIN_MODE: 'json' });
    assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
    assert.deepEqual(s.calls().map((x) => x.argv[0] + ' ' + x.argv[1]), ['d1 migrations', 'secret list', 'deploy --env']);
    const raw2 = readRawConfig({ config: s.config }).rawConfig;
    assert.equal(raw2.env.production.vars.ISSUER, 'https://login.example.org');
    assert.deepEqual(raw2.env.production.routes, [{ pattern: 'login.example.org', custom_domain: true }]);
  } finally {
    s.cleanup();
  }
});
