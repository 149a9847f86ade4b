//! Client metadata (RFC 7591 §2, OIDC Registration §2) as clients assert it, checked once for
//! the two ways a client describes itself: dynamic registration (`register.rs`) and client ID
//! metadata documents (`metadata_document.rs`). Everything is self-asserted (RFC 7591 §5), so
//! nothing here is trusted beyond what the checks allow.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::device::GRANT_TYPE as DEVICE_CODE;
use super::error::ErrorCode;
use super::grants::jwt_bearer::GRANT_TYPE as JWT_BEARER;
use super::redirect::check_callback_url;
use super::scope::KNOWN_SCOPES;
use crate::core::keys::parse_public_keys;
use crate::core::model::AppPolicy;
use crate::core::outbound::check_url;
use crate::core::secret::SecretHash;

/// Grant types a client may register (the rest of the token endpoint's are Salesforce's own or
/// need an operator's policy, like asset tokens).
pub const REGISTRABLE_GRANTS: &[&str] = &[
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    JWT_BEARER,
    DEVICE_CODE,
];

/// `response_types` values a client may register; each needs the grant type named beside it.
const RESPONSE_TYPES: &[(&str, &[&str])] = &[
    ("code", &["authorization_code"]),
    ("token", &["implicit"]),
    ("id_token token", &["implicit"]),
    ("code id_token", &["authorization_code", "implicit"]),
];

pub const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// Scopes of a client that asks for none (enough for a gateway's API and sign-in).
pub const DEFAULT_SCOPES: &[&str] = &["api", "refresh_token", "openid"];

/// Optional fields kept as the client sent them (URLs are checked, text is length-capped).
const KEPT: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
    "application_type",
    "jwks_uri",
    "jwks",
];

/// How an app came to be, beside the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// RFC 7591 dynamic registration: managed with its registration access token (RFC 7592).
    Dynamic,
    /// A client ID metadata document: the app mirrors the document at its URL.
    MetadataDocument,
}

/// What a registered client said about itself, kept with its app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub kind: RegistrationKind,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// The optional fields of [`KEPT`] as given.
    #[serde(default)]
    pub extra: Map<String, Value>,
    pub issued_at_s: u64,
    /// Hash of the current registration access token (RFC 7592 §3); replaced on each update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_hash: Option<SecretHash>,
    /// A metadata document's app: until when the fetched document may be used unfetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_expires_at_s: Option<u64>,
}

/// Why metadata was refused (RFC 7591 §3.2.2).
#[derive(Debug, PartialEq, Eq)]
pub struct MetadataError {
    /// `InvalidRedirectUri` or `InvalidClientMetadata`.
    pub code: ErrorCode,
    pub description: String,
}

fn invalid(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: ErrorCode::InvalidClientMetadata,
        description: description.into(),
    }
}

/// Metadata that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub auth_method: String,
    pub extra: Map<String, Value>,
}

impl ClientMetadata {
    /// Whether the client gets a secret (the `client_secret_*` methods).
    pub fn has_secret(&self) -> bool {
        self.auth_method.starts_with("client_secret_")
    }

    /// The app policy the metadata implies: a public client (`none`) always uses PKCE and
    /// never needs a secret; one that signs (`private_key_jwt`) verifies with its `jwks`.
    pub fn policy(&self) -> AppPolicy {
        let public = self.auth_method == "none";
        AppPolicy {
            pkce_required: public,
            secret_required_web_server: !public,
            secret_required_refresh: !public,
            certificate: self.extra.get("jwks").map(Value::to_string),
            ..AppPolicy::default()
        }
    }

    pub fn registration(&self, kind: RegistrationKind, issued_at_s: u64) -> Registration {
        Registration {
            kind,
            grant_types: self.grant_types.clone(),
            response_types: self.response_types.clone(),
            token_endpoint_auth_method: self.auth_method.clone(),
            extra: self.extra.clone(),
            issued_at_s,
            access_token_hash: None,
            document_expires_at_s: None,
        }
    }
}

fn strings(obj: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, MetadataError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{field} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(format!("{field} must be an array of strings"))),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, MetadataError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 2000 => Ok(Some(s)),
        Some(_) => Err(invalid(format!(
            "{field} must be a string of at most 2000 characters"
        ))),
    }
}

/// An `https` URL a person may be shown or the server may fetch (OIDC Registration §2); one
/// the server fetches (`jwks_uri`) must also pass the fetch rules (`outbound.rs`).
fn https_url(field: &str, raw: &str, dev_mode: bool) -> Result<(), MetadataError> {
    if field == "jwks_uri" {
        return check_url(raw, dev_mode)
            .map(|_| ())
            .map_err(|why| invalid(format!("jwks_uri: {why}")));
    }
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.fragment().is_none() => Ok(()),
        _ => Err(invalid(format!(
            "{field} must be an https URL without a fragment"
        ))),
    }
}

/// Checks metadata (RFC 7591 §2 and §2.1, security checklist 168–171). Unknown fields are
/// ignored (RFC 7591 §3.1: the server may ignore what it does not understand). `dev_mode`
/// allows a loopback `jwks_uri`, as for metadata documents.
pub fn check(obj: &Map<String, Value>, dev_mode: bool) -> Result<ClientMetadata, MetadataError> {
    let grant_types =
        strings(obj, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    let response_types = match strings(obj, "response_types")? {
        Some(r) => r,
        // RFC 7591 §2: the default is `code`, for a client that uses the code grant.
        None if grant_types.iter().any(|g| g == "authorization_code") => vec!["code".into()],
        None => Vec::new(),
    };
    if let Some(g) = grant_types
        .iter()
        .find(|g| !REGISTRABLE_GRANTS.contains(&g.as_str()))
    {
        return Err(invalid(format!("unsupported grant type: {g}")));
    }
    // RFC 7591 §2.1: grant types and response types must agree.
    for r in &response_types {
        let normalized = normalize_response_type(r);
        let Some((_, needs)) = RESPONSE_TYPES.iter().find(|(t, _)| *t == normalized) else {
            return Err(invalid(format!("unsupported response type: {r}")));
        };
        if let Some(missing) = needs.iter().find(|g| !grant_types.iter().any(|x| x == *g)) {
            return Err(invalid(format!(
                "response type {r} needs grant type {missing}"
            )));
        }
    }
    let needs_response = |grant: &str, marker: &str| {
        grant_types.iter().any(|g| g == grant)
            && !response_types
                .iter()
                .any(|r| r.split(' ').any(|p| p == marker))
    };
    if needs_response("authorization_code", "code") {
        return Err(invalid(
            "grant type authorization_code needs response type code",
        ));
    }
    if needs_response("implicit", "token") {
        return Err(invalid("grant type implicit needs response type token"));
    }
    let auth_method = string(obj, "token_endpoint_auth_method")?
        .unwrap_or("client_secret_basic")
        .to_owned();
    if !AUTH_METHODS.contains(&auth_method.as_str()) {
        return Err(invalid(format!(
            "unsupported token_endpoint_auth_method: {auth_method}"
        )));
    }
    if auth_method == "none"
        && grant_types
            .iter()
            .any(|g| g == "client_credentials" || g == JWT_BEARER)
    {
        return Err(invalid(
            "a public client (token_endpoint_auth_method none) cannot use client_credentials or jwt-bearer",
        ));
    }
    let redirect_uris = strings(obj, "redirect_uris")?.unwrap_or_default();
    let redirecting = grant_types
        .iter()
        .any(|g| g == "authorization_code" || g == "implicit");
    // Missing, as opposed to a bad value (`invalid_redirect_uri`, below).
    if redirecting && redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris required for authorization_code and implicit",
        ));
    }
    for uri in &redirect_uris {
        check_callback_url(uri).map_err(|description| MetadataError {
            code: ErrorCode::InvalidRedirectUri,
            description,
        })?;
    }
    let scopes = match string(obj, "scope")? {
        Some(raw) => {
            let mut scopes: Vec<String> = Vec::new();
            for s in raw.split(' ').filter(|s| !s.is_empty()) {
                if !KNOWN_SCOPES.contains(&s) {
                    return Err(invalid(format!("unknown scope: {s}")));
                }
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_owned());
                }
            }
            scopes
        }
        None => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut extra = Map::new();
    for field in KEPT {
        if let Some(v) = obj.get(*field).filter(|v| !v.is_null()) {
            extra.insert((*field).to_owned(), v.clone());
        }
    }
    for field in [
        "client_uri",
        "logo_uri",
        "tos_uri",
        "policy_uri",
        "jwks_uri",
    ] {
        if let Some(raw) = string(obj, field)? {
            https_url(field, raw, dev_mode)?;
        }
    }
    for field in ["software_id", "software_version", "application_type"] {
        string(obj, field)?;
    }
    strings(obj, "contacts")?;
    match (
        obj.get("jwks").filter(|v| !v.is_null()),
        string(obj, "jwks_uri")?,
    ) {
        (Some(_), Some(_)) => return Err(invalid("jwks and jwks_uri are mutually exclusive")),
        (Some(jwks), None) => {
            parse_public_keys(&jwks.to_string()).map_err(|e| invalid(format!("jwks: {}", e.0)))?;
        }
        (None, None) if auth_method == "private_key_jwt" => {
            return Err(invalid("private_key_jwt needs jwks or jwks_uri"));
        }
        _ => {}
    }
    let client_name = string(obj, "client_name")?.map(str::to_owned);
    Ok(ClientMetadata {
        client_name,
        redirect_uris,
        scopes,
        grant_types,
        response_types,
        auth_method,
        extra,
    })
}

/// A response type as its sorted parts, space-joined (`token id_token` = `id_token token`).
fn normalize_response_type(raw: &str) -> String {
    let mut parts: Vec<&str> = raw.split(' ').filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    parts.join(" ")
}

/// Whether a registered client may use an authorization response type (`raw` as the request
/// sends it): one of those it registered, in any order of its parts.
pub fn allows_response_type(registration: &Registration, raw: &str) -> bool {
    let wanted = normalize_response_type(raw).replace("hybrid_auth_code", "code");
    registration
        .response_types
        .iter()
        .any(|r| normalize_response_type(r) == wanted)
}

/// The metadata as responses show it (RFC 7591 §3.2.1), Salesforce's `scopes` array beside the
/// standard `scope` string (salesforce-reference.md §7).
pub fn describe(
    client_id: &str,
    name: &str,
    redirect_uris: &[String],
    scopes: &[String],
    registration: &Registration,
) -> Map<String, Value> {
    let mut out = registration.extra.clone();
    out.insert("client_id".into(), client_id.into());
    out.insert("client_name".into(), name.into());
    out.insert("redirect_uris".into(), redirect_uris.into());
    out.insert(
        "grant_types".into(),
        registration.grant_types.clone().into(),
    );
    out.insert(
        "response_types".into(),
        registration.response_types.clone().into(),
    );
    out.insert(
        "token_endpoint_auth_method".into(),
        registration.token_endpoint_auth_method.clone().into(),
    );
    out.insert("scope".into(), scopes.join(" ").into());
    out.insert("scopes".into(), scopes.into());
    out.insert(
        "client_id_issued_at".into(),
        registration.issued_at_s.into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: Value) -> Result<ClientMetadata, MetadataError> {
        check(v.as_object().unwrap(), false)
    }

    #[test]
    fn defaults_are_a_confidential_code_client() {
        let m = meta(serde_json::json!({"redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.auth_method, "client_secret_basic");
        assert!(m.has_secret());
        assert_eq!(m.scopes, DEFAULT_SCOPES);
    }

    #[test]
    fn redirect_uris_follow_the_callback_rules() {
        for bad in [
            "/relative",
            "https://a.example/cb#frag",
            "http://a.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
        ] {
            let e = meta(serde_json::json!({"redirect_uris": [bad]})).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRedirectUri, "{bad}");
        }
        assert!(meta(serde_json::json!({"redirect_uris": ["http://127.0.0.1:9/cb"]})).is_ok());
        let e = meta(serde_json::json!({})).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn grant_and_response_types_must_agree() {
        let cases = [
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"], "response_types": ["code"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code"], "response_types": []}),
            serde_json::json!({"grant_types": ["password"]}),
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "tls_client_auth"}),
            serde_json::json!({"grant_types": ["client_credentials"], "scope": "api nope"}),
        ];
        for c in cases {
            assert_eq!(
                meta(c.clone()).unwrap_err().code,
                ErrorCode::InvalidClientMetadata,
                "{c}"
            );
        }
        let ok = meta(serde_json::json!({"grant_types": ["client_credentials"], "scope": "api"}))
            .unwrap();
        assert!(ok.response_types.is_empty());
        let reg = meta(serde_json::json!({
            "redirect_uris": ["https://a.example/cb"],
            "grant_types": ["authorization_code", "implicit"],
            "response_types": ["code", "token id_token"],
        }))
        .unwrap()
        .registration(RegistrationKind::Dynamic, 0);
        assert!(allows_response_type(&reg, "id_token token"));
        assert!(allows_response_type(&reg, "code"));
        assert!(!allows_response_type(&reg, "code id_token"));
    }
}
