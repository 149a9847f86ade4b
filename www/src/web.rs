//! The browser, through js-sys: objects, fetch, WebCrypto, storage, timers, Web Locks. Every
//! browser API is reached through a handful of generic calls (`get`, `set`, `call`) rather than
//! one typed web-sys binding per method: each binding costs an import and its glue in the
//! download, and the whole crate's budget is smaller than a typical JavaScript client (README,
//! "Size"). JSON is the browser's own (`JSON.parse`), so no JSON library is compiled in.

use alloc::string::String;
use alloc::vec::Vec;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub type Res<T> = Result<T, JsValue>;

/// A boxed future. The helpers awaited from several places return one, so their state machine
/// is compiled once instead of inlined into every caller.
pub type Fut<'a, T> =
    core::pin::Pin<alloc::boxed::Box<dyn core::future::Future<Output = Res<T>> + 'a>>;

/// An `Error` whose `error` and `error_description` are the OAuth ones (or ours, in the same
/// shape), so callers can branch on `e.error`.
#[inline(never)]
pub fn err(code: &str, description: &str) -> JsValue {
    let e: JsValue = js_sys::Error::new(&[code, ": ", description].concat()).into();
    set(&e, "error", &code.into());
    set(&e, "error_description", &description.into());
    e
}

/// `globalThis` (the window).
pub fn global() -> JsValue {
    js_sys::global().into()
}

#[inline(never)]
pub fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `globalThis.a.b.…`
pub fn path(keys: &[&str]) -> JsValue {
    keys.iter().fold(global(), |o, k| get(&o, k))
}

#[inline(never)]
pub fn get_str(o: &JsValue, key: &str) -> Option<String> {
    get(o, key).as_string()
}

#[inline(never)]
pub fn set(o: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &key.into(), value);
}

/// `o[method](...args)`; a throw is an `Err`.
#[inline(never)]
pub fn call(o: &JsValue, method: &str, args: &[&JsValue]) -> Res<JsValue> {
    let list = Array::new();
    for a in args {
        list.push(a);
    }
    let f = get(o, method);
    Reflect::apply::<fn() -> JsValue>(f.unchecked_ref(), o, &list)
}

pub fn object() -> JsValue {
    Object::new().into()
}

pub fn parse_json(s: &str) -> JsValue {
    JSON::parse(s).unwrap_or(JsValue::NULL)
}

pub fn to_json(v: &JsValue) -> String {
    JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Awaits a promise (or any value).
pub fn wait(p: Res<JsValue>) -> Fut<'static, JsValue> {
    alloc::boxed::Box::pin(async move { JsFuture::from(Promise::resolve(&p?)).await })
}

/// `decodeURIComponent`, after `+` → space (form encoding); undecodable input stays as it is.
pub fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    js_sys::decode_uri_component(&s)
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or(s)
}

/// The status and the JSON body (null when it is not JSON) of one request. `form` makes it a
/// POST of that urlencoded body; `bearer` adds the access token.
pub fn fetch_json<'a>(
    url: &'a str,
    form: Option<&'a str>,
    bearer: Option<&'a str>,
) -> Fut<'a, (u16, JsValue)> {
    alloc::boxed::Box::pin(async move {
        let init = object();
        let headers = object();
        set(&headers, "accept", &"application/json".into());
        if let Some(body) = form {
            set(&init, "method", &"POST".into());
            set(&init, "body", &body.into());
            set(
                &headers,
                "content-type",
                &"application/x-www-form-urlencoded".into(),
            );
        }
        if let Some(token) = bearer {
            set(
                &headers,
                "authorization",
                &["Bearer ", token].concat().into(),
            );
        }
        set(&init, "headers", &headers);
        let resp = wait(call(&global(), "fetch", &[&url.into(), &init]))
            .await
            .map_err(|_| err("network_error", "the server could not be reached"))?;
        let body = wait(call(&resp, "json", &[]))
            .await
            .unwrap_or(JsValue::NULL);
        Ok((get(&resp, "status").as_f64().unwrap_or(0.0) as u16, body))
    })
}

/// The OAuth error in a failed JSON answer (RFC 6749 §5.2).
pub fn answer_error(status: u16, body: &JsValue) -> JsValue {
    let code = get_str(body, "error").unwrap_or_else(|| {
        String::from(if status >= 500 {
            "server_error"
        } else {
            "invalid_response"
        })
    });
    err(
        &code,
        &get_str(body, "error_description").unwrap_or_default(),
    )
}

fn subtle(method: &str, args: &[&JsValue]) -> Res<JsValue> {
    call(&path(&["crypto", "subtle"]), method, args)
}

pub fn sha256(data: &[u8]) -> Fut<'_, Vec<u8>> {
    alloc::boxed::Box::pin(async move {
        let digest = wait(subtle(
            "digest",
            &[&"SHA-256".into(), &Uint8Array::from(data).into()],
        ))
        .await?;
        Ok(Uint8Array::new(&digest).to_vec())
    })
}

/// `n` bytes from `crypto.getRandomValues`; never anything weaker.
pub fn random_bytes(n: u32) -> Res<Vec<u8>> {
    let buf = Uint8Array::new_with_length(n);
    call(&path(&["crypto"]), "getRandomValues", &[&buf])?;
    Ok(buf.to_vec())
}

/// Whether `signature` over `data` verifies with the JWK `jwk` under the JWS `alg` (RS256 or
/// ES256; anything else is refused before this is called).
pub fn verify<'a>(
    alg: &'a str,
    jwk: JsValue,
    signature: &'a [u8],
    data: &'a [u8],
) -> Fut<'a, bool> {
    alloc::boxed::Box::pin(async move {
        let (import, check) = (object(), object());
        if alg == "ES256" {
            set(&import, "name", &"ECDSA".into());
            set(&import, "namedCurve", &"P-256".into());
            set(&check, "name", &"ECDSA".into());
            set(&check, "hash", &"SHA-256".into());
        } else {
            set(&import, "name", &"RSASSA-PKCS1-v1_5".into());
            set(&import, "hash", &"SHA-256".into());
            set(&check, "name", &"RSASSA-PKCS1-v1_5".into());
        }
        let usages: JsValue = Array::of1(&"verify".into()).into();
        let key = wait(subtle(
            "importKey",
            &[&"jwk".into(), &jwk, &import, &JsValue::FALSE, &usages],
        ))
        .await?;
        let ok = wait(subtle(
            "verify",
            &[
                &check,
                &key,
                &Uint8Array::from(signature).into(),
                &Uint8Array::from(data).into(),
            ],
        ))
        .await?;
        Ok(ok.is_truthy())
    })
}

/// `sessionStorage` or `localStorage` (undefined where the browser refuses it).
pub fn storage(local: bool) -> JsValue {
    path(&[if local {
        "localStorage"
    } else {
        "sessionStorage"
    }])
}

pub fn storage_get(local: bool, key: &str) -> Option<String> {
    call(&storage(local), "getItem", &[&key.into()])
        .ok()?
        .as_string()
}

/// Sets `key` to `value`, or removes it for `None`.
pub fn storage_put(local: bool, key: &str, value: Option<&str>) -> Res<JsValue> {
    match value {
        Some(v) => call(&storage(local), "setItem", &[&key.into(), &v.into()]),
        None => call(&storage(local), "removeItem", &[&key.into()]),
    }
}

/// Resolves after `ms` milliseconds.
pub fn sleep(ms: u32) -> Fut<'static, JsValue> {
    let p = Promise::new(&mut |resolve, _| {
        let _ = call(&global(), "setTimeout", &[&resolve, &ms.into()]);
    });
    wait(Ok(p.into()))
}

/// Runs `job` while holding the Web Lock `name` (exclusive, across this origin's tabs), or
/// directly where the browser has no Web Locks.
pub fn with_lock(name: &str, job: Fut<'static, JsValue>) -> Fut<'static, JsValue> {
    let locks = path(&["navigator", "locks"]);
    if locks.is_undefined() {
        return job;
    }
    // The lock is held until the promise the callback returns settles.
    let callback =
        Closure::once_into_js(move |_lock: JsValue| wasm_bindgen_futures::future_to_promise(job));
    wait(call(&locks, "request", &[&name.into(), &callback]))
}
