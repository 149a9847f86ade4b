//! `/services/oauth2/userinfo` (OIDC Core §5.3) and the identity URL `/id/{org}/{user}`
//! (salesforce-reference.md §12.3, §12.4). Both take a bearer access token (RFC 6750 §2.1), or
//! Salesforce's `oauth_token`/`access_token` parameter that jsforce sends.

use super::client_auth::strip_scheme;
use super::error::{ErrorCode, OAuthError};
use super::issue::identity_url;
use crate::core::config::Ctx;
use crate::core::http::{Method, Params, Request, Response};
use crate::core::model::User;
use crate::core::secret::Secret;
use crate::core::storage::{Store, TokenKind};

/// The user and org behind a live access token.
struct Bearer {
    user: User,
    org_id: String,
}

fn invalid_token(desc: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, desc)
}

async fn bearer<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Bearer, OAuthError> {
    let form = match (req.method, req.content_type().as_str()) {
        (Method::Post, "application/x-www-form-urlencoded") => req.form_params()?,
        _ => Params::default(),
    };
    let query = req.query_params();
    let token = match req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "bearer"))
    {
        Some(t) => t.to_owned(),
        None => [
            form.get("access_token")?,
            query.get("oauth_token")?,
            query.get("access_token")?,
        ]
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| invalid_token("missing access token"))?
        .to_owned(),
    };
    let found = ctx
        .store
        .find_token(&Secret::new(token.as_str()).hash())
        .await?
        .filter(|f| f.token.kind == TokenKind::Access && f.is_active(ctx.now_s()))
        .ok_or_else(|| invalid_token("expired access/refresh token"))?;
    let user = ctx
        .store
        .get_user(&found.family.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| invalid_token("user is inactive"))?;
    let org_id = crate::core::router::org_id(ctx).await?;
    Ok(Bearer { user, org_id })
}

/// API URLs with Salesforce's literal `{version}` placeholder (§12.3).
fn urls<S: Store>(ctx: &Ctx<'_, S>, b: &Bearer) -> serde_json::Value {
    let base = &ctx.issuer;
    serde_json::json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "profile": format!("{base}/{}", b.user.user_id),
        "custom_domain": base,
    })
}

pub async fn userinfo<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let b = match bearer(ctx, req).await {
        Ok(b) => b,
        Err(e) => return e.to_response(false),
    };
    let u = &b.user;
    Response::json(
        200,
        &serde_json::json!({
            "sub": identity_url(ctx, &b.org_id, &u.user_id),
            "user_id": u.user_id,
            "organization_id": b.org_id,
            "preferred_username": u.username,
            "nickname": u.username,
            "name": u.name,
            "email": u.email,
            "email_verified": false,
            "active": u.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "zoneinfo": "GMT",
            "updated_at": u.created_at,
            "urls": urls(ctx, &b),
        }),
    )
    .no_store()
}

pub async fn identity<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    org_id: &str,
    user_id: &str,
) -> Response {
    let b = match bearer(ctx, req).await {
        Ok(b) => b,
        Err(e) => return e.to_response(false),
    };
    // A token shows its own user's identity only.
    if b.org_id != org_id || b.user.user_id != user_id {
        return Response::json(
            404,
            &serde_json::json!({"error": "Bad_Id", "error_description": "no such identity for this token"}),
        );
    }
    let u = &b.user;
    let (first, last) = u.name.rsplit_once(' ').unwrap_or(("", u.name.as_str()));
    Response::json(
        200,
        &serde_json::json!({
            "id": identity_url(ctx, &b.org_id, &u.user_id),
            "asserted_user": true,
            "user_id": u.user_id,
            "organization_id": b.org_id,
            "username": u.username,
            "nick_name": u.username,
            "display_name": u.name,
            "email": u.email,
            "email_verified": false,
            "first_name": first,
            "last_name": last,
            "active": u.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": urls(ctx, &b),
        }),
    )
    .no_store()
}
