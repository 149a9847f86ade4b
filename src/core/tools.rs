//! `/tools/…`: pages for people trying the server out, from `www/`, built into the worker. The
//! asset token explorer walks through the asset token flow (`oauth/grants/token_exchange.rs`)
//! with this server's own token endpoint.

use super::http::Response;

const ASSET_TOKEN_HTML: &str = include_str!("../../www/asset-token.html");
const ASSET_TOKEN_JS: &str = include_str!("../../www/asset-token.js");

pub const ASSET_TOKEN_PATH: &str = "/tools/asset-token";
pub const ASSET_TOKEN_SCRIPT_PATH: &str = "/tools/asset-token.js";

/// Its own script only, and requests to this server only.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub fn asset_token_page() -> Response {
    Response::new(200, "text/html;charset=UTF-8", ASSET_TOKEN_HTML)
        .with_header("content-security-policy", CSP)
        .with_header("x-frame-options", "DENY")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-cache")
}

pub fn asset_token_script() -> Response {
    Response::new(200, "text/javascript;charset=UTF-8", ASSET_TOKEN_JS)
        .with_header("cache-control", "no-cache")
}
