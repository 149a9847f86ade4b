//! The browser, through web-sys and js-sys: objects, fetch, WebCrypto, storage, timers. JSON is
//! the browser's own (`JSON.parse`), so no JSON library is compiled in.

use alloc::string::String;
use alloc::vec::Vec;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response, Storage, Window};

pub type Res<T> = Result<T, JsValue>;

/// A boxed future. The helpers awaited from several places return one, so their state machine
/// is compiled once instead of inlined into every caller (the bundle's size is the point).
pub type Fut<'a, T> =
    core::pin::Pin<alloc::boxed::Box<dyn core::future::Future<Output = Res<T>> + 'a>>;

#[wasm_bindgen]
extern "C" {
    /// Web Locks (`navigator.locks`); web-sys has it only as an unstable API.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn lock_request(name: &str, callback: &JsValue) -> Res<Promise>;
}

/// An `Error` whose `error` and `error_description` are the OAuth ones (or ours, in the same
/// shape), so callers can branch on `e.error`.
pub fn err(code: &str, description: &str) -> JsValue {
    let e: JsValue = js_sys::Error::new(&[code, ": ", description].concat()).into();
    set(&e, "error", &code.into());
    set(&e, "error_description", &description.into());
    e
}

pub fn win() -> Res<Window> {
    web_sys::window().ok_or_else(|| err("unsupported", "no window"))
}

pub fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_str(o: &JsValue, key: &str) -> Option<String> {
    get(o, key).as_string()
}

pub fn set(o: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &key.into(), value);
}

pub fn object(pairs: &[(&str, &JsValue)]) -> JsValue {
    let o: JsValue = Object::new().into();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o
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

pub async fn wait(p: Promise) -> Res<JsValue> {
    JsFuture::from(p).await
}

/// The status and the JSON body (null when it is not JSON) of one request. `form` makes it a
/// POST of that urlencoded body; `bearer` adds the access token.
pub fn fetch_json<'a>(
    url: &'a str,
    form: Option<&'a str>,
    bearer: Option<&'a str>,
) -> Fut<'a, (u16, JsValue)> {
    alloc::boxed::Box::pin(async move {
        let init = RequestInit::new();
        let headers = object(&[("accept", &"application/json".into())]);
        if let Some(body) = form {
            init.set_method("POST");
            init.set_body(&body.into());
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
        init.set_headers(&headers);
        let resp: Response = wait(win()?.fetch_with_str_and_init(url, &init))
            .await
            .map_err(|_| err("network_error", "the request did not reach the server"))?
            .unchecked_into();
        let body = match resp.json() {
            Ok(p) => wait(p).await.unwrap_or(JsValue::NULL),
            Err(_) => JsValue::NULL,
        };
        Ok((resp.status(), body))
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

fn subtle() -> Res<web_sys::SubtleCrypto> {
    Ok(win()?.crypto()?.subtle())
}

pub fn sha256(data: &[u8]) -> Fut<'_, Vec<u8>> {
    alloc::boxed::Box::pin(async move {
        let digest = wait(subtle()?.digest_with_str_and_u8_array("SHA-256", data)?).await?;
        Ok(Uint8Array::new(&digest).to_vec())
    })
}

pub fn random_bytes(n: usize) -> Res<Vec<u8>> {
    let mut buf = alloc::vec![0u8; n];
    win()?.crypto()?.get_random_values_with_u8_array(&mut buf)?;
    Ok(buf)
}

/// Whether `signature` over `data` verifies with the JWK `jwk` under the JWS `alg` (RS256 or
/// ES256; anything else is refused before this is called).
pub async fn verify(alg: &str, jwk: &JsValue, signature: &[u8], data: &[u8]) -> Res<bool> {
    let sha256: JsValue = "SHA-256".into();
    let (import, check) = if alg == "ES256" {
        (
            object(&[("name", &"ECDSA".into()), ("namedCurve", &"P-256".into())]),
            object(&[("name", &"ECDSA".into()), ("hash", &sha256)]),
        )
    } else {
        let rsa = object(&[("name", &"RSASSA-PKCS1-v1_5".into()), ("hash", &sha256)]);
        (rsa.clone(), rsa)
    };
    let usages = Array::of1(&"verify".into());
    let key = wait(subtle()?.import_key_with_object(
        "jwk",
        jwk.unchecked_ref(),
        import.unchecked_ref(),
        false,
        &usages,
    )?)
    .await?;
    let ok = wait(subtle()?.verify_with_object_and_u8_array_and_u8_array(
        check.unchecked_ref(),
        key.unchecked_ref(),
        signature,
        data,
    )?)
    .await?;
    Ok(ok.as_bool() == Some(true))
}

pub fn storage(local: bool) -> Option<Storage> {
    let w = web_sys::window()?;
    if local {
        w.local_storage()
    } else {
        w.session_storage()
    }
    .ok()
    .flatten()
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wait(p).await;
}

/// Runs `job` while holding the Web Lock `name` (exclusive, across this origin's tabs), or
/// directly where the browser has no Web Locks.
pub async fn with_lock<F>(name: &str, job: F) -> Res<JsValue>
where
    F: core::future::Future<Output = Res<JsValue>> + 'static,
{
    let has_locks = !get(&get(&js_sys::global(), "navigator"), "locks").is_undefined();
    if !has_locks {
        return job.await;
    }
    // The lock is held until the promise the callback returns settles.
    let callback =
        Closure::once_into_js(move |_lock: JsValue| wasm_bindgen_futures::future_to_promise(job));
    wait(lock_request(name, &callback)?).await
}
