//! The gateway for external APIs (CONTRACT §2, `docs/gateway.md`): requests under a route's
//! prefix pass to its upstream only with an access token for the route's resource (RFC 8707
//! audience) whose scope covers the route, and carry the caller's identity in `X-Auth-*`
//! headers. The protected resource metadata (RFC 9728) that tells clients where to get such a
//! token is served here too. The check needs no D1: the token's edge copy (KV) and the
//! isolate's caches answer it (`bearer::live_access`).

use serde::Deserialize;

use super::config::Ctx;
use super::http::{Request, Response};
use super::oauth::bearer::live_access;
use super::oauth::client_auth::strip_scheme;
use super::oauth::issue::identity_url;
use super::storage::Store;

/// Where RFC 9728 §3 puts protected resource metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Headers that carry the caller's identity upstream; any the caller sends are dropped first.
pub const IDENTITY_PREFIX: &str = "x-auth-";

/// Whether a request header goes upstream: never the caller's credential (`Authorization`),
/// never an identity header the caller made up, and never cookies — the gateway shares its
/// origin with the login pages, so a browser would send the session cookie along.
pub fn forwards_request_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(name == "authorization"
        || name == "cookie"
        || name == "host"
        || name.starts_with(IDENTITY_PREFIX))
}

/// Whether a response header comes back from the upstream: not `Set-Cookie`, by which an
/// upstream could set (or fix) a cookie of the authorization server's origin.
pub fn forwards_response_header(name: &str) -> bool {
    !name.eq_ignore_ascii_case("set-cookie")
}

/// One route (`[vars] GATEWAY_ROUTES`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoute {
    /// A path prefix starting and ending with `/`, e.g. `/gateway/demo/`.
    pub prefix: String,
    /// The origin (with an optional base path) requests go to, the prefix replaced by it.
    pub upstream: String,
    /// The resource indicator tokens must be for; `{issuer}` stands for the issuer.
    pub resource: String,
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

impl GatewayRoute {
    pub fn resource_for(&self, issuer: &str) -> String {
        self.resource.replace("{issuer}", issuer)
    }

    /// The path of its metadata: the well-known prefix before the route's path (RFC 9728 §3.1).
    pub fn metadata_path(&self) -> String {
        format!("{METADATA_PATH}{}", self.prefix.trim_end_matches('/'))
    }

    fn covers(&self, path: &str) -> bool {
        path.starts_with(&self.prefix) || path == self.prefix.trim_end_matches('/')
    }
}

/// The routes of `GATEWAY_ROUTES` (a JSON list), plus, with `GATEWAY_UPSTREAM` (development),
/// the two demo routes of CONTRACT §1.
pub fn parse_routes(
    routes_json: Option<&str>,
    demo_upstream: Option<&str>,
) -> Result<Vec<GatewayRoute>, String> {
    let mut routes: Vec<GatewayRoute> = match routes_json {
        Some(raw) => serde_json::from_str(raw).map_err(|e| format!("GATEWAY_ROUTES: {e}"))?,
        None => Vec::new(),
    };
    if let Some(upstream) = demo_upstream {
        for name in ["demo", "other"] {
            routes.push(GatewayRoute {
                prefix: format!("/gateway/{name}/"),
                upstream: upstream.to_owned(),
                resource: format!("{{issuer}}/gateway/{name}"),
                required_scopes: vec!["api".into()],
            });
        }
    }
    for r in &routes {
        let upstream_ok = url::Url::parse(&r.upstream)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none());
        if !r.prefix.starts_with('/') || !r.prefix.ends_with('/') || r.prefix.len() < 3 {
            return Err(format!(
                "GATEWAY_ROUTES: prefix must start and end with / : {}",
                r.prefix
            ));
        }
        if !upstream_ok || r.resource.is_empty() {
            return Err(format!(
                "GATEWAY_ROUTES: route {} needs an http(s) upstream and a resource",
                r.prefix
            ));
        }
    }
    Ok(routes)
}

/// The route a path falls under (the longest prefix wins).
pub fn route_for<'a>(routes: &'a [GatewayRoute], path: &str) -> Option<&'a GatewayRoute> {
    routes
        .iter()
        .filter(|r| r.covers(path))
        .max_by_key(|r| r.prefix.len())
}

/// What to do with a request under a route.
#[derive(Debug)]
pub enum Decision {
    /// Send it to `url` with `identity` headers added (and the caller's `Authorization` and
    /// `X-Auth-*` headers removed).
    Forward {
        url: String,
        identity: Vec<(&'static str, String)>,
    },
    Refuse(Response),
}

/// RFC 6750 §3 / RFC 9728 §5.1: the challenge of a refusal, with where the metadata is.
fn refuse<S: Store>(
    ctx: &Ctx<'_, S>,
    route: &GatewayRoute,
    status: u16,
    error: Option<&str>,
    description: &str,
) -> Decision {
    let metadata = ctx.url(&route.metadata_path());
    let mut challenge = String::from("Bearer ");
    if let Some(e) = error {
        challenge.push_str(&format!("error=\"{e}\", "));
        if e == "insufficient_scope" {
            challenge.push_str(&format!("scope=\"{}\", ", route.required_scopes.join(" ")));
        }
    }
    challenge.push_str(&format!("resource_metadata=\"{metadata}\""));
    let body = serde_json::json!({
        "error": error.unwrap_or("unauthorized"),
        "error_description": description,
    });
    Decision::Refuse(
        Response::json(status, &body)
            .no_store()
            .with_header("www-authenticate", &challenge),
    )
}

/// Checks the request's bearer token (from the `Authorization` header only: never a URL, and
/// the body is the upstream's) against the route.
pub async fn decide<S: Store>(ctx: &Ctx<'_, S>, req: &Request, route: &GatewayRoute) -> Decision {
    let Some(token) = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "bearer"))
    else {
        return refuse(
            ctx,
            route,
            401,
            None,
            "a bearer access token for this resource is required",
        );
    };
    let live = match live_access(ctx, token).await {
        Ok(live) => live,
        Err(_) => {
            let resp = Response::json(
                503,
                &serde_json::json!({"error": "temporarily_unavailable", "error_description": "token check failed; retry"}),
            );
            return Decision::Refuse(resp.with_header("retry-after", "5"));
        }
    };
    let Some(live) = live else {
        return refuse(
            ctx,
            route,
            401,
            Some("invalid_token"),
            "the access token is not active",
        );
    };
    // RFC 8707: the token must be for this resource exactly; one for no resource, or another,
    // is not accepted here (RFC 9068 §4: the audience check).
    let resource = route.resource_for(&ctx.issuer);
    if live.resource.as_deref() != Some(resource.as_str()) {
        return refuse(
            ctx,
            route,
            401,
            Some("invalid_token"),
            "the access token is not for this resource",
        );
    }
    if !route
        .required_scopes
        .iter()
        .all(|s| live.scopes.iter().any(|x| x == s))
    {
        return refuse(
            ctx,
            route,
            403,
            Some("insufficient_scope"),
            "the access token lacks a scope this resource requires",
        );
    }
    let org_id = match ctx.store.org_id().await {
        Ok(Some(id)) => id,
        _ => {
            return Decision::Refuse(Response::json(
                503,
                &serde_json::json!({"error": "temporarily_unavailable"}),
            ))
        }
    };
    let rest = req.path.strip_prefix(&route.prefix).unwrap_or_default();
    let mut url = format!("{}/{rest}", route.upstream.trim_end_matches('/'));
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&req.query);
    }
    Decision::Forward {
        url,
        identity: vec![
            ("x-auth-sub", identity_url(ctx, &org_id, &live.user_id)),
            ("x-auth-user", live.user.username.clone()),
            ("x-auth-client-id", live.client_id.clone()),
            ("x-auth-scope", live.scopes.join(" ")),
            ("x-auth-resource", resource),
        ],
    }
}

/// RFC 9728 metadata: a route's at `/.well-known/oauth-protected-resource{prefix}` (and below
/// it, for clients that insert the well-known part before a longer path), and at the root a
/// list of every route's resource. `None`: not a metadata path.
pub fn metadata<S: Store>(ctx: &Ctx<'_, S>, path: &str) -> Option<Response> {
    let rest = path.strip_prefix(METADATA_PATH)?;
    let routes = &ctx.config.gateway;
    let body = if rest.is_empty() || rest == "/" {
        let resources: Vec<serde_json::Value> = routes
            .iter()
            .map(|r| {
                serde_json::json!({
                    "resource": r.resource_for(&ctx.issuer),
                    "resource_metadata": ctx.url(&r.metadata_path()),
                    "scopes_supported": r.required_scopes,
                })
            })
            .collect();
        serde_json::json!({
            "resource": ctx.issuer,
            "authorization_servers": [ctx.issuer],
            "bearer_methods_supported": ["header"],
            "resources": resources,
        })
    } else {
        let route = route_for(routes, rest)?;
        serde_json::json!({
            "resource": route.resource_for(&ctx.issuer),
            "authorization_servers": [ctx.issuer],
            "scopes_supported": route.required_scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": format!("{} (gateway route {})", route.resource_for(&ctx.issuer), route.prefix),
        })
    };
    Some(Response::json(200, &body).with_header("cache-control", "public, max-age=60"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_match_by_longest_prefix() {
        let routes = parse_routes(
            Some(r#"[{"prefix": "/gateway/demo/mcp/", "upstream": "https://mcp.example", "resource": "{issuer}/mcp", "required_scopes": ["api"]}]"#),
            Some("http://127.0.0.1:9"),
        )
        .unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(
            route_for(&routes, "/gateway/demo/mcp/x").unwrap().upstream,
            "https://mcp.example"
        );
        assert_eq!(
            route_for(&routes, "/gateway/demo/x").unwrap().prefix,
            "/gateway/demo/"
        );
        assert_eq!(
            route_for(&routes, "/gateway/demo").unwrap().prefix,
            "/gateway/demo/"
        );
        assert!(route_for(&routes, "/gateway/demonstration").is_none());
        assert_eq!(
            routes[1].resource_for("https://as.example"),
            "https://as.example/gateway/demo"
        );
        assert_eq!(
            routes[1].metadata_path(),
            "/.well-known/oauth-protected-resource/gateway/demo"
        );
        assert!(parse_routes(
            Some(r#"[{"prefix": "nope", "upstream": "https://x", "resource": "r"}]"#),
            None
        )
        .is_err());
        assert!(parse_routes(
            Some(r#"[{"prefix": "/a/", "upstream": "ftp://x", "resource": "r"}]"#),
            None
        )
        .is_err());
        assert!(parse_routes(Some("not json"), None).is_err());
    }

    #[test]
    fn neither_credentials_nor_cookies_cross_the_gateway() {
        for refused in [
            "Authorization",
            "cookie",
            "Host",
            "X-Auth-Sub",
            "x-auth-anything",
        ] {
            assert!(!forwards_request_header(refused), "{refused}");
        }
        for kept in ["content-type", "accept", "mcp-session-id", "x-request-id"] {
            assert!(forwards_request_header(kept), "{kept}");
        }
        assert!(!forwards_response_header("Set-Cookie"));
        assert!(forwards_response_header("content-type"));
    }
}
