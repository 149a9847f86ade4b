//! `worker::Request` ⇄ core request/response.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::core::http::{Method, Request, Response, MAX_BODY_BYTES};
use crate::core::oauth::error::OAuthError;

/// The core's view of the request. Multipart bodies are re-encoded as form-urlencoded
/// (salesforce-reference.md §0.3: Salesforce clients send both).
pub async fn to_core(mut req: worker::Request) -> Result<Request, Response> {
    let url = req
        .url()
        .map_err(|_| OAuthError::invalid_request("bad URL").to_response(false))?;
    let method = Method::parse(req.method().as_ref());
    let mut headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let has_body = matches!(
        method,
        Method::Post | Method::Put | Method::Patch | Method::Delete
    );
    let content_type = req
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    let body = if !has_body {
        Vec::new()
    } else if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let pairs = multipart_pairs(&req).await.map_err(|_| {
            OAuthError::invalid_request("malformed multipart body").to_response(false)
        })?;
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
        req.bytes().await.unwrap_or_default()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(OAuthError::invalid_request("request body too large").to_response(false));
    }
    Ok(Request {
        method,
        origin: url.origin().ascii_serialization(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers,
        body,
    })
}

/// Text fields of a multipart body, in order; file parts are ignored.
async fn multipart_pairs(
    req: &worker::Request,
) -> Result<Vec<(String, String)>, wasm_bindgen::JsValue> {
    let form = JsFuture::from(req.inner().form_data()?).await?;
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

pub fn from_core(resp: Response) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    Ok(worker::Response::from_bytes(resp.body)?
        .with_status(resp.status)
        .with_headers(headers))
}
