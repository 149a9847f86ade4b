// The asset token flow (Salesforce's, RFC 8693 token exchange) against the real worker: a real
// access token (client credentials grant, or a code flow) and an actor token about a device,
// signed with jose by a key registered on the app (ES256 and RS256), are exchanged for an asset
// token that jose verifies with nothing but the published JWKS (issuer, audience, typ asset+jwt);
// the device is recorded as an asset. Shown too: proof of possession of the device key in
// `cnf.jwk`; every refusal (subject token expired, revoked or unknown; actor token badly signed,
// unsigned, expired, without did; an app without asset tokens; wrong token types; another
// client) as an OAuth error with no-store and no token; revocation of an asset (its tokens
// introspect inactive, the device gets no new ones, other devices are unaffected); and the
// explorer page /tools/asset-token driven in headless Chromium under its CSP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { launchChromium } from './ua-helpers.mjs';
import { createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { startTestWorker } from './harness.mjs';
import { authorize, pkcePair, tokenRequest } from './flow.mjs';

const CB = 'http://127.0.0.1:9/cb';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const AUDIENCES = ['https://iot.example.com', 'https://fleet.example.com'];
const SUBJECT_REFUSED = 'the subject token is invalid, expired or revoked';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const unique = (prefix) => `${prefix}-${randomBytes(4).toString('hex')}`;
const nowS = () => Math.floor(Date.now() / 1000);

/** What a device says about itself in its actor token. */
function device(did, { name = 'Kitchen thermostat', serial = `SN-${did}` } = {}) {
  return { did, Name: name, Asset: { Name: name, SerialNumber: serial } };
}

/** A key pair for `alg` (ES256 or RS256) and its public JWK. */
async function keyPair(alg) {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { alg, privateKey, jwk: await exportJWK(publicKey) };
}

/** An actor token with `claims`, signed by `key` (from keyPair). */
function signed(claims, key) {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'JWT' }).sign(key.privateKey);
}

/** An unsigned actor token (`alg: none`, empty signature). */
function unsigned(claims) {
  const part = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

/** The payload of a JWT, undecoded by any check (for tokens that are refused or not ours). */
function payloadOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

describe('asset tokens (RFC 8693 token exchange)', () => {
  let w;
  let jwks;
  let orgId;

  before(async () => {
    w = await startTestWorker();
    jwks = createRemoteJWKSet(new URL(`${w.baseUrl}/id/keys`));
    orgId = (await w.admin('GET', '/admin/settings')).json.org_id;
    assert.match(orgId, /^00D\w{15}$/);
  });

  after(async () => {
    if (!w) return;
    assert.doesNotMatch(w.output(), /panicked/);
    await w.stop();
  });

  /** A new user (unique username). */
  async function newUser() {
    const username = `${unique('asset')}@example.com`;
    const r = await w.admin('POST', '/admin/users', { username, password: 'asset-pass-42', email: username, name: 'Ann Asset' });
    assert.equal(r.status, 201, r.text);
    return r.json;
  }

  /**
   * A new app whose client credentials grant runs as a new user; `asset_tokens` is its asset
   * token policy (none if undefined). Returns the app (client_id, client_secret) and the user.
   */
  async function newApp(asset_tokens, extra = {}) {
    const user = await newUser();
    const r = await w.admin('POST', '/admin/apps', {
      name: unique('Asset App'),
      callback_urls: [CB],
      scopes: ['api'],
      client_credentials_user: user.username,
      ...(asset_tokens ? { asset_tokens } : {}),
      ...extra,
    });
    assert.equal(r.status, 201, r.text);
    return { ...r.json, user };
  }

  /** A real access token of the app's client credentials user. */
  async function clientCredentialsToken(app) {
    const r = await tokenRequest(w.baseUrl, { grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.access_token);
    return r.json.access_token;
  }

  /** A real access token from a code flow (login and consent) of the app's user. */
  async function codeFlowToken(app) {
    const { verifier, challenge } = pkcePair();
    const a = await authorize(
      w.baseUrl,
      { response_type: 'code', client_id: app.client_id, redirect_uri: CB, scope: 'api', state: 'st', code_challenge: challenge, code_challenge_method: 'S256' },
      { username: app.user.username, password: 'asset-pass-42' },
    );
    assert.ok(a.code, `authorize: ${a.status} ${a.location ?? a.body}`);
    const r = await tokenRequest(w.baseUrl, {
      grant_type: 'authorization_code', code: a.code, redirect_uri: CB, client_id: app.client_id, client_secret: app.client_secret, code_verifier: verifier,
    });
    assert.equal(r.status, 200, r.text);
    return r.json.access_token;
  }

  /** The token exchange request; `fields` override or add parameters (undefined drops one). */
  function exchange(subject, actor, fields = {}) {
    const all = { grant_type: EXCHANGE, subject_token_type: ACCESS, subject_token: subject, actor_token_type: JWT, actor_token: actor, ...fields };
    return tokenRequest(w.baseUrl, Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)));
  }

  /** A successful exchange: the asset token, verified with the JWKS only, and its header. */
  async function exchanged(subject, actor, audience = AUDIENCES[0]) {
    const r = await exchange(subject, actor);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const { payload, protectedHeader } = await jwtVerify(r.json.access_token, jwks, { issuer: w.baseUrl, audience, typ: 'asset+jwt' });
    return { body: r.json, token: r.json.access_token, claims: payload, header: protectedHeader };
  }

  async function assets() {
    const r = await w.admin('GET', '/admin/assets');
    assert.equal(r.status, 200, r.text);
    return r.json.assets;
  }

  async function introspect(app, token) {
    const r = await fetch(`${w.baseUrl}/services/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: app.client_id, client_secret: app.client_secret }),
    });
    assert.equal(r.status, 200);
    return r.json();
  }

  /**
   * An OAuth error answer: status, error, exact description, no-store, no token; and, for
   * `did`, that no asset was recorded for that device.
   */
  async function assertRefused(r, status, error, description, { did } = {}) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json?.error, error, r.text);
    assert.equal(r.json.error_description, description);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.json.access_token, undefined);
    assert.equal(r.json.issued_token_type, undefined);
    if (did) assert.equal((await assets()).filter((a) => a.device_id === did).length, 0, `no asset for ${did}`);
  }

  for (const [alg, subjectFrom] of [['ES256', 'client credentials'], ['RS256', 'code flow']]) {
    test(`an access token (${subjectFrom}) and an actor token signed ${alg} by a registered key make an asset token`, async () => {
      const factory = await keyPair(alg);
      const app = await newApp({ audiences: AUDIENCES, ttl_s: 900, actor_keys: [factory.jwk] });
      const access = subjectFrom === 'code flow' ? await codeFlowToken(app) : await clientCredentialsToken(app);
      const did = unique(`dev-${alg}`);
      const actor = await signed({ ...device(did, { serial: 'SN-4242' }), exp: nowS() + 300 }, factory);

      const before = nowS();
      // Verified against the other audience of the app: aud is the app's whole list.
      const { body, token, claims, header } = await exchanged(access, actor, AUDIENCES[1]);
      assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type']);
      assert.equal(body.issued_token_type, JWT);
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.expires_in, 900);

      // Signed by us (RS256, a published kid), whatever the actor token's algorithm was.
      assert.equal(header.alg, 'RS256');
      assert.equal(header.typ, 'asset+jwt');
      const published = (await (await fetch(`${w.baseUrl}/id/keys`)).json()).keys.map((k) => k.kid);
      assert.ok(published.includes(header.kid), `kid ${header.kid} is in the JWKS`);

      assert.equal(claims.iss, w.baseUrl);
      assert.equal(claims.sub, `${w.baseUrl}/id/${orgId}/${app.user.user_id}`);
      assert.deepEqual(claims.aud, AUDIENCES);
      assert.equal(claims.client_id, app.client_id);
      assert.equal(claims.did, did);
      assert.equal(claims.Name, 'Kitchen thermostat');
      assert.deepEqual(claims.Asset, { Name: 'Kitchen thermostat', SerialNumber: 'SN-4242' });
      assert.match(claims.asset_id, /^02i[0-9A-Za-z]{15}$/);
      assert.equal(claims.cnf, undefined, 'no cnf in the actor token, none in the asset token');
      assert.ok(claims.iat >= before - 1 && claims.iat <= nowS() + 1, `iat ${claims.iat} is now`);
      assert.equal(claims.nbf, claims.iat);
      assert.equal(claims.exp - claims.iat, 900);
      assert.equal(typeof claims.jti, 'string');
      assert.ok(claims.jti.length >= 16);

      // Not an access token of ours.
      const info = await fetch(`${w.baseUrl}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(info.status, 401);

      // The device, recorded as an asset of the user for the app.
      const mine = (await assets()).filter((a) => a.device_id === did);
      assert.equal(mine.length, 1);
      assert.deepEqual(mine[0], {
        asset_id: claims.asset_id,
        client_id: app.client_id,
        device_id: did,
        name: 'Kitchen thermostat',
        serial_number: 'SN-4242',
        user_id: app.user.user_id,
        created_at: mine[0].created_at,
        revoked_at: null,
      });
      assert.ok(Math.abs(mine[0].created_at - claims.iat) <= 2);

      // The same device again: the same asset, a new token.
      const again = await exchanged(access, await signed(device(did, { serial: 'SN-4242' }), factory));
      assert.equal(again.claims.asset_id, claims.asset_id);
      assert.notEqual(again.claims.jti, claims.jti);
      assert.equal((await assets()).filter((a) => a.device_id === did).length, 1);
    });
  }

  test('proof of possession: an actor token with cnf.jwk must be signed by that device key', async () => {
    const app = await newApp({ audiences: AUDIENCES, ttl_s: 300, allow_unsigned: true });
    const access = await clientCredentialsToken(app);
    const deviceKey = await keyPair('ES256');
    const did = unique('dev-pop');
    const claims = { ...device(did), cnf: { jwk: deviceKey.jwk } };

    const ok = await exchanged(access, await signed(claims, deviceKey));
    assert.deepEqual(ok.claims.cnf, { jwk: deviceKey.jwk });
    assert.equal(ok.claims.did, did);

    // The same claims signed by another key, or not signed at all: the device proved nothing.
    const other = await keyPair('ES256');
    const byOther = await exchange(access, await signed(claims, other));
    await assertRefused(byOther, 400, 'invalid_grant', 'actor token: not signed by the device key in cnf.jwk');
    const none = await exchange(access, unsigned(claims));
    await assertRefused(none, 400, 'invalid_grant', 'actor token: not signed by the device key in cnf.jwk');
    // Another device claiming that key, signed by the wrong key, is not recorded.
    const stranger = unique('dev-pop-stranger');
    const r = await exchange(access, await signed({ ...device(stranger), cnf: { jwk: deviceKey.jwk } }, other));
    await assertRefused(r, 400, 'invalid_grant', 'actor token: not signed by the device key in cnf.jwk', { did: stranger });
  });

  describe('refusals', () => {
    let factory;
    let app;
    let access;

    before(async () => {
      factory = await keyPair('ES256');
      app = await newApp({ audiences: AUDIENCES, ttl_s: 300, actor_keys: [factory.jwk] });
      access = await clientCredentialsToken(app);
    });

    test('an expired subject token', async () => {
      const short = await newApp({ audiences: AUDIENCES, ttl_s: 300, actor_keys: [factory.jwk] }, { access_token_ttl_s: 60 });
      const token = await clientCredentialsToken(short);
      // Accepted while it lives.
      await exchanged(token, await signed(device(unique('dev-alive')), factory));
      const { active, exp } = await introspect(short, token);
      assert.equal(active, true);
      assert.ok(exp - nowS() <= 60, 'a 60-second token');
      // Wait (once, about a minute) until its exp has passed.
      await sleep(Math.max(0, (exp + 1) * 1000 - Date.now()) + 500);
      const did = unique('dev-late');
      const r = await exchange(token, await signed(device(did), factory));
      await assertRefused(r, 400, 'invalid_grant', SUBJECT_REFUSED, { did });
    });

    test('a revoked subject token, and an unknown one', async () => {
      const token = await clientCredentialsToken(app);
      await exchanged(token, await signed(device(unique('dev-before-revoke')), factory));
      const rv = await fetch(`${w.baseUrl}/services/oauth2/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
      assert.equal(rv.status, 200);
      const did = unique('dev-after-revoke');
      await assertRefused(await exchange(token, await signed(device(did), factory)), 400, 'invalid_grant', SUBJECT_REFUSED, { did });
      const unknown = `${orgId}!${randomBytes(30).toString('base64url')}`;
      await assertRefused(await exchange(unknown, await signed(device(did), factory)), 400, 'invalid_grant', SUBJECT_REFUSED, { did });
    });

    test('an actor token signed by an unregistered key, or altered after signing', async () => {
      const did = unique('dev-forged');
      const stranger = await keyPair('ES256');
      const forged = await exchange(access, await signed(device(did), stranger));
      await assertRefused(forged, 400, 'invalid_grant', 'actor token: invalid signature (not by a key registered for the app\'s actor tokens)', { did });
      // A genuine signature over other claims: the did swapped in.
      const [h, , s] = (await signed(device(unique('dev-genuine')), factory)).split('.');
      const altered = `${h}.${Buffer.from(JSON.stringify(device(did))).toString('base64url')}.${s}`;
      await assertRefused(await exchange(access, altered), 400, 'invalid_grant', 'actor token: invalid signature (not by a key registered for the app\'s actor tokens)', { did });
      // A registered RS256 key does not make an RS256 token of another key valid either.
      const rsa = await keyPair('RS256');
      await assertRefused(await exchange(access, await signed(device(did), rsa)), 400, 'invalid_grant', 'actor token: invalid signature (not by a key registered for the app\'s actor tokens)', { did });
    });

    test('an unsigned actor token when the app does not allow them', async () => {
      const did = unique('dev-unsigned');
      await assertRefused(await exchange(access, unsigned(device(did))), 400, 'invalid_grant', 'actor token: unsigned actor tokens are not allowed for this app', { did });
    });

    test('an expired actor token', async () => {
      const did = unique('dev-expired');
      const r = await exchange(access, await signed({ ...device(did), exp: nowS() - 3600 }, factory));
      await assertRefused(r, 400, 'invalid_grant', 'actor token: expired', { did });
    });

    test('an actor token without did, and one that is not a JWT', async () => {
      const r = await exchange(access, await signed({ Name: 'No id', Asset: { Name: 'No id', SerialNumber: 'SN-0' } }, factory));
      await assertRefused(r, 400, 'invalid_grant', 'the actor token has no did (device id)');
      const empty = await exchange(access, await signed({ ...device('x'), did: '' }, factory));
      await assertRefused(empty, 400, 'invalid_grant', 'the actor token has no did (device id)');
      await assertRefused(await exchange(access, 'not-a-jwt'), 400, 'invalid_grant', 'actor token: not a JWT');
    });

    test('an app without asset tokens', async () => {
      const plain = await newApp(undefined);
      const token = await clientCredentialsToken(plain);
      const did = unique('dev-plain');
      await assertRefused(await exchange(token, await signed(device(did), factory)), 400, 'unauthorized_client', 'asset tokens are not enabled for this app', { did });
    });

    test('wrong or missing token types and tokens (invalid_request)', async () => {
      const did = unique('dev-types');
      const actor = await signed(device(did), factory);
      await assertRefused(
        await exchange(access, actor, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }),
        400, 'invalid_request', `subject_token_type must be ${ACCESS}`, { did },
      );
      await assertRefused(
        await exchange(access, actor, { actor_token_type: ACCESS }),
        400, 'invalid_request', `actor_token_type must be ${JWT}`, { did },
      );
      await assertRefused(await exchange(access, actor, { actor_token_type: undefined }), 400, 'invalid_request', 'actor_token_type required', { did });
      await assertRefused(await exchange(access, undefined), 400, 'invalid_request', 'actor_token required', { did });
      await assertRefused(await exchange(undefined, actor), 400, 'invalid_request', 'subject_token required', { did });
    });

    test('a client that authenticates must be the subject token\'s', async () => {
      const other = await newApp({ audiences: AUDIENCES, ttl_s: 300, actor_keys: [factory.jwk] });
      const did = unique('dev-client');
      const actor = await signed(device(did), factory);
      const r = await exchange(access, actor, { client_id: other.client_id, client_secret: other.client_secret });
      await assertRefused(r, 400, 'invalid_grant', 'the subject token was issued to another client', { did });
      // Its own client, authenticated, is fine.
      const ok = await exchange(access, actor, { client_id: app.client_id, client_secret: app.client_secret });
      assert.equal(ok.status, 200, ok.text);
    });
  });

  test('revoking an asset: its tokens introspect inactive, it gets no new ones; other devices are unaffected', async () => {
    const factory = await keyPair('ES256');
    const app = await newApp({ audiences: AUDIENCES, ttl_s: 600, actor_keys: [factory.jwk] });
    const access = await clientCredentialsToken(app);
    const [didA, didB] = [unique('dev-a'), unique('dev-b')];
    const a = await exchanged(access, await signed(device(didA), factory));
    const b = await exchanged(access, await signed(device(didB), factory));

    const before = await introspect(app, a.token);
    assert.equal(before.active, true);
    assert.equal(before.did, didA);
    assert.equal(before.asset_id, a.claims.asset_id);
    assert.equal(before.client_id, app.client_id);
    assert.equal(before.sub, a.claims.sub);
    assert.equal(before.exp, a.claims.exp);
    // Only the app's own asset tokens: another client sees nothing.
    const stranger = await newApp(undefined);
    assert.deepEqual(await introspect(stranger, a.token), { active: false });

    const del = await w.admin('DELETE', `/admin/assets/${a.claims.asset_id}`);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.asset_id, a.claims.asset_id);
    assert.equal(del.json.device_id, didA);
    assert.equal(typeof del.json.revoked_at, 'number');
    assert.ok(Math.abs(del.json.revoked_at - nowS()) <= 5);

    assert.deepEqual(await introspect(app, a.token), { active: false });
    await assertRefused(await exchange(access, await signed(device(didA), factory)), 400, 'invalid_grant', 'this asset was revoked');
    const listed = await assets();
    assert.equal(listed.find((x) => x.device_id === didA).revoked_at, del.json.revoked_at);
    assert.equal(listed.filter((x) => x.device_id === didA).length, 1, 'the refused exchange recorded no new asset');

    // Device B: its token still active, and it still gets new ones (the same asset).
    assert.equal(listed.find((x) => x.device_id === didB).revoked_at, null);
    const stillB = await introspect(app, b.token);
    assert.equal(stillB.active, true);
    assert.equal(stillB.did, didB);
    const newB = await exchanged(access, await signed(device(didB), factory));
    assert.equal(newB.claims.asset_id, b.claims.asset_id);

    // Revoking again keeps the first time; an unknown asset is a 404.
    const twice = await w.admin('DELETE', `/admin/assets/${a.claims.asset_id}`);
    assert.equal(twice.status, 200, twice.text);
    assert.equal(twice.json.revoked_at, del.json.revoked_at);
    assert.equal((await w.admin('DELETE', '/admin/assets/02i000000000000AAA')).status, 404);
  });

  describe('the explorer page /tools/asset-token in headless Chromium', () => {
    let browser;

    before(async () => {
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
    });

    /** Opens the page, recording console errors, page errors and CSP violations. */
    async function openExplorer() {
      const page = await browser.newPage();
      const problems = [];
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      // Recorded from the first script on, so a violation while the page loads counts too.
      await page.addInitScript(() => {
        window.__violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
      const response = await page.goto(`${w.baseUrl}/tools/asset-token`);
      return { page, problems, response };
    }

    const text = (page, sel) => page.locator(sel).textContent();

    test('client credentials, then an unsigned actor token: the decoded asset token is shown', async () => {
      const app = await newApp({ audiences: AUDIENCES, ttl_s: 120, allow_unsigned: true });
      const { page, problems, response } = await openExplorer();
      try {
        assert.equal(response.status(), 200);
        assert.match(response.headers()['content-type'], /^text\/html/);
        // The CSP: only its own script, no inline script, requests to this server only.
        const csp = Object.fromEntries(response.headers()['content-security-policy'].split(';')
          .map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k, v]));
        assert.deepEqual(csp['script-src'], ["'self'"]);
        assert.deepEqual(csp['default-src'], ["'none'"]);
        assert.deepEqual(csp['connect-src'], ["'self'"]);
        assert.deepEqual(csp['frame-ancestors'], ["'none'"]);
        for (const v of Object.values(csp).flat()) assert.ok(!/unsafe-eval|^data:|^\*$/.test(v), `CSP value ${v}`);
        assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script on the page');

        await page.locator('#client_id').fill(app.client_id);
        await page.locator('#client_secret').fill(app.client_secret);
        await page.locator('#get-token').click();
        await page.waitForFunction(() => document.getElementById('access_token').value !== '');
        const access = await page.locator('#access_token').inputValue();
        assert.match(access, new RegExp(`^${orgId}!`));
        // The request shown masks the secret.
        const shownRequest = await text(page, '#request');
        assert.match(shownRequest, /grant_type=client_credentials/);
        assert.ok(!shownRequest.includes(app.client_secret), 'the secret is not shown');

        const did = unique('dev-explorer');
        await page.locator('#did').fill(did);
        await page.locator('#name').fill('Garage door');
        await page.locator('#serial').fill('SN-GD-7');
        await page.locator('#exchange').click();
        await page.waitForFunction(() => document.getElementById('asset-claims').textContent.trim().startsWith('{'));

        const claims = JSON.parse(await text(page, '#asset-claims'));
        assert.equal(claims.did, did);
        assert.equal(claims.Name, 'Garage door');
        assert.deepEqual(claims.Asset, { Name: 'Garage door', SerialNumber: 'SN-GD-7' });
        assert.deepEqual(claims.aud, AUDIENCES);
        assert.equal(claims.client_id, app.client_id);
        assert.equal(claims.sub, `${w.baseUrl}/id/${orgId}/${app.user.user_id}`);
        assert.match(await text(page, '#request'), new RegExp(`grant_type=${encodeURIComponent(EXCHANGE)}`));
        assert.equal(await text(page, '#error'), '');

        // The token shown in the response is genuine: it verifies with the JWKS, claims as shown.
        const shown = (await text(page, '#response')).match(/^HTTP (\d+)\n\n([\s\S]*)$/);
        assert.equal(shown[1], '200');
        const token = JSON.parse(shown[2]).access_token;
        const { payload } = await jwtVerify(token, jwks, { issuer: w.baseUrl, audience: AUDIENCES[0], typ: 'asset+jwt' });
        assert.deepEqual(payload, claims);
        const header = JSON.parse(await text(page, '#asset-header'));
        assert.deepEqual(header, decodeProtectedHeader(token));
        assert.equal(header.alg, 'RS256');
        assert.equal(header.typ, 'asset+jwt');
        assert.equal((await assets()).find((a) => a.device_id === did)?.serial_number, 'SN-GD-7');

        assert.deepEqual(await page.evaluate(() => window.__violations), []);
        assert.deepEqual(problems, []);

        // And the browser enforces it: an inline script injected now does not run.
        await page.addScriptTag({ content: 'window.__inlineRan = true;' }).catch(() => {});
        assert.equal(await page.evaluate(() => window.__inlineRan), undefined);
        assert.ok((await page.evaluate(() => window.__violations)).some((v) => v.startsWith('script-src')));
      } finally {
        await page.close();
      }
    });

    test('an exchange the server refuses shows its error and no token', async () => {
      const app = await newApp({ audiences: AUDIENCES, ttl_s: 120 }); // unsigned actor tokens not allowed
      const { page, problems } = await openExplorer();
      try {
        await page.locator('#client_id').fill(app.client_id);
        await page.locator('#client_secret').fill(app.client_secret);
        await page.locator('#get-token').click();
        await page.waitForFunction(() => document.getElementById('access_token').value !== '');
        await page.locator('#exchange').click();
        await page.waitForFunction(() => document.getElementById('error').textContent !== '');
        assert.equal(await text(page, '#error'), 'invalid_grant: actor token: unsigned actor tokens are not allowed for this app');
        assert.match(await text(page, '#response'), /^HTTP 400\n/);
        assert.equal(await text(page, '#asset-claims'), '(none yet)');
        // The only console error is the browser's own note on the 400 response.
        assert.ok(problems.every((p) => /status of 400/.test(p)), problems.join('\n'));
      } finally {
        await page.close();
      }
    });
  });
});
