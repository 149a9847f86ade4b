// Shared fixtures for the conformance files of checklist sections C–H (rfc9700, rfc6819, grants,
// throttling): apps, users, a logged-in browser (cookie jar) that gets codes without pages, and
// thin wrappers over the protocol endpoints. Every helper takes the worker `w` from
// startTestWorker (tests/e2e/harness.mjs).
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { authorize, tokenRequest, pkcePair, CookieJar } from '../e2e/flow.mjs';

export const CB = 'http://127.0.0.1:9/cb';
export const PASSWORD = 'correct horse battery staple';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const uniq = () => randomUUID().slice(0, 8);
export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
export const nowS = () => Math.floor(Date.now() / 1000);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export { authorize, tokenRequest, pkcePair, CookieJar };

/** A connected app (201 asserted). */
export async function newApp(w, overrides = {}) {
  const r = await w.admin('POST', '/admin/apps', {
    name: `conformance app ${uniq()}`,
    callback_urls: [CB],
    scopes: ['api', 'openid', 'refresh_token', 'profile', 'email'],
    ...overrides,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

/** A user (201 asserted), with its password. */
export async function newUser(w, label = 'cg') {
  const username = `${label}-${uniq()}@example.com`;
  const r = await w.admin('POST', '/admin/users', { username, password: PASSWORD, email: username, name: `${label} person` });
  assert.equal(r.status, 201, r.text);
  return { ...r.json, username, password: PASSWORD };
}

export async function setting(w, fields) {
  const r = await w.admin('PATCH', '/admin/settings', fields);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function parse(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

/** Any request to the worker without following redirects: status, headers, location, text, json. */
export async function call(w, path, { method = 'GET', headers = {}, body, ip, jar } = {}) {
  const h = { ...headers };
  if (ip) h['cf-connecting-ip'] = ip;
  if (jar) h.cookie = jar.header();
  const url = path.startsWith('http') ? path : w.baseUrl + path;
  const r = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  if (jar) jar.store(r);
  const text = await r.text();
  return { status: r.status, headers: r.headers, location: r.headers.get('location'), text, json: parse(text), setCookies: r.headers.getSetCookie() };
}

/** A form POST (application/x-www-form-urlencoded). */
export function postForm(w, path, fields, opts = {}) {
  const body = fields instanceof URLSearchParams ? fields : new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== undefined));
  return call(w, path, { ...opts, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(opts.headers ?? {}) }, body });
}

export const token = (w, fields, opts) => postForm(w, '/services/oauth2/token', fields, opts);
export const introspect = (w, app, tok, extra = {}) => postForm(w, '/services/oauth2/introspect', { token: tok, client_id: app.client_id, client_secret: app.client_secret, ...extra });
export const revoke = (w, tok, extra = {}, opts = {}) => postForm(w, '/services/oauth2/revoke', { token: tok, ...extra }, opts);
export const userinfo = (w, tok) => call(w, '/services/oauth2/userinfo', { headers: { authorization: `Bearer ${tok}` } });
export const basic = (id, secret) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

export async function discovery(w) {
  const r = await call(w, '/.well-known/openid-configuration');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** An RFC 6749 §5.2 error: status, JSON body with `error`, no-store, no token. */
export function assertOAuthError(r, status, error, what = '') {
  const ctx = `${what} ${r.status} ${r.text.slice(0, 400)}`;
  assert.equal(r.status, status, ctx);
  assert.ok(r.json, `JSON body expected: ${ctx}`);
  assert.equal(r.json.error, error, ctx);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, `no-store: ${ctx}`);
  assert.equal(r.json.access_token, undefined, `no access token: ${ctx}`);
  assert.equal(r.json.refresh_token, undefined, `no refresh token: ${ctx}`);
}

/**
 * Logs `user` in through the pages (approving consent) for `app` and returns the browser (jar)
 * and the first code. Later codes for apps this user approved come from `quickCode` without
 * any page.
 */
export async function loginBrowser(w, app, user, params = {}) {
  const jar = new CookieJar();
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: 'st', ...params }, { username: user.username, password: user.password, jar });
  assert.ok(a.code, `no code: ${a.status} ${a.location ?? a.body}`);
  return { jar, code: a.code, a };
}

/**
 * An authorization request by a logged-in browser: consent is approved if asked, so a new app
 * works too. Returns authorize()'s result (code, url, state, error, pages).
 */
export async function codeFor(w, jar, app, params = {}, user) {
  const a = await authorize(w.baseUrl, { response_type: 'code', client_id: app.client_id, redirect_uri: CB, state: `s-${uniq()}`, ...params }, { jar, username: user?.username, password: user?.password });
  return a;
}

/** Code → token response (asserted 200). */
export async function tokensFor(w, jar, app, params = {}, user) {
  const { verifier, challenge } = pkcePair();
  const a = await codeFor(w, jar, app, { code_challenge: challenge, ...params }, user);
  assert.ok(a.code, `no code: ${a.status} ${a.location ?? a.body}`);
  const t = await exchange(w, app, a.code, { code_verifier: verifier, redirect_uri: params.redirect_uri ?? CB });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

export function exchange(w, app, code, extra = {}) {
  return token(w, { grant_type: 'authorization_code', code, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret, ...extra });
}

export function refresh(w, app, rt, extra = {}) {
  return token(w, { grant_type: 'refresh_token', refresh_token: rt, client_id: app.client_id, client_secret: app.client_secret, ...extra });
}

/** An app that runs client credentials as a fresh user; returns { app, user }. */
export async function ccApp(w, overrides = {}) {
  const user = await newUser(w, 'cc');
  const app = await newApp(w, { client_credentials_user: user.username, ...overrides });
  return { app, user };
}

export async function ccToken(w, app, extra = {}) {
  const r = await token(w, { grant_type: 'client_credentials', ...extra }, { headers: basic(app.client_id, app.client_secret) });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** An initial access token for dynamic registration. */
export async function mintIat(w, fields = {}) {
  const r = await w.admin('POST', '/admin/registration-tokens', fields);
  assert.equal(r.status, 201, r.text);
  return r.json.token;
}

/** POST /services/oauth2/register with a JSON body (or `raw`), optional bearer token and IP. */
export function register(w, body, { iat, ip, raw } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (iat) headers.authorization = `Bearer ${iat}`;
  return call(w, '/services/oauth2/register', { method: 'POST', headers, ip, body: raw ?? JSON.stringify(body) });
}

/** The payload of a compact JWT, unverified. */
export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}
export function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

/** Fails the file if the worker panicked. */
export function assertNoPanic(w) {
  assert.doesNotMatch(w.output(), /panicked/, 'the worker must not panic');
}
