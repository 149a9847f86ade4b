// The asset token explorer (/tools/asset-token): plain browser JavaScript, same origin as the
// server, no dependencies. It only calls this server's token endpoint.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_URL = `${location.origin}/services/oauth2/token`;

const b64url = (text) => btoa(unescape(encodeURIComponent(text))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const decodePart = (part) => JSON.parse(decodeURIComponent(escape(atob(part.replace(/-/g, '+').replace(/_/g, '/')))));

function show(id, value) {
  $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** POSTs `fields` to the token endpoint, showing the request and the answer. */
async function post(fields, secretNames = []) {
  const shown = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, secretNames.includes(k) ? '••••' : v]));
  show('request', `POST ${TOKEN_URL}\ncontent-type: application/x-www-form-urlencoded\n\n${new URLSearchParams(shown).toString().replace(/&/g, '\n&')}`);
  const r = await fetch(TOKEN_URL, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  const body = await r.json().catch(() => ({}));
  show('response', `HTTP ${r.status}\n\n${JSON.stringify(body, null, 2)}`);
  if (!r.ok) throw new Error(`${body.error ?? r.status}: ${body.error_description ?? ''}`);
  return body;
}

async function guarded(action) {
  $('error').textContent = '';
  try {
    await action();
  } catch (e) {
    $('error').textContent = e.message;
  }
}

$('get-token').addEventListener('click', () => guarded(async () => {
  const body = await post({ grant_type: 'client_credentials', client_id: $('client_id').value.trim(), client_secret: $('client_secret').value }, ['client_secret']);
  $('access_token').value = body.access_token;
}));

$('exchange').addEventListener('click', () => guarded(async () => {
  let actor = $('actor_token').value.trim();
  if (!actor) {
    const claims = { did: $('did').value.trim(), Name: $('name').value.trim(), Asset: { Name: $('name').value.trim(), SerialNumber: $('serial').value.trim() } };
    actor = `${b64url(JSON.stringify({ alg: 'none' }))}.${b64url(JSON.stringify(claims))}.`;
  }
  const body = await post({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: $('access_token').value.trim(),
    actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    actor_token: actor,
  });
  const [header, claims] = body.access_token.split('.');
  show('asset-header', decodePart(header));
  show('asset-claims', decodePart(claims));
}));
