//! Revocation (RFC 7009), introspection (RFC 7662), userinfo and the identity URL.

use edge_oauth::core::http::Method;
use serde_json::{json, Value};

use crate::support::*;

fn introspect(s: &Server, app: &App, token: &str) -> Reply {
    s.post_form(
        "/services/oauth2/introspect",
        &[
            ("token", token),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ],
    )
}

#[test]
fn revoking_a_refresh_token_kills_its_family_including_access_tokens() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let r = s.revoke(t["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200);
    assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 401);
    assert_eq!(
        s.refresh(&app, t["refresh_token"].as_str().unwrap())
            .error(),
        "invalid_grant"
    );
}

#[test]
fn revoking_an_access_token_leaves_the_refresh_token() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let r = s.send(
        Method::Get,
        &format!(
            "/services/oauth2/revoke?{}",
            form(&[("token", t["access_token"].as_str().unwrap())])
        ),
        &[],
        "",
    );
    assert_eq!(r.status, 200, "GET is accepted (Salesforce)");
    assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 401);
    assert_eq!(
        s.refresh(&app, t["refresh_token"].as_str().unwrap()).status,
        200
    );
}

#[test]
fn a_client_that_authenticates_cannot_revoke_another_clients_token() {
    let s = Server::new();
    let a = s.app(json!({}));
    let b = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&a, "alice");
    let r = s.post_form(
        "/services/oauth2/revoke",
        &[
            ("token", t["access_token"].as_str().unwrap()),
            ("client_id", &b.client_id),
            ("client_secret", &b.secret),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 200);
}

#[test]
fn introspection_shows_own_tokens_and_hides_everything_else() {
    let s = Server::new();
    let a = s.app(json!({}));
    let b = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&a, "alice");
    let j = introspect(&s, &a, t["access_token"].as_str().unwrap()).json();
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], a.client_id);
    assert_eq!(j["username"], "alice");
    assert_eq!(j["token_type"], "access_token");
    assert_eq!(j["exp"], 1_800_007_200u64);
    assert_eq!(
        introspect(&s, &a, t["refresh_token"].as_str().unwrap()).json()["token_type"],
        "refresh_token"
    );
    assert_eq!(
        introspect(&s, &b, t["access_token"].as_str().unwrap()).json(),
        json!({"active": false})
    );
    assert_eq!(
        introspect(&s, &a, "garbage").json(),
        json!({"active": false})
    );
    let unauth = s.post_form("/services/oauth2/introspect", &[("token", "x")]);
    assert_eq!(
        (unauth.status, unauth.error().as_str()),
        (401, "invalid_client")
    );
}

#[test]
fn userinfo_and_identity_url_describe_the_token_user_only() {
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    let bob = s.user("bob");
    let t = s.tokens(&app, "alice");
    let at = t["access_token"].as_str().unwrap();
    let u = s.userinfo(at).json();
    assert_eq!(u["preferred_username"], "alice");
    assert_eq!(u["sub"], t["id"]);
    let post = s.send(
        Method::Post,
        "/services/oauth2/userinfo",
        &[("authorization", &format!("Bearer {at}"))],
        "",
    );
    assert_eq!(post.status, 200);
    let id_path = t["id"]
        .as_str()
        .unwrap()
        .trim_start_matches(ISSUER)
        .to_owned();
    let id = s
        .send(
            Method::Get,
            &format!("{id_path}?format=json&oauth_token={at}"),
            &[],
            "",
        )
        .json();
    assert_eq!(id["user_id"], alice);
    assert_eq!(id["username"], "alice");
    let other = id_path.replace(&alice, &bob);
    assert_eq!(
        s.send(Method::Get, &format!("{other}?oauth_token={at}"), &[], "")
            .status,
        404
    );
    let missing = s.send(Method::Get, "/services/oauth2/userinfo", &[], "");
    assert_eq!(missing.status, 401);
    assert!(missing
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
}

#[test]
fn deactivating_a_user_revokes_their_tokens() {
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    let t = s.tokens(&app, "alice");
    assert_eq!(
        s.admin(
            Method::Delete,
            &format!("/admin/users/{alice}"),
            Value::Null
        )
        .json()["active"],
        false
    );
    assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 401);
    assert_eq!(
        s.refresh(&app, t["refresh_token"].as_str().unwrap())
            .error(),
        "invalid_grant"
    );
}

#[test]
fn cors_is_answered_for_registered_origins_only() {
    let s = Server::new();
    s.app(json!({"allowed_origins": ["https://spa.example.com"]}));
    let pre = |origin: &str| {
        s.send(
            Method::Options,
            "/services/oauth2/token",
            &[("origin", origin)],
            "",
        )
    };
    assert_eq!(
        pre("https://spa.example.com").header("access-control-allow-origin"),
        Some("https://spa.example.com")
    );
    assert_eq!(
        pre("https://evil.example.com").header("access-control-allow-origin"),
        None
    );
    let disc = s.send(
        Method::Get,
        "/.well-known/openid-configuration",
        &[("origin", "https://any.example")],
        "",
    );
    assert_eq!(disc.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn credentials_in_the_token_url_are_refused() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let r = s.post_form(
        &format!(
            "/services/oauth2/token?{}",
            form(&[("client_secret", &app.secret)])
        ),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.client_id),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(r.error(), "invalid_request");
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("client_secret"));
    // Non-secret parameters in the query are merged (Android SDK appends `device_id`, some
    // clients send `grant_type` there).
    let r = s.post_form(
        "/services/oauth2/token?grant_type=authorization_code&device_id=abc",
        &[
            ("code", &code),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
