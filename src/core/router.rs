//! Maps (method, path) to a handler; the single entry point the edge calls.

use super::admin;
use super::config::Ctx;
use super::discovery;
use super::env::Rng;
use super::http::{Method, Request, Response};
use super::ids::{new_record_id, ORG_PREFIX};
use super::model::OrgSettings;
use super::oauth::cors::{self, Exposure};
use super::oauth::error::OAuthError;
use super::oauth::{authorize, interaction, introspect, revoke, token, userinfo};
use super::storage::{Store, StoreError};

/// The org's settings, created with CONTRACT §4 defaults and a fresh org id on first use.
pub async fn org_settings<S: Store>(ctx: &Ctx<'_, S>) -> Result<OrgSettings, StoreError> {
    if let Some(s) = ctx.store.load_settings().await? {
        return Ok(s);
    }
    init_org(ctx.store, ctx.rng).await
}

/// The org id (for token prefixes and identity URLs); cached by the edge store.
pub async fn org_id<S: Store>(ctx: &Ctx<'_, S>) -> Result<String, StoreError> {
    match ctx.store.org_id().await? {
        Some(id) => Ok(id),
        // First use of a fresh org: create it (without reading the settings a second time).
        None => Ok(init_org(ctx.store, ctx.rng).await?.org_id),
    }
}

async fn init_org<S: Store>(store: &S, rng: &dyn Rng) -> Result<OrgSettings, StoreError> {
    store
        .init_settings(&OrgSettings::with_defaults(new_record_id(rng, ORG_PREFIX)))
        .await
}

fn method_not_allowed(allowed: &str) -> Response {
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
        "/services/oauth2/token"
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
        return cors::preflight(origin);
    }
    let resp = route(ctx, req, path).await;
    cors::apply(resp, origin)
}

async fn route<S: Store>(ctx: &Ctx<'_, S>, req: &Request, path: &str) -> Response {
    use Method::*;
    match (path, req.method) {
        (
            "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server",
            Get | Head,
        ) => Response::json(200, &discovery::metadata(ctx))
            .with_header("cache-control", "public, max-age=300"),
        ("/id/keys", Get | Head) => Response::json(200, &ctx.config.keys.jwks())
            .with_header("cache-control", "public, max-age=300"),
        ("/services/oauth2/authorize", Get) => authorize::get(ctx, req).await,
        ("/services/oauth2/authorize", Post) => interaction::post(ctx, req).await,
        ("/services/oauth2/authorize", _) => method_not_allowed("GET, POST"),
        ("/services/oauth2/token", Post) => token::post(ctx, req).await,
        ("/services/oauth2/token", _) => method_not_allowed("POST"),
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
        ("/", Get | Head) => {
            Response::text(200, "edge-oauth: see /.well-known/openid-configuration\n")
        }
        _ => not_found(),
    }
}
