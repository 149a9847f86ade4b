//! The refresh token grant (RFC 6749 §6; salesforce-reference.md §3).

use edge_oauth::core::http::Method;
use serde_json::json;

use crate::support::*;

#[test]
fn refresh_issues_a_new_access_token_and_id_token_without_nonce() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    s.clock.advance_s(60);
    let r = s.refresh(&app, t["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    assert_ne!(j["access_token"], t["access_token"]);
    assert!(j.get("refresh_token").is_none(), "no rotation by default");
    assert_eq!(s.userinfo(j["access_token"].as_str().unwrap()).status, 200);
    let c = jwt_claims(j["id_token"].as_str().unwrap());
    assert!(c.get("nonce").is_none());
    assert_eq!(
        c["auth_time"], 1_800_000_000u64,
        "auth_time is the original login"
    );
}

#[test]
fn refresh_token_of_one_client_is_useless_to_another() {
    let s = Server::new();
    let a = s.app(json!({}));
    let b = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&a, "alice");
    let r = s.refresh(&b, t["refresh_token"].as_str().unwrap());
    assert_eq!(r.error(), "invalid_grant");
    assert_eq!(
        r.json()["error_description"],
        "expired access/refresh token"
    );
    assert_eq!(
        s.refresh(&a, t["refresh_token"].as_str().unwrap()).status,
        200
    );
}

#[test]
fn rotation_issues_a_new_refresh_token_and_reuse_revokes_the_family() {
    let s = Server::new();
    let app = s.app(json!({"rotate_refresh_tokens": true}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let r1 = s.refresh(&app, t["refresh_token"].as_str().unwrap()).json();
    let newest = r1["refresh_token"]
        .as_str()
        .expect("rotated refresh token")
        .to_owned();
    assert_ne!(newest, t["refresh_token"].as_str().unwrap());
    // The old one again: reuse → invalid_grant, and the family is gone.
    let reuse = s.refresh(&app, t["refresh_token"].as_str().unwrap());
    assert_eq!(reuse.error(), "invalid_grant");
    assert_eq!(
        s.refresh(&app, &newest).error(),
        "invalid_grant",
        "newest token revoked with its family"
    );
    assert_eq!(s.userinfo(r1["access_token"].as_str().unwrap()).status, 401);
}

#[test]
fn scope_can_narrow_but_not_widen() {
    let s = Server::new();
    let app = s.app(json!({"scopes": ["api", "refresh_token", "openid", "web"]}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[("scope", "api refresh_token")]);
    let t = s.exchange(&app, &code, None).json();
    let rt = t["refresh_token"].as_str().unwrap();
    let wide = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("scope", "api web"),
    ]);
    assert_eq!(wide.error(), "invalid_scope");
    let narrow = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("scope", "api"),
    ]);
    assert_eq!(narrow.status, 200);
    assert_eq!(narrow.json()["scope"], "api");
}

#[test]
fn lifetime_policy_expires_refresh_tokens_from_issue() {
    let s = Server::new();
    let app = s.app(json!({"refresh_token_policy": {"lifetime_s": 3600}}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let rt = t["refresh_token"].as_str().unwrap();
    s.clock.advance_s(1800);
    assert_eq!(s.refresh(&app, rt).status, 200);
    s.clock.advance_s(1800);
    assert_eq!(s.refresh(&app, rt).error(), "invalid_grant");
}

#[test]
fn inactivity_policy_slides_with_each_use() {
    let s = Server::new();
    let app = s.app(json!({"refresh_token_policy": {"inactivity_s": 3600}}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let rt = t["refresh_token"].as_str().unwrap();
    for _ in 0..3 {
        s.clock.advance_s(3000);
        assert_eq!(
            s.refresh(&app, rt).status,
            200,
            "each use resets the window"
        );
    }
    s.clock.advance_s(3601);
    assert_eq!(s.refresh(&app, rt).error(), "invalid_grant");
}

#[test]
fn changing_the_policy_to_zero_stops_existing_refresh_tokens() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let p = s.admin(
        Method::Patch,
        &format!("/admin/apps/{}", app.client_id),
        json!({"refresh_token_policy": "zero"}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        s.refresh(&app, t["refresh_token"].as_str().unwrap())
            .error(),
        "invalid_grant"
    );
}

#[test]
fn secret_is_required_for_refresh_unless_the_app_waives_it_but_a_wrong_one_always_fails() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let rt = t["refresh_token"].as_str().unwrap();
    let no_secret = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", &app.client_id),
    ]);
    assert_eq!(no_secret.status, 401);
    // A public client for refresh must rotate (RFC 9700 §2.2.2).
    let r = s.admin(
        Method::Patch,
        &format!("/admin/apps/{}", app.client_id),
        json!({"secret_required_refresh": false, "rotate_refresh_tokens": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let no_secret = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", &app.client_id),
    ]);
    assert_eq!(no_secret.status, 200, "{}", no_secret.body);
    let rt = no_secret.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt),
        ("client_id", &app.client_id),
        ("client_secret", "nope"),
    ]);
    assert_eq!(
        (wrong.status, wrong.error().as_str()),
        (401, "invalid_client")
    );
}

#[test]
fn access_tokens_expire_after_the_app_ttl() {
    let s = Server::new();
    let app = s.app(json!({"access_token_ttl_s": 600}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let at = t["access_token"].as_str().unwrap();
    s.clock.advance_s(599);
    assert_eq!(s.userinfo(at).status, 200);
    s.clock.advance_s(1);
    assert_eq!(s.userinfo(at).status, 401);
}
