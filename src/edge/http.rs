//! `worker::Request` ⇄ core request/response.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::http::{BodyError, BodyReader, Method, Request, Response};
use crate::core::router::refuse_body;

/// The core's view of the request. Bodies are read through [`BodyReader`]: an oversized one is
/// refused by its `Content-Length` before a byte is read, or as soon as a chunked one passes the
/// limit. Multipart bodies (Salesforce clients send both encodings) are read the same way, then
/// re-encoded as form-urlencoded.
pub async fn to_core(req: worker::Request) -> Result<Request, Response> {
    let url = req
        .url()
        .map_err(|_| refuse_body("", BodyError::Unreadable))?;
    let path = url.path().to_owned();
    let method = Method::parse(&raw_method(&req));
    let mut headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let has_body = matches!(
        method,
        Method::Post | Method::Put | Method::Patch | Method::Delete
    );
    let content_type = header("content-type").unwrap_or_default();
    let body = if has_body {
        read_body(&req, header("content-length").as_deref())
            .await
            .map_err(|e| refuse_body(&path, e))?
    } else {
        Vec::new()
    };
    let body = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let pairs = multipart_pairs(body, &content_type)
            .await
            .map_err(|_| refuse_body(&path, BodyError::Unreadable))?;
        headers.retain(|(k, _)| k != "content-type");
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    } else {
        body
    };
    Ok(Request {
        method,
        origin: url.origin().ascii_serialization(),
        path,
        query: url.query().unwrap_or_default().to_owned(),
        headers,
        body,
    })
}

/// The method as the client sent it. `worker::Request::method()` reads every method it does not
/// know (`QUERY`, `FOO`) as GET, which would serve them as GETs instead of a 405.
pub fn raw_method(req: &worker::Request) -> String {
    req.inner().method()
}

/// The request without its body (the gateway's check; the body stream stays in `req`).
pub fn head_to_core(req: &worker::Request) -> Result<Request, Response> {
    let url = req
        .url()
        .map_err(|_| refuse_body("", BodyError::Unreadable))?;
    Ok(Request {
        method: Method::parse(&raw_method(req)),
        origin: url.origin().ascii_serialization(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers: req
            .headers()
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body: Vec::new(),
    })
}

async fn read_body(
    req: &worker::Request,
    content_length: Option<&str>,
) -> Result<Vec<u8>, BodyError> {
    let mut body = BodyReader::start(content_length)?;
    // A request without a body has no stream.
    let Some(stream) = req.inner().body() else {
        return Ok(body.finish());
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let field = |obj: &JsValue, name: &str| js_sys::Reflect::get(obj, &JsValue::from_str(name));
    loop {
        let next = JsFuture::from(reader.read())
            .await
            .map_err(|_| BodyError::Unreadable)?;
        if field(&next, "done").ok().and_then(|d| d.as_bool()) != Some(false) {
            return Ok(body.finish());
        }
        let chunk = field(&next, "value").map_err(|_| BodyError::Unreadable)?;
        if let Err(e) = body.push(&js_sys::Uint8Array::new(&chunk).to_vec()) {
            // Refused: nothing more is stored. The rest is read and dropped up to
            // DISCARD_LIMIT, so the connection stays usable for the next request (workerd's
            // local proxy fails the next request on a connection left half-read); past that
            // the stream is cancelled.
            let mut discarded = 0usize;
            while discarded < DISCARD_LIMIT {
                let Ok(next) = JsFuture::from(reader.read()).await else {
                    break;
                };
                if field(&next, "done").ok().and_then(|d| d.as_bool()) != Some(false) {
                    return Err(e);
                }
                discarded += field(&next, "value")
                    .map(|v| js_sys::Uint8Array::new(&v).length() as usize)
                    .unwrap_or(DISCARD_LIMIT);
            }
            let _ = JsFuture::from(reader.cancel()).await;
            return Err(e);
        }
    }
}

/// How much of a refused chunked body is read and dropped before the stream is cancelled.
const DISCARD_LIMIT: usize = 1024 * 1024;

/// Text fields of a multipart body, in order; file parts are ignored. The runtime's own parser
/// reads the already size-checked bytes.
async fn multipart_pairs(
    mut body: Vec<u8>,
    content_type: &str,
) -> Result<Vec<(String, String)>, wasm_bindgen::JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", content_type)?;
    let init = web_sys::ResponseInit::new();
    init.set_headers(&headers);
    let parsed = web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), &init)?;
    let form = JsFuture::from(parsed.form_data()?).await?;
    let mut pairs = Vec::new();
    if let Some(iter) = js_sys::try_iter(&form)? {
        for entry in iter {
            let entry: js_sys::Array = entry?.dyn_into()?;
            if let (Some(k), Some(v)) = (entry.get(0).as_string(), entry.get(1).as_string()) {
                pairs.push((k, v));
            }
        }
    }
    Ok(pairs)
}

/// Every answer the worker makes itself (pages, JSON, errors) carries `X-Content-Type-Options:
/// nosniff`, so no browser reads a body as anything but its declared type.
pub fn from_core(resp: Response) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    if resp.header("x-content-type-options").is_none() {
        headers.set("x-content-type-options", "nosniff")?;
    }
    Ok(worker::Response::from_bytes(resp.body)?
        .with_status(resp.status)
        .with_headers(headers))
}
