//! The web server flow's MUSTs (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1).

use edge_oauth::core::http::Method;
use serde_json::{json, Value};

use crate::support::*;

#[test]
fn full_flow_issues_salesforce_shaped_tokens_and_a_valid_id_token() {
    let s = Server::new();
    let app = s.app(json!({}));
    let user_id = s.user("alice");
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let r = b.authorize(
        &s,
        &app,
        &[
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
        ],
        Some(("alice", PASSWORD)),
        true,
    );
    assert_eq!(b.pages, ["login", "consent"]);
    assert_eq!(r.status, 303, "RFC 9700 §4.12: 303 after the consent POST");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert!(r
        .header("location")
        .unwrap()
        .starts_with(&format!("{CALLBACK}?code=")));
    assert_eq!(r.query("state").as_deref(), Some("st-1"));
    assert_eq!(r.query("iss").as_deref(), Some(ISSUER), "RFC 9207 iss");
    let code = r.query("code").unwrap();
    assert!(code.len() >= 43, "code must carry at least 128 bits");

    let t = s.exchange(&app, &code, Some(&verifier));
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let j = t.json();
    let org = s.admin(Method::Get, "/admin/settings", Value::Null).json()["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let access = j["access_token"].as_str().unwrap();
    assert!(access.starts_with(&format!("{org}!")), "{access}");
    assert!(access[org.len() + 1..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.'));
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["instance_url"], ISSUER);
    let id_url = format!("{ISSUER}/id/{org}/{user_id}");
    assert_eq!(j["id"], id_url);
    assert_eq!(j["scope"], "api refresh_token openid profile email");
    assert!(j["refresh_token"].as_str().unwrap().len() >= 43);
    let issued_at = j["issued_at"].as_str().expect("issued_at is a string");
    assert_eq!(issued_at, "1800000000000", "milliseconds");
    let expected_sig = edge_oauth::core::secret::salesforce_signature(
        &edge_oauth::core::secret::Secret::new(app.secret.as_str()),
        &id_url,
        issued_at,
    );
    assert_eq!(j["signature"], expected_sig);
    assert_eq!(j["expires_in"], 7200);

    let c = jwt_claims(j["id_token"].as_str().unwrap());
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["sub"], id_url);
    assert_eq!(c["aud"], app.client_id);
    assert_eq!(c["azp"], app.client_id);
    assert_eq!(c["nonce"], "n-1");
    assert_eq!(c["iat"], 1_800_000_000u64);
    assert_eq!(c["exp"], 1_800_000_120u64, "Salesforce's 2-minute default");
    assert_eq!(c["auth_time"], 1_800_000_000u64);
    let digest = edge_oauth::core::secret::sha256(access.as_bytes());
    assert_eq!(
        c["at_hash"],
        edge_oauth::core::secret::b64url(&digest[..16])
    );
    assert_eq!(c["preferred_username"], "alice");
}

#[test]
fn urlencoded_format_and_accept_header_change_the_response_encoding() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("redirect_uri", CALLBACK),
        ("format", "urlencoded"),
    ]);
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    assert!(r.body.contains("access_token=") && r.body.contains("token_type=Bearer"));
    let err = s.send(
        Method::Post,
        "/services/oauth2/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/x-www-form-urlencoded"),
        ],
        "grant_type=bogus",
    );
    assert_eq!(
        err.body,
        "error=unsupported_grant_type&error_description=grant+type+not+supported"
    );
}

#[test]
fn client_secret_basic_authenticates() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.client_id, app.secret));
    let r = s.send(
        Method::Post,
        "/services/oauth2/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &format!("Basic {basic}")),
        ],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn public_client_with_pkce_needs_no_secret_and_gets_no_signature() {
    let s = Server::new();
    let app = s.app(json!({"secret_required_web_server": false}));
    s.user("alice");
    let (verifier, challenge) = pkce();
    let code = s.code_for(&app, "alice", &[("code_challenge", &challenge)]);
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", &app.client_id),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &verifier),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("signature").is_none());
}

#[test]
fn public_client_without_pkce_must_authenticate() {
    let s = Server::new();
    let app = s.app(json!({"secret_required_web_server": false}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", &app.client_id),
        ("redirect_uri", CALLBACK),
    ]);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
}

#[test]
fn salesforce_171_character_verifier_without_method_is_s256() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let verifier: String = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
        .chars()
        .cycle()
        .take(171)
        .collect();
    let challenge =
        edge_oauth::core::secret::b64url(&edge_oauth::core::secret::sha256(verifier.as_bytes()));
    let code = s.code_for(&app, "alice", &[("code_challenge", &challenge)]);
    assert_eq!(s.exchange(&app, &code, Some(&verifier)).status, 200);
}

#[test]
fn remembered_approval_skips_login_and_consent_until_prompt_asks() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    b.authorize(&s, &app, &[], Some(("alice", PASSWORD)), true);
    b.pages.clear();
    let r = b.authorize(&s, &app, &[("state", "again")], None, true);
    assert_eq!(r.status, 302);
    assert!(b.pages.is_empty(), "no page expected, got {:?}", b.pages);
    assert!(r.query("code").is_some());
    let r = b.authorize(&s, &app, &[("prompt", "consent")], None, true);
    assert_eq!(b.pages, ["consent"]);
    assert!(r.query("code").is_some());
    b.pages.clear();
    b.authorize(
        &s,
        &app,
        &[("prompt", "login")],
        Some(("alice", PASSWORD)),
        true,
    );
    assert_eq!(b.pages, ["login"]);
}

#[test]
fn max_age_exceeded_forces_login_and_auth_time_reflects_it() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    b.authorize(&s, &app, &[], Some(("alice", PASSWORD)), true);
    s.clock.advance_s(600);
    b.pages.clear();
    let r = b.authorize(
        &s,
        &app,
        &[("max_age", "300")],
        Some(("alice", PASSWORD)),
        true,
    );
    assert_eq!(b.pages, ["login"]);
    let t = s.exchange(&app, &r.query("code").unwrap(), None);
    let id_token = t.json()["id_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&id_token)["auth_time"], 1_800_000_600u64);
}

#[test]
fn login_hint_prefills_username_and_wrong_password_shows_the_form_again() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.get(
        &s,
        &authorize_target(&app, CALLBACK, &[("login_hint", "al\"ice")]),
    );
    assert!(
        page.body.contains("value=\"al&quot;ice\""),
        "hint must be escaped: {}",
        page.body
    );
    let r = b.login(&s, &hidden(&page.body), "alice", "wrong-password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong username or password"));
    assert!(
        !b.cookies.borrow().contains_key(SID),
        "no session on failure"
    );
}

#[test]
fn cookies_under_an_https_issuer_are_host_prefixed_secure_httponly_lax_and_host_only() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let b = Browser::default();
    let page = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    let r = b.login(&s, &hidden(&page.body), "alice", PASSWORD);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("form-action 'self' https://app.example.com;"),
        "{csp}"
    );
    let set_cookie = |resp: &Reply, name: &str| {
        resp.headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie"))
            .1
            .clone()
    };
    for cookie in [set_cookie(&r, SID), set_cookie(&page, "__Host-eo_bid")] {
        assert!(
            cookie.contains("; Path=/;")
                && cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.ends_with("; Secure")
                && !cookie.to_ascii_lowercase().contains("domain="),
            "{cookie}"
        );
    }
}

#[test]
fn denying_consent_redirects_access_denied_with_state() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    let r = b.authorize(
        &s,
        &app,
        &[("state", "xyz")],
        Some(("alice", PASSWORD)),
        false,
    );
    assert_eq!(r.query("error").as_deref(), Some("access_denied"));
    assert_eq!(
        r.query("error_description").as_deref(),
        Some("end-user denied authorization")
    );
    assert_eq!(r.query("state").as_deref(), Some("xyz"));
}

#[test]
fn admin_approved_app_refuses_users_not_preauthorized_and_skips_consent_for_those_who_are() {
    let s = Server::new();
    let app = s.app(json!({"permitted_users": "admin_approved"}));
    let alice = s.user("alice");
    let mut b = Browser::default();
    let r = b.authorize(&s, &app, &[("state", "s")], Some(("alice", PASSWORD)), true);
    assert_eq!(r.query("error").as_deref(), Some("invalid_app_access"));
    assert_eq!(
        r.query("error_description").as_deref(),
        Some("user is not admin approved to access this app")
    );
    let p = s.admin(
        Method::Post,
        &format!("/admin/apps/{}/users/{alice}", app.client_id),
        serde_json::Value::Null,
    );
    assert_eq!(p.status, 200);
    b.pages.clear();
    let r = b.authorize(&s, &app, &[], None, true);
    assert!(b.pages.is_empty());
    assert!(r.query("code").is_some());
}

#[test]
fn omitted_scope_grants_all_app_scopes_and_offline_access_alone_yields_refresh() {
    let s = Server::new();
    let app = s.app(json!({"scopes": ["api", "offline_access"]}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let j = s.exchange(&app, &code, None).json();
    assert_eq!(j["scope"], "api offline_access");
    assert!(j["refresh_token"].is_string());
    assert!(j.get("id_token").is_none(), "no openid, no id_token");
}

#[test]
fn zero_refresh_policy_issues_no_refresh_token() {
    let s = Server::new();
    let app = s.app(json!({"refresh_token_policy": "zero"}));
    s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    assert!(s
        .exchange(&app, &code, None)
        .json()
        .get("refresh_token")
        .is_none());
}

#[test]
fn jwt_access_tokens_are_typ_at_jwt_for_the_instance_and_cannot_pass_as_id_tokens() {
    let s = Server::new();
    let app = s.app(json!({"jwt_access_tokens": true}));
    let alice = s.user("alice");
    let code = s.code_for(&app, "alice", &[]);
    let j = s.exchange(&app, &code, None).json();
    assert_eq!(j["token_format"], "jwt");
    let at = j["access_token"].as_str().unwrap();
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(at.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    // RFC 9068 §2.1 / RFC 8725 §3.11: never substitutable for an ID token (typ JWT, aud = client).
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["tty"], "sfdc-core-token");
    let c = jwt_claims(at);
    assert_eq!(c["client_id"], app.client_id);
    assert_eq!(
        c["aud"], ISSUER,
        "aud is the resource (the instance URL), never the client"
    );
    assert_eq!(c["iss"], ISSUER);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 22));
    let id_token = j["id_token"].as_str().unwrap();
    assert_eq!(jwt_claims(id_token)["aud"], app.client_id.as_str());
    let r = s.userinfo(id_token);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_token"));
    assert_eq!(
        c["scp"],
        json!(["api", "refresh_token", "openid", "profile", "email"])
    );
    assert!(c["sub"].as_str().unwrap().ends_with(&alice));
    assert_eq!(c["exp"], 1_800_007_200u64);
    assert_eq!(s.userinfo(at).status, 200);
    let r = s.revoke(at);
    assert_eq!(r.status, 200);
    assert_eq!(
        s.userinfo(at).status,
        401,
        "a JWT access token is revocable: it is checked in D1 too"
    );
}

#[test]
fn immediate_true_fails_with_immediate_unsuccessful_when_the_user_is_needed() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    let target = authorize_target(&app, CALLBACK, &[("immediate", "true"), ("state", "i")]);
    let r = b.get(&s, &target);
    assert_eq!(r.query("error").as_deref(), Some("immediate_unsuccessful"));
    assert_eq!(r.query("state").as_deref(), Some("i"));
    b.authorize(&s, &app, &[], Some(("alice", PASSWORD)), true);
    let r = b.get(&s, &target);
    assert!(
        r.query("code").is_some(),
        "logged in and approved: immediate succeeds"
    );
}

#[test]
fn approvals_accumulate_across_scope_sets() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let mut b = Browser::default();
    b.authorize(
        &s,
        &app,
        &[("scope", "api")],
        Some(("alice", PASSWORD)),
        true,
    );
    b.pages.clear();
    b.authorize(&s, &app, &[("scope", "openid")], None, true);
    assert_eq!(b.pages, ["consent"], "a new scope needs consent");
    b.pages.clear();
    let r = b.authorize(&s, &app, &[("scope", "api openid")], None, true);
    assert!(
        b.pages.is_empty(),
        "both were approved, one at a time: {:?}",
        b.pages
    );
    assert!(r.query("code").is_some());
}
