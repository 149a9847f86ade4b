//! Access tokens presented to us (RFC 6750): where they may be sent, and which records they stand
//! for. One kind of token must never pass for another (RFC 8725 §3.11): a JWT whose `typ` is not
//! `at+jwt` — an ID token above all — is refused before any lookup, so no path, including one
//! that would validate by signature alone, can take an ID token for an access token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::client_auth::strip_scheme;
use super::error::{ErrorCode, OAuthError};
use crate::core::config::Ctx;
use crate::core::http::{Method, Params, Request};
use crate::core::keys::TYP_ACCESS_TOKEN;
use crate::core::secret::Secret;
use crate::core::storage::{FoundToken, Store, StoreError, TokenKind};

/// Where a resource endpoint takes its token from, besides the `Authorization: Bearer` header
/// and a form-encoded POST body's `access_token` (RFC 6750 §2.1, §2.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum QueryToken {
    /// Never from the URL, where logs and `Referer`s keep it (RFC 6750 §2.3, RFC 9700 §4.3.2).
    Refused,
    /// Salesforce's `oauth_token` query parameter, which its identity URL documents.
    SalesforceOauthToken,
}

pub fn invalid_token(desc: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, desc)
}

/// The token the caller presents, from the header, a form body, or (where allowed) the query.
pub fn presented(req: &Request, query: QueryToken) -> Result<String, OAuthError> {
    if let Some(t) = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "bearer"))
    {
        return Ok(t.to_owned());
    }
    let form = match (req.method, req.content_type().as_str()) {
        (Method::Post, "application/x-www-form-urlencoded") => req.form_params()?,
        _ => Params::default(),
    };
    if let Some(t) = form.get("access_token")? {
        return Ok(t.to_owned());
    }
    if query == QueryToken::SalesforceOauthToken {
        if let Some(t) = req.query_params().get("oauth_token")? {
            return Ok(t.to_owned());
        }
    }
    Err(invalid_token("missing access token"))
}

/// The stored record of a presented token (access or refresh), unless it is a JWT of another
/// kind than an access token.
pub async fn find<S: Store>(
    ctx: &Ctx<'_, S>,
    token: &str,
) -> Result<Option<FoundToken>, StoreError> {
    if is_foreign_jwt(token) {
        return Ok(None);
    }
    ctx.store.find_token(&Secret::new(token).hash()).await
}

/// The live access token record behind `token`.
pub async fn live_access_token<S: Store>(
    ctx: &Ctx<'_, S>,
    token: &str,
) -> Result<Option<FoundToken>, StoreError> {
    Ok(find(ctx, token)
        .await?
        .filter(|f| f.token.kind == TokenKind::Access && f.is_active(ctx.now_s())))
}

/// A compact JWS whose header does not say `typ: at+jwt`. Our opaque tokens have no dots.
pub fn is_foreign_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let typ = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("typ").and_then(|t| t.as_str()).map(str::to_owned));
    !typ.is_some_and(|t| t.eq_ignore_ascii_case(TYP_ACCESS_TOKEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jws(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn only_at_jwt_passes_as_an_access_token() {
        assert!(!is_foreign_jwt(&jws(r#"{"alg":"RS256","typ":"at+jwt"}"#)));
        assert!(is_foreign_jwt(&jws(r#"{"alg":"RS256","typ":"JWT"}"#)));
        assert!(is_foreign_jwt(&jws(r#"{"alg":"RS256"}"#)));
        assert!(is_foreign_jwt("not.base64!.jwt"));
        assert!(!is_foreign_jwt("00D000000000001!AbCdEf0123456789"));
    }
}
