//! `POST /services/oauth2/introspect` (RFC 7662): client-authenticated; a client sees only its
//! own tokens, anything else is `{"active":false}` — unless its app may introspect every token
//! (`introspect_all_tokens`, for API gateways). Active answers carry what a gateway needs:
//! `sub`, `username`, `scope`, `client_id`, `exp`, `aud` (the RFC 8707 resource, else the
//! issuer), `iss`, `token_type`. A refresh token is active exactly when the
//! token endpoint would accept it (family, state, reuse grace, the app's refresh token policy).

use super::bearer;
use super::client_auth::{authenticate, credentials};
use super::error::OAuthError;
use super::grants::refresh_token::{standing, Standing};
use super::issue::identity_url;
use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::storage::{FoundToken, Store, TokenKind};

pub async fn handle<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    match introspect(ctx, req).await {
        Ok(r) => r.no_store(),
        Err(e) => e.to_response(false),
    }
}

async fn introspect<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, OAuthError> {
    let params = req.form_params()?;
    let creds = credentials(req, &params)?;
    let token = params
        .get("token")?
        .ok_or_else(|| OAuthError::invalid_request("token required"))?;
    // RFC 7662 §2.1: the endpoint requires client authentication.
    let client = authenticate(ctx, req, creds, |_| true).await?;
    let inactive = || Ok(Response::json(200, &serde_json::json!({ "active": false })));
    let org_id = crate::core::org::org_id(ctx).await?;
    // Asset tokens: their signature, and their asset in D1.
    if let Some(body) =
        super::grants::token_exchange::introspect(ctx, token, &client.app.client_id).await?
    {
        return Ok(Response::json(200, &body));
    }
    // Access tokens from their edge copies, like every other validation (no D1 on this path).
    if bearer::looks_like_access_token(token) {
        let Some(live) = bearer::live_access(ctx, token).await? else {
            return inactive();
        };
        if !may_see(&client.app, &live.client_id) {
            return inactive();
        }
        return Ok(Response::json(
            200,
            &serde_json::json!({
                "active": true,
                "scope": live.scopes.join(" "),
                "client_id": live.client_id,
                "username": live.user.username,
                "sub": identity_url(ctx, &org_id, &live.user_id),
                "token_type": "access_token",
                "iat": live.created_at_s,
                "nbf": live.created_at_s,
                "exp": live.expires_at_s,
                "aud": live.resource.as_deref().unwrap_or(&ctx.issuer),
                "iss": ctx.issuer,
            }),
        ));
    }
    // Refresh tokens from D1, which decides their rotation.
    let Some(found) = bearer::find(ctx, token).await? else {
        return inactive();
    };
    if !may_see(&client.app, &found.family.client_id) {
        return inactive();
    }
    // Liveness by the rules of the token's own app (its refresh token policy).
    let owner = if found.family.client_id == client.app.client_id {
        Some(client.app.clone())
    } else {
        ctx.store.get_app(&found.family.client_id).await?
    };
    if !owner.is_some_and(|app| is_live(ctx, &app, &found)) {
        return inactive();
    }
    let Some(user) = found.user.as_ref() else {
        return inactive();
    };
    let mut body = serde_json::json!({
        "active": true,
        "scope": found.token.scopes.join(" "),
        "client_id": found.family.client_id,
        "username": user.username,
        "sub": identity_url(ctx, &org_id, &found.family.user_id),
        "token_type": match found.token.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        },
        "iat": found.token.created_at_s,
        "nbf": found.token.created_at_s,
        "aud": found.family.resource.as_deref().unwrap_or(&ctx.issuer),
        "iss": ctx.issuer,
    });
    if let Some(exp) = found.token.expires_at_s {
        body["exp"] = exp.into();
    }
    Ok(Response::json(200, &body))
}

/// Whether `app` may learn about a token issued to `owner`.
fn may_see(app: &crate::core::model::App, owner: &str) -> bool {
    app.policy.introspect_all_tokens || app.client_id == owner
}

/// Whether the token could be used right now, by the same rules as where it is used.
fn is_live<S: Store>(ctx: &Ctx<'_, S>, app: &crate::core::model::App, found: &FoundToken) -> bool {
    match found.token.kind {
        TokenKind::Access => found.is_active(ctx.now_s()),
        TokenKind::Refresh => matches!(
            standing(app, found, ctx.clock.now_ms()),
            Standing::Active | Standing::InGrace
        ),
    }
}
