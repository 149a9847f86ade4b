//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document-00, as the MCP
//! authorization spec pins it): a `client_id` that is an `https` URL names a JSON document
//! about the client, fetched from that URL. The client is kept as a public app keyed by its
//! URL (approvals and token families work as for any app); the app record doubles as the
//! document's cache, refreshed once the document's `Cache-Control` lifetime (at most 24 h) has
//! run out. A failed fetch is never cached: the next request tries again.

use serde_json::Value;

use super::authz::Failure;
use super::client_metadata::{check, RegistrationKind};
use super::error::{ErrorCode, OAuthError};
use crate::core::config::Ctx;
use crate::core::model::App;
use crate::core::org::org_settings;
use crate::core::outbound::{check_url, max_age_s, FetchError};
use crate::core::secret::Secret;
use crate::core::storage::{Limit, Store};

/// The draft's limits: documents are small, and slow hosts must not hold a request.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
pub const FETCH_TIMEOUT_MS: u64 = 5_000;
/// The longest a document is trusted without fetching it again.
pub const MAX_CACHE_S: u64 = 86_400;

/// Whether a `client_id` names a metadata document (an `https` URL; in development also
/// `http://127.0.0.1…`), rather than being a consumer key.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn refused(why: impl std::fmt::Display) -> Failure {
    Failure::Page(OAuthError::new(
        ErrorCode::InvalidClientId,
        format!("client ID metadata document: {why}"),
    ))
}

/// The app of a metadata-document client, fetched (or refreshed) when its cached copy is
/// missing or stale. Every failure is an error page: until the document is read there is no
/// redirect URI to trust. A document new to the org counts against the caller's address like
/// an open registration (`RL_REGISTER`): it writes an app record, and URLs are free to invent.
pub async fn app<S: Store>(
    ctx: &Ctx<'_, S>,
    client_id: &str,
    caller_ip: &str,
) -> Result<App, Failure> {
    let settings = org_settings(ctx).await?;
    let prefixes = &settings.client_id_metadata_document_prefixes;
    if !prefixes.is_empty() && !prefixes.iter().any(|p| client_id.starts_with(p.as_str())) {
        return Err(refused("this URL is not allowed by the org"));
    }
    check_url(client_id, ctx.config.dev_mode).map_err(refused)?;
    let now = ctx.now_s();
    let stored = ctx.store.get_app(client_id).await?;
    let fresh = stored
        .as_ref()
        .and_then(|a| a.registration.as_ref())
        .is_some_and(|r| {
            r.kind == RegistrationKind::MetadataDocument
                && r.document_expires_at_s.is_some_and(|e| e > now)
        });
    if let (Some(app), true) = (&stored, fresh) {
        return Ok(app.clone());
    }
    let fetched = ctx
        .config
        .outbound
        .0
        .get(client_id, MAX_DOCUMENT_BYTES, FETCH_TIMEOUT_MS)
        .await
        .map_err(|e| match e {
            FetchError::TooLarge => refused(format!("too large (over {MAX_DOCUMENT_BYTES} bytes)")),
            other => refused(other),
        })?;
    match fetched.status {
        200 => {}
        300..=399 => {
            return Err(refused(
                "the URL answered with a redirect, which is not followed",
            ))
        }
        s => return Err(refused(format!("unreachable (HTTP {s})"))),
    }
    let doc: serde_json::Map<String, Value> = match serde_json::from_slice(&fetched.body) {
        Ok(Value::Object(doc)) => doc,
        _ => return Err(refused("not a JSON object")),
    };
    let app = app_from(ctx, client_id, &doc, stored.as_ref())?;
    let mut app = app;
    if let Some(r) = app.registration.as_mut() {
        r.document_expires_at_s =
            Some(now + max_age_s(fetched.cache_control.as_deref(), MAX_CACHE_S).unwrap_or(0));
    }
    match stored {
        Some(_) => {
            ctx.store.update_app(&app).await?;
        }
        None => {
            if !ctx.store.allow(Limit::Registration, caller_ip).await? {
                return Err(Failure::Page(OAuthError::new(
                    ErrorCode::RateLimitExceeded,
                    "too many new client ID metadata documents from this address; try again later",
                )));
            }
            ctx.store.create_app(&app).await?
        }
    }
    Ok(app)
}

/// The app a document describes, after the draft's checks: its `client_id` is exactly the
/// URL, it names itself and its redirect URIs, and it is a public client (no shared secret can
/// be proven by a document anyone can read).
fn app_from<S: Store>(
    ctx: &Ctx<'_, S>,
    url: &str,
    doc: &serde_json::Map<String, Value>,
    stored: Option<&App>,
) -> Result<App, Failure> {
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(refused(
            "its client_id does not match the URL it was fetched from",
        ));
    }
    if doc.contains_key("client_secret") || doc.contains_key("client_secret_expires_at") {
        return Err(refused("a document cannot carry a client_secret"));
    }
    match doc.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(_) => {
            return Err(refused(
                "token_endpoint_auth_method must be none (public clients only)",
            ))
        }
    }
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| refused("client_name is required"))?;
    if doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(refused("redirect_uris is required"));
    }
    let mut input = doc.clone();
    input.insert("token_endpoint_auth_method".into(), "none".into());
    let meta = check(&input, ctx.config.dev_mode).map_err(|e| refused(e.description))?;
    let registration = meta.registration(
        RegistrationKind::MetadataDocument,
        stored.map_or(ctx.now_s(), |a| a.created_at),
    );
    Ok(App {
        client_id: url.to_owned(),
        // No secret: a random hash nobody can match.
        secret_hash: Secret::random_base62(ctx.rng, 43).hash(),
        name: name.chars().take(200).collect(),
        callback_urls: meta.redirect_uris.clone(),
        scopes: meta.scopes.clone(),
        policy: meta.policy(),
        created_at: stored.map_or(ctx.now_s(), |a| a.created_at),
        registration: Some(registration),
    })
}
