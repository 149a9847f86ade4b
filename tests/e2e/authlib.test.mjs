// A generic Python client from PyPI (authlib + requests) through discovery: code flow with PKCE
// (S256) + state + nonce and client_secret_basic, ID token verified by authlib against the JWKS,
// userinfo, refresh, introspection and revocation. The Python side is tests/e2e/authlib_client.py
// in the venv `make test` prepares (.venv, tests/e2e/requirements.txt).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../scripts/worker.mjs';
import { startTestWorker } from './harness.mjs';

const CALLBACK = 'http://127.0.0.1:9/cb';
let w;
before(async () => { w = await startTestWorker(); });
after(() => w?.stop());

test('authlib (PyPI) runs the whole web server flow against the worker', async () => {
  const app = (await w.admin('POST', '/admin/apps', { name: 'Python App', callback_urls: [CALLBACK], scopes: ['openid', 'api', 'refresh_token', 'profile', 'email'] })).json;
  const user = (await w.admin('POST', '/admin/users', { username: 'py@example.com', password: 'python password', email: 'py@example.com', name: 'Py Thon' })).json;
  const out = execFileSync(join(ROOT, '.venv', 'bin', 'python'), [join(ROOT, 'tests', 'e2e', 'authlib_client.py')], {
    env: { ...process.env, BASE: w.baseUrl, CALLBACK, CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret, USERNAME: 'py@example.com', PASSWORD: 'python password' },
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  const loc = new URL(r.location);
  assert.equal(loc.origin + loc.pathname, CALLBACK);
  assert.equal(loc.searchParams.get('iss'), w.baseUrl);
  for (const k of ['access_token', 'refresh_token', 'id_token', 'signature', 'issued_at', 'instance_url', 'id', 'scope', 'token_type']) {
    assert.ok(r.token_keys.includes(k), `token response lacks ${k}`);
  }
  assert.equal(r.id_token_claims.iss, w.baseUrl);
  assert.equal(r.id_token_claims.aud, app.client_id);
  assert.match(r.id_token_claims.sub, new RegExp(`/id/00D\\w{15}/${user.user_id}$`));
  assert.equal(r.userinfo.preferred_username, 'py@example.com');
  assert.equal(r.userinfo.sub, r.id_token_claims.sub);
  assert.ok(r.refreshed_keys.includes('access_token') && r.refreshed_keys.includes('id_token'));
  assert.equal(r.userinfo_after_refresh, 200);
  assert.equal(r.introspected.active, true);
  assert.equal(r.introspected.client_id, app.client_id);
  assert.equal(r.revoke_status, 200);
  assert.equal(r.userinfo_after_revoke, 401, 'revoking the refresh token killed the access tokens');
  assert.equal(r.refresh_after_revoke.status, 400);
  assert.deepEqual(r.refresh_after_revoke.body, { error: 'invalid_grant', error_description: 'expired access/refresh token' });
});
