//! `grant_type=refresh_token` (RFC 6749 §6; salesforce-reference.md §3): client-bound, scope may
//! only narrow, the app's refresh token policy, and rotation with reuse detection decided in D1.

use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::{App, NamedRefreshPolicy, RefreshTokenPolicy};
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, ErrorCode, OAuthError};
use crate::core::oauth::issue::{mint, token_response, wants_urlencoded, Grant};
use crate::core::oauth::scope::ScopeSet;
use crate::core::router::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{Family, Rotation, Store, TokenKind, TokenState};

pub async fn refresh<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    let presented = Secret::new(
        params
            .get("refresh_token")?
            .ok_or_else(|| OAuthError::invalid_request("refresh_token required"))?,
    );
    let client = authenticate(ctx, credentials(req, params)?, |app| {
        app.policy.secret_required_refresh
    })
    .await?;
    let now = ctx.now_s();
    let expired = || OAuthError::invalid_grant(sf::EXPIRED_TOKEN);
    let found = ctx
        .store
        .find_token(&presented.hash())
        .await?
        .filter(|f| f.token.kind == TokenKind::Refresh)
        .ok_or_else(expired)?;
    let family = found.family;
    // RFC 6749 §6: the refresh token is bound to the client it was issued to. Another client
    // learns nothing about it.
    if family.client_id != client.app.client_id || family.revoked_at_s.is_some() {
        return Err(expired());
    }
    match found.token.state {
        TokenState::Active => {}
        // RFC 9700 §4.14.2: a rotated-out token presented again means it leaked; revoke the
        // whole family (salesforce-reference.md §3 reuse detection).
        TokenState::Rotated => {
            ctx.store.revoke_family(&family.family_id, now).await?;
            return Err(expired());
        }
        TokenState::Revoked => return Err(expired()),
    }
    if !policy_allows(&client.app, &family, now) {
        return Err(expired());
    }
    // RFC 6749 §6: the requested scope must not exceed the original grant.
    let scopes = match params.get("scope")? {
        Some(raw) => ScopeSet::parse_requested(Some(raw), &family.scopes).map_err(|_| {
            OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the original grant")
        })?,
        None => ScopeSet::from_list(&family.scopes),
    };
    let user = ctx
        .store
        .get_user(&family.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(expired)?;
    let org_id = org_id(ctx).await?;
    let rotate = client.app.policy.rotate_refresh_tokens;
    let minted = mint(
        ctx,
        &org_id,
        &user.user_id,
        &family.family_id,
        &client.app,
        &scopes,
        rotate,
    )?;
    if rotate {
        let rotation = ctx
            .store
            .rotate_refresh_token(&presented.hash(), &family.family_id, &minted.records, now)
            .await?;
        if rotation == Rotation::Reused {
            ctx.store.revoke_family(&family.family_id, now).await?;
            return Err(expired());
        }
    } else {
        ctx.store
            .extend_family(&family.family_id, &minted.records, now)
            .await?;
    }
    token_response(
        ctx,
        &Grant {
            org_id: &org_id,
            app: &client.app,
            client_secret: client.secret.as_ref(),
            user: &user,
            scopes: &scopes,
            auth_time_s: family.auth_time_s,
            // OIDC Core §12.2: a refreshed ID token carries no nonce.
            nonce: None,
        },
        &minted,
        wants_urlencoded(req, params),
    )
}

/// The app's refresh token policy, evaluated when the token is presented (§3).
fn policy_allows(app: &App, family: &Family, now_s: u64) -> bool {
    match app.policy.refresh_token_policy {
        RefreshTokenPolicy::Named(NamedRefreshPolicy::Infinite) => true,
        RefreshTokenPolicy::Named(NamedRefreshPolicy::Zero) => false,
        RefreshTokenPolicy::Lifetime { lifetime_s } => now_s < family.created_at_s + lifetime_s,
        RefreshTokenPolicy::Inactivity { inactivity_s } => {
            now_s < family.last_used_at_s + inactivity_s
        }
    }
}
