//! The whole core, driven through `router::handle` as the edge drives it, with generated
//! requests: every endpoint and method, protocol parameters with live, near-live and random
//! values, in the query, a form body or JSON, with and without client authentication. Whatever
//! arrives: no panic, no 5xx (CONTRACT §2: "Nothing a caller sends produces a 5xx"), every
//! response header a value the edge can send, and every JSON error body RFC 6749 §5.2's.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use edge_oauth::core::http::Method;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

use crate::strategies::{is_sendable_header_value, json, text, url_like, word};
use crate::support::{form, Reply, Server, ADMIN, CALLBACK};

const PATHS: &[&str] = &[
    "/services/oauth2/token",
    "/services/oauth2/device",
    "/services/oauth2/authorize",
    "/services/oauth2/revoke",
    "/services/oauth2/introspect",
    "/services/oauth2/userinfo",
    "/services/oauth2/register",
    "/services/oauth2/register/",
    "/setup/connect",
    "/secur/frontdoor.jsp",
    "/id/keys",
    "/id/",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/gateway/demo",
    "/tools/asset-token",
    "/admin/apps",
    "/admin/users",
    "/admin/settings",
    "/admin/assets",
    "/admin/resources",
    "/admin/registration-tokens",
    "/admin/keys",
    "/admin/audit",
    "/",
    "/nope",
];

const NAMES: &[&str] = &[
    "grant_type",
    "response_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "state",
    "nonce",
    "refresh_token",
    "username",
    "password",
    "assertion",
    "client_assertion_type",
    "client_assertion",
    "device_code",
    "user_code",
    "token",
    "token_type_hint",
    "access_token",
    "oauth_token",
    "resource",
    "prompt",
    "max_age",
    "response_mode",
    "login_hint",
    "immediate",
    "format",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "sid",
    "retURL",
    "interaction",
    "csrf_token",
    "login",
    "approve",
    "deny",
    "continue",
    "request",
    "request_uri",
    "since",
    "limit",
    "kind",
    "before",
];

/// Live values of a seeded org, and what to do with them.
struct Seed {
    client_id: String,
    secret: String,
    access_token: String,
    refresh_token: String,
    user_id: String,
}

fn value(seed: &Seed) -> BoxedStrategy<String> {
    let live = vec![
        seed.client_id.clone(),
        seed.secret.clone(),
        seed.access_token.clone(),
        seed.refresh_token.clone(),
        CALLBACK.to_owned(),
        "user@example.com".to_owned(),
        crate::support::PASSWORD.to_owned(),
    ];
    let protocol = select(
        &[
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code",
            "device",
            "hybrid_auth_code",
            "hybrid_refresh",
            "code",
            "token",
            "token id_token",
            "code id_token",
            "hybrid_token",
            "device_code",
            "code_credentials",
            "id_token",
            "S256",
            "plain",
            "none",
            "login",
            "consent",
            "query",
            "fragment",
            "form_post",
            "urlencoded",
            "api refresh_token openid",
            "openid",
            "true",
            "0",
            "-1",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "urn:ietf:params:oauth:token-type:access_token",
            "urn:ietf:params:oauth:token-type:jwt",
            "eyJhbGciOiJub25lIn0.e30.",
            "BCDF-GHJK",
            "/",
            "//evil.example",
            "https://login.example.com/gateway/demo",
        ][..],
    );
    prop_oneof![
        3 => select(live).boxed(),
        3 => protocol.prop_map(str::to_owned).boxed(),
        2 => text(),
        1 => url_like(),
        1 => "[A-Za-z0-9]{43}".boxed(),
    ]
    .boxed()
}

fn pairs(seed: &Seed) -> BoxedStrategy<Vec<(String, String)>> {
    let name = prop_oneof![4 => select(NAMES).prop_map(str::to_owned), 1 => word()];
    vec((name, value(seed)), 0..8).boxed()
}

#[derive(Debug, Clone)]
struct Generated {
    method: Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn request(seed: &Seed) -> BoxedStrategy<Generated> {
    let method = select(
        &[
            Method::Get,
            Method::Post,
            Method::Post,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
            Method::Head,
            Method::Other,
        ][..],
    );
    let path = prop_oneof![
        6 => select(PATHS).prop_map(str::to_owned),
        2 => (select(PATHS), prop_oneof![word(), Just(seed.client_id.clone()), Just(seed.user_id.clone())])
            .prop_map(|(p, w)| format!("{}/{}", p.trim_end_matches('/'), w)),
        1 => Just(format!("/id/00D000000000001AAA/{}", seed.user_id)),
        1 => (select(PATHS), text()).prop_map(|(p, t)| format!("{p}{t}")),
    ];
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", seed.client_id, seed.secret))
    );
    let authorization = proptest::option::of(prop_oneof![
        Just(basic),
        Just(format!("Bearer {ADMIN}")),
        Just(format!("Bearer {}", seed.access_token)),
        text().prop_map(|t| format!("Bearer {t}")),
        text().prop_map(|t| format!("Basic {}", STANDARD.encode(t))),
        text(),
    ]);
    let content_type = proptest::option::of(prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("application/json".to_owned()),
        Just("multipart/form-data; boundary=x".to_owned()),
        text(),
    ]);
    let extra_headers = vec(
        (
            select(
                &[
                    "accept",
                    "origin",
                    "cookie",
                    "cf-connecting-ip",
                    "auth-request-type",
                    "content-length",
                ][..],
            ),
            prop_oneof![
                Just("text/html".to_owned()),
                Just("application/x-www-form-urlencoded".to_owned()),
                Just("https://app.example.com".to_owned()),
                Just("Named-User".to_owned()),
                text(),
            ],
        ),
        0..3,
    );
    let body = prop_oneof![
        3 => pairs(seed).prop_map(|p| form(&p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>())).boxed(),
        2 => json().prop_map(|v| v.to_string()).boxed(),
        1 => admin_json().prop_map(|v| v.to_string()).boxed(),
        1 => text(),
    ];
    (
        method,
        path,
        pairs(seed),
        authorization,
        content_type,
        extra_headers,
        body,
    )
        .prop_map(
            |(method, path, query, authorization, content_type, extra, body)| {
                let mut headers = Vec::new();
                if let Some(a) = authorization {
                    headers.push(("authorization".to_owned(), a));
                }
                if let Some(c) = content_type {
                    headers.push(("content-type".to_owned(), c));
                }
                for (k, v) in extra {
                    headers.push((k.to_owned(), v));
                }
                let query = form(
                    &query
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect::<Vec<_>>(),
                );
                Generated {
                    method,
                    path,
                    query,
                    headers,
                    body,
                }
            },
        )
        .boxed()
}

/// JSON bodies near the admin API's and registration's.
pub fn admin_json() -> BoxedStrategy<Value> {
    let field = prop_oneof![
        select(
            &[
                "name",
                "username",
                "password",
                "email",
                "uri",
                "client_credentials_user",
                "certificate",
                "client_name",
                "alg"
            ][..]
        )
        .prop_flat_map(
            |k| prop_oneof![text().prop_map(Value::from), json()].prop_map(move |v| (k, v))
        ),
        select(
            &[
                "callback_urls",
                "redirect_uris",
                "allowed_origins",
                "client_id_metadata_document_prefixes"
            ][..]
        )
        .prop_flat_map(|k| vec(url_like(), 0..3).prop_map(move |v| (k, json!(v)))),
        select(&["scopes", "grant_types", "response_types"][..]).prop_flat_map(|k| vec(
            prop_oneof![
                select(
                    &[
                        "api",
                        "openid",
                        "refresh_token",
                        "web",
                        "code",
                        "token",
                        "authorization_code",
                        "implicit"
                    ][..]
                )
                .prop_map(str::to_owned),
                text()
            ],
            0..3
        )
        .prop_map(move |v| (k, json!(v)))),
        select(
            &[
                "pkce_required",
                "rotate_refresh_tokens",
                "secret_required_refresh",
                "jwt_access_tokens",
                "active",
                "require_pkce",
                "allow_username_password_flow",
                "open_registration",
                "activate",
                "device_flow"
            ][..]
        )
        .prop_flat_map(
            |k| prop_oneof![any::<bool>().prop_map(Value::from), json()].prop_map(move |v| (k, v))
        ),
        select(
            &[
                "access_token_ttl_s",
                "id_token_ttl_s",
                "refresh_reuse_grace_s",
                "max_uses",
                "expires_in_s"
            ][..]
        )
        .prop_flat_map(|k| prop_oneof![
            any::<i64>().prop_map(Value::from),
            (0i64..100_000).prop_map(Value::from),
            json()
        ]
        .prop_map(move |v| (k, v))),
        select(
            &[
                "refresh_token_policy",
                "asset_tokens",
                "permitted_users",
                "token_endpoint_auth_method"
            ][..]
        )
        .prop_flat_map(|k| prop_oneof![
            select(
                &[
                    "infinite",
                    "zero",
                    "admin_approved",
                    "none",
                    "private_key_jwt"
                ][..]
            )
            .prop_map(Value::from),
            Just(json!({"lifetime_s": 0})),
            Just(json!({"inactivity_s": 99999999999u64})),
            Just(json!({"audiences": ["https://a.example"], "ttl_s": 60})),
            json(),
        ]
        .prop_map(move |v| (k, v))),
    ];
    vec(field, 0..6)
        .prop_map(|fields| {
            Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
        .boxed()
}

/// The answer keeps the core's promises, whatever the request.
pub fn check_reply(what: &str, r: &Reply) -> Result<(), TestCaseError> {
    prop_assert!(r.status < 500, "{what}: {} {}", r.status, r.body);
    for (k, v) in &r.headers {
        prop_assert!(
            is_sendable_header_value(v),
            "{what}: header {k} cannot be sent: {v:?}"
        );
    }
    let json_body = r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    if json_body && r.status >= 400 {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        prop_assert!(body["error"].is_string(), "{what}: error body {}", r.body);
        let description = body["error_description"].as_str();
        prop_assert!(
            description.is_some(),
            "{what}: no error_description: {}",
            r.body
        );
    }
    Ok(())
}

fn seeded() -> (Server, Seed) {
    let server = Server::new();
    let app = server.app(serde_json::json!({"rotate_refresh_tokens": false}));
    let user_id = server.user("user");
    let tokens = server.tokens(&app, "user");
    let seed = Seed {
        client_id: app.client_id,
        secret: app.secret,
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        user_id,
    };
    (server, seed)
}

#[test]
fn no_request_gets_a_server_error() {
    let (server, seed) = seeded();
    let mut runner = TestRunner::new(crate::config(2000));
    runner
        .run(&request(&seed), |g| {
            let target = if g.query.is_empty() {
                g.path.clone()
            } else {
                format!("{}?{}", g.path, g.query)
            };
            let headers: Vec<(&str, &str)> = g
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = server.send(g.method, &target, &headers, &g.body);
            check_reply(&format!("{:?} {target}", g.method), &r)
        })
        .unwrap();
}
