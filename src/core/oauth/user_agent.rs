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
use crate::core::model::App;
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
    let inactive = || back(inactive_user());
    let parts = Parts::read(ctx, areq, user_id, claims).await?;
    let (app, scopes) = (&parts.app, &parts.scopes);
    let family_id = new_family_id(ctx);
    let with_refresh = refresh_allowed(app, scopes) && is_private_use_scheme(&areq.redirect_uri);
    let grant = parts.grant(areq, user_id, authn);
    let minted = mint(ctx, &grant, &family_id, with_refresh)
        .await
        .map_err(back)?;
    let web = (areq.response_type == ResponseType::HybridToken)
        .then(|| WebSessions::mint(ctx, &family_id, scopes));
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
    let parts = Parts::read(ctx, areq, user_id, claims).await?;
    id_token(ctx, &parts.grant(areq, user_id, authn), BoundTo::Code(code))
        .await
        .map_err(|e| Failure::Redirect(Box::new(areq.clone()), e))
}

fn inactive_user() -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, "user is inactive")
}

/// What tokens from the authorization endpoint are described by, read once: the app, the
/// user's claims (an inactive user is `access_denied` back to the client), the org, the
/// request's scopes.
struct Parts {
    app: App,
    claims: UserClaims,
    org_id: String,
    scopes: ScopeSet,
}

impl Parts {
    async fn read<S: Store>(
        ctx: &Ctx<'_, S>,
        areq: &AuthorizationRequest,
        user_id: &str,
        claims: Option<UserClaims>,
    ) -> Result<Self, Failure> {
        let app = request_app(ctx, &areq.client_id).await?;
        let claims = active_claims(ctx, user_id, claims)
            .await?
            .ok_or_else(|| Failure::Redirect(Box::new(areq.clone()), inactive_user()))?;
        Ok(Self {
            app,
            claims,
            org_id: org_id(ctx).await?,
            scopes: ScopeSet::from_list(&areq.scopes),
        })
    }

    /// The grant of `areq` for `user_id`: no client secret at this endpoint, the request's
    /// nonce and resource.
    fn grant<'a>(
        &'a self,
        areq: &'a AuthorizationRequest,
        user_id: &'a str,
        authn: Authn,
    ) -> Grant<'a> {
        Grant {
            org_id: &self.org_id,
            app: &self.app,
            client_secret: None,
            user_id,
            claims: &self.claims,
            scopes: &self.scopes,
            auth_time_s: authn.auth_time_s,
            nonce: areq.nonce.as_deref(),
            resource: areq.resource.as_deref(),
        }
    }
}
