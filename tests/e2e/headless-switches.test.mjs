// Headless login (response_type=code_credentials), the org switches and bad input at the
// authorization endpoint (issue 7), over plain HTTP against the real worker. Every response of
// the worker is recorded, and none may be a 5xx. Each switch is flipped through the admin API
// and must take effect on the very next request (no restart), and be undone the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestWorker } from './harness.mjs';
import { authorize, CookieJar, pkcePair, tokenRequest } from './flow.mjs';
import { baseOf, discovery, fragmentOf, guardResponses, queryOf, raw, userinfo } from './ua-helpers.mjs';

const CB = 'http://127.0.0.1:9/cb';
const CUSTOM = 'myapp://cb';
const PASSWORD = 'correct horse battery 7';
const SCOPES = ['api', 'openid', 'refresh_token', 'web', 'lightning', 'visualforce', 'content'];
const TOKEN_TYPES = ['token', 'token id_token', 'hybrid_token'];

const rand = (p) => `${p}-${randomBytes(6).toString('hex')}`;
const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');

describe('headless login, org switches and bad input against the real worker', () => {
  let w;
  let app;
  let defaults;
  let seq = 0;
  const guard = guardResponses(() => w?.baseUrl);

  before(async () => {
    w = await startTestWorker();
    const a = await w.admin('POST', '/admin/apps', { name: 'Headless App', callback_urls: [CB, CUSTOM], scopes: SCOPES });
    assert.equal(a.status, 201, a.text);
    app = a.json;
    const s = await w.admin('GET', '/admin/settings');
    assert.equal(s.status, 200, s.text);
    defaults = s.json;
  });

  after(async () => {
    try {
      if (w && defaults) {
        const { org_id: _, ...switches } = defaults;
        const r = await w.admin('PATCH', '/admin/settings', switches);
        assert.equal(r.status, 200, r.text);
      }
    } finally {
      guard.restore();
      if (w) {
        const out = w.output();
        await w.stop();
        assert.doesNotMatch(out, /panicked/, 'the worker must not panic');
      }
    }
    assert.deepEqual(guard.bad, [], 'no 5xx from the worker');
    assert.ok(guard.seen.length > 60, `expected many checked responses, got ${guard.seen.length}`);
  });

  /** A fresh user (the login throttle counts attempts per username, so scenarios get their own). */
  async function newUser() {
    const username = `headless-${++seq}@example.com`;
    const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Headless User ${seq}` });
    assert.equal(r.status, 201, r.text);
    return { ...r.json, username, password: PASSWORD };
  }

  async function setSwitch(name, value) {
    const r = await w.admin('PATCH', '/admin/settings', { [name]: value });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json[name], value, r.text);
    const g = await w.admin('GET', '/admin/settings');
    assert.equal(g.json[name], value);
  }

  /**
   * POST /services/oauth2/authorize with response_type=code_credentials. `authorization` and
   * `type` replace the headers (null leaves them out); `fields` are added to the body, `omit`
   * removed from it.
   */
  async function headless(user, { authorization, type = 'Named-User', fields = {}, omit = [], challenge } = {}) {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const auth = authorization === undefined ? `Basic ${b64(`${user.username}:${user.password}`)}` : authorization;
    if (auth !== null) headers.authorization = auth;
    if (type !== null) headers['auth-request-type'] = type;
    const body = {
      response_type: 'code_credentials',
      client_id: app.client_id,
      redirect_uri: CB,
      code_challenge: challenge ?? pkcePair().challenge,
      code_challenge_method: 'S256',
      ...fields,
    };
    for (const k of omit) delete body[k];
    return raw(`${w.baseUrl}/services/oauth2/authorize`, { method: 'POST', headers, body: new URLSearchParams(body) });
  }

  function assertJsonError(r, status, error, what) {
    assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
    assert.equal(r.location, null, `${what}: never a redirect`);
    assert.ok(r.json, `${what}: JSON body, got ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error, error, `${what}: ${r.text}`);
    assert.equal(r.json.code, undefined, `${what}: no code`);
    assert.match(r.headers.get('content-type') ?? '', /json/, what);
  }

  const creds = () => ({ client_id: app.client_id, client_secret: app.client_secret });

  // --- Headless Authorization Code and Credentials flow ----------------------------------------

  test('headless flow: off by default → 400 unsupported_response_type naming allow_code_credentials_flow', async () => {
    assert.equal(defaults.allow_code_credentials_flow, false);
    const user = await newUser();
    const r = await headless(user);
    assertJsonError(r, 400, 'unsupported_response_type', 'flow off');
    assert.match(r.json.error_description ?? '', /allow_code_credentials_flow/);
  });

  test('headless flow on: 200 JSON code + sfdc_community_url; the code redeems with the verifier; wrong password → 401 invalid_grant; off again → refused', async () => {
    const user = await newUser();
    await setSwitch('allow_code_credentials_flow', true);
    try {
      // authorization_code grant.
      const { verifier, challenge } = pkcePair();
      const state = rand('hl');
      const r = await headless(user, { challenge, fields: { scope: 'api refresh_token', state } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.location, null);
      assert.match(r.headers.get('content-type') ?? '', /json/);
      assert.match(r.headers.get('cache-control') ?? '', /no-store/);
      assert.ok(r.json.code, r.text);
      assert.equal(r.json.sfdc_community_url, w.baseUrl);
      assert.equal(r.json.state, state);
      const t = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: r.json.code, redirect_uri: CB, code_verifier: verifier, ...creds() });
      assert.equal(t.status, 200, t.text);
      assert.ok(t.json.access_token);
      assert.ok(t.json.refresh_token, 'refresh_token was granted');
      assert.equal(t.json.instance_url, w.baseUrl);
      const info = await userinfo(w.baseUrl, t.json.access_token);
      assert.equal(info.status, 200, info.text);
      assert.equal(info.json.user_id, user.user_id);

      // hybrid_auth_code grant with a headless code: tokens and session fields.
      const p2 = pkcePair();
      const r2 = await headless(user, { challenge: p2.challenge, fields: { scope: 'api lightning' } });
      assert.equal(r2.status, 200, r2.text);
      assert.equal(r2.json.state, undefined, 'no state sent, none echoed');
      const t2 = await tokenRequest(w.baseUrl, { grant_type: 'hybrid_auth_code', code: r2.json.code, redirect_uri: CB, code_verifier: p2.verifier, ...creds() });
      assert.equal(t2.status, 200, t2.text);
      assert.ok(t2.json.sid);
      assert.notEqual(t2.json.sid, t2.json.access_token);
      assert.equal(t2.json.lightning_domain, new URL(w.baseUrl).host);

      // The verifier is checked.
      const p3 = pkcePair();
      const r3 = await headless(user, { challenge: p3.challenge });
      assert.equal(r3.status, 200, r3.text);
      const t3 = await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code: r3.json.code, redirect_uri: CB, code_verifier: pkcePair().verifier, ...creds() });
      assert.equal(t3.status, 400, t3.text);
      assert.equal(t3.json.error, 'invalid_grant');

      // Wrong password and unknown user: 401 invalid_grant.
      const other = await newUser();
      assertJsonError(await headless({ username: other.username, password: 'wrong password 1' }), 401, 'invalid_grant', 'wrong password');
      assertJsonError(await headless({ username: `nobody-${rand('u')}@example.com`, password: PASSWORD }), 401, 'invalid_grant', 'unknown user');
      const stillOk = await headless(other);
      assert.equal(stillOk.status, 200, `the right password still works: ${stillOk.text}`);
    } finally {
      await setSwitch('allow_code_credentials_flow', false);
    }
    // Off again: the next request is refused.
    const off = await headless(user);
    assertJsonError(off, 400, 'unsupported_response_type', 'flow switched off');
    assert.match(off.json.error_description ?? '', /allow_code_credentials_flow/);
    // And on again: works on the next request.
    await setSwitch('allow_code_credentials_flow', true);
    try {
      const on = await headless(user);
      assert.equal(on.status, 200, on.text);
      assert.ok(on.json.code);
    } finally {
      await setSwitch('allow_code_credentials_flow', false);
    }
  });

  test('headless flow: malformed requests → 400 JSON with the spec codes, never 5xx, never a redirect', async () => {
    const user = await newUser();
    await setSwitch('allow_code_credentials_flow', true);
    try {
      const cases = [
        ['no Authorization header', { authorization: null }, 'invalid_request'],
        ['Authorization not Basic', { authorization: 'Bearer abc' }, 'invalid_request'],
        ['Basic not base64', { authorization: 'Basic !!!not-base64***' }, 'invalid_request'],
        ['Basic without a colon', { authorization: `Basic ${b64('usernamepassword')}` }, 'invalid_request'],
        ['Basic empty', { authorization: 'Basic ' }, 'invalid_request'],
        ['Auth-Request-Type missing', { type: null }, 'invalid_request'],
        ['Auth-Request-Type unknown', { type: 'Bogus-Type' }, 'invalid_request'],
        ['Auth-Request-Type passwordless-login (not supported)', { type: 'passwordless-login' }, 'invalid_request'],
        ['code_challenge missing', { omit: ['code_challenge', 'code_challenge_method'] }, 'invalid_request'],
        ['unknown client_id', { fields: { client_id: '3MVG9' + 'x'.repeat(80) } }, 'invalid_client_id'],
        ['unregistered redirect_uri', { fields: { redirect_uri: 'http://127.0.0.1:9/other' } }, 'redirect_uri_mismatch'],
      ];
      for (const [what, opts, error] of cases) {
        assertJsonError(await headless(user, opts), 400, error, what);
      }
      // Odd ones: only "a 4xx, not a redirect".
      for (const [what, opts] of [
        ['client_id missing', { omit: ['client_id'] }],
        ['redirect_uri missing', { omit: ['redirect_uri'] }],
        ['plain code_challenge_method', { fields: { code_challenge_method: 'plain' } }],
        ['Basic with empty username and password', { authorization: `Basic ${b64(':')}` }],
      ]) {
        const r = await headless(user, opts);
        assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
        assert.equal(r.location, null, `${what}: no redirect`);
      }
      // A JSON body is not a headless request.
      const j = await raw(`${w.baseUrl}/services/oauth2/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'auth-request-type': 'Named-User', authorization: `Basic ${b64(`${user.username}:${user.password}`)}` },
        body: JSON.stringify({ response_type: 'code_credentials', client_id: app.client_id, redirect_uri: CB, code_challenge: pkcePair().challenge }),
      });
      assert.ok(j.status >= 400 && j.status < 500, `JSON body: ${j.status}`);
      assert.equal(j.location, null);
      // After all of that, the user is not locked out: a well-formed request works.
      const ok = await headless(user);
      assert.equal(ok.status, 200, ok.text);
    } finally {
      await setSwitch('allow_code_credentials_flow', false);
    }
  });

  // --- Org switches ----------------------------------------------------------------------------

  test('allow_user_agent_flow: off blocks token, token id_token and hybrid_token (fragment, state kept); discovery drops them; on again unblocks', async () => {
    const user = await newUser();
    const jar = new CookieJar();
    const run = (params) => authorize(w.baseUrl, { client_id: app.client_id, redirect_uri: CB, ...params }, { username: user.username, password: user.password, jar });

    assert.equal(defaults.allow_user_agent_flow, true);
    let d = await discovery(w.baseUrl);
    for (const rt of ['code', 'token', 'hybrid_token']) assert.ok(d.response_types_supported.includes(rt), `${rt} advertised: ${d.response_types_supported}`);
    assert.ok(d.response_types_supported.some((t) => t.split(' ').sort().join(' ') === 'id_token token'), `token id_token advertised: ${d.response_types_supported}`);
    assert.deepEqual(new Set(d.response_modes_supported), new Set(['query', 'fragment', 'form_post']));
    for (const g of ['authorization_code', 'refresh_token', 'hybrid_auth_code', 'hybrid_refresh']) assert.ok(d.grant_types_supported.includes(g), `${g} in ${d.grant_types_supported}`);

    // Works while on (this also logs the user in and records the approval).
    const pre = await run({ response_type: 'token', scope: 'api', state: rand('ua') });
    assert.ok(fragmentOf(pre.location ?? '').get('access_token'), pre.location ?? pre.body);

    await setSwitch('allow_user_agent_flow', false);
    try {
      for (const rt of TOKEN_TYPES) {
        const state = rand('blk');
        const a = await run({ response_type: rt, scope: 'api openid lightning', state, nonce: rand('n') });
        assert.ok(a.location, `${rt}: ${a.status} ${a.body?.slice(0, 200)}`);
        assert.equal(baseOf(a.location), CB);
        const f = fragmentOf(a.location);
        assert.equal(f.get('error'), 'unsupported_response_type', `${rt}: ${a.location}`);
        assert.match(f.get('error_description') ?? '', /allow_user_agent_flow/, `${rt}: ${a.location}`);
        assert.equal(f.get('state'), state);
        assert.equal(f.get('access_token'), null);
        assert.equal(f.get('sid'), null);
        assert.equal(queryOf(a.location).toString(), '', `${rt}: the error is in the fragment only`);
      }
      d = await discovery(w.baseUrl);
      assert.ok(d.response_types_supported.includes('code'));
      for (const t of d.response_types_supported) assert.ok(!t.split(' ').includes('token') && t !== 'hybrid_token', `blocked type still advertised: ${t}`);
      // The code flow is not affected.
      const c = await run({ response_type: 'code', scope: 'api', state: rand('c') });
      assert.ok(c.code, c.location ?? c.body);
    } finally {
      await setSwitch('allow_user_agent_flow', true);
    }
    // On again: the next requests work.
    const t = await run({ response_type: 'token', scope: 'api', state: rand('ua') });
    const tf = fragmentOf(t.location ?? '');
    assert.ok(tf.get('access_token'), t.location ?? t.body);
    assert.equal((await userinfo(w.baseUrl, tf.get('access_token'))).status, 200);
    const h = await run({ response_type: 'hybrid_token', scope: 'api lightning', state: rand('ua') });
    const hf = fragmentOf(h.location ?? '');
    assert.ok(hf.get('access_token'), h.location ?? h.body);
    assert.ok(hf.get('sid'));
    const ti = await run({ response_type: 'token id_token', scope: 'api openid', state: rand('ua'), nonce: rand('n') });
    assert.ok(fragmentOf(ti.location ?? '').get('id_token'), ti.location ?? ti.body);
    d = await discovery(w.baseUrl);
    for (const rt of ['token', 'hybrid_token']) assert.ok(d.response_types_supported.includes(rt), `${rt} advertised again`);
    assert.ok(d.response_types_supported.some((x) => x.split(' ').sort().join(' ') === 'id_token token'));
  });

  test('require_pkce: on → a code flow without code_challenge is an invalid_request redirect, with one it works; off again → works without', async () => {
    const user = await newUser();
    const jar = new CookieJar();
    const run = (params) => authorize(w.baseUrl, { client_id: app.client_id, redirect_uri: CB, scope: 'api', ...params }, { username: user.username, password: user.password, jar });
    const exchange = (code, extra = {}) => tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: CB, ...creds(), ...extra });

    assert.equal(defaults.require_pkce, false);
    // Off: no challenge needed. Keep this code: it must stop working once PKCE is required.
    const early = await run({ response_type: 'code', state: rand('p') });
    assert.ok(early.code, early.location ?? early.body);

    await setSwitch('require_pkce', true);
    try {
      for (const rt of ['code', 'hybrid_auth_code']) {
        const state = rand('p');
        const a = await run({ response_type: rt, state });
        assert.ok(a.location, `${rt}: ${a.status} ${a.body?.slice(0, 200)}`);
        assert.equal(baseOf(a.location), CB);
        const q = queryOf(a.location);
        assert.equal(q.get('error'), 'invalid_request', a.location);
        assert.equal(q.get('error_description'), 'code_challenge required');
        assert.equal(q.get('state'), state);
        assert.equal(q.get('code'), null);
      }
      const { verifier, challenge } = pkcePair();
      const ok = await run({ response_type: 'code', code_challenge: challenge, code_challenge_method: 'S256', state: rand('p') });
      assert.ok(ok.code, ok.location ?? ok.body);
      const t = await exchange(ok.code, { code_verifier: verifier });
      assert.equal(t.status, 200, t.text);
      // The code issued without PKCE before the switch can no longer be exchanged.
      const old = await exchange(early.code);
      assert.equal(old.status, 400, old.text);
      assert.equal(old.json.error, 'invalid_grant');
    } finally {
      await setSwitch('require_pkce', false);
    }
    const late = await run({ response_type: 'code', state: rand('p') });
    assert.ok(late.code, late.location ?? late.body);
    const t = await exchange(late.code);
    assert.equal(t.status, 200, t.text);
  });

  // --- Bad input at the authorization endpoint ---------------------------------------------------

  /** A raw authorize GET (no session: parse errors answer at once). */
  function authorizeGet(params) {
    return raw(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({ client_id: app.client_id, redirect_uri: CB, ...params })}`);
  }

  test('bad response_type: unknown → unsupported_response_type (state, iss); missing → invalid_request', async () => {
    for (const rt of ['foo', 'CODE']) {
      const state = rand('rt');
      const r = await authorizeGet({ response_type: rt, state });
      assert.equal(r.status, 302, `${rt}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(baseOf(r.location), CB);
      const q = queryOf(r.location);
      assert.equal(q.get('error'), 'unsupported_response_type', `${rt}: ${r.location}`);
      assert.equal(q.get('state'), state);
      assert.equal(q.get('iss'), w.baseUrl);
      assert.equal(q.get('code'), null);
    }
    // `code token` and `id_token` alone (not supported; token-like, so the error may be in the
    // fragment): refused, in the query or the fragment, with state.
    for (const rt of ['code token', 'id_token', 'token code id_token']) {
      const state = rand('rt');
      const ct = await authorizeGet({ response_type: rt, state, nonce: 'n' });
      assert.equal(ct.status, 302, `${rt}: ${ct.text.slice(0, 200)}`);
      assert.equal(baseOf(ct.location), CB);
      const where = fragmentOf(ct.location).get('error') ? fragmentOf(ct.location) : queryOf(ct.location);
      assert.equal(where.get('error'), 'unsupported_response_type', `${rt}: ${ct.location}`);
      assert.equal(where.get('state'), state);
      assert.equal(where.get('access_token'), null);
      assert.equal(where.get('code'), null);
    }

    const ms = rand('rt');
    const m = await authorizeGet({ state: ms });
    assert.equal(m.status, 302, m.text.slice(0, 200));
    const mq = queryOf(m.location);
    assert.equal(mq.get('error'), 'invalid_request', m.location);
    assert.equal(mq.get('error_description'), 'response_type required');
    assert.equal(mq.get('state'), ms);

    // Before the client is known, errors are a page, never a redirect.
    const page = await raw(`${w.baseUrl}/services/oauth2/authorize?${new URLSearchParams({ response_type: 'token', client_id: app.client_id, redirect_uri: 'http://127.0.0.1:9/evil' })}`);
    assert.equal(page.status, 400);
    assert.equal(page.location, null);
  });

  test('response_mode: unknown → invalid_request in the type default mode; query with a token type → invalid_request in the fragment; query with code is fine', async () => {
    const cases = [
      [{ response_type: 'code', response_mode: 'bogus' }, 'query'],
      [{ response_type: 'token', response_mode: 'bogus' }, 'fragment'],
      [{ response_type: 'token', response_mode: 'query' }, 'fragment'],
      [{ response_type: 'token id_token', response_mode: 'query', nonce: 'n' }, 'fragment'],
      [{ response_type: 'hybrid_token', response_mode: 'query' }, 'fragment'],
    ];
    for (const [params, mode] of cases) {
      const state = rand('rm');
      const r = await authorizeGet({ ...params, state });
      const what = JSON.stringify(params);
      assert.equal(r.status, 302, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(baseOf(r.location), CB);
      const got = mode === 'query' ? queryOf(r.location) : fragmentOf(r.location);
      const other = mode === 'query' ? fragmentOf(r.location) : queryOf(r.location);
      assert.equal(got.get('error'), 'invalid_request', `${what}: ${r.location}`);
      assert.equal(got.get('state'), state);
      assert.equal(other.get('error'), null, `${what}: only in the ${mode}`);
      assert.equal(got.get('access_token'), null);
    }
    // query with code is valid: no session here, so the login page.
    const ok = await authorizeGet({ response_type: 'code', response_mode: 'query', state: 's' });
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    assert.match(ok.text, /name="password"/);
  });

  test('fragment injection in state: `a&access_token=evil#x` comes back as one state value, no extra parameter', async () => {
    const evil = 'a&access_token=evil#x';
    const user = await newUser();
    const jar = new CookieJar();
    // Success (token flow): the state is one encoded field of the fragment.
    const a = await authorize(w.baseUrl, { response_type: 'token', client_id: app.client_id, redirect_uri: CB, scope: 'api', state: evil }, { username: user.username, password: user.password, jar });
    assert.ok(a.location, a.body);
    assert.equal(a.location.split('#').length, 2, `one '#' in ${a.location}`);
    const f = fragmentOf(a.location);
    assert.deepEqual(f.getAll('state'), [evil]);
    assert.equal(f.getAll('access_token').length, 1);
    assert.notEqual(f.get('access_token'), 'evil');
    assert.equal(f.get('x'), null);
    assert.equal((await userinfo(w.baseUrl, f.get('access_token'))).status, 200);

    // Error in the fragment (response_mode=query with token).
    const e = await authorizeGet({ response_type: 'token', response_mode: 'query', state: evil });
    assert.equal(e.status, 302);
    assert.equal(e.location.split('#').length, 2, e.location);
    const ef = fragmentOf(e.location);
    assert.deepEqual(ef.getAll('state'), [evil]);
    assert.deepEqual(ef.getAll('access_token'), []);

    // Error in the query (unknown response_type): no fragment at all, one state.
    const q = await authorizeGet({ response_type: 'foo', state: evil });
    assert.equal(q.status, 302);
    assert.ok(!q.location.includes('#'), q.location);
    const qq = queryOf(q.location);
    assert.deepEqual(qq.getAll('state'), [evil]);
    assert.deepEqual(qq.getAll('access_token'), []);

    // Code flow success: same, in the query.
    const c = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'api', state: evil }, { username: user.username, password: user.password, jar });
    assert.ok(c.code, c.location ?? c.body);
    assert.ok(!c.location.includes('#'), c.location);
    assert.deepEqual(c.url.searchParams.getAll('state'), [evil]);
    assert.deepEqual(c.url.searchParams.getAll('access_token'), []);
  });

  test('a blocked flow via form_post and via POST authorize: still no tokens, no 5xx', async () => {
    const user = await newUser();
    const jar = new CookieJar();
    await setSwitch('allow_user_agent_flow', false);
    try {
      const state = rand('fp');
      const a = await authorize(w.baseUrl, { response_type: 'token', response_mode: 'form_post', client_id: app.client_id, redirect_uri: CB, scope: 'api', state }, { username: user.username, password: user.password, jar });
      // Either a form_post page carrying the error, or a redirect with it: never a token.
      const text = a.body ?? a.location ?? '';
      assert.match(text, /unsupported_response_type/, `${a.status} ${text.slice(0, 300)}`);
      assert.doesNotMatch(text, /access_token/);
      // The authorization request sent as a form POST is blocked the same way.
      const p = await raw(`${w.baseUrl}/services/oauth2/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
        body: new URLSearchParams({ response_type: 'hybrid_token', client_id: app.client_id, redirect_uri: CB, scope: 'api', state }),
      });
      assert.ok(p.status === 302 || p.status === 303, `${p.status} ${p.text.slice(0, 200)}`);
      const pf = fragmentOf(p.location);
      assert.equal(pf.get('error'), 'unsupported_response_type', p.location);
      assert.equal(pf.get('state'), state);
    } finally {
      await setSwitch('allow_user_agent_flow', true);
    }
  });
});
