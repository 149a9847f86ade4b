// Shared helpers of the conformance tests for checklist sections A (OpenID Foundation conformance
// suite) and B (core protocol baseline): a scripted authorization walk that also takes POST
// requests, headers, form_post answers and the fragment; the ID token checks of the suite's
// PerformStandardIdTokenChecks (item A.40); and small assertion helpers. Everything runs over
// HTTP against the real worker (tests/e2e/harness.mjs).
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { CookieJar, formFields, tokenRequest } from '../e2e/flow.mjs';
import { halfHash, parseForms } from '../e2e/ua-helpers.mjs';

export const CB = 'http://127.0.0.1:9/cb';
export const PASSWORD = 'correct horse battery staple';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowS = () => Math.floor(Date.now() / 1000);

/** A caller address of TEST-NET-3 (RFC 5737), so no two walks share a login throttle. */
export const randomIp = () => `203.0.113.${randomInt(1, 255)}`;

export const basic = (id, secret) => ({
  authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});

/** Discovery, the JWKS (as a local key set) and the org id of a started worker. */
export async function serverInfo(w) {
  const md = await (await fetch(`${w.baseUrl}/.well-known/openid-configuration`)).json();
  const jwksJson = await (await fetch(md.jwks_uri)).json();
  const orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
  return { md, issuer: md.issuer, jwksJson, jwks: jose.createLocalJWKSet(jwksJson), orgId };
}

let seq = 0;
export const uniq = () => `${++seq}-${randomUUID().slice(0, 8)}`;

export async function newApp(w, overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `conformance app ${uniq()}`,
    callback_urls: [CB],
    scopes: ['openid', 'profile', 'email', 'address', 'phone', 'api', 'refresh_token', 'offline_access'],
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

export async function newUser(w, label = 'conf') {
  const username = `${label}-${uniq()}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `Conf ${label} User` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

function pageKind(body) {
  if (/name="password"/.test(body)) return 'login';
  if (/name="approve"/.test(body)) return 'consent';
  return undefined;
}

/** The answer of an authorization request as the client would see it. */
function answer(r, pages, jar) {
  const out = { status: r.status, headers: r.headers, body: r.body, location: r.location, pages, jar };
  if (r.location) {
    out.url = new URL(r.location);
    const hash = r.location.indexOf('#');
    out.mode = hash >= 0 ? 'fragment' : 'query';
    out.params = hash >= 0 ? new URLSearchParams(r.location.slice(hash + 1)) : out.url.searchParams;
    out.target = r.location.split('#')[0].split('?')[0];
  } else if (r.status === 200 && /<form\b[^>]*method="post"/i.test(r.body) && !pageKind(r.body)) {
    // response_mode=form_post: a self-submitting form to the redirect URI.
    const [form] = parseForms(r.body);
    out.mode = 'form_post';
    out.form = form;
    out.target = form.action;
    out.params = new URLSearchParams(form.fields);
  }
  if (out.params) {
    out.code = out.params.get('code');
    out.error = out.params.get('error');
    out.state = out.params.get('state');
  }
  return out;
}

/**
 * Runs an authorization request (GET with query, or POST with a form body) and walks the login
 * and consent pages for `user` (approving unless `approve` is false). `params` may be an object
 * or a list of pairs (to send a parameter twice or in a chosen order). Stops at the first page it
 * is not told to handle (`stopAt: 'login' | 'consent'`, or no `user` for a login page).
 * Returns { status, headers, body, location, url, mode, params, target, code, error, state,
 * form, pages, jar }.
 */
export async function authz(baseUrl, params, { user, jar = new CookieJar(), approve = true, method = 'GET', headers = {}, stopAt } = {}) {
  if (!Array.isArray(params)) params = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
  const common = { 'cf-connecting-ip': randomIp(), ...headers };
  const send = async (url, init = {}) => {
    const r = await fetch(url, { ...init, headers: { ...common, cookie: jar.header(), ...(init.headers ?? {}) }, redirect: 'manual' });
    jar.store(r);
    return { status: r.status, headers: r.headers, location: r.headers.get('location'), body: await r.text() };
  };
  const postForm = (fields) => send(`${baseUrl}/services/oauth2/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  let r = method === 'POST'
    ? await postForm(params)
    : await send(`${baseUrl}/services/oauth2/authorize?${new URLSearchParams(params)}`);
  const pages = [];
  for (let step = 0; step < 4 && !(r.status >= 300 && r.status < 400); step++) {
    const kind = pageKind(r.body);
    if (kind === 'login') {
      if (!user || stopAt === 'login' || pages.includes('login')) break;
      pages.push('login');
      r = await postForm({ ...formFields(r.body), username: user.username, password: user.password, login: '1' });
    } else if (kind === 'consent') {
      if (stopAt === 'consent') break;
      pages.push('consent');
      r = await postForm({ ...formFields(r.body), [approve ? 'approve' : 'deny']: '1' });
    } else {
      break;
    }
  }
  const out = answer(r, pages, jar);
  out.page = pageKind(r.body);
  return out;
}

/** Code request parameters for `app` with a fresh state and nonce (PKCE added by callers). */
export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function codeParams(app, extra = {}) {
  return { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'openid profile email', state: `st-${uniq()}`, nonce: `n-${uniq()}`, ...extra };
}

/** POSTs the code exchange, authenticating with client_secret_post (default) or Basic. */
export function exchange(baseUrl, app, code, { auth = 'post', redirect_uri = CB, ...extra } = {}) {
  const fields = Object.fromEntries(Object.entries({ grant_type: 'authorization_code', code, redirect_uri, ...extra }).filter(([, v]) => v !== undefined));
  if (auth === 'basic') return tokenRequest(baseUrl, fields, basic(app.client_id, app.client_secret));
  if (auth === 'none') return tokenRequest(baseUrl, { ...fields, client_id: app.client_id });
  return tokenRequest(baseUrl, { ...fields, client_id: app.client_id, client_secret: app.client_secret });
}

export function refresh(baseUrl, app, refreshToken, extra = {}) {
  return tokenRequest(baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: app.client_id, client_secret: app.client_secret, ...extra });
}

export async function userinfoGet(baseUrl, token) {
  const r = await fetch(`${baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

/** RFC 6749 §5.1 / conformance suite: a successful token response's shape and headers. */
export function assertTokenResponse(r, what = 'token response') {
  assert.equal(r.status, 200, `${what}: ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON`);
  assert.match(r.headers.get('cache-control') ?? '', /\bno-store\b/, `${what}: Cache-Control no-store`);
  assert.match(r.headers.get('pragma') ?? '', /no-cache/, `${what}: Pragma no-cache`);
  assert.equal(typeof r.json.access_token, 'string', what);
  assert.equal(r.json.token_type.toLowerCase(), 'bearer', what);
  assert.ok(Number.isInteger(r.json.expires_in) && r.json.expires_in > 0 && r.json.expires_in < 365 * 86400, `${what}: expires_in ${r.json.expires_in}`);
  return r.json;
}

/** RFC 6749 §5.2 error body (and the suite's ValidateError*FromTokenEndpointResponseError). */
export function assertTokenError(r, status, error, what = 'token error') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON`);
  assert.ok(r.json, `${what}: JSON body`);
  if (error instanceof RegExp) assert.match(r.json.error, error, what);
  else if (Array.isArray(error)) assert.ok(error.includes(r.json.error), `${what}: ${r.json.error} not in ${error}`);
  else assert.equal(r.json.error, error, `${what}: ${r.text}`);
  assert.match(r.json.error, /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/, `${what}: error characters`);
  if (r.json.error_description !== undefined) {
    assert.match(r.json.error_description, /^[\x20-\x21\x23-\x5B\x5D-\x7E]*$/, `${what}: error_description characters (no CR/LF/TAB, quote or backslash)`);
  }
  if (r.json.error_uri !== undefined) assert.match(r.json.error_uri, /^[\x21\x23-\x5B\x5D-\x7E]*$/, `${what}: error_uri`);
  assert.equal(r.json.access_token, undefined, `${what}: no token`);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, `${what}: no-store`);
  return r.json;
}

/**
 * An authorization error answer: back to `target` in `mode` with `error`, `state` (when sent) and
 * RFC 9207 `iss`, nothing else but `error_description`/`error_uri`, whose characters are RFC
 * 6749's (Appendix A.7/A.8).
 */
export function assertAuthzError(res, { error, state, issuer, mode, target = CB }) {
  assert.ok(res.params, `expected an answer to the client, got ${res.status} ${res.body?.slice(0, 200)}`);
  if (mode) assert.equal(res.mode, mode, `response mode of ${res.location}`);
  assert.equal(res.target, target);
  if (Array.isArray(error)) assert.ok(error.includes(res.error), `${res.error} not in ${error}`);
  else assert.equal(res.error, error, res.location ?? JSON.stringify(res.form));
  assert.equal(res.params.get('state'), state ?? null, 'state echoed exactly (absent when not sent)');
  assert.equal(res.params.get('iss'), issuer, 'RFC 9207 iss');
  assert.equal(res.code, null, 'no code with an error');
  assert.equal(res.params.get('access_token'), null, 'no token with an error');
  const names = [...res.params.keys()];
  for (const n of names) assert.ok(['error', 'error_description', 'error_uri', 'state', 'iss'].includes(n), `unexpected parameter ${n} in ${names}`);
  assert.equal(new Set(names).size, names.length, 'no parameter twice');
  const d = res.params.get('error_description');
  if (d !== null) assert.match(d, /^[\x20-\x21\x23-\x5B\x5D-\x7E]*$/, 'error_description characters');
  return res;
}

/**
 * A refused authorization request of a client that registered itself (RFC 7591): redirected back
 * with the error (state, iss), or — RFC 9700 §4.11.2, the server does not trust a redirect URI the
 * client chose itself — the same error as a page. Either way no code and no token.
 */
export function assertRegisteredClientRefused(res, { error, state, issuer, mode, target = CB }) {
  if (res.params) return assertAuthzError(res, { error, state, issuer, mode, target });
  assertErrorPage(res, error, `registered client: ${error}`);
  return res;
}

/** A successful code answer: code, state echoed, RFC 9207 iss, no error. */
export function assertCodeAnswer(res, { state, issuer, mode = 'query', target = CB }) {
  assert.ok(res.code, `no code: ${res.status} ${res.location ?? res.body?.slice(0, 300)}`);
  assert.equal(res.mode, mode);
  assert.equal(res.target, target);
  assert.equal(res.error, null);
  assert.equal(res.params.get('state'), state ?? null, 'state');
  assert.equal(res.params.get('iss'), issuer, 'iss');
  return res.code;
}

/** An unredirectable error: a 400 page, no Location, the Salesforce line `error=…`. */
export function assertErrorPage(res, error, what = 'error page') {
  assert.equal(res.status, 400, `${what}: ${res.status} ${res.location}`);
  assert.equal(res.location, null, `${what}: must not redirect`);
  assert.equal(res.params, undefined, `${what}: no answer to the client`);
  assert.match(res.body, new RegExp(`error=${error}\\b`), `${what}: ${res.body.slice(0, 200)}`);
}

const STRING_CLAIMS = ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture',
  'website', 'email', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number'];
const BOOLEAN_CLAIMS = ['email_verified', 'phone_number_verified'];

/** OIDC Core §5.1 claim types (the suite's ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims). */
export function assertStandardClaimTypes(claims, what = 'claims') {
  for (const c of STRING_CLAIMS) if (c in claims) assert.equal(typeof claims[c], 'string', `${what}: ${c} is a string`);
  for (const c of BOOLEAN_CLAIMS) if (c in claims) assert.equal(typeof claims[c], 'boolean', `${what}: ${c} is a boolean`);
  if ('updated_at' in claims) assert.ok(Number.isInteger(claims.updated_at) && claims.updated_at < 1e11, `${what}: updated_at is seconds (EnsureIdTokenUpdatedAtValid)`);
  if ('address' in claims) assert.equal(typeof claims.address, 'object', `${what}: address is an object`);
}

/**
 * The conformance suite's PerformStandardIdTokenChecks (item A.40) on `idToken`:
 * ValidateIdToken (iss, aud, azp, exp, iat, auth_time, acr, nbf), ValidateIdTokenNonce,
 * ValidateIdTokenSignature (against the JWKS, kid present), CheckForSubjectInIdToken,
 * ValidateIdTokenStandardClaims, EnsureIdTokenUpdatedAtValid; plus at_hash / c_hash when the
 * token came beside an access token or a code. `nonce: null` means "none was sent".
 */
export async function checkIdToken(idToken, { issuer, clientId, jwks, nonce, accessToken, code, alg = 'RS256', maxAgeS } = {}) {
  assert.equal(typeof idToken, 'string', 'an ID token');
  const header = jose.decodeProtectedHeader(idToken);
  assert.equal(header.alg, alg, 'signing algorithm');
  assert.equal(typeof header.kid, 'string', 'kid in the header (CheckForKeyIdInServerJWKs)');
  const { payload: c } = await jose.jwtVerify(idToken, jwks, { issuer, audience: clientId, algorithms: [alg] });
  const now = nowS();
  assert.equal(c.iss, issuer, 'iss equals the discovered issuer exactly');
  if (Array.isArray(c.aud)) {
    assert.ok(c.aud.includes(clientId), 'aud contains the client_id');
    if (c.aud.length > 1) assert.equal(c.azp, clientId, 'azp with several audiences');
  } else {
    assert.equal(c.aud, clientId, 'aud is the client_id');
  }
  if ('azp' in c) assert.equal(c.azp, clientId, 'azp is the client_id');
  assert.ok(Number.isInteger(c.exp), 'exp present, integer');
  assert.ok(c.exp > now - 5, 'not expired');
  assert.ok(c.exp < now + 50 * 365 * 86400, 'exp in seconds, not milliseconds');
  assert.ok(Number.isInteger(c.iat), 'iat present, integer');
  assert.ok(c.iat <= now + 300, 'iat not in the future');
  assert.ok(c.iat > now - 3600, 'iat recent');
  assert.ok(c.exp > c.iat, 'exp after iat');
  if ('auth_time' in c) {
    assert.ok(Number.isInteger(c.auth_time), 'auth_time integer');
    assert.ok(c.auth_time <= now + 300, 'auth_time not in the future');
    assert.ok(c.auth_time > now - 365 * 86400, 'auth_time not over a year old');
  }
  if (maxAgeS !== undefined) assert.ok(Number.isInteger(c.auth_time), 'auth_time REQUIRED when max_age was sent');
  if ('acr' in c) assert.ok(typeof c.acr === 'string' && c.acr !== '', 'acr not empty');
  if ('nbf' in c) assert.ok(Number.isInteger(c.nbf) && c.nbf <= now + 300, 'nbf');
  if (nonce === null) assert.equal(c.nonce, undefined, 'no nonce when none was sent');
  else if (nonce !== undefined) assert.equal(c.nonce, nonce, 'nonce echoed unchanged');
  assert.equal(typeof c.sub, 'string', 'sub');
  assert.ok(c.sub.length > 0 && c.sub.length <= 255 && /^[\x20-\x7E]+$/.test(c.sub), 'sub: 1–255 ASCII characters');
  assertStandardClaimTypes(c, 'ID token');
  if (accessToken !== undefined) assert.equal(c.at_hash, halfHash(accessToken), 'at_hash');
  if (code !== undefined) assert.equal(c.c_hash, halfHash(code), 'c_hash');
  return c;
}

/** Shannon entropy of a string's characters times its length (the suite's Ensure*Entropy). */
export function entropyBits(s) {
  const counts = new Map();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h * s.length;
}
