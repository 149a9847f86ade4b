//! `/services/oauth2/userinfo` (OIDC Core §5.3) and Salesforce's identity URL `/id/{org}/{user}`.
//! Both take an access token (see `bearer.rs` for where from); only the identity URL also takes
//! Salesforce's `oauth_token` query parameter, which Salesforce documents for it.

use super::bearer::{self, invalid_token, QueryToken};
use super::error::OAuthError;
use super::issue::identity_url;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::storage::{Store, UserClaims};

/// The user, org and granted scopes behind a live access token.
struct Bearer {
    user_id: String,
    user: UserClaims,
    org_id: String,
    scopes: ScopeSet,
}

async fn bearer<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    query: QueryToken,
) -> Result<Bearer, OAuthError> {
    let token = bearer::presented(req, query)?;
    let live = bearer::live_access(ctx, &token)
        .await?
        .ok_or_else(|| invalid_token("expired access/refresh token"))?;
    let org_id = crate::core::org::org_id(ctx).await?;
    Ok(Bearer {
        user_id: live.user_id,
        user: live.user,
        org_id,
        scopes: ScopeSet::from_list(&live.scopes),
    })
}

/// API URLs with Salesforce's literal `{version}` placeholder.
fn urls<S: Store>(ctx: &Ctx<'_, S>, b: &Bearer) -> serde_json::Value {
    let base = &ctx.issuer;
    serde_json::json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "profile": format!("{base}/{}", b.user_id),
        "custom_domain": base,
    })
}

/// OIDC Core §5.4: claims by granted scope. Every token, whatever its scopes, gets who it is
/// for — `sub`, `user_id`, `organization_id` and `preferred_username` (the Salesforce CLI reads
/// the username from userinfo with `refresh_token api web`) — and Salesforce's API `urls`.
/// `profile` adds the profile claims, `email` the email claims; `address` and `phone` would add
/// theirs, but users carry neither.
pub async fn userinfo<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let b = match bearer(ctx, req, QueryToken::Refused).await {
        Ok(b) => b,
        Err(e) => return e.to_response(false),
    };
    let u = &b.user;
    let mut claims = serde_json::json!({
        "sub": identity_url(ctx, &b.org_id, &b.user_id),
        "user_id": b.user_id,
        "organization_id": b.org_id,
        "preferred_username": u.username,
        "active": true,
        "user_type": "STANDARD",
        "urls": urls(ctx, &b),
    });
    if b.scopes.contains("profile") {
        claims["name"] = u.name.clone().into();
        claims["nickname"] = u.username.clone().into();
        claims["language"] = "en_US".into();
        claims["locale"] = "en_US".into();
        claims["zoneinfo"] = "GMT".into();
        claims["updated_at"] = u.created_at_s.into();
    }
    if b.scopes.contains("email") {
        claims["email"] = u.email.clone().into();
        claims["email_verified"] = false.into();
    }
    Response::json(200, &claims).no_store()
}

pub async fn identity<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    org_id: &str,
    user_id: &str,
) -> Response {
    let b = match bearer(ctx, req, QueryToken::SalesforceOauthToken).await {
        Ok(b) => b,
        Err(e) => return e.to_response(false),
    };
    // A token shows its own user's identity only.
    if b.org_id != org_id || b.user_id != user_id {
        return Response::json(
            404,
            &serde_json::json!({"error": "Bad_Id", "error_description": "no such identity for this token"}),
        )
        .no_store();
    }
    let u = &b.user;
    let (first, last) = u.name.rsplit_once(' ').unwrap_or(("", u.name.as_str()));
    Response::json(
        200,
        &serde_json::json!({
            "id": identity_url(ctx, &b.org_id, &b.user_id),
            "asserted_user": true,
            "user_id": b.user_id,
            "organization_id": b.org_id,
            "username": u.username,
            "nick_name": u.username,
            "display_name": u.name,
            "email": u.email,
            "email_verified": false,
            "first_name": first,
            "last_name": last,
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": urls(ctx, &b),
        }),
    )
    .no_store()
}
