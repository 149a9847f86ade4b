//! The [`Fetcher`] of the Worker: a GET with the runtime's `fetch`, redirects not followed, the
//! body read chunk by chunk up to the limit, all under one deadline. Which URLs may be fetched
//! is decided in the core (`core/outbound.rs`); `global_fetch_strictly_public` stops names that
//! resolve to private addresses.

use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Headers, Method, RequestInit, RequestRedirect};

use crate::core::future::before;
use crate::core::outbound::{FetchError, FetchFuture, Fetched, Fetcher};

pub struct WorkerFetcher;

fn unreachable(e: impl std::fmt::Display) -> FetchError {
    FetchError::Unreachable(e.to_string())
}

impl Fetcher for WorkerFetcher {
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize, timeout_ms: u64) -> FetchFuture<'a> {
        Box::pin(async move {
            let deadline = worker::Delay::from(Duration::from_millis(timeout_ms));
            before(fetch(url, max_bytes), deadline)
                .await
                .unwrap_or(Err(FetchError::Timeout))
        })
    }
}

async fn fetch(url: &str, max_bytes: usize) -> Result<Fetched, FetchError> {
    let headers = Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(unreachable)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_redirect(RequestRedirect::Manual)
        .with_headers(headers);
    let request = worker::Request::new_with_init(url, &init).map_err(unreachable)?;
    let response = Fetch::Request(request).send().await.map_err(unreachable)?;
    let status = response.status_code();
    let cache_control = response.headers().get("cache-control").ok().flatten();
    let declared = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > max_bytes) {
        return Err(FetchError::TooLarge);
    }
    let web: web_sys::Response = response.into();
    let body = match web.body() {
        Some(stream) => read_capped(stream, max_bytes).await?,
        None => Vec::new(),
    };
    Ok(Fetched {
        status,
        body,
        cache_control,
    })
}

/// The whole stream, unless it passes `max_bytes` (then the stream is cancelled).
async fn read_capped(
    stream: web_sys::ReadableStream,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let field = |obj: &JsValue, name: &str| js_sys::Reflect::get(obj, &JsValue::from_str(name));
    let mut body = Vec::new();
    loop {
        let next = JsFuture::from(reader.read())
            .await
            .map_err(|_| unreachable("the body could not be read"))?;
        if field(&next, "done").ok().and_then(|d| d.as_bool()) != Some(false) {
            return Ok(body);
        }
        let chunk = field(&next, "value").map_err(|_| unreachable("unreadable chunk"))?;
        body.extend(js_sys::Uint8Array::new(&chunk).to_vec());
        if body.len() > max_bytes {
            let _ = JsFuture::from(reader.cancel()).await;
            return Err(FetchError::TooLarge);
        }
    }
}
