//! Resource indicators (RFC 8707): which protected resource an access token is for. One
//! `resource` per request; it must be an absolute URI without a fragment (§2) and one the org
//! knows — an operator's registered resource (`/admin/resources`) or a gateway route's. The
//! token's audience is then exactly that resource, for its whole family.

use super::error::{ErrorCode, OAuthError};
use crate::core::config::Ctx;
use crate::core::http::Params;
use crate::core::storage::{Store, StoreError};

fn invalid_target(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// Whether `uri` may be a resource indicator: absolute, `http(s)`, no fragment (RFC 8707 §2).
pub fn well_formed(uri: &str) -> bool {
    !uri.contains('#') && url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

/// The request's `resource`, checked for shape only (a second one is `invalid_request`, as for
/// every duplicated parameter).
pub fn requested_syntax(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("resource")? {
        None => Ok(None),
        Some(uri) if well_formed(uri) => Ok(Some(uri.to_owned())),
        Some(_) => Err(invalid_target(
            "resource must be an absolute URI without a fragment",
        )),
    }
}

/// The request's `resource`, which must also be one the org knows.
pub async fn requested<S: Store>(
    ctx: &Ctx<'_, S>,
    params: &Params,
) -> Result<Option<String>, OAuthError> {
    let Some(uri) = requested_syntax(params)? else {
        return Ok(None);
    };
    if !is_known(ctx, &uri).await? {
        return Err(invalid_target(format!("unknown resource: {uri}")));
    }
    Ok(Some(uri))
}

/// A gateway route's resource, or one an operator registered.
pub async fn is_known<S: Store>(ctx: &Ctx<'_, S>, uri: &str) -> Result<bool, StoreError> {
    if ctx
        .config
        .gateway
        .iter()
        .any(|r| r.resource_for(&ctx.issuer) == uri)
    {
        return Ok(true);
    }
    Ok(ctx.store.find_resource(uri).await?.is_some())
}

/// RFC 8707 §2.2 at the token endpoint: a request after the grant may repeat its resource or
/// leave it out, never name another (nor one when the grant has none).
pub fn same_or_omitted(requested: Option<&str>, granted: Option<&str>) -> Result<(), OAuthError> {
    match (requested, granted) {
        (None, _) => Ok(()),
        (Some(r), Some(g)) if r == g => Ok(()),
        (Some(_), Some(_)) => Err(invalid_target(
            "resource differs from the one the grant is for",
        )),
        (Some(_), None) => Err(invalid_target(
            "the grant was not for a resource; ask for it in the authorization request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_sameness() {
        assert!(well_formed("https://api.example.com/mcp"));
        assert!(!well_formed("https://api.example.com/mcp#x"));
        assert!(!well_formed("/relative"));
        assert!(!well_formed("urn:example:thing"));
        assert!(same_or_omitted(None, Some("https://a")).is_ok());
        assert!(same_or_omitted(Some("https://a"), Some("https://a")).is_ok());
        let e = same_or_omitted(Some("https://b"), Some("https://a")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(same_or_omitted(Some("https://b"), None).is_err());
    }
}
