// Helpers for the user-agent, hybrid and headless e2e tests (issue 7): a small "SPA" server on
// another loopback origin, fragment parsing, at_hash, a lenient form parser for the form_post
// page, Chromium launch, and a guard that records every response of the worker.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { chromium } from 'playwright-core';

/** The browser login-session cookie (set by the login page and by frontdoor.jsp). */
export const SESSION_COOKIE = 'eo_sid';

/** Base64url of the left half of SHA-256 (OIDC Core §3.1.3.6 / §3.2.2.9 at_hash). */
export function halfHash(token) {
  return createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url');
}

/** The fields of a redirect's fragment (form-urlencoded), as URLSearchParams. */
export function fragmentOf(location) {
  const i = location.indexOf('#');
  return new URLSearchParams(i < 0 ? '' : location.slice(i + 1));
}

/** The fields of a redirect's query (before any fragment), as URLSearchParams. */
export function queryOf(location) {
  const noFrag = location.split('#')[0];
  const i = noFrag.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : noFrag.slice(i + 1));
}

/** A redirect target without its query and fragment. */
export function baseOf(location) {
  return location.split('#')[0].split('?')[0];
}

function decodeEntities(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x2F;|&#47;/g, '/')
    .replace(/&#(\d+);/g, (_, d) => String.fromCharCode(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&amp;/g, '&');
}

/** The attributes of an HTML start tag's text (`<input a="b" c>`), names lower-cased. */
function attrsOf(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    if (m.index === 0) continue; // the tag name
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * The forms of a page: [{ method, action, fields: {name: value} }] (hidden inputs), whatever
 * the attribute order or quoting.
 */
export function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrsOf(`<form ${m[1]}`);
    const fields = {};
    for (const im of m[2].matchAll(/<input\b[^>]*>/gi)) {
      const ia = attrsOf(im[0].replace(/\/?>$/, ''));
      if (ia.name !== undefined && (ia.type ?? '').toLowerCase() === 'hidden') fields[ia.name] = ia.value ?? '';
    }
    forms.push({ method: (a.method ?? 'get').toLowerCase(), action: a.action, fields });
  }
  return forms;
}

/** The texts of the inline scripts of a page. */
export function inlineScripts(html) {
  return [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].filter((m) => !/\bsrc\s*=/.test(m[1])).map((m) => m[2]);
}

/** `'sha256-…'` CSP source of an inline script's text. */
export function cspHash(script) {
  return `'sha256-${createHash('sha256').update(script, 'utf8').digest('base64')}'`;
}

/**
 * The "SPA origin": a static server on its own loopback port.
 *  - GET /start?<authorize params>: a page that, on load, navigates to the worker's
 *    /services/oauth2/authorize with those params and redirect_uri = this origin's /cb
 *    (unless redirect_uri was given).
 *  - GET /cb: a page that parses location.hash into window.result (and the query into
 *    window.query), and sets document.title to "cb:tokens", "cb:error" or "cb:none". The
 *    request (with its query) is recorded in `gets`.
 *  - POST /cb: the form body is recorded in `posts` ({ url, contentType, origin, fields }).
 */
export async function startSpaServer(workerUrl) {
  const gets = [];
  const posts = [];
  const getWaiters = [];
  const postWaiters = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (req.method === 'GET' && url.pathname === '/start') {
      const page = `<!doctype html><html><head><meta charset="utf-8"><title>spa</title></head><body>
<p>Redirecting to sign in…</p>
<script>
  const p = new URLSearchParams(location.search);
  if (!p.has('redirect_uri')) p.set('redirect_uri', location.origin + '/cb');
  location.assign(${JSON.stringify(workerUrl)} + '/services/oauth2/authorize?' + p.toString());
</script></body></html>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
      return;
    }
    if (url.pathname === '/cb' && req.method === 'GET') {
      gets.push(url);
      for (const w of getWaiters.splice(0)) w(url);
      const page = `<!doctype html><html><head><meta charset="utf-8"><title>cb</title></head><body>
<script>
  const h = new URLSearchParams(location.hash.slice(1));
  const all = {};
  for (const [k, v] of h) (all[k] ??= []).push(v);
  window.rawHash = location.hash;
  window.query = Object.fromEntries(new URLSearchParams(location.search));
  window.result = { fields: Object.fromEntries(h), all };
  document.title = 'cb:' + (h.has('access_token') ? 'tokens' : h.has('error') ? 'error' : 'none');
</script></body></html>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
      return;
    }
    if (url.pathname === '/cb' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const entry = {
          url,
          contentType: req.headers['content-type'] ?? '',
          origin: req.headers.origin,
          fields: Object.fromEntries(new URLSearchParams(body)),
          raw: body,
        };
        posts.push(entry);
        for (const w of postWaiters.splice(0)) w(entry);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>posted</title><p>form post received</p>');
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const waitFor = (list) => (timeoutMs = 20000) => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('nothing reached the SPA /cb in time')), timeoutMs);
    list.push((v) => { clearTimeout(t); resolve(v); });
  });
  return {
    origin,
    cbUrl: `${origin}/cb`,
    gets,
    posts,
    /** Resolves with the next GET /cb URL. Call before triggering the navigation. */
    nextGet: waitFor(getWaiters),
    /** Resolves with the next POST /cb entry. Call before triggering the navigation. */
    nextPost: waitFor(postWaiters),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
}

/**
 * Records every response of the worker (through fetch, which the harness and flow helpers use)
 * and fails at once on a 5xx. `baseUrl()` returns the worker's URL (or undefined before start).
 * Browser responses are added with `watchContext(context)`.
 */
export function guardResponses(baseUrl) {
  const seen = [];
  const bad = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init = {}) => {
    const r = await realFetch(input, init);
    const url = String(input?.url ?? input);
    const base = baseUrl();
    if (base && url.startsWith(base)) {
      const what = `${init.method ?? 'GET'} ${url.slice(base.length, base.length + 120)} → ${r.status}`;
      seen.push(what);
      if (r.status >= 500) {
        const text = await r.clone().text();
        bad.push(`${what}: ${text.slice(0, 300)}`);
        assert.fail(`5xx from the worker: ${what}: ${text.slice(0, 300)}`);
      }
    }
    return r;
  };
  return {
    seen,
    bad,
    watchContext(context) {
      context.on('response', (r) => {
        const base = baseUrl();
        if (!base || !r.url().startsWith(base)) return;
        const what = `browser ${r.request().method()} ${r.url().slice(base.length, base.length + 120)} → ${r.status()}`;
        seen.push(what);
        if (r.status() >= 500) bad.push(what);
      });
    },
    restore() { globalThis.fetch = realFetch; },
  };
}

/** A raw fetch to the worker without following redirects; returns status, headers, text, json. */
export async function raw(url, init = {}) {
  const r = await fetch(url, { redirect: 'manual', ...init });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, location: r.headers.get('location'), text, json, setCookies: r.headers.getSetCookie() };
}

/** Set-Cookie headers that set (not clear) the session cookie. */
export function sessionCookiesSet(setCookies) {
  return setCookies.filter((c) => {
    const [pair, ...attrs] = c.split(';').map((s) => s.trim());
    const i = pair.indexOf('=');
    if (pair.slice(0, i) !== SESSION_COOKIE || pair.slice(i + 1) === '') return false;
    return !attrs.some((a) => /^max-age=(0|-)/i.test(a) || /^expires=.*19[67]\d/i.test(a));
  });
}

/** POST /services/oauth2/revoke token=… */
export async function revoke(baseUrl, token, extra = {}) {
  return raw(`${baseUrl}/services/oauth2/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...extra }),
  });
}

/** GET /services/oauth2/userinfo with a bearer token. */
export async function userinfo(baseUrl, token) {
  return raw(`${baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${token}` } });
}

/** The discovery document. */
export async function discovery(baseUrl) {
  const r = await raw(`${baseUrl}/.well-known/openid-configuration`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}
