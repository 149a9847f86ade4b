//! The admin API's rules (CONTRACT §4), natively.

use edge_oauth::core::http::Method;
use serde_json::{json, Value};

use crate::support::*;

#[test]
fn wrong_or_missing_admin_token_is_401() {
    let s = Server::new();
    let none = s.send(Method::Get, "/admin/apps", &[], "");
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").is_some());
    let wrong = s.send(
        Method::Get,
        "/admin/apps",
        &[("authorization", "Bearer nope")],
        "",
    );
    assert_eq!(wrong.status, 401);
}

#[test]
fn unknown_fields_are_named_and_nothing_is_written() {
    let s = Server::new();
    let r = s.admin(
        Method::Post,
        "/admin/apps",
        json!({"name": "x", "callback_urls": [], "scopes": ["api"], "colour": 1, "size": 2}),
    );
    assert_eq!(r.status, 400);
    let msg = r.json()["error_description"].as_str().unwrap().to_owned();
    assert!(msg.contains("colour") && msg.contains("size"), "{msg}");
    assert_eq!(
        s.admin(Method::Get, "/admin/apps", Value::Null).json()["apps"],
        json!([])
    );
}

#[test]
fn callback_urls_must_be_absolute_without_fragment() {
    let s = Server::new();
    for bad in [
        "/cb",
        "https://a.example/cb#x",
        "http://a.example/cb",
        "javascript:alert(1)",
    ] {
        let r = s.admin(
            Method::Post,
            "/admin/apps",
            json!({"name": "x", "callback_urls": [bad], "scopes": ["api"]}),
        );
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains(bad));
    }
}

#[test]
fn patch_is_a_merge_and_is_validated_as_a_whole() {
    let s = Server::new();
    let app = s.app(json!({}));
    let path = format!("/admin/apps/{}", app.client_id);
    let r = s.admin(
        Method::Patch,
        &path,
        json!({"pkce_required": true, "refresh_token_policy": {"inactivity_s": 60}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let bad = s.admin(
        Method::Patch,
        &path,
        json!({"callback_urls": ["nope"], "name": "renamed"}),
    );
    assert_eq!(bad.status, 400);
    let now = s.admin(Method::Get, &path, Value::Null).json();
    assert_eq!(now["name"], "Test App", "rejected patch wrote nothing");
    assert_eq!(now["pkce_required"], true);
    assert_eq!(now["refresh_token_policy"], json!({"inactivity_s": 60}));
    assert!(now.get("client_secret").is_none(), "secret shown once only");
}

#[test]
fn rotating_the_secret_invalidates_the_old_one() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let r = s.admin(
        Method::Post,
        &format!("/admin/apps/{}/secret", app.client_id),
        Value::Null,
    );
    let new_secret = r.json()["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, app.secret);
    let code = s.code_for(&app, "alice", &[]);
    assert_eq!(s.exchange(&app, &code, None).status, 401);
    let rotated = App {
        client_id: app.client_id.clone(),
        secret: new_secret,
    };
    assert_eq!(s.exchange(&rotated, &code, None).status, 200);
}

#[test]
fn duplicate_usernames_and_weak_passwords_are_refused() {
    let s = Server::new();
    s.user("alice");
    let dup = s.admin(
        Method::Post,
        "/admin/users",
        json!({"username": "alice", "password": PASSWORD, "email": "a@example.com", "name": "A"}),
    );
    assert_eq!(dup.status, 400);
    assert!(dup.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("alice"));
    let weak = s.admin(
        Method::Post,
        "/admin/users",
        json!({"username": "bob", "password": "short", "email": "b@example.com", "name": "B"}),
    );
    assert_eq!(weak.status, 400);
    assert_eq!(
        s.admin(Method::Get, "/admin/users", Value::Null).json()["users"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn settings_start_at_contract_defaults() {
    let s = Server::new();
    let j = s.admin(Method::Get, "/admin/settings", Value::Null).json();
    assert!(j["org_id"].as_str().unwrap().starts_with("00D"));
    assert_eq!(j["allow_username_password_flow"], false);
    assert_eq!(j["allow_user_agent_flow"], true);
    assert_eq!(j["allow_code_credentials_flow"], false);
    assert_eq!(j["require_pkce"], false);
    assert_eq!(
        s.admin(Method::Patch, "/admin/settings", json!({"org_id": "x"}))
            .status,
        400
    );
}

#[test]
fn usernames_are_case_insensitive_for_uniqueness_and_login() {
    let s = Server::new();
    s.user("Ada@Example.com");
    let dup = s.admin(Method::Post, "/admin/users", json!({"username": "ada@example.COM", "password": PASSWORD, "email": "a@example.com", "name": "A"}));
    assert_eq!(dup.status, 400);
    let app = s.app(json!({}));
    let code = s.code_for(&app, "ADA@example.com", &[]);
    assert_eq!(s.exchange(&app, &code, None).status, 200);
}

#[test]
fn an_app_may_be_created_with_a_chosen_client_id_once() {
    let s = Server::new();
    let body = |id: Value| json!({"client_id": id, "name": "SPA", "callback_urls": ["http://127.0.0.1/"], "scopes": ["openid"]});
    let r = s.admin(Method::Post, "/admin/apps", body(json!("edge-oauth-demo")));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["client_id"], "edge-oauth-demo");
    let read = s.admin(Method::Get, "/admin/apps/edge-oauth-demo", Value::Null);
    assert_eq!(read.json()["name"], "SPA");
    let again = s.admin(Method::Post, "/admin/apps", body(json!("edge-oauth-demo")));
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["error"], "conflict");
    for bad in [
        json!(""),
        json!("has space"),
        json!("https://x.example/doc"),
        json!(7),
        json!("a".repeat(256)),
    ] {
        let r = s.admin(Method::Post, "/admin/apps", body(bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // The id cannot be changed afterwards.
    let patch = s.admin(
        Method::Patch,
        "/admin/apps/edge-oauth-demo",
        json!({"client_id": "other"}),
    );
    assert_eq!(patch.status, 400, "{}", patch.body);
    assert_eq!(
        s.admin(Method::Get, "/admin/apps", Value::Null).json()["apps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
