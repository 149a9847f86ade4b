//! `/admin/settings` (org switches) and `/admin/registration-tokens`.

use serde::Deserialize;

use super::{json, json_object, typed, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::http::Request;
use crate::core::oauth::bearer::token_key;
use crate::core::org::org_settings;
use crate::core::storage::Store;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    allow_username_password_flow: Option<bool>,
    allow_user_agent_flow: Option<bool>,
    allow_code_credentials_flow: Option<bool>,
    require_pkce: Option<bool>,
    open_registration: Option<bool>,
    client_id_metadata_document_prefixes: Option<Vec<String>>,
}

pub async fn read<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    json(200, &org_settings(ctx).await?)
}

pub async fn update<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let patch: SettingsPatch = typed(json_object(req, false)?)?;
    let mut s = org_settings(ctx).await?;
    let set = |target: &mut bool, v: Option<bool>| {
        if let Some(v) = v {
            *target = v;
        }
    };
    set(
        &mut s.allow_username_password_flow,
        patch.allow_username_password_flow,
    );
    set(&mut s.allow_user_agent_flow, patch.allow_user_agent_flow);
    set(
        &mut s.allow_code_credentials_flow,
        patch.allow_code_credentials_flow,
    );
    set(&mut s.require_pkce, patch.require_pkce);
    set(&mut s.open_registration, patch.open_registration);
    if let Some(prefixes) = patch.client_id_metadata_document_prefixes {
        // A prefix must pin at least the origin, so it cannot widen to other hosts.
        for p in &prefixes {
            let pinned = url::Url::parse(p)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
                && p.matches('/').count() >= 3;
            if !pinned {
                return Err(AdminError::bad_request(format!(
                    "client_id_metadata_document_prefixes entries must be URLs with a path, like https://clients.example.com/ : {p}"
                )));
            }
        }
        s.client_id_metadata_document_prefixes = prefixes;
    }
    ctx.store.save_settings(&s).await?;
    json(200, &s)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    expires_in_s: Option<u64>,
    /// How many registrations the token allows; absent: any number until it expires.
    max_uses: Option<u32>,
}

/// An initial access token for dynamic client registration (RFC 7591 §3), shown once.
pub async fn mint_registration_token<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let input: TokenRequest = typed(json_object(req, true)?)?;
    let ttl = input.expires_in_s.unwrap_or(86400);
    if !(60..=86400 * 365).contains(&ttl) {
        return Err(AdminError::bad_request(
            "expires_in_s must be between 60 and 31536000",
        ));
    }
    if input.max_uses == Some(0) {
        return Err(AdminError::bad_request(
            "max_uses must be at least 1 (or absent for any number)",
        ));
    }
    let token = crate::core::oauth::issue::routed_secret(ctx, 43);
    let expires_at = ctx.now_s() + ttl;
    ctx.store
        .create_registration_token(&token_key(token.expose()), expires_at, input.max_uses)
        .await?;
    json(
        201,
        &serde_json::json!({
            "token": token.expose(),
            "expires_at": expires_at,
            "max_uses": input.max_uses,
        }),
    )
}
