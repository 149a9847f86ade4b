//! `POST /services/oauth2/token`: parses the body once and dispatches to one module per grant.

use super::device::{self, Dialect};
use super::error::{sf, ErrorCode, OAuthError};
use super::grants;
use super::issue::wants_urlencoded;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::storage::Store;

/// Parameters that are credentials: never accepted in a URL, where logs and proxies keep them
/// (RFC 6749 §2.3.1, §3.2; security checklist T11).
const BODY_ONLY: &[&str] = &[
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "password",
    "assertion",
    "client_assertion",
];

/// The endpoints that take a token-endpoint-style body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/services/oauth2/token`.
    Token,
    /// `/services/oauth2/device`: RFC 8628 §3.1 device authorization.
    Device,
}

pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request, endpoint: Endpoint) -> Response {
    let query = req.query_params();
    if let Some((name, _)) = query
        .pairs()
        .iter()
        .find(|(k, _)| BODY_ONLY.contains(&k.as_str()))
    {
        return OAuthError::invalid_request(format!(
            "{name} must be sent in the request body, not the URL"
        ))
        .to_response(false);
    }
    let params = match req.form_params() {
        // Some clients put parameters in the POST's query string (salesforce-reference.md §0.3);
        // the body wins where both carry one.
        Ok(p) => p.merged_with(query),
        Err(e) => return OAuthError::from(e).to_response(false),
    };
    let urlencoded = wants_urlencoded(req, &params);
    let result = match endpoint {
        Endpoint::Token => dispatch(ctx, req, &params).await,
        Endpoint::Device => device::authorize(ctx, req, &params, Dialect::Rfc8628).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => e.to_response(urlencoded),
    }
}

async fn dispatch<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    if let Some(grant) = params.get("grant_type")? {
        ctx.notes.grant(grant);
    }
    registered_grant(ctx, req, params).await?;
    // Salesforce's device authorization lives on the token endpoint (salesforce-reference.md §8).
    if params.get("response_type")? == Some("device_code") && params.get("grant_type")?.is_none() {
        return device::authorize(ctx, req, params, Dialect::Salesforce).await;
    }
    match params.get("grant_type")? {
        Some("authorization_code") => {
            grants::authorization_code::exchange(ctx, req, params, false).await
        }
        Some("hybrid_auth_code") => {
            grants::authorization_code::exchange(ctx, req, params, true).await
        }
        Some("refresh_token") => grants::refresh_token::refresh(ctx, req, params, false).await,
        Some("hybrid_refresh") => grants::refresh_token::refresh(ctx, req, params, true).await,
        Some(grants::jwt_bearer::GRANT_TYPE) => {
            grants::jwt_bearer::exchange(ctx, req, params).await
        }
        Some("client_credentials") => grants::client_credentials::exchange(ctx, req, params).await,
        Some("password") => grants::password::exchange(ctx, req, params).await,
        Some(grants::token_exchange::GRANT_TYPE) => {
            grants::token_exchange::exchange(ctx, req, params).await
        }
        Some("device") => device::poll(ctx, req, params, Dialect::Salesforce).await,
        Some(device::GRANT_TYPE) => device::poll(ctx, req, params, Dialect::Rfc8628).await,
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            sf::GRANT_NOT_SUPPORTED,
        )),
        None => Err(OAuthError::invalid_request("grant_type required")),
    }
}

/// RFC 7591 §2: a registered client uses only the grant types it registered
/// (`unauthorized_client` otherwise); an operator's app, every one. Decided from the client id
/// the request names, before any grant work; the grant then authenticates the client.
async fn registered_grant<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<(), OAuthError> {
    let Some(grant_type) = params.get("grant_type")? else {
        return Ok(());
    };
    // The client the request names: its credentials, else (JWT bearer without client
    // authentication) the assertion's issuer.
    let named = super::client_auth::credentials(req, params)?.map(|c| c.client_id);
    let client_id = match named {
        Some(id) => id,
        None => match params.get("assertion")? {
            Some(jwt) => match super::assertion::Untrusted::parse(jwt)
                .ok()
                .and_then(|t| t.claim("iss").map(str::to_owned))
            {
                Some(iss) => iss,
                None => return Ok(()),
            },
            None => return Ok(()),
        },
    };
    let Some(app) = ctx.store.get_app(&client_id).await? else {
        return Ok(());
    };
    // Salesforce's own names for the grants the registrable ones stand for.
    let grant_type = match grant_type {
        "hybrid_auth_code" => "authorization_code",
        "hybrid_refresh" => "refresh_token",
        "device" => super::device::GRANT_TYPE,
        other => other,
    };
    if app.allows_grant(grant_type) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "grant type not registered for this client",
        ))
    }
}
