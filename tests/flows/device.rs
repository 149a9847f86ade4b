//! The device flow (RFC 8628, salesforce-reference.md §8): both dialects, the verification
//! page, and every polling answer, on the mock clock.

use edge_oauth::core::env::Clock;
use edge_oauth::core::http::Method;
use edge_oauth::core::maintenance;
use edge_oauth::core::oauth::device::DEVICE_TTL_S;
use futures_executor::block_on;
use serde_json::{json, Value};

use crate::support::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Salesforce's step 1: `response_type=device_code` at the token endpoint, `client_id` alone.
fn start_salesforce(s: &Server, app: &App, scope: &str) -> Value {
    let r = s.token(&[
        ("response_type", "device_code"),
        ("client_id", &app.client_id),
        ("scope", scope),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

fn poll_salesforce(s: &Server, app: &App, device_code: &str) -> Reply {
    s.token(&[
        ("grant_type", "device"),
        ("client_id", &app.client_id),
        ("code", device_code),
    ])
}

/// `/setup/connect` in a browser: enter the code, log in, then allow or deny.
fn approve_on_page(s: &Server, user_code: &str, approve: bool) -> Reply {
    let browser = Browser::default();
    let page = browser.get(s, &format!("/setup/connect?user_code={user_code}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"user_code\""), "{}", page.body);
    let h = hidden(&page.body);
    let r = enter_code(s, &browser, &h["csrf_token"], user_code);
    assert!(
        r.body.contains("name=\"password\""),
        "login page: {}",
        r.body
    );
    let login = hidden(&r.body);
    let consent = browser.login(s, &login, "alice", PASSWORD);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains(user_code),
        "the consent page shows the code"
    );
    assert!(
        consent.body.contains("name=\"approve\""),
        "{}",
        consent.body
    );
    let h = hidden(&consent.body);
    browser.post_form(
        s,
        &[
            ("interaction", &h["interaction"]),
            ("csrf_token", &h["csrf_token"]),
            (if approve { "approve" } else { "deny" }, "1"),
        ],
    )
}

fn enter_code(s: &Server, browser: &Browser, csrf: &str, user_code: &str) -> Reply {
    let c = browser.cookie_header();
    let r = s.send(
        Method::Post,
        "/setup/connect",
        &[
            ("cookie", &c),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &form(&[
            ("csrf_token", csrf),
            ("user_code", user_code),
            ("continue", "1"),
        ]),
    );
    browser.absorb(&r);
    r
}

#[test]
fn salesforce_dialect_issues_tokens_once_after_approval() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let d = start_salesforce(&s, &app, "api refresh_token");
    let user_code = d["user_code"].as_str().unwrap();
    assert!(
        regex_like_user_code(user_code),
        "XXXX-XXXX of the alphabet: {user_code}"
    );
    assert_eq!(d["verification_uri"], format!("{ISSUER}/setup/connect"));
    assert_eq!(d["interval"], 5);
    assert_eq!(d["expires_in"], 600);
    let device_code = d["device_code"].as_str().unwrap();
    assert!(device_code.len() >= 45, "route + 256 bits");
    // Pending until the person decides; the first poll may come at once.
    let r = poll_salesforce(&s, &app, device_code);
    assert_eq!((r.status, r.error()), (400, "authorization_pending".into()));
    let done = approve_on_page(&s, user_code, true);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);
    s.clock.advance_s(5);
    let r = poll_salesforce(&s, &app, device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["scope"], "api refresh_token");
    assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).status, 200);
    // The tokens refresh like any others.
    let r = s.refresh(&app, t["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    // Exactly once.
    s.clock.advance_s(5);
    let r = poll_salesforce(&s, &app, device_code);
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);
}

fn regex_like_user_code(code: &str) -> bool {
    let (a, b) = code.split_once('-').unwrap_or(("", ""));
    a.len() == 4
        && b.len() == 4
        && format!("{a}{b}")
            .bytes()
            .all(|c| b"BCDFGHJKLMNPQRSTVWXZ".contains(&c))
}

#[test]
fn rfc_8628_dialect_authenticates_confidential_clients() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    // The RFC endpoint: an app that needs its secret must send it.
    let r = s.post_form(
        "/services/oauth2/device",
        &[("client_id", &app.client_id), ("scope", "api")],
    );
    assert_eq!((r.status, r.error()), (401, "invalid_client".into()));
    let r = s.post_form(
        "/services/oauth2/device",
        &[
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
            ("scope", "api openid"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    let complete = d["verification_uri_complete"].as_str().unwrap();
    assert!(complete.ends_with(&format!("?user_code={}", d["user_code"].as_str().unwrap())));
    approve_on_page(&s, d["user_code"].as_str().unwrap(), true);
    let r = s.token(&[
        ("grant_type", DEVICE_GRANT),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("device_code", d["device_code"].as_str().unwrap()),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["id_token"].is_string());
    assert!(r.json()["signature"].is_null() || r.json()["signature"].is_string());
}

#[test]
fn every_polling_answer() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    // Another client's poll of a pending code: invalid_grant, and it does not count as the
    // owner's poll (no slow_down for the owner).
    let other = s.app(json!({}));
    let d = start_salesforce(&s, &app, "api");
    let code = d["device_code"].as_str().unwrap();
    assert_eq!(poll_salesforce(&s, &other, code).error(), "invalid_grant");
    assert_eq!(
        poll_salesforce(&s, &app, code).error(),
        "authorization_pending"
    );
    // slow_down: two polls closer than the interval; each one adds 5 s.
    let d = start_salesforce(&s, &app, "api");
    let code = d["device_code"].as_str().unwrap();
    assert_eq!(
        poll_salesforce(&s, &app, code).error(),
        "authorization_pending"
    );
    s.clock.advance_s(2);
    assert_eq!(poll_salesforce(&s, &app, code).error(), "slow_down");
    s.clock.advance_s(6);
    assert_eq!(
        poll_salesforce(&s, &app, code).error(),
        "slow_down",
        "the interval is 10 s now"
    );
    s.clock.advance_s(15);
    assert_eq!(
        poll_salesforce(&s, &app, code).error(),
        "authorization_pending"
    );
    // access_denied after the person denies.
    let done = approve_on_page(&s, d["user_code"].as_str().unwrap(), false);
    assert!(done.body.contains("Access denied"), "{}", done.body);
    s.clock.advance_s(15);
    assert_eq!(poll_salesforce(&s, &app, code).error(), "access_denied");
    // expired_token after 10 minutes.
    let d = start_salesforce(&s, &app, "api");
    s.clock.advance_s(601);
    let r = poll_salesforce(&s, &app, d["device_code"].as_str().unwrap());
    assert_eq!(r.error(), "expired_token", "{}", r.body);
    // An expired code can no longer be entered.
    let browser = Browser::default();
    let page = browser.get(&s, "/setup/connect");
    let r = enter_code(
        &s,
        &browser,
        &hidden(&page.body)["csrf_token"],
        d["user_code"].as_str().unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Unknown device code; another client's code.
    assert_eq!(
        poll_salesforce(&s, &app, "00nosuchcode").error(),
        "invalid_grant"
    );
    let d = start_salesforce(&s, &app, "api");
    approve_on_page(&s, d["user_code"].as_str().unwrap(), true);
    let r = poll_salesforce(&s, &other, d["device_code"].as_str().unwrap());
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);
}

#[test]
fn apps_may_switch_the_device_flow_off() {
    let s = Server::new();
    let app = s.app(json!({"device_flow": false}));
    let r = s.token(&[
        ("response_type", "device_code"),
        ("client_id", &app.client_id),
    ]);
    assert_eq!(r.error(), "unauthorized_client", "{}", r.body);
}

#[test]
fn the_code_page_needs_its_csrf_token_and_throttles_guessing() {
    let s = Server::new();
    let app = s.app(json!({}));
    let d = start_salesforce(&s, &app, "api");
    let browser = Browser::default();
    let page = browser.get(&s, "/setup/connect");
    let csrf = hidden(&page.body)["csrf_token"].clone();
    // Without the browser's cookie, or with another token: refused.
    let r = s.post_form(
        "/setup/connect",
        &[("csrf_token", &csrf), ("user_code", "BCDF-GHJK")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(enter_code(&s, &browser, "forged", "BCDF-GHJK").status, 400);
    // Ten codes a minute from one address, then 429 — even for the right code.
    for i in 0..10 {
        let r = enter_code(
            &s,
            &browser,
            &csrf,
            &format!("BCDF-GH{}", ["JK", "KJ", "LM"][i % 3]),
        );
        assert_eq!(r.status, 400, "wrong code {i}: {}", r.body);
    }
    let r = enter_code(&s, &browser, &csrf, d["user_code"].as_str().unwrap());
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(r.body.contains("Too many codes"), "{}", r.body);
}

#[test]
fn the_cleanup_removes_device_codes_a_lifetime_after_they_expired() {
    let s = Server::new();
    let app = s.app(json!({}));
    let started = start_salesforce(&s, &app, "api");
    let code = started["device_code"].as_str().unwrap().to_owned();
    // Expired, but kept a while so that a late poll hears `expired_token`.
    s.clock.advance_s(DEVICE_TTL_S + 1);
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 90 * 86_400)).unwrap();
    assert_eq!(p.device_codes, 0);
    assert_eq!(
        poll_salesforce(&s, &app, &code).json()["error"],
        "expired_token"
    );
    s.clock.advance_s(DEVICE_TTL_S);
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 90 * 86_400)).unwrap();
    assert_eq!(p.device_codes, 1);
    assert_ne!(poll_salesforce(&s, &app, &code).status, 200);
}
