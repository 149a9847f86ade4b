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
/// where it is optional (salesforce-reference.md §1.2, §3). `secret_required` says whether a
/// missing secret is acceptable for this request.
pub async fn authenticate<S: Store>(
    ctx: &Ctx<'_, S>,
    creds: Option<ClientCredentials>,
    secret_required: impl Fn(&App) -> bool,
) -> Result<Client, OAuthError> {
    // RFC 6749 §5.2: `invalid_client` when no client authentication is included.
    let creds =
        creds.ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "client_id required"))?;
    // Cheap rejection before any lookup or hashing (security checklist §G, 148).
    if !ctx.store.allow(Limit::Client, &creds.client_id).await? {
        return Err(OAuthError::new(
            ErrorCode::RateLimitExceeded,
            "too many requests for this client; retry later",
        ));
    }
    let app = ctx
        .store
        .get_app(&creds.client_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClientId, sf::CLIENT_ID_INVALID))?;
    match creds.secret {
        Some(secret) if secret.matches(&app.secret_hash) => Ok(Client {
            app,
            secret: Some(secret),
        }),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            sf::CLIENT_CREDENTIALS_INVALID,
        )),
        None if secret_required(&app) => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            sf::CLIENT_CREDENTIALS_INVALID,
        )),
        None => Ok(Client { app, secret: None }),
    }
}
