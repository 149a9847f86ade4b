//! The headless Authorization Code and Credentials flow (salesforce-reference.md §11.1): an app
//! with its own login screen sends the user's credentials to the authorization endpoint and gets
//! a code back as JSON — no page, no redirect — which it redeems at the token endpoint with its
//! PKCE verifier. Only while the org setting `allow_code_credentials_flow` is on.
//!
//! `POST /services/oauth2/authorize` with `response_type=code_credentials`,
//! `Auth-Request-Type: Named-User` and `Authorization: Basic base64(username:password)`; the
//! body names the client, a registered redirect URI and a PKCE challenge (required). Every
//! failure is JSON: 400 for a malformed request, 401 `invalid_grant` for wrong credentials, 429
//! when the login throttles refuse.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::authz::{mint_code, AuthorizationRequest, Prompt, ResponseMode, ResponseType};
use super::client_auth::strip_scheme;
use super::error::{sf, ErrorCode, OAuthError};
use super::interaction::{check_login, login_allowed, Authn};
use super::pkce;
use super::redirect;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::PermittedUsers;
use crate::core::org::org_settings;
use crate::core::storage::{Store, UserClaims};

pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request, params: &Params) -> Response {
    match run(ctx, req, params).await {
        Ok(r) => r,
        Err((status, e)) => {
            let mut r = e.to_response(false);
            r.status = status;
            r
        }
    }
}

type Refusal = (u16, OAuthError);

fn bad(e: OAuthError) -> Refusal {
    let status = e.status();
    (status, e)
}

async fn run<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, Refusal> {
    let store_failed = |e| bad(OAuthError::from(e));
    if !org_settings(ctx)
        .await
        .map_err(store_failed)?
        .allow_code_credentials_flow
    {
        return Err(bad(OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "the Authorization Code and Credentials flow is blocked by the org setting allow_code_credentials_flow",
        )));
    }
    let invalid = |d: &'static str| bad(OAuthError::invalid_request(d));
    match req.header("auth-request-type") {
        Some(t) if t.trim().eq_ignore_ascii_case("named-user") => {}
        Some(_) => return Err(invalid("Auth-Request-Type must be Named-User")),
        None => return Err(invalid("Auth-Request-Type header required")),
    }
    let (username, password) = basic_credentials(req)
        .ok_or_else(|| invalid("Authorization: Basic base64(username:password) required"))?;
    let p = |e| bad(OAuthError::from(e));
    let client_id = params
        .get("client_id")
        .map_err(p)?
        .ok_or_else(|| invalid("client_id required"))?;
    let app = ctx
        .store
        .get_app(client_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            bad(OAuthError::new(
                ErrorCode::InvalidClientId,
                sf::CLIENT_ID_INVALID,
            ))
        })?;
    let redirect_uri = params
        .get("redirect_uri")
        .map_err(p)?
        .ok_or_else(|| invalid("redirect_uri required"))?;
    if !redirect::is_registered(&app.callback_urls, redirect_uri) {
        return Err(bad(OAuthError::new(
            ErrorCode::RedirectUriMismatch,
            sf::REDIRECT_MISMATCH,
        )));
    }
    let code_challenge = pkce::parse_challenge(
        params.get("code_challenge").map_err(p)?,
        params.get("code_challenge_method").map_err(p)?,
    )
    .map_err(bad)?
    .ok_or_else(|| invalid("code_challenge required"))?;
    let scopes = ScopeSet::parse_requested(params.get("scope").map_err(p)?, &app.scopes)
        .map_err(bad)?
        .to_vec();
    let state = params.get("state").map_err(p)?.map(str::to_owned);
    if !login_allowed(ctx, req, &username)
        .await
        .map_err(store_failed)?
    {
        return Err(bad(OAuthError::new(
            ErrorCode::RateLimitExceeded,
            "too many login attempts; wait a minute",
        )));
    }
    let user = check_login(ctx, &username, &password)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| (401, OAuthError::invalid_grant("authentication failure")))?;
    if app.policy.permitted_users == PermittedUsers::AdminApproved {
        let preauthorized = ctx
            .store
            .app_user_grant(&app.client_id, &user.user_id)
            .await
            .map_err(store_failed)?
            .is_some_and(|g| g.preauthorized);
        if !preauthorized {
            return Err(bad(OAuthError::new(
                ErrorCode::InvalidAppAccess,
                sf::NOT_ADMIN_APPROVED,
            )));
        }
    }
    let areq = AuthorizationRequest {
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state.clone(),
        nonce: params.get("nonce").map_err(p)?.map(str::to_owned),
        code_challenge: Some(code_challenge),
        prompt: Prompt::default(),
        max_age_s: None,
        login_hint: None,
        device: None,
        resource: None,
    };
    let authn = Authn {
        auth_time_s: ctx.now_s(),
        started_ms: ctx.clock.now_ms(),
    };
    let code = mint_code(
        ctx,
        &areq,
        &user.user_id,
        Some(UserClaims::from(&user)),
        authn,
    )
    .await
    .map_err(store_failed)?;
    let mut body = serde_json::json!({
        "code": code.expose(),
        "sfdc_community_url": ctx.issuer,
    });
    if let Some(s) = state {
        body["state"] = s.into();
    }
    Ok(Response::json(200, &body).no_store())
}

/// `Authorization: Basic base64(username:password)`, split at the first colon (a password may
/// hold colons; a username may not).
fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let b64 = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "basic"))?;
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty() && !password.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}
