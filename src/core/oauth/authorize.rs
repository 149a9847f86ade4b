//! `GET /services/oauth2/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate, then log in,
//! ask consent, or issue a code.
//!
//! Validation order matters (RFC 6749 §4.1.2.1): until the client and its exact redirect URI are
//! known, an error is shown as a page and never redirected; after that, errors go back to the
//! client with `state`.

use serde::{Deserialize, Serialize};

use super::error::{sf, ErrorCode, OAuthError};
use super::interaction;
use super::pkce;
use super::redirect;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::model::{App, PermittedUsers, User};
use crate::core::secret::Secret;
use crate::core::storage::{CodeGrant, Store};

/// Code lifetime: 15 minutes, as Salesforce (salesforce-reference.md §1.1).
pub const CODE_TTL_S: u64 = 15 * 60;
/// Browser login session lifetime.
pub const SESSION_TTL_S: u64 = 8 * 3600;
pub const SESSION_COOKIE: &str = "eo_sid";

/// The closed set of response types implemented. Others are `unsupported_response_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    Code,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub login: bool,
    pub consent: bool,
    pub none: bool,
    /// Salesforce's `immediate=true`: `prompt=none` that fails with `immediate_unsuccessful`.
    #[serde(default)]
    pub immediate: bool,
}

impl Prompt {
    /// The error for a silent request (`prompt=none`/`immediate=true`) that needs the user.
    fn silent_failure(&self, code: ErrorCode, description: &'static str) -> OAuthError {
        if self.immediate {
            OAuthError::new(ErrorCode::ImmediateUnsuccessful, "immediate unsuccessful")
        } else {
            OAuthError::new(code, description)
        }
    }
}

/// A validated authorization request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub response_type: ResponseType,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age_s: Option<u64>,
    pub login_hint: Option<String>,
}

/// How a failed authorization request is answered.
#[derive(Debug)]
pub enum Failure {
    /// Client or redirect URI unknown: an error page, never a redirect.
    Page(OAuthError),
    /// Back to the client's redirect URI.
    Redirect(Box<AuthorizationRequest>, OAuthError),
    /// The request is fine but storage failed.
    Internal,
}

impl From<crate::core::storage::StoreError> for Failure {
    fn from(_: crate::core::storage::StoreError) -> Self {
        Self::Internal
    }
}

impl Failure {
    pub fn into_response<S: Store>(self, ctx: &Ctx<'_, S>) -> Response {
        match self {
            Self::Page(e) => error_page(&e),
            Self::Redirect(areq, e) => redirect_error(ctx, &areq, &e),
            Self::Internal => error_page(&OAuthError::server_error()),
        }
    }
}

/// Salesforce renders unredirectable errors as a plain `error=…&error_description=…` body that
/// clients scrape (salesforce-reference.md §0.5), with spaces as `%20`
/// (`redirect_uri%20must%20match%20configuration`): scrapers percent-decode it, which leaves a
/// `+` as it is. The form serializer writes a literal `+` as `%2B`, so every `+` is a space.
pub fn error_page(e: &OAuthError) -> Response {
    let status = if e.code == ErrorCode::ServerError {
        500
    } else {
        400
    };
    Response::text(status, e.to_urlencoded().replace('+', "%20")).no_store()
}

/// RFC 6749 §4.1.2.1 error redirect with `state`, plus RFC 9207 `iss`.
pub fn redirect_error<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    e: &OAuthError,
) -> Response {
    let mut pairs: Vec<(&str, &str)> = e.pairs().to_vec();
    if let Some(state) = &areq.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &ctx.issuer));
    Response::redirect(&redirect::with_query(&areq.redirect_uri, &pairs))
}

pub async fn get<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    match handle_get(ctx, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(ctx),
    }
}

async fn handle_get<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, Failure> {
    let params = req.query_params();
    let (app, areq) = parse(ctx, &params).await?;
    let session = interaction::current_session(ctx, req).await?;
    if pkce::missing_but_required(ctx, &app, areq.code_challenge.as_deref()).await? {
        return Err(Failure::Redirect(
            Box::new(areq),
            OAuthError::invalid_request("code_challenge required"),
        ));
    }
    let user = match session {
        Some((user, auth_time)) if !needs_login(ctx, &areq, auth_time) => Some((user, auth_time)),
        _ if areq.prompt.none => {
            let e = areq
                .prompt
                .silent_failure(ErrorCode::LoginRequired, "user is not logged in");
            return Err(Failure::Redirect(Box::new(areq), e));
        }
        _ => None,
    };
    match user {
        Some((user, auth_time)) => proceed(ctx, req, &app, areq, &user, auth_time).await,
        None => interaction::start(ctx, req, &app, areq, None).await,
    }
}

/// OIDC Core §3.1.2.1: `prompt=login` and an exceeded `max_age` force a fresh login.
fn needs_login<S: Store>(ctx: &Ctx<'_, S>, areq: &AuthorizationRequest, auth_time_s: u64) -> bool {
    areq.prompt.login
        || areq
            .max_age_s
            .is_some_and(|max| ctx.now_s().saturating_sub(auth_time_s) > max)
}

/// Validates the request: client and redirect URI first (page errors), then the rest
/// (redirected errors).
pub async fn parse<S: Store>(
    ctx: &Ctx<'_, S>,
    params: &Params,
) -> Result<(App, AuthorizationRequest), Failure> {
    let page = |e: crate::core::http::ParamError| Failure::Page(e.into());
    let client_id = params.get("client_id").map_err(page)?.ok_or_else(|| {
        Failure::Page(OAuthError::new(
            ErrorCode::InvalidClientId,
            sf::CLIENT_ID_INVALID,
        ))
    })?;
    let app = ctx.store.get_app(client_id).await?.ok_or_else(|| {
        Failure::Page(OAuthError::new(
            ErrorCode::InvalidClientId,
            sf::CLIENT_ID_INVALID,
        ))
    })?;
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
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: Vec::new(),
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: Prompt::default(),
        max_age_s: None,
        login_hint: None,
    };
    match parse_rest(params, &app, &mut areq) {
        Ok(()) => Ok((app, areq)),
        Err(e) => Err(Failure::Redirect(Box::new(areq), e)),
    }
}

fn parse_rest(
    params: &Params,
    app: &App,
    areq: &mut AuthorizationRequest,
) -> Result<(), OAuthError> {
    areq.state = params.get("state").ok().flatten().map(str::to_owned);
    params.get("state")?;
    match params.get("response_type")? {
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                sf::RESPONSE_TYPE_NOT_SUPPORTED,
            ))
        }
        None => return Err(OAuthError::invalid_request("response_type required")),
    }
    areq.scopes = ScopeSet::parse_requested(params.get("scope")?, &app.scopes)?.to_vec();
    areq.nonce = params.get("nonce")?.map(str::to_owned);
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
    // salesforce-reference.md §1.1: `immediate=true` skips approval when possible, else fails.
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

/// With a logged-in user: check app access, ask consent if needed, else issue the code.
pub async fn proceed<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: &App,
    areq: AuthorizationRequest,
    user: &User,
    auth_time_s: u64,
) -> Result<Response, Failure> {
    let grant = ctx
        .store
        .app_user_grant(&app.client_id, &user.user_id)
        .await?
        .unwrap_or_default();
    if app.policy.permitted_users == PermittedUsers::AdminApproved {
        if !grant.preauthorized {
            return Err(Failure::Redirect(
                Box::new(areq),
                OAuthError::new(ErrorCode::InvalidAppAccess, sf::NOT_ADMIN_APPROVED),
            ));
        }
        // Pre-authorized users skip the consent page (salesforce-reference.md §1.1).
        return issue_code(ctx, &areq, &user.user_id, auth_time_s).await;
    }
    let approved = grant.approved_scopes.unwrap_or_default();
    if areq.scopes.iter().all(|x| approved.contains(x))
        && !approved.is_empty()
        && !areq.prompt.consent
    {
        return issue_code(ctx, &areq, &user.user_id, auth_time_s).await;
    }
    if areq.prompt.none {
        let e = areq
            .prompt
            .silent_failure(ErrorCode::ConsentRequired, "user has not approved this app");
        return Err(Failure::Redirect(Box::new(areq), e));
    }
    let logged_in = interaction::LoggedIn {
        user,
        auth_time_s,
        approved_scopes: approved,
    };
    interaction::start(ctx, req, app, areq, Some(logged_in)).await
}

/// RFC 6749 §4.1.2: a code of 256 bits, stored hashed in KV for 15 minutes and bound to client,
/// redirect URI, PKCE challenge, nonce, scopes and user; then the redirect with `code`, `state`
/// and RFC 9207 `iss`.
pub async fn issue_code<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    auth_time_s: u64,
) -> Result<Response, Failure> {
    let code = Secret::random_base62(ctx.rng, 43);
    let grant = CodeGrant {
        client_id: areq.client_id.clone(),
        redirect_uri: areq.redirect_uri.clone(),
        code_challenge: areq.code_challenge.clone(),
        nonce: areq.nonce.clone(),
        scopes: areq.scopes.clone(),
        user_id: user_id.to_owned(),
        auth_time_s,
        expires_at_s: ctx.now_s() + CODE_TTL_S,
        family_id: Secret::random_base62(ctx.rng, 24).expose().to_owned(),
    };
    ctx.store.put_code(&code.hash(), &grant).await?;
    let mut pairs: Vec<(&str, &str)> = vec![("code", code.expose())];
    if let Some(state) = &areq.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &ctx.issuer));
    Ok(Response::redirect(&redirect::with_query(
        &areq.redirect_uri,
        &pairs,
    )))
}

/// Scope descriptions for the consent page.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "api" => "Access and manage your data",
        "web" => "Use your session on the web",
        "full" => "Full access to everything you can access",
        "refresh_token" | "offline_access" => "Stay signed in: act for you at any time",
        "openid" => "Sign you in (OpenID Connect)",
        "id" | "profile" => "Read your basic profile",
        "email" => "Read your email address",
        "address" => "Read your address",
        "phone" => "Read your phone number",
        _ => "Additional access",
    }
}
