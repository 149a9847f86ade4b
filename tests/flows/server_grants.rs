//! Server-to-server flows (issue 8): JWT bearer (RFC 7523 §2.1), client credentials, the
//! username-password grant, `private_key_jwt` client authentication (RFC 7523 §2.2) and JWT
//! access tokens. One test per rule and per rejection path.

use std::sync::OnceLock;

use edge_oauth::core::http::Method;
use edge_oauth::core::secret::b64url;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_URL: &str = "https://login.example.com/services/oauth2/token";

fn rsa_key(which: usize) -> &'static RsaPrivateKey {
    static KEYS: OnceLock<[RsaPrivateKey; 2]> = OnceLock::new();
    &KEYS.get_or_init(|| {
        let mut rng = rsa::rand_core::OsRng;
        [
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        ]
    })[which]
}

/// The public half of key `which` as the PEM an admin registers.
fn public_pem(which: usize) -> String {
    rsa_key(which)
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

fn jws(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature))
}

/// RS256 over `claims` with key `which`.
fn rs256(which: usize, claims: &Value) -> String {
    let signer = SigningKey::<Sha256>::new(rsa_key(which).clone());
    jws(json!({"alg": "RS256", "typ": "JWT"}), claims, |input| {
        signer.sign(input).to_vec()
    })
}

/// An app whose registered key is key 0, and a user it may act for.
fn setup(s: &Server, overrides: Value) -> (App, String) {
    let mut policy = json!({ "certificate": public_pem(0) });
    for (k, v) in overrides.as_object().unwrap() {
        policy[k] = v.clone();
    }
    let app = s.app(policy);
    let user_id = s.user("integration");
    (app, user_id)
}

fn preauthorize(s: &Server, app: &App, user_id: &str) {
    let r = s.admin(
        Method::Post,
        &format!("/admin/apps/{}/users/{user_id}", app.client_id),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn now_s(s: &Server) -> u64 {
    use edge_oauth::core::env::Clock;
    s.clock.now_s()
}

/// Salesforce's assertion: iss client id, sub username, aud, exp in seconds.
fn bearer_claims(s: &Server, app: &App) -> Value {
    json!({"iss": app.client_id, "sub": "integration", "aud": ISSUER, "exp": now_s(s) + 180})
}

fn bearer(s: &Server, assertion: &str) -> Reply {
    s.token(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
}

fn assert_refused(r: &Reply, error: &str, description: &str) {
    assert_eq!(
        r.status,
        if error == "invalid_client" { 401 } else { 400 },
        "{}",
        r.body
    );
    assert_eq!(r.json()["error"], error, "{}", r.body);
    let d = r.json()["error_description"].as_str().unwrap().to_owned();
    assert!(
        d.contains(description),
        "`{d}` should contain `{description}`"
    );
    assert!(r.json().get("access_token").is_none());
}

#[test]
fn jwt_bearer_issues_an_access_token_without_refresh_token_to_a_preauthorized_user() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({}));
    preauthorize(&s, &app, &user_id);
    let r = bearer(&s, &rs256(0, &bearer_claims(&s, &app)));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t.get("refresh_token").is_none(), "no refresh token: {t}");
    assert!(!t["scope"].as_str().unwrap().contains("refresh_token"));
    assert!(t["id"].as_str().unwrap().ends_with(&user_id));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let info = s.userinfo(t["access_token"].as_str().unwrap());
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["preferred_username"], "integration");
}

#[test]
fn jwt_bearer_accepts_what_salesforce_clients_send() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({}));
    preauthorize(&s, &app, &user_id);
    let now = now_s(&s);
    for (what, aud, exp) in [
        (
            "sfdx-core: exp in milliseconds, 300 ms ahead",
            json!(ISSUER),
            json!(now * 1000 + 300),
        ),
        (
            "simple-salesforce: exp as a string",
            json!(ISSUER),
            json!((now + 120).to_string()),
        ),
        ("the token URL as aud", json!(TOKEN_URL), json!(now + 60)),
        (
            "Salesforce's login host as aud",
            json!("https://login.salesforce.com"),
            json!(now + 60),
        ),
        (
            "aud as an array",
            json!(["https://other.example", ISSUER]),
            json!(now + 60),
        ),
    ] {
        let claims = json!({"iss": app.client_id, "sub": "integration", "aud": aud, "exp": exp});
        let r = bearer(&s, &rs256(0, &claims));
        assert_eq!(r.status, 200, "{what}: {}", r.body);
    }
}

#[test]
fn jwt_bearer_refuses_every_bad_assertion() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({}));
    preauthorize(&s, &app, &user_id);
    let now = now_s(&s);
    let with = |k: &str, v: Value| {
        let mut c = bearer_claims(&s, &app);
        c[k] = v;
        c
    };
    let cases = [
        (
            "wrong signature",
            rs256(1, &bearer_claims(&s, &app)),
            "signature",
        ),
        (
            "wrong aud",
            rs256(0, &with("aud", json!("https://evil.example"))),
            "audience",
        ),
        (
            "expired",
            rs256(0, &with("exp", json!(now - 3600))),
            "expired",
        ),
        (
            "exp in ms, in the past",
            rs256(0, &with("exp", json!((now - 3600) * 1000))),
            "expired",
        ),
        (
            "exp too far ahead",
            rs256(0, &with("exp", json!(now + 3600))),
            "10 minutes",
        ),
        (
            "exp in ms, too far ahead",
            rs256(0, &with("exp", json!((now + 3600) * 1000))),
            "10 minutes",
        ),
        (
            "no exp",
            rs256(
                0,
                &json!({"iss": app.client_id, "sub": "integration", "aud": ISSUER}),
            ),
            "exp",
        ),
        ("nbf ahead", rs256(0, &with("nbf", json!(now + 300))), "nbf"),
        (
            "unknown sub",
            rs256(0, &with("sub", json!("nobody"))),
            "sub",
        ),
    ];
    for (what, assertion, description) in cases {
        assert_refused(&bearer(&s, &assertion), "invalid_grant", description);
        let _ = what;
    }
    // alg none, and HS256 keyed with the registered public key (RFC 8725 §2.1).
    let claims = bearer_claims(&s, &app);
    let none = jws(json!({"alg": "none"}), &claims, |_| Vec::new());
    assert_refused(&bearer(&s, &none), "invalid_grant", "alg none");
    let hs = {
        use hmac::{Hmac, Mac};
        jws(json!({"alg": "HS256"}), &claims, |input| {
            let mut mac = Hmac::<Sha256>::new_from_slice(public_pem(0).as_bytes()).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        })
    };
    assert_refused(&bearer(&s, &hs), "invalid_grant", "HMAC");
    assert_refused(&bearer(&s, "not.a.jwt"), "invalid_grant", "signed JWT");
    // Unknown issuer: Salesforce's invalid_client_id.
    let r = bearer(&s, &rs256(0, &with("iss", json!("3MVGunknown"))));
    assert_refused(&r, "invalid_client_id", "client identifier invalid");
}

#[test]
fn a_jwt_bearer_jti_is_single_use() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({}));
    preauthorize(&s, &app, &user_id);
    let mut claims = bearer_claims(&s, &app);
    claims["jti"] = json!("assertion-1");
    let assertion = rs256(0, &claims);
    assert_eq!(bearer(&s, &assertion).status, 200);
    assert_refused(&bearer(&s, &assertion), "invalid_grant", "jti");
    // Another jti is another assertion.
    claims["jti"] = json!("assertion-2");
    assert_eq!(bearer(&s, &rs256(0, &claims)).status, 200);
}

#[test]
fn jwt_bearer_needs_a_preauthorized_or_approving_active_user() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({}));
    let assertion = || rs256(0, &bearer_claims(&s, &app));
    // Never approved: Salesforce's text, which simple-salesforce matches.
    assert_refused(
        &bearer(&s, &assertion()),
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    // An earlier interactive approval counts where users self-authorize.
    s.code_for(&app, "integration", &[]);
    assert_eq!(bearer(&s, &assertion()).status, 200);
    // Deactivated.
    let r = s.admin(
        Method::Patch,
        &format!("/admin/users/{user_id}"),
        json!({"active": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_refused(&bearer(&s, &assertion()), "invalid_grant", "inactive");
    // Admin-approved apps: only pre-authorized users.
    let admin_app =
        s.app(json!({"certificate": public_pem(0), "permitted_users": "admin_approved"}));
    let other = s.user("other");
    let claims =
        json!({"iss": admin_app.client_id, "sub": "other", "aud": ISSUER, "exp": now_s(&s) + 60});
    assert_refused(
        &bearer(&s, &rs256(0, &claims)),
        "invalid_app_access",
        "admin approved",
    );
    preauthorize(&s, &admin_app, &other);
    assert_eq!(bearer(&s, &rs256(0, &claims)).status, 200);
}

#[test]
fn jwt_bearer_verifies_es256_and_jwk_keys_and_refuses_apps_without_a_key() {
    use p256::ecdsa::signature::Signer as _;
    let s = Server::new();
    let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap()), "kid": "k1"});
    let app = s.app(json!({"certificate": jwk.to_string()}));
    let user_id = s.user("integration");
    preauthorize(&s, &app, &user_id);
    let claims = bearer_claims(&s, &app);
    let es256 = |header: Value| {
        jws(header, &claims, |input| {
            let sig: p256::ecdsa::Signature = key.sign(input);
            sig.to_bytes().to_vec()
        })
    };
    assert_eq!(
        bearer(&s, &es256(json!({"alg": "ES256", "kid": "k1"}))).status,
        200
    );
    // An RS256 assertion cannot be checked with an EC key.
    assert_refused(&bearer(&s, &rs256(0, &claims)), "invalid_grant", "RS256");
    let keyless = s.app(json!({}));
    let claims = json!({"iss": keyless.client_id, "sub": "integration", "aud": ISSUER, "exp": now_s(&s) + 60});
    assert_refused(
        &bearer(&s, &rs256(0, &claims)),
        "invalid_grant",
        "no certificate",
    );
}

#[test]
fn the_admin_api_refuses_unusable_certificates() {
    let s = Server::new();
    for (cert, why) in [
        ("not a key", "certificate"),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "SubjectPublicKeyInfo",
        ),
        (
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#,
            "private",
        ),
        (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "bits"),
        (
            r#"{"kty":"EC","crv":"P-384","x":"AQAB","y":"AQAB"}"#,
            "P-256",
        ),
    ] {
        let r = s.admin(
            Method::Post,
            "/admin/apps",
            json!({"name": "x", "callback_urls": [CALLBACK], "scopes": ["api"], "certificate": cert}),
        );
        assert_eq!(r.status, 400, "{cert}: {}", r.body);
        assert!(r.body.contains(why), "{cert}: {}", r.body);
    }
}

fn client_credentials(s: &Server, app: &App, extra: &[(&str, &str)]) -> Reply {
    let mut fields = vec![
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.secret.as_str()),
    ];
    fields.extend_from_slice(extra);
    s.token(&fields)
}

#[test]
fn client_credentials_run_as_the_apps_user_with_its_scopes_and_no_refresh() {
    let s = Server::new();
    let (app, user_id) = setup(&s, json!({"client_credentials_user": "integration"}));
    let r = client_credentials(&s, &app, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t["id"].as_str().unwrap().ends_with(&user_id));
    assert!(t.get("refresh_token").is_none());
    assert!(t.get("id_token").is_none());
    assert_eq!(
        t["scope"], "api profile email",
        "never refresh_token or openid"
    );
    assert!(t["signature"].is_string(), "signed with the secret");
    // Basic authentication works too.
    let basic = base64_basic(&app);
    let r = s.send(
        Method::Post,
        "/services/oauth2/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic),
        ],
        "grant_type=client_credentials&scope=api",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "api");
    // Rejections: wrong secret, no secret, no run-as user, inactive run-as user.
    let wrong = App {
        secret: "wrong".into(),
        ..app.clone()
    };
    assert_refused(
        &client_credentials(&s, &wrong, &[]),
        "invalid_client",
        "invalid client credentials",
    );
    let r = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", &app.client_id),
    ]);
    assert_refused(&r, "invalid_client", "invalid client credentials");
    let plain = s.app(json!({}));
    assert_refused(
        &client_credentials(&s, &plain, &[]),
        "invalid_grant",
        "no client credentials user enabled",
    );
    s.admin(
        Method::Patch,
        &format!("/admin/users/{user_id}"),
        json!({"active": false}),
    );
    assert_refused(
        &client_credentials(&s, &app, &[]),
        "invalid_grant",
        "inactive",
    );
}

fn base64_basic(app: &App) -> String {
    use base64::Engine;
    let raw = format!("{}:{}", app.client_id, app.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn password_grant(s: &Server, app: &App, username: &str, password: &str) -> Reply {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", &app.client_id),
        ("client_secret", &app.secret),
        ("username", username),
        ("password", password),
    ])
}

fn allow_password_flow(s: &Server, on: bool) {
    let r = s.admin(
        Method::Patch,
        "/admin/settings",
        json!({"allow_username_password_flow": on}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn the_password_grant_is_off_by_default_and_then_answers_exactly_like_bad_credentials() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let off = password_grant(&s, &app, "alice", PASSWORD);
    let wrong_password = {
        allow_password_flow(&s, true);
        password_grant(&s, &app, "alice", "wrong")
    };
    let unknown_user = password_grant(&s, &app, "nobody", PASSWORD);
    for r in [&off, &wrong_password, &unknown_user] {
        assert_eq!((r.status, r.body.as_str()), (off.status, off.body.as_str()));
    }
    assert_eq!(off.json()["error"], "invalid_grant");
    assert_eq!(off.json()["error_description"], "authentication failure");
    let ok = password_grant(&s, &app, "alice", PASSWORD);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json().get("refresh_token").is_none());
    // Confidential clients only.
    let r = s.token(&[
        ("grant_type", "password"),
        ("client_id", &app.client_id),
        ("username", "alice"),
        ("password", PASSWORD),
    ]);
    assert_refused(&r, "invalid_client", "invalid client credentials");
}

#[test]
fn the_tenth_password_guess_in_a_minute_is_refused_even_when_right() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    allow_password_flow(&s, true);
    for i in 0..9 {
        let r = password_grant(&s, &app, "alice", &format!("guess-{i}"));
        assert_refused(&r, "invalid_grant", "authentication failure");
    }
    let r = password_grant(&s, &app, "ALICE", PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "rate_limit_exceeded");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// A `private_key_jwt` client assertion for `app` (key 0), for audience `aud`.
fn client_assertion(s: &Server, app: &App, aud: &str, jti: &str) -> String {
    rs256(
        0,
        &json!({"iss": app.client_id, "sub": app.client_id, "aud": aud, "exp": now_s(s) + 60, "jti": jti}),
    )
}

#[test]
fn private_key_jwt_authenticates_at_the_token_introspection_and_revocation_endpoints() {
    let s = Server::new();
    let (app, _) = setup(&s, json!({"client_credentials_user": "integration"}));
    let assertion = client_assertion(&s, &app, ISSUER, "c-1");
    let r = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION),
        ("client_assertion", &assertion),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(
        r.json().get("signature").is_none(),
        "no secret, no signature"
    );
    // The same assertion again: its jti is spent.
    let again = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION),
        ("client_assertion", &assertion),
    ]);
    assert_refused(&again, "invalid_client", "jti");
    // Introspection, with the introspection endpoint's URL as aud.
    let aud = format!("{ISSUER}/services/oauth2/introspect");
    let r = s.post_form(
        "/services/oauth2/introspect",
        &[
            ("token", &access),
            ("client_assertion_type", CLIENT_ASSERTION),
            ("client_assertion", &client_assertion(&s, &app, &aud, "c-2")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["active"], true);
    // Revocation, with the token URL as aud.
    let r = s.post_form(
        "/services/oauth2/revoke",
        &[
            ("token", &access),
            ("client_assertion_type", CLIENT_ASSERTION),
            (
                "client_assertion",
                &client_assertion(&s, &app, TOKEN_URL, "c-3"),
            ),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.userinfo(&access).status, 401, "revoked");
}

#[test]
fn private_key_jwt_refuses_bad_client_assertions() {
    let s = Server::new();
    let (app, _) = setup(&s, json!({"client_credentials_user": "integration"}));
    let send = |assertion: &str| {
        s.token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION),
            ("client_assertion", assertion),
        ])
    };
    let base = json!({"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now_s(&s) + 60, "jti": "x"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    for (assertion, why) in [
        (rs256(1, &base), "signature"),
        (
            rs256(0, &with("aud", json!("https://evil.example"))),
            "audience",
        ),
        (rs256(0, &with("exp", json!(now_s(&s) - 3600))), "expired"),
        (rs256(0, &with("sub", json!("someone-else"))), "sub"),
        (
            rs256(
                0,
                &json!({"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now_s(&s) + 60}),
            ),
            "jti",
        ),
    ] {
        assert_refused(&send(&assertion), "invalid_client", why);
    }
    // A secret and an assertion together are two methods (RFC 6749 §2.3).
    let r = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_secret", &app.secret),
        ("client_assertion_type", CLIENT_ASSERTION),
        ("client_assertion", &rs256(0, &with("jti", json!("y")))),
    ]);
    assert_refused(&r, "invalid_request", "both");
}

#[test]
fn jwt_access_tokens_from_every_server_grant_verify_with_the_jwks_alone_and_still_revoke() {
    use jwt_compact::alg::{Rsa, RsaPublicKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{AlgorithmExt, UntrustedToken};
    let s = Server::new();
    let (app, user_id) = setup(
        &s,
        json!({"client_credentials_user": "integration", "jwt_access_tokens": true}),
    );
    preauthorize(&s, &app, &user_id);
    allow_password_flow(&s, true);
    let jwks = s.send(Method::Get, "/id/keys", &[], "").json();
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let public = RsaPublicKey::try_from(&jwk).unwrap();
    for r in [
        client_credentials(&s, &app, &[]),
        bearer(&s, &rs256(0, &bearer_claims(&s, &app))),
        password_grant(&s, &app, "integration", PASSWORD),
    ] {
        assert_eq!(r.status, 200, "{}", r.body);
        let t = r.json();
        assert_eq!(t["token_format"], "jwt");
        let token = t["access_token"].as_str().unwrap();
        let untrusted = UntrustedToken::new(token).unwrap();
        assert_eq!(untrusted.header().token_type.as_deref(), Some("at+jwt"));
        let verified = Rsa::rs256()
            .validator::<Value>(&public)
            .validate(&untrusted)
            .expect("verifies with the published key");
        let claims = &verified.claims().custom;
        assert_eq!(claims["client_id"], app.client_id.as_str());
        assert!(claims["sub"].as_str().unwrap().ends_with(&user_id));
        // Revoked: introspection says so, though the signature still verifies.
        assert_eq!(s.revoke(token).status, 200);
        let r = s.post_form(
            "/services/oauth2/introspect",
            &[
                ("token", token),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
            ],
        );
        assert_eq!(r.json()["active"], false, "{}", r.body);
    }
}

#[test]
fn discovery_lists_the_server_grants_and_private_key_jwt() {
    let s = Server::new();
    let meta = s
        .send(Method::Get, "/.well-known/openid-configuration", &[], "")
        .json();
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(grants.contains(&json!(JWT_BEARER)));
    assert!(!grants.contains(&json!("password")), "off by default");
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &meta[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{endpoint}"
        );
        assert_eq!(
            meta[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            json!(["RS256", "ES256"])
        );
    }
    allow_password_flow(&s, true);
    let meta = s
        .send(Method::Get, "/.well-known/openid-configuration", &[], "")
        .json();
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("password")));
}

/// Key `which` as a public JWK.
fn public_jwk(which: usize) -> Value {
    use rsa::traits::PublicKeyParts;
    let public = rsa_key(which).to_public_key();
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "n": b64url(&public.n().to_bytes_be()), "e": b64url(&public.e().to_bytes_be())})
}

#[test]
fn a_registered_private_key_jwt_client_authenticates_with_jwks_or_its_jwks_uri() {
    let s = Server::new();
    s.user("integration");
    let token = s.admin(Method::Post, "/admin/registration-tokens", json!({}));
    let token = token.json()["token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let register = |meta: Value| {
        let r = s.send(
            Method::Post,
            "/services/oauth2/register",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &meta.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(
            r.json().get("client_secret").is_none(),
            "no secret for private_key_jwt"
        );
        let id = r.json()["client_id"].as_str().unwrap().to_owned();
        // The operator names the run-as user.
        let p = s.admin(
            Method::Patch,
            &format!("/admin/apps/{id}"),
            json!({"client_credentials_user": "integration"}),
        );
        assert_eq!(p.status, 200, "{}", p.body);
        App {
            client_id: id,
            secret: String::new(),
        }
    };
    let jwks_uri = "https://keys.example.org/jwks.json";
    s.web
        .serve(jwks_uri, &json!({"keys": [public_jwk(0)]}), None);
    let inline = register(
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public_jwk(0)]}, "scope": "api"}),
    );
    let remote = register(
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri, "scope": "api"}),
    );
    for (app, jti) in [(&inline, "k-1"), (&remote, "k-2")] {
        let r = s.token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION),
            ("client_assertion", &client_assertion(&s, app, ISSUER, jti)),
        ]);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Another key does not pass; the jwks_uri was fetched once (cached per isolate).
    let forged = rs256(
        1,
        &json!({"iss": remote.client_id, "sub": remote.client_id, "aud": ISSUER, "exp": now_s(&s) + 60, "jti": "k-3"}),
    );
    let r = s.token(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION),
        ("client_assertion", &forged),
    ]);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    assert_eq!(
        s.web
            .fetches
            .borrow()
            .iter()
            .filter(|u| *u == jwks_uri)
            .count(),
        1
    );
    // A jwks_uri on a private address is refused at registration.
    let r = s.send(
        Method::Post,
        "/services/oauth2/register",
        &[("authorization", &auth), ("content-type", "application/json")],
        &json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://10.0.0.1/jwks"}).to_string(),
    );
    assert_eq!(
        (r.status, r.error().as_str()),
        (400, "invalid_client_metadata")
    );
}

#[test]
fn a_client_that_rotated_the_key_at_its_jwks_uri_is_fetched_again_for_the_new_kid_once_a_minute() {
    let s = Server::new();
    s.user("integration");
    let token = s.admin(Method::Post, "/admin/registration-tokens", json!({}));
    let auth = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    let jwks_uri = "https://rotating.example.org/jwks.json";
    let keyed = |which: usize, kid: &str| {
        let mut jwk = public_jwk(which);
        jwk["kid"] = kid.into();
        jwk
    };
    s.web
        .serve(jwks_uri, &json!({"keys": [keyed(0, "k0")]}), None);
    let r = s.send(
        Method::Post,
        "/services/oauth2/register",
        &[("authorization", &auth), ("content-type", "application/json")],
        &json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri, "scope": "api"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["client_id"].as_str().unwrap().to_owned();
    let p = s.admin(
        Method::Patch,
        &format!("/admin/apps/{id}"),
        json!({"client_credentials_user": "integration"}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let fetches = || {
        s.web
            .fetches
            .borrow()
            .iter()
            .filter(|u| *u == jwks_uri)
            .count()
    };
    let grant = |which: usize, kid: &str, jti: &str| {
        let signer = SigningKey::<Sha256>::new(rsa_key(which).clone());
        let claims =
            json!({"iss": id, "sub": id, "aud": ISSUER, "exp": now_s(&s) + 60, "jti": jti});
        let jwt = jws(
            json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            &claims,
            |input| signer.sign(input).to_vec(),
        );
        s.token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION),
            ("client_assertion", &jwt),
        ])
    };
    assert_eq!(grant(0, "k0", "r-1").status, 200);
    assert_eq!(fetches(), 1);
    // The client rotates: its document now holds key 1 as k1. The unknown kid fetches it again.
    s.web
        .serve(jwks_uri, &json!({"keys": [keyed(1, "k1")]}), None);
    let r = grant(1, "k1", "r-2");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetches(), 2);
    // Made-up kids do not make us fetch again within the minute.
    for i in 0..5 {
        let r = grant(1, &format!("bogus-{i}"), &format!("r-b{i}"));
        assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    }
    assert_eq!(fetches(), 2);
    s.clock.advance_s(61);
    assert_eq!(grant(1, "bogus-late", "r-late").status, 401);
    assert_eq!(fetches(), 3, "one more fetch after the minute");
}
