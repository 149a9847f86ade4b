//! One test per attack on the code flow (RFC 9700 §4, RFC 6749 §10).

use edge_oauth::core::http::Method;
use serde_json::json;

use crate::support::*;

#[test]
fn code_replay_fails_and_revokes_everything_issued_from_the_code() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let first = s.exchange(&app, &code, None).json();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(s.userinfo(access).status, 200);
    let replay = s.exchange(&app, &code, None);
    assert_eq!(
        (replay.status, replay.error().as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(
        s.userinfo(access).status,
        401,
        "access token from the code must be revoked"
    );
    assert_eq!(
        s.refresh(&app, refresh).error(),
        "invalid_grant",
        "refresh token too"
    );
}

#[test]
fn code_issued_to_one_client_fails_for_another_and_stays_usable() {
    let s = Server::new();
    let a = s.app(json!({}));
    let b = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&a, "alice", &[]);
    let r = s.exchange(&b, &code, None);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_grant"));
    assert_eq!(
        s.exchange(&a, &code, None).status,
        200,
        "the attempt must not burn the code"
    );
}

#[test]
fn wrong_redirect_uri_at_the_token_endpoint_is_redirect_uri_mismatch() {
    let s = Server::new();
    let app = s.app(json!({"callback_urls": [CALLBACK, "https://app.example.com/other"]}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    for wrong in [Some("https://app.example.com/other"), None] {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.as_str()),
        ];
        if let Some(w) = wrong {
            f.push(("redirect_uri", w));
        }
        let r = s.token(&f);
        assert_eq!(r.error(), "redirect_uri_mismatch");
        assert_eq!(
            r.json()["error_description"],
            "redirect_uri must match configuration"
        );
    }
}

#[test]
fn expired_code_is_refused() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    s.clock.advance_s(15 * 60);
    let r = s.exchange(&app, &code, None);
    assert_eq!(r.error(), "invalid_grant");
    assert_eq!(r.json()["error_description"], "expired authorization code");
}

#[test]
fn code_just_inside_its_lifetime_works() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    s.clock.advance_s(15 * 60 - 1);
    assert_eq!(s.exchange(&app, &code, None).status, 200);
}

#[test]
fn pkce_mismatch_missing_verifier_and_verifier_without_challenge_fail() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let (verifier, challenge) = pkce();
    let (other, _) = pkce();
    let code = s.code_for(&app, "alice", &[("code_challenge", &challenge)]);
    assert_eq!(
        s.exchange(&app, &code, Some(&other)).error(),
        "invalid_grant"
    );
    assert_eq!(s.exchange(&app, &code, None).error(), "invalid_grant");
    assert_eq!(s.exchange(&app, &code, Some(&verifier)).status, 200);
    let code = s.code_for(&app, "alice", &[]);
    assert_eq!(
        s.exchange(&app, &code, Some(&verifier)).error(),
        "invalid_grant",
        "downgrade: no challenge was bound"
    );
}

#[test]
fn plain_pkce_method_is_refused_at_authorize() {
    let s = Server::new();
    let app = s.app(json!({}));
    let b = Browser::default();
    let r = b.get(
        &s,
        &authorize_target(
            &app,
            CALLBACK,
            &[
                ("code_challenge", "x".repeat(43).as_str()),
                ("code_challenge_method", "plain"),
                ("state", "s"),
            ],
        ),
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
    assert_eq!(r.query("state").as_deref(), Some("s"));
}

#[test]
fn pkce_required_by_app_or_org_refuses_requests_without_challenge() {
    let s = Server::new();
    let app = s.app(json!({"pkce_required": true}));
    let b = Browser::default();
    let r = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
    let plain = s.app(json!({}));
    assert_eq!(
        s.admin(
            Method::Patch,
            "/admin/settings",
            json!({"require_pkce": true})
        )
        .status,
        200
    );
    let r = b.get(&s, &authorize_target(&plain, CALLBACK, &[]));
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
}

#[test]
fn pkce_switched_on_after_the_code_was_issued_still_applies_at_the_token_endpoint() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"require_pkce": true}),
    );
    assert_eq!(s.exchange(&app, &code, None).error(), "invalid_grant");
}

#[test]
fn prompt_none_without_session_is_login_required_and_without_approval_consent_required() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    let r = b.get(
        &s,
        &authorize_target(&app, CALLBACK, &[("prompt", "none"), ("state", "s1")]),
    );
    assert_eq!(r.query("error").as_deref(), Some("login_required"));
    assert_eq!(r.query("state").as_deref(), Some("s1"));
    // Log in and deny, so a session exists but no approval.
    b.authorize(&s, &app, &[], Some(("alice", PASSWORD)), false);
    let r = b.get(&s, &authorize_target(&app, CALLBACK, &[("prompt", "none")]));
    assert_eq!(r.query("error").as_deref(), Some("consent_required"));
}

#[test]
fn login_and_consent_posts_without_valid_csrf_are_refused() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    let h = hidden(&page.body);
    let creds = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("login", "1"),
    ];
    let attempt = |fields: &[(&str, &str)], browser: &Browser| {
        let mut f = fields.to_vec();
        f.extend_from_slice(&creds);
        let r = browser.post_form(&s, &f);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.header("location").is_none());
        assert!(!r
            .headers
            .iter()
            .any(|(k, v)| k == "set-cookie" && v.starts_with(&format!("{SID}="))));
    };
    attempt(&[("interaction", &h["interaction"])], &b);
    attempt(
        &[
            ("interaction", &h["interaction"]),
            ("csrf_token", "forged-token-forged-token-forged-token-xxx"),
        ],
        &b,
    );
    // The right token from another browser (no browser cookie bound to it).
    attempt(
        &[
            ("interaction", &h["interaction"]),
            ("csrf_token", &h["csrf_token"]),
        ],
        &Browser::default(),
    );
    // Consent: log in properly, then tamper with the consent form.
    let mut f = vec![
        ("interaction", h["interaction"].as_str()),
        ("csrf_token", h["csrf_token"].as_str()),
    ];
    f.extend_from_slice(&creds);
    let consent = b.post_form(&s, &f);
    assert!(consent.body.contains("name=\"approve\""));
    let h2 = hidden(&consent.body);
    for fields in [
        vec![
            ("interaction", h2["interaction"].as_str()),
            ("approve", "1"),
        ],
        vec![
            ("interaction", h2["interaction"].as_str()),
            ("csrf_token", h["csrf_token"].as_str()),
            ("approve", "1"),
        ],
    ] {
        let r = b.post_form(&s, &fields);
        assert_eq!(r.status, 400);
        assert!(r.header("location").is_none());
    }
}

#[test]
fn redirect_uri_variants_are_refused_with_an_error_page_never_a_redirect() {
    let s = Server::new();
    let app = s.app(json!({}));
    let b = Browser::default();
    for evil in [
        "https://app.example.com/cb/extra",
        "https://app.example.com/cb?next=https://evil.example",
        "https://app.example.com/cb#frag",
        "https://app.example.com:8443/cb",
        "https://APP.example.com/cb",
        "https://app.example.com/CB",
        "https://app.example.com/cb/",
        "https://evil.example/cb",
    ] {
        let r = b.get(&s, &authorize_target(&app, evil, &[("state", "s")]));
        assert_eq!(r.status, 400, "{evil}");
        assert!(r.header("location").is_none(), "{evil} redirected");
        assert_eq!(r.body, "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration");
    }
    let r = b.get(&s, "/services/oauth2/authorize?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2F");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            "error=invalid_client_id&error_description=client%20identifier%20invalid"
        )
    );
    let r = b.get(
        &s,
        &format!(
            "/services/oauth2/authorize?response_type=code&client_id={}",
            app.client_id
        ),
    );
    assert!(r.body.starts_with("error=redirect_uri_missing"));
}

#[test]
fn redirectable_errors_carry_state_and_iss() {
    let s = Server::new();
    let app = s.app(json!({}));
    let b = Browser::default();
    let r = b.get(
        &s,
        &authorize_target(
            &app,
            CALLBACK,
            &[("response_type", "token"), ("state", "s")],
        ),
    );
    assert_eq!(
        r.query("error").as_deref(),
        Some("invalid_request"),
        "duplicate response_type"
    );
    assert_eq!(
        r.query("error_description").as_deref(),
        Some("duplicate parameter: response_type")
    );
    let target = format!(
        "/services/oauth2/authorize?{}",
        form(&[
            ("response_type", "bogus"),
            ("client_id", &app.client_id),
            ("redirect_uri", CALLBACK),
            ("state", "s")
        ])
    );
    let r = b.get(&s, &target);
    assert_eq!(
        r.query("error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(r.query("iss").as_deref(), Some(ISSUER));
    let r = b.get(
        &s,
        &authorize_target(&app, CALLBACK, &[("scope", "api full"), ("state", "s")]),
    );
    assert_eq!(r.query("error").as_deref(), Some("invalid_scope"));
}

#[test]
fn password_guessing_is_throttled_per_username_before_any_hashing() {
    use edge_oauth::core::storage::memory::MEMORY_LOGIN_LIMIT;
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    let h = hidden(&page.body);
    let attempt = |password: &str| b.login(&s, &h, "Alice", password);
    for _ in 0..MEMORY_LOGIN_LIMIT {
        assert_eq!(attempt("guess-guess").status, 401);
    }
    let r = attempt(PASSWORD);
    assert_eq!(
        r.status, 429,
        "the right password is refused too once throttled"
    );
    assert!(r.body.contains("Too many attempts"));
    assert!(!b.cookies.borrow().contains_key(SID));
}

/// A browser (Accept: text/html) gets the styled page with the same line as its text; any
/// other caller the plain line. Neither redirects, and the page escapes what it shows.
#[test]
fn the_error_page_is_html_for_browsers_with_the_same_line() {
    let s = Server::new();
    let target = "/services/oauth2/authorize?response_type=code&client_id=nope%3Cscript%3E&redirect_uri=https%3A%2F%2Fevil.example%2F";
    let plain = s.send(Method::Get, target, &[("accept", "*/*")], "");
    assert_eq!(plain.status, 400);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    let line = "error=invalid_client_id&error_description=client%20identifier%20invalid";
    assert_eq!(plain.body, line);
    let html = s.send(
        Method::Get,
        target,
        &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        "",
    );
    assert_eq!(html.status, 400);
    assert!(html.header("location").is_none());
    assert_eq!(html.header("content-type"), Some("text/html;charset=UTF-8"));
    assert!(
        html.body.contains(&format!(
            r#"<code id="error-line">{}</code>"#,
            line.replace('&', "&amp;")
        )),
        "{}",
        html.body
    );
    assert!(html.body.contains("client identifier invalid."));
    assert!(html.body.contains(r#"href="/static/edge-oauth.css""#));
    let csp = html.header("content-security-policy").unwrap();
    assert!(
        csp.contains("style-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(html.header("cache-control"), Some("no-store"));
    // JSON answers (the token endpoint's errors) are never turned into pages.
    let token = s.send(
        Method::Post,
        "/services/oauth2/token",
        &[
            ("accept", "text/html"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=nope",
    );
    assert_eq!(
        token.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
}
