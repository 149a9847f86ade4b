//! Two-level errors (STYLE §6): the closed set of wire codes, and [`OAuthError`] which pairs a
//! code with its description and maps to (status, body) in one place.

use std::borrow::Cow;

use crate::core::http::{ParamError, Response};
use crate::core::storage::StoreError;

/// RFC 6749 §4.1.2.1/§5.2, RFC 7009, RFC 6750, OIDC Core §3.1.2.6, and the Salesforce codes of
/// salesforce-reference.md §0.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidClientId,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    RedirectUriMissing,
    RedirectUriMismatch,
    InvalidAppAccess,
    LoginRequired,
    ConsentRequired,
    ImmediateUnsuccessful,
    InvalidToken,
    RequestNotSupported,
    RequestUriNotSupported,
    RateLimitExceeded,
    /// RFC 8628 §3.5: the device's user has not decided yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling faster than the interval; wait 5 s longer from now on.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 8707 §2: the `resource` is unknown, malformed, or not the grant's.
    InvalidTarget,
    /// RFC 7591 §3.2.2: a redirect URI a client may not register.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: other client metadata that cannot be accepted.
    InvalidClientMetadata,
    /// RFC 6750 §3.1: the token is valid but lacks a scope the resource needs (403).
    InsufficientScope,
    ServerError,
    /// RFC 6749 §4.1.2.1: the part of the server that owns this request's key is unavailable
    /// for now (a shard); nothing was used up, and the request may be retried.
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidClientId => "invalid_client_id",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::RedirectUriMissing => "redirect_uri_missing",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::InvalidAppAccess => "invalid_app_access",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::ImmediateUnsuccessful => "immediate_unsuccessful",
            Self::InvalidToken => "invalid_token",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InsufficientScope => "insufficient_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// The description of `invalid_token` when no token was presented at all (RFC 6750 §3.1).
pub const MISSING_TOKEN: &str = "missing access token";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

/// The descriptions Salesforce clients string-match (salesforce-reference.md §0.5).
pub mod sf {
    pub const CLIENT_ID_INVALID: &str = "client identifier invalid";
    pub const CLIENT_CREDENTIALS_INVALID: &str = "invalid client credentials";
    pub const REDIRECT_MISMATCH: &str = "redirect_uri must match configuration";
    pub const AUTH_FAILURE: &str = "authentication failure";
    pub const EXPIRED_TOKEN: &str = "expired access/refresh token";
    pub const EXPIRED_CODE: &str = "expired authorization code";
    pub const NOT_ADMIN_APPROVED: &str = "user is not admin approved to access this app";
    /// JWT bearer without an approval (simple-salesforce matches this text exactly).
    pub const NOT_APPROVED: &str = "user hasn't approved this consumer";
    pub const NO_CLIENT_CREDENTIALS_USER: &str = "no client credentials user enabled";
    pub const GRANT_NOT_SUPPORTED: &str = "grant type not supported";
    pub const RESPONSE_TYPE_NOT_SUPPORTED: &str = "response type not supported";
    pub const DENIED: &str = "end-user denied authorization";
}

impl OAuthError {
    /// The description is made safe here, once for every error: RFC 6749 §5.2 allows only
    /// `%x20-21 / %x23-5B / %x5D-7E` in `error_description`, and descriptions often quote what
    /// the caller sent.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: safe_description(description.into()),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
    }

    /// HTTP status at the token, revoke, introspect and userinfo endpoints: RFC 6749 §5.2 says
    /// 400, except 401 for failed client authentication (with `WWW-Authenticate`, CONTRACT §2)
    /// and RFC 6750 §3.1's 401 for a bad bearer token.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    pub fn pairs(&self) -> [(&'static str, &str); 2] {
        [
            ("error", self.code.as_str()),
            ("error_description", &self.description),
        ]
    }

    /// The urlencoded `error=…&error_description=…` form (redirects, `format=urlencoded`, and
    /// the unredirectable authorize page of salesforce-reference.md §0.5).
    pub fn to_urlencoded(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs())
            .finish()
    }

    /// The RFC 6749 §5.2 response body, JSON unless the caller asked for urlencoded.
    pub fn to_response(&self, urlencoded: bool) -> Response {
        let resp = if urlencoded {
            Response::new(
                self.status(),
                "application/x-www-form-urlencoded",
                self.to_urlencoded(),
            )
        } else {
            Response::json(
                self.status(),
                &serde_json::json!({
                    "error": self.code.as_str(),
                    "error_description": self.description,
                }),
            )
        };
        let resp = resp.no_store();
        match self.code {
            ErrorCode::InvalidClient => {
                resp.with_header("www-authenticate", "Basic realm=\"oauth\"")
            }
            // RFC 6750 §3.1: a request with no token at all gets a bare challenge, no error code.
            ErrorCode::InvalidToken if self.description == MISSING_TOKEN => {
                resp.with_header("www-authenticate", "Bearer")
            }
            ErrorCode::InvalidToken => resp.with_header(
                "www-authenticate",
                &format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.description
                ),
            ),
            // The bindings count per 60-second period.
            ErrorCode::RateLimitExceeded => resp.with_header("retry-after", "60"),
            ErrorCode::TemporarilyUnavailable => resp.with_header("retry-after", "5"),
            _ => resp,
        }
    }
}

/// Longest `error_description` we send: enough for any message of ours plus a quoted value.
pub const MAX_DESCRIPTION_LEN: usize = 256;

/// Replaces every byte outside RFC 6749's `error_description` set with `?` and caps the
/// length, so caller text (a scope, a prompt value) can neither break the JSON, the redirect or
/// the `WWW-Authenticate` header it lands in, nor smuggle markup or control characters.
fn safe_description(d: Cow<'static, str>) -> Cow<'static, str> {
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    if d.len() <= MAX_DESCRIPTION_LEN && d.chars().all(allowed) {
        return d;
    }
    let mut out: String = d
        .chars()
        .map(|c| if allowed(c) { c } else { '?' })
        .take(MAX_DESCRIPTION_LEN)
        .collect();
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        out.truncate(MAX_DESCRIPTION_LEN - 3);
        out.push_str("...");
    }
    Cow::Owned(out)
}

impl From<ParamError> for OAuthError {
    fn from(e: ParamError) -> Self {
        Self::invalid_request(e.describe())
    }
}

/// A missing or broken signing key: a server error whose description says what is wrong (the
/// edge logs why), never a token signed with nothing.
impl From<crate::core::keys::KeyError> for OAuthError {
    fn from(_: crate::core::keys::KeyError) -> Self {
        Self::new(ErrorCode::ServerError, "signing keys unavailable")
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "storage for this token is unavailable; retry shortly",
            ),
            StoreError::Conflict(_) | StoreError::Backend(_) => Self::server_error(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(b: u8) -> bool {
        matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)
    }

    #[test]
    fn descriptions_never_carry_bytes_outside_rfc_6749s_set() {
        let hostile = format!(
            "scope not allowed: api \"<x>\\ \u{e9}\n\r\t\u{0}{}",
            "a".repeat(5000)
        );
        let e = OAuthError::invalid_request(hostile);
        assert!(e.description.bytes().all(allowed), "{}", e.description);
        assert!(e.description.len() <= MAX_DESCRIPTION_LEN);
        assert!(e
            .description
            .starts_with("scope not allowed: api ?<x>? ???"));
        assert!(e.description.ends_with("..."));
        // Our own messages pass through untouched.
        assert_eq!(
            OAuthError::invalid_grant(sf::EXPIRED_TOKEN).description,
            sf::EXPIRED_TOKEN
        );
    }
}
