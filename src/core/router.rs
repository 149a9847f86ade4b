//! Maps (method, path) to a handler; the single entry point the edge calls.

use super::admin;
use super::config::Ctx;
use super::discovery;
use super::gateway;
use super::http::{BodyError, Method, Request, Response};
use super::oauth::authz::error_page;
use super::oauth::cors::{self, Exposure};
use super::oauth::error::OAuthError;
use super::oauth::token::Endpoint;
use super::oauth::{
    authorize, hybrid, introspect, register, revoke, token, userinfo, verification,
};
use super::storage::Store;
use super::tools;

/// The answer to a body the edge refused before reading it: 413 for one over the limit (RFC
/// 9110 §15.5.14), 400 for an unreadable one; RFC 6749 JSON `invalid_request` except at the
/// authorization endpoint, whose errors are pages.
pub fn refuse_body(path: &str, e: BodyError) -> Response {
    let (status, description) = match e {
        BodyError::TooLarge => (413, "request body too large"),
        BodyError::Unreadable => (400, "unreadable request body"),
    };
    let error = OAuthError::invalid_request(description);
    let mut resp = if path.trim_end_matches('/') == "/services/oauth2/authorize" {
        error_page(&error)
    } else {
        error.to_response(false)
    };
    resp.status = status;
    resp
}

/// RFC 9110 §15.5.6: 405 with the methods the resource takes.
pub fn method_not_allowed(allowed: &str) -> Response {
    let mut r = OAuthError::invalid_request(format!("method not allowed; use {allowed}"))
        .to_response(false);
    r.status = 405;
    r.with_header("allow", allowed)
}

fn not_found() -> Response {
    Response::json(
        404,
        &serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
    )
}

pub async fn handle<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    // Browser-facing JSON endpoints and who may read them cross-origin (CONTRACT §2).
    let exposure = match path {
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/id/keys" => Some(Exposure::Public),
        // Browser-based MCP clients discover and register cross-origin.
        p if p.starts_with(gateway::METADATA_PATH) || p.starts_with(register::PATH) => {
            Some(Exposure::Public)
        }
        "/services/oauth2/token"
        | "/services/oauth2/device"
        | "/services/oauth2/userinfo"
        | "/services/oauth2/revoke"
        | "/services/oauth2/introspect" => Some(Exposure::Registered),
        p if p.starts_with("/id/") => Some(Exposure::Registered),
        _ => None,
    };
    let origin = match exposure {
        Some(e) => match cors::allowed_origin(ctx, req, e).await {
            Ok(o) => o,
            Err(_) => return OAuthError::server_error().to_response(false),
        },
        None => None,
    };
    if req.method == Method::Options && exposure.is_some() {
        // RFC 7592 manages a registration with PUT and DELETE too.
        let methods = if path.starts_with(register::PATH) {
            "GET, POST, PUT, DELETE, OPTIONS"
        } else {
            "GET, POST, OPTIONS"
        };
        return cors::preflight(origin, methods);
    }
    let resp = route(ctx, req, path).await;
    cors::apply(html_for_browsers(req, resp), origin)
}

/// An error page (`authz::error_page`: plain text `error=…&error_description=…`) becomes the
/// styled HTML page for a caller that accepts `text/html`; other callers keep the text.
fn html_for_browsers(req: &Request, resp: Response) -> Response {
    let is_error_page = resp.status >= 400
        && resp.header("content-type") == Some("text/plain;charset=UTF-8")
        && resp.body.starts_with(b"error=");
    let wants_html = req
        .header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
    if !(is_error_page && wants_html) {
        return resp;
    }
    let line = String::from_utf8_lossy(&resp.body);
    let mut page = super::oauth::pages::error(resp.status, line.trim_end());
    // Headers the error carried (e.g. Retry-After on a 429) stay.
    for (k, v) in &resp.headers {
        if page.header(k).is_none() {
            page = page.with_header(k, v);
        }
    }
    page
}

async fn route<S: Store>(ctx: &Ctx<'_, S>, req: &Request, path: &str) -> Response {
    use Method::*;
    match (path, req.method) {
        (
            "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server",
            Get | Head,
        ) => match super::org::org_settings(ctx).await {
            // What the org's switches allow, so a short cache: a blocked flow leaves the list
            // within a minute.
            Ok(settings) => Response::json(200, &discovery::metadata(ctx, &settings))
                .with_header("cache-control", "public, max-age=60"),
            Err(e) => OAuthError::from(e).to_response(false),
        },
        ("/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server", _) => {
            method_not_allowed("GET, HEAD")
        }
        ("/id/keys", Get | Head) => match ctx.config.keys.jwks() {
            Ok(jwks) => {
                let max_age = ctx.config.jwks_max_age_s();
                Response::json(200, &jwks)
                    .with_header("cache-control", &format!("public, max-age={max_age}"))
            }
            Err(e) => OAuthError::from(e).to_response(false),
        },
        ("/id/keys", _) => method_not_allowed("GET, HEAD"),
        ("/services/oauth2/authorize", Get) => authorize::get(ctx, req).await,
        ("/services/oauth2/authorize", Post) => authorize::post(ctx, req).await,
        ("/services/oauth2/authorize", _) => method_not_allowed("GET, POST"),
        ("/secur/frontdoor.jsp", Get | Post) => hybrid::frontdoor(ctx, req).await,
        ("/secur/frontdoor.jsp", _) => method_not_allowed("GET, POST"),
        ("/services/oauth2/token", Post) => token::post(ctx, req, Endpoint::Token).await,
        ("/services/oauth2/token", _) => method_not_allowed("POST"),
        ("/services/oauth2/device", Post) => token::post(ctx, req, Endpoint::Device).await,
        ("/services/oauth2/device", _) => method_not_allowed("POST"),
        (tools::ASSET_TOKEN_PATH, Get | Head) => tools::asset_token_page(),
        (tools::ASSET_TOKEN_SCRIPT_PATH, Get | Head) => tools::asset_token_script(),
        (tools::ASSET_TOKEN_PATH | tools::ASSET_TOKEN_SCRIPT_PATH, _) => {
            method_not_allowed("GET, HEAD")
        }
        (verification::PATH, Get | Head) => verification::get(ctx, req).await,
        (verification::PATH, Post) => verification::post(ctx, req).await,
        (verification::PATH, _) => method_not_allowed("GET, POST"),
        ("/services/oauth2/revoke", Get | Post) => revoke::handle(ctx, req).await,
        ("/services/oauth2/revoke", _) => method_not_allowed("GET, POST"),
        ("/services/oauth2/introspect", Post) => introspect::handle(ctx, req).await,
        ("/services/oauth2/introspect", _) => method_not_allowed("POST"),
        ("/services/oauth2/userinfo", Get | Post) => userinfo::userinfo(ctx, req).await,
        ("/services/oauth2/userinfo", _) => method_not_allowed("GET, POST"),
        (p, m) if p.starts_with("/id/") => match (p.split('/').collect::<Vec<_>>().as_slice(), m) {
            (["", "id", org, user], Get | Post) => userinfo::identity(ctx, req, org, user).await,
            (["", "id", _, _], _) => method_not_allowed("GET, POST"),
            _ => not_found(),
        },
        (p, _) if p == "/admin" || p.starts_with("/admin/") => admin::handle(ctx, req).await,
        (register::PATH, _) => register::handle(ctx, req, None).await,
        (p, _)
            if p.starts_with(register::PATH)
                && p.as_bytes().get(register::PATH.len()) == Some(&b'/') =>
        {
            let id = &p[register::PATH.len() + 1..];
            register::handle(ctx, req, (!id.is_empty()).then_some(id)).await
        }
        (p, Get | Head) if p.starts_with(gateway::METADATA_PATH) => {
            gateway::metadata(ctx, p).unwrap_or_else(not_found)
        }
        (p, _) if p.starts_with(gateway::METADATA_PATH) => match gateway::metadata(ctx, p) {
            Some(_) => method_not_allowed("GET, HEAD"),
            None => not_found(),
        },
        ("/", Get | Head) => {
            Response::text(200, "edge-oauth: see /.well-known/openid-configuration\n")
        }
        _ => not_found(),
    }
}
