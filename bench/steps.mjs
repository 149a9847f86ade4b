// `BENCH_STEPS=1`: the sequential per-step latency of the web server flow against our worker
// alone (the original `make bench`): per-request median and p95 and the storage round trips of
// each step, with one login per iteration (one user each: logins are throttled per username).
import { startTestWorker } from '../tests/e2e/harness.mjs';
import { CookieJar, authorize, formFields, pkcePair, tokenRequest } from '../tests/e2e/flow.mjs';
import { atExit } from './workers.mjs';

export async function runSteps(N = Number(process.env.BENCH_N || 30)) {
  const w = await startTestWorker();
  const forget = atExit(() => w.stop());
  const results = [];
  let wall;
  function stats(name, samples, trips) {
    const s = [...samples].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1);
    results.push({ name, n: s.length, median_ms: q(0.5), p95_ms: q(0.95), round_trips: trips });
  }
  async function timed(fn) {
    const t = performance.now();
    const r = await fn();
    return [performance.now() - t, r];
  }

  try {
    const redirect = 'http://127.0.0.1:9/cb';
    const app = (await w.admin('POST', '/admin/apps', { name: 'Bench', callback_urls: [redirect], scopes: ['api', 'refresh_token', 'openid', 'profile'] })).json;
    // One user per iteration: logins are throttled per username (RL_LOGIN, 10 per minute).
    for (let i = 0; i <= N; i++) await w.admin('POST', '/admin/users', { username: `bench-${i}`, password: 'bench-password', email: 'b@example.com', name: 'Bench' });
    const base = { response_type: 'code', client_id: app.client_id, redirect_uri: redirect };
    const get = (path, headers = {}) => fetch(w.baseUrl + path, { headers, redirect: 'manual' });
    const trips = (r) => r.headers.get('x-storage-round-trips');

    for (const [name, path] of [['discovery', '/.well-known/openid-configuration'], ['jwks', '/id/keys']]) {
      const samples = []; let rt;
      for (let i = 0; i < N; i++) { const [ms, r] = await timed(() => get(path)); await r.text(); samples.push(ms); rt = trips(r); }
      stats(name, samples, rt);
    }

    // authorize (no session) → login page; login POST (Argon2id in wasm) → consent page; consent POST → code.
    const pages = { authorize: [], login: [], consent: [], authorize_with_session: [] };
    const rts = {};
    const codes = [];
    for (let i = 0; i < N; i++) {
      const jar = new CookieJar();
      const { challenge, verifier } = pkcePair();
      const q = new URLSearchParams({ ...base, code_challenge: challenge, state: 's' });
      let [ms, r] = await timed(() => get(`/services/oauth2/authorize?${q}`, { cookie: jar.header() }));
      jar.store(r); let html = await r.text(); pages.authorize.push(ms); rts.authorize = trips(r);
      const post = (fields) => fetch(`${w.baseUrl}/services/oauth2/authorize`, { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
      [ms, r] = await timed(() => post({ ...formFields(html), username: `bench-${i}`, password: 'bench-password', login: '1' }));
      jar.store(r); html = await r.text(); pages.login.push(ms); rts.login = trips(r);
      if (html.includes('name="approve"')) {
        [ms, r] = await timed(() => post({ ...formFields(html), approve: '1' }));
        pages.consent.push(ms); rts.consent = trips(r);
      }
      [ms, r] = await timed(() => get(`/services/oauth2/authorize?${q}`, { cookie: jar.header() }));
      pages.authorize_with_session.push(ms); rts.authorize_with_session = trips(r);
      codes.push({ code: new URL(r.headers.get('location')).searchParams.get('code'), verifier });
    }
    for (const [k, v] of Object.entries(pages)) if (v.length) stats(k === 'authorize' ? 'authorize (login page)' : k === 'login' ? 'login POST (argon2id)' : k === 'consent' ? 'consent POST → code' : 'authorize with session → code', v, rts[k]);

    const cred = { client_id: app.client_id, client_secret: app.client_secret };
    let samples = []; let rt; const issued = [];
    for (const { code, verifier } of codes) {
      const [ms, r] = await timed(() => tokenRequest(w.baseUrl, { grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier, ...cred }));
      samples.push(ms); rt = trips(r); issued.push(r.json);
    }
    stats('token: code exchange', samples, rt);
    for (const [name, fn] of [
      ['token: refresh', (t) => tokenRequest(w.baseUrl, { grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: app.client_id, client_secret: app.client_secret })],
      ['userinfo', (t) => fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${t.access_token}` } })],
      ['introspect', (t) => fetch(`${w.baseUrl}/services/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.access_token, client_id: app.client_id, client_secret: app.client_secret }) })],
      ['revoke (refresh token)', (t) => fetch(`${w.baseUrl}/services/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.refresh_token }) })],
    ]) {
      samples = [];
      for (const t of issued) { const [ms, r] = await timed(() => fn(t)); if (typeof r.text === 'function') await r.text(); samples.push(ms); rt = trips(r); }
      stats(name, samples, rt);
    }
    // 20 concurrent userinfo calls, wall time.
    const fresh = (await tokenRequest(w.baseUrl, { grant_type: 'authorization_code', ...(await (async () => { const { challenge, verifier } = pkcePair(); const a = await authorize(w.baseUrl, { ...base, code_challenge: challenge }, { username: `bench-${N}`, password: 'bench-password' }); return { code: a.code, code_verifier: verifier }; })()), redirect_uri: redirect, client_id: app.client_id, client_secret: app.client_secret })).json;
    [wall] = await timed(() => Promise.all(Array.from({ length: 20 }, () => fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${fresh.access_token}` } }).then((r) => r.text()))));
  } finally {
    forget();
    w.stop();
  }
  return { results, concurrentWallMs: wall };
}
