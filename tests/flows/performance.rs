//! The performance issue: validation from edge-local state: access tokens are validated from
//! the copy written when they were issued; D1 is asked only for young tokens whose copy may not
//! have arrived; revocations and user changes reach the copies.

use edge_oauth::core::http::Method;
use edge_oauth::core::oauth::stamp::YOUNG_S;
use serde_json::json;

use crate::support::*;

fn introspect(s: &Server, app: &App, token: &str) -> serde_json::Value {
    s.post_form(
        "/services/oauth2/introspect",
        &[
            ("token", token),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ],
    )
    .json()
}

#[test]
fn userinfo_and_introspection_answer_from_the_copy_without_reading_token_records() {
    for jwt in [false, true] {
        let s = Server::new();
        let app = s.app(json!({ "jwt_access_tokens": jwt }));
        s.user("alice");
        let t = s.tokens(&app, "alice");
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(s.store.access_copy_count(), 1);
        let reads = s.store.token_reads();
        let r = s.userinfo(at);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["preferred_username"], "alice");
        let i = introspect(&s, &app, at);
        assert_eq!(i["active"], true, "{i}");
        assert_eq!(i["username"], "alice");
        assert_eq!(i["token_type"], "access_token");
        assert_eq!(s.store.token_reads(), reads, "no token record was read");
    }
}

#[test]
fn a_young_token_without_a_copy_is_looked_up_and_an_old_one_is_not() {
    for jwt in [false, true] {
        let s = Server::new();
        let app = s.app(json!({ "jwt_access_tokens": jwt }));
        s.user("alice");
        let at = s.tokens(&app, "alice")["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        // The copy has not reached this location yet: the token is young, so D1 answers.
        s.store.lose_access_copies();
        let reads = s.store.token_reads();
        assert_eq!(s.userinfo(&at).status, 200);
        assert_eq!(s.store.token_reads(), reads + 1);
        // Past the window a missing copy means no token, and D1 is not asked.
        s.clock.advance_s(YOUNG_S + 1);
        let reads = s.store.token_reads();
        assert_eq!(s.userinfo(&at).status, 401);
        assert_eq!(introspect(&s, &app, &at)["active"], false);
        assert_eq!(
            s.store.token_reads(),
            reads,
            "an old token never reaches D1"
        );
    }
}

#[test]
fn random_and_forged_tokens_never_reach_the_token_records() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let real = s.tokens(&app, "alice")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.store.lose_access_copies();
    let (org, rest) = real.split_once('!').unwrap();
    // Same shape, another random part with the real stamp; a stamp with a fresh time but a
    // wrong MAC; random garbage; a JWT with a made-up jti.
    let swapped = format!("{org}!{}{}", "A".repeat(43), &rest[43..]);
    let mut wrong_mac = rest.to_owned();
    wrong_mac.replace_range(50..51, if &rest[50..51] == "a" { "b" } else { "a" });
    let forged_jwt = format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.{}.c2ln",
        edge_oauth::core::secret::b64url(
            json!({"jti": format!("{}{}", "J".repeat(22), &rest[43..])})
                .to_string()
                .as_bytes()
        )
    );
    let reads = s.store.token_reads();
    for token in [
        swapped,
        format!("{org}!{wrong_mac}"),
        format!("{org}!garbage"),
        forged_jwt,
    ] {
        assert_eq!(s.userinfo(&token).status, 401, "{token}");
    }
    assert_eq!(s.store.token_reads(), reads);
}

#[test]
fn revoking_drops_the_copies_so_the_access_token_dies_with_its_family() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    let at = t["access_token"].as_str().unwrap();
    let refreshed = s.refresh(&app, t["refresh_token"].as_str().unwrap()).json();
    let at2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(s.store.access_copy_count(), 2);
    assert_eq!(s.revoke(t["refresh_token"].as_str().unwrap()).status, 200);
    assert_eq!(s.store.access_copy_count(), 0);
    assert_eq!(s.userinfo(at).status, 401);
    assert_eq!(s.userinfo(at2).status, 401);
}

#[test]
fn a_profile_change_rewrites_the_copies_and_a_deactivation_drops_them() {
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    let at = s.tokens(&app, "alice")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.admin(
        Method::Patch,
        &format!("/admin/users/{alice}"),
        json!({"email": "new@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Old enough that only the copy can answer.
    s.clock.advance_s(YOUNG_S + 1);
    assert_eq!(s.userinfo(&at).json()["email"], "new@example.com");
    s.admin(
        Method::Patch,
        &format!("/admin/users/{alice}"),
        json!({"active": false}),
    );
    assert_eq!(s.store.access_copy_count(), 0);
    assert_eq!(s.userinfo(&at).status, 401);
}

#[test]
fn a_deleted_apps_tokens_stop_validating() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let at = s.tokens(&app, "alice")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.admin(
        Method::Delete,
        &format!("/admin/apps/{}", app.client_id),
        serde_json::Value::Null,
    );
    assert!(r.status < 300, "{}", r.body);
    assert_eq!(s.userinfo(&at).status, 401);
}

#[test]
fn a_code_whose_user_was_deactivated_is_used_up_without_issuing() {
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    s.clock.advance_ms(1);
    s.admin(
        Method::Patch,
        &format!("/admin/users/{alice}"),
        json!({"active": false}),
    );
    let tokens = s.store.token_count();
    let r = s.exchange(&app, &code, None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(s.store.token_count(), tokens, "nothing was issued");
    assert_eq!(s.store.access_copy_count(), 0, "the unused copy went too");
}

#[test]
fn a_password_hash_with_older_settings_is_upgraded_at_the_next_login() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use edge_oauth::core::storage::UserStore;
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 1, None).unwrap(),
    );
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let old = weak
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let mut user = futures_executor::block_on(s.store.get_user(&alice))
        .unwrap()
        .unwrap();
    user.password_hash = old.clone();
    futures_executor::block_on(s.store.update_user(&user, None)).unwrap();
    // The old hash still logs alice in, and is replaced by one with today's settings.
    s.tokens(&app, "alice");
    let upgraded = futures_executor::block_on(s.store.get_user(&alice))
        .unwrap()
        .unwrap()
        .password_hash;
    assert_ne!(upgraded, old);
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert!(!edge_oauth::core::password::needs_rehash(&upgraded));
    s.tokens(&app, "alice");
}

#[test]
fn a_failed_copy_write_never_costs_the_client_its_code_or_refresh_token() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    s.store.fail_access_copy_writes();
    // The code is redeemed and the tokens come back; the access token works through D1 while
    // it is young, and the refresh token gets a new pair.
    let t = s.tokens(&app, "alice");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(s.store.access_copy_count(), 0);
    assert_eq!(s.userinfo(at).status, 200);
    s.clock.advance_s(YOUNG_S + 1);
    assert_eq!(s.userinfo(at).status, 401, "no copy, no longer young");
    let r = s.refresh(&app, t["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.userinfo(r.json()["access_token"].as_str().unwrap())
            .status,
        200
    );
}
