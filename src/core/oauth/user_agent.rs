//! The user-agent flow (RFC 6749 §4.2, salesforce-reference.md §2), `token id_token` (OIDC
//! Core §3.2) and Salesforce's hybrid token flow (§4): after login and consent, the
//! authorization endpoint issues the tokens itself, in the redirect URI's fragment (or a form
//! post). The org setting `allow_user_agent_flow` governs all three (`authorize.rs`).
//!
//! What differs from the code flow's token response:
//! - no client authentication happens, so there is no `signature` (an HMAC keyed with the client
//!   secret, which is stored only as a hash);
//! - a refresh token only when `refresh_token`/`offline_access` is granted **and** the redirect
//!   URI has a private-use scheme (a native app's own), never to an http(s) page;
//! - `hybrid_token` adds the web session fields (`hybrid.rs`).

use super::authz::{
    active_claims, request_app, to_client, AuthorizationRequest, Failure, ResponseType,
};
use super::error::{ErrorCode, OAuthError};
use super::hybrid::WebSessions;
use super::interaction::Authn;
use super::issue::{
    first_issue, id_token, mint, new_family_id, publish, refresh_allowed, token_fields, unpublish,
    BoundTo, Grant,
};
use super::redirect::is_private_use_scheme;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::future::both;
use crate::core::http::Response;
use crate::core::org::org_id;
use crate::core::storage::{Store, StoreError, UserClaims};

pub async fn issue<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    claims: Option<UserClaims>,
    authn: Authn,
) -> Result<Response, Failure> {
    let back = |e: OAuthError| Failure::Redirect(Box::new(areq.clone()), e);
    let unavailable = |e: StoreError| match e {
        StoreError::Unavailable(_) => back(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "storage for these tokens is unavailable; retry shortly",
        )),
        _ => Failure::Internal,
    };
    let app = request_app(ctx, &areq.client_id).await?;
    let inactive = || back(OAuthError::new(ErrorCode::AccessDenied, "user is inactive"));
    let claims = active_claims(ctx, user_id, claims)
        .await?
        .ok_or_else(inactive)?;
    let org_id = org_id(ctx).await?;
    let scopes = ScopeSet::from_list(&areq.scopes);
    let family_id = new_family_id(ctx);
    let with_refresh = refresh_allowed(&app, &scopes) && is_private_use_scheme(&areq.redirect_uri);
    let grant = Grant {
        org_id: &org_id,
        app: &app,
        client_secret: None,
        user_id,
        claims: &claims,
        scopes: &scopes,
        auth_time_s: authn.auth_time_s,
        nonce: areq.nonce.as_deref(),
        resource: areq.resource.as_deref(),
    };
    let minted = mint(ctx, &grant, &family_id, with_refresh)
        .await
        .map_err(back)?;
    let web = (areq.response_type == ResponseType::HybridToken)
        .then(|| WebSessions::mint(ctx, &family_id, &scopes));
    // Signed before anything is stored, as at the token endpoint.
    let mut fields = token_fields(
        ctx,
        &grant,
        &minted,
        areq.response_type == ResponseType::TokenIdToken,
    )
    .await
    .map_err(back)?;
    fields.push(("expires_in", app.policy.access_token_ttl_s.to_string()));
    if let Some(w) = &web {
        fields.extend(w.fields(ctx));
    }
    let issue = first_issue(
        ctx,
        &grant,
        &family_id,
        &minted,
        web.as_ref().map(WebSessions::hashes).unwrap_or_default(),
    );
    let (published, started) = both(
        publish(ctx, &minted),
        ctx.store.start_family(&issue, authn.started_ms),
    )
    .await;
    if !started.map_err(unavailable)? {
        // The user changed their password or was deactivated since they logged in.
        unpublish(ctx, &minted).await?;
        return Err(inactive());
    }
    // Issued: a failed copy write (logged) must not lose the tokens; they validate through
    // their shard while young.
    let _ = published;
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(to_client(ctx, areq, pairs))
}

/// `code id_token` (OIDC Core §3.3.2.11): the ID token beside the code, with its `c_hash` and
/// the request's `nonce`; the claims as of the login (read when the session carried none).
pub async fn code_id_token<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    claims: Option<UserClaims>,
    authn: Authn,
    code: &crate::core::secret::Secret,
) -> Result<String, Failure> {
    let back = |e: OAuthError| Failure::Redirect(Box::new(areq.clone()), e);
    let app = request_app(ctx, &areq.client_id).await?;
    let claims = active_claims(ctx, user_id, claims)
        .await?
        .ok_or_else(|| back(OAuthError::new(ErrorCode::AccessDenied, "user is inactive")))?;
    let org_id = org_id(ctx).await?;
    let scopes = ScopeSet::from_list(&areq.scopes);
    let grant = Grant {
        org_id: &org_id,
        app: &app,
        client_secret: None,
        user_id,
        claims: &claims,
        scopes: &scopes,
        auth_time_s: authn.auth_time_s,
        nonce: areq.nonce.as_deref(),
        resource: areq.resource.as_deref(),
    };
    id_token(ctx, &grant, BoundTo::Code(code))
        .await
        .map_err(back)
}
