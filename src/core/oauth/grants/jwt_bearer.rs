//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523 §2.1,
//! salesforce-reference.md §5): a server signs a JWT about a user with the key registered on
//! the app, and gets an access token as that user, without a browser. No refresh token.
//!
//! Salesforce's rules: `iss` is the client id, `sub` the username, `aud` our issuer or token URL
//! (or `https://login.salesforce.com` / `https://test.salesforce.com`, which Salesforce scripts
//! and sfdx-core send); no client authentication is needed; and the user must be
//! pre-authorized for the app — by an admin, or by an earlier interactive approval when the app
//! lets users self-authorize.

use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::PermittedUsers;
use crate::core::oauth::assertion::{self, Expect, Refusal, Untrusted};
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, ErrorCode, OAuthError};
use crate::core::oauth::grants::{issue_for_user, scopes_for, REFRESH_SCOPES};
use crate::core::storage::Store;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The `aud` values Salesforce clients send besides ours (salesforce-reference.md §5, §17).
pub const SALESFORCE_AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

pub async fn exchange<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    let jwt = params
        .get("assertion")?
        .ok_or_else(|| OAuthError::invalid_request("assertion required"))?;
    let untrusted = Untrusted::parse(jwt)
        .map_err(|_| OAuthError::invalid_grant("the assertion is not a signed JWT"))?;
    // 1. The app is the assertion's issuer.
    let iss = untrusted
        .claim("iss")
        .ok_or_else(|| OAuthError::invalid_grant("the assertion has no iss"))?;
    let app = ctx
        .store
        .get_app(iss)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClientId, sf::CLIENT_ID_INVALID))?;
    // 2. RFC 7523 §3.1: client authentication is optional; when the client authenticates, it
    //    must be the issuer, and its credentials must be right.
    let mut client_secret = None;
    if let Some(creds) = credentials(req, params)? {
        if creds.client_id != app.client_id {
            return Err(OAuthError::invalid_grant(
                "the authenticated client is not the assertion's issuer",
            ));
        }
        client_secret = authenticate(ctx, req, Some(creds), |_| false).await?.secret;
    }
    // 3. RFC 7523 §3: signature, audience, times, jti.
    let mut audiences = vec![
        ctx.issuer.clone(),
        format!("{}/", ctx.issuer),
        ctx.url("/services/oauth2/token"),
    ];
    audiences.extend(SALESFORCE_AUDIENCES.map(String::from));
    let expect = Expect {
        audiences: &audiences,
        require_jti: false,
    };
    let verified = match assertion::verify(
        ctx,
        &untrusted,
        app.policy.certificate.as_deref(),
        &expect,
    )
    .await
    {
        Ok(v) => v,
        Err(Refusal::Invalid(why)) => return Err(OAuthError::invalid_grant(why)),
        Err(Refusal::Replayed) => {
            return Err(OAuthError::invalid_grant(
                "the assertion's jti was used before",
            ))
        }
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    // 4. The user is `sub`, by username, and active.
    let user = ctx
        .store
        .find_user_by_username(&verified.sub)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the assertion's sub is no user's username"))?;
    if !user.active {
        return Err(OAuthError::invalid_grant("inactive user"));
    }
    // 5. Pre-authorized: by an admin, or (where users may self-authorize) by their own earlier
    //    approval of the app.
    let grant = ctx
        .store
        .app_user_grant(&app.client_id, &user.user_id)
        .await?
        .unwrap_or_default();
    let approved = grant.preauthorized
        || (app.policy.permitted_users == PermittedUsers::AllSelfAuthorize
            && grant.approved_scopes.is_some());
    if !approved {
        return Err(match app.policy.permitted_users {
            PermittedUsers::AdminApproved => {
                OAuthError::new(ErrorCode::InvalidAppAccess, sf::NOT_ADMIN_APPROVED)
            }
            PermittedUsers::AllSelfAuthorize => OAuthError::invalid_grant(sf::NOT_APPROVED),
        });
    }
    let scopes = scopes_for(&app, params, REFRESH_SCOPES)?;
    issue_for_user(
        ctx,
        req,
        params,
        &app,
        client_secret.as_ref(),
        &user,
        &scopes,
    )
    .await
}
