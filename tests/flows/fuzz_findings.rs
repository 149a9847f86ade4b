//! Regressions for what the property tests (tests/props) and schemathesis
//! (tests/e2e/fuzz.test.mjs) found, each with the request that showed it.

use edge_oauth::core::http::Method;
use serde_json::json;

use crate::support::*;

/// CONTRACT §2: a protocol parameter given twice is `invalid_request`. Query parameters of a
/// token request are merged under the body's; a name the body lacks but the query repeats was
/// merged once, so the duplicate went unnoticed (`tests/props/params.rs`,
/// `merging_keeps_the_body_and_adds_only_missing_query_names`).
#[test]
fn a_parameter_repeated_in_the_query_is_a_duplicate() {
    let s = Server::new();
    let app = s.app(json!({"client_credentials_user": "alice"}));
    s.user("alice");
    let r = s.send(
        Method::Post,
        "/services/oauth2/token?scope=api&scope=openid",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error(), "invalid_request");
    assert!(r.body.contains("duplicate parameter: scope"), "{}", r.body);
    // Once in the query, or in the body and the query (the body wins), stays fine.
    let once = s.send(
        Method::Post,
        "/services/oauth2/token?scope=api",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ]),
    );
    assert_eq!(once.status, 200, "{}", once.body);
}

/// RFC 6749 §3.1.2 / RFC 3986 §4.3: a redirect URI is an absolute URI, which has no spaces,
/// control characters or non-ASCII characters. The URL parser drops tabs and newlines and
/// percent-encodes the rest, so such a string was accepted and stored as sent; a redirect to it
/// then carried it verbatim in `Location`, which the edge cannot send (a 500). Found by
/// `tests/props/redirect.rs`, `accepted_callback_urls_keep_the_rules`.
#[test]
fn a_callback_url_that_is_no_uri_is_refused() {
    let s = Server::new();
    for bad in [
        "https://app.example.com/c\nb",
        "https://app.example.com/c\tb",
        "https://app.example.com/c b",
        " https://app.example.com/cb",
        "https://app.example.com/caf\u{e9}",
        "https://app.example.com/\u{2603}",
    ] {
        let r = s.admin(
            Method::Post,
            "/admin/apps",
            json!({"name": "A", "callback_urls": [bad], "scopes": ["api"]}),
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        let r = s.send(
            Method::Post,
            "/services/oauth2/register",
            &[("content-type", "application/json")],
            &json!({"redirect_uris": [bad]}).to_string(),
        );
        // Registration is closed here, so the token is asked for first; with it open the
        // metadata is checked.
        assert_eq!(r.status, 401, "{}", r.body);
    }
    s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"open_registration": true}),
    );
    let r = s.send(
        Method::Post,
        "/services/oauth2/register",
        &[("content-type", "application/json")],
        &json!({"redirect_uris": ["https://app.example.com/c\nb"]}).to_string(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error(), "invalid_redirect_uri");
    // Percent-encoded, the same characters are a URI.
    let r = s.admin(
        Method::Post,
        "/admin/apps",
        json!({"name": "A", "callback_urls": ["https://app.example.com/caf%C3%A9%20x"], "scopes": ["api"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// docs/endpoints.md: "A method an endpoint does not take is 405 `invalid_request` with
/// `Allow`" (RFC 9110 §15.5.6: a 405 MUST carry `Allow`). Schemathesis's unsupported_method
/// check found endpoints that answered 404 (GET-only documents), 400 (registration) or a 405
/// without `Allow` (admin API).
#[test]
fn methods_an_endpoint_does_not_take_are_405_with_allow() {
    let s = Server::new();
    let auth = format!("Bearer {ADMIN}");
    let cases: &[(Method, &str, &str)] = &[
        (
            Method::Post,
            "/.well-known/openid-configuration",
            "GET, HEAD",
        ),
        (
            Method::Delete,
            "/.well-known/oauth-authorization-server",
            "GET, HEAD",
        ),
        (Method::Post, "/id/keys", "GET, HEAD"),
        (Method::Put, "/tools/asset-token", "GET, HEAD"),
        (
            Method::Post,
            "/.well-known/oauth-protected-resource",
            "GET, HEAD",
        ),
        (
            Method::Post,
            "/.well-known/oauth-protected-resource/gateway/demo",
            "GET, HEAD",
        ),
        (Method::Patch, "/services/oauth2/register", "POST"),
        (
            Method::Post,
            "/services/oauth2/register/3MVG9abc",
            "GET, PUT, DELETE",
        ),
        (Method::Put, "/admin/apps", "GET, POST"),
        (Method::Post, "/admin/apps/3MVG9abc", "GET, PATCH, DELETE"),
        (Method::Get, "/admin/apps/3MVG9abc/secret", "POST"),
        (Method::Delete, "/admin/settings", "GET, PATCH"),
        (Method::Get, "/admin/registration-tokens", "POST"),
        (Method::Post, "/admin/assets", "GET"),
        (Method::Get, "/admin/resources/r1", "DELETE"),
        (Method::Patch, "/admin/keys", "GET, POST"),
        (Method::Post, "/admin/audit", "GET"),
    ];
    for (method, path, allow) in cases {
        let r = s.send(*method, path, &[("authorization", &auth)], "");
        assert_eq!(r.status, 405, "{method:?} {path}: {}", r.body);
        assert_eq!(r.header("allow"), Some(*allow), "{method:?} {path}");
        assert!(r.json()["error"].is_string(), "{}", r.body);
    }
    // An unknown path stays a 404, whatever the method.
    let r = s.send(
        Method::Post,
        "/.well-known/oauth-protected-resource/nope",
        &[],
        "",
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = s.send(Method::Put, "/admin/nope", &[("authorization", &auth)], "");
    assert_eq!(r.status, 404, "{}", r.body);
}

/// A method the edge did not know (`QUERY`, `FOO`) reached the core as a GET
/// (`worker::Request::method()` maps unknown methods to GET), so `QUERY /services/oauth2/userinfo`
/// answered 200 (schemathesis, unsupported_method). The edge now passes the method as sent;
/// the core answers every method it does not take with 405.
#[test]
fn an_unknown_method_is_405_not_a_get() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let id = t["id"].as_str().unwrap().trim_start_matches(ISSUER);
    for path in [
        "/services/oauth2/userinfo",
        id,
        "/setup/connect",
        "/secur/frontdoor.jsp",
        "/id/keys",
    ] {
        let r = s.send(Method::Other, path, &[("authorization", &bearer)], "");
        assert_eq!(r.status, 405, "{path}: {}", r.body);
        assert!(r.header("allow").is_some(), "{path}");
    }
}

/// docs/endpoints.md: errors at the identity URL carry `Cache-Control: no-store`; `Bad_Id` did
/// not (schemathesis, response_headers_conformance).
#[test]
fn bad_id_is_not_stored() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let r = s.send(
        Method::Get,
        "/id/00D000000000000AAA/005000000000000AAA",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error(), "Bad_Id");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// A refused registration body got `Cache-Control: no-store` (and `Pragma`) twice, which
/// clients read as `no-store, no-store` (schemathesis, response_headers_conformance).
#[test]
fn a_refused_registration_says_no_store_once() {
    let s = Server::new();
    s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"open_registration": true}),
    );
    let r = s.send(
        Method::Post,
        "/services/oauth2/register",
        &[("content-type", "application/json")],
        "not json",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let count = |name: &str| r.headers.iter().filter(|(k, _)| k == name).count();
    assert_eq!(
        (count("cache-control"), count("pragma")),
        (1, 1),
        "{:?}",
        r.headers
    );
}

/// `POST /admin/registration-tokens` and `POST /admin/keys` take no body or a JSON object;
/// a body of whitespace alone (no JSON text) passed as "no body" (schemathesis,
/// negative_data_rejection: `-d $'\t'` got 201).
#[test]
fn a_whitespace_body_is_no_json() {
    let s = Server::new();
    let auth = format!("Bearer {ADMIN}");
    for path in ["/admin/registration-tokens", "/admin/keys"] {
        let r = s.send(Method::Post, path, &[("authorization", &auth)], "\t");
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("malformed JSON"), "{}", r.body);
    }
    let r = s.send(
        Method::Post,
        "/admin/registration-tokens",
        &[("authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 201, "{}", r.body);
}
