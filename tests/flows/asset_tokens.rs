//! The asset token flow (salesforce-reference.md §9): an access token and an actor token about a
//! device, exchanged (RFC 8693) for an asset token; assets listed and revoked by the admin API.

use edge_oauth::core::env::Clock;
use edge_oauth::core::http::Method;
use edge_oauth::core::secret::b64url;
use p256::ecdsa::signature::Signer;
use serde_json::{json, Value};

use crate::support::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

struct DeviceKey(p256::ecdsa::SigningKey);

impl DeviceKey {
    fn new() -> Self {
        Self(p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng))
    }
    fn jwk(&self) -> Value {
        let p = self.0.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "x": b64url(p.x().unwrap()), "y": b64url(p.y().unwrap())})
    }
    fn sign(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(json!({"alg": "ES256", "typ": "JWT"}).to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig: p256::ecdsa::Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", b64url(&sig.to_bytes()))
    }
}

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(json!({"alg": "none"}).to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

fn exchange(s: &Server, subject: &str, actor: &str) -> Reply {
    s.token(&[
        ("grant_type", EXCHANGE),
        ("subject_token_type", ACCESS),
        ("subject_token", subject),
        ("actor_token_type", JWT),
        ("actor_token", actor),
    ])
}

/// An app whose actor tokens `factory` signs, and an access token of alice's for it.
fn setup(s: &Server, factory: &DeviceKey, extra: Value) -> (App, String) {
    let mut policy = json!({"audiences": ["https://iot.example.com"], "ttl_s": 300, "actor_keys": [factory.jwk()]});
    for (k, v) in extra.as_object().unwrap() {
        policy[k] = v.clone();
    }
    let app = s.app(json!({ "asset_tokens": policy }));
    s.user("alice");
    let t = s.tokens(&app, "alice");
    (app, t["access_token"].as_str().unwrap().to_owned())
}

fn device(did: &str) -> Value {
    json!({"did": did, "Name": "Thermostat", "Asset": {"Name": "Kitchen thermostat", "SerialNumber": "SN-1"}})
}

#[test]
fn an_access_token_and_a_signed_actor_token_make_an_asset_token_and_an_asset() {
    let s = Server::new();
    let factory = DeviceKey::new();
    let (app, access) = setup(&s, &factory, json!({}));
    let r = exchange(&s, &access, &factory.sign(&device("dev-1")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["issued_token_type"], JWT);
    assert_eq!(t["expires_in"], 300);
    let token = t["access_token"].as_str().unwrap();
    let c = jwt_claims(token);
    assert_eq!(c["aud"], json!(["https://iot.example.com"]));
    assert_eq!(c["did"], "dev-1");
    assert_eq!(c["Asset"]["SerialNumber"], "SN-1");
    assert!(c["sub"].as_str().unwrap().contains("/id/"));
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
    // Not an access token here.
    assert_eq!(s.userinfo(token).status, 401);
    // The asset, listed; the same device again keeps its id.
    let assets = s.admin(Method::Get, "/admin/assets", Value::Null).json();
    assert_eq!(assets["assets"][0]["device_id"], "dev-1");
    assert_eq!(assets["assets"][0]["client_id"], app.client_id.as_str());
    let id = assets["assets"][0]["asset_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("02i"));
    let again = exchange(&s, &access, &factory.sign(&device("dev-1")));
    assert_eq!(
        jwt_claims(again.json()["access_token"].as_str().unwrap())["asset_id"],
        id.as_str()
    );
    // Introspection: active, then inactive once the asset is revoked; no new asset tokens.
    let introspect = |t: &str| {
        s.post_form(
            "/services/oauth2/introspect",
            &[
                ("token", t),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
            ],
        )
        .json()
    };
    assert_eq!(introspect(token)["active"], true);
    let r = s.admin(Method::Delete, &format!("/admin/assets/{id}"), Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["revoked_at"].is_u64());
    assert_eq!(introspect(token)["active"], false);
    let r = exchange(&s, &access, &factory.sign(&device("dev-1")));
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);
    // Expired asset tokens introspect inactive too.
    let fresh = exchange(&s, &access, &factory.sign(&device("dev-2")));
    let fresh = fresh.json()["access_token"].as_str().unwrap().to_owned();
    s.clock.advance_s(301);
    assert_eq!(introspect(&fresh)["active"], false);
}

#[test]
fn the_exchange_refuses_bad_subjects_actors_and_apps() {
    let s = Server::new();
    let factory = DeviceKey::new();
    let (app, _) = setup(&s, &factory, json!({}));
    let good = factory.sign(&device("dev-1"));
    // A revoked subject token; an unknown one.
    assert_eq!(exchange(&s, "00Dnope!xyz", &good).error(), "invalid_grant");
    let t = s.tokens(&app, "alice");
    let revoked = t["access_token"].as_str().unwrap();
    s.revoke(revoked);
    assert_eq!(exchange(&s, revoked, &good).error(), "invalid_grant");
    // An expired subject token.
    let old = s.tokens(&app, "alice");
    s.clock.advance_s(7201);
    let r = exchange(&s, old["access_token"].as_str().unwrap(), &good);
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);
    let access = s.tokens(&app, "alice")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A badly signed actor token (another key); an unsigned one; a missing did.
    let r = exchange(&s, &access, &DeviceKey::new().sign(&device("dev-1")));
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{}",
        r.body
    );
    assert_eq!(
        exchange(&s, &access, &unsigned(&device("dev-1"))).error(),
        "invalid_grant"
    );
    let r = exchange(&s, &access, &factory.sign(&json!({"Name": "no id"})));
    assert!(r.body.contains("did"), "{}", r.body);
    // Not yet valid; a cnf without a key; an Asset that is no object.
    let mut later = device("dev-1");
    later["nbf"] = json!(s.clock.now_ms() / 1000 + 3600);
    assert!(exchange(&s, &access, &factory.sign(&later))
        .body
        .contains("nbf"));
    let mut no_key = device("dev-1");
    no_key["cnf"] = json!({"kid": "x"});
    assert!(exchange(&s, &access, &factory.sign(&no_key))
        .body
        .contains("cnf"));
    let mut flat = device("dev-1");
    flat["Asset"] = json!("x");
    assert!(exchange(&s, &access, &factory.sign(&flat))
        .body
        .contains("Asset"));
    // Wrong token types.
    let r = s.token(&[
        ("grant_type", EXCHANGE),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        ("subject_token", &access),
        ("actor_token_type", JWT),
        ("actor_token", &good),
    ]);
    assert_eq!(r.error(), "invalid_request", "{}", r.body);
    // An app without asset tokens.
    let plain = s.app(json!({}));
    let token = s.tokens(&plain, "alice")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = exchange(&s, &token, &good);
    assert_eq!(r.error(), "unauthorized_client", "{}", r.body);
}

#[test]
fn unsigned_actor_tokens_need_the_apps_consent_and_cnf_keys_must_sign() {
    let s = Server::new();
    let factory = DeviceKey::new();
    let (_, access) = setup(&s, &factory, json!({"allow_unsigned": true}));
    assert_eq!(
        exchange(&s, &access, &unsigned(&device("dev-u"))).status,
        200
    );
    // With cnf.jwk, the device must sign with that key.
    let device_key = DeviceKey::new();
    let mut claims = device("dev-pop");
    claims["cnf"] = json!({"jwk": device_key.jwk()});
    let r = exchange(&s, &access, &device_key.sign(&claims));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        jwt_claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jwk"],
        device_key.jwk()
    );
    let r = exchange(&s, &access, &unsigned(&claims));
    assert!(r.body.contains("cnf.jwk"), "{}", r.body);
    let r = exchange(&s, &access, &factory.sign(&claims));
    assert!(r.body.contains("cnf.jwk"), "{}", r.body);
}

#[test]
fn an_audience_or_resource_outside_the_apps_audiences_is_invalid_target() {
    let s = Server::new();
    let factory = DeviceKey::new();
    let (_app, subject) = setup(&s, &factory, json!({}));
    let actor = factory.sign(&device("dev-target"));
    let with = |name: &str, value: &str| {
        s.token(&[
            ("grant_type", EXCHANGE),
            ("subject_token_type", ACCESS),
            ("subject_token", &subject),
            ("actor_token_type", JWT),
            ("actor_token", &actor),
            (name, value),
        ])
    };
    for (name, value) in [
        ("audience", "https://elsewhere.example"),
        ("resource", "https://elsewhere.example/api"),
    ] {
        let r = with(name, value);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"], "invalid_target", "{}", r.body);
    }
    // The app's own audience may be named.
    let r = with("audience", "https://iot.example.com");
    assert_eq!(r.status, 200, "{}", r.body);
}
