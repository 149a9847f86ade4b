// `make dev`: local secrets on first run, D1 migrations, the worker on 127.0.0.1:$PORT, and a
// seeded demo app and user whose credentials are printed. Environment: PORT, STATE_DIR,
// ADMIN_TOKEN, ISSUER, SEED (CONTRACT §1), and SHARDS: how many token shards (Durable Objects)
// new token families are placed on (1–64; unset = wrangler.toml's value). The worker runs with
// DEV_MODE=1, which turns on the development-only switches (`GET /dev/shards` with the admin
// token: per-shard counts; see docs/scaling.md). Changing SHARDS between runs on the same
// STATE_DIR strands nothing: old tokens are still found on the shard their route names.
// GATEWAY_UPSTREAM (an origin) serves the two demo gateway routes /gateway/demo/ and
// /gateway/other/ to it; GATEWAY_ROUTES (JSON) adds routes of your own (docs/gateway.md).
// DEV_MODE=1 also lets client ID metadata documents and jwks_uri live on http://127.0.0.1.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, migrate, newSigningKey, randomToken, startWorker, writeEnvFile } from './worker.mjs';

const port = Number(process.env.PORT || 8787);
const stateDir = process.env.STATE_DIR || join(ROOT, '.wrangler', 'state');
const devVars = join(ROOT, '.dev.vars');

function readDevVars() {
  const vars = {};
  for (const line of readFileSync(devVars, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_]+)="?(.*?)"?$/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

if (!existsSync(devVars)) {
  writeEnvFile(devVars, {
    ADMIN_TOKEN: randomToken(),
    SIGNING_KEYS: newSigningKey(),
    KEY_WRAPPING_KEY: randomToken(),
    EXPOSE_ROUND_TRIPS: '1',
  });
  console.log(`created ${devVars} with a new admin token, RS256 signing key and key-wrapping key`);
} else if (!readDevVars().KEY_WRAPPING_KEY) {
  // A .dev.vars from before issue 13: add the key-wrapping key the admin console's key rotation needs.
  appendFileSync(devVars, `KEY_WRAPPING_KEY="${randomToken()}"\n`);
  console.log(`added KEY_WRAPPING_KEY to ${devVars}`);
}
const adminToken = process.env.ADMIN_TOKEN || readDevVars().ADMIN_TOKEN;
const vars = { DEV_MODE: '1' };
if (process.env.SHARDS) vars.SHARDS = process.env.SHARDS;
if (process.env.ADMIN_TOKEN) vars.ADMIN_TOKEN = process.env.ADMIN_TOKEN;
if (process.env.ISSUER) vars.ISSUER = process.env.ISSUER;
if (process.env.GATEWAY_UPSTREAM) vars.GATEWAY_UPSTREAM = process.env.GATEWAY_UPSTREAM;
if (process.env.GATEWAY_ROUTES) vars.GATEWAY_ROUTES = process.env.GATEWAY_ROUTES;

migrate(stateDir);
const worker = await startWorker({ port, stateDir, envFile: devVars, vars, prebuilt: true, inherit: true });
process.on('SIGINT', () => { worker.stop(); process.exit(0); });
process.on('SIGTERM', () => { worker.stop(); process.exit(0); });

const base = worker.baseUrl;
async function admin(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json();
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

const lines = [`edge-oauth is serving at ${base}`, `  discovery:   ${base}/.well-known/openid-configuration`, `  admin token: ${adminToken}`,
  `  console:     ${base}/admin  (sign in with the admin token)`,
  `  shards:      ${vars.SHARDS ?? 'wrangler.toml default'} (counts: GET ${base}/dev/shards with the admin token)`];
if (vars.GATEWAY_UPSTREAM) lines.push(`  gateway:     ${base}/gateway/demo/ and ${base}/gateway/other/ → ${vars.GATEWAY_UPSTREAM} (scope api, resource ${base}/gateway/demo or …/other)`);
if (process.env.SEED !== '0') {
  // Idempotent: on a second run the demo app's secret is rotated and the password reset, so
  // the printed credentials always work.
  const callback = `http://localhost:${port === 8787 ? 3000 : port + 1}/callback`;
  const { apps } = await admin('GET', '/admin/apps');
  let app = apps.find((a) => a.name === 'Demo App');
  app = app
    ? await admin('POST', `/admin/apps/${app.client_id}/secret`)
    : await admin('POST', '/admin/apps', {
      name: 'Demo App',
      callback_urls: [callback, 'http://127.0.0.1:8080/callback'],
      scopes: ['api', 'refresh_token', 'openid', 'id', 'profile', 'email', 'web'],
    });
  const password = randomToken(16);
  const { users } = await admin('GET', '/admin/users');
  const existing = users.find((u) => u.username === 'demo@example.com');
  const user = existing
    ? await admin('PATCH', `/admin/users/${existing.user_id}`, { password, active: true })
    : await admin('POST', '/admin/users', { username: 'demo@example.com', password, email: 'demo@example.com', name: 'Demo User' });
  // The demo single-page app at / (www/demo): a public client (PKCE, rotating refresh tokens)
  // with the well-known client_id the page uses. Its callback is this origin on any port
  // (a loopback IP, RFC 8252 §7.3) and localhost on this port.
  const spa = (await admin('GET', '/admin/apps')).apps.find((a) => a.client_id === 'edge-oauth-demo')
    ?? await admin('POST', '/admin/apps', {
      client_id: 'edge-oauth-demo',
      name: 'Demo SPA',
      callback_urls: ['http://127.0.0.1/', `http://localhost:${port}/`],
      scopes: ['openid', 'profile', 'email', 'api', 'refresh_token'],
      secret_required_web_server: false,
      secret_required_refresh: false,
      rotate_refresh_tokens: true,
      allowed_origins: [base, `http://localhost:${port}`],
    });
  lines.splice(1, 0, `  demo SPA:    ${base}/  ← open this and log in as the demo user below (client_id ${spa.client_id})`);
  lines.push('  demo app:', `    client_id:     ${app.client_id}`, `    client_secret: ${app.client_secret}`,
    `    callback_urls: ${app.callback_urls.join(', ')}`,
    '  demo user:', `    username: ${user.username}`, `    password: ${password}`);
}
console.log(lines.join('\n'));
