//! One module per grant type, and what the grants without a code share.

pub mod authorization_code;
pub mod client_credentials;
pub mod jwt_bearer;
pub mod password;
pub mod refresh_token;
pub mod token_exchange;

use crate::core::config::Ctx;
use crate::core::future::both;
use crate::core::http::{Params, Request, Response};
use crate::core::model::{App, User};
use crate::core::oauth::error::{ErrorCode, OAuthError};
use crate::core::oauth::issue::{
    first_issue, mint, new_family_id, publish, token_response, unpublish, wants_urlencoded, Grant,
};
use crate::core::oauth::resource;
use crate::core::oauth::scope::ScopeSet;
use crate::core::org::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{Store, UserClaims};

/// Scopes a grant without a user's refresh consent never carries: these grants issue no
/// refresh token (salesforce-reference.md §5, §6, §10).
pub const REFRESH_SCOPES: &[&str] = &["refresh_token", "offline_access"];

/// The scopes of a grant without a code: those asked for (`scope`, each one the app's, else
/// `invalid_scope`), or all the app's, less `excluded`.
pub fn scopes_for(app: &App, params: &Params, excluded: &[&str]) -> Result<ScopeSet, OAuthError> {
    let scopes = ScopeSet::parse_requested(params.get("scope")?, &app.scopes)?.without(excluded);
    if scopes.as_slice().is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope of this app can be granted this way",
        ));
    }
    Ok(scopes)
}

/// Tokens for `user` without a code or a browser (JWT bearer, client credentials, password): a
/// new family holding one access token, never a refresh token; an ID token when `openid` was
/// granted. The family starts in its shard only if nothing ended the user's tokens after the
/// version of the user read here (a password change or deactivation that a stale replica did
/// not show yet): the shard's epochs decide, as for a code.
pub async fn issue_for_user<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    app: &App,
    client_secret: Option<&Secret>,
    user: &User,
    scopes: &ScopeSet,
) -> Result<Response, OAuthError> {
    let resource = resource::requested(ctx, params).await?;
    let org_id = org_id(ctx).await?;
    let claims = UserClaims::from(user);
    let now = ctx.now_s();
    let family_id = new_family_id(ctx);
    let grant = Grant {
        org_id: &org_id,
        app,
        client_secret,
        user_id: &user.user_id,
        claims: &claims,
        scopes,
        auth_time_s: now,
        nonce: None,
        resource: resource.as_deref(),
    };
    let minted = mint(ctx, &grant, &family_id, false).await?;
    let response = token_response(
        ctx,
        &grant,
        &minted,
        Vec::new(),
        wants_urlencoded(req, params),
    )
    .await?;
    let issue = first_issue(ctx, &grant, &family_id, &minted, Vec::new());
    let (published, started) = both(
        publish(ctx, &minted),
        ctx.store.start_family(&issue, user.sessions_valid_from_ms),
    )
    .await;
    if !started? {
        unpublish(ctx, &minted).await?;
        return Err(OAuthError::invalid_grant("inactive user"));
    }
    // Issued: a failed copy write (logged) must not lose the token; it validates through its
    // shard while young.
    let _ = published;
    Ok(response)
}
