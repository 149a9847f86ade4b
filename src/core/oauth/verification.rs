//! `/setup/connect`: where a person approves a device (RFC 8628 §3.3). They type the user code
//! the device shows (or follow `verification_uri_complete`, which fills it in), log in if they
//! are not, see which app asks for what — with the code, so a code sent by someone else is
//! recognised (§5.4) — and allow or deny. The login and consent pages are the authorization
//! endpoint's own (`interaction.rs`), for a request that carries the user code instead of a
//! redirect URI and always asks for consent; they end in a page, not a redirect.
//!
//! Every code entered counts against a per-address throttle before it is looked up (ten a
//! minute), so a guess is refused once over whether or not it would have been right.

use super::authz::{
    active_claims, request_app, AuthorizationRequest, Failure, Prompt, ResponseMode, ResponseType,
};
use super::device::normalize_user_code;
use super::error::{ErrorCode, OAuthError};
use super::interaction::{current_session, proceed, start, Authn, BROWSER_COOKIE};
use super::pages::{self, CodeNotice};
use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::secret::{b64url, ct_eq, sha256, Secret};
use crate::core::storage::{DeviceDecision, Limit, Store, UserClaims};

pub const PATH: &str = "/setup/connect";
const BROWSER_COOKIE_TTL_S: u64 = 30 * 86400;

/// The code entry form's CSRF token: bound to this browser's cookie (a signed double submit
/// needs no stored state: another site can neither read the cookie nor set a `__Host-` one).
fn entry_csrf(browser: &str) -> String {
    b64url(&sha256(format!("setup-connect|{browser}").as_bytes()))
}

/// This browser's cookie, or a new one (and the header that sets it).
fn browser<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> (String, Option<String>) {
    let cookies = ctx.cookies();
    match cookies.read(req, BROWSER_COOKIE) {
        Some(b) if b.len() >= 43 => (b.to_owned(), None),
        _ => {
            let b = Secret::random_base62(ctx.rng, 43).expose().to_owned();
            let set = cookies.set(BROWSER_COOKIE, &b, BROWSER_COOKIE_TTL_S);
            (b, Some(set))
        }
    }
}

/// The code entry page, the code filled in from `?user_code=`.
pub async fn get<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let query = req.query_params();
    let code = query.get("user_code").ok().flatten().unwrap_or_default();
    let (browser, set) = browser(ctx, req);
    let page = pages::device_entry(code, &entry_csrf(&browser), None);
    match set {
        Some(set) => page.with_header("set-cookie", &set),
        None => page,
    }
}

/// A code entered: the login page, or the consent page for a logged-in person.
pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    match entered(ctx, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(ctx),
    }
}

async fn entered<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, Failure> {
    let params = req.form_params().map_err(|e| Failure::Page(e.into()))?;
    let page = |e| Failure::Page(OAuthError::from(e));
    let typed = params.get("user_code").map_err(page)?.unwrap_or_default();
    let sent_csrf = params.get("csrf_token").map_err(page)?.unwrap_or_default();
    let browser = ctx.cookies().read(req, BROWSER_COOKIE).unwrap_or_default();
    let csrf = entry_csrf(browser);
    if browser.len() < 43 || !ct_eq(sent_csrf, &csrf) {
        return Err(Failure::Page(OAuthError::invalid_request(
            "invalid CSRF token: open the page again",
        )));
    }
    if !ctx.store.allow(Limit::UserCode, req.client_ip()).await? {
        return Ok(pages::device_entry(
            typed,
            &csrf,
            Some(CodeNotice::Throttled),
        ));
    }
    let grant = match normalize_user_code(typed) {
        Some(code) => ctx.store.find_device(&code, ctx.now_s()).await?,
        None => None,
    };
    let Some(grant) = grant else {
        return Ok(pages::device_entry(typed, &csrf, Some(CodeNotice::Unknown)));
    };
    let app = request_app(ctx, &grant.client_id).await?;
    let areq = AuthorizationRequest {
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        client_id: app.client_id.clone(),
        redirect_uri: String::new(),
        scopes: grant.scopes.clone(),
        state: None,
        nonce: None,
        code_challenge: None,
        // RFC 8628 §5.4: the person always sees what they approve, even for an app they approved
        // before.
        prompt: Prompt {
            consent: true,
            ..Prompt::default()
        },
        max_age_s: None,
        login_hint: None,
        device: Some(grant.user_code),
        resource: None,
    };
    match current_session(ctx, req, &app.client_id).await? {
        Some(s) => proceed(ctx, req, &app, areq, &s.user, s.authn, s.grant).await,
        None => start(ctx, req, &app, areq, None).await,
    }
}

/// The person allowed the device: the grant is approved for them, once.
pub async fn approve<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    claims: Option<UserClaims>,
    authn: Authn,
) -> Result<Response, Failure> {
    let claims = active_claims(ctx, user_id, claims).await?.ok_or_else(|| {
        Failure::Page(OAuthError::new(ErrorCode::AccessDenied, "user is inactive"))
    })?;
    let decision = DeviceDecision::Approved {
        user_id: user_id.to_owned(),
        user: claims,
        auth_time_s: authn.auth_time_s,
        authenticated_at_ms: authn.started_ms,
    };
    decide(ctx, areq, &decision).await
}

/// The person denied the device.
pub async fn deny<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
) -> Result<Response, Failure> {
    decide(ctx, areq, &DeviceDecision::Denied).await
}

async fn decide<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    decision: &DeviceDecision,
) -> Result<Response, Failure> {
    let code = areq.device.as_deref().unwrap_or_default();
    let app = request_app(ctx, &areq.client_id).await?;
    if !ctx.store.decide_device(code, decision, ctx.now_s()).await? {
        return Err(Failure::Page(OAuthError::invalid_request(
            "this device code has expired or was answered already; start again on the device",
        )));
    }
    Ok(pages::device_done(
        &app,
        matches!(decision, DeviceDecision::Approved { .. }),
    ))
}
