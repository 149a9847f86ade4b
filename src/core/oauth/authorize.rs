//! `/services/oauth2/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate, then log in,
//! ask consent, or issue a code.
//!
//! Validation order matters (RFC 6749 §4.1.2.1): until the client and its redirect URI are known,
//! an error is shown as a page and never redirected; after that, errors go back to the client
//! with `state`.

use super::authz::{AuthorizationRequest, Failure, Prompt, ResponseMode, ResponseType};
use super::client_metadata;
use super::error::{sf, ErrorCode, OAuthError};
use super::headless;
use super::interaction;
use super::metadata_document;
use super::pkce;
use super::redirect;
use super::resource;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::App;
use crate::core::org::org_settings;
use crate::core::storage::Store;

pub async fn get<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    respond(ctx, req, &req.query_params()).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint MUST support POST with form-serialized
/// parameters. A POST carrying `response_type` is an authorization request; any other POST is
/// the login or consent form of an interaction, with its CSRF checks.
pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let params = req.form_params();
    match params {
        // The headless flow answers JSON, never a page or a redirect.
        Ok(params) if params.get("response_type") == Ok(Some("code_credentials")) => {
            headless::post(ctx, req, &params).await
        }
        Ok(params) if params.pairs().iter().any(|(k, _)| k == "response_type") => {
            respond(ctx, req, &params).await
        }
        params => interaction::post(ctx, req, params).await,
    }
}

async fn respond<S: Store>(ctx: &Ctx<'_, S>, req: &Request, params: &Params) -> Response {
    match handle(ctx, req, params).await {
        Ok(r) => r,
        Err(f) => f.into_response(ctx),
    }
}

async fn handle<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, Failure> {
    let (app, areq) = parse(ctx, req, params).await?;
    let session = interaction::current_session(ctx, req, &app.client_id).await?;
    if areq.response_type.issues_code()
        && pkce::missing_but_required(ctx, &app, areq.code_challenge.as_deref()).await?
    {
        return Err(before_login(
            &app,
            areq,
            OAuthError::invalid_request("code_challenge required"),
        ));
    }
    let user = match session {
        Some(s) if !needs_login(ctx, &areq, s.authn.auth_time_s) => Some(s),
        _ if areq.prompt.none => {
            let e = areq
                .prompt
                .silent_failure(ErrorCode::LoginRequired, "user is not logged in");
            return Err(Failure::Redirect(Box::new(areq), e));
        }
        _ => None,
    };
    match user {
        Some(s) => interaction::proceed(ctx, req, &app, areq, &s.user, s.authn, s.grant).await,
        None => interaction::start(ctx, req, &app, areq, None).await,
    }
}

/// An error found before the user has logged in. RFC 9700 §4.11.2: the server SHOULD redirect
/// automatically only to a redirection URI it trusts, else it becomes an open redirector. An
/// operator registered an app's callbacks; a client that registered itself (RFC 7591, a client ID
/// metadata document) chose its own, so its errors are shown as the error page instead (silent
/// authentication, `prompt=none`, still answers by redirect, as the spec allows).
fn before_login(app: &App, areq: AuthorizationRequest, e: OAuthError) -> Failure {
    if app.registration.is_some() && !areq.prompt.none {
        Failure::Page(e)
    } else {
        Failure::Redirect(Box::new(areq), e)
    }
}

/// OIDC Core §3.1.2.1: `prompt=login` forces a fresh login, and so does a `max_age` that has
/// run out. `max_age=0` is equivalent to `prompt=login`, so the comparison is `>=` on whole
/// seconds: a login earlier in the same second does not satisfy `max_age=0`.
fn needs_login<S: Store>(ctx: &Ctx<'_, S>, areq: &AuthorizationRequest, auth_time_s: u64) -> bool {
    areq.prompt.login
        || areq
            .max_age_s
            .is_some_and(|max| ctx.now_s().saturating_sub(auth_time_s) >= max)
}

/// Validates the request: client and redirect URI first (page errors), then the rest
/// (redirected errors).
pub async fn parse<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<(App, AuthorizationRequest), Failure> {
    let page = |e: crate::core::http::ParamError| Failure::Page(e.into());
    let unknown_client = || {
        Failure::Page(OAuthError::new(
            ErrorCode::InvalidClientId,
            sf::CLIENT_ID_INVALID,
        ))
    };
    let client_id = params
        .get("client_id")
        .map_err(page)?
        .ok_or_else(unknown_client)?;
    let app = if metadata_document::is_document_url(client_id) {
        metadata_document::app(ctx, client_id, req.client_ip()).await?
    } else {
        ctx.store
            .get_app(client_id)
            .await?
            .ok_or_else(unknown_client)?
    };
    let redirect_uri = params.get("redirect_uri").map_err(page)?.ok_or_else(|| {
        Failure::Page(OAuthError::new(
            ErrorCode::RedirectUriMissing,
            "redirect_uri not provided",
        ))
    })?;
    if !redirect::is_registered(&app.callback_urls, redirect_uri) {
        return Err(Failure::Page(OAuthError::new(
            ErrorCode::RedirectUriMismatch,
            sf::REDIRECT_MISMATCH,
        )));
    }
    // From here on, errors can be redirected. `state` first, so they can carry it.
    let mut areq = AuthorizationRequest {
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: Vec::new(),
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: Prompt::default(),
        max_age_s: None,
        login_hint: None,
        device: None,
        resource: None,
    };
    let parsed = parse_rest(params, &app, &mut areq);
    // Salesforce's "Allow OAuth User-Agent Flows" (salesforce-reference.md §11.3): blocking it
    // also blocks the hybrid token flow. Said before any other complaint about the request.
    if areq.response_type.issues_tokens() && !org_settings(ctx).await?.allow_user_agent_flow {
        let e = OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "the user-agent flow (token, token id_token, hybrid_token) is blocked by the org setting allow_user_agent_flow",
        );
        return Err(before_login(&app, areq, e));
    }
    let parsed = match parsed {
        Ok(()) => registered_for(&app, params, &mut areq, ctx).await,
        Err(e) => Err(e),
    };
    match parsed {
        Ok(()) => Ok((app, areq)),
        Err(e) => Err(before_login(&app, areq, e)),
    }
}

/// What needs more than the request itself: a registered client asks only for the response
/// types it registered (RFC 7591 §2), and a `resource` must be one the org knows (RFC 8707).
async fn registered_for<S: Store>(
    app: &App,
    params: &Params,
    areq: &mut AuthorizationRequest,
    ctx: &Ctx<'_, S>,
) -> Result<(), OAuthError> {
    if let (Some(reg), Some(raw)) = (&app.registration, params.get("response_type")?) {
        if !client_metadata::allows_response_type(reg, raw) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "response type not registered for this client",
            ));
        }
    }
    areq.resource = resource::requested(ctx, params).await?;
    Ok(())
}

fn parse_rest(
    params: &Params,
    app: &App,
    areq: &mut AuthorizationRequest,
) -> Result<(), OAuthError> {
    areq.state = params.get("state").ok().flatten().map(str::to_owned);
    params.get("state")?;
    match params.get("response_type")? {
        Some(raw) => match ResponseType::parse(raw) {
            Some(t) => {
                areq.response_type = t;
                areq.response_mode = t.default_mode();
            }
            None => {
                // Whatever it was, a value that asks for tokens hears back in the fragment.
                if raw.contains("token") {
                    areq.response_mode = ResponseMode::Fragment;
                }
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    sf::RESPONSE_TYPE_NOT_SUPPORTED,
                ));
            }
        },
        None => return Err(OAuthError::invalid_request("response_type required")),
    }
    match params.get("response_mode")? {
        None => {}
        // Tokens never in a query string (Multiple Response Type Encoding Practices §2.1).
        Some("query") if areq.response_type.carries_tokens() => {
            return Err(OAuthError::invalid_request(
                "response_mode=query cannot carry tokens",
            ))
        }
        Some("query") => areq.response_mode = ResponseMode::Query,
        Some("fragment") => areq.response_mode = ResponseMode::Fragment,
        Some("form_post") => areq.response_mode = ResponseMode::FormPost,
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "response_mode must be query, fragment or form_post",
            ))
        }
    }
    // OIDC Core §6: request objects are not supported, and saying so beats ignoring them (a
    // client would otherwise believe its signed parameters were applied).
    if params.get("request")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    areq.scopes = ScopeSet::parse_requested(params.get("scope")?, &app.scopes)?.to_vec();
    areq.nonce = params.get("nonce")?.map(str::to_owned);
    // OIDC Core §3.2.2.1, §3.3.2.11: an ID token from the authorization endpoint needs a nonce.
    let id_token_types = [ResponseType::TokenIdToken, ResponseType::CodeIdToken];
    if id_token_types.contains(&areq.response_type) && areq.nonce.is_none() {
        return Err(OAuthError::invalid_request(
            "nonce required when the authorization response carries an ID token",
        ));
    }
    areq.code_challenge = pkce::parse_challenge(
        params.get("code_challenge")?,
        params.get("code_challenge_method")?,
    )?;
    areq.login_hint = params.get("login_hint")?.map(str::to_owned);
    areq.max_age_s =
        match params.get("max_age")? {
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                OAuthError::invalid_request("max_age must be a non-negative integer")
            })?),
            None => None,
        };
    if let Some(prompt) = params.get("prompt")? {
        for p in prompt.split(' ').filter(|p| !p.is_empty()) {
            match p {
                "login" => areq.prompt.login = true,
                "consent" => areq.prompt.consent = true,
                "none" => areq.prompt.none = true,
                // Salesforce's account chooser; with one session there is nothing to choose.
                "select_account" => {}
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "unknown prompt value: {other}"
                    )))
                }
            }
        }
        // OIDC Core §3.1.2.1: `none` with any other value is an error.
        // (`immediate=true` is checked below, after `prompt`.)
        if areq.prompt.none && (areq.prompt.login || areq.prompt.consent) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined",
            ));
        }
    }
    // Salesforce's `immediate=true` skips approval when possible, else fails.
    match params.get("immediate")? {
        Some("true") => {
            areq.prompt.none = true;
            areq.prompt.immediate = true;
        }
        Some("false") | None => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "immediate must be true or false",
            ))
        }
    }
    Ok(())
}
