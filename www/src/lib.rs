//! edge-oauth's browser client: the web server flow with PKCE (by redirect or popup) and the
//! user-agent flow for single-page apps, ID tokens verified with WebCrypto, refresh ahead of
//! expiry under a Web Lock shared by the origin's tabs, new tokens sent to the other tabs over
//! a BroadcastChannel. `js/edge-oauth.js` is its ES-module face; `README.md` is the API.
//!
//! `no_std` (with `alloc`) and no formatting, JSON or URL crates: the browser already has JSON,
//! and everything this crate compiles in is downloaded by every user of the app.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

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
use web::{call, err, get, get_str, global, object, path, set, Fut, Res};

// The browser runs one thread, which is what lol_alloc's single-threaded allocator assumes.
#[cfg(all(target_arch = "wasm32", not(any(test, feature = "std"))))]
#[global_allocator]
#[allow(unsafe_code)]
// SAFETY: wasm32 without the atomics feature has exactly one thread.
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// Nothing here panics by design (clippy denies unwrap, expect and panic); an index out of
/// bounds would trap rather than pull the panic formatting machinery into the download.
#[cfg(all(target_arch = "wasm32", not(any(test, feature = "std"))))]
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
    notify: JsValue,
    /// The `local` mode's BroadcastChannel, or undefined.
    channel: JsValue,
}

/// A configured client. Create it with `Client.create`; the methods that talk to the server
/// return promises.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<Inner>,
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
    pub fn create(options: JsValue, notify: JsValue) -> js_sys::Promise {
        to_promise(alloc::boxed::Box::pin(async move {
            Ok(Client::new(options, notify).await?.into())
        }))
    }

    /// The web server flow with PKCE (S256), state and nonce. By redirect (resolves as the page
    /// leaves), or with `{ popup: true }` in a popup window (resolves to the token set).
    /// Other options: `prompt`, `loginHint`, `scope`.
    pub fn login(&self, options: JsValue) -> js_sys::Promise {
        to_promise(self.inner.clone().start(true, options))
    }

    /// The user-agent flow: tokens in the fragment (with an ID token when the scope asks for
    /// `openid`). Same options as `login`.
    #[wasm_bindgen(js_name = loginUserAgent)]
    pub fn login_user_agent(&self, options: JsValue) -> js_sys::Promise {
        to_promise(self.inner.clone().start(false, options))
    }

    /// Finishes a redirect login on the page it returned to (`url` defaults to this page's):
    /// resolves to the token set, or null when the URL carries no authorization response.
    /// The response is removed from the address bar first.
    #[wasm_bindgen(js_name = handleCallback)]
    pub fn handle_callback(&self, url: JsValue) -> js_sys::Promise {
        to_promise(self.inner.clone().handle_callback(url))
    }

    /// A fresh access token (refreshed ahead of expiry, once across tabs), or null when nobody
    /// is logged in.
    #[wasm_bindgen(js_name = getAccessToken)]
    pub fn get_access_token(&self) -> js_sys::Promise {
        to_promise(self.inner.clone().access_token())
    }

    /// The current token set (`access_token`, `refresh_token`, `id_token`, `claims` of the
    /// verified ID token, `expires_at` in ms, `scope`, `instance_url`, `id`), or null.
    pub fn tokens(&self) -> JsValue {
        self.inner.current()
    }

    /// The userinfo endpoint's answer for the logged-in user.
    pub fn userinfo(&self) -> js_sys::Promise {
        to_promise(self.inner.clone().userinfo())
    }

    /// Revokes the refresh and access tokens at the server and forgets them (in every tab
    /// when the storage is `local`).
    pub fn logout(&self) -> js_sys::Promise {
        to_promise(self.inner.clone().logout())
    }
}

fn is_fresh(tokens: &JsValue, skew_ms: f64) -> bool {
    match get(tokens, "expires_at").as_f64() {
        Some(at) => web::now_ms() + skew_ms < at,
        None => true,
    }
}

/// A storage key of this client: `edge-oauth:{client_id}{suffix}`.
fn key(client_id: &str, suffix: &str) -> String {
    ["edge-oauth:", client_id, suffix].concat()
}

impl Client {
    async fn new(options: JsValue, notify: JsValue) -> Res<Client> {
        let opt = |k: &str| get_str(&options, k);
        let (Some(issuer), Some(client_id)) = (opt("issuer"), opt("clientId")) else {
            return Err(err("invalid_options", "issuer and clientId are required"));
        };
        let issuer = String::from(issuer.trim_end_matches('/'));
        let redirect_uri = opt("redirectUri").unwrap_or_else(|| {
            let l = path(&["location"]);
            [
                get_str(&l, "origin").unwrap_or_default(),
                get_str(&l, "pathname").unwrap_or_default(),
            ]
            .concat()
        });
        let mode = match opt("storage").as_deref() {
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
        let discovery = [issuer.as_str(), "/.well-known/openid-configuration"].concat();
        let (status, meta) = web::fetch_json(&discovery, None, None).await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it came from.
        if status != 200 || get_str(&meta, "issuer").as_deref() != Some(issuer.as_str()) {
            return Err(err(
                "invalid_issuer",
                "no discovery document for this issuer",
            ));
        }
        let channel = match mode {
            Mode::Local => js_sys::Reflect::construct::<fn() -> JsValue>(
                get(&global(), "BroadcastChannel").unchecked_ref(),
                &js_sys::Array::of1(&key(&client_id, "").into()),
            )
            .unwrap_or(JsValue::UNDEFINED),
            _ => JsValue::UNDEFINED,
        };
        let inner = Rc::new(Inner {
            issuer,
            scope: opt("scope").unwrap_or_else(|| "openid".into()),
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
        if !inner.channel.is_undefined() {
            // Another tab logged in, refreshed or logged out: take its tokens.
            let weak = Rc::downgrade(&inner);
            let on_message = Closure::<dyn Fn(JsValue)>::new(move |e: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    inner.tokens.replace(get(&e, "data"));
                    inner.emit();
                }
            });
            set(&inner.channel, "onmessage", on_message.as_ref());
            on_message.forget();
        }
        Ok(Client { inner })
    }
}

impl Inner {
    fn endpoint(&self, name: &str) -> Res<String> {
        get_str(&self.meta, name).ok_or_else(|| err("unsupported", name))
    }

    fn stored(&self) -> JsValue {
        match self.mode {
            Mode::Memory => None,
            m => web::storage_get(m == Mode::Local, &key(&self.client_id, "")),
        }
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
        if let Ok(f) = self.notify.clone().dyn_into::<Function>() {
            let _ = f.call1(&JsValue::NULL, &self.tokens.borrow());
        }
    }

    /// Keeps `tokens` (or null), persists them, tells the other tabs and the app.
    fn save(&self, tokens: JsValue) {
        if self.mode != Mode::Memory {
            let json = (!tokens.is_null()).then(|| web::to_json(&tokens));
            let _ = web::storage_put(
                self.mode == Mode::Local,
                &key(&self.client_id, ""),
                json.as_deref(),
            );
        }
        if !self.channel.is_undefined() {
            let _ = call(&self.channel, "postMessage", &[&tokens]);
        }
        self.tokens.replace(tokens);
        self.emit();
    }

    /// Starts a login: the web server flow (`code`) or the user-agent flow.
    fn start(self: Rc<Self>, code: bool, options: JsValue) -> Fut<'static, JsValue> {
        alloc::boxed::Box::pin(async move {
            let state = pkce::random_token()?;
            let nonce = pkce::random_token()?;
            let scope = get_str(&options, "scope").unwrap_or_else(|| self.scope.clone());
            let mut url = self.endpoint("authorization_endpoint")?;
            url.push(if url.contains('?') { '&' } else { '?' });
            let response_type = if code {
                "code"
            } else if scope.split(' ').any(|s| s == "openid") {
                "token id_token"
            } else {
                "token"
            };
            let pending = object();
            for (k, v) in [
                ("response_type", response_type),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", &scope),
                ("state", &state),
                ("nonce", &nonce),
            ] {
                form::push(&mut url, k, v);
            }
            set(&pending, "state", &state.into());
            set(&pending, "nonce", &nonce.into());
            set(&pending, "flow", &response_type.into());
            if code {
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
                if let Some(v) = get_str(&options, option) {
                    form::push(&mut url, param, &v);
                }
            }
            if get(&options, "popup").is_truthy() {
                return self.popup(url, pending).await;
            }
            // Bound to this tab (sessionStorage), removed when the answer comes back.
            web::storage_put(
                false,
                &key(&self.client_id, ":pending"),
                Some(&web::to_json(&pending)),
            )?;
            call(&path(&["location"]), "assign", &[&url.into()])?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Opens the authorization URL in a popup and waits until it comes back to the redirect
    /// URI (our origin, so its address becomes readable), then closes it.
    fn popup(&self, url: String, pending: JsValue) -> Fut<'_, JsValue> {
        alloc::boxed::Box::pin(async move {
            let popup = call(
                &global(),
                "open",
                &[
                    &url.into(),
                    &POPUP.into(),
                    &"popup,width=520,height=720".into(),
                ],
            )?;
            if popup.is_falsy() {
                return Err(err("popup_blocked", "the browser blocked the login window"));
            }
            // Ten minutes, as long as the server keeps a login pending.
            for _ in 0..4000 {
                web::sleep(150).await?;
                if get(&popup, "closed").is_truthy() {
                    return Err(err("popup_closed", "the login window was closed"));
                }
                // Another origin's address throws (undefined here); ours is readable.
                let Some(href) = get_str(&get(&popup, "location"), "href") else {
                    continue;
                };
                if !href.starts_with(&self.redirect_uri) {
                    continue;
                }
                if let Some(cb) = form::callback(&href) {
                    let _ = call(&popup, "close", &[]);
                    return self.finish(cb, pending).await;
                }
            }
            let _ = call(&popup, "close", &[]);
            Err(err("popup_timeout", "the login window did not finish"))
        })
    }

    fn handle_callback(self: Rc<Self>, url: JsValue) -> Fut<'static, JsValue> {
        alloc::boxed::Box::pin(async move {
            let href = url
                .as_string()
                .or_else(|| get_str(&path(&["location"]), "href"))
                .unwrap_or_default();
            let Some(cb) = form::callback(&href) else {
                return Ok(JsValue::NULL);
            };
            // In the login popup the opener reads the answer.
            if get_str(&global(), "name").as_deref() == Some(POPUP) && !path(&["opener"]).is_null()
            {
                return Ok(JsValue::NULL);
            }
            // Off the address bar (and out of history) before anything else.
            let clean = href.split(['?', '#']).next().unwrap_or_default();
            let _ = call(
                &path(&["history"]),
                "replaceState",
                &[&JsValue::NULL, &"".into(), &clean.into()],
            );
            let pending_key = key(&self.client_id, ":pending");
            let pending = web::storage_get(false, &pending_key)
                .map(|s| web::parse_json(&s))
                .unwrap_or(JsValue::NULL);
            let _ = web::storage_put(false, &pending_key, None);
            if pending.is_null() {
                return Err(err("invalid_state", "no login is pending in this tab"));
            }
            self.finish(cb, pending).await
        })
    }

    /// Checks an authorization response against the request it answers and turns it into
    /// tokens.
    fn finish(&self, cb: Callback, pending: JsValue) -> Fut<'_, JsValue> {
        alloc::boxed::Box::pin(async move {
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
                for (k, v) in [
                    ("grant_type", "authorization_code"),
                    ("code", p.get("code").unwrap_or_default()),
                    ("redirect_uri", &self.redirect_uri),
                    ("client_id", &self.client_id),
                    (
                        "code_verifier",
                        &get_str(&pending, "verifier").unwrap_or_default(),
                    ),
                ] {
                    form::push(&mut body, k, v);
                }
                self.token_request(body).await?
            } else {
                let t = object();
                for (k, v) in &p.0 {
                    if k != "state" {
                        set(&t, k, &v.as_str().into());
                    }
                }
                if let Ok(n) = p.get("expires_in").unwrap_or_default().parse::<u32>() {
                    set(&t, "expires_in", &n.into());
                }
                t
            };
            self.check_id_token(&tokens, get_str(&pending, "nonce"), !code_flow, None)
                .await?;
            self.save(tokens.clone());
            Ok(tokens)
        })
    }

    /// POSTs to the token endpoint; the answer gets `expires_at` (ms) from `expires_in`.
    fn token_request(&self, body: String) -> Fut<'_, JsValue> {
        alloc::boxed::Box::pin(async move {
            let url = self.endpoint("token_endpoint")?;
            let (status, answer) = web::fetch_json(&url, Some(&body), None).await?;
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
            let url = self.endpoint("jwks_uri")?;
            let (status, jwks) = web::fetch_json(&url, None, None).await?;
            if status != 200 {
                return Err(jwt::invalid("the issuer's keys could not be read"));
            }
            self.jwks.replace(jwks.clone());
            Ok(jwks)
        })
    }

    /// Checks the answer: an access token, `expires_at` from `expires_in`, and the ID token if
    /// any (its signature with the issuer's JWKS, then its claims), whose claims are kept as
    /// `tokens.claims`. `implicit`: the user-agent flow, where an ID token and its `at_hash`
    /// are required when `openid` was asked for.
    fn check_id_token<'a>(
        &'a self,
        tokens: &'a JsValue,
        nonce: Option<String>,
        implicit: bool,
        sub: Option<String>,
    ) -> Fut<'a, ()> {
        alloc::boxed::Box::pin(async move {
            let Some(access_token) = get_str(tokens, "access_token") else {
                return Err(err("invalid_response", "no access_token"));
            };
            if let Some(s) = get(tokens, "expires_in").as_f64() {
                set(tokens, "expires_at", &(web::now_ms() + s * 1000.0).into());
            }
            let Some(id_token) = get_str(tokens, "id_token") else {
                return match implicit && self.scope_of(tokens) {
                    true => Err(jwt::invalid("no id_token")),
                    false => Ok(()),
                };
            };
            let jws = jwt::decode(&id_token).map_err(jwt::invalid)?;
            // A key rotated since the last fetch: read the JWKS once more.
            let key = match jwt::find_key(&self.keys(false).await?, &jws) {
                Some(k) => k,
                None => jwt::find_key(&self.keys(true).await?, &jws)
                    .ok_or_else(|| jwt::invalid("no key for kid"))?,
            };
            if !web::verify(&jws.alg, key, &jws.signature, jws.signed.as_bytes()).await? {
                return Err(jwt::invalid("bad signature"));
            }
            let digest = web::sha256(access_token.as_bytes()).await?;
            let at_hash = b64::encode(digest.get(..16).unwrap_or_default());
            let expect = jwt::Expect {
                issuer: &self.issuer,
                client_id: &self.client_id,
                now_s: web::now_ms() / 1000.0,
                nonce: nonce.as_deref(),
                at_hash: Some((&at_hash, implicit)),
                sub: sub.as_deref(),
            };
            jwt::check_claims(&jws.claims, &expect).map_err(jwt::invalid)?;
            set(tokens, "claims", &jws.claims);
            Ok(())
        })
    }

    /// Whether the token set's scope (or the client's) includes `openid`.
    fn scope_of(&self, tokens: &JsValue) -> bool {
        get_str(tokens, "scope")
            .unwrap_or_else(|| self.scope.clone())
            .split(' ')
            .any(|s| s == "openid")
    }

    fn access_token(self: Rc<Self>) -> Fut<'static, JsValue> {
        let tokens = self.current();
        if tokens.is_null() || is_fresh(&tokens, self.skew_ms) {
            return web::wait(Ok(get(&tokens, "access_token")));
        }
        if get_str(&tokens, "refresh_token").is_none() {
            self.save(JsValue::NULL);
            return web::wait(Ok(JsValue::NULL));
        }
        let name = key(&self.client_id, ":refresh");
        web::with_lock(
            &name,
            alloc::boxed::Box::pin(async move { self.refresh_locked().await }),
        )
    }

    /// Under the lock: another tab may have refreshed while this one waited.
    fn refresh_locked(&self) -> Fut<'_, JsValue> {
        alloc::boxed::Box::pin(async move {
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
            let tokens = match self.token_request(body).await {
                Ok(t) => t,
                Err(e) => {
                    // The grant is gone (revoked, expired, reused): so is the login.
                    if get_str(&e, "error").as_deref() == Some("invalid_grant") {
                        self.save(JsValue::NULL);
                    }
                    return Err(e);
                }
            };
            // A new ID token on refresh must be about the same user (OIDC Core §12.2).
            let sub = get_str(&get(&old, "claims"), "sub");
            self.check_id_token(&tokens, None, false, sub).await?;
            // What the answer leaves out stays as it was.
            for k in ["refresh_token", "id_token", "claims"] {
                if get(&tokens, k).is_undefined() {
                    set(&tokens, k, &get(&old, k));
                }
            }
            self.save(tokens.clone());
            Ok(get(&tokens, "access_token"))
        })
    }

    fn userinfo(self: Rc<Self>) -> Fut<'static, JsValue> {
        alloc::boxed::Box::pin(async move {
            let token = self.clone().access_token().await?;
            let Some(token) = token.as_string() else {
                return Err(err("login_required", "nobody is logged in"));
            };
            let url = self.endpoint("userinfo_endpoint")?;
            let (status, body) = web::fetch_json(&url, None, Some(&token)).await?;
            if status != 200 {
                return Err(web::answer_error(status, &body));
            }
            Ok(body)
        })
    }

    fn logout(self: Rc<Self>) -> Fut<'static, JsValue> {
        alloc::boxed::Box::pin(async move {
            let tokens = self.current();
            let mut failed = Ok(JsValue::UNDEFINED);
            let endpoint = self.endpoint("revocation_endpoint").unwrap_or_default();
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
                    Ok((status, answer)) => failed = Err(web::answer_error(status, &answer)),
                    Err(e) => failed = Err(e),
                }
            }
            // Forgotten here even if the server could not be told.
            self.save(JsValue::NULL);
            failed
        })
    }
}
