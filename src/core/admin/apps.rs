//! `/admin/apps`: connected apps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{json, json_object, reject_unknown, typed, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::http::Request;
use crate::core::ids::new_consumer_key;
use crate::core::keys::{from_jwk, parse_public_keys};
use crate::core::model::{App, AppPolicy, RefreshTokenPolicy};
use crate::core::oauth::redirect::check_callback_url;
use crate::core::oauth::scope::unknown_scopes;
use crate::core::secret::Secret;
use crate::core::storage::Store;

/// What an admin sends: the app's own fields plus every policy field, flat.
#[derive(Deserialize, Serialize)]
struct AppInput {
    name: String,
    callback_urls: Vec<String>,
    scopes: Vec<String>,
    #[serde(flatten)]
    policy: AppPolicy,
}

/// Field names an admin may send: the input's own plus every policy field (taken from the
/// policy's serialized form, so the list cannot drift from the type).
fn allowed_fields() -> Vec<String> {
    let mut fields: Vec<String> = ["name", "callback_urls", "scopes"]
        .map(String::from)
        .to_vec();
    if let Ok(Value::Object(policy)) = serde_json::to_value(AppPolicy::default()) {
        fields.extend(policy.keys().cloned());
    }
    fields
}

/// Longest refresh token lifetime or idle window: 10 years. Bounded so that no timestamp
/// arithmetic can overflow.
pub const MAX_REFRESH_WINDOW_S: u64 = 10 * 365 * 86400;
/// Longest reuse grace for a rotated refresh token.
pub const MAX_REUSE_GRACE_S: u64 = 60;

fn check_refresh_policy(p: &AppPolicy) -> Result<(), AdminError> {
    let window = match p.refresh_token_policy {
        RefreshTokenPolicy::Lifetime { lifetime_s } => Some(("lifetime_s", lifetime_s)),
        RefreshTokenPolicy::Inactivity { inactivity_s } => Some(("inactivity_s", inactivity_s)),
        RefreshTokenPolicy::Named(_) => None,
    };
    if let Some((field, v)) = window {
        if !(1..=MAX_REFRESH_WINDOW_S).contains(&v) {
            return Err(AdminError::bad_request(format!(
                "refresh_token_policy.{field} must be between 1 and {MAX_REFRESH_WINDOW_S}"
            )));
        }
    }
    if p.refresh_reuse_grace_s > MAX_REUSE_GRACE_S {
        return Err(AdminError::bad_request(format!(
            "refresh_reuse_grace_s must be between 0 and {MAX_REUSE_GRACE_S}"
        )));
    }
    // RFC 9700 §2.2.2: a public client's refresh tokens MUST be sender-constrained or rotate.
    if !p.secret_required_refresh && !p.rotate_refresh_tokens {
        return Err(AdminError::bad_request(
            "secret_required_refresh: false needs rotate_refresh_tokens: true (refresh tokens of public clients must rotate, RFC 9700 §2.2.2)",
        ));
    }
    Ok(())
}

fn validate(input: &AppInput) -> Result<(), AdminError> {
    if input.name.trim().is_empty() || input.name.len() > 255 {
        return Err(AdminError::bad_request("name must be 1 to 255 characters"));
    }
    for url in &input.callback_urls {
        check_callback_url(url).map_err(AdminError::bad_request)?;
    }
    if input.scopes.is_empty() {
        return Err(AdminError::bad_request("scopes must not be empty"));
    }
    let unknown = unknown_scopes(&input.scopes);
    if !unknown.is_empty() {
        return Err(AdminError::bad_request(format!(
            "unknown scope(s): {}",
            unknown.join(", ")
        )));
    }
    let p = &input.policy;
    check_refresh_policy(p)?;
    if !(60..=86400 * 30).contains(&p.access_token_ttl_s) {
        return Err(AdminError::bad_request(
            "access_token_ttl_s must be between 60 and 2592000",
        ));
    }
    // Salesforce's ID token validity: 1 to 720 minutes (salesforce-reference.md §0.6).
    if !(60..=720 * 60).contains(&p.id_token_ttl_s) {
        return Err(AdminError::bad_request(
            "id_token_ttl_s must be between 60 and 43200",
        ));
    }
    // The key that verifies JWT bearer and client assertions: refused now rather than at the
    // first assertion (a private key pasted by mistake is refused, and not stored).
    if let Some(cert) = &p.certificate {
        parse_public_keys(cert)
            .map_err(|e| AdminError::bad_request(format!("certificate: {}", e.0)))?;
    }
    if let Some(assets) = &p.asset_tokens {
        if assets.audiences.is_empty() || !(60..=86400).contains(&assets.ttl_s) {
            return Err(AdminError::bad_request(
                "asset_tokens needs audiences (at least one) and ttl_s between 60 and 86400",
            ));
        }
        for key in &assets.actor_keys {
            from_jwk(key).map_err(|e| {
                AdminError::bad_request(format!("asset_tokens.actor_keys: {}", e.0))
            })?;
        }
    }
    if p.client_credentials_user
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        return Err(AdminError::bad_request(
            "client_credentials_user must be a username (or null for none)",
        ));
    }
    for origin in &p.allowed_origins {
        let ok = url::Url::parse(origin)
            .is_ok_and(|u| u.origin().ascii_serialization() == *origin && u.origin().is_tuple());
        if !ok {
            return Err(AdminError::bad_request(format!(
                "allowed_origins entries must be origins like https://app.example.com: {origin}"
            )));
        }
    }
    Ok(())
}

/// The app as the API shows it; the secret only when just minted.
fn view(app: &App, secret: Option<&Secret>) -> Value {
    let input = AppInput {
        name: app.name.clone(),
        callback_urls: app.callback_urls.clone(),
        scopes: app.scopes.clone(),
        policy: app.policy.clone(),
    };
    let mut v = serde_json::to_value(input).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("client_id".into(), app.client_id.clone().into());
        obj.insert("created_at".into(), app.created_at.into());
        // How a registered client came to be (never its registration access token's hash).
        if let Some(r) = &app.registration {
            obj.insert(
                "registration".into(),
                serde_json::json!({
                    "kind": r.kind,
                    "grant_types": r.grant_types,
                    "response_types": r.response_types,
                    "token_endpoint_auth_method": r.token_endpoint_auth_method,
                    "issued_at": r.issued_at_s,
                }),
            );
        }
        if let Some(s) = secret {
            obj.insert("client_secret".into(), s.expose().into());
        }
    }
    v
}

fn parse_input(obj: Map<String, Value>) -> Result<AppInput, AdminError> {
    reject_unknown(&obj, &allowed_fields())?;
    for required in ["name", "callback_urls", "scopes"] {
        if !obj.contains_key(required) {
            return Err(AdminError::bad_request(format!(
                "missing field: {required}"
            )));
        }
    }
    let input: AppInput = typed(obj)?;
    validate(&input)?;
    Ok(input)
}

/// A consumer secret: 64 base62 characters (381 bits).
fn new_secret<S: Store>(ctx: &Ctx<'_, S>) -> Secret {
    Secret::random_base62(ctx.rng, 64)
}

/// An operator-chosen `client_id` (an existing consumer key kept through a migration, or a
/// well-known one like the demo app's `edge-oauth-demo`): 1 to 255 unreserved URI characters.
fn chosen_client_id(obj: &mut Map<String, Value>) -> Result<Option<String>, AdminError> {
    match obj.remove("client_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id))
            if !id.is_empty()
                && id.len() <= 255
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) =>
        {
            Ok(Some(id))
        }
        Some(_) => Err(AdminError::bad_request(
            "client_id must be 1 to 255 characters of A-Z a-z 0-9 - . _ ~",
        )),
    }
}

pub async fn create<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let mut obj = json_object(req, false)?;
    let chosen = chosen_client_id(&mut obj)?;
    if let Some(id) = &chosen {
        if ctx.store.get_app(id).await?.is_some() {
            return Err(AdminError::conflict("an app with this client_id exists"));
        }
    }
    let input = parse_input(obj)?;
    let secret = new_secret(ctx);
    let app = App {
        client_id: chosen.unwrap_or_else(|| new_consumer_key(ctx.rng)),
        secret_hash: secret.hash(),
        name: input.name,
        callback_urls: input.callback_urls,
        scopes: input.scopes,
        policy: input.policy,
        created_at: ctx.now_s(),
        registration: None,
    };
    ctx.store.create_app(&app).await?;
    json(201, &view(&app, Some(&secret)))
}

pub async fn list<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    let apps: Vec<Value> = ctx
        .store
        .list_apps()
        .await?
        .iter()
        .map(|a| view(a, None))
        .collect();
    json(200, &serde_json::json!({ "apps": apps }))
}

async fn load<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> Result<App, AdminError> {
    ctx.store
        .get_app(id)
        .await?
        .ok_or_else(|| AdminError::not_found("app"))
}

pub async fn read<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    json(200, &view(&load(ctx, id).await?, None))
}

/// JSON merge patch (RFC 7396) over the app's current fields, validated as a whole.
pub async fn update<S: Store>(ctx: &Ctx<'_, S>, req: &Request, id: &str) -> AdminResult {
    let patch = json_object(req, false)?;
    reject_unknown(&patch, &allowed_fields())?;
    let app = load(ctx, id).await?;
    let mut merged = match view(&app, None) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    merged.remove("client_id");
    merged.remove("created_at");
    merged.remove("registration");
    merged.extend(patch);
    let input = parse_input(merged)?;
    let updated = App {
        name: input.name,
        callback_urls: input.callback_urls,
        scopes: input.scopes,
        policy: input.policy,
        ..app
    };
    if !ctx.store.update_app(&updated).await? {
        return Err(AdminError::not_found("app"));
    }
    json(200, &view(&updated, None))
}

pub async fn delete<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    if !ctx.store.delete_app(id, ctx.now_s()).await? {
        return Err(AdminError::not_found("app"));
    }
    json(
        200,
        &serde_json::json!({ "client_id": id, "deleted": true }),
    )
}

pub async fn rotate_secret<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    let secret = new_secret(ctx);
    if !ctx.store.rotate_app_secret(id, &secret.hash()).await? {
        return Err(AdminError::not_found("app"));
    }
    json(200, &view(&load(ctx, id).await?, Some(&secret)))
}

pub async fn preauthorize<S: Store>(
    ctx: &Ctx<'_, S>,
    client_id: &str,
    user_id: &str,
) -> AdminResult {
    load(ctx, client_id).await?;
    ctx.store
        .get_user(user_id)
        .await?
        .ok_or_else(|| AdminError::not_found("user"))?;
    ctx.store.preauthorize(client_id, user_id).await?;
    json(
        200,
        &serde_json::json!({ "client_id": client_id, "user_id": user_id, "preauthorized": true }),
    )
}
