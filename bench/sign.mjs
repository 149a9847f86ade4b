// What signing costs in the real worker: code exchanges with scope=openid (one ID token signed)
// against the same exchanges without openid (nothing signed), on a worker whose active key is
// RSA-2048 (RS256) and on one whose active key is EC P-256 (ES256). Numbers, never pass/fail.
//   node bench/sign.mjs            (BENCH_N exchanges of each kind per worker, default 60;
//                                   BENCH_ALGS=RS256 for a build that has no ES256)
// The two kinds alternate, so load elsewhere on the machine falls on both alike.
import { generateKeyPairSync } from 'node:crypto';
import { startTestWorker } from '../tests/e2e/harness.mjs';
import { CookieJar, authorize, pkcePair, tokenRequest } from '../tests/e2e/flow.mjs';

const N = Number(process.env.BENCH_N || 60);
const CB = 'http://127.0.0.1:9/cb';
const KEYS = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
};

const pem = (pair) => pair.privateKey.export({ type: 'pkcs8', format: 'pem' });
const quantile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function exchange(w, app, user, jar, scope) {
  const { verifier, challenge } = pkcePair();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope, code_challenge: challenge }, { ...user, jar });
  if (!a.code) throw new Error(`no code: ${a.body ?? a.location}`);
  const fields = { grant_type: 'authorization_code', code: a.code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: CB, code_verifier: verifier };
  const t0 = performance.now();
  const t = await tokenRequest(w.baseUrl, fields);
  const ms = performance.now() - t0;
  if (t.status !== 200 || Boolean(t.json.id_token) !== scope.includes('openid')) throw new Error(`token: ${t.status} ${t.text}`);
  return ms;
}

const rows = [];
const algs = (process.env.BENCH_ALGS || 'RS256,ES256').split(',');
for (const alg of algs) {
  const generate = KEYS[alg];
  // The active key is of `alg`; a retired RSA key beside it, as after a rotation.
  const w = await startTestWorker({ secrets: { SIGNING_KEYS: pem(generate()) + pem(KEYS.RS256()) } });
  try {
    const app = (await w.admin('POST', '/admin/apps', { name: 'Sign bench', callback_urls: [CB], scopes: ['api', 'openid'] })).json;
    const user = { username: `sign-${alg}@example.com`, password: 'sign-bench-pass' };
    await w.admin('POST', '/admin/users', { ...user, email: user.username, name: 'Sign Bench' });
    const jar = new CookieJar(); // one login (Argon2id), then the session is reused
    const samples = { openid: [], none: [] };
    for (let i = 0; i < N + 5; i++) {
      const openid = await exchange(w, app, user, jar, 'openid api');
      const none = await exchange(w, app, user, jar, 'api');
      if (i < 5) continue; // warm-up: the isolate imports the keys on its first signing request
      samples.openid.push(openid);
      samples.none.push(none);
    }
    const [o, n] = [quantile(samples.openid, 0.5), quantile(samples.none, 0.5)];
    rows.push({ active_key: alg, n: N, openid_median_ms: o.toFixed(2), openid_p90_ms: quantile(samples.openid, 0.9).toFixed(2), no_openid_median_ms: n.toFixed(2), signing_ms: (o - n).toFixed(2) });
  } finally {
    w.stop();
  }
}
console.table(rows);
