//! CORS for the browser-facing JSON endpoints (CONTRACT §2): public metadata (discovery, JWKS)
//! is open to every origin; token, userinfo, revoke, introspect and identity answer only
//! origins that some connected app lists in `allowed_origins`.

use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::storage::{Store, StoreError};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    Public,
    Registered,
}

/// The origin to echo, if this request's `Origin` may read the response.
pub async fn allowed_origin<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    exposure: Exposure,
) -> Result<Option<String>, StoreError> {
    let Some(origin) = req.header("origin") else {
        return Ok(None);
    };
    match exposure {
        Exposure::Public => Ok(Some("*".into())),
        Exposure::Registered if ctx.store.origin_allowed(origin).await? => Ok(Some(origin.into())),
        Exposure::Registered => Ok(None),
    }
}

pub fn apply(resp: Response, origin: Option<String>) -> Response {
    match origin {
        Some(o) => resp
            .with_header("access-control-allow-origin", &o)
            .with_header("vary", "Origin"),
        None => resp,
    }
}

/// The answer to an `OPTIONS` preflight; `methods` are the endpoint's.
pub fn preflight(origin: Option<String>, methods: &str) -> Response {
    match origin {
        Some(o) => Response::empty(204)
            .with_header("access-control-allow-origin", &o)
            .with_header("access-control-allow-methods", methods)
            .with_header(
                "access-control-allow-headers",
                "authorization, content-type, accept",
            )
            .with_header("access-control-max-age", "600")
            .with_header("vary", "Origin"),
        None => Response::empty(204),
    }
}
