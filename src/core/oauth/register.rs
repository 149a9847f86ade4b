//! Dynamic client registration: `POST /services/oauth2/register` (RFC 7591, OIDC Registration,
//! salesforce-reference.md §7) and the management of a registered client at
//! `/services/oauth2/register/{client_id}` with its registration access token (RFC 7592).
//!
//! Registration needs an initial access token from the admin API, whose uses are counted in a
//! shard (so `max_uses` holds under any concurrency), unless the org opened registration
//! (`open_registration`, throttled per address). A registered client is a connected app like
//! any other; its registration access token is stored hashed with it and replaced by each
//! update, by a conditional write, so of concurrent updates with one token exactly one wins.

use serde_json::{Map, Value};

use super::bearer::token_key;
use super::client_auth::strip_scheme;
use super::client_metadata::{check, describe, ClientMetadata, RegistrationKind};
use super::error::{ErrorCode, OAuthError};
use crate::core::config::Ctx;
use crate::core::http::{Method, Request, Response};
use crate::core::ids::new_consumer_key;
use crate::core::model::App;
use crate::core::org::org_settings;
use crate::core::secret::Secret;
use crate::core::storage::{Limit, Store};

pub const PATH: &str = "/services/oauth2/register";

/// Metadata is small; anything bigger is refused before it is parsed.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

fn invalid_token(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description)
}

fn invalid_metadata(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// `rest`: the client id after `/register/`, for RFC 7592 management.
pub async fn handle<S: Store>(ctx: &Ctx<'_, S>, req: &Request, rest: Option<&str>) -> Response {
    let result = match (req.method, rest) {
        (Method::Post, None) => register(ctx, req).await,
        (Method::Get | Method::Put | Method::Delete, Some(id)) => manage(ctx, req, id).await,
        (_, None) => return crate::core::router::method_not_allowed("POST"),
        (_, Some(_)) => return crate::core::router::method_not_allowed("GET, PUT, DELETE"),
    };
    match result {
        // A refused body is already an error response, `no-store` included.
        Ok(r) if r.header("cache-control").is_some() => r,
        Ok(r) => r.no_store(),
        Err(e) => e.to_response(false),
    }
}

fn bearer(req: &Request) -> Option<&str> {
    req.header("authorization")
        .and_then(|h| strip_scheme(h, "bearer"))
}

/// The body as a JSON object (RFC 7591 §3.1), size-capped.
fn metadata_object(req: &Request) -> Result<Map<String, Value>, Response> {
    if req.body.len() > MAX_METADATA_BYTES {
        let mut r = OAuthError::invalid_request(format!(
            "client metadata larger than {MAX_METADATA_BYTES} bytes"
        ))
        .to_response(false);
        r.status = 413;
        return Err(r);
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(invalid_metadata("the body must be a JSON object").to_response(false)),
    }
}

fn checked<S: Store>(
    ctx: &Ctx<'_, S>,
    obj: &Map<String, Value>,
) -> Result<ClientMetadata, OAuthError> {
    check(obj, ctx.config.dev_mode).map_err(|e| OAuthError::new(e.code, e.description))
}

async fn register<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, OAuthError> {
    let initial = bearer(req);
    if initial.is_none() {
        if !org_settings(ctx).await?.open_registration {
            return Err(invalid_token(
                "an initial access token is required to register",
            ));
        }
        if !ctx
            .store
            .allow(Limit::Registration, req.client_ip())
            .await?
        {
            return Err(OAuthError::new(
                ErrorCode::RateLimitExceeded,
                "too many registrations from this address; try again later",
            ));
        }
    }
    let obj = match metadata_object(req) {
        Ok(obj) => obj,
        Err(resp) => return Ok(resp),
    };
    let meta = checked(ctx, &obj)?;
    // The token is used up only by a registration that will happen.
    if let Some(token) = initial {
        if !ctx
            .store
            .use_registration_token(&token_key(token), ctx.now_s())
            .await?
        {
            return Err(invalid_token(
                "the initial access token is unknown, expired or used up",
            ));
        }
    }
    let now = ctx.now_s();
    let secret = meta
        .has_secret()
        .then(|| Secret::random_base62(ctx.rng, 64));
    let access_token = Secret::random_base62(ctx.rng, 43);
    let mut registration = meta.registration(RegistrationKind::Dynamic, now);
    registration.access_token_hash = Some(access_token.hash());
    let app = App {
        client_id: new_consumer_key(ctx.rng),
        // A client without a secret gets a hash nobody can match.
        secret_hash: secret
            .as_ref()
            .map_or_else(|| Secret::random_base62(ctx.rng, 43).hash(), Secret::hash),
        name: client_name(&meta),
        callback_urls: meta.redirect_uris.clone(),
        scopes: meta.scopes.clone(),
        policy: meta.policy(),
        created_at: now,
        registration: Some(registration),
    };
    ctx.store.create_app(&app).await?;
    let mut body = view(ctx, &app);
    if let Some(s) = &secret {
        body.insert("client_secret".into(), s.expose().into());
    }
    body.insert(
        "registration_access_token".into(),
        access_token.expose().into(),
    );
    Ok(Response::json(201, &body))
}

fn client_name(meta: &ClientMetadata) -> String {
    meta.client_name
        .as_deref()
        .map(|n| n.chars().take(200).collect())
        .unwrap_or_else(|| "Registered client".into())
}

/// The client's metadata as RFC 7591 §3.2.1 shows it, with where to manage it.
fn view<S: Store>(ctx: &Ctx<'_, S>, app: &App) -> Map<String, Value> {
    let Some(reg) = &app.registration else {
        return Map::new();
    };
    let mut body = describe(
        &app.client_id,
        &app.name,
        &app.callback_urls,
        &app.scopes,
        reg,
    );
    if reg.token_endpoint_auth_method.starts_with("client_secret_") {
        // RFC 7591 §3.2.1: REQUIRED with a secret; 0 = it does not expire.
        body.insert("client_secret_expires_at".into(), 0.into());
    }
    body.insert(
        "registration_client_uri".into(),
        ctx.url(&format!("{PATH}/{}", app.client_id)).into(),
    );
    body
}

/// RFC 7592 §2: read, update or delete with the registration access token. An unknown client
/// and a wrong token get the same 401 (§2.1, §2.3).
async fn manage<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    client_id: &str,
) -> Result<Response, OAuthError> {
    let refused = || invalid_token("the registration access token is not valid for this client");
    let presented = bearer(req)
        .map(|t| Secret::new(t).hash())
        .ok_or_else(refused)?;
    let app = ctx
        .store
        .find_registered_app(client_id, &presented)
        .await?
        .filter(|a| {
            a.registration
                .as_ref()
                .is_some_and(|r| r.kind == RegistrationKind::Dynamic)
        })
        .ok_or_else(refused)?;
    match req.method {
        Method::Get => Ok(Response::json(200, &view(ctx, &app))),
        Method::Delete => {
            ctx.store.delete_app(&app.client_id, ctx.now_s()).await?;
            Ok(Response::empty(204))
        }
        _ => update(ctx, req, app, &presented).await,
    }
}

/// RFC 7592 §2.2: the new metadata replaces the old as a whole; the authentication method stays
/// (a public client cannot become one with a secret it was never given); what an operator set
/// on the app (a run-as user, lifetimes) stays too.
async fn update<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: App,
    presented: &crate::core::secret::SecretHash,
) -> Result<Response, OAuthError> {
    let obj = match metadata_object(req) {
        Ok(obj) => obj,
        Err(resp) => return Ok(resp),
    };
    if obj.get("client_id").and_then(Value::as_str) != Some(app.client_id.as_str()) {
        return Err(invalid_metadata(
            "client_id must be sent, and be this client's",
        ));
    }
    if let Some(s) = obj.get("client_secret").and_then(Value::as_str) {
        if !Secret::new(s).matches(&app.secret_hash) {
            return Err(invalid_metadata("client_secret does not match"));
        }
    }
    let meta = checked(ctx, &obj)?;
    let Some(old) = &app.registration else {
        return Err(invalid_token("not a registered client"));
    };
    if meta.auth_method != old.token_endpoint_auth_method {
        return Err(invalid_metadata(
            "token_endpoint_auth_method cannot change; register a new client",
        ));
    }
    let access_token = Secret::random_base62(ctx.rng, 43);
    let mut registration = meta.registration(RegistrationKind::Dynamic, old.issued_at_s);
    registration.access_token_hash = Some(access_token.hash());
    let mut policy = app.policy.clone();
    policy.certificate = meta.policy().certificate;
    let updated = App {
        name: client_name(&meta),
        callback_urls: meta.redirect_uris.clone(),
        scopes: meta.scopes.clone(),
        policy,
        registration: Some(registration),
        ..app
    };
    if !ctx.store.update_registered_app(&updated, presented).await? {
        // Another update with the same token came first, and rotated it.
        return Err(invalid_token(
            "the registration access token is not valid for this client",
        ));
    }
    let mut body = view(ctx, &updated);
    body.insert(
        "registration_access_token".into(),
        access_token.expose().into(),
    );
    Ok(Response::json(200, &body))
}
