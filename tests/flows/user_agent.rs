//! The user-agent and hybrid flows, headless login and the org switches (issue 7): tokens in the
//! fragment, refresh tokens only for private-use schemes, web sessions bridged into a browser
//! and ended with their family, and each switch blocking its flow on the next request.

use edge_oauth::core::http::Method;
use serde_json::{json, Value};

use crate::support::*;

const NATIVE: &str = "myapp://cb";

fn app_for(s: &Server, extra_callbacks: &[&str], scopes: &[&str]) -> App {
    let mut callbacks = vec![CALLBACK];
    callbacks.extend_from_slice(extra_callbacks);
    s.app(json!({"callback_urls": callbacks, "scopes": scopes}))
}

fn token_flow(s: &Server, app: &App, params: &[(&str, &str)], user: &str) -> Reply {
    let mut p = vec![("client_id", app.client_id.as_str())];
    p.extend_from_slice(params);
    Browser::default().authorize_at(s, &authorize_url(&p), Some((user, PASSWORD)), true)
}

fn settings(s: &Server, patch: Value) {
    let r = s.admin(Method::Patch, "/admin/settings", patch);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn the_user_agent_flow_puts_the_tokens_in_the_fragment() {
    let s = Server::new();
    let app = app_for(
        &s,
        &[NATIVE],
        &["api", "refresh_token", "openid", "profile"],
    );
    s.user("ua");
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "token id_token"),
            ("redirect_uri", CALLBACK),
            ("scope", "api openid refresh_token"),
            ("state", "s1&access_token=evil#x"),
            ("nonce", "n-1"),
        ],
        "ua",
    );
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    let loc = r.header("location").unwrap().to_owned();
    assert!(loc.starts_with(&format!("{CALLBACK}#")), "{loc}");
    assert!(
        r.location().query().is_none(),
        "nothing in the query: {loc}"
    );
    let access = r.fragment("access_token").unwrap();
    assert_eq!(r.fragment("token_type").as_deref(), Some("Bearer"));
    assert_eq!(
        r.fragment("state").as_deref(),
        Some("s1&access_token=evil#x")
    );
    assert_eq!(r.fragment("iss").as_deref(), Some(ISSUER));
    assert!(r.fragment("issued_at").is_some() && r.fragment("id").is_some());
    assert_eq!(r.fragment("expires_in").as_deref(), Some("7200"));
    // An https page gets no refresh token, and nobody gets a signature (no client secret here).
    assert_eq!(r.fragment("refresh_token"), None);
    assert_eq!(r.fragment("signature"), None);
    let id_token = r.fragment("id_token").unwrap();
    let claims = jwt_claims(&id_token);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["aud"], app.client_id.as_str());
    let at_hash = {
        use edge_oauth::core::secret::{b64url, sha256};
        b64url(&sha256(access.as_bytes())[..16])
    };
    assert_eq!(claims["at_hash"], at_hash.as_str());
    assert_eq!(s.userinfo(&access).status, 200);

    // A private-use scheme with refresh_token granted gets a refresh token that works.
    let native = token_flow(
        &s,
        &app,
        &[
            ("response_type", "token"),
            ("redirect_uri", NATIVE),
            ("scope", "api refresh_token"),
        ],
        "ua",
    );
    let refresh = native.fragment("refresh_token").expect("no refresh token");
    assert_eq!(s.refresh(&app, &refresh).status, 200);
}

#[test]
fn bad_requests_answer_in_the_fragment_and_never_issue() {
    let s = Server::new();
    let app = app_for(&s, &[], &["api", "openid"]);
    s.user("bad");
    let get = |p: &[(&str, &str)]| {
        let mut q = vec![
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", CALLBACK),
        ];
        q.extend_from_slice(p);
        Browser::default().get(&s, &authorize_url(&q))
    };
    let r = get(&[("response_type", "token id_token"), ("state", "x")]);
    assert_eq!(
        r.fragment("error").as_deref(),
        Some("invalid_request"),
        "no nonce"
    );
    assert_eq!(r.fragment("state").as_deref(), Some("x"));
    let r = get(&[("response_type", "code token")]);
    assert_eq!(
        r.fragment("error").as_deref(),
        Some("unsupported_response_type")
    );
    let r = get(&[("response_type", "foo")]);
    assert_eq!(
        r.query("error").as_deref(),
        Some("unsupported_response_type")
    );
    let r = get(&[("response_type", "token"), ("response_mode", "query")]);
    assert_eq!(r.fragment("error").as_deref(), Some("invalid_request"));
    let r = get(&[("response_type", "code"), ("response_mode", "nope")]);
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
    let r = get(&[]);
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
}

#[test]
fn blocking_the_user_agent_flow_takes_effect_at_once_and_so_does_unblocking() {
    let s = Server::new();
    let app = app_for(&s, &[], &["api"]);
    s.user("sw");
    settings(&s, json!({"allow_user_agent_flow": false}));
    for rt in ["token", "hybrid_token"] {
        let r = Browser::default().get(
            &s,
            &authorize_url(&[
                ("response_type", rt),
                ("client_id", &app.client_id),
                ("redirect_uri", CALLBACK),
                ("state", "st"),
            ]),
        );
        assert_eq!(r.status, 302);
        assert_eq!(
            r.fragment("error").as_deref(),
            Some("unsupported_response_type")
        );
        assert!(r
            .fragment("error_description")
            .unwrap()
            .contains("allow_user_agent_flow"));
        assert_eq!(r.fragment("state").as_deref(), Some("st"));
    }
    // Said before any other complaint: a blocked `token id_token` without its nonce too.
    let r = Browser::default().get(
        &s,
        &authorize_url(&[
            ("response_type", "token id_token"),
            ("client_id", &app.client_id),
            ("redirect_uri", CALLBACK),
        ]),
    );
    assert_eq!(
        r.fragment("error").as_deref(),
        Some("unsupported_response_type")
    );
    let d = s
        .send(Method::Get, "/.well-known/openid-configuration", &[], "")
        .json();
    assert_eq!(
        d["response_types_supported"],
        json!(["code", "code id_token"]),
        "code id_token is a code flow: no access token leaves the authorization endpoint"
    );
    settings(&s, json!({"allow_user_agent_flow": true}));
    let r = token_flow(
        &s,
        &app,
        &[("response_type", "token"), ("redirect_uri", CALLBACK)],
        "sw",
    );
    assert!(
        r.fragment("access_token").is_some(),
        "{:?}",
        r.header("location")
    );
    let d = s
        .send(Method::Get, "/.well-known/openid-configuration", &[], "")
        .json();
    assert!(d["response_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("hybrid_token")));
}

#[test]
fn a_hybrid_web_session_bridges_into_the_browser_and_ends_with_its_family() {
    let s = Server::new();
    let app = app_for(&s, &[NATIVE], &["api", "refresh_token", "web", "lightning"]);
    s.user("hy");
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "hybrid_token"),
            ("redirect_uri", NATIVE),
            ("scope", "api refresh_token web lightning"),
        ],
        "hy",
    );
    let sid = r.fragment("sid").expect("no sid");
    let access = r.fragment("access_token").unwrap();
    let refresh = r.fragment("refresh_token").unwrap();
    assert_ne!(sid, access);
    assert_eq!(r.fragment("sidCookieName").as_deref(), Some("sid"));
    assert_eq!(r.fragment("parent_sid").as_deref(), Some(sid.as_str()));
    assert!(r.fragment("lightning_sid").is_some());
    assert_eq!(
        r.fragment("lightning_domain").as_deref(),
        Some("login.example.com")
    );
    assert!(r.fragment("csrf_token").is_some() && r.fragment("cookie-sid_Client").is_some());

    // frontdoor: the sid becomes this browser's session; prompt=none then gets a code.
    let browser = Browser::default();
    let silent = authorize_target(&app, CALLBACK, &[("prompt", "none"), ("scope", "api")]);
    let f = browser.get(
        &s,
        &format!("/secur/frontdoor.jsp?sid={sid}&retURL=%2Fservices%2Foauth2%2Fauthorize"),
    );
    assert_eq!(f.status, 302, "{}", f.body);
    assert_eq!(
        f.header("location"),
        Some(format!("{ISSUER}/services/oauth2/authorize").as_str())
    );
    assert!(browser.get(&s, &silent).query("code").is_some());
    // Absolute or protocol-relative retURL: refused, no session.
    for ret in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example"] {
        let b = Browser::default();
        let r = b.get(&s, &format!("/secur/frontdoor.jsp?sid={sid}&retURL={ret}"));
        assert_eq!(r.status, 400, "{ret}");
        assert!(r.header("set-cookie").is_none());
    }

    // hybrid_refresh: a new sid; the old one and what it bridged are over.
    let hr = s.token(&[
        ("grant_type", "hybrid_refresh"),
        ("refresh_token", &refresh),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
    ]);
    assert_eq!(hr.status, 200, "{}", hr.body);
    let new_sid = hr.json()["sid"].as_str().unwrap().to_owned();
    assert_ne!(new_sid, sid);
    assert_eq!(
        Browser::default()
            .get(&s, &format!("/secur/frontdoor.jsp?sid={sid}"))
            .status,
        401
    );
    assert_eq!(
        browser.get(&s, &silent).query("error").as_deref(),
        Some("login_required")
    );

    // The new sid bridges; revoking the family ends it and the browser session with it.
    let b2 = Browser::default();
    assert_eq!(
        b2.get(&s, &format!("/secur/frontdoor.jsp?sid={new_sid}"))
            .status,
        302
    );
    assert!(b2.get(&s, &silent).query("code").is_some());
    assert_eq!(s.revoke(&refresh).status, 200);
    assert_eq!(
        b2.get(&s, &silent).query("error").as_deref(),
        Some("login_required")
    );

    // Revoking a `sid` itself ends its family: the tokens and the session together.
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "hybrid_token"),
            ("redirect_uri", NATIVE),
            ("scope", "api refresh_token web"),
        ],
        "hy",
    );
    let (sid, refresh) = (
        r.fragment("sid").unwrap(),
        r.fragment("refresh_token").unwrap(),
    );
    assert_eq!(s.revoke(&sid).status, 200);
    assert_eq!(s.refresh(&app, &refresh).status, 400);
    assert_eq!(
        Browser::default()
            .get(&s, &format!("/secur/frontdoor.jsp?sid={sid}"))
            .status,
        401
    );
}

fn headless(
    s: &Server,
    app: &App,
    basic: Option<&str>,
    kind: Option<&str>,
    challenge: Option<&str>,
) -> Reply {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    let auth;
    if let Some(b) = basic {
        auth = format!("Basic {b}");
        headers.push(("authorization", &auth));
    }
    if let Some(k) = kind {
        headers.push(("auth-request-type", k));
    }
    let mut fields = vec![
        ("response_type", "code_credentials"),
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(c) = challenge {
        fields.push(("code_challenge", c));
    }
    s.send(
        Method::Post,
        "/services/oauth2/authorize",
        &headers,
        &form(&fields),
    )
}

#[test]
fn headless_login_gives_a_code_as_json_only_while_the_org_allows_it() {
    use base64::Engine;
    let s = Server::new();
    let app = app_for(&s, &[], &["api", "refresh_token"]);
    s.user("hl");
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let good = b64(&format!("hl:{PASSWORD}"));
    let (verifier, challenge) = pkce();
    let off = headless(&s, &app, Some(&good), Some("Named-User"), Some(&challenge));
    assert_eq!(
        (off.status, off.error()),
        (400, "unsupported_response_type".into())
    );
    assert!(off.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("allow_code_credentials_flow"));
    settings(&s, json!({"allow_code_credentials_flow": true}));
    let ok = headless(&s, &app, Some(&good), Some("Named-User"), Some(&challenge));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["sfdc_community_url"], ISSUER);
    let code = ok.json()["code"].as_str().unwrap().to_owned();
    assert_eq!(s.exchange(&app, &code, Some(&verifier)).status, 200);
    let wrong = headless(
        &s,
        &app,
        Some(&b64("hl:nope")),
        Some("Named-User"),
        Some(&challenge),
    );
    assert_eq!((wrong.status, wrong.error()), (401, "invalid_grant".into()));
    for (basic, kind, ch) in [
        (None, Some("Named-User"), Some(challenge.as_str())),
        (
            Some("!!notbase64"),
            Some("Named-User"),
            Some(challenge.as_str()),
        ),
        (
            Some(b64("no-colon").as_str()),
            Some("Named-User"),
            Some(challenge.as_str()),
        ),
        (
            Some(good.as_str()),
            Some("Passwordless"),
            Some(challenge.as_str()),
        ),
        (Some(good.as_str()), None, Some(challenge.as_str())),
        (Some(good.as_str()), Some("Named-User"), None),
    ] {
        let r = headless(&s, &app, basic, kind, ch);
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid_request".into()),
            "{basic:?} {kind:?} {ch:?}"
        );
        assert!(r.header("location").is_none());
    }
    // The login throttles count headless attempts too (10 per username and address).
    let mut statuses = vec![];
    for _ in 0..10 {
        let r = headless(
            &s,
            &app,
            Some(&b64("hl:nope")),
            Some("Named-User"),
            Some(&challenge),
        );
        statuses.push(r.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let r = headless(&s, &app, Some(&good), Some("Named-User"), Some(&challenge));
    assert_eq!((r.status, r.error()), (429, "rate_limit_exceeded".into()));
    settings(&s, json!({"allow_code_credentials_flow": false}));
    let off = headless(&s, &app, Some(&good), Some("Named-User"), Some(&challenge));
    assert_eq!(off.status, 400);
}

#[test]
fn form_post_returns_a_self_submitting_form() {
    let s = Server::new();
    let app = app_for(&s, &[], &["api"]);
    s.user("fp");
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("response_mode", "form_post"),
            ("state", "fp"),
        ],
        "fp",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let fields = hidden(&r.body);
    assert!(
        r.body.contains(&format!("action=\"{CALLBACK}\"")),
        "{}",
        r.body
    );
    assert_eq!(fields["state"], "fp");
    assert_eq!(s.exchange(&app, &fields["code"], None).status, 200);
}

#[test]
fn code_id_token_puts_a_code_and_an_id_token_bound_to_it_in_the_fragment() {
    use sha2::{Digest, Sha256};
    let s = Server::new();
    let app = app_for(&s, &[], &["api", "openid", "profile"]);
    s.user("hy");
    let (verifier, challenge) = pkce();
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "code id_token"),
            ("redirect_uri", CALLBACK),
            ("scope", "api openid"),
            ("state", "st"),
            ("nonce", "n-9"),
            ("code_challenge", &challenge),
        ],
        "hy",
    );
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    assert!(r.location().query().is_none(), "nothing in the query");
    assert_eq!(r.fragment("access_token"), None, "no access token here");
    assert_eq!(r.fragment("state").as_deref(), Some("st"));
    let code = r.fragment("code").unwrap();
    let claims = jwt_claims(&r.fragment("id_token").unwrap());
    // OIDC Core §3.3.2.11: c_hash is the left half of SHA-256 of the code.
    let digest = Sha256::digest(code.as_bytes());
    assert_eq!(
        claims["c_hash"],
        edge_oauth::core::secret::b64url(&digest[..16])
    );
    assert!(claims.get("at_hash").is_none());
    assert_eq!(claims["nonce"], "n-9");
    assert_eq!(claims["aud"], app.client_id.as_str());
    // The code is redeemed like any other (PKCE included), with the nonce in its ID token.
    let t = s.exchange(&app, &code, Some(&verifier));
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(
        jwt_claims(t.json()["id_token"].as_str().unwrap())["nonce"],
        "n-9"
    );
    // A nonce is required, and the query may not carry the ID token.
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "code id_token"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
        ],
        "hy",
    );
    assert_eq!(r.fragment("error").as_deref(), Some("invalid_request"));
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "id_token code"),
            ("redirect_uri", CALLBACK),
            ("nonce", "n"),
            ("response_mode", "query"),
        ],
        "hy",
    );
    assert_eq!(r.fragment("error").as_deref(), Some("invalid_request"));
    // Blocking the user-agent flows leaves it alone: it issues no access token.
    settings(&s, json!({"allow_user_agent_flow": false}));
    let r = token_flow(
        &s,
        &app,
        &[
            ("response_type", "code id_token"),
            ("redirect_uri", CALLBACK),
            ("nonce", "n"),
        ],
        "hy",
    );
    assert!(r.fragment("code").is_some(), "{:?}", r.header("location"));
}
