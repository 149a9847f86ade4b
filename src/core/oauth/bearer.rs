//! Access tokens presented to us (RFC 6750): where they may be sent, and which records they stand
//! for. One kind of token must never pass for another (RFC 8725 §3.11): a JWT whose `typ` is not
//! `at+jwt` — an ID token above all — is refused before any lookup, so no path, including one
//! that would validate by signature alone, can take an ID token for an access token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::client_auth::strip_scheme;
use super::error::{ErrorCode, OAuthError};
use super::stamp::{jti_parts, opaque_parts, YOUNG_S};
use crate::core::config::Ctx;
use crate::core::http::{Method, Params, Request};
use crate::core::keys::TYP_ACCESS_TOKEN;
use crate::core::secret::Secret;
use crate::core::storage::{AccessCopy, FoundToken, Route, Store, StoreError, TokenKey, TokenKind};

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
    Err(invalid_token(super::error::MISSING_TOKEN))
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
    ctx.store.find_token(&token_key(token)).await
}

/// How a presented token is looked up: its hash, and the route its shape carries — in the
/// `jti` of a JWT, after the org prefix of an opaque access token, at the start of anything
/// else (refresh tokens, initial access tokens).
pub fn token_key(token: &str) -> TokenKey {
    let route = match jws_part(token, 1) {
        Some(claims) => claims
            .get("jti")
            .and_then(|j| j.as_str())
            .and_then(Route::of_key),
        None => Route::of_key(token.rsplit_once('!').map_or(token, |(_, rest)| rest)),
    };
    TokenKey {
        hash: Secret::new(token).hash(),
        route,
    }
}

/// The live access token behind `token`, from its edge copy (KV). Its shard is asked only for
/// a token whose authenticated age stamp (`stamp.rs`) says it is young enough that its copy may
/// not have reached this location yet: a flood of random, forged or old tokens never reaches
/// a shard. A deleted app's tokens die with it, through the isolate's app cache.
pub async fn live_access<S: Store>(
    ctx: &Ctx<'_, S>,
    token: &str,
) -> Result<Option<AccessCopy>, StoreError> {
    if is_foreign_jwt(token) {
        return Ok(None);
    }
    let key = token_key(token);
    let now = ctx.now_s();
    let copy = match ctx.store.get_access_copy(&key.hash).await? {
        Some(copy) => Some(copy),
        None if is_young(ctx, token, now) => ctx
            .store
            .find_token(&key)
            .await?
            .and_then(|found| copy_of_record(found, now)),
        None => None,
    };
    let Some(copy) = copy.filter(|c| c.expires_at_s > now) else {
        return Ok(None);
    };
    if ctx.store.get_app(&copy.client_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(copy))
}

/// What the edge copy of a live access token would say, from its stored record.
fn copy_of_record(found: FoundToken, now_s: u64) -> Option<AccessCopy> {
    if found.token.kind != TokenKind::Access || !found.is_active(now_s) {
        return None;
    }
    let user = found.user?;
    AccessCopy::of(&found.token, &found.family, user)
}

/// Whether `token` carries our age stamp and was issued less than [`YOUNG_S`] ago.
fn is_young<S: Store>(ctx: &Ctx<'_, S>, token: &str, now_s: u64) -> bool {
    let Some(key) = &ctx.config.stamp_key else {
        return false;
    };
    let issued = match jws_part(token, 1) {
        Some(claims) => claims
            .get("jti")
            .and_then(|j| j.as_str())
            .and_then(jti_parts)
            .and_then(|(random, stamp)| key.issued_at(random, stamp)),
        None => opaque_parts(token).and_then(|(random, stamp)| key.issued_at(random, stamp)),
    };
    // A little clock skew between locations is allowed; a stamp from the future is not ours.
    issued.is_some_and(|iat| iat <= now_s + 5 && now_s.saturating_sub(iat) <= YOUNG_S)
}

/// Whether a token has the shape of our access tokens (opaque with the org prefix, or a JWT)
/// rather than of a refresh token (bare base62).
pub fn looks_like_access_token(token: &str) -> bool {
    token.contains('!') || token.contains('.')
}

/// A compact JWS whose header does not say `typ: at+jwt`. Our opaque tokens have no dots.
pub fn is_foreign_jwt(token: &str) -> bool {
    if token.split('.').count() != 3 {
        return false;
    }
    let typ =
        jws_part(token, 0).and_then(|h| h.get("typ").and_then(|t| t.as_str()).map(str::to_owned));
    !typ.is_some_and(|t| t.eq_ignore_ascii_case(TYP_ACCESS_TOKEN))
}

/// Part `index` (0: header, 1: claims) of a compact JWS, decoded, unverified; `None` for
/// anything that is not three dot-separated parts or whose part is not base64url JSON.
fn jws_part(token: &str, index: usize) -> Option<serde_json::Value> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(parts.get(index)?).ok()?;
    serde_json::from_slice(&bytes).ok()
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
