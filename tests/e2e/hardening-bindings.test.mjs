// 6.18: a missing rate-limit binding must never switch throttling off silently. The worker runs
// from a copy of wrangler.toml without its [[ratelimits]] bindings; every request that would
// count against a throttle is refused with server_error (and logged, naming the binding), while
// requests that need no throttle are served.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/worker.mjs';
import { startTestWorker } from './harness.mjs';
import { CookieJar, formFields, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const config = join(ROOT, `.wrangler-no-ratelimits-${process.pid}.toml`);
let w;
let app;

/** The worker's log reaches us a moment after the response: wait for `re` (up to 10 s). */
async function logShows(re) {
  for (let i = 0; i < 40 && !re.test(w.output()); i++) await new Promise((r) => setTimeout(r, 250));
  return w.output();
}

before(async () => {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  // Every environment's limits go ([[ratelimits]] and [[env.production.ratelimits]]).
  const stripped = toml.replace(/\[\[(?:env\.[\w-]+\.)?ratelimits\]\][^[]*/g, '');
  assert.ok(!stripped.includes('RL_'), 'the copy still declares a binding');
  writeFileSync(config, stripped);
  w = await startTestWorker({ config });
  app = (await w.admin('POST', '/admin/apps', { name: 'T', callback_urls: [CB], scopes: ['api'] })).json;
  await w.admin('POST', '/admin/users', { username: 'u@example.com', password: 'a good password', email: 'u@example.com', name: 'U' });
});
after(() => {
  w?.stop();
  rmSync(config, { force: true });
});

test('6.18 without RL_LOGIN/RL_LOGIN_IP a login is refused with server_error, never let through unthrottled', async () => {
  const jar = new CookieJar();
  const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CB });
  const page = await fetch(`${w.baseUrl}/services/oauth2/authorize?${q}`);
  jar.store(page);
  const fields = formFields(await page.text());
  const r = await fetch(`${w.baseUrl}/services/oauth2/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...fields, username: 'u@example.com', password: 'a good password', login: '1' }),
  });
  const body = await r.text();
  assert.equal(r.status, 500, body);
  assert.match(body, /error=server_error/);
  assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('eo_sid=')), 'no session without a throttle');
  assert.match(await logShows(/RL_LOGIN/), /RL_LOGIN/, 'the log names the missing binding');
});

test('6.18 without RL_CLIENT a failed client authentication is server_error; a valid one is served', async () => {
  const bad = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: 'x', client_id: app.client_id, client_secret: 'wrong' });
  assert.equal(bad.status, 500, bad.text);
  assert.equal(bad.json.error, 'server_error');
  assert.match(await logShows(/RL_CLIENT/), /RL_CLIENT/);
  const good = await tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: 'x', client_id: app.client_id, client_secret: app.client_secret });
  assert.equal(good.status, 400, good.text);
  assert.equal(good.json.error, 'invalid_grant', 'valid credentials need no throttle');
});
