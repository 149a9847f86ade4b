// A scripted, browserless walk through the authorize → login → consent → code pages over real
// HTTP, with a minimal cookie jar. Browser tests (Playwright) drive the same pages for real;
// this helper lets API-level tests get codes and tokens quickly.
import { createHash, randomBytes } from 'node:crypto';

export function pkcePair(bytes = 32) {
  const verifier = randomBytes(bytes).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export class CookieJar {
  constructor() { this.cookies = new Map(); }
  store(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

/** Hidden inputs of the first form on a page. */
export function formFields(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]] = m[2];
  return fields;
}

/**
 * Runs the authorization request `params` for `username`/`password`, approving consent if
 * asked. Returns { location, url, code, state, jar, pages } where `pages` lists what was shown.
 */
export async function authorize(baseUrl, params, { username, password, jar = new CookieJar(), approve = true } = {}) {
  const pages = [];
  const get = async (url) => {
    const r = await fetch(url, { headers: { cookie: jar.header() }, redirect: 'manual' });
    jar.store(r);
    return r;
  };
  const post = async (fields) => {
    const r = await fetch(`${baseUrl}/services/oauth2/authorize`, {
      method: 'POST',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
      redirect: 'manual',
    });
    jar.store(r);
    return r;
  };
  let r = await get(`${baseUrl}/services/oauth2/authorize?${new URLSearchParams(params)}`);
  // The GET answers 302; the login/consent POSTs answer 303 (RFC 9700 §4.12).
  for (let step = 0; step < 4 && !(r.status >= 300 && r.status < 400); step++) {
    const html = await r.text();
    if (r.status >= 400 && !html.includes('name="login"')) return { status: r.status, body: html, pages, jar };
    if (html.includes('name="password"')) {
      // The login page again after our login POST: the credentials were refused (or throttled).
      if (pages.includes('login')) return { status: r.status, body: html, pages, jar };
      pages.push('login');
      r = await post({ ...formFields(html), username, password, login: '1' });
    } else if (html.includes('name="approve"')) {
      pages.push('consent');
      r = await post({ ...formFields(html), [approve ? 'approve' : 'deny']: '1' });
    } else {
      return { status: r.status, body: html, pages, jar };
    }
  }
  const location = r.headers.get('location');
  const url = location ? new URL(location) : undefined;
  return { status: r.status, location, url, code: url?.searchParams.get('code'), state: url?.searchParams.get('state'), error: url?.searchParams.get('error'), jar, pages };
}

/** POSTs a form to the token endpoint. */
export async function tokenRequest(baseUrl, fields, headers = {}) {
  const r = await fetch(`${baseUrl}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

/** A Set-Cookie header as its name and attribute map (attribute names lower case). */
export function cookieAttrs(setCookie) {
  const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
  const name = pair.slice(0, pair.indexOf('='));
  const map = new Map(attrs.map((a) => {
    const i = a.indexOf('=');
    return i < 0 ? [a.toLowerCase(), true] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)];
  }));
  return { name, attrs: map };
}
