//! `grant_type=client_credentials` (RFC 6749 §4.4, salesforce-reference.md §6): an integration
//! authenticates as itself (secret by Basic or body, or `private_key_jwt`) and gets an access
//! token that runs as the app's named integration user (`client_credentials_user`), with the
//! app's scopes. No refresh token, and never `openid` (no one logged in to identify).
//!
//! Salesforce accepts this grant only on an org's My Domain host; this server is one org on one
//! host (its issuer), so there is no other host to refuse.

use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, OAuthError};
use crate::core::oauth::grants::{issue_for_user, scopes_for};
use crate::core::storage::Store;

/// Scopes a client credentials token never carries.
const EXCLUDED: &[&str] = &["refresh_token", "offline_access", "openid"];

pub async fn exchange<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    // RFC 6749 §4.4.2: confidential clients only.
    let client = authenticate(ctx, req, credentials(req, params)?, |_| true).await?;
    let app = &client.app;
    let username = app
        .policy
        .client_credentials_user
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_grant(sf::NO_CLIENT_CREDENTIALS_USER))?;
    let user = ctx
        .store
        .find_user_by_username(username)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant(sf::NO_CLIENT_CREDENTIALS_USER))?;
    if !user.active {
        return Err(OAuthError::invalid_grant(
            "the client credentials user is inactive",
        ));
    }
    let scopes = scopes_for(app, params, EXCLUDED)?;
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
