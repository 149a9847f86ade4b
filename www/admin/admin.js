// The operator console at /admin: the admin API (docs/admin-api.md) from a browser tab.
// Plain DOM and no framework. Everything put into the page is built with createElement and
// text nodes (never innerHTML), so no value from the API is ever parsed as HTML. The admin
// token lives in this tab's sessionStorage and goes out only as a bearer token (no cookie;
// fetches omit the origin's cookies).

const TOKEN_KEY = 'edge-oauth-admin:token';
const $ = (id) => document.getElementById(id);

// --- DOM helpers ------------------------------------------------------------------------------

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden']);

/** h('tag', {attr: v, onclick: fn}, ...children): strings become text nodes, null is skipped. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (PROPS.has(k)) el[k] = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v != null && v !== false) el.setAttribute(k, String(v));
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

let uid = 0;
const nextId = (base) => `${base}-${++uid}`;

/** A view's heading; focused when the view opens so keyboard and screen reader users land there. */
const heading = (text) => h('h2', { tabindex: -1 }, text);

const time = (s) => (s == null ? '—' : new Date(s * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);
const dash = (v) => (v == null || v === '' ? '—' : v);

/** A scrollable table (wide tables scroll inside, the page does not). */
function table(label, head, rows) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: 0 },
    h('table', {}, h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows)));
}

/** A labelled input (or select/textarea given as `control`), with an optional hint. */
function field(label, control, hint) {
  control.id ||= nextId('f');
  const hintEl = hint && h('p', { class: 'hint', id: `${control.id}-hint` }, hint);
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

const checkbox = (label, checked, hint) => {
  const input = h('input', { type: 'checkbox', checked: !!checked });
  return { input, el: h('div', { class: 'field' }, h('label', { class: 'check' }, input, label), hint && h('p', { class: 'hint' }, hint)) };
};

const numberInput = (value, min, max) => h('input', { type: 'number', inputmode: 'numeric', step: 1, min, max, value: value ?? '' });

/** Text shown once (a secret): selectable with one click. */
const once = (label, value, id) => [h('dt', {}, label), h('dd', {}, h('code', { class: 'once-value', id }, value))];

// --- Messages, errors, API ----------------------------------------------------------------------

function say(text) {
  $('notice').textContent = text ?? '';
}

function fail(e) {
  $('error').textContent = e?.message ?? String(e);
}

function clearMessages() {
  $('error').textContent = '';
  say('');
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error_description ?? `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = body?.error;
  }
}

/** A request to the admin API; a 401 signs out (back to the sign-in form, with the reason). */
async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    signOut('Sign in first.');
    throw new ApiError(401, { error_description: 'Sign in first.' });
  }
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, credentials: 'omit', cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.ok) return data;
  const err = new ApiError(r.status, data);
  if (r.status === 401) signOut(`Signed out: the admin token was refused (${err.message}).`);
  throw err;
}

/** Runs an action: clears old messages, shows an error in the alert region, keeps a 401's message. */
async function run(fn) {
  clearMessages();
  try {
    await fn();
  } catch (e) {
    if (e?.status !== 401) fail(e);
  }
}

/** A form's submit handler, with its submit button disabled while the request runs. */
function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = form.querySelectorAll('button[type=submit]');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await run(() => fn(ev));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

const button = (text, onclick, attrs = {}) => h('button', { type: 'button', onclick: () => run(onclick), ...attrs }, text);

// --- Sign-in, navigation ---------------------------------------------------------------------

let generation = 0;

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  generation++;
  $('view').replaceChildren();
  $('view').hidden = true;
  $('nav').hidden = true;
  $('signin').hidden = false;
  $('error').textContent = message ?? '';
  $('admin-token').focus();
}

async function signIn() {
  const input = $('admin-token');
  const token = input.value.trim();
  if (!token) throw new Error('Enter the admin token.');
  const r = await fetch('/admin/settings', { headers: { authorization: `Bearer ${token}` }, credentials: 'omit', cache: 'no-store' });
  if (!r.ok) {
    const err = new ApiError(r.status, await r.json().catch(() => null));
    throw new Error(r.status === 401 ? `Sign-in failed: the admin token was refused (${err.message}).` : err.message);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = '';
  await route();
}

/**
 * Replaces the view's content (a section, a form, a result) and focuses its heading. A section
 * still loading for an earlier click is dropped: what the operator asked for last wins.
 */
function show(section) {
  if (!sessionStorage.getItem(TOKEN_KEY)) return; // signed out while it loaded
  generation++;
  $('view').replaceChildren(section);
  section.querySelector('h2')?.focus();
}

async function route() {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    signOut();
    return;
  }
  const name = Object.hasOwn(VIEWS, location.hash.slice(1)) ? location.hash.slice(1) : 'apps';
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.hash === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('view').hidden = false;
  const mine = ++generation;
  await run(async () => {
    try {
      const section = await VIEWS[name]();
      if (mine === generation) show(section);
    } catch (e) {
      // The section's heading alone; the alert says what went wrong.
      if (mine === generation && e?.status !== 401) show(h('section', {}, heading($('nav').querySelector(`a[href="#${name}"]`).textContent)));
      throw e;
    }
  });
}

// --- Apps ------------------------------------------------------------------------------------

const APP_DEFAULTS = {
  name: '', callback_urls: [], scopes: [], pkce_required: false, secret_required_web_server: true,
  secret_required_refresh: true, permitted_users: 'all_self_authorize', refresh_token_policy: 'infinite',
  rotate_refresh_tokens: false, refresh_reuse_grace_s: 0, access_token_ttl_s: 7200, id_token_ttl_s: 120,
  jwt_access_tokens: false, allowed_origins: [], client_credentials_user: null, certificate: null,
  asset_tokens: null, device_flow: true, introspect_all_tokens: false,
};

/** The app form's fields, in groups: [key, kind, label, extra]. */
const APP_GROUPS = [
  ['App', [
    ['name', 'text', 'Name'],
    ['callback_urls', 'lines', 'Callback URLs', 'One per line: https, http only for localhost/127.0.0.1, or a native app scheme.'],
    ['scopes', 'lines', 'Scopes', 'One per line, e.g. openid, profile, email, api, refresh_token.'],
  ]],
  ['Flows and secrets', [
    ['pkce_required', 'bool', 'PKCE required'],
    ['secret_required_web_server', 'bool', 'Secret required for the web server flow', 'Untick for a public client (single-page or native app) that proves itself with PKCE.'],
    ['secret_required_refresh', 'bool', 'Secret required for the refresh token flow', 'Untick for a public client; it then needs rotating refresh tokens.'],
    ['device_flow', 'bool', 'Enable for device flow'],
    ['jwt_access_tokens', 'bool', 'JWT access tokens'],
    ['introspect_all_tokens', 'bool', 'May introspect every client\'s tokens'],
    ['permitted_users', 'select', 'Permitted users', [['all_self_authorize', 'All users may self-authorize'], ['admin_approved', 'Admin-approved users are pre-authorized']]],
    ['client_credentials_user', 'nullable', 'Client credentials run-as user', 'A username; empty: the client credentials grant is refused.'],
  ]],
  ['Tokens', [
    ['access_token_ttl_s', 'number', 'Access token lifetime (seconds)', [60, 2592000]],
    ['id_token_ttl_s', 'number', 'ID token lifetime (seconds)', [60, 43200]],
    ['refresh_token_policy', 'refresh', 'Refresh token policy'],
    ['rotate_refresh_tokens', 'bool', 'Rotate refresh tokens'],
    ['refresh_reuse_grace_s', 'number', 'Refresh token reuse grace (seconds)', [0, 60]],
  ]],
  ['Browsers and keys', [
    ['allowed_origins', 'lines', 'Allowed origins (CORS)', 'One per line, exactly as browsers send it: https://app.example.com'],
    ['certificate', 'cert', 'Certificate or public key'],
    ['asset_tokens', 'json', 'Asset tokens (JSON)', 'Empty: the asset token flow is off. {"audiences": [...], "ttl_s": 600, "actor_keys": [...], "allow_unsigned": false}'],
  ]],
];

const REFRESH_KINDS = [
  ['infinite', 'Valid until revoked'],
  ['zero', 'Immediately expire (no refresh tokens)'],
  ['lifetime_s', 'Expire after a lifetime'],
  ['inactivity_s', 'Expire after inactivity'],
];

/** One app field: {el, read()}; read() throws an Error naming the field when the input is unusable. */
function appField([key, kind, label, extra], value) {
  const wholeNumber = (input, what) => {
    const n = Number(input.value);
    if (input.value.trim() === '' || !Number.isInteger(n)) throw new Error(`${what}: enter a whole number.`);
    return n;
  };
  switch (kind) {
    case 'text': {
      const input = h('input', { type: 'text', value: value ?? '', autocomplete: 'off' });
      return { el: field(label, input, extra), read: () => input.value.trim() };
    }
    case 'nullable': {
      const input = h('input', { type: 'text', value: value ?? '', autocomplete: 'off' });
      return { el: field(label, input, extra), read: () => input.value.trim() || null };
    }
    case 'lines': {
      const area = h('textarea', { rows: 3, spellcheck: 'false', value: (value ?? []).join('\n') });
      return { el: field(label, area, extra), read: () => lines(area.value) };
    }
    case 'bool': {
      const c = checkbox(label, value, extra);
      return { el: c.el, read: () => c.input.checked };
    }
    case 'number': {
      const input = numberInput(value, extra[0], extra[1]);
      return { el: field(label, input, `${extra[0]} to ${extra[1]}`), read: () => wholeNumber(input, label) };
    }
    case 'select': {
      const select = h('select', {}, extra.map(([v, t]) => h('option', { value: v }, t)));
      select.value = value;
      return { el: field(label, select), read: () => select.value };
    }
    case 'refresh': {
      const current = typeof value === 'string' ? value : Object.keys(value ?? {})[0] ?? 'infinite';
      const select = h('select', {}, REFRESH_KINDS.map(([v, t]) => h('option', { value: v }, t)));
      select.value = current;
      const seconds = numberInput(typeof value === 'object' && value ? value[current] : '', 1, 315360000);
      const sync = () => { seconds.disabled = !select.value.endsWith('_s'); };
      select.addEventListener('change', sync);
      sync();
      return {
        el: h('fieldset', { class: 'inline' }, h('legend', {}, label), field('Policy', select), field('Seconds', seconds, 'For a lifetime or inactivity policy: 1 to 315360000.')),
        read: () => (select.value.endsWith('_s') ? { [select.value]: wholeNumber(seconds, 'Refresh token policy seconds') } : select.value),
      };
    }
    case 'cert': {
      const area = h('textarea', { rows: 4, spellcheck: 'false', value: value ?? '' });
      const file = h('input', { type: 'file', accept: '.pem,.crt,.cer,.pub,.json,application/x-pem-file,application/json' });
      file.addEventListener('change', () => run(async () => {
        const f = file.files?.[0];
        if (!f) return;
        if (f.size > 64 * 1024) throw new Error(`${f.name} is too large for a certificate (over 64 KiB).`);
        area.value = (await f.text()).trim();
        say(`Read ${f.name} into the certificate field; Save to store it.`);
      }));
      return {
        el: h('div', {}, field(label, area, 'PEM CERTIFICATE or PUBLIC KEY blocks, a JWK or a JWK Set. Empty: none.'), field('Load a PEM file', file)),
        read: () => area.value.trim() || null,
      };
    }
    case 'json': {
      const area = h('textarea', { rows: 3, spellcheck: 'false', value: value == null ? '' : JSON.stringify(value, null, 2) });
      const read = () => {
        if (!area.value.trim()) return null;
        try { return JSON.parse(area.value); } catch (e) { throw new Error(`${label}: not valid JSON (${e.message}).`); }
      };
      return { el: field(label, area, extra), read };
    }
    default:
      throw new Error(`unknown field kind ${kind}`);
  }
}

async function appsView() {
  const { apps } = await api('GET', '/admin/apps');
  return h('section', {}, heading('Apps'),
    button('New app', () => show(appForm(null))),
    apps.length === 0 ? h('p', { class: 'muted' }, 'No apps yet.') : table('Apps', ['Name', 'Client ID', 'Created', ''], apps.map((a) => h('tr', {},
      h('td', {}, a.name), h('td', {}, h('code', {}, a.client_id)), h('td', {}, time(a.created_at)),
      h('td', {}, button('Edit', () => openApp(a.client_id), { class: 'small secondary', 'aria-label': `Edit ${a.name}` }))))));
}

async function openApp(clientId) {
  show(appForm(await api('GET', `/admin/apps/${encodeURIComponent(clientId)}`)));
}

/** The new-app form (app = null) or the edit form of an app. */
function appForm(app) {
  const current = app ?? APP_DEFAULTS;
  const fields = APP_GROUPS.flatMap(([, list]) => list.map((def) => [def[0], appField(def, current[def[0]])]));
  const byKey = Object.fromEntries(fields);
  const clientId = !app && h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { class: 'app-form', novalidate: true },
    APP_GROUPS.map(([legend, list], i) => h('fieldset', {}, h('legend', {}, legend),
      i === 0 && clientId && field('Client ID (optional)', clientId, 'Leave empty for a generated one, or keep an existing consumer key: A-Z a-z 0-9 - . _ ~'),
      list.map(([key]) => byKey[key].el))),
    h('button', { type: 'submit' }, app ? 'Save' : 'Create'),
    button('Cancel', () => route(), { class: 'secondary' }));
  onSubmit(form, async () => {
    const values = Object.fromEntries(fields.map(([k, f]) => [k, f.read()]));
    if (!app) {
      if (clientId.value.trim()) values.client_id = clientId.value.trim();
      const created = await api('POST', '/admin/apps', values);
      show(secretShown(`App created: ${created.name}`, created));
      return;
    }
    const changed = Object.fromEntries(Object.entries(values).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(app[k] ?? null)));
    if (Object.keys(changed).length === 0) {
      say('Nothing changed.');
      return;
    }
    const saved = await api('PATCH', `/admin/apps/${encodeURIComponent(app.client_id)}`, changed);
    show(appForm(saved));
    say(`Saved ${Object.keys(changed).join(', ')}.`);
  });
  if (!app) return h('section', {}, heading('New app'), form);
  const path = `/admin/apps/${encodeURIComponent(app.client_id)}`;
  return h('section', {}, heading(`App: ${app.name}`),
    h('dl', { class: 'facts' }, h('dt', {}, 'Client ID'), h('dd', {}, h('code', {}, app.client_id)),
      h('dt', {}, 'Created'), h('dd', {}, time(app.created_at)),
      app.registration && [h('dt', {}, 'Registered itself'), h('dd', {}, h('pre', {}, JSON.stringify(app.registration, null, 2)))]),
    form,
    h('h3', {}, 'Secret and deletion'),
    button('Rotate secret', async () => {
      if (!confirm(`Replace the client secret of ${app.name}? The old secret stops working at once.`)) return;
      show(secretShown(`New secret for ${app.name}`, await api('POST', `${path}/secret`)));
    }, { class: 'secondary' }),
    button('Delete app', async () => {
      if (!confirm(`Delete ${app.name}? Every token issued to it stops working.`)) return;
      await api('DELETE', path);
      await route();
      say(`Deleted ${app.name}.`);
    }, { class: 'danger' }));
}

/** An app's client_id and client_secret, shown once (the secret is not kept anywhere). */
function secretShown(title, app) {
  return h('section', {}, heading(title),
    h('div', { class: 'once' },
      h('p', {}, h('strong', {}, 'Copy the client secret now: it is shown only this once.')),
      h('dl', {}, once('Client ID', app.client_id, 'shown-client-id'), once('Client secret', app.client_secret, 'shown-client-secret'))),
    button('Edit app', () => openApp(app.client_id), { class: 'secondary' }),
    button('Back to apps', () => route(), { class: 'secondary' }));
}

// --- Users -----------------------------------------------------------------------------------

async function usersView() {
  const { users } = await api('GET', '/admin/users');
  return h('section', {}, heading('Users'),
    button('New user', () => show(userForm())),
    users.length === 0 ? h('p', { class: 'muted' }, 'No users yet.') : table('Users', ['Username', 'Name', 'Email', 'Active', 'User ID', ''], users.map((u) => h('tr', {},
      h('td', {}, u.username), h('td', {}, u.name), h('td', {}, u.email), h('td', {}, u.active ? 'yes' : 'no'),
      h('td', {}, h('code', {}, u.user_id)),
      h('td', {}, button('Manage', () => openUser(u.user_id), { class: 'small secondary', 'aria-label': `Manage ${u.username}` }))))));
}

function userForm() {
  const inputs = {
    username: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', required: true }),
    password: h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }),
    email: h('input', { type: 'email', autocomplete: 'off', required: true }),
    name: h('input', { type: 'text', autocomplete: 'off', required: true }),
  };
  const form = h('form', { novalidate: true },
    field('Username', inputs.username), field('Password', inputs.password, 'At least 8 characters.'),
    field('Email', inputs.email), field('Full name', inputs.name),
    h('button', { type: 'submit' }, 'Create user'),
    button('Cancel', () => route(), { class: 'secondary' }));
  onSubmit(form, async () => {
    const body = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, k === 'password' ? i.value : i.value.trim()]));
    const user = await api('POST', '/admin/users', body);
    await openUser(user.user_id);
    say(`Created user ${user.username}.`);
  });
  return h('section', {}, heading('New user'), form);
}

async function openUser(userId) {
  const path = `/admin/users/${encodeURIComponent(userId)}`;
  const [user, { apps }] = await Promise.all([api('GET', path), api('GET', '/admin/apps')]);
  const password = h('input', { type: 'password', autocomplete: 'new-password', minlength: 8 });
  const reset = onSubmit(h('form', { novalidate: true }, field('New password', password, 'Ends every session of the user and revokes their tokens.'),
    h('button', { type: 'submit' }, 'Reset password')), async () => {
    await api('PATCH', path, { password: password.value });
    password.value = '';
    say(`Password of ${user.username} reset; their sessions and tokens are revoked.`);
  });
  const appSelect = h('select', {}, apps.map((a) => h('option', { value: a.client_id }, `${a.name} (${a.client_id.slice(0, 24)}${a.client_id.length > 24 ? '…' : ''})`)));
  const preauth = onSubmit(h('form', {}, field('App', appSelect, 'For apps whose permitted users are admin-approved.'),
    h('button', { type: 'submit', disabled: apps.length === 0 }, 'Pre-authorize')), async () => {
    await api('POST', `/admin/apps/${encodeURIComponent(appSelect.value)}/users/${encodeURIComponent(user.user_id)}`);
    say(`${user.username} is pre-authorized for ${appSelect.selectedOptions[0]?.textContent}.`);
  });
  show(h('section', {}, heading(`User: ${user.username}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'User ID'), h('dd', {}, h('code', {}, user.user_id)),
      h('dt', {}, 'Name'), h('dd', {}, user.name), h('dt', {}, 'Email'), h('dd', {}, user.email),
      h('dt', {}, 'Active'), h('dd', {}, user.active ? 'yes' : 'no'), h('dt', {}, 'Created'), h('dd', {}, time(user.created_at))),
    user.active
      ? button('Deactivate', async () => {
        if (!confirm(`Deactivate ${user.username}? Their sessions end and their tokens are revoked.`)) return;
        await api('DELETE', path);
        await openUser(userId);
        say(`${user.username} is deactivated.`);
      }, { class: 'danger' })
      : button('Reactivate', async () => {
        await api('PATCH', path, { active: true });
        await openUser(userId);
        say(`${user.username} may log in again.`);
      }, { class: 'secondary' }),
    h('h3', {}, 'Reset password'), reset,
    h('h3', {}, 'Pre-authorize for an app'), preauth,
    button('Back to users', () => route(), { class: 'secondary' })));
}

// --- Settings --------------------------------------------------------------------------------

const SETTINGS = {
  require_pkce: ['Require PKCE for every code flow', 'Refuses code flows without code_challenge, whatever the app says.'],
  allow_username_password_flow: ['Allow the username-password flow', 'The password grant at the token endpoint.'],
  allow_user_agent_flow: ['Allow the user-agent flow', 'response_type token, token id_token and hybrid_token.'],
  allow_code_credentials_flow: ['Allow the code credentials (headless) flow', 'response_type code_credentials.'],
  open_registration: ['Open dynamic registration', 'Anyone may register a client without an initial access token.'],
  client_id_metadata_document_prefixes: ['Client ID metadata document prefixes', 'One URL prefix per line (with a path); empty: any URL.'],
};

async function settingsView() {
  const settings = await api('GET', '/admin/settings');
  const read = [];
  const controls = [];
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'org_id') continue;
    const [label, hint] = SETTINGS[key] ?? [key.replace(/_/g, ' ')];
    if (typeof value === 'boolean') {
      const c = checkbox(label, value, hint);
      controls.push(c.el);
      read.push([key, () => c.input.checked]);
    } else if (Array.isArray(value)) {
      const area = h('textarea', { rows: 3, spellcheck: 'false', value: value.join('\n') });
      controls.push(field(label, area, hint));
      read.push([key, () => lines(area.value)]);
    }
  }
  const form = h('form', {}, h('fieldset', {}, h('legend', {}, 'Org switches'), controls), h('button', { type: 'submit' }, 'Save'));
  onSubmit(form, async () => {
    const changed = Object.fromEntries(read.map(([k, f]) => [k, f()]).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(settings[k])));
    if (Object.keys(changed).length === 0) {
      say('Nothing changed.');
      return;
    }
    const saved = await api('PATCH', '/admin/settings', changed);
    Object.assign(settings, saved);
    say(`Saved ${Object.keys(changed).join(', ')}. Other isolates apply it within 30 s.`);
  });
  return h('section', {}, heading('Settings'),
    h('p', { class: 'muted' }, 'Org ID ', h('code', {}, settings.org_id)), form);
}

// --- Signing keys ------------------------------------------------------------------------------

async function keysView() {
  const { keys, jwks_max_age_s: maxAge } = await api('GET', '/admin/keys');
  const path = (k) => `/admin/keys/${encodeURIComponent(k.kid)}`;
  const actions = (k) => {
    if (k.source !== 'managed' || k.status === 'active') return [];
    const out = [];
    if (k.status === 'pending' && k.activates_at == null) {
      out.push(button('Activate', async () => {
        const key = await api('POST', `${path(k)}/activate`);
        await route();
        say(`Key ${key.kid} signs from ${time(key.activates_at)}.`);
      }, { class: 'small secondary', 'aria-label': `Activate ${k.kid}` }));
    }
    out.push(button('Delete', async () => {
      if (!confirm(`Delete key ${k.kid}? Tokens it signed no longer verify.`)) return;
      await api('DELETE', path(k));
      await route();
      say(`Deleted key ${k.kid}.`);
    }, { class: 'small danger', 'aria-label': `Delete ${k.kid}` }));
    return out;
  };
  return h('section', {}, heading('Signing keys'),
    h('p', { class: 'muted' }, `A new key is published for ${maxAge} s (the JWKS cache lifetime) before it signs; the old key stays published so its tokens keep verifying.`),
    button('Rotate signing key', async () => {
      const key = await api('POST', '/admin/keys', { activate: true });
      await route();
      say(`New ${key.alg} key ${key.kid} is published; it signs from ${time(key.activates_at)}.`);
    }),
    keys.length === 0 ? h('p', { class: 'muted' }, 'No signing keys.') : table('Signing keys',
      ['Key ID', 'Algorithm', 'Source', 'Status', 'Created', 'Signs from', 'Retired', 'Published until', ''],
      keys.map((k) => h('tr', { 'data-kid': k.kid, 'data-status': k.status },
        h('td', {}, h('code', {}, k.kid)), h('td', {}, k.alg), h('td', {}, k.source),
        h('td', { class: 'status' }, k.status), h('td', {}, time(k.created_at)), h('td', {}, time(k.activates_at)),
        h('td', {}, time(k.retired_at)), h('td', {}, time(k.published_until)), h('td', {}, actions(k))))));
}

// --- Registration tokens -------------------------------------------------------------------

async function registrationTokensView() {
  const expires = numberInput(86400, 60, 31536000);
  const maxUses = numberInput('', 1);
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', { novalidate: true },
    field('Expires in (seconds)', expires, '60 to 31536000 (one year).'),
    field('Maximum uses', maxUses, 'Empty: any number of registrations until it expires.'),
    h('button', { type: 'submit' }, 'Create token'));
  onSubmit(form, async () => {
    const body = { expires_in_s: Number(expires.value) };
    if (maxUses.value.trim()) body.max_uses = Number(maxUses.value);
    const t = await api('POST', '/admin/registration-tokens', body);
    result.replaceChildren(h('div', { class: 'once' },
      h('p', {}, h('strong', {}, 'Copy the token now: it is shown only this once.')),
      h('dl', {}, once('Initial access token', t.token, 'shown-registration-token'),
        h('dt', {}, 'Expires'), h('dd', {}, time(t.expires_at)),
        h('dt', {}, 'Maximum uses'), h('dd', {}, t.max_uses ?? 'unlimited'))));
  });
  return h('section', {}, heading('Registration tokens'),
    h('p', { class: 'muted' }, 'Initial access tokens for dynamic client registration (POST /services/oauth2/register, as a bearer token). They are stored hashed and cannot be listed.'),
    form, result);
}

// --- Audit -----------------------------------------------------------------------------------

const AUDIT_KINDS = ['login', 'consent', 'token', 'revoke', 'admin'];
const auditFilter = { user: '', client: '', kind: '' };

async function auditView() {
  const user = h('input', { type: 'text', value: auditFilter.user, spellcheck: 'false', autocomplete: 'off' });
  const client = h('input', { type: 'text', value: auditFilter.client, spellcheck: 'false', autocomplete: 'off' });
  const kind = h('select', {}, h('option', { value: '' }, 'Any'), AUDIT_KINDS.map((k) => h('option', { value: k }, k)));
  kind.value = auditFilter.kind;
  const filters = h('form', { class: 'filters' }, h('div', { class: 'row' },
    field('User ID', user), field('Client ID', client), field('Kind', kind)), h('button', { type: 'submit' }, 'Filter'));
  onSubmit(filters, async () => {
    Object.assign(auditFilter, { user: user.value.trim(), client: client.value.trim(), kind: kind.value });
    await route();
  });
  const query = (before) => {
    const q = new URLSearchParams({ limit: '50' });
    for (const [k, v] of Object.entries(auditFilter)) if (v) q.set(k, v);
    if (before) q.set('before', before);
    return `/admin/audit?${q}`;
  };
  const page = await api('GET', query());
  const rows = (events) => events.map((e) => h('tr', { 'data-kind': e.kind },
    h('td', {}, time(e.at)), h('td', {}, e.kind), h('td', {}, e.outcome), h('td', {}, dash(e.actor)),
    h('td', {}, e.user_id ? h('code', {}, e.user_id) : '—'), h('td', {}, e.client_id ? h('code', {}, e.client_id) : '—'),
    h('td', {}, dash(e.ip)), h('td', {}, typeof e.detail === 'string' ? dash(e.detail) : JSON.stringify(e.detail))));
  const body = h('tbody', {}, rows(page.events));
  let next = page.next;
  const older = button('Older', async () => {
    const more = await api('GET', query(next));
    body.append(...rows(more.events));
    next = more.next;
    older.hidden = !next;
  }, { class: 'secondary', hidden: !next });
  const list = page.events.length === 0 ? h('p', { class: 'muted' }, 'No events.')
    : h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Audit events', tabindex: 0 },
      h('table', {}, h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Outcome', 'Actor', 'User', 'Client', 'IP', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))), body));
  return h('section', {}, heading('Audit'), filters, list, older);
}

// --- Start -----------------------------------------------------------------------------------

const VIEWS = {
  apps: appsView, users: usersView, settings: settingsView, keys: keysView,
  'registration-tokens': registrationTokensView, audit: auditView,
};

onSubmit($('signin'), signIn);
$('signout').addEventListener('click', () => {
  signOut();
  say('Signed out.');
});
window.addEventListener('hashchange', route);
// A click on the section already shown reloads it (no hashchange then).
$('nav').addEventListener('click', (ev) => {
  const a = ev.target.closest('a');
  if (a && a.hash === location.hash) {
    ev.preventDefault();
    route();
  }
});
route();
