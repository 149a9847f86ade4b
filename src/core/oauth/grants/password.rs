//! `grant_type=password` (RFC 6749 §4.3, salesforce-reference.md §10): a confidential client
//! sends a user's username and password. Off unless the org allows it
//! (`allow_username_password_flow`, default off); Salesforce is retiring it in favour of client
//! credentials.
//!
//! Nothing in the answer or its timing tells a caller whether the flow is on, whether the
//! username exists, or whether the user is active: every attempt is counted, then checked with
//! the same password hashing work (`check_login` hashes even for unknown users), and every
//! failure is `invalid_grant` / `authentication failure`, as Salesforce answers when the flow is
//! blocked. Guessing is throttled per username and per client from the caller's address.

use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::PermittedUsers;
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, ErrorCode, OAuthError};
use crate::core::oauth::grants::{issue_for_user, scopes_for, REFRESH_SCOPES};
use crate::core::oauth::interaction::{rehash_if_needed, throttle_key, verify_login};
use crate::core::org::org_settings;
use crate::core::storage::{Limit, Store};

pub async fn exchange<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    let username = params
        .get("username")?
        .ok_or_else(|| OAuthError::invalid_request("username required"))?;
    let password = params
        .get("password")?
        .ok_or_else(|| OAuthError::invalid_request("password required"))?;
    // Confidential clients only (jsforce, too, refuses to run this flow without a secret).
    let client = authenticate(ctx, req, credentials(req, params)?, |_| true).await?;
    let app = &client.app;
    // Every attempt counts, the right password too: the tenth guess in a minute is refused.
    let ip = req.client_ip();
    let by_user = ctx
        .store
        .allow(Limit::PasswordGrant, &throttle_key(username, ip))
        .await?;
    let by_client = ctx
        .store
        .allow(Limit::LoginIp, &format!("client:{}|{ip}", app.client_id))
        .await?;
    if !(by_user && by_client) {
        return Err(OAuthError::new(
            ErrorCode::RateLimitExceeded,
            "too many login attempts; retry later",
        ));
    }
    let enabled = org_settings(ctx).await?.allow_username_password_flow;
    // Checked whether or not the flow is on (the same work either way); nothing is written
    // (not even a rehash) unless it is on and the password is right.
    let user = match verify_login(ctx, username, password).await? {
        Some(user) if enabled => rehash_if_needed(ctx, user, password).await?,
        _ => return Err(OAuthError::invalid_grant(sf::AUTH_FAILURE)),
    };
    if app.policy.permitted_users == PermittedUsers::AdminApproved {
        let preauthorized = ctx
            .store
            .app_user_grant(&app.client_id, &user.user_id)
            .await?
            .is_some_and(|g| g.preauthorized);
        if !preauthorized {
            return Err(OAuthError::new(
                ErrorCode::InvalidAppAccess,
                sf::NOT_ADMIN_APPROVED,
            ));
        }
    }
    let scopes = scopes_for(app, params, REFRESH_SCOPES)?;
    issue_for_user(
        ctx,
        req,
        params,
        app,
        client.secret.as_ref(),
        &user,
        &scopes,
    )
    .await
}
