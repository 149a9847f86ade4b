//! The admin API (CONTRACT §4): bearer `ADMIN_TOKEN`, JSON in and out, unknown fields refused
//! with a 400 that names them, secrets shown once.

mod apps;
mod assets;
mod audit;
mod keys;
mod resources;
mod settings;
mod users;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::audit::{AuditEvent, Kind as AuditKind};
use super::config::Ctx;
use super::http::{Method, Request, Response, MAX_BODY_BYTES};
use super::oauth::client_auth::strip_scheme;
use super::storage::{Store, StoreError};

/// An admin API failure: status, machine code, and a message for people.
#[derive(Debug)]
pub struct AdminError {
    status: u16,
    code: &'static str,
    message: String,
}

impl AdminError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "invalid_request",
            message: message.into(),
        }
    }
    /// A failure the caller cannot fix; `cause` is logged (by the edge, as every 500 body is),
    /// and is never a secret.
    fn internal(cause: &str) -> Self {
        Self {
            status: 500,
            code: "server_error",
            message: format!("internal error: {cause}"),
        }
    }
    fn conflict(message: &str) -> Self {
        Self {
            status: 409,
            code: "conflict",
            message: message.into(),
        }
    }
    fn not_found(what: &str) -> Self {
        Self {
            status: 404,
            code: "not_found",
            message: format!("{what} not found"),
        }
    }
    fn method() -> Self {
        Self {
            status: 405,
            code: "method_not_allowed",
            message: "method not allowed on this resource".into(),
        }
    }
    fn into_response(self) -> Response {
        let resp = Response::json(
            self.status,
            &serde_json::json!({"error": self.code, "error_description": self.message}),
        );
        if self.status == 401 {
            resp.with_header("www-authenticate", "Bearer realm=\"admin\"")
        } else {
            resp
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Self::bad_request(msg),
            StoreError::Backend(_) => Self {
                status: 500,
                code: "server_error",
                message: "internal error".into(),
            },
            StoreError::Unavailable(_) => Self {
                status: 503,
                code: "temporarily_unavailable",
                message: "a storage shard is unavailable; nothing was changed in it, retry".into(),
            },
        }
    }
}

type AdminResult = Result<Response, AdminError>;

pub async fn handle<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let result = match authorized(ctx, req) {
        Ok(()) => route(ctx, req).await,
        Err(e) => return e.into_response().no_store(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if !matches!(req.method, Method::Get | Method::Head) {
        note_change(ctx, req, resp.status);
    }
    resp.no_store()
}

/// An admin change (or a refused attempt at one) for the audit trail: method, path and status;
/// the app or user it was about. Bodies are never recorded (they may hold passwords).
fn note_change<S: Store>(ctx: &Ctx<'_, S>, req: &Request, status: u16) {
    let parts: Vec<String> = req
        .path
        .trim_start_matches("/admin/")
        .split('/')
        .map(super::http::percent_decode)
        .collect();
    let (client, user) = match parts
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["apps", id, "users", user] => (Some(id.to_string()), Some(user.to_string())),
        ["apps", id, ..] => (Some(id.to_string()), None),
        ["users", id, ..] => (None, Some(id.to_string())),
        _ => (None, None),
    };
    let detail = format!("{} {} {status}", req.method.name(), req.path);
    ctx.audit(
        AuditEvent::new(AuditKind::Admin, status < 400, "admin", detail)
            .client(client.as_deref())
            .user(user.as_deref()),
    );
}

/// Constant-time comparison with the configured token; no token configured means no admin API.
fn authorized<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<(), AdminError> {
    let presented = req
        .header("authorization")
        .and_then(|h| strip_scheme(h, "bearer"));
    match (&ctx.config.admin_token, presented) {
        (Some(token), Some(p)) if super::secret::ct_eq(token.expose(), p) => Ok(()),
        _ => Err(AdminError {
            status: 401,
            code: "unauthorized",
            message: "a valid admin bearer token is required".into(),
        }),
    }
}

async fn route<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    // Segments are decoded: a metadata-document client's id is a URL.
    let decoded: Vec<String> = req
        .path
        .trim_start_matches("/admin/")
        .split('/')
        .map(super::http::percent_decode)
        .collect();
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match (req.method, parts.as_slice()) {
        (Method::Post, ["apps"]) => apps::create(ctx, req).await,
        (Method::Get, ["apps"]) => apps::list(ctx).await,
        (Method::Get, ["apps", id]) => apps::read(ctx, id).await,
        (Method::Patch, ["apps", id]) => apps::update(ctx, req, id).await,
        (Method::Delete, ["apps", id]) => apps::delete(ctx, id).await,
        (Method::Post, ["apps", id, "secret"]) => apps::rotate_secret(ctx, id).await,
        (Method::Post, ["apps", id, "users", user]) => apps::preauthorize(ctx, id, user).await,
        (Method::Post, ["users"]) => users::create(ctx, req).await,
        (Method::Get, ["users"]) => users::list(ctx).await,
        (Method::Get, ["users", id]) => users::read(ctx, id).await,
        (Method::Patch, ["users", id]) => users::update(ctx, req, id).await,
        (Method::Delete, ["users", id]) => users::deactivate(ctx, id).await,
        (Method::Get, ["settings"]) => settings::read(ctx).await,
        (Method::Patch, ["settings"]) => settings::update(ctx, req).await,
        (Method::Get, ["assets"]) => assets::list(ctx).await,
        (Method::Delete, ["assets", id]) => assets::revoke(ctx, id).await,
        (Method::Post, ["registration-tokens"]) => {
            settings::mint_registration_token(ctx, req).await
        }
        (Method::Get, ["keys"]) => keys::list(ctx).await,
        (Method::Post, ["keys"]) => keys::create(ctx, req).await,
        (Method::Post, ["keys", kid, "activate"]) => keys::activate(ctx, kid).await,
        (Method::Delete, ["keys", kid]) => keys::delete(ctx, kid).await,
        (Method::Get, ["audit"]) => audit::list(ctx, req).await,
        (Method::Get, ["resources"]) => resources::list(ctx).await,
        (Method::Post, ["resources"]) => resources::create(ctx, req).await,
        (Method::Delete, ["resources", id]) => resources::delete(ctx, id).await,
        (_, route) => match allowed_methods(route) {
            // RFC 9110 §15.5.6: a 405 says which methods the resource takes.
            Some(allow) => Ok(AdminError::method()
                .into_response()
                .with_header("allow", allow)),
            None => Err(AdminError::not_found("resource")),
        },
    }
}

/// The methods an admin resource takes (the routes of [`route`]); `None` for no resource.
fn allowed_methods(route: &[&str]) -> Option<&'static str> {
    Some(match route {
        ["apps"] | ["users"] | ["resources"] | ["keys"] => "GET, POST",
        ["apps", _] | ["users", _] => "GET, PATCH, DELETE",
        ["apps", _, "secret"] | ["apps", _, "users", _] | ["registration-tokens"] => "POST",
        ["keys", _, "activate"] => "POST",
        ["settings"] => "GET, PATCH",
        ["assets"] | ["audit"] => "GET",
        ["assets", _] | ["resources", _] | ["keys", _] => "DELETE",
        _ => return None,
    })
}

/// The body as a JSON object. An empty body is an empty object where `empty_ok`.
fn json_object(req: &Request, empty_ok: bool) -> Result<Map<String, Value>, AdminError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(AdminError::bad_request("body too large"));
    }
    // "Nothing" is an empty body; whitespace alone is no JSON text (RFC 8259 §2).
    if empty_ok && req.body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AdminError::bad_request("body must be a JSON object")),
        Err(e) => Err(AdminError::bad_request(format!("malformed JSON: {e}"))),
    }
}

/// Refuses fields outside `allowed`, naming every one of them.
fn reject_unknown(obj: &Map<String, Value>, allowed: &[String]) -> Result<(), AdminError> {
    let unknown: Vec<&str> = obj
        .keys()
        .filter(|k| !allowed.iter().any(|a| a == *k))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(AdminError::bad_request(format!(
            "unknown field(s): {}",
            unknown.join(", ")
        )))
    }
}

/// Deserializes a checked object, turning type errors into 400s that name the field.
fn typed<T: DeserializeOwned>(obj: Map<String, Value>) -> Result<T, AdminError> {
    match serde_json::from_value(Value::Object(obj.clone())) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = e.to_string();
            Err(AdminError::bad_request(match culprit::<T>(&obj, &msg) {
                Some(field) => format!("invalid field `{field}`: {msg}"),
                None => format!("invalid field: {msg}"),
            }))
        }
    }
}

/// serde's type errors ("invalid type: string \"yes\", expected a boolean") do not say which
/// field they are about (nor can they through `#[serde(flatten)]`). The field is the one whose
/// removal makes the object valid, or failing that the only one whose removal changes the error.
fn culprit<'a, T: DeserializeOwned>(obj: &'a Map<String, Value>, msg: &str) -> Option<&'a str> {
    if msg.starts_with("missing field") || msg.starts_with("unknown field") {
        return None;
    }
    let without = |key: &str| {
        let mut rest = obj.clone();
        rest.remove(key);
        serde_json::from_value::<T>(Value::Object(rest)).map_err(|e| e.to_string())
    };
    let results: Vec<(&str, Result<T, String>)> =
        obj.keys().map(|k| (k.as_str(), without(k))).collect();
    let only = |pick: &dyn Fn(&Result<T, String>) -> bool| {
        let mut hits = results.iter().filter(|(_, r)| pick(r));
        match (hits.next(), hits.next()) {
            (Some((k, _)), None) => Some(*k),
            _ => None,
        }
    };
    only(&|r| r.is_ok()).or_else(|| only(&|r| r.as_ref().err().is_some_and(|e| e != msg)))
}

fn json(status: u16, value: &impl serde::Serialize) -> AdminResult {
    Ok(Response::json(status, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        n: u64,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        tags: Vec<String>,
        #[serde(flatten)]
        inner: Inner,
    }

    fn message(v: Value) -> String {
        let Value::Object(obj) = v else {
            unreachable!()
        };
        typed::<Outer>(obj).unwrap_err().message
    }

    #[test]
    fn type_errors_name_the_field() {
        let ok = serde_json::json!({"name": "a", "tags": []});
        assert!(typed::<Outer>(ok.as_object().unwrap().clone()).is_ok());
        let m = message(serde_json::json!({"name": "a", "tags": [], "flag": "yes"}));
        assert!(m.starts_with("invalid field `flag`:"), "{m}");
        let m = message(serde_json::json!({"name": 42, "tags": [], "n": 1}));
        assert!(m.starts_with("invalid field `name`:"), "{m}");
        let m = message(serde_json::json!({"name": "a", "tags": "x"}));
        assert!(m.starts_with("invalid field `tags`:"), "{m}");
        // Two bad flattened fields: no single culprit, so no (wrong) name is given.
        let m = message(serde_json::json!({"name": "a", "tags": [], "flag": "yes", "n": "many"}));
        assert!(m.starts_with("invalid field: "), "{m}");
        let m = message(serde_json::json!({"tags": []}));
        assert_eq!(m, "invalid field: missing field `name`");
    }
}
