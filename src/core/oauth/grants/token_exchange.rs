//! The asset token flow (salesforce-reference.md §9): RFC 8693 token exchange of a user's access
//! token (`subject_token`) and a JWT describing a device (`actor_token`) for an **asset token**,
//! a JWT signed with our keys that links the device to the user, for the services the app
//! names (`asset_tokens.audiences`). The device is recorded as an asset (`GET /admin/assets`);
//! a revoked asset gets no new asset tokens, and its tokens introspect inactive. Asset tokens are
//! self-contained with a short lifetime (`asset_tokens.ttl_s`): a service that only checks the
//! signature accepts one until it expires.
//!
//! The actor token: `did` (required), `Name`, `Asset` (an object: `Name`, `SerialNumber`, …),
//! `cnf.jwk` (the device's public key, RFC 7800). It must be signed by one of the app's
//! `asset_tokens.actor_keys`, unless the app sets `allow_unsigned`; when it carries `cnf.jwk`,
//! it must also verify with that key (the device proves it holds it).

use serde_json::{Map, Value};

use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::ids::new_record_id;
use crate::core::keys::{from_jwk, PublicKey, TYP_ASSET_TOKEN};
use crate::core::model::{App, AssetTokenPolicy};
use crate::core::oauth::assertion::{check_signature, instant_ms, Refusal, Untrusted, LEEWAY_S};
use crate::core::oauth::bearer::live_access;
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{ErrorCode, OAuthError};
use crate::core::oauth::issue::identity_url;
use crate::core::org::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{Asset, Store};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Salesforce's Asset record prefix.
const ASSET_PREFIX: &str = "02i";

pub async fn exchange<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    let required = |name: &'static str| -> Result<&str, OAuthError> {
        params
            .get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} required")))
    };
    // 1. RFC 8693 §2.1: the token types we exchange.
    if required("subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    let subject = required("subject_token")?;
    let actor = required("actor_token")?;
    if required("actor_token_type")? != JWT_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!(
            "actor_token_type must be {JWT_TOKEN_TYPE}"
        )));
    }
    // 2. The subject: a live access token of ours, and its app.
    let live = live_access(ctx, subject).await?.ok_or_else(|| {
        OAuthError::invalid_grant("the subject token is invalid, expired or revoked")
    })?;
    let app = ctx
        .store
        .get_app(&live.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the subject token's app is gone"))?;
    // A client that authenticates must be the subject token's (Salesforce sends no client).
    if let Some(creds) = credentials(req, params)? {
        if creds.client_id != app.client_id {
            return Err(OAuthError::invalid_grant(
                "the subject token was issued to another client",
            ));
        }
        authenticate(ctx, req, Some(creds), |_| false).await?;
    }
    let policy = app.policy.asset_tokens.as_ref().ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "asset tokens are not enabled for this app",
        )
    })?;
    // RFC 8693 §2.2.2: a target we would not issue for is `invalid_target`, never ignored. An
    // asset token is for the app's configured audiences only; `audience` or `resource` may name
    // one of them.
    for name in ["audience", "resource"] {
        for (_, target) in params.pairs().iter().filter(|(k, _)| k == name) {
            if !policy.audiences.iter().any(|a| a == target) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("{name} is not one of this app's asset token audiences"),
                ));
            }
        }
    }
    // 3. The actor token: signed as the app requires, about a device.
    let device = actor_claims(ctx, actor, policy).await?;
    let did = device
        .get("did")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty() && d.len() <= 255)
        .ok_or_else(|| OAuthError::invalid_grant("the actor token has no did (device id)"))?;
    let asset_obj = device.get("Asset").filter(|a| a.is_object());
    let name = device
        .get("Name")
        .or_else(|| asset_obj.and_then(|a| a.get("Name")))
        .and_then(Value::as_str)
        .unwrap_or(did);
    let serial = asset_obj
        .and_then(|a| a.get("SerialNumber"))
        .and_then(Value::as_str);
    // 4. The asset: recorded (or found), and not revoked.
    let now = ctx.now_s();
    let asset = ctx
        .store
        .record_asset(&Asset {
            asset_id: new_record_id(ctx.rng, ASSET_PREFIX),
            client_id: app.client_id.clone(),
            device_id: did.to_owned(),
            name: name.chars().take(255).collect(),
            serial_number: serial.map(|s| s.chars().take(255).collect()),
            user_id: live.user_id.clone(),
            created_at_s: now,
            revoked_at_s: None,
        })
        .await?;
    if asset.revoked_at_s.is_some() {
        return Err(OAuthError::invalid_grant("this asset was revoked"));
    }
    // 5. The asset token.
    let token = asset_token(ctx, &app, policy, &asset, &device).await?;
    ctx.audit(
        crate::core::audit::AuditEvent::new(
            crate::core::audit::Kind::Token,
            true,
            &app.client_id,
            format!("{GRANT_TYPE} (asset {})", asset.asset_id),
        )
        .user(Some(&asset.user_id))
        .client(Some(&app.client_id)),
    );
    let body = serde_json::json!({
        "access_token": token.expose(),
        "issued_token_type": JWT_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": policy.ttl_s,
    });
    Ok(Response::json(200, &body).no_store())
}

/// The actor token's claims, once its signatures satisfy the app's policy.
async fn actor_claims<S: Store>(
    ctx: &Ctx<'_, S>,
    actor: &str,
    policy: &AssetTokenPolicy,
) -> Result<Map<String, Value>, OAuthError> {
    let refused = |why: String| OAuthError::invalid_grant(format!("actor token: {why}"));
    let jwt = Untrusted::parse(actor).map_err(|_| refused("not a JWT".into()))?;
    let claims = jwt.claims().clone();
    let signed = jwt.alg() != "none";
    // Signed by a key the app registered?
    let registered: Vec<PublicKey> = policy
        .actor_keys
        .iter()
        .filter_map(|k| from_jwk(k).ok())
        .collect();
    let by_registered =
        signed && !registered.is_empty() && signature(ctx, &jwt, &registered).await?;
    if !by_registered && !policy.allow_unsigned {
        return Err(refused(if signed {
            "invalid signature (not by a key registered for the app's actor tokens)".into()
        } else {
            "unsigned actor tokens are not allowed for this app".into()
        }));
    }
    // Proof of possession of the device key it names (RFC 7800 §3.2): a `cnf` is copied into
    // the asset token, so it must be a key the device proved it holds.
    if let Some(cnf) = claims.get("cnf") {
        let jwk = cnf
            .get("jwk")
            .ok_or_else(|| refused("cnf must carry the device's public key as jwk".into()))?;
        let key = from_jwk(jwk).map_err(|e| refused(format!("cnf.jwk: {}", e.0)))?;
        if !signed || !signature(ctx, &jwt, std::slice::from_ref(&key)).await? {
            return Err(refused("not signed by the device key in cnf.jwk".into()));
        }
    }
    if claims.get("Asset").is_some_and(|a| !a.is_object()) {
        return Err(refused("Asset must be an object".into()));
    }
    // RFC 7519 §4.1.4–4.1.6, with the same leeway as assertions.
    let now_ms = ctx.clock.now_ms();
    if let Some(exp) = claims.get("exp") {
        let ok = instant_ms(Some(exp)).is_some_and(|e| e + LEEWAY_S * 1000 > now_ms);
        if !ok {
            return Err(refused("expired".into()));
        }
    }
    for name in ["nbf", "iat"] {
        if let Some(v) = claims.get(name) {
            let ok = instant_ms(Some(v)).is_some_and(|t| t <= now_ms + LEEWAY_S * 1000);
            if !ok {
                return Err(refused(format!("{name} is in the future")));
            }
        }
    }
    Ok(claims)
}

/// Whether `jwt` verifies with one of `keys` (a refused header or signature is `false`).
async fn signature<S: Store>(
    ctx: &Ctx<'_, S>,
    jwt: &Untrusted<'_>,
    keys: &[PublicKey],
) -> Result<bool, OAuthError> {
    match check_signature(ctx, jwt, keys).await {
        Ok(()) => Ok(true),
        Err(Refusal::Store(e)) => Err(e.into()),
        Err(_) => Ok(false),
    }
}

/// The asset token: `typ: asset+jwt`, signed with the active key; `sub` the user's identity URL,
/// `aud` the app's asset audiences, the device's `did`, `Name`, `Asset` and `cnf`, and the
/// recorded `asset_id`.
async fn asset_token<S: Store>(
    ctx: &Ctx<'_, S>,
    app: &App,
    policy: &AssetTokenPolicy,
    asset: &Asset,
    device: &Map<String, Value>,
) -> Result<Secret, OAuthError> {
    let now = ctx.now_s();
    let org_id = org_id(ctx).await?;
    let mut claims = Map::new();
    claims.insert("iss".into(), ctx.issuer.clone().into());
    claims.insert(
        "sub".into(),
        identity_url(ctx, &org_id, &asset.user_id).into(),
    );
    claims.insert("aud".into(), policy.audiences.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), (now + policy.ttl_s).into());
    claims.insert(
        "jti".into(),
        Secret::random_base62(ctx.rng, 22).expose().into(),
    );
    claims.insert("client_id".into(), app.client_id.clone().into());
    claims.insert("asset_id".into(), asset.asset_id.clone().into());
    claims.insert("did".into(), asset.device_id.clone().into());
    claims.insert("Name".into(), asset.name.clone().into());
    for copied in ["Asset", "cnf"] {
        if let Some(v) = device.get(copied) {
            claims.insert(copied.into(), v.clone());
        }
    }
    let key = ctx.config.keys.active()?;
    key.sign(TYP_ASSET_TOKEN, &Value::Object(claims))
        .await
        .map(Secret::new)
        .map_err(OAuthError::from)
}

/// RFC 7662 for an asset token (`typ: asset+jwt`), or `None` for any other token: active while
/// it verifies with our keys, has not expired, belongs to the asking client and its asset is
/// not revoked.
pub async fn introspect<S: Store>(
    ctx: &Ctx<'_, S>,
    token: &str,
    client_id: &str,
) -> Result<Option<Value>, OAuthError> {
    let Ok(jwt) = Untrusted::parse(token) else {
        return Ok(None);
    };
    if jwt.typ() != Some(TYP_ASSET_TOKEN) {
        return Ok(None);
    }
    let inactive = Some(serde_json::json!({ "active": false }));
    let ours: Vec<PublicKey> = match ctx.config.keys.jwks() {
        Ok(jwks) => jwks["keys"]
            .as_array()
            .map(|keys| keys.iter().filter_map(|k| from_jwk(k).ok()).collect())
            .unwrap_or_default(),
        Err(_) => return Ok(inactive),
    };
    if !signature(ctx, &jwt, &ours).await? {
        return Ok(inactive);
    }
    let c = jwt.claims();
    let exp = c.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let asset_id = c
        .get("asset_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if exp <= ctx.now_s() || c.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Ok(inactive);
    }
    let live = ctx
        .store
        .get_asset(asset_id)
        .await?
        .is_some_and(|a| a.revoked_at_s.is_none() && a.client_id == client_id);
    if !live {
        return Ok(inactive);
    }
    let mut body = c.clone();
    body.insert("active".into(), true.into());
    body.insert("token_type".into(), JWT_TOKEN_TYPE.into());
    Ok(Some(Value::Object(body)))
}
