//! The device flow (RFC 8628; salesforce-reference.md §8), in both dialects:
//! - Salesforce's: `POST /services/oauth2/token` with `response_type=device_code`, then polls
//!   with `grant_type=device` and the device code in `code` — `client_id` alone at both steps,
//!   as the Salesforce CLI sends it (a secret that is sent is still checked);
//! - RFC 8628's: `POST /services/oauth2/device`, then polls with
//!   `grant_type=urn:ietf:params:oauth:grant-type:device_code` and `device_code`; confidential
//!   clients authenticate (apps that require their secret for the web server flow).
//!
//! The person approves on `/setup/connect` (`verification.rs`). The grant lives in one shard,
//! picked from its user code, so the page finds it by the code typed; the device code carries
//! the same route. Approval, each poll and the single redemption are each one step there.

use super::bearer::token_key;
use super::client_auth::{authenticate, credentials};
use super::error::{sf, ErrorCode, OAuthError};
use super::issue::{
    first_issue, mint, publish, refresh_allowed, token_response, unpublish, wants_urlencoded, Grant,
};
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::future::both;
use crate::core::http::{Params, Request, Response};
use crate::core::model::App;
use crate::core::org::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{
    DeviceDecision, DeviceGrant, DevicePoll, Redemption, Route, Store, TokenKey,
};

/// How long a device code and its user code live: 10 minutes, what the Salesforce CLI tells
/// its users.
pub const DEVICE_TTL_S: u64 = 600;
/// The polling interval a device starts with (RFC 8628 §3.2's default).
pub const INTERVAL_S: u64 = 5;
/// What RFC 8628 §3.5 adds to the interval at each `slow_down`.
pub const SLOW_DOWN_S: u64 = 5;
/// RFC 8628 §6.1: 20 consonants, no vowels (no words), no look-alikes; 8 of them give 34.5 bits,
/// which the throttle on `/setup/connect` and the 10-minute lifetime make enough.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.4's grant type; Salesforce's is `device`.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Where people approve devices (CONTRACT §2).
pub const VERIFICATION_PATH: &str = "/setup/connect";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Salesforce,
    Rfc8628,
}

/// A user code as typed: letters of the alphabet in any case, with or without the dash or
/// spaces; `None` if it cannot be one.
pub fn normalize_user_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `BCDF-GHJK`: the user code as people read it.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// 8 letters drawn uniformly (bytes of 240 and above are drawn again: 240 = 12 × 20).
fn new_user_code<S: Store>(ctx: &Ctx<'_, S>) -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 32];
    while code.len() < USER_CODE_LEN {
        ctx.rng.fill(&mut buf);
        for b in buf.iter().filter(|b| **b < 240) {
            if code.len() < USER_CODE_LEN {
                code.push(USER_CODE_ALPHABET[usize::from(*b % 20)] as char);
            }
        }
    }
    code
}

/// The client at either step: the Salesforce dialect takes `client_id` alone; RFC 8628's
/// authenticates apps that require their secret. The app must allow the device flow.
async fn client<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    dialect: Dialect,
) -> Result<App, OAuthError> {
    let creds = credentials(req, params)?;
    let client = authenticate(ctx, req, creds, |app| {
        dialect == Dialect::Rfc8628 && app.policy.secret_required_web_server
    })
    .await?;
    // Salesforce's "Enable for Device Flow", and for a client that registered itself, the
    // device grant among its registered grant types (RFC 7591 §2).
    if !client.app.policy.device_flow || !client.app.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the device flow is not enabled for this app",
        ));
    }
    Ok(client.app)
}

/// Step 1 (RFC 8628 §3.1–3.2): a device code (route + 256 bits) and a user code.
pub async fn authorize<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    dialect: Dialect,
) -> Result<Response, OAuthError> {
    let app = client(ctx, req, params, dialect).await?;
    let scopes = ScopeSet::parse_requested(params.get("scope")?, &app.scopes)?;
    // A live grant with the same user code is unlikely (1 in 2.5·10^10 per live grant), and
    // then another code is drawn.
    for _ in 0..4 {
        let user_code = new_user_code(ctx);
        let route = Route::pick(&user_code, ctx.config.shards).encode();
        let device_code = Secret::new(format!(
            "{route}{}",
            Secret::random_base62(ctx.rng, 43).expose()
        ));
        let grant = DeviceGrant {
            client_id: app.client_id.clone(),
            scopes: scopes.to_vec(),
            user_code: user_code.clone(),
            expires_at_s: ctx.now_s() + DEVICE_TTL_S,
            interval_s: INTERVAL_S,
            family_id: format!("{route}{}", Secret::random_base62(ctx.rng, 22).expose()),
        };
        if ctx
            .store
            .start_device(&token_key(device_code.expose()), &grant)
            .await?
        {
            let shown = display_user_code(&user_code);
            let verification_uri = ctx.url(VERIFICATION_PATH);
            let body = serde_json::json!({
                "device_code": device_code.expose(),
                "user_code": shown,
                "verification_uri": verification_uri,
                "verification_uri_complete": format!("{verification_uri}?user_code={shown}"),
                "interval": INTERVAL_S,
                "expires_in": DEVICE_TTL_S,
            });
            return Ok(Response::json(200, &body).no_store());
        }
    }
    Err(OAuthError::server_error())
}

/// Step 2 (RFC 8628 §3.4–3.5): a poll. Tokens come out once, for the client the code was
/// issued to, after a person approved it.
pub async fn poll<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    dialect: Dialect,
) -> Result<Response, OAuthError> {
    let name = match dialect {
        Dialect::Salesforce => "code",
        Dialect::Rfc8628 => "device_code",
    };
    let code = params
        .get(name)?
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} required")))?;
    let app = client(ctx, req, params, dialect).await?;
    let key = token_key(code);
    let polled = ctx
        .store
        .poll_device(&key, &app.client_id, ctx.clock.now_ms())
        .await?;
    let (grant, decision) = match polled {
        DevicePoll::Unknown => return Err(OAuthError::invalid_grant("invalid device code")),
        DevicePoll::Pending => {
            return Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "authorization pending: approve the device at the verification page",
            ))
        }
        DevicePoll::SlowDown => {
            return Err(OAuthError::new(
                ErrorCode::SlowDown,
                format!("polling too quickly: wait {SLOW_DOWN_S} more seconds between polls"),
            ))
        }
        DevicePoll::Expired => {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code has expired",
            ))
        }
        DevicePoll::Redeemed => return Err(OAuthError::invalid_grant("the device code was used")),
        DevicePoll::Decided { grant, decision } => (grant, decision),
    };
    let DeviceDecision::Approved {
        user_id,
        user,
        auth_time_s,
        authenticated_at_ms,
    } = *decision
    else {
        return Err(OAuthError::new(ErrorCode::AccessDenied, sf::DENIED));
    };
    issue(
        ctx,
        req,
        params,
        &app,
        &key,
        &grant,
        &user_id,
        &user,
        auth_time_s,
        authenticated_at_ms,
    )
    .await
}

/// Mints the tokens of an approved grant and redeems it, once, in its shard.
#[allow(clippy::too_many_arguments)]
async fn issue<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    app: &App,
    key: &TokenKey,
    grant: &DeviceGrant,
    user_id: &str,
    user: &crate::core::storage::UserClaims,
    auth_time_s: u64,
    authenticated_at_ms: u64,
) -> Result<Response, OAuthError> {
    let org_id = org_id(ctx).await?;
    let scopes = ScopeSet::from_list(&grant.scopes);
    let described = Grant {
        org_id: &org_id,
        app,
        client_secret: None,
        user_id,
        claims: user,
        scopes: &scopes,
        auth_time_s,
        nonce: None,
        resource: None,
    };
    let minted = mint(
        ctx,
        &described,
        &grant.family_id,
        refresh_allowed(app, &scopes),
    )
    .await?;
    let response = token_response(
        ctx,
        &described,
        &minted,
        Vec::new(),
        wants_urlencoded(req, params),
    )
    .await?;
    let issue = first_issue(ctx, &described, &grant.family_id, &minted, Vec::new());
    let (published, redeemed) = both(
        publish(ctx, &minted),
        ctx.store.redeem_device(key, &issue, authenticated_at_ms),
    )
    .await;
    match redeemed? {
        Redemption::Issued => {
            let _ = published;
            Ok(response)
        }
        outcome => {
            unpublish(ctx, &minted).await?;
            Err(OAuthError::invalid_grant(match outcome {
                Redemption::UserInvalid => "inactive user",
                _ => "the device code was used",
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_as_people_type_them() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
        for bad in ["BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", ""] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }
}
