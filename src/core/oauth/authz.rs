//! The vocabulary the authorization endpoint, the login/consent interaction and the pages share:
//! the validated authorization request, how a failed one is answered, and the code it ends in.

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::redirect;
use crate::core::config::Ctx;
use crate::core::http::Response;
use crate::core::secret::Secret;
use crate::core::storage::{CodeGrant, Store, UserClaims};

/// Code lifetime: 15 minutes, as Salesforce's.
pub const CODE_TTL_S: u64 = 15 * 60;

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
