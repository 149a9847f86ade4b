//! The hardening review's defects (docs/security.md), each pinned where the core decides it.

use std::rc::Rc;

use edge_oauth::core::http::Method;
use edge_oauth::core::keys::KeySet;
use edge_oauth::core::storage::memory::{MEMORY_CLIENT_AUTH_LIMIT, MEMORY_LOGIN_LIMIT};
use serde_json::json;

use crate::support::*;

fn rotating_app(s: &Server, grace_s: u64) -> App {
    s.app(json!({"rotate_refresh_tokens": true, "refresh_reuse_grace_s": grace_s}))
}

/// A refresh token from a code flow for alice.
fn alices_refresh_token(s: &Server, app: &App) -> String {
    s.tokens(app, "alice")["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn refresh_token(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["refresh_token"].as_str().unwrap().to_owned()
}

fn introspect(s: &Server, app: &App, token: &str) -> serde_json::Value {
    let r = s.post_form(
        "/services/oauth2/introspect",
        &[
            ("token", token),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

// 4. Introspection applies the refresh-token policy and family revocation like /token.
#[test]
fn introspection_says_a_refresh_token_is_dead_exactly_when_the_token_endpoint_would() {
    let s = Server::new();
    let app = s.app(json!({"refresh_token_policy": {"inactivity_s": 60}}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&s, &app, rt)["active"], true);
    s.clock.advance_s(61);
    assert_eq!(introspect(&s, &app, rt)["active"], false, "idle too long");
    assert_eq!(s.refresh(&app, rt).error(), "invalid_grant");

    let app = s.app(json!({"refresh_token_policy": {"lifetime_s": 60}}));
    let rt = alices_refresh_token(&s, &app);
    assert_eq!(introspect(&s, &app, &rt)["active"], true);
    s.clock.advance_s(60);
    assert_eq!(introspect(&s, &app, &rt)["active"], false, "lifetime over");

    let app = s.app(json!({}));
    let t = s.tokens(&app, "alice");
    let rt = t["refresh_token"].as_str().unwrap();
    s.admin(
        Method::Patch,
        &format!("/admin/apps/{}", app.client_id),
        json!({"refresh_token_policy": "zero"}),
    );
    assert_eq!(introspect(&s, &app, rt)["active"], false, "policy now zero");

    let app = s.app(json!({}));
    let t = s.tokens(&app, "alice");
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    s.revoke(rt);
    assert_eq!(introspect(&s, &app, rt)["active"], false);
    assert_eq!(introspect(&s, &app, at)["active"], false, "family revoked");
}

// 6. Two refreshes of one rotating token: the grace, and Salesforce's rule without it.
#[test]
fn within_the_reuse_grace_a_second_presentation_gets_its_own_pair_and_the_first_stays_valid() {
    let s = Server::new();
    let app = rotating_app(&s, 10);
    s.user("alice");
    let rt = alices_refresh_token(&s, &app);
    let first = refresh_token(&s.refresh(&app, &rt));
    s.clock.advance_ms(9_999);
    let second = refresh_token(&s.refresh(&app, &rt));
    assert_ne!(first, second);
    assert_eq!(s.refresh(&app, &first).status, 200, "first successor valid");
    assert_eq!(
        s.refresh(&app, &second).status,
        200,
        "second successor valid"
    );
    // Past the grace (counted from the rotation), reuse is a leak: the family goes.
    s.clock.advance_ms(2);
    assert_eq!(s.refresh(&app, &rt).error(), "invalid_grant");
    let r = s.refresh(&app, &first);
    assert_eq!(r.error(), "invalid_grant", "the family is revoked");
}

#[test]
fn without_grace_reuse_of_a_rotated_token_revokes_the_family() {
    let s = Server::new();
    let app = rotating_app(&s, 0);
    s.user("alice");
    let rt = alices_refresh_token(&s, &app);
    let next = refresh_token(&s.refresh(&app, &rt));
    assert_eq!(s.refresh(&app, &rt).error(), "invalid_grant");
    assert_eq!(s.refresh(&app, &next).error(), "invalid_grant");
}

#[test]
fn a_grace_use_counts_as_a_use_for_inactivity() {
    let s = Server::new();
    let app = s.app(json!({
        "rotate_refresh_tokens": true,
        "refresh_reuse_grace_s": 30,
        "refresh_token_policy": {"inactivity_s": 20},
    }));
    s.user("alice");
    let rt = alices_refresh_token(&s, &app);
    let first = refresh_token(&s.refresh(&app, &rt));
    s.clock.advance_s(15);
    refresh_token(&s.refresh(&app, &rt));
    // 25 s after the rotation, 10 s after the grace use: inside the idle window only because
    // the grace use counted.
    s.clock.advance_s(10);
    assert_eq!(s.refresh(&app, &first).status, 200);
}

// Idle time is measured to the millisecond: a use inside the window always counts.
#[test]
fn inactivity_is_measured_to_the_millisecond_at_the_boundary() {
    let s = Server::new();
    let app = s.app(json!({"refresh_token_policy": {"inactivity_s": 2}}));
    s.user("alice");
    let rt = alices_refresh_token(&s, &app);
    // The reported failure: 1.2 s after the previous use, across a whole-second boundary.
    s.clock.advance_ms(800);
    assert_eq!(s.refresh(&app, &rt).status, 200);
    s.clock.advance_ms(1_200);
    assert_eq!(s.refresh(&app, &rt).status, 200, "1.2 s idle");
    s.clock.advance_ms(2_000);
    assert_eq!(s.refresh(&app, &rt).status, 200, "exactly 2 s idle");
    s.clock.advance_ms(2_001);
    assert_eq!(
        s.refresh(&app, &rt).error(),
        "invalid_grant",
        "2.001 s idle"
    );
}

// max_age=0 is prompt=login (OIDC Core §3.1.2.1), even right after a login.
#[test]
fn max_age_zero_forces_a_fresh_login_even_in_the_same_second() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    let r = b.authorize(&s, &app, &[], Some(("alice", PASSWORD)), true);
    assert!(r.query("code").is_some());
    let again = b.get(&s, &authorize_target(&app, CALLBACK, &[("max_age", "0")]));
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("name=\"password\""),
        "login page expected"
    );
    let ten = b.get(&s, &authorize_target(&app, CALLBACK, &[("max_age", "10")]));
    assert_eq!(ten.status, 302, "a recent login satisfies max_age=10");
}

// 5. OIDC Core §3.1.2.1: the authorization endpoint supports POST.
#[test]
fn an_authorization_request_by_form_post_works_like_a_get() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.post_form(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", CALLBACK),
            ("state", "st-post"),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let h = hidden(&page.body);
    let consent = b.login(&s, &h, "alice", PASSWORD);
    let h = hidden(&consent.body);
    let r = b.post_form(
        &s,
        &[
            ("interaction", &h["interaction"]),
            ("csrf_token", &h["csrf_token"]),
            ("approve", "1"),
        ],
    );
    assert_eq!(r.query("state").as_deref(), Some("st-post"));
    let code = r.query("code").unwrap();
    assert_eq!(s.exchange(&app, &code, None).status, 200);
    // With the session and the approval, a POSTed request goes straight to a code.
    let again = b.post_form(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert!(again.query("code").is_some(), "{}", again.status);
    // An unknown client in a POSTed request is an error page, never a redirect.
    let bad = b.post_form(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", "3MVG9nope"),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.header("location").is_none());
}

#[test]
fn request_objects_are_refused_with_their_own_error_codes() {
    let s = Server::new();
    let app = s.app(json!({}));
    for (param, code) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let b = Browser::default();
        let r = b.get(
            &s,
            &authorize_target(
                &app,
                CALLBACK,
                &[(param, "eyJhbGciOiJub25lIn0.e30."), ("state", "s1")],
            ),
        );
        assert_eq!(r.status, 302);
        assert_eq!(r.query("error").as_deref(), Some(code));
        assert_eq!(r.query("state").as_deref(), Some("s1"));
    }
}

// 7. RFC 6749 §5.2: error_description holds only %x20-21 / %x23-5B / %x5D-7E.
#[test]
fn caller_text_in_error_descriptions_is_confined_to_rfc_6749s_characters() {
    let s = Server::new();
    let app = s.app(json!({}));
    let hostile = format!("api \"<x>\\ \u{e9}\n{}", "z".repeat(5000));
    let ok = |d: &str| {
        d.len() <= 256
            && d.bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
    };
    for param in ["scope", "prompt"] {
        let r = Browser::default().get(&s, &authorize_target(&app, CALLBACK, &[(param, &hostile)]));
        let d = r.query("error_description").unwrap();
        assert!(ok(&d), "{param}: {d}");
    }
    let t = s.tokens(&app, &{
        s.user("alice");
        "alice".to_string()
    });
    let r = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("scope", &hostile),
    ]);
    assert_eq!(r.error(), "invalid_scope");
    assert!(ok(r.json()["error_description"].as_str().unwrap()));
}

// 8 and 9. Userinfo: token never from the query; claims by scope.
#[test]
fn userinfo_refuses_a_token_in_the_query_and_returns_claims_by_scope() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let narrow = s.code_for(&app, "alice", &[("scope", "api refresh_token")]);
    let t = s.exchange(&app, &narrow, None).json();
    let at = t["access_token"].as_str().unwrap();
    let q = s.send(
        Method::Get,
        &format!("/services/oauth2/userinfo?access_token={at}"),
        &[],
        "",
    );
    assert_eq!((q.status, q.error().as_str()), (401, "invalid_token"));
    let body = s.send(
        Method::Post,
        "/services/oauth2/userinfo",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form(&[("access_token", at)]),
    );
    assert_eq!(body.status, 200, "RFC 6750 §2.2 form body");
    let id = s.send(
        Method::Get,
        &format!(
            "{}?oauth_token={at}",
            &t["id"].as_str().unwrap()[ISSUER.len()..]
        ),
        &[],
        "",
    );
    assert_eq!(
        id.status, 200,
        "the identity URL takes Salesforce's oauth_token"
    );

    let u = s.userinfo(at).json();
    for claim in ["sub", "user_id", "organization_id", "preferred_username"] {
        assert!(u.get(claim).is_some(), "{claim} missing: {u}");
    }
    for claim in ["email", "name", "email_verified"] {
        assert!(u.get(claim).is_none(), "{claim} without its scope: {u}");
    }
    let profile = s.code_for(&app, "alice", &[("scope", "openid profile")]);
    let u = s.userinfo(
        s.exchange(&app, &profile, None).json()["access_token"]
            .as_str()
            .unwrap(),
    );
    assert!(u.json().get("name").is_some() && u.json().get("email").is_none());
    let email = s.code_for(&app, "alice", &[("scope", "openid email")]);
    let u = s.userinfo(
        s.exchange(&app, &email, None).json()["access_token"]
            .as_str()
            .unwrap(),
    );
    assert!(u.json().get("email").is_some() && u.json().get("name").is_none());
}

// 10. RFC 9700 §2.2.2: public clients' refresh tokens rotate.
#[test]
fn an_app_that_refreshes_without_its_secret_must_rotate() {
    let s = Server::new();
    let r = s.admin(
        Method::Post,
        "/admin/apps",
        json!({"name": "P", "callback_urls": [CALLBACK], "scopes": ["api"], "secret_required_refresh": false}),
    );
    assert_eq!(r.status, 400);
    let d = r.json()["error_description"].as_str().unwrap().to_owned();
    assert!(
        d.contains("secret_required_refresh") && d.contains("rotate_refresh_tokens"),
        "{d}"
    );
    let app = s.app(json!({}));
    let path = format!("/admin/apps/{}", app.client_id);
    let r = s.admin(
        Method::Patch,
        &path,
        json!({"secret_required_refresh": false}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = s.admin(
        Method::Patch,
        &path,
        json!({"secret_required_refresh": false, "rotate_refresh_tokens": true}),
    );
    assert_eq!(r.status, 200);
    let r = s.admin(
        Method::Patch,
        &path,
        json!({"rotate_refresh_tokens": false}),
    );
    assert_eq!(r.status, 400, "would leave a public client not rotating");
}

#[test]
fn refresh_windows_and_grace_have_upper_bounds() {
    let s = Server::new();
    for (field, value) in [
        ("refresh_token_policy", json!({"lifetime_s": 0})),
        (
            "refresh_token_policy",
            json!({"lifetime_s": 315_360_001u64}),
        ),
        ("refresh_token_policy", json!({"inactivity_s": u64::MAX})),
        ("refresh_token_policy", json!({"lifetime_s": 1e20})),
        ("refresh_reuse_grace_s", json!(61)),
        ("refresh_reuse_grace_s", json!(-1)),
        ("access_token_ttl_s", json!(1_000_000_000_000u64)),
    ] {
        let r = s.admin(
            Method::Post,
            "/admin/apps",
            json!({"name": "B", "callback_urls": [CALLBACK], "scopes": ["api"], field: value}),
        );
        assert_eq!(r.status, 400, "{field}: {value} → {}", r.body);
    }
    s.app(json!({"refresh_token_policy": {"lifetime_s": 315_360_000u64}, "refresh_reuse_grace_s": 60}));
}

// A password change or deactivation ends sessions and token families; reactivating revives
// nothing.
#[test]
fn a_password_change_or_deactivation_ends_sessions_and_families() {
    for patch in [
        json!({"password": "a brand new password"}),
        json!({"active": false}),
    ] {
        let s = Server::new();
        let app = s.app(json!({}));
        let alice = s.user("alice");
        let mut b = Browser::default();
        let code = b
            .authorize(&s, &app, &[], Some(("alice", PASSWORD)), true)
            .query("code")
            .unwrap();
        let t = s.exchange(&app, &code, None).json();
        let pending = b
            .authorize(&s, &app, &[], None, true)
            .query("code")
            .unwrap();
        s.clock.advance_ms(1);
        let r = s.admin(
            Method::Patch,
            &format!("/admin/users/{alice}"),
            patch.clone(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        s.admin(
            Method::Patch,
            &format!("/admin/users/{alice}"),
            json!({"active": true}),
        );
        let silent = b.get(&s, &authorize_target(&app, CALLBACK, &[("prompt", "none")]));
        assert_eq!(
            silent.query("error").as_deref(),
            Some("login_required"),
            "{patch}"
        );
        assert_eq!(
            s.refresh(&app, t["refresh_token"].as_str().unwrap())
                .error(),
            "invalid_grant"
        );
        assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 401);
        assert_eq!(
            s.exchange(&app, &pending, None).error(),
            "invalid_grant",
            "a code from the old session is dead too"
        );
    }
}

// 2. Only failed client authentications count, keyed by client and caller address.
#[test]
fn wrong_secrets_from_one_address_throttle_that_address_only() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let at = t["access_token"].as_str().unwrap();
    let call = |secret: &str, ip: &str| {
        s.send(
            Method::Post,
            "/services/oauth2/introspect",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cf-connecting-ip", ip),
            ],
            &form(&[
                ("token", at),
                ("client_id", &app.client_id),
                ("client_secret", secret),
            ]),
        )
    };
    for _ in 0..MEMORY_CLIENT_AUTH_LIMIT {
        assert_eq!(call("wrong", "203.0.113.10").status, 401);
    }
    let r = call("wrong", "203.0.113.10");
    assert_eq!((r.status, r.error().as_str()), (429, "rate_limit_exceeded"));
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(call(&app.secret, "198.51.100.20").json()["active"], true);
    assert_eq!(
        call(&app.secret, "203.0.113.10").status,
        200,
        "right secrets never count"
    );
    for _ in 0..MEMORY_CLIENT_AUTH_LIMIT + 10 {
        assert_eq!(call(&app.secret, "198.51.100.21").status, 200);
    }
}

#[test]
fn a_users_login_throttle_is_per_address() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    let h = hidden(&page.body);
    let login = |password: &str, ip: &str| {
        let c = b.cookie_header();
        s.send(
            Method::Post,
            "/services/oauth2/authorize",
            &[
                ("cookie", &c),
                ("content-type", "application/x-www-form-urlencoded"),
                ("cf-connecting-ip", ip),
            ],
            &form(&[
                ("interaction", &h["interaction"]),
                ("csrf_token", &h["csrf_token"]),
                ("username", "alice"),
                ("password", password),
                ("login", "1"),
            ]),
        )
    };
    for _ in 0..MEMORY_LOGIN_LIMIT {
        assert_eq!(login("guess", "203.0.113.20").status, 401);
    }
    let throttled = login(PASSWORD, "203.0.113.20");
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("60"));
    let elsewhere = login(PASSWORD, "198.51.100.30");
    assert_eq!(
        elsewhere.status, 200,
        "alice from elsewhere is not locked out"
    );
    assert!(elsewhere.body.contains("name=\"approve\""));
}

// A broken signing key never costs a user their code.
#[test]
fn a_code_exchange_that_cannot_sign_leaves_the_code_unredeemed() {
    let mut s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[("scope", "openid api")]);
    let good = std::mem::replace(&mut s.config.keys, Rc::new(KeySet::unusable("broken")));
    let r = s.exchange(&app, &code, None);
    assert_eq!((r.status, r.error().as_str()), (500, "server_error"));
    assert_eq!(r.json()["error_description"], "signing keys unavailable");
    assert_eq!(s.store.token_count(), 0, "nothing stored");
    let jwks = s.send(Method::Get, "/id/keys", &[], "");
    assert_eq!((jwks.status, jwks.error().as_str()), (500, "server_error"));
    s.config.keys = good;
    assert_eq!(
        s.exchange(&app, &code, None).status,
        200,
        "the code still works"
    );
}
