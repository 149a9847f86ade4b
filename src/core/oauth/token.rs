//! `POST /services/oauth2/token`: parses the body once and dispatches to one module per grant.

use super::error::{sf, ErrorCode, OAuthError};
use super::grants;
use super::issue::wants_urlencoded;
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::storage::Store;

pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let params = match req.form_params() {
        // Some clients put parameters in the POST's query string (salesforce-reference.md §0.3);
        // the body wins where both carry one.
        Ok(p) => p.merged_with(req.query_params()),
        Err(e) => return OAuthError::from(e).to_response(false),
    };
    let urlencoded = wants_urlencoded(req, &params);
    match dispatch(ctx, req, &params).await {
        Ok(r) => r,
        Err(e) => e.to_response(urlencoded),
    }
}

async fn dispatch<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
) -> Result<Response, OAuthError> {
    match params.get("grant_type")? {
        Some("authorization_code") => grants::authorization_code::exchange(ctx, req, params).await,
        Some("refresh_token") => grants::refresh_token::refresh(ctx, req, params).await,
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            sf::GRANT_NOT_SUPPORTED,
        )),
        None => Err(OAuthError::invalid_request("grant_type required")),
    }
}
