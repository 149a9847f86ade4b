// What `make bench` measures: each scenario says, for ours, the peer and the floor, how one
// closed loop is set up and what one step is (a request, or a flow of two). A driver answers
// `{ loop(i, http) }`, or `{ notYet }` (ours lacks the flow today) or `{ na }` (the peer has no
// such flow). Every step checks the status (and the body where a 200 can still be a failure).
import { authorize, CookieJar, pkcePair } from '../tests/e2e/flow.mjs';
import { randomToken } from '../scripts/worker.mjs';
import { addTrips } from './load.mjs';

const CB = 'http://127.0.0.1:9/cb';
const PASSWORD = 'bench-password';

/** { ok, error, trips } for a response expected to have `status` (and to satisfy `pred`). */
function check(r, status, pred = () => true, trips = r.headers['x-storage-round-trips']) {
  if (r.status === status && pred(r)) return { ok: true, trips };
  return { ok: false, error: `${r.status} ${r.body.replace(/\s+/g, ' ').slice(0, 120)}` };
}

/** Feeds node:http Set-Cookie headers to flow.mjs's CookieJar (which expects a fetch Response). */
const storeCookies = (jar, r) => jar.store({ headers: { getSetCookie: () => r.headers['set-cookie'] || [] } });

const codeFrom = (location) => { try { return new URL(location).searchParams.get('code'); } catch { return null; } };

// ── ours ────────────────────────────────────────────────────────────────────────────────────────

/** Our worker's apps, users and logged-in sessions, and what it can do today (probed). */
export async function prepareOurs(w, { gatewayPath }) {
  const admin = async (method, path, body) => {
    const r = await fetch(w.baseUrl + path, { method, headers: { authorization: `Bearer ${w.adminToken}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await r.json().catch(() => undefined);
    if (r.status >= 300) throw new Error(`admin ${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  const app = (name, extra = {}) => admin('POST', '/admin/apps', { name, callback_urls: [CB], scopes: ['api', 'refresh_token'], rotate_refresh_tokens: true, ...extra });
  const apps = {
    opaque: await app('Bench'),
    openid: await app('Bench OIDC', { scopes: ['api', 'refresh_token', 'openid'] }),
    jwt: await app('Bench JWT', { jwt_access_tokens: true }),
  };
  // One user per loop index, logged in once (logins are throttled per user and IP); the jar is
  // reused for every later authorization, as a browser would.
  const sessions = new Map();
  async function session(i) {
    if (!sessions.has(i)) {
      const username = `bench-${i}@example.com`;
      await admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Bench ${i}` });
      sessions.set(i, { username, jar: new CookieJar() });
    }
    return sessions.get(i);
  }
  /** A code for user `i` through the pages (login the first time, consent the first time per app). */
  async function code(i, a, scope, resource) {
    const { username, jar } = await session(i);
    const { verifier, challenge } = pkcePair();
    const params = { response_type: 'code', client_id: a.client_id, redirect_uri: CB, code_challenge: challenge, code_challenge_method: 'S256', scope, state: 's', ...(resource ? { resource } : {}) };
    const r = await authorize(w.baseUrl, params, { username, password: PASSWORD, jar });
    if (!r.code) throw new Error(`ours: no code for user ${i} (status ${r.status}, pages ${r.pages}): ${String(r.body || r.location).slice(0, 200)}`);
    return { code: r.code, verifier };
  }
  const issued = new Map();
  /** Tokens for validation loops: one set per user and app, reused by every run (they live 2 h). */
  // The JWT app's tokens are for the gateway route's resource (RFC 8707), so they pass it.
  const resourceOf = (a) => (a === apps.jwt ? `${w.baseUrl}${gatewayPath.replace(/\/$/, '')}` : undefined);
  async function cachedTokens(i, a) {
    const key = `${i}:${a.client_id}`;
    if (!issued.has(key)) issued.set(key, await tokens(i, a));
    return issued.get(key);
  }
  async function tokens(i, a, scope = 'api refresh_token') {
    const resource = resourceOf(a);
    const { code: c, verifier } = await code(i, a, scope, resource);
    const r = await fetch(`${w.baseUrl}/services/oauth2/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: c, redirect_uri: CB, code_verifier: verifier, client_id: a.client_id, client_secret: a.client_secret }),
    });
    const json = await r.json();
    if (r.status !== 200) throw new Error(`ours: code exchange ${r.status} ${JSON.stringify(json)}`);
    return json;
  }

  // Probes for flows that may not exist yet.
  const probes = {};
  const reg = await admin('POST', '/admin/registration-tokens', {});
  let r = await fetch(`${w.baseUrl}/services/oauth2/register`, { method: 'POST', headers: { authorization: `Bearer ${reg.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [CB], client_name: 'probe' }) });
  probes.register = r.status === 404 ? 'not yet (POST /services/oauth2/register → 404)' : undefined;
  apps.cc = await app('Bench CC', { client_credentials_user: (await session(0)).username });
  r = await fetch(`${w.baseUrl}/services/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: apps.cc.client_id, client_secret: apps.cc.client_secret }) });
  const ccBody = await r.json().catch(() => ({}));
  probes.clientCredentials = ccBody.error === 'unsupported_grant_type' ? 'not yet (token endpoint: unsupported_grant_type)' : undefined;
  const jwt = await tokens(0, apps.jwt);
  r = await fetch(w.baseUrl + gatewayPath, { headers: { authorization: `Bearer ${jwt.access_token}` } });
  probes.gateway = r.status === 404 ? `not yet (GET ${gatewayPath} → 404)` : undefined;
  return { w, admin, apps, session, code, tokens, cachedTokens, probes, gatewayPath };
}

const ours = {
  userinfo: (appKey) => (o) => ({
    async loop(i, http) {
      const t = await o.cachedTokens(i, o.apps[appKey]);
      return { step: async () => check(await http.get('/services/oauth2/userinfo', { headers: { authorization: `Bearer ${t.access_token}` } }), 200) };
    },
  }),
  introspect: (o) => ({
    async loop(i, http) {
      const a = o.apps.opaque;
      const t = await o.cachedTokens(i, a);
      const form = { token: t.access_token, client_id: a.client_id, client_secret: a.client_secret };
      return { step: async () => check(await http.post('/services/oauth2/introspect', { form }), 200, (r) => r.json?.active === true) };
    },
  }),
  gateway: (o) => (o.probes.gateway ? { notYet: o.probes.gateway } : {
    async loop(i, http) {
      const t = await o.cachedTokens(i, o.apps.jwt);
      return { step: async () => check(await http.get(o.gatewayPath, { headers: { authorization: `Bearer ${t.access_token}` } }), 200) };
    },
  }),
  refresh: (o) => ({
    async loop(i, http) {
      const a = o.apps.opaque;
      let rt = (await o.tokens(i, a)).refresh_token;
      return {
        async step() {
          const r = await http.post('/services/oauth2/token', { form: { grant_type: 'refresh_token', refresh_token: rt, client_id: a.client_id, client_secret: a.client_secret } });
          const res = check(r, 200, (x) => !!x.json?.refresh_token);
          if (res.ok) rt = r.json.refresh_token;
          return res;
        },
        async reset() { rt = (await o.tokens(i, a)).refresh_token; },
      };
    },
  }),
  code: (appKey, scope) => (o) => ({
    async loop(i, http) {
      const a = o.apps[appKey];
      await o.code(i, a, scope); // logs in (first time) and records the consent; the code is left unused
      const { jar } = await o.session(i);
      return {
        async step() {
          const { verifier, challenge } = pkcePair();
          const q = new URLSearchParams({ response_type: 'code', client_id: a.client_id, redirect_uri: CB, code_challenge: challenge, code_challenge_method: 'S256', scope, state: 's' });
          const az = await http.get(`/services/oauth2/authorize?${q}`, { headers: { cookie: jar.header() } });
          storeCookies(jar, az);
          const code = az.status === 302 && codeFrom(az.headers.location);
          if (!code) return { ok: false, error: `authorize ${az.status} ${az.headers.location || az.body.slice(0, 100)}` };
          const tk = await http.post('/services/oauth2/token', { form: { grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, client_id: a.client_id, client_secret: a.client_secret } });
          return check(tk, 200, (r) => !!r.json?.access_token, addTrips(az.headers['x-storage-round-trips'], tk.headers['x-storage-round-trips']));
        },
      };
    },
  }),
  register: (o) => (o.probes.register ? { notYet: o.probes.register } : {
    // A best guess at the flow still to come (RFC 7591 with an initial access token from the
    // admin API); if it differs, the errors column says so.
    async loop(i, http) {
      const { token } = await o.admin('POST', '/admin/registration-tokens', {});
      const json = { redirect_uris: [CB], client_name: 'Bench' };
      return { step: async () => check(await http.post('/services/oauth2/register', { json, headers: { authorization: `Bearer ${token}` } }), 201) };
    },
  }),
  clientCredentials: (o) => (o.probes.clientCredentials ? { notYet: o.probes.clientCredentials } : {
    async loop(i, http) {
      const a = o.apps.cc;
      const form = { grant_type: 'client_credentials', client_id: a.client_id, client_secret: a.client_secret };
      return { step: async () => check(await http.post('/services/oauth2/token', { form }), 200, (r) => !!r.json?.access_token) };
    },
  }),
};

// ── peer (@cloudflare/workers-oauth-provider) ──────────────────────────────────────────────────

const REGISTRATION = { redirect_uris: [CB], client_name: 'Bench', token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] };

export async function preparePeer(w) {
  const r = await fetch(`${w.baseUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(REGISTRATION) });
  const client = await r.json();
  if (r.status !== 201) throw new Error(`peer: /register ${r.status} ${JSON.stringify(client)}`);
  const cc = await fetch(`${w.baseUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret }) });
  const ccBody = await cc.json().catch(() => ({}));
  const authorizeQuery = (user) => {
    const { verifier, challenge } = pkcePair();
    return { verifier, q: new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: CB, code_challenge: challenge, code_challenge_method: 'S256', scope: 'api', state: 's', user }) };
  };
  async function tokens(user) {
    const { verifier, q } = authorizeQuery(user);
    const az = await fetch(`${w.baseUrl}/authorize?${q}`, { redirect: 'manual' });
    const code = codeFrom(az.headers.get('location'));
    if (!code) throw new Error(`peer: /authorize ${az.status} ${await az.text()}`);
    const t = await fetch(`${w.baseUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, client_id: client.client_id, client_secret: client.client_secret }) });
    const json = await t.json();
    if (t.status !== 200) throw new Error(`peer: code exchange ${t.status} ${JSON.stringify(json)}`);
    return json;
  }
  const issued = new Map();
  const cachedTokens = async (user) => { if (!issued.has(user)) issued.set(user, await tokens(user)); return issued.get(user); };
  return { w, client, tokens, cachedTokens, authorizeQuery, clientCredentials: ccBody.error ? `n/a (token endpoint: ${ccBody.error})` : undefined };
}

const peer = {
  api: (p) => ({
    async loop(i, http) {
      const t = await p.cachedTokens(`validate-${i}`);
      return { step: async () => check(await http.get('/api/me', { headers: { authorization: `Bearer ${t.access_token}` } }), 200, (r) => !!r.json?.props) };
    },
  }),
  refresh: (p) => ({
    async loop(i, http) {
      const { client_id, client_secret } = p.client;
      let rt = (await p.tokens(`refresh-${i}`)).refresh_token;
      return {
        async step() {
          const r = await http.post('/token', { form: { grant_type: 'refresh_token', refresh_token: rt, client_id, client_secret } });
          const res = check(r, 200, (x) => !!x.json?.refresh_token);
          if (res.ok) rt = r.json.refresh_token;
          return res;
        },
        async reset() { rt = (await p.tokens(`refresh-${i}`)).refresh_token; },
      };
    },
  }),
  code: (p) => ({
    async loop(i, http) {
      const { client_id, client_secret } = p.client;
      return {
        async step() {
          const { verifier, q } = p.authorizeQuery(`code-${i}`);
          const az = await http.get(`/authorize?${q}`);
          const code = az.status === 302 && codeFrom(az.headers.location);
          if (!code) return { ok: false, error: `authorize ${az.status} ${az.headers.location || az.body.slice(0, 100)}` };
          const tk = await http.post('/token', { form: { grant_type: 'authorization_code', code, redirect_uri: CB, code_verifier: verifier, client_id, client_secret } });
          return check(tk, 200, (r) => !!r.json?.access_token);
        },
      };
    },
  }),
  register: () => ({
    async loop(i, http) {
      return { step: async () => check(await http.post('/register', { json: REGISTRATION }), 201, (r) => !!r.json?.client_id) };
    },
  }),
  clientCredentials: (p) => ({ na: p.clientCredentials || 'n/a (answers client_credentials, but the bench does not drive it)' }),
};
const na = (why) => () => ({ na: `n/a (${why})` });

// ── floor ───────────────────────────────────────────────────────────────────────────────────────

// Bodies shaped like the real requests (the floor reads and ignores them).
const FORM = { grant_type: 'refresh_token', refresh_token: randomToken(64), client_id: `3MVG9${randomToken(80)}`, client_secret: randomToken(64) };

/** A floor step: the requests of one step, each `{ method, ops, form?, json?, bearer? }`. */
export const floor = (...requests) => ({
  requests,
  driver: () => ({
    async loop(i, http) {
      return {
        async step() {
          for (const { method, ops, form, json, bearer } of requests) {
            const path = `/floor?ops=${ops.join(',')}`;
            const headers = bearer ? { authorization: `Bearer ${randomToken()}` } : {};
            const r = await (method === 'GET' ? http.get(path, { headers }) : http.post(path, { form, json, headers }));
            if (r.status !== 200) return check(r, 200);
          }
          return { ok: true };
        },
      };
    },
  }),
});

/** The scenarios, in report order. `F` is the floor's round trips per request (scripts/bench.mjs). */
export function scenarios(F) {
  const validate = floor({ method: 'GET', ops: F.validate, bearer: true });
  const code = floor({ method: 'GET', ops: F.authorize }, { method: 'POST', ops: F.exchange, form: FORM });
  return [
    { id: 'userinfo', title: 'validate: userinfo, opaque token (peer: its apiRoute)', floor: validate, ours: ours.userinfo('opaque'), peer: peer.api },
    { id: 'introspect', title: 'validate: introspection, opaque token', floor: validate, ours: ours.introspect, peer: na('no introspection endpoint') },
    { id: 'userinfo-jwt', title: 'validate: userinfo, JWT access token', floor: validate, ours: ours.userinfo('jwt'), peer: na('opaque tokens only') },
    { id: 'jwt-route', title: 'validate: JWT at an API route', floor: validate, ours: ours.gateway, peer: na('opaque tokens only') },
    { id: 'refresh', title: 'refresh (rotating)', floor: floor({ method: 'POST', ops: F.refresh, form: FORM }), ours: ours.refresh, peer: peer.refresh },
    { id: 'code', title: 'authorize + code exchange (flows/s)', unit: 'flows', floor: code, ours: ours.code('opaque', 'api refresh_token'), peer: peer.code },
    { id: 'code-openid', title: 'authorize + code exchange, openid (flows/s)', unit: 'flows', floor: code, ours: ours.code('openid', 'openid api refresh_token'), peer: na('no ID tokens') },
    { id: 'register', title: 'dynamic client registration', floor: floor({ method: 'POST', ops: F.register, json: REGISTRATION }), ours: ours.register, peer: peer.register },
    { id: 'client-credentials', title: 'client credentials', floor: floor({ method: 'POST', ops: F.clientCredentials, form: { ...FORM, grant_type: 'client_credentials' } }), ours: ours.clientCredentials, peer: peer.clientCredentials },
  ];
}
