// The demo app at /: the browser bundle (/sdk/edge-oauth.js) logging the demo user in.
// ?client_id= and ?storage= (memory, session, local) pick another app; the default app is the
// one `make dev` seeds, client_id edge-oauth-demo.
import { createClient } from '/sdk/edge-oauth.js';

const $ = (id) => document.getElementById(id);
const show = (id, v) => { $(id).textContent = v == null ? '—' : JSON.stringify(v, null, 2); };
const q = new URLSearchParams(location.search);
for (const k of ['client_id', 'storage']) if (q.has(k)) sessionStorage.setItem(`demo:${k}`, q.get(k));
const fail = (e) => { $('error').textContent = e.error ? `${e.error}: ${e.error_description}` : String(e); };

/** A JWT's payload, for display (the ID token's verified claims come from the client). */
function payload(jwt) {
  try {
    const b = atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(b, (c) => c.charCodeAt(0))));
  } catch { return null; }
}

async function render(client, t) {
  for (const id of ['pkce', 'ua']) $(id).disabled = !!t;
  $('logout').disabled = !t;
  const c = t?.claims;
  $('status').textContent = t ? `Hello, ${c?.name ?? 'you'}` : 'Demo single-page app';
  $('who').textContent = t ? `Logged in as ${c?.name ?? '?'} <${c?.email ?? 'no email'}>` : 'Not logged in.';
  show('id-token', c);
  show('access-token', t && {
    claims: payload(t.access_token) ?? `opaque (${t.access_token.length} characters)`,
    scope: t.scope, expires_at: t.expires_at && new Date(t.expires_at).toISOString(),
    refresh_token: t.refresh_token ? 'present' : 'none',
  });
  show('userinfo', t && await client.userinfo().catch((e) => ({ error: e.error })));
}

if (window.name === 'edge-oauth-login') {
  $('status').textContent = 'Finishing login…';
} else {
  const client = await createClient({
    issuer: location.origin,
    clientId: sessionStorage.getItem('demo:client_id') ?? 'edge-oauth-demo',
    redirectUri: `${location.origin}/`,
    scope: 'openid profile email api refresh_token',
    storage: sessionStorage.getItem('demo:storage') ?? 'session',
  });
  window.demo = { client };
  $('pkce').onclick = () => client.login().catch(fail);
  $('ua').onclick = () => client.loginUserAgent().catch(fail);
  $('logout').onclick = () => client.logout().catch(fail);
  await client.handleCallback().catch(fail);
  await render(client, client.tokens());
  client.addEventListener('tokens', (e) => render(client, e.detail));
}
