//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1: `client_secret_basic` and `client_secret_post`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::{sf, ErrorCode, OAuthError};
use crate::core::config::Ctx;
use crate::core::http::{Params, Request};
use crate::core::model::App;
use crate::core::secret::Secret;
use crate::core::storage::{Limit, Store};

/// Who the caller says it is, before we check it.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<Secret>,
}

/// Reads the client's credentials from the `Authorization: Basic` header or the body; using
/// both is `invalid_request` (RFC 6749 §2.3: "MUST NOT use more than one authentication
/// method in each request").
pub fn credentials(
    req: &Request,
    params: &Params,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let basic = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "basic"));
    let Some(b64) = basic else {
        return Ok(body_id.map(|id| ClientCredentials {
            client_id: id.into(),
            secret: body_secret.map(Secret::new),
        }));
    };
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "client credentials sent both in the Authorization header and the body",
        ));
    }
    let malformed = || {
        OAuthError::new(
            ErrorCode::InvalidClient,
            "malformed Basic authorization header",
        )
    };
    let decoded = STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    let id = urldecode(id);
    if body_id.is_some_and(|b| b != id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the Authorization header",
        ));
    }
    Ok(Some(ClientCredentials {
        client_id: id,
        secret: Some(Secret::new(urldecode(secret))),
    }))
}

/// `Authorization: <scheme> <value>` with a case-insensitive scheme.
pub fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, v) = header.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(v.trim())
}

fn urldecode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An authenticated (or, where the app allows it, identified public) client.
pub struct Client {
    pub app: App,
    /// The secret the client proved, kept for the token response's `signature`.
    pub secret: Option<Secret>,
}

/// Looks the client up and checks its secret. A secret that is sent is always checked, even
/// where it is optional (as Salesforce does). `secret_required` says whether a missing secret
/// is acceptable for this request.
///
/// Only failures count against the throttle, keyed by client id and caller address: a flood of
/// wrong secrets from one address gets that address 429s, while the real client, elsewhere or
/// with its right secret, is never slowed down.
pub async fn authenticate<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    creds: Option<ClientCredentials>,
    secret_required: impl Fn(&App) -> bool,
) -> Result<Client, OAuthError> {
    // RFC 6749 §5.2: `invalid_client` when no client authentication is included.
    let creds =
        creds.ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "client_id required"))?;
    let app = ctx.store.get_app(&creds.client_id).await?;
    let failure = match (app, creds.secret) {
        (Some(app), Some(secret)) if secret.matches(&app.secret_hash) => {
            return Ok(Client {
                app,
                secret: Some(secret),
            })
        }
        (Some(app), None) if !secret_required(&app) => return Ok(Client { app, secret: None }),
        (None, _) => OAuthError::new(ErrorCode::InvalidClientId, sf::CLIENT_ID_INVALID),
        (Some(_), _) => OAuthError::new(ErrorCode::InvalidClient, sf::CLIENT_CREDENTIALS_INVALID),
    };
    let key = format!("{}|{}", creds.client_id, req.client_ip());
    if !ctx.store.allow(Limit::ClientAuth, &key).await? {
        return Err(OAuthError::new(
            ErrorCode::RateLimitExceeded,
            "too many failed client authentications from this address; retry later",
        ));
    }
    Err(failure)
}
