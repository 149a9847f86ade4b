//! edge-oauth's browser client: the web server flow with PKCE (by redirect or popup) and the
//! user-agent flow for single-page apps, ID tokens verified with WebCrypto, refresh ahead of
//! expiry under a Web Lock shared by the origin's tabs, new tokens sent to the other tabs over
//! a BroadcastChannel. `js/edge-oauth.js` is its ES-module face; `README.md` is the API.
//!
//! `no_std` (with `alloc`) and no formatting, JSON or URL crates: the browser already has JSON,
//! and everything this crate compiles in is downloaded by every user of the app.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod b64;
pub mod form;
pub mod jwt;
pub mod pkce;
mod web;

#[cfg(test)]
mod tests;

use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use form::{Callback, Kind};
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web::{err, get, get_str, object, set, win, Fut, Res};

// The browser runs one thread, which is what lol_alloc's single-threaded allocator assumes.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[global_allocator]
#[allow(unsafe_code)]
// SAFETY: wasm32 without the atomics feature has exactly one thread.
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// Nothing here panics by design (clippy denies unwrap, expect and panic); an index out of
/// bounds would trap rather than pull the panic formatting machinery into the download.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The window name of the login popup: a page loaded in it leaves the answer to its opener.
const POPUP: &str = "edge-oauth-login";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Memory,
    Session,
    Local,
}

struct Inner {
    issuer: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    mode: Mode,
    /// Refresh this long before `expires_at`.
    skew_ms: f64,
    /// The discovery document.
    meta: JsValue,
    jwks: RefCell<JsValue>,
    /// The token set, or null.
    tokens: RefCell<JsValue>,
    notify: Option<Function>,
    channel: Option<web_sys::BroadcastChannel>,
}

/// A configured client. Create it with `Client.create`; the methods that talk to the server
/// return promises.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<Inner>,
}

fn promise<F>(f: F) -> js_sys::Promise
where
    F: core::future::Future<Output = Res<JsValue>> + 'static,
{
    to_promise(alloc::boxed::Box::pin(f))
}

/// One instantiation of `future_to_promise` for every method.
#[inline(never)]
fn to_promise(f: Fut<'static, JsValue>) -> js_sys::Promise {
    future_to_promise(f)
}

#[wasm_bindgen]
impl Client {
    /// `options`: `issuer` (required), `clientId` (required), `redirectUri` (default: this
    /// page without query and fragment), `scope` (default `openid`), `storage` (`memory`,
    /// `session` or `local`; default `memory`), `refreshSkew` (seconds before expiry to
    /// refresh; default 60). `notify` is called with the token set (or null) whenever it changes.
    /// Resolves to a `Client` once the issuer's discovery document is read.
    pub fn create(options: JsValue, notify: Option<Function>) -> js_sys::Promise {
        promise(async move { Ok(Client::new(options, notify).await?.into()) })
    }

    /// The web server flow with PKCE (S256), state and nonce. By redirect (resolves as the page
    /// leaves), or with `{ popup: true }` in a popup window (resolves to the token set).
    /// Other options: `prompt`, `loginHint`, `scope`.
    pub fn login(&self, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.start(Flow::Code, &options).await })
    }

    /// The user-agent flow: tokens in the fragment (with an ID token when the scope asks for
    /// `openid`). Same options as `login`.
    #[wasm_bindgen(js_name = loginUserAgent)]
    pub fn login_user_agent(&self, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.start(Flow::Token, &options).await })
    }

    /// Finishes a redirect login on the page it returned to (`url` defaults to this page's):
    /// resolves to the token set, or null when the URL carries no authorization response.
    /// The response is removed from the address bar first.
    #[wasm_bindgen(js_name = handleCallback)]
    pub fn handle_callback(&self, url: Option<String>) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.handle_callback(url).await })
    }

    /// A fresh access token (refreshed ahead of expiry, once across tabs), or null when nobody
    /// is logged in.
    #[wasm_bindgen(js_name = getAccessToken)]
    pub fn get_access_token(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.access_token().await })
    }

    /// The current token set (`access_token`, `refresh_token`, `id_token`, `claims` of the
    /// verified ID token, `expires_at` in ms, `scope`, `instance_url`, `id`), or null.
    pub fn tokens(&self) -> JsValue {
        self.inner.current()
    }

    /// The userinfo endpoint's answer for the logged-in user.
    pub fn userinfo(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.userinfo().await })
    }

    /// Revokes the refresh and access tokens at the server and forgets them (in every tab
    /// when the storage is `local`).
    pub fn logout(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.logout().await })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Code,
    Token,
}

fn opt_str(options: &JsValue, key: &str) -> Option<String> {
    if options.is_object() {
        get_str(options, key)
    } else {
        None
    }
}

fn is_fresh(tokens: &JsValue, skew_ms: f64) -> bool {
    match get(tokens, "expires_at").as_f64() {
        Some(at) => web::now_ms() + skew_ms < at,
        None => true,
    }
}

impl Client {
    async fn new(options: JsValue, notify: Option<Function>) -> Res<Client> {
        let required = |k: &str| {
            opt_str(&options, k)
                .ok_or_else(|| err("invalid_options", &[k, " is required"].concat()))
        };
        let issuer = String::from(required("issuer")?.trim_end_matches('/'));
        let client_id = required("clientId")?;
        let location = win()?.location();
        let redirect_uri = match opt_str(&options, "redirectUri") {
            Some(r) => r,
            None => [location.origin()?, location.pathname()?].concat(),
        };
        let mode = match opt_str(&options, "storage").as_deref() {
            None | Some("memory") => Mode::Memory,
            Some("session") => Mode::Session,
            Some("local") => Mode::Local,
            Some(_) => {
                return Err(err(
                    "invalid_options",
                    "storage is memory, session or local",
                ))
            }
        };
        let (status, meta) = web::fetch_json(
            &[&issuer, "/.well-known/openid-configuration"].concat(),
            None,
            None,
        )
        .await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it came from.
        if status != 200 || get_str(&meta, "issuer").as_deref() != Some(issuer.as_str()) {
            return Err(err(
                "invalid_issuer",
                "no discovery document for this issuer",
            ));
        }
        let channel = match mode {
            Mode::Local => web_sys::BroadcastChannel::new(&key(&client_id, "")).ok(),
            _ => None,
        };
        let inner = Rc::new(Inner {
            issuer,
            scope: opt_str(&options, "scope").unwrap_or_else(|| "openid".into()),
            skew_ms: get(&options, "refreshSkew").as_f64().unwrap_or(60.0) * 1000.0,
            client_id,
            redirect_uri,
            mode,
            meta,
            jwks: RefCell::new(JsValue::NULL),
            tokens: RefCell::new(JsValue::NULL),
            notify,
            channel,
        });
        inner.tokens.replace(inner.stored());
        if let Some(ch) = &inner.channel {
            // Another tab logged in, refreshed or logged out: take its tokens.
            let weak = Rc::downgrade(&inner);
            let on_message =
                Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                    if let Some(inner) = weak.upgrade() {
                        inner.tokens.replace(e.data());
                        inner.emit();
                    }
                });
            ch.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
        }
        Ok(Client { inner })
    }
}

/// A storage key of this client: `edge-oauth:{client_id}{suffix}`.
fn key(client_id: &str, suffix: &str) -> String {
    ["edge-oauth:", client_id, suffix].concat()
}

impl Inner {
    fn endpoint(&self, name: &str) -> Res<String> {
        get_str(&self.meta, name)
            .ok_or_else(|| err("unsupported", &[name, " is not in discovery"].concat()))
    }

    fn storage(&self) -> Option<web_sys::Storage> {
        match self.mode {
            Mode::Memory => None,
            m => web::storage(m == Mode::Local),
        }
    }

    fn stored(&self) -> JsValue {
        self.storage()
            .and_then(|s| s.get_item(&key(&self.client_id, "")).ok().flatten())
            .map(|s| web::parse_json(&s))
            .unwrap_or(JsValue::NULL)
    }

    /// The token set; with `local` storage re-read, so another tab's refresh is seen at once.
    fn current(&self) -> JsValue {
        if self.mode == Mode::Local {
            self.tokens.replace(self.stored());
        }
        self.tokens.borrow().clone()
    }

    fn emit(&self) {
        if let Some(f) = &self.notify {
            let _ = f.call1(&JsValue::NULL, &self.tokens.borrow());
        }
    }

    /// Keeps `tokens` (or null), persists them, tells the other tabs and the app.
    fn save(&self, tokens: JsValue) {
        if let Some(s) = self.storage() {
            let k = key(&self.client_id, "");
            let _ = if tokens.is_null() {
                s.remove_item(&k)
            } else {
                s.set_item(&k, &web::to_json(&tokens))
            };
        }
        if let Some(ch) = &self.channel {
            let _ = ch.post_message(&tokens);
        }
        self.tokens.replace(tokens);
        self.emit();
    }

    async fn start(&self, flow: Flow, options: &JsValue) -> Res<JsValue> {
        let state = pkce::random_token()?;
        let nonce = pkce::random_token()?;
        let scope = opt_str(options, "scope").unwrap_or_else(|| self.scope.clone());
        let mut url = self.endpoint("authorization_endpoint")?;
        url.push(if url.contains('?') { '&' } else { '?' });
        let response_type = match flow {
            Flow::Code => "code",
            Flow::Token if scope.split(' ').any(|s| s == "openid") => "token id_token",
            Flow::Token => "token",
        };
        form::push(&mut url, "response_type", response_type);
        form::push(&mut url, "client_id", &self.client_id);
        form::push(&mut url, "redirect_uri", &self.redirect_uri);
        form::push(&mut url, "scope", &scope);
        form::push(&mut url, "state", &state);
        form::push(&mut url, "nonce", &nonce);
        let pending = object(&[
            ("state", &state.as_str().into()),
            ("nonce", &nonce.as_str().into()),
            ("flow", &response_type.into()),
        ]);
        if flow == Flow::Code {
            let verifier = pkce::random_token()?;
            form::push(
                &mut url,
                "code_challenge",
                &pkce::challenge(&verifier).await?,
            );
            form::push(&mut url, "code_challenge_method", "S256");
            set(&pending, "verifier", &verifier.into());
        }
        for (option, param) in [("prompt", "prompt"), ("loginHint", "login_hint")] {
            if let Some(v) = opt_str(options, option) {
                form::push(&mut url, param, &v);
            }
        }
        if get(options, "popup").is_truthy() {
            return self.popup(&url, pending).await;
        }
        // Bound to this tab (sessionStorage), removed when the answer comes back.
        web::storage(false)
            .ok_or_else(|| err("unsupported", "no sessionStorage"))?
            .set_item(&key(&self.client_id, ":pending"), &web::to_json(&pending))?;
        win()?.location().assign(&url)?;
        Ok(JsValue::UNDEFINED)
    }

    /// Opens the authorization URL in a popup and waits until it comes back to the redirect
    /// URI (our origin, so its address becomes readable), then closes it.
    async fn popup(&self, url: &str, pending: JsValue) -> Res<JsValue> {
        let popup = win()?
            .open_with_url_and_target_and_features(url, POPUP, "popup,width=520,height=720")?
            .ok_or_else(|| err("popup_blocked", "the browser blocked the login window"))?;
        // Ten minutes, as long as the server keeps a login pending.
        for _ in 0..4000 {
            web::sleep(150).await;
            if popup.closed().unwrap_or(true) {
                return Err(err("popup_closed", "the login window was closed"));
            }
            // Another origin's address throws; ours is readable.
            let Ok(href) = popup.location().href() else {
                continue;
            };
            if !href.starts_with(&self.redirect_uri) {
                continue;
            }
            if let Some(cb) = form::callback(&href) {
                let _ = popup.close();
                return self.finish(cb, pending).await;
            }
        }
        let _ = popup.close();
        Err(err("popup_timeout", "the login window did not finish"))
    }

    async fn handle_callback(&self, url: Option<String>) -> Res<JsValue> {
        let w = win()?;
        let href = match url {
            Some(u) => u,
            None => w.location().href()?,
        };
        let Some(cb) = form::callback(&href) else {
            return Ok(JsValue::NULL);
        };
        // In the login popup the opener reads the answer.
        if w.name().ok().as_deref() == Some(POPUP) && !w.opener().unwrap_or(JsValue::NULL).is_null()
        {
            return Ok(JsValue::NULL);
        }
        // Off the address bar (and out of history) before anything else.
        let clean = href.split(['?', '#']).next().unwrap_or_default();
        let _ = w
            .history()?
            .replace_state_with_url(&JsValue::NULL, "", Some(clean));
        let pending_key = key(&self.client_id, ":pending");
        let store = web::storage(false);
        let pending = store
            .as_ref()
            .and_then(|s| s.get_item(&pending_key).ok().flatten())
            .map(|s| web::parse_json(&s))
            .unwrap_or(JsValue::NULL);
        if let Some(s) = store {
            let _ = s.remove_item(&pending_key);
        }
        if pending.is_null() {
            return Err(err("invalid_state", "no login is pending in this tab"));
        }
        self.finish(cb, pending).await
    }

    /// Checks an authorization response against the request it answers and turns it into
    /// tokens.
    async fn finish(&self, cb: Callback, pending: JsValue) -> Res<JsValue> {
        let p = &cb.params;
        if p.get("state").map(String::from) != get_str(&pending, "state") {
            return Err(err(
                "invalid_state",
                "the answer is not for the login this tab started",
            ));
        }
        // RFC 9207: when the server names itself, it must be ours.
        if p.get("iss").is_some_and(|i| i != self.issuer) {
            return Err(err("invalid_issuer", "the answer came from another issuer"));
        }
        if let Some(e) = p.get("error") {
            return Err(err(e, p.get("error_description").unwrap_or_default()));
        }
        let code_flow = get_str(&pending, "flow").as_deref() == Some("code");
        if code_flow != (cb.kind == Kind::Query) {
            return Err(err("invalid_response", "the answer does not fit the flow"));
        }
        let tokens = if code_flow {
            let mut body = String::new();
            form::push(&mut body, "grant_type", "authorization_code");
            form::push(&mut body, "code", p.get("code").unwrap_or_default());
            form::push(&mut body, "redirect_uri", &self.redirect_uri);
            form::push(&mut body, "client_id", &self.client_id);
            form::push(
                &mut body,
                "code_verifier",
                &get_str(&pending, "verifier").unwrap_or_default(),
            );
            self.token_request(&body).await?
        } else {
            let t = object(&[]);
            for (k, v) in &p.0 {
                if k != "state" {
                    set(&t, k, &v.as_str().into());
                }
            }
            if let Ok(n) = p.get("expires_in").unwrap_or_default().parse::<u32>() {
                set(&t, "expires_in", &f64::from(n).into());
            }
            t
        };
        let tokens = self.with_expiry(tokens)?;
        let nonce = get_str(&pending, "nonce");
        self.check_id_token(&tokens, nonce.as_deref(), !code_flow, None)
            .await?;
        self.save(tokens.clone());
        Ok(tokens)
    }

    /// `expires_at` (ms) from `expires_in`; an answer without an access token is refused.
    fn with_expiry(&self, tokens: JsValue) -> Res<JsValue> {
        if get_str(&tokens, "access_token").is_none() {
            return Err(err("invalid_response", "no access_token"));
        }
        if let Some(s) = get(&tokens, "expires_in").as_f64() {
            set(&tokens, "expires_at", &(web::now_ms() + s * 1000.0).into());
        }
        Ok(tokens)
    }

    fn token_request<'a>(&'a self, body: &'a str) -> Fut<'a, JsValue> {
        alloc::boxed::Box::pin(async move {
            let (status, answer) =
                web::fetch_json(&self.endpoint("token_endpoint")?, Some(body), None).await?;
            if status != 200 {
                return Err(web::answer_error(status, &answer));
            }
            Ok(answer)
        })
    }

    fn keys(&self, fresh: bool) -> Fut<'_, JsValue> {
        alloc::boxed::Box::pin(async move {
            let cached = self.jwks.borrow().clone();
            if !fresh && !cached.is_null() {
                return Ok(cached);
            }
            let (status, jwks) = web::fetch_json(&self.endpoint("jwks_uri")?, None, None).await?;
            if status != 200 {
                return Err(err(
                    "invalid_id_token",
                    "the issuer's keys could not be read",
                ));
            }
            self.jwks.replace(jwks.clone());
            Ok(jwks)
        })
    }

    /// Verifies the ID token in `tokens`, if any (its signature with the issuer's JWKS, then its
    /// claims), and keeps its claims as `tokens.claims`.
    fn check_id_token<'a>(
        &'a self,
        tokens: &'a JsValue,
        nonce: Option<&'a str>,
        implicit: bool,
        sub: Option<&'a str>,
    ) -> Fut<'a, ()> {
        alloc::boxed::Box::pin(async move {
            let Some(id_token) = get_str(tokens, "id_token") else {
                return if implicit
                    && nonce.is_some()
                    && self.scope_of(tokens).split(' ').any(|s| s == "openid")
                {
                    Err(jwt::invalid("no id_token"))
                } else {
                    Ok(())
                };
            };
            let jws = jwt::decode(&id_token)?;
            // A key rotated since the last fetch: read the JWKS once more.
            let key = match jwt::find_key(&self.keys(false).await?, &jws) {
                Some(k) => k,
                None => jwt::find_key(&self.keys(true).await?, &jws)
                    .ok_or_else(|| jwt::invalid("no key for kid"))?,
            };
            if !web::verify(&jws.alg, &key, &jws.signature, jws.signed.as_bytes()).await? {
                return Err(jwt::invalid("bad signature"));
            }
            let at_hash = match get_str(tokens, "access_token") {
                Some(at) => {
                    let digest = web::sha256(at.as_bytes()).await?;
                    Some(b64::encode(digest.get(..16).unwrap_or_default()))
                }
                None => None,
            };
            jwt::check_claims(
                &jws.claims,
                &jwt::Expect {
                    issuer: &self.issuer,
                    client_id: &self.client_id,
                    now_s: web::now_ms() / 1000.0,
                    nonce,
                    at_hash: at_hash.as_deref().map(|h| (h, implicit)),
                    sub,
                },
            )?;
            set(tokens, "claims", &jws.claims);
            Ok(())
        })
    }

    fn scope_of(&self, tokens: &JsValue) -> String {
        get_str(tokens, "scope").unwrap_or_else(|| self.scope.clone())
    }

    async fn access_token(self: Rc<Self>) -> Res<JsValue> {
        let tokens = self.current();
        if tokens.is_null() || is_fresh(&tokens, self.skew_ms) {
            return Ok(get(&tokens, "access_token"));
        }
        if get_str(&tokens, "refresh_token").is_none() {
            self.save(JsValue::NULL);
            return Ok(JsValue::NULL);
        }
        let inner = self.clone();
        web::with_lock(&key(&self.client_id, ":refresh"), async move {
            inner.refresh_locked().await
        })
        .await
    }

    /// Under the lock: another tab may have refreshed while this one waited.
    async fn refresh_locked(&self) -> Res<JsValue> {
        let old = self.current();
        if old.is_null() || is_fresh(&old, self.skew_ms) {
            return Ok(get(&old, "access_token"));
        }
        let mut body = String::new();
        form::push(&mut body, "grant_type", "refresh_token");
        form::push(
            &mut body,
            "refresh_token",
            &get_str(&old, "refresh_token").unwrap_or_default(),
        );
        form::push(&mut body, "client_id", &self.client_id);
        let tokens = match self.token_request(&body).await {
            Ok(t) => self.with_expiry(t)?,
            Err(e) => {
                // The grant is gone (revoked, expired, reused): so is the login.
                if get_str(&e, "error").as_deref() == Some("invalid_grant") {
                    self.save(JsValue::NULL);
                }
                return Err(e);
            }
        };
        for k in ["refresh_token", "id_token", "claims"] {
            if get(&tokens, k).is_undefined() {
                set(&tokens, k, &get(&old, k));
            }
        }
        if get(&tokens, "id_token") != get(&old, "id_token") {
            let sub = get_str(&get(&old, "claims"), "sub");
            self.check_id_token(&tokens, None, false, sub.as_deref())
                .await?;
        }
        self.save(tokens.clone());
        Ok(get(&tokens, "access_token"))
    }

    async fn userinfo(self: Rc<Self>) -> Res<JsValue> {
        let token = self.clone().access_token().await?;
        let Some(token) = token.as_string() else {
            return Err(err("login_required", "nobody is logged in"));
        };
        let (status, body) =
            web::fetch_json(&self.endpoint("userinfo_endpoint")?, None, Some(&token)).await?;
        if status != 200 {
            return Err(web::answer_error(status, &body));
        }
        Ok(body)
    }

    async fn logout(&self) -> Res<JsValue> {
        let tokens = self.current();
        let mut failed = None;
        if let Ok(endpoint) = self.endpoint("revocation_endpoint") {
            // The refresh token first: revoking it ends the whole grant at the server.
            for k in ["refresh_token", "access_token"] {
                let Some(t) = get_str(&tokens, k) else {
                    continue;
                };
                let mut body = String::new();
                form::push(&mut body, "token", &t);
                form::push(&mut body, "client_id", &self.client_id);
                match web::fetch_json(&endpoint, Some(&body), None).await {
                    Ok((200, _)) => {}
                    Ok((status, answer)) => failed = Some(web::answer_error(status, &answer)),
                    Err(e) => failed = Some(e),
                }
            }
        }
        // Forgotten here even if the server could not be told.
        self.save(JsValue::NULL);
        match failed {
            Some(e) => Err(e),
            None => Ok(JsValue::UNDEFINED),
        }
    }
}
