//! The vocabulary the authorization endpoint, the login/consent interaction and the pages share:
//! the validated authorization request, how a failed one is answered, and the code it ends in.

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::redirect;
use crate::core::config::Ctx;
use crate::core::http::Response;
use crate::core::model::App;
use crate::core::secret::Secret;
use crate::core::storage::{CodeGrant, Store, UserClaims};

/// Code lifetime: 15 minutes, as Salesforce's.
pub const CODE_TTL_S: u64 = 15 * 60;

/// The closed set of response types implemented. Others are `unsupported_response_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// `code`, and Salesforce's `hybrid_auth_code` (a code the token endpoint may redeem with
    /// `grant_type=hybrid_auth_code`).
    Code,
    /// The user-agent flow (RFC 6749 §4.2): tokens in the fragment.
    Token,
    /// `token id_token` (OIDC Core §3.2): the same, with an ID token; `nonce` required.
    TokenIdToken,
    /// Salesforce's hybrid token flow: `token` plus a web session (`hybrid.rs`).
    HybridToken,
    /// `code id_token` (OIDC Core §3.3): a code, and an ID token bound to it by `c_hash`, in the
    /// fragment; `nonce` required. No access token leaves the authorization endpoint.
    CodeIdToken,
}

impl ResponseType {
    /// A `response_type` value: space-separated, in any order (OAuth 2.0 Multiple Response Type
    /// Encoding Practices §3).
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts: Vec<&str> = raw.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] | ["hybrid_auth_code"] => Some(Self::Code),
            ["token"] => Some(Self::Token),
            ["id_token", "token"] => Some(Self::TokenIdToken),
            ["hybrid_token"] => Some(Self::HybridToken),
            ["code", "id_token"] => Some(Self::CodeIdToken),
            _ => None,
        }
    }

    /// Whether the authorization endpoint itself issues tokens (the user-agent flows, which the
    /// org setting `allow_user_agent_flow` governs).
    pub fn issues_tokens(self) -> bool {
        matches!(self, Self::Token | Self::TokenIdToken | Self::HybridToken)
    }

    /// Whether the response carries a code (which PKCE protects).
    pub fn issues_code(self) -> bool {
        matches!(self, Self::Code | Self::CodeIdToken)
    }

    /// Whether the response carries a token (an access or an ID token): never in a query
    /// (OAuth 2.0 Multiple Response Type Encoding Practices §2.1, OIDC Core §3.3.2.5).
    pub fn carries_tokens(self) -> bool {
        self != Self::Code
    }

    /// Where the response goes unless `response_mode` says otherwise: tokens never in a query.
    pub fn default_mode(self) -> ResponseMode {
        if self.carries_tokens() {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

/// How the response reaches the redirect URI (OAuth 2.0 Multiple Response Type Encoding
/// Practices §2.1, OAuth 2.0 Form Post Response Mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Query,
    Fragment,
    /// A self-submitting HTML form POSTed to the redirect URI (`pages::form_post`).
    FormPost,
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
    pub fn silent_failure(&self, code: ErrorCode, description: &'static str) -> OAuthError {
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
    #[serde(default)]
    pub response_mode: ResponseMode,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age_s: Option<u64>,
    pub login_hint: Option<String>,
    /// A device's approval on `/setup/connect` (its normalized user code): no redirect URI; the
    /// login and consent pages end in a page, not a redirect (`verification.rs`).
    #[serde(default)]
    pub device: Option<String>,
    /// RFC 8707: the resource the tokens will be for.
    #[serde(default)]
    pub resource: Option<String>,
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
    fn from(e: crate::core::storage::StoreError) -> Self {
        match e {
            // A shard that is down: a 503 page, the request may be retried.
            crate::core::storage::StoreError::Unavailable(_) => Self::Page(OAuthError::from(e)),
            _ => Self::Internal,
        }
    }
}

impl Failure {
    pub fn into_response<S: Store>(self, ctx: &Ctx<'_, S>) -> Response {
        match self {
            Self::Page(e) => error_page(&e),
            Self::Redirect(areq, e) if areq.device.is_some() => error_page(&e),
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
    let status = match e.code {
        ErrorCode::ServerError => 500,
        ErrorCode::TemporarilyUnavailable => 503,
        ErrorCode::RateLimitExceeded => 429,
        _ => 400,
    };
    Response::text(status, e.to_urlencoded().replace('+', "%20")).no_store()
}

/// RFC 6749 §4.1.2.1 error redirect with `state`, plus RFC 9207 `iss`.
pub fn redirect_error<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    e: &OAuthError,
) -> Response {
    to_client(ctx, areq, e.pairs().to_vec())
}

/// The response to the client: `pairs`, then `state` and RFC 9207 `iss`, in the request's
/// response mode.
pub fn to_client<'a, S: Store>(
    ctx: &'a Ctx<'_, S>,
    areq: &'a AuthorizationRequest,
    mut pairs: Vec<(&'a str, &'a str)>,
) -> Response {
    if let Some(state) = &areq.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &ctx.issuer));
    match areq.response_mode {
        ResponseMode::Query => {
            Response::redirect(&redirect::with_query(&areq.redirect_uri, &pairs))
        }
        ResponseMode::Fragment => {
            Response::redirect(&redirect::with_fragment(&areq.redirect_uri, &pairs))
        }
        ResponseMode::FormPost => super::pages::form_post(&areq.redirect_uri, &pairs),
    }
}

/// The app of a request under way; one deleted meanwhile is an error page (there is no
/// registered redirect URI to trust any more).
pub async fn request_app<S: Store>(ctx: &Ctx<'_, S>, client_id: &str) -> Result<App, Failure> {
    ctx.store.get_app(client_id).await?.ok_or_else(|| {
        Failure::Page(OAuthError::new(
            ErrorCode::InvalidClientId,
            super::error::sf::CLIENT_ID_INVALID,
        ))
    })
}

/// The user's claims as carried from the login, or read now; `None` when the user is gone or
/// inactive.
pub async fn active_claims<S: Store>(
    ctx: &Ctx<'_, S>,
    user_id: &str,
    carried: Option<UserClaims>,
) -> Result<Option<UserClaims>, crate::core::storage::StoreError> {
    if carried.is_some() {
        return Ok(carried);
    }
    Ok(ctx
        .store
        .get_user(user_id)
        .await?
        .filter(|u| u.active)
        .map(|u| UserClaims::from(&u)))
}

/// The end of an authorization with a logged-in user who consented: a code, or (user-agent
/// flows) the tokens themselves.
pub async fn complete<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    user: Option<UserClaims>,
    authn: super::interaction::Authn,
) -> Result<Response, Failure> {
    if areq.device.is_some() {
        super::verification::approve(ctx, areq, user_id, user, authn).await
    } else if areq.response_type.issues_tokens() {
        super::user_agent::issue(ctx, areq, user_id, user, authn).await
    } else if areq.response_type == ResponseType::CodeIdToken {
        let code = mint_code(ctx, areq, user_id, user.clone(), authn).await?;
        let id_token =
            super::user_agent::code_id_token(ctx, areq, user_id, user, authn, &code).await?;
        Ok(to_client(
            ctx,
            areq,
            vec![("code", code.expose()), ("id_token", &id_token)],
        ))
    } else {
        issue_code(ctx, areq, user_id, user, authn).await
    }
}

/// RFC 6749 §4.1.2: a code of 256 bits, stored hashed in KV for 15 minutes and bound to client,
/// redirect URI, PKCE challenge, nonce, scopes and user; then the redirect with `code`, `state`
/// and RFC 9207 `iss`.
pub async fn issue_code<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    user: Option<UserClaims>,
    authn: super::interaction::Authn,
) -> Result<Response, Failure> {
    let code = mint_code(ctx, areq, user_id, user, authn).await?;
    Ok(to_client(ctx, areq, vec![("code", code.expose())]))
}

/// A code for `user_id`, stored hashed with what it is bound to (also the headless flow's).
pub async fn mint_code<S: Store>(
    ctx: &Ctx<'_, S>,
    areq: &AuthorizationRequest,
    user_id: &str,
    user: Option<UserClaims>,
    authn: super::interaction::Authn,
) -> Result<Secret, crate::core::storage::StoreError> {
    let code = Secret::random_base62(ctx.rng, 43);
    let grant = CodeGrant {
        client_id: areq.client_id.clone(),
        redirect_uri: areq.redirect_uri.clone(),
        code_challenge: areq.code_challenge.clone(),
        nonce: areq.nonce.clone(),
        scopes: areq.scopes.clone(),
        user_id: user_id.to_owned(),
        auth_time_s: authn.auth_time_s,
        expires_at_s: ctx.now_s() + CODE_TTL_S,
        authenticated_at_ms: authn.started_ms,
        family_id: super::issue::new_family_id(ctx),
        user,
        resource: areq.resource.clone(),
    };
    ctx.store.put_code(&code.hash(), &grant).await?;
    Ok(code)
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
