//! Client metadata (`oauth::client_metadata::check`, RFC 7591 §2), as dynamic registration and
//! client ID metadata documents (`oauth::metadata_document`) send it. Documents are driven
//! through the router with the flow tests' fake web: whatever a document holds, the answer is
//! a page or a redirect, never a 5xx.

use edge_oauth::core::http::Method;
use edge_oauth::core::oauth::client_metadata::{
    check, AUTH_METHODS, DEFAULT_SCOPES, REGISTRABLE_GRANTS,
};
use edge_oauth::core::oauth::error::ErrorCode;
use edge_oauth::core::oauth::redirect::check_callback_url;
use edge_oauth::core::oauth::scope::KNOWN_SCOPES;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};

use crate::strategies::{is_sendable_header_value, json, text, url_like};
use crate::support::{authorize_url, form, pkce, Server};

fn strings_of(choices: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => vec(select(choices), 0..4).prop_map(|v| json!(v)),
        1 => json(),
    ]
    .boxed()
}

/// A metadata field and a value that is usually of the right shape.
fn field() -> BoxedStrategy<(String, Value)> {
    let urls = prop_oneof![
        4 => vec(url_like(), 0..3).prop_map(|v| json!(v)),
        1 => Just(json!(["https://app.example.com/cb"])),
        1 => json(),
    ];
    let scope = prop_oneof![
        3 => vec(select(KNOWN_SCOPES), 0..4).prop_map(|v| Value::from(v.join(" "))),
        1 => text().prop_map(Value::from),
        1 => json(),
    ];
    let https = prop_oneof![url_like().prop_map(Value::from), json()];
    let jwks = prop_oneof![
        Just(json!({"keys": []})),
        Just(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})),
        json(),
    ];
    prop_oneof![
        urls.prop_map(|v| ("redirect_uris".to_owned(), v)),
        strings_of(&[
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:device_code",
            "password",
            "hybrid_refresh",
            ""
        ])
        .prop_map(|v| ("grant_types".to_owned(), v)),
        strings_of(&[
            "code",
            "token",
            "id_token token",
            "token id_token",
            "code id_token",
            "id_token",
            "code  id_token",
            ""
        ])
        .prop_map(|v| ("response_types".to_owned(), v)),
        prop_oneof![
            select(
                &[
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                    "none",
                    "tls_client_auth"
                ][..]
            )
            .prop_map(Value::from),
            json()
        ]
        .prop_map(|v| ("token_endpoint_auth_method".to_owned(), v)),
        scope.prop_map(|v| ("scope".to_owned(), v)),
        (
            select(
                &[
                    "client_uri",
                    "logo_uri",
                    "tos_uri",
                    "policy_uri",
                    "jwks_uri"
                ][..]
            ),
            https
        )
            .prop_map(|(k, v)| (k.to_owned(), v)),
        jwks.prop_map(|v| ("jwks".to_owned(), v)),
        (
            select(
                &[
                    "client_name",
                    "software_id",
                    "software_version",
                    "application_type",
                    "contacts",
                    "client_id",
                    "client_secret"
                ][..]
            ),
            json()
        )
            .prop_map(|(k, v)| (k.to_owned(), v)),
    ]
    .boxed()
}

fn metadata() -> BoxedStrategy<Map<String, Value>> {
    vec(field(), 0..8)
        .prop_map(|fields| fields.into_iter().collect())
        .boxed()
}

proptest! {
    #![proptest_config(crate::config(1024))]

    /// Accepted metadata keeps every registration rule (RFC 7591 §2, §2.1; security checklist
    /// 168–171).
    #[test]
    fn accepted_metadata_keeps_the_rules(obj in metadata(), dev in any::<bool>()) {
        match check(&obj, dev) {
            Ok(m) => {
                for uri in &m.redirect_uris {
                    prop_assert!(check_callback_url(uri).is_ok(), "{uri:?}");
                    prop_assert!(!uri.contains('#'));
                }
                for s in &m.scopes {
                    prop_assert!(KNOWN_SCOPES.contains(&s.as_str()), "unknown scope {s:?}");
                }
                if !obj.contains_key("scope") || obj["scope"].is_null() {
                    prop_assert_eq!(&m.scopes, &DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                }
                for g in &m.grant_types {
                    prop_assert!(REGISTRABLE_GRANTS.contains(&g.as_str()), "grant {g:?}");
                }
                prop_assert!(AUTH_METHODS.contains(&m.auth_method.as_str()));
                let has = |g: &str| m.grant_types.iter().any(|x| x == g);
                if has("authorization_code") || has("implicit") {
                    prop_assert!(!m.redirect_uris.is_empty());
                }
                if m.auth_method == "none" {
                    prop_assert!(!has("client_credentials"));
                    prop_assert!(!has("urn:ietf:params:oauth:grant-type:jwt-bearer"));
                    prop_assert!(m.policy().pkce_required);
                }
                if m.auth_method == "private_key_jwt" {
                    prop_assert!(obj.get("jwks").is_some_and(|v| !v.is_null()) || obj.get("jwks_uri").is_some_and(|v| !v.is_null()));
                }
                // Each response type needs its grant type and each such grant type a response type.
                for r in &m.response_types {
                    let parts: Vec<&str> = r.split(' ').filter(|p| !p.is_empty()).collect();
                    if parts.contains(&"code") { prop_assert!(has("authorization_code")); }
                    if parts.contains(&"token") { prop_assert!(has("implicit")); }
                }
                if has("authorization_code") {
                    prop_assert!(m.response_types.iter().any(|r| r.split(' ').any(|p| p == "code")));
                }
                prop_assert_eq!(m.has_secret(), m.auth_method.starts_with("client_secret_"));
            }
            Err(e) => prop_assert!(matches!(e.code, ErrorCode::InvalidClientMetadata | ErrorCode::InvalidRedirectUri)),
        }
    }
}

const DOC: &str = "https://app.example.com/client.json";

/// A document near a valid one (sometimes the valid one itself), or any JSON, or bytes.
fn document() -> BoxedStrategy<Vec<u8>> {
    let near = (
        metadata(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(text()),
    )
        .prop_map(|(mut obj, with_id, with_redirect, name)| {
            if with_id {
                obj.insert("client_id".into(), DOC.into());
            }
            if with_redirect {
                obj.insert(
                    "redirect_uris".into(),
                    json!(["https://app.example.com/cb"]),
                );
            }
            if let Some(n) = name {
                obj.insert("client_name".into(), n.into());
            }
            obj.remove("jwks_uri");
            Value::Object(obj).to_string().into_bytes()
        });
    prop_oneof![
        6 => near,
        1 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
        1 => Just(vec![b' '; 6000]),
    ]
    .boxed()
}

#[test]
fn metadata_documents_never_get_a_server_error() {
    let server = Server::new();
    let mut runner = TestRunner::new(crate::config(200));
    let (_, challenge) = pkce();
    runner
        .run(
            &(
                document(),
                select(&[200u16, 200, 200, 302, 404, 500][..]),
                proptest::option::of(select(
                    &["max-age=0", "max-age=60", "no-store", "max-age=abc"][..],
                )),
                prop_oneof![Just("https://app.example.com/cb".to_owned()), url_like()],
            ),
            |(body, status, cache, redirect_uri)| {
                server.web.answer(DOC, status, &body, cache);
                let target = authorize_url(&[
                    ("response_type", "code"),
                    ("client_id", DOC),
                    ("redirect_uri", &redirect_uri),
                    ("code_challenge", &challenge),
                    ("state", "s"),
                ]);
                let r = server.send(Method::Get, &target, &[], "");
                prop_assert!(r.status < 500, "{} {}", r.status, r.body);
                for (k, v) in &r.headers {
                    prop_assert!(is_sendable_header_value(v), "{k}: {v:?}");
                }
                // A token request naming the document as client never fails the server either.
                let t = server.send(
                    Method::Post,
                    "/services/oauth2/token",
                    &[("content-type", "application/x-www-form-urlencoded")],
                    &form(&[
                        ("grant_type", "authorization_code"),
                        ("code", "x"),
                        ("client_id", DOC),
                        ("redirect_uri", &redirect_uri),
                        ("code_verifier", &"a".repeat(43)),
                    ]),
                );
                prop_assert!(t.status < 500, "{} {}", t.status, t.body);
                Ok(())
            },
        )
        .unwrap();
}
