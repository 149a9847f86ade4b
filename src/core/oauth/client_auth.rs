//! Client authentication at the token, introspection and revocation endpoints: RFC 6749
//! §2.3.1 `client_secret_basic` and `client_secret_post`, and RFC 7523 §2.2 `private_key_jwt`
//! (a JWT the client signs with the key registered on its app, OIDC Core §9).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::assertion::{self, Expect, Refusal, Untrusted};
use super::error::{sf, ErrorCode, OAuthError};
use crate::core::cache::TtlCache;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request};
use crate::core::model::App;
use crate::core::outbound::check_url;
use crate::core::secret::Secret;
use crate::core::storage::{Limit, Store};

/// RFC 7523 §2.2: the one `client_assertion_type` there is.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who the caller says it is, before we check it.
pub struct ClientCredentials {
    pub client_id: String,
    pub proof: Proof,
}

/// What the client offers as proof of who it is.
pub enum Proof {
    /// A client secret, or none (a public client).
    Secret(Option<Secret>),
    /// A `private_key_jwt` client assertion.
    Assertion(Secret),
}

/// Reads the client's credentials from the `Authorization: Basic` header, the body, or a client
/// assertion; more than one method is `invalid_request` (RFC 6749 §2.3: "MUST NOT use more
/// than one authentication method in each request").
pub fn credentials(
    req: &Request,
    params: &Params,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let basic = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "basic"));
    if let Some(creds) = client_assertion(params, body_id)? {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "a client assertion and a client secret were both sent: use one",
            ));
        }
        return Ok(Some(creds));
    }
    let Some(b64) = basic else {
        return Ok(body_id.map(|id| ClientCredentials {
            client_id: id.into(),
            proof: Proof::Secret(body_secret.map(Secret::new)),
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
        proof: Proof::Secret(Some(Secret::new(urldecode(secret)))),
    }))
}

/// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` together; the client is the
/// assertion's `iss` (RFC 7523 §3), which a `client_id` sent beside it must equal.
fn client_assertion(
    params: &Params,
    body_id: Option<&str>,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let kind = params.get("client_assertion_type")?;
    let jwt = params.get("client_assertion")?;
    let jwt = match (kind, jwt) {
        (None, None) => return Ok(None),
        (Some(JWT_BEARER_ASSERTION), Some(jwt)) => jwt,
        (Some(JWT_BEARER_ASSERTION), None) => {
            return Err(OAuthError::invalid_request("client_assertion required"))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type required",
            ))
        }
        (Some(_), _) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                format!("client_assertion_type must be {JWT_BEARER_ASSERTION}"),
            ))
        }
    };
    let iss = Untrusted::parse(jwt)
        .ok()
        .and_then(|t| t.claim("iss").map(str::to_owned))
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidClient,
                "client_assertion is not a signed JWT with an iss",
            )
        })?;
    if body_id.is_some_and(|id| id != iss) {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "client_id differs from the client assertion's iss",
        ));
    }
    Ok(Some(ClientCredentials {
        client_id: iss,
        proof: Proof::Assertion(Secret::new(jwt)),
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

/// Looks the client up and checks its secret or assertion. A secret that is sent is always
/// checked, even where it is optional (as Salesforce does). `secret_required` says whether a
/// client without any proof is acceptable for this request.
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
    let failure = match (app, creds.proof) {
        (Some(app), Proof::Secret(Some(secret))) if secret.matches(&app.secret_hash) => {
            return Ok(Client {
                app,
                secret: Some(secret),
            })
        }
        (Some(app), Proof::Secret(None)) if !secret_required(&app) => {
            return Ok(Client { app, secret: None })
        }
        (Some(app), Proof::Assertion(jwt)) => {
            match check_assertion(ctx, req, &app, jwt.expose()).await {
                Ok(()) => return Ok(Client { app, secret: None }),
                Err(e) => e,
            }
        }
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

/// How long an isolate keeps a client's `jwks_uri` document.
const JWKS_URI_TTL_MS: u64 = 300_000;
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// How often an isolate fetches a client's `jwks_uri` again for a `kid` it has not seen (the
/// client rotated its key, OIDC Core §10.1.1) before the cached copy expires: once a minute at
/// most, so assertions with made-up kids cannot turn us into a fetcher.
const JWKS_URI_REFETCH_MS: u64 = 60_000;

thread_local! {
    static REMOTE_JWKS: TtlCache<String> = TtlCache::new(JWKS_URI_TTL_MS);
    static REFETCHED: TtlCache<()> = TtlCache::new(JWKS_URI_REFETCH_MS);
}

/// Whether the JWK Set `jwks` holds a key with this `kid`.
fn has_kid(jwks: &str, kid: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(|x| x.as_str()) == Some(kid))
        })
}

/// The JWK Set at a registered client's `jwks_uri` (RFC 7591 §2), fetched under the same rules
/// as metadata documents (`outbound.rs`) and kept per isolate for five minutes; `None` when the
/// client registered none.
async fn remote_keys<S: Store>(
    ctx: &Ctx<'_, S>,
    app: &App,
    kid: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(uri) = app
        .registration
        .as_ref()
        .and_then(|r| r.extra.get("jwks_uri"))
        .and_then(|u| u.as_str())
    else {
        return Ok(None);
    };
    let now = ctx.clock.now_ms();
    if let Some(jwks) = REMOTE_JWKS.with(|c| c.get(uri, now)) {
        let unknown_kid = kid.is_some_and(|k| !has_kid(&jwks, k));
        let may_refetch = REFETCHED.with(|c| c.get(uri, now)).is_none();
        if !(unknown_kid && may_refetch) {
            return Ok(Some(jwks));
        }
        REFETCHED.with(|c| c.put(uri, (), now));
    }
    check_url(uri, ctx.config.dev_mode)?;
    let fetched = ctx
        .config
        .outbound
        .0
        .get(uri, MAX_JWKS_BYTES, 5_000)
        .await
        .map_err(|e| e.to_string())?;
    if fetched.status != 200 {
        return Err(format!("answered HTTP {}", fetched.status));
    }
    let jwks = String::from_utf8(fetched.body).map_err(|_| "is not UTF-8".to_owned())?;
    REMOTE_JWKS.with(|c| c.put(uri, jwks.clone(), now));
    Ok(Some(jwks))
}

/// RFC 7523 §3 for a client assertion: `iss` and `sub` are the client id, `aud` names us — the
/// issuer (what openid-client sends everywhere), the token endpoint, or the endpoint receiving
/// it — and its `jti` is new. A failure is `invalid_client` (RFC 7523 §3.2).
async fn check_assertion<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: &App,
    jwt: &str,
) -> Result<(), OAuthError> {
    let refused = |why: String| OAuthError::new(ErrorCode::InvalidClient, why);
    let audiences = [
        ctx.issuer.clone(),
        format!("{}/", ctx.issuer),
        ctx.url("/services/oauth2/token"),
        ctx.url(&req.path),
    ];
    let expect = Expect {
        audiences: &audiences,
        require_jti: true,
    };
    let untrusted =
        Untrusted::parse(jwt).map_err(|_| refused("malformed client assertion".into()))?;
    let keys = match app.policy.certificate.clone() {
        Some(keys) => Some(keys),
        None => remote_keys(ctx, app, untrusted.kid())
            .await
            .map_err(|why| refused(format!("client assertion: jwks_uri {why}")))?,
    };
    let verified = match assertion::verify(ctx, &untrusted, keys.as_deref(), &expect).await {
        Ok(v) => v,
        Err(Refusal::Invalid(why)) => return Err(refused(format!("client assertion: {why}"))),
        Err(Refusal::Replayed) => return Err(refused("client assertion: jti already used".into())),
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    if verified.iss != app.client_id || verified.sub != app.client_id {
        return Err(refused(
            "client assertion: iss and sub must both be the client_id".into(),
        ));
    }
    Ok(())
}
