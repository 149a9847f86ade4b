//! Issue 10: dynamic registration (RFC 7591/7592), resource indicators (RFC 8707), the gateway
//! route and its metadata (RFC 9728), client ID metadata documents.

use edge_oauth::core::config::Ctx;
use edge_oauth::core::env::OsRng;
use edge_oauth::core::gateway::{decide, route_for, Decision};
use edge_oauth::core::http::{Method, Request};
use futures_executor::block_on;
use serde_json::{json, Value};

use crate::support::*;

fn register(s: &Server, token: Option<&str>, body: &Value) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    s.send(
        Method::Post,
        "/services/oauth2/register",
        &headers,
        &body.to_string(),
    )
}

fn initial_token(s: &Server, body: Value) -> String {
    let r = s.admin(Method::Post, "/admin/registration-tokens", body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["token"].as_str().unwrap().to_owned()
}

fn manage(s: &Server, method: Method, uri: &str, rat: &str, body: Option<&Value>) -> Reply {
    let path = uri.strip_prefix(ISSUER).unwrap();
    let auth = format!("Bearer {rat}");
    let body = body.map(Value::to_string).unwrap_or_default();
    s.send(
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &body,
    )
}

const RESOURCE: &str = "https://api.example.net/v1";

fn gateway(s: &Server, path: &str, token: Option<&str>) -> Decision {
    let auth = token.map(|t| format!("Bearer {t}"));
    let req = Request {
        method: Method::Get,
        origin: ISSUER.into(),
        path: path.into(),
        query: "x=1".into(),
        headers: auth
            .map(|a| vec![("authorization".to_owned(), a)])
            .unwrap_or_default(),
        body: Vec::new(),
    };
    let ctx = Ctx {
        store: &s.store,
        clock: &s.clock,
        rng: &OsRng,
        config: &s.config,
        issuer: ISSUER.into(),
        notes: Default::default(),
    };
    let route = route_for(&s.config.gateway, path).unwrap().clone();
    block_on(decide(&ctx, &req, &route))
}

fn refused(d: Decision) -> (u16, String) {
    match d {
        Decision::Refuse(r) => (
            r.status,
            r.header("www-authenticate").unwrap_or_default().to_owned(),
        ),
        Decision::Forward { url, .. } => panic!("forwarded to {url}"),
    }
}

#[test]
fn an_initial_access_token_allows_max_uses_registrations_and_no_more() {
    let s = Server::new();
    let meta = json!({"redirect_uris": [CALLBACK], "client_name": "Reg"});
    assert_eq!(
        register(&s, None, &meta).status,
        401,
        "registration is closed by default"
    );
    assert_eq!(register(&s, Some("bogus"), &meta).status, 401);
    let token = initial_token(&s, json!({"max_uses": 2}));
    // Refused metadata does not use the token up.
    let bad = register(
        &s,
        Some(&token),
        &json!({"redirect_uris": ["http://evil.example/cb"]}),
    );
    assert_eq!(
        (bad.status, bad.error().as_str()),
        (400, "invalid_redirect_uri")
    );
    for _ in 0..2 {
        let r = register(&s, Some(&token), &meta);
        assert_eq!(r.status, 201, "{}", r.body);
        let j = r.json();
        assert_eq!(j["scopes"], json!(["api", "refresh_token", "openid"]));
        assert_eq!(j["client_secret_expires_at"], 0);
        assert!(j["client_secret"].as_str().unwrap().len() >= 43);
        assert!(r.header("cache-control").unwrap().contains("no-store"));
    }
    let r = register(&s, Some(&token), &meta);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_token"));
    // Expired.
    let short = initial_token(&s, json!({"expires_in_s": 60}));
    s.clock.advance_s(61);
    assert_eq!(register(&s, Some(&short), &meta).status, 401);
    // Open registration needs no token.
    let r = s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"open_registration": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(register(&s, None, &meta).status, 201);
}

#[test]
fn the_registration_access_token_reads_rotates_on_update_and_deletes() {
    let s = Server::new();
    let token = initial_token(&s, json!({}));
    let r = register(
        &s,
        Some(&token),
        &json!({"redirect_uris": [CALLBACK], "grant_types": ["authorization_code", "refresh_token"], "client_name": "One"}),
    );
    let j = r.json();
    let app = App {
        client_id: j["client_id"].as_str().unwrap().into(),
        secret: j["client_secret"].as_str().unwrap().into(),
    };
    let uri = j["registration_client_uri"].as_str().unwrap().to_owned();
    let rat = j["registration_access_token"].as_str().unwrap().to_owned();
    let read = manage(&s, Method::Get, &uri, &rat, None);
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["client_name"], "One");
    assert!(read.json().get("client_secret").is_none());
    // The registered client works like any app.
    s.user("reg.user");
    let tokens = s.tokens(&app, "reg.user");
    // Another grant than those registered: unauthorized_client.
    let cc = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
    ]);
    assert_eq!(
        (cc.status, cc.error().as_str()),
        (400, "unauthorized_client")
    );
    // Update: a new token; the old one is dead at once.
    let update = json!({"client_id": app.client_id, "redirect_uris": [CALLBACK], "grant_types": ["authorization_code", "refresh_token"], "client_name": "Two"});
    let up = manage(&s, Method::Put, &uri, &rat, Some(&update));
    assert_eq!(up.status, 200, "{}", up.body);
    let rat2 = up.json()["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rat, rat2);
    assert_eq!(
        manage(&s, Method::Put, &uri, &rat, Some(&update)).status,
        401
    );
    assert_eq!(manage(&s, Method::Get, &uri, &rat, None).status, 401);
    assert_eq!(
        manage(&s, Method::Get, &uri, &rat2, None).json()["client_name"],
        "Two"
    );
    // Another client id in the body, or another auth method: refused.
    let other = json!({"client_id": "someone-else", "redirect_uris": [CALLBACK]});
    assert_eq!(
        manage(&s, Method::Put, &uri, &rat2, Some(&other)).error(),
        "invalid_client_metadata"
    );
    let public = json!({"client_id": app.client_id, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"});
    assert_eq!(
        manage(&s, Method::Put, &uri, &rat2, Some(&public)).error(),
        "invalid_client_metadata"
    );
    let wrong_secret =
        json!({"client_id": app.client_id, "client_secret": "not-it", "redirect_uris": [CALLBACK]});
    assert_eq!(
        manage(&s, Method::Put, &uri, &rat2, Some(&wrong_secret)).error(),
        "invalid_client_metadata"
    );
    // Refused updates leave the token as it was.
    assert_eq!(manage(&s, Method::Get, &uri, &rat2, None).status, 200);
    // Delete: the client and its tokens end.
    let gw = s.app(json!({"introspect_all_tokens": true}));
    let introspect = |t: &str| {
        s.post_form(
            "/services/oauth2/introspect",
            &[
                ("token", t),
                ("client_id", &gw.client_id),
                ("client_secret", &gw.secret),
            ],
        )
        .json()
    };
    let seen = introspect(tokens["access_token"].as_str().unwrap());
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], app.client_id.as_str());
    assert_eq!(seen["aud"], ISSUER);
    assert_eq!(manage(&s, Method::Delete, &uri, &rat2, None).status, 204);
    assert_eq!(
        introspect(tokens["access_token"].as_str().unwrap())["active"],
        false
    );
    assert_eq!(
        introspect(tokens["refresh_token"].as_str().unwrap())["active"],
        false
    );
    assert_eq!(manage(&s, Method::Get, &uri, &rat2, None).status, 401);
}

#[test]
fn a_resource_binds_the_whole_family_and_cannot_be_changed() {
    let s = Server::new();
    let r = s.admin(
        Method::Post,
        "/admin/resources",
        json!({"uri": RESOURCE, "name": "API", "scopes": ["api"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        s.admin(
            Method::Post,
            "/admin/resources",
            json!({"uri": "https://x.example/#f", "name": "bad"})
        )
        .status,
        400
    );
    let app = s.app(json!({"jwt_access_tokens": true}));
    s.user("res.user");
    // Unknown resource, or a fragment: invalid_target back to the client with state.
    let mut b = Browser::default();
    let unknown = b.authorize(
        &s,
        &app,
        &[("resource", "https://nope.example/"), ("state", "st")],
        Some(("res.user", PASSWORD)),
        true,
    );
    assert_eq!(unknown.query("error").as_deref(), Some("invalid_target"));
    assert_eq!(unknown.query("state").as_deref(), Some("st"));
    let two = Browser::default().get(
        &s,
        &authorize_target(
            &app,
            CALLBACK,
            &[("resource", RESOURCE), ("resource", RESOURCE)],
        ),
    );
    assert_eq!(two.query("error").as_deref(), Some("invalid_request"));
    // The token is for the resource, with or without repeating it.
    let code = s.code_for(&app, "res.user", &[("resource", RESOURCE)]);
    let t = s.exchange(&app, &code, None).json();
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["aud"], RESOURCE);
    // Naming another resource at the token endpoint: invalid_target (the code stays unused).
    let code = s.code_for(&app, "res.user", &[("resource", RESOURCE)]);
    let other = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("redirect_uri", CALLBACK),
        ("resource", "https://other.example/"),
    ]);
    assert_eq!(
        (other.status, other.error().as_str()),
        (400, "invalid_target")
    );
    // Refresh: the same resource or none keeps it; another is invalid_target.
    let rt = t["refresh_token"].as_str().unwrap();
    let widened = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("resource", &format!("{ISSUER}/gateway/demo")),
    ]);
    assert_eq!(widened.error(), "invalid_target");
    let again = s.refresh(&app, rt);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        jwt_claims(again.json()["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );
    // A family without a resource cannot gain one at refresh.
    let plain = s.tokens(&app, "res.user");
    let gained = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", plain["refresh_token"].as_str().unwrap()),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("resource", RESOURCE),
    ]);
    assert_eq!(gained.error(), "invalid_target");
    assert_eq!(
        jwt_claims(plain["access_token"].as_str().unwrap())["aud"],
        ISSUER
    );
}

#[test]
fn the_gateway_forwards_only_tokens_for_its_resource_with_its_scope() {
    let s = Server::new();
    let app = s.app(json!({}));
    let narrow = s.app(json!({"scopes": ["openid", "refresh_token"]}));
    s.user("gw.user");
    let demo = format!("{ISSUER}/gateway/demo");
    let code = s.code_for(&app, "gw.user", &[("resource", &demo)]);
    let token = s.exchange(&app, &code, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    match gateway(&s, "/gateway/demo/items/1", Some(&token)) {
        Decision::Forward { url, identity } => {
            assert_eq!(url, format!("{UPSTREAM}/items/1?x=1"));
            let get = |n: &str| {
                identity
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get("x-auth-client-id"), Some(app.client_id.clone()));
            assert_eq!(get("x-auth-user").as_deref(), Some("gw.user"));
            assert!(get("x-auth-scope").unwrap().split(' ').any(|x| x == "api"));
            assert!(get("x-auth-sub")
                .unwrap()
                .starts_with(&format!("{ISSUER}/id/")));
        }
        Decision::Refuse(r) => panic!(
            "refused: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
    }
    let meta =
        format!("resource_metadata=\"{ISSUER}/.well-known/oauth-protected-resource/gateway/demo\"");
    let (status, challenge) = refused(gateway(&s, "/gateway/demo/x", None));
    assert_eq!(status, 401);
    assert_eq!(challenge, format!("Bearer {meta}"));
    let (status, challenge) = refused(gateway(&s, "/gateway/demo/x", Some("00D000000000001!nope")));
    assert_eq!(
        (status, challenge.contains("error=\"invalid_token\"")),
        (401, true)
    );
    // Wrong audience: the same token at the other route; a token for no resource.
    let (status, challenge) = refused(gateway(&s, "/gateway/other/x", Some(&token)));
    assert_eq!((status, challenge.contains("invalid_token")), (401, true));
    let plain = s.tokens(&app, "gw.user")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refused(gateway(&s, "/gateway/demo/x", Some(&plain))).0, 401);
    // Under-scoped.
    let code = s.code_for(&narrow, "gw.user", &[("resource", &demo)]);
    let weak = s.exchange(&narrow, &code, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, challenge) = refused(gateway(&s, "/gateway/demo/x", Some(&weak)));
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\", scope=\"api\""),
        "{challenge}"
    );
    // Revoked, then expired.
    assert_eq!(s.revoke(&token).status, 200);
    assert_eq!(refused(gateway(&s, "/gateway/demo/x", Some(&token))).0, 401);
    let code = s.code_for(&app, "gw.user", &[("resource", &demo)]);
    let later = s.exchange(&app, &code, None).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(matches!(
        gateway(&s, "/gateway/demo/x", Some(&later)),
        Decision::Forward { .. }
    ));
    s.clock.advance_s(7201);
    assert_eq!(refused(gateway(&s, "/gateway/demo/x", Some(&later))).0, 401);
    // RFC 9728 metadata.
    let doc = s
        .send(
            Method::Get,
            "/.well-known/oauth-protected-resource/gateway/demo",
            &[],
            "",
        )
        .json();
    assert_eq!(doc["resource"], demo.as_str());
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["scopes_supported"], json!(["api"]));
    let root = s
        .send(
            Method::Get,
            "/.well-known/oauth-protected-resource",
            &[],
            "",
        )
        .json();
    assert_eq!(root["resources"].as_array().unwrap().len(), 2);
}

const DOC_URL: &str = "https://client.example.org/oauth/client.json";

fn document(redirect: &str) -> Value {
    json!({
        "client_id": DOC_URL,
        "client_name": "Doc Client",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "scope": "api refresh_token",
    })
}

fn doc_authorize(s: &Server, redirect: &str) -> Reply {
    let (_, challenge) = pkce();
    Browser::default().get(
        s,
        &authorize_url(&[
            ("response_type", "code"),
            ("client_id", DOC_URL),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
    )
}

#[test]
fn a_metadata_document_client_logs_in_exchanges_without_a_secret_and_is_cached() {
    let s = Server::new();
    s.user("doc.user");
    let redirect = "https://client.example.org/cb";
    s.web
        .serve(DOC_URL, &document(redirect), Some("max-age=600"));
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let target = authorize_url(&[
        ("response_type", "code"),
        ("client_id", DOC_URL),
        ("redirect_uri", redirect),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", &format!("{ISSUER}/gateway/demo")),
    ]);
    let r = b.authorize_at(&s, &target, Some(("doc.user", PASSWORD)), true);
    let code = r
        .query("code")
        .unwrap_or_else(|| panic!("{} {}", r.status, r.body));
    let t = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", DOC_URL),
        ("redirect_uri", redirect),
        ("code_verifier", &verifier),
    ]);
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(s.web.fetches.borrow().len(), 1, "fetched once, then cached");
    // The consent page named where the answer goes.
    let page = Browser::default().get(&s, &target);
    assert!(
        page.body.contains("client.example.org") || page.status == 200,
        "{}",
        page.body
    );
    // Within max-age no fetch; after it, the document is fetched again.
    s.clock.advance_s(599);
    assert_eq!(doc_authorize(&s, redirect).status, 200);
    assert_eq!(s.web.fetches.borrow().len(), 1);
    s.clock.advance_s(2);
    assert_eq!(doc_authorize(&s, redirect).status, 200);
    assert_eq!(s.web.fetches.borrow().len(), 2);
    // PKCE is required of such a public client.
    let no_pkce = Browser::default().get(
        &s,
        &authorize_url(&[
            ("response_type", "code"),
            ("client_id", DOC_URL),
            ("redirect_uri", redirect),
        ]),
    );
    // A client that chose its own redirect URI hears errors before login on the error page,
    // never by a redirect there (RFC 9700 §4.11.2: no open redirector).
    assert_eq!(no_pkce.status, 400, "{}", no_pkce.body);
    assert!(no_pkce.header("location").is_none());
    assert!(
        no_pkce.body.contains("error=invalid_request"),
        "{}",
        no_pkce.body
    );
}

#[test]
fn self_registered_clients_hear_errors_before_login_on_a_page_operators_apps_by_redirect() {
    let s = Server::new();
    // An operator's app: its callback is trusted, the error is redirected there.
    let app = s.app(json!({}));
    let r = Browser::default().get(
        &s,
        &authorize_target(&app, CALLBACK, &[("scope", "not_a_scope")]),
    );
    assert_eq!(r.query("error").as_deref(), Some("invalid_scope"));
    // A client registered through RFC 7591 (with an initial access token) with a callback of
    // its own choosing.
    let t = s.admin(Method::Post, "/admin/registration-tokens", Value::Null);
    let auth = format!("Bearer {}", t.json()["token"].as_str().unwrap());
    let reg = s.send(
        Method::Post,
        "/services/oauth2/register",
        &[("content-type", "application/json"), ("authorization", &auth)],
        &json!({"redirect_uris": ["https://phish.example/cb"], "token_endpoint_auth_method": "none"})
            .to_string(),
    );
    assert_eq!(reg.status, 201, "{}", reg.body);
    let client_id = reg.json()["client_id"].as_str().unwrap().to_owned();
    let challenge = "x".repeat(43);
    let base = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", "https://phish.example/cb"),
        ("state", "s"),
    ];
    let bad: [&[(&str, &str)]; 3] = [
        &[("response_type", "code"), ("scope", "not_a_scope")],
        &[("response_type", "nonsense")],
        &[
            ("response_type", "code"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ],
    ];
    for extra in bad {
        let q: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
        let r = Browser::default().get(&s, &authorize_url(&q));
        assert_eq!(r.status, 400, "{q:?}: {}", r.body);
        assert!(r.header("location").is_none(), "{q:?} redirected");
    }
    // Silent authentication still answers by redirect (login_required).
    let q: Vec<(&str, &str)> = base
        .iter()
        .chain(
            [
                ("response_type", "code"),
                ("code_challenge", challenge.as_str()),
                ("prompt", "none"),
            ]
            .iter(),
        )
        .copied()
        .collect();
    let r = Browser::default().get(&s, &authorize_url(&q));
    assert_eq!(
        r.query("error").as_deref(),
        Some("login_required"),
        "{}",
        r.body
    );
}

#[test]
fn bad_metadata_documents_are_error_pages_and_never_cached() {
    let s = Server::new();
    let redirect = "https://client.example.org/cb";
    let page_error = |r: &Reply| {
        assert!(
            r.header("location").is_none(),
            "redirected: {:?}",
            r.header("location")
        );
        assert_eq!(r.status, 400, "{}", r.body);
        r.body.clone()
    };
    // Unreachable, then a 500, then a redirect.
    assert!(page_error(&doc_authorize(&s, redirect)).contains("unreachable"));
    s.web.answer(DOC_URL, 500, b"oops", None);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("HTTP%20500"));
    s.web.answer(DOC_URL, 302, b"", None);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("redirect"));
    // Too big, wrong client_id, a secret-based method.
    let mut big = document(redirect);
    big["padding"] = json!("x".repeat(6000));
    s.web.serve(DOC_URL, &big, None);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("too%20large"));
    let mut wrong = document(redirect);
    wrong["client_id"] = json!("https://client.example.org/other.json");
    s.web.serve(DOC_URL, &wrong, None);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("client_id"));
    let mut secret = document(redirect);
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    s.web.serve(DOC_URL, &secret, None);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("token_endpoint_auth_method"));
    // A redirect URI the document does not list: the usual mismatch page.
    s.web.serve(DOC_URL, &document(redirect), None);
    let other = doc_authorize(&s, "https://client.example.org/elsewhere");
    assert!(page_error(&other).contains("redirect_uri_mismatch"));
    // None of the failures was cached: the good document works at once.
    assert_eq!(doc_authorize(&s, redirect).status, 200);
    // Private addresses are refused before any fetch; the org's allow-list applies.
    let before = s.web.fetches.borrow().len();
    let local = Browser::default().get(
        &s,
        &authorize_url(&[
            ("response_type", "code"),
            ("client_id", "https://127.0.0.1/c.json"),
            ("redirect_uri", redirect),
        ]),
    );
    assert!(page_error(&local).contains("public"));
    assert_eq!(s.web.fetches.borrow().len(), before);
    let r = s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"client_id_metadata_document_prefixes": ["https://only.example.com/"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(page_error(&doc_authorize(&s, redirect)).contains("not%20allowed"));
}

#[test]
fn new_metadata_documents_count_against_the_address_like_open_registrations() {
    use edge_oauth::core::storage::memory::MEMORY_REGISTRATION_LIMIT;
    let s = Server::new();
    let redirect = "https://client.example.org/cb";
    let (_, challenge) = pkce();
    let try_doc = |n: u32| {
        let url = format!("https://client.example.org/c{n}.json");
        let mut doc = document(redirect);
        doc["client_id"] = json!(url);
        s.web.serve(&url, &doc, Some("max-age=600"));
        Browser::default().get(
            &s,
            &authorize_url(&[
                ("response_type", "code"),
                ("client_id", &url),
                ("redirect_uri", redirect),
                ("code_challenge", &challenge),
            ]),
        )
    };
    for n in 0..MEMORY_REGISTRATION_LIMIT {
        assert_eq!(try_doc(n).status, 200);
    }
    let r = try_doc(MEMORY_REGISTRATION_LIMIT);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.starts_with("error=rate_limit_exceeded"));
    // Known documents (cached or refetched) are not counted.
    assert_eq!(try_doc(0).status, 200);
}

#[test]
fn a_registered_client_gets_no_refresh_token_unless_it_registered_the_refresh_grant() {
    let s = Server::new();
    let token = initial_token(&s, json!({}));
    s.user("plain.user");
    let register_with = |grants: Value| {
        let r = register(
            &s,
            Some(&token),
            &json!({"redirect_uris": [CALLBACK], "grant_types": grants}),
        );
        let j = r.json();
        App {
            client_id: j["client_id"].as_str().unwrap().into(),
            secret: j["client_secret"].as_str().unwrap().into(),
        }
    };
    let code_only = register_with(json!(["authorization_code"]));
    let t = s.tokens(&code_only, "plain.user");
    assert!(t.get("refresh_token").is_none(), "{t}");
    let with_refresh = register_with(json!(["authorization_code", "refresh_token"]));
    assert!(s.tokens(&with_refresh, "plain.user")["refresh_token"].is_string());
    // Nor the device flow, unless registered.
    let r = s.post_form(
        "/services/oauth2/device",
        &[
            ("client_id", &code_only.client_id),
            ("client_secret", &code_only.secret),
        ],
    );
    assert_eq!((r.status, r.error().as_str()), (400, "unauthorized_client"));
}

#[test]
fn browser_clients_may_register_and_manage_cross_origin() {
    let s = Server::new();
    let r = s.send(
        Method::Options,
        "/services/oauth2/register/some-client",
        &[
            ("origin", "https://spa.example.org"),
            ("access-control-request-method", "PUT"),
        ],
        "",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("DELETE"));
    let meta = s.send(
        Method::Get,
        "/.well-known/oauth-protected-resource/gateway/demo",
        &[("origin", "https://spa.example.org")],
        "",
    );
    assert_eq!(meta.header("access-control-allow-origin"), Some("*"));
}
