// `make deploy`: deploys the [env.production] Worker of wrangler.toml to Cloudflare. Idempotent:
// every step checks first and does only what is missing, so a second run just applies new
// migrations and deploys the current build. Steps (docs/deploy.md explains each one):
//
//   1. the KV namespace and the D1 database: `wrangler kv namespace create` / `wrangler d1
//      create`, unless [env.production] already holds real (non-zero) ids; the new ids are
//      written into [env.production] of the config file. With ISSUER=https://host, ISSUER is
//      written into [env.production.vars] and a custom-domain route for host into
//      [env.production].
//   2. `wrangler d1 migrations apply DB --remote --env production`
//   3. the secrets ADMIN_TOKEN (generated, printed once), SIGNING_KEYS (a new RSA-2048 PKCS#8
//      key, or the PEM file SIGNING_KEYS_FILE) and KEY_WRAPPING_KEY (generated), each only when
//      `wrangler secret list` does not list it; values go to `wrangler secret put` on stdin,
//      never on a command line, in a file or in this script's output (except the admin token,
//      shown once).
//   4. `wrangler deploy --env production`
//
// Environment: WRANGLER (the wrangler executable; default node_modules/.bin/wrangler),
// WRANGLER_CONFIG or `--config PATH` (default wrangler.toml; the file that is read and
// updated), DEPLOY_ENV (default production), ISSUER, SIGNING_KEYS_FILE, EDGE_OAUTH_PREBUILT
// (default 1 when run by make, which has just built; 0 otherwise: wrangler's [build] rebuilds).
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ROOT, newSigningKey, randomToken } from './worker.mjs';

const SECRETS = ['ADMIN_TOKEN', 'SIGNING_KEYS', 'KEY_WRAPPING_KEY'];

function fail(message) {
  console.error(`\ndeploy: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config' || a === '-c') opts.config = argv[++i];
    else if (a.startsWith('--config=')) opts.config = a.slice('--config='.length);
    else if (a === '--env' || a === '-e') opts.env = argv[++i];
    else if (a.startsWith('--env=')) opts.env = a.slice('--env='.length);
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/deploy.mjs [--config wrangler.toml] [--env production]\n'
        + 'environment: WRANGLER, WRANGLER_CONFIG, DEPLOY_ENV, ISSUER, SIGNING_KEYS_FILE, EDGE_OAUTH_PREBUILT (docs/deploy.md)');
      process.exit(0);
    } else fail(`unknown argument ${a} (try --help)`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const ENV = opts.env || process.env.DEPLOY_ENV || 'production';
const configArg = opts.config || process.env.WRANGLER_CONFIG;
const CONFIG = !configArg ? join(ROOT, 'wrangler.toml') : isAbsolute(configArg) ? configArg : resolve(configArg);
const WRANGLER = process.env.WRANGLER || join(ROOT, 'node_modules', '.bin', 'wrangler');
const PREBUILT = process.env.EDGE_OAUTH_PREBUILT ?? (process.env.MAKELEVEL ? '1' : '0');

if (!/^[A-Za-z0-9_-]+$/.test(ENV)) fail(`DEPLOY_ENV must be a plain environment name, not ${JSON.stringify(ENV)}`);
if (!existsSync(CONFIG)) fail(`no config file at ${CONFIG}`);
if (!CONFIG.endsWith('.toml')) fail(`${CONFIG}: only a TOML config (wrangler.toml) can be updated by this script`);
if (!existsSync(WRANGLER) && !process.env.WRANGLER) fail(`${WRANGLER} is missing: run \`npm ci\` (or \`make tools\`) first`);

// ---------------------------------------------------------------------------------------------
// Reading the config: wrangler's own TOML parser (the file stays as written, comments and all;
// edits below are line edits, checked by parsing again).

let readRawConfig;
try {
  ({ experimental_readRawConfig: readRawConfig } = await import('wrangler'));
} catch (e) {
  fail(`cannot load wrangler's config reader from node_modules (run \`npm ci\`): ${e.message}`);
}

function readEnvConfig() {
  const { rawConfig } = readRawConfig({ config: CONFIG });
  const env = rawConfig.env?.[ENV];
  if (!env) fail(`${CONFIG} has no [env.${ENV}] section (see docs/deploy.md)`);
  return { top: rawConfig, env };
}

/** An id that still needs creating: missing, empty, or the all-zero placeholder. */
function isPlaceholder(id) {
  return !id || /^[0-]*$/.test(String(id));
}

// ---------------------------------------------------------------------------------------------
// Line edits of the TOML file: find a table by its header (and, for arrays of tables, by a key
// inside it), then replace or insert one `key = value` line in it.

function tables(lines) {
  const out = [];
  lines.forEach((line, i) => {
    const m = line.match(/^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$/);
    if (m) {
      if (out.length) out[out.length - 1].end = i;
      out.push({ name: m[2], array: m[1] === '[[', start: i, end: lines.length });
    }
  });
  return out;
}

const keyLine = (key) => new RegExp(`^\\s*${key}\\s*=`);

function findTable(lines, name, where) {
  return tables(lines).find((t) => t.name === name
    && (!where || lines.slice(t.start + 1, t.end).some((l) => where.test(l))));
}

/** Sets `key = value` (value already TOML) in the table; returns the new lines. */
function setKey(lines, table, key, value, comment = '') {
  const next = [...lines];
  const i = next.slice(table.start + 1, table.end).findIndex((l) => keyLine(key).test(l));
  const line = `${key} = ${value}${comment ? `  ${comment}` : ''}`;
  if (i >= 0) next[table.start + 1 + i] = line;
  else next.splice(table.start + 1, 0, line);
  return next;
}

const tomlString = (s) => JSON.stringify(s); // a TOML basic string for these ASCII values

function editConfig(edit) {
  const before = readFileSync(CONFIG, 'utf8');
  const lines = before.split('\n');
  const after = edit(lines).join('\n');
  if (after === before) return;
  writeFileSync(CONFIG, after);
  try {
    readRawConfig({ config: CONFIG });
  } catch (e) {
    writeFileSync(CONFIG, before);
    fail(`editing ${CONFIG} would break it (${e.message}); left unchanged`);
  }
}

const bindingIs = (name) => new RegExp(`^\\s*binding\\s*=\\s*["']${name}["']`);

function writeKvId(binding, id) {
  editConfig((lines) => {
    const t = findTable(lines, `env.${ENV}.kv_namespaces`, bindingIs(binding));
    if (!t) fail(`no [[env.${ENV}.kv_namespaces]] with binding = "${binding}" in ${CONFIG}`);
    return setKey(lines, t, 'id', tomlString(id));
  });
}

function writeD1Id(binding, id) {
  editConfig((lines) => {
    const t = findTable(lines, `env.${ENV}.d1_databases`, bindingIs(binding));
    if (!t) fail(`no [[env.${ENV}.d1_databases]] with binding = "${binding}" in ${CONFIG}`);
    return setKey(lines, t, 'database_id', tomlString(id));
  });
}

const ROUTE_MARK = '# make deploy: the custom domain of ISSUER';

function writeIssuer(issuer, host, { top, env }) {
  editConfig((lines) => {
    const vars = findTable(lines, `env.${ENV}.vars`);
    if (!vars) fail(`no [env.${ENV}.vars] table in ${CONFIG} to write ISSUER into`);
    let next = setKey(lines, vars, 'ISSUER', tomlString(issuer));
    if (host.endsWith('.workers.dev')) return next;
    const envTable = findTable(next, `env.${ENV}`);
    if (!envTable) fail(`no [env.${ENV}] table header in ${CONFIG} to add the custom-domain route to`);
    const body = next.slice(envTable.start + 1, envTable.end);
    const ours = body.findIndex((l) => keyLine('routes').test(l) && l.includes(ROUTE_MARK));
    if (ours < 0 && (env.routes || env.route || top.routes || top.route)) {
      console.log(`  routes are already configured in ${CONFIG}; not adding one for ${host} (check that it routes to this Worker)`);
      return next;
    }
    next = setKey(next, envTable, 'routes', `[{ pattern = ${tomlString(host)}, custom_domain = true }]`, ROUTE_MARK);
    return next;
  });
}

// ---------------------------------------------------------------------------------------------
// Running wrangler. Every call names the config file and the environment. Secret values only
// ever travel on stdin.

function wrangler(args, { capture = false, input } = {}) {
  const full = [...args, '--env', ENV, '--config', CONFIG];
  console.log(`  $ wrangler ${full.join(' ')}${input !== undefined ? '   (value on stdin)' : ''}`);
  const r = spawnSync(WRANGLER, full, {
    cwd: ROOT,
    encoding: 'utf8',
    input,
    stdio: [input !== undefined ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit'],
    env: { ...process.env, EDGE_OAUTH_PREBUILT: PREBUILT },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) fail(`could not run ${WRANGLER}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function mustSucceed(r, what) {
  if (r.status !== 0) {
    if (r.stdout) process.stdout.write(r.stdout);
    if (r.stderr) process.stderr.write(r.stderr);
    if (/CLOUDFLARE_API_TOKEN|CLOUDFLARE_ACCOUNT_ID|not logged in|Authentication error/i.test(r.stdout + r.stderr)) {
      console.error('\nNot logged in to Cloudflare? Run `npx wrangler login` (or set CLOUDFLARE_API_TOKEN), and set '
        + 'CLOUDFLARE_ACCOUNT_ID if your login reaches several accounts (docs/deploy.md, section 3).');
    }
    fail(`${what} failed (exit ${r.status}); fix the cause and run make deploy again: finished steps are skipped`);
  }
  return r;
}

/**
 * The id in the snippet `wrangler kv namespace create` / `wrangler d1 create` prints: TOML for a
 * wrangler.toml (`id = "…"`, `database_id = "…"`) or JSON for a wrangler.json(c)
 * (`"id": "…"`, `"database_id": "…"`).
 */
function parseCreatedId(output, key) {
  const re = new RegExp(`(?:^|[\\s{,])"?${key}"?\\s*[=:]\\s*"([0-9A-Za-z-]+)"`, 'm');
  return output.match(re)?.[1];
}

/** The first JSON array in wrangler's output (banners and warnings may come before it). */
function parseJsonList(output) {
  const start = output.indexOf('[');
  const end = output.lastIndexOf(']');
  if (start < 0 || end < start) return undefined;
  try { return JSON.parse(output.slice(start, end + 1)); } catch { return undefined; }
}

// ---------------------------------------------------------------------------------------------

const step = (n, title) => console.log(`\n==> ${n}/4 ${title}`);

console.log(`edge-oauth deploy: [env.${ENV}] of ${CONFIG}`);

// ISSUER is checked before anything is created.
let issuer;
let issuerHost;
if (process.env.ISSUER) {
  let u;
  try { u = new URL(process.env.ISSUER); } catch { fail(`ISSUER is not a URL: ${process.env.ISSUER}`); }
  if (u.protocol !== 'https:' || u.port || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    fail(`ISSUER must be https://<host> (no port, path, query or fragment), not ${process.env.ISSUER}`);
  }
  issuer = `https://${u.hostname}`;
  issuerHost = u.hostname;
}

let signingKeysFromFile;
if (process.env.SIGNING_KEYS_FILE) {
  const file = process.env.SIGNING_KEYS_FILE;
  if (!existsSync(file)) fail(`SIGNING_KEYS_FILE ${file} does not exist`);
  signingKeysFromFile = readFileSync(file, 'utf8');
  const pems = signingKeysFromFile.match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g) ?? [];
  if (!pems.length) fail(`SIGNING_KEYS_FILE ${file} holds no PEM private key`);
  for (const pem of pems) {
    try { createPrivateKey(pem); } catch (e) { fail(`SIGNING_KEYS_FILE ${file}: a key does not parse (${e.message})`); }
  }
}

step(1, 'KV namespace, D1 database and settings in ' + CONFIG);
{
  const { top, env } = readEnvConfig();
  const kvs = env.kv_namespaces ?? [];
  const dbs = env.d1_databases ?? [];
  if (!kvs.length || !dbs.length) fail(`[env.${ENV}] needs its own [[env.${ENV}.kv_namespaces]] and [[env.${ENV}.d1_databases]] (bindings are not inherited)`);
  for (const kv of kvs) {
    if (!isPlaceholder(kv.id)) {
      console.log(`  KV namespace (binding ${kv.binding}): ${kv.id} (already set)`);
      continue;
    }
    const name = kv.binding === 'KV' ? top.name : `${top.name}-${kv.binding.toLowerCase()}`;
    const r = wrangler(['kv', 'namespace', 'create', name], { capture: true });
    let id = r.status === 0 ? parseCreatedId(r.stdout, 'id') : undefined;
    if (r.status !== 0 && /already exists/i.test(r.stdout + r.stderr)) {
      // Created earlier (a run that stopped before writing the id, or by hand): find it.
      const title = `${ENV}-${name}`;
      const list = parseJsonList(mustSucceed(wrangler(['kv', 'namespace', 'list'], { capture: true }), 'wrangler kv namespace list').stdout);
      id = list?.find((n) => n.title === title)?.id;
      if (!id) fail(`KV namespace "${title}" exists but is not in \`wrangler kv namespace list\``);
      console.log(`  KV namespace "${title}" already exists`);
    } else {
      mustSucceed(r, 'wrangler kv namespace create');
    }
    if (!id) fail(`no namespace id in the output of wrangler kv namespace create:\n${r.stdout}`);
    writeKvId(kv.binding, id);
    console.log(`  KV namespace (binding ${kv.binding}): ${id} (written to [env.${ENV}])`);
  }
  for (const db of dbs) {
    if (!isPlaceholder(db.database_id)) {
      console.log(`  D1 database ${db.database_name} (binding ${db.binding}): ${db.database_id} (already set)`);
      continue;
    }
    if (!db.database_name) fail(`[[env.${ENV}.d1_databases]] ${db.binding} has no database_name`);
    const r = wrangler(['d1', 'create', db.database_name], { capture: true });
    let id = r.status === 0 ? parseCreatedId(r.stdout, 'database_id') : undefined;
    if (r.status !== 0 && /already exists/i.test(r.stdout + r.stderr)) {
      const list = parseJsonList(mustSucceed(wrangler(['d1', 'list', '--json'], { capture: true }), 'wrangler d1 list').stdout);
      id = list?.find((d) => d.name === db.database_name)?.uuid;
      if (!id) fail(`D1 database "${db.database_name}" exists but is not in \`wrangler d1 list\``);
      console.log(`  D1 database "${db.database_name}" already exists`);
    } else {
      mustSucceed(r, 'wrangler d1 create');
    }
    if (!id) fail(`no database_id in the output of wrangler d1 create:\n${r.stdout}`);
    writeD1Id(db.binding, id);
    console.log(`  D1 database ${db.database_name} (binding ${db.binding}): ${id} (written to [env.${ENV}])`);
  }
  if (issuer) {
    writeIssuer(issuer, issuerHost, readEnvConfig());
    console.log(`  ISSUER: ${issuer} (written to [env.${ENV}.vars]${issuerHost.endsWith('.workers.dev') ? '' : `; custom domain route ${issuerHost}`})`);
  } else {
    console.log(`  ISSUER: ${readEnvConfig().env.vars?.ISSUER || '(empty: the origin each request came in on)'}`);
  }
}

step(2, 'D1 migrations');
{
  const { env } = readEnvConfig();
  for (const db of env.d1_databases) {
    mustSucceed(wrangler(['d1', 'migrations', 'apply', db.binding, '--remote']), 'wrangler d1 migrations apply');
  }
}

step(3, 'secrets');
{
  const r = wrangler(['secret', 'list'], { capture: true });
  let names;
  if (r.status === 0) {
    const list = parseJsonList(r.stdout);
    if (!Array.isArray(list)) fail(`cannot read the output of wrangler secret list:\n${r.stdout}`);
    names = new Set(list.map((s) => s.name));
  } else if (/Worker .* not found/i.test(r.stdout + r.stderr)) {
    names = new Set(); // the Worker does not exist yet: `secret put` creates it, deploy fills it
  } else {
    mustSucceed(r, 'wrangler secret list');
  }
  let adminToken;
  for (const name of SECRETS) {
    if (names.has(name)) {
      console.log(`  ${name}: already set (kept)`);
      continue;
    }
    let value;
    let how;
    if (name === 'ADMIN_TOKEN') { value = adminToken = randomToken(48); how = 'generated'; }
    else if (name === 'SIGNING_KEYS' && signingKeysFromFile) { value = signingKeysFromFile; how = `from ${process.env.SIGNING_KEYS_FILE}`; }
    else if (name === 'SIGNING_KEYS') { value = newSigningKey(); how = 'a new RSA-2048 key'; }
    else { value = randomToken(48); how = 'generated'; }
    mustSucceed(wrangler(['secret', 'put', name], { input: value }), `wrangler secret put ${name}`);
    console.log(`  ${name}: set (${how})`);
    if (name === 'ADMIN_TOKEN') {
      console.log('\n  ************************************************************************');
      console.log('  ADMIN_TOKEN, shown only this once (Cloudflare will not show it again):');
      console.log(`\n      ${adminToken}\n`);
      console.log('  Keep it in your password manager: the admin API and console need it.');
      console.log('  ************************************************************************\n');
    }
  }
  if (signingKeysFromFile && names.has('SIGNING_KEYS')) {
    console.log('  (SIGNING_KEYS_FILE ignored: SIGNING_KEYS is already set; see docs/deploy.md "Rotating secrets")');
  }
}

step(4, 'deploy');
mustSucceed(wrangler(['deploy']), 'wrangler deploy');
{
  const { top, env } = readEnvConfig();
  const name = env.name ?? `${top.name}-${ENV}`;
  const iss = env.vars?.ISSUER;
  console.log(`\nDeployed the Worker "${name}".`);
  console.log(iss
    ? `Discovery: ${iss}/.well-known/openid-configuration`
    : 'Discovery: <the workers.dev URL wrangler printed above>/.well-known/openid-configuration');
  console.log('Next: create an app with the admin API (docs/deploy.md, "After the first deploy").');
}
