//! `POST /services/oauth2/introspect` (RFC 7662): client-authenticated; a client sees only its
//! own tokens, anything else is `{"active":false}`. A refresh token is active exactly when the
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
    let inactive = || Response::json(200, &serde_json::json!({ "active": false }));
    let Some(found) = bearer::find(ctx, token).await? else {
        return Ok(inactive());
    };
    if found.family.client_id != client.app.client_id || !is_live(ctx, &client.app, &found) {
        return Ok(inactive());
    }
    let Some(user) = ctx
        .store
        .get_user(&found.family.user_id)
        .await?
        .filter(|u| u.active)
    else {
        return Ok(inactive());
    };
    let org_id = crate::core::org::org_id(ctx).await?;
    let mut body = serde_json::json!({
        "active": true,
        "scope": found.token.scopes.join(" "),
        "client_id": found.family.client_id,
        "username": user.username,
        "sub": identity_url(ctx, &org_id, &user.user_id),
        "token_type": match found.token.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        },
        "iat": found.token.created_at_s,
        "nbf": found.token.created_at_s,
        "iss": ctx.issuer,
    });
    if let Some(exp) = found.token.expires_at_s {
        body["exp"] = exp.into();
    }
    Ok(Response::json(200, &body))
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
