//! `grant_type=refresh_token` (RFC 6749 §6): client-bound, scope may only narrow, the app's
//! refresh token policy (Salesforce's: infinite, zero, lifetime, inactivity), and rotation with
//! reuse detection decided in the family's shard.

use crate::core::config::Ctx;
use crate::core::future::both;
use crate::core::http::{Params, Request, Response};
use crate::core::model::{App, NamedRefreshPolicy, RefreshTokenPolicy};
use crate::core::oauth::bearer::token_key;
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, ErrorCode, OAuthError};
use crate::core::oauth::hybrid::WebSessions;
use crate::core::oauth::issue::{
    mint, publish, revoke_family, token_response, wants_urlencoded, Grant,
};
use crate::core::oauth::resource;
use crate::core::oauth::scope::ScopeSet;
use crate::core::org::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{FoundToken, Rotation, Store, TokenKind, TokenState};

/// What a presented refresh token may do right now. The token endpoint and introspection both
/// ask this, so they never disagree about a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Live: refresh with it.
    Active,
    /// Rotated out less than the app's `refresh_reuse_grace_s` ago: one more fresh pair.
    InGrace,
    /// Rotated out and presented again past the grace: it leaked (RFC 9700 §4.14.2).
    Reused,
    /// Revoked, its family revoked, or past the app's refresh token policy.
    Dead,
}

pub fn standing(app: &App, found: &FoundToken, now_ms: u64) -> Standing {
    if found.token.kind != TokenKind::Refresh
        || found.family.revoked_at_s.is_some()
        || !policy_allows(app, found, now_ms)
    {
        return Standing::Dead;
    }
    match found.token.state {
        TokenState::Active => Standing::Active,
        TokenState::Rotated if within_grace(app, found.rotated_at_ms, now_ms) => Standing::InGrace,
        TokenState::Rotated => Standing::Reused,
        TokenState::Revoked => Standing::Dead,
    }
}

/// The app's refresh token policy, evaluated when the token is presented. Idle time is measured
/// in milliseconds, so a use inside an `inactivity_s` window always counts, to its last instant.
fn policy_allows(app: &App, found: &FoundToken, now_ms: u64) -> bool {
    let family = &found.family;
    match app.policy.refresh_token_policy {
        RefreshTokenPolicy::Named(NamedRefreshPolicy::Infinite) => true,
        RefreshTokenPolicy::Named(NamedRefreshPolicy::Zero) => false,
        RefreshTokenPolicy::Lifetime { lifetime_s } => {
            now_ms
                < family
                    .created_at_s
                    .saturating_add(lifetime_s)
                    .saturating_mul(1000)
        }
        RefreshTokenPolicy::Inactivity { inactivity_s } => {
            now_ms.saturating_sub(family.last_used_at_ms) <= inactivity_s.saturating_mul(1000)
        }
    }
}

/// Within `refresh_reuse_grace_s` of the token's rotation (0 = no grace: Salesforce's rule).
fn within_grace(app: &App, rotated_at_ms: Option<u64>, now_ms: u64) -> bool {
    let grace_ms = app.policy.refresh_reuse_grace_s.saturating_mul(1000);
    grace_ms > 0 && rotated_at_ms.is_some_and(|at| now_ms.saturating_sub(at) <= grace_ms)
}

/// `grant_type=refresh_token`, or Salesforce's `hybrid_refresh` (`hybrid`), which also issues a
/// new web session and ends the old one (`hybrid.rs`).
pub async fn refresh<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    hybrid: bool,
) -> Result<Response, OAuthError> {
    let presented = Secret::new(
        params
            .get("refresh_token")?
            .ok_or_else(|| OAuthError::invalid_request("refresh_token required"))?,
    );
    let client = authenticate(ctx, req, credentials(req, params)?, |app| {
        app.policy.secret_required_refresh
    })
    .await?;
    let app = &client.app;
    let now_ms = ctx.clock.now_ms();
    let now_s = ctx.now_s();
    let expired = || OAuthError::invalid_grant(sf::EXPIRED_TOKEN);
    let found = ctx
        .store
        .find_token(&token_key(presented.expose()))
        .await?
        .ok_or_else(expired)?;
    let family = found.family.clone();
    // RFC 6749 §6: the refresh token is bound to the client it was issued to. Another client
    // learns nothing about it.
    if family.client_id != app.client_id {
        return Err(expired());
    }
    let in_grace = match standing(app, &found, now_ms) {
        Standing::Active => false,
        Standing::InGrace => true,
        Standing::Reused => {
            revoke_family(ctx, &family.family_id, now_s).await?;
            return Err(expired());
        }
        Standing::Dead => return Err(expired()),
    };
    // RFC 6749 §6: the requested scope must not exceed the original grant.
    let scopes = match params.get("scope")? {
        Some(raw) => ScopeSet::parse_requested(Some(raw), &family.scopes).map_err(|_| {
            OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the original grant")
        })?,
        None => ScopeSet::from_list(&family.scopes),
    };
    // RFC 8707 §2.2: a refresh stays with the family's resource; naming another is
    // `invalid_target`, never a wider token.
    resource::same_or_omitted(
        resource::requested_syntax(params)?.as_deref(),
        family.resource.as_deref(),
    )?;
    // The user, read with the token: deactivated users' families are revoked, this is the
    // belt to those braces.
    let claims = found.user.clone().ok_or_else(expired)?;
    let org_id = org_id(ctx).await?;
    let rotate = app.policy.rotates();
    let described = Grant {
        org_id: &org_id,
        app,
        client_secret: client.secret.as_ref(),
        user_id: &family.user_id,
        claims: &claims,
        scopes: &scopes,
        auth_time_s: family.auth_time_s,
        // OIDC Core §12.2: a refreshed ID token carries no nonce.
        nonce: None,
        resource: family.resource.as_deref(),
    };
    let minted = mint(ctx, &described, &family.family_id, rotate).await?;
    // Signed before anything is stored: a signing failure must not use up the token.
    // `hybrid_refresh`: a new web session replaces the family's old one(s) with the rotation.
    let web = hybrid.then(|| WebSessions::mint(ctx, &family.family_id, &scopes));
    let web_hashes = web.as_ref().map(WebSessions::hashes);
    let extra = web.map(|w| w.fields(ctx)).unwrap_or_default();
    let response = token_response(
        ctx,
        &described,
        &minted,
        extra,
        wants_urlencoded(req, params),
    )
    .await?;
    let store = ctx.store;
    let (published, stored) = both(publish(ctx, &minted), async {
        if rotate && !in_grace {
            let rotation = store
                .rotate_refresh_token(
                    &presented.hash(),
                    &family.family_id,
                    &minted.records,
                    web_hashes.as_deref(),
                    now_ms,
                )
                .await?;
            match rotation {
                Rotation::Rotated => Ok(true),
                // A parallel refresh rotated it first: within the grace this caller gets a
                // pair of its own; past it, the family is revoked (RFC 9700 §4.14.2).
                Rotation::Reused { rotated_at_ms }
                    if within_grace(app, Some(rotated_at_ms), now_ms) =>
                {
                    store
                        .extend_family(
                            &family.family_id,
                            &minted.records,
                            web_hashes.as_deref(),
                            now_ms,
                        )
                        .await
                }
                Rotation::Reused { .. } | Rotation::Revoked => Ok(false),
            }
        } else {
            // No rotation, or a second presentation within the grace: the first successor
            // stays valid, and this use counts for `inactivity_s` like any other.
            store
                .extend_family(
                    &family.family_id,
                    &minted.records,
                    web_hashes.as_deref(),
                    now_ms,
                )
                .await
        }
    })
    .await;
    if !stored? {
        store
            .drop_access_copies(std::slice::from_ref(&minted.copy.0))
            .await?;
        revoke_family(ctx, &family.family_id, now_s).await?;
        return Err(expired());
    }
    // Issued and rotated: a failed copy write (logged by the store) must not lose the new
    // refresh token; the access token validates through D1 while young.
    let _ = published;
    Ok(response)
}
