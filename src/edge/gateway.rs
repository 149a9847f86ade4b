//! Forwarding a gateway request (`core/gateway.rs` decides whether, where, and which headers
//! pass): the caller's method, headers and body stream go to the upstream, plus the identity
//! headers the core computed; the upstream's response, body still streaming, is the answer.
//! Nothing is buffered either way.

use worker::{Fetch, Headers, Method, RequestInit, RequestRedirect};

use crate::core::gateway::{forwards_request_header, forwards_response_header};

pub async fn forward(
    req: worker::Request,
    url: &str,
    identity: Vec<(&'static str, String)>,
) -> worker::Result<worker::Response> {
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if forwards_request_header(&name) {
            headers.append(&name, &value)?;
        }
    }
    for (name, value) in &identity {
        headers.set(name, value)?;
    }
    let method = req.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone())
        .with_redirect(RequestRedirect::Manual)
        .with_headers(headers);
    if !matches!(method, Method::Get | Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    let outbound = worker::Request::new_with_init(url, &init)?;
    match Fetch::Request(outbound).send().await {
        Ok(resp) => {
            let back = Headers::new();
            for (name, value) in resp.headers().entries() {
                if forwards_response_header(&name) {
                    back.append(&name, &value)?;
                }
            }
            Ok(resp.with_headers(back))
        }
        Err(e) => {
            let without_query = url.split('?').next().unwrap_or_default();
            worker::console_error!("gateway: upstream {without_query} failed: {e}");
            let body = serde_json::json!({
                "error": "bad_gateway",
                "error_description": "the upstream did not answer",
            });
            Ok(worker::Response::from_json(&body)?.with_status(502))
        }
    }
}
