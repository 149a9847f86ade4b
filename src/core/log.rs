//! One structured log line per request (`wrangler tail` shows them as they come): what was
//! asked, how it ended, and what it cost. Only names that are not secrets go in: the route (a
//! template, never the query or an unknown path), the grant type, the client id, the error
//! code, and the storage round trips.

use serde::Serialize;

use super::audit::Notes;
use super::http::Response;

pub struct RequestLog<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub response: &'a Response,
    pub notes: &'a Notes,
    pub duration_ms: u64,
    /// KV, D1 and shard round trips.
    pub round_trips: (u32, u32, u32),
}

#[derive(Serialize)]
struct Line<'a> {
    event: &'static str,
    method: &'a str,
    route: String,
    status: u16,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    duration_ms: u64,
    kv: u32,
    d1: u32,
    shard: u32,
}

/// Paths logged as they are; every other path is logged as the template it matches.
const FIXED: &[&str] = &[
    "/",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/id/keys",
    "/services/oauth2/authorize",
    "/services/oauth2/token",
    "/services/oauth2/device",
    "/services/oauth2/revoke",
    "/services/oauth2/introspect",
    "/services/oauth2/userinfo",
    "/services/oauth2/register",
    "/secur/frontdoor.jsp",
    "/setup/connect",
];

/// The route of `path` for the log: a known path, or a template (`/admin/apps/{id}`); never
/// a caller's free text beyond the first segment of a known prefix.
pub fn route_of(path: &str) -> String {
    if FIXED.contains(&path) {
        return path.to_owned();
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["admin", kind, rest @ ..] => {
            let known = [
                "apps",
                "users",
                "settings",
                "assets",
                "registration-tokens",
                "resources",
                "keys",
                "audit",
            ];
            let kind = if known.contains(kind) {
                kind
            } else {
                "{other}"
            };
            let mut route = format!("/admin/{kind}");
            for (i, s) in rest.iter().enumerate() {
                // Ids are templated; the fixed words after them (secret, users, activate) stay.
                let word = i % 2 == 1 && ["secret", "users", "activate"].contains(s);
                route.push('/');
                route.push_str(if word { s } else { "{id}" });
            }
            route
        }
        ["id", _, _] => "/id/{org}/{user}".into(),
        ["services", "oauth2", "register", _] => "/services/oauth2/register/{client_id}".into(),
        [".well-known", "oauth-protected-resource", ..] => {
            "/.well-known/oauth-protected-resource/{resource}".into()
        }
        _ => "{other}".into(),
    }
}

/// The error code an answer carries: a JSON `error`, an `error` in a redirect's query or
/// fragment, a `WWW-Authenticate` `error`, or a plain-text `error=` line.
pub fn error_code(resp: &Response) -> Option<String> {
    let code = |s: &str| {
        let s: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        (!s.is_empty()).then_some(s)
    };
    if let Some(loc) = resp.header("location") {
        let params = loc.split(['?', '#', '&']).skip(1);
        for p in params {
            if let Some(v) = p.strip_prefix("error=") {
                return code(v);
            }
        }
        return None;
    }
    if resp.status < 400 {
        return None;
    }
    if let Some(v) = resp.header("www-authenticate") {
        if let Some(i) = v.find("error=\"") {
            return code(&v[i + 7..]);
        }
    }
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(&resp.body) {
        return o.get("error").and_then(|e| e.as_str()).and_then(code);
    }
    let text = String::from_utf8_lossy(&resp.body);
    text.lines()
        .find_map(|l| l.strip_prefix("error="))
        .and_then(code)
}

impl RequestLog<'_> {
    pub fn to_json(&self) -> String {
        let status = self.response.status;
        let error = error_code(self.response);
        let line = Line {
            event: "request",
            method: self.method,
            route: route_of(self.path),
            status,
            outcome: if status >= 500 {
                "server_error"
            } else if status >= 400 || error.is_some() {
                "refused"
            } else {
                "ok"
            },
            grant: self.notes.grant_type(),
            client_id: self.notes.client_id(),
            error,
            duration_ms: self.duration_ms,
            kv: self.round_trips.0,
            d1: self.round_trips.1,
            shard: self.round_trips.2,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates() {
        assert_eq!(route_of("/services/oauth2/token"), "/services/oauth2/token");
        assert_eq!(
            route_of("/admin/apps/3MVGabc/secret"),
            "/admin/apps/{id}/secret"
        );
        assert_eq!(
            route_of("/admin/apps/3MVGabc/users/005xyz"),
            "/admin/apps/{id}/users/{id}"
        );
        assert_eq!(
            route_of("/admin/keys/kid1/activate"),
            "/admin/keys/{id}/activate"
        );
        assert_eq!(route_of("/admin/zzz/secret-looking"), "/admin/{other}/{id}");
        assert_eq!(route_of("/id/00D/005"), "/id/{org}/{user}");
        assert_eq!(route_of("/a-token-in-a-path"), "{other}");
    }

    #[test]
    fn error_codes_come_from_every_shape_of_answer() {
        let json = Response::json(400, &serde_json::json!({"error": "invalid_grant"}));
        assert_eq!(error_code(&json).as_deref(), Some("invalid_grant"));
        let redirect = Response::empty(302)
            .with_header("location", "https://app/cb?state=x&error=access_denied");
        assert_eq!(error_code(&redirect).as_deref(), Some("access_denied"));
        let fragment = Response::empty(302).with_header(
            "location",
            "https://app/cb#error=unsupported_response_type&x=1",
        );
        assert_eq!(
            error_code(&fragment).as_deref(),
            Some("unsupported_response_type")
        );
        let ok = Response::empty(302).with_header("location", "https://app/cb?code=abc");
        assert_eq!(error_code(&ok), None);
        let bearer =
            Response::empty(401).with_header("www-authenticate", "Bearer error=\"invalid_token\"");
        assert_eq!(error_code(&bearer).as_deref(), Some("invalid_token"));
        let text = Response::text(400, "error=redirect_uri_mismatch\nerror_description=x\n");
        assert_eq!(error_code(&text).as_deref(), Some("redirect_uri_mismatch"));
    }

    #[test]
    fn the_line_is_json_with_the_notes() {
        let notes = Notes::default();
        notes.grant("authorization_code");
        notes.client("c1");
        let resp = Response::json(400, &serde_json::json!({"error": "invalid_grant"}));
        let line = RequestLog {
            method: "POST",
            path: "/services/oauth2/token",
            response: &resp,
            notes: &notes,
            duration_ms: 7,
            round_trips: (1, 0, 2),
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["route"], "/services/oauth2/token");
        assert_eq!(v["grant"], "authorization_code");
        assert_eq!(v["client_id"], "c1");
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(v["outcome"], "refused");
        assert_eq!(v["shard"], 2);
        assert_eq!(v["duration_ms"], 7);
    }
}
