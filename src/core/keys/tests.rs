use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_executor::block_on;
use jwt_compact::alg::{Rsa, RsaPrivateKey, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, UntrustedToken};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

/// A fresh 2048-bit key as PKCS#8 PEM, for tests.
pub fn test_pem() -> String {
    let mut rng = rsa::rand_core::OsRng;
    let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// A fresh P-256 key as PKCS#8 PEM.
fn p256_pem() -> String {
    let key = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn sign(key: &SigningKey, claims: serde_json::Value) -> String {
    block_on(key.sign(TYP_ID_TOKEN, &claims)).unwrap()
}

/// The published JWK of `kid` in `set`.
fn published(set: &KeySet, kid: &str) -> JsonWebKey<'static> {
    let jwks = set.jwks().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("key published")
        .clone();
    serde_json::from_value(jwk).unwrap()
}

/// The claims of `token` if it verifies against the published key of its `kid`, for the
/// `alg` its header names.
fn verify(set: &KeySet, token: &str) -> Option<serde_json::Value> {
    let untrusted = UntrustedToken::new(token).unwrap();
    let jwk = published(set, untrusted.header().key_id.as_deref()?);
    match untrusted.algorithm() {
        "RS256" => Rsa::rs256()
            .validator::<serde_json::Value>(&RsaPublicKey::try_from(&jwk).ok()?)
            .validate(&untrusted)
            .ok()
            .map(|t| t.claims().custom.clone()),
        "ES256" => verify_es256(&jwk, token),
        _ => None,
    }
}

/// RFC 7515 §5.2 with p256 alone (jwt-compact's `p256` feature does not build in 0.8).
fn verify_es256(jwk: &JsonWebKey<'_>, token: &str) -> Option<serde_json::Value> {
    use p256::ecdsa::signature::Verifier;
    let JsonWebKey::EllipticCurve { curve, x, y, .. } = jwk else {
        return None;
    };
    assert_eq!(curve, "P-256");
    let point =
        p256::EncodedPoint::from_affine_coordinates(x.as_ref().into(), y.as_ref().into(), false);
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?;
    let (input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signature = p256::ecdsa::Signature::from_slice(&signature).ok()?;
    key.verify(input.as_bytes(), &signature).ok()?;
    let claims = URL_SAFE_NO_PAD.decode(input.split_once('.')?.1).ok()?;
    serde_json::from_slice(&claims).ok()
}

#[test]
fn parses_several_keys_and_publishes_all_with_unique_kids() {
    let (a, b) = (test_pem(), test_pem());
    let escaped = format!("{a}{b}").replace('\n', "\\n");
    let set = KeySet::from_pem_list(&escaped).unwrap();
    let jwks = set.jwks().unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(
        keys[0].get("d").is_none(),
        "private part leaked: {}",
        keys[0]
    );
    assert_eq!(set.active().unwrap().kid, keys[0]["kid"]);
}

#[test]
fn tokens_signed_before_a_rotation_still_verify_from_the_new_jwks() {
    let (old, new) = (test_pem(), test_pem());
    let before = KeySet::from_pem_list(&old).unwrap();
    let token = sign(before.active().unwrap(), serde_json::json!({"sub": "x"}));
    // Rotation: the new key goes first (it signs from now on), the old one stays listed.
    let after = KeySet::from_pem_list(&format!("{new}{old}")).unwrap();
    let kid = UntrustedToken::new(&token)
        .unwrap()
        .header()
        .key_id
        .clone()
        .unwrap();
    assert_ne!(after.active().unwrap().kid, kid, "the new key signs now");
    assert_eq!(verify(&after, &token).unwrap()["sub"], "x");
}

#[test]
fn rejects_garbage() {
    assert!(KeySet::from_pem_list("not a key").is_err());
}

#[test]
fn accepts_pkcs1_beside_pkcs8() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let mut rng = rsa::rand_core::OsRng;
    let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::CRLF).unwrap().to_string();
    let set = KeySet::from_pem_list(&format!("{}{pkcs1}", test_pem())).unwrap();
    assert_eq!(set.jwks().unwrap()["keys"].as_array().unwrap().len(), 2);
    // The PKCS#1 key signs exactly as the same key in PKCS#8 would.
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let (from1, from8) = (
        KeySet::from_pem_list(&pkcs1).unwrap(),
        KeySet::from_pem_list(&pkcs8).unwrap(),
    );
    assert_eq!(from1.jwks(), from8.jwks());
    let token = sign(from1.active().unwrap(), serde_json::json!({"sub": "p1"}));
    assert_eq!(verify(&from8, &token).unwrap()["sub"], "p1");
}

#[test]
fn a_pkcs1_key_wrapped_into_pkcs8_is_the_same_key() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pkcs1 = key.to_pkcs1_der().unwrap();
    let wrapped = material::wrap_pkcs1(pkcs1.as_bytes());
    assert_eq!(RsaPrivateKey::from_pkcs8_der(&wrapped).unwrap(), key);
    // Byte for byte what the rsa crate itself writes as PKCS#8.
    assert_eq!(wrapped, key.to_pkcs8_der().unwrap().as_bytes());
}

#[test]
fn a_truncated_block_is_refused_not_skipped() {
    let (a, b) = (test_pem(), test_pem());
    let cut = |pem: &str| pem[..pem.find("-----END").unwrap()].to_string();
    assert!(KeySet::from_pem_list(&format!("{a}{}", cut(&b))).is_err());
    assert!(KeySet::from_pem_list(&format!("{}{b}", cut(&a))).is_err());
    let pkcs1 = b.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    assert!(
        parse_pems(&pkcs1).is_err(),
        "PKCS#8 body under a PKCS#1 label"
    );
    let sec1 = p256_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");
    assert!(parse_pems(&sec1).is_err(), "PKCS#8 body under a SEC1 label");
}

#[test]
fn an_unusable_secret_is_reported_on_use_never_served_as_an_empty_set() {
    for set in [
        KeySet::load("not a key"),
        KeySet::load(""),
        KeySet::load(" \n"),
        KeySet::default(),
        KeySet::from_keys(Vec::new()),
    ] {
        assert!(set.error().is_some());
        assert!(set.active().is_err());
        assert!(set.jwks().is_err(), "an empty JWKS would hide the problem");
    }
    assert_eq!(
        KeySet::load("").error().unwrap().0,
        "SIGNING_KEYS is not set"
    );
    assert!(KeySet::load(&test_pem()).error().is_none());
}

#[test]
fn signed_token_verifies_with_published_key() {
    let set = KeySet::from_pem_list(&test_pem()).unwrap();
    let key = set.active().unwrap();
    let token = sign(key, serde_json::json!({"sub": "x"}));
    let untrusted = UntrustedToken::new(&token).unwrap();
    assert_eq!(untrusted.header().key_id.as_deref(), Some(key.kid.as_str()));
    assert_eq!(untrusted.header().token_type.as_deref(), Some(TYP_ID_TOKEN));
    assert_eq!(untrusted.algorithm(), "RS256");
    assert_eq!(verify(&set, &token).unwrap()["sub"], "x");
}

#[test]
fn es256_token_verifies_against_its_published_jwk() {
    let set = KeySet::from_pem_list(&p256_pem()).unwrap();
    let key = set.active().unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("tnk".into(), "00D".into());
    let token =
        block_on(key.sign_with_header(TYP_ACCESS_TOKEN, &serde_json::json!({"sub": "e"}), &extra))
            .unwrap();
    let untrusted = UntrustedToken::new(&token).unwrap();
    assert_eq!(untrusted.algorithm(), "ES256", "the key's type decides alg");
    assert_eq!(untrusted.header().token_type.as_deref(), Some("at+jwt"));
    let header = UntrustedToken::<serde_json::Value>::try_from(token.as_str()).unwrap();
    assert_eq!(header.header().other_fields["tnk"], "00D");
    assert_eq!(verify(&set, &token).unwrap()["sub"], "e");
    let jwk = &set.jwks().unwrap()["keys"][0];
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (&"EC".into(), &"P-256".into(), &"ES256".into())
    );
    assert!(jwk.get("d").is_none(), "private part leaked: {jwk}");
    // Another key's signature does not pass under this key's kid.
    let other = KeySet::from_pem_list(&p256_pem()).unwrap();
    let forged = sign(other.active().unwrap(), serde_json::json!({"sub": "e"}));
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, sig) = forged.rsplit_once('.').unwrap();
    assert_eq!(verify(&set, &format!("{head}.{sig}")), None);
}

/// One P-256 test key (test-only, generated for this file), as OpenSSL (Node's
/// `KeyObject.export`) writes it in SEC1 and in PKCS#8.
const SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEILj5Z6xXI95vB/YiFQSqdwM+kibPPrltf2YpurIUIpanoAoGCCqGSM49
AwEHoUQDQgAEzVVoGlziKIUVk4hQLehSuKjSOalNonCI1bMlOOmV7Pc5be+iOWxW
rUf9FonA+GKF0lORx7ekbq8WOXCqDsBQfQ==
-----END EC PRIVATE KEY-----
";
const SEC1_AS_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguPlnrFcj3m8H9iIV
BKp3Az6SJs8+uW1/Zim6shQilqehRANCAATNVWgaXOIohRWTiFAt6FK4qNI5qU2i
cIjVsyU46ZXs9zlt76I5bFatR/0WicD4YoXSU5HHt6RurxY5cKoOwFB9
-----END PRIVATE KEY-----
";

#[test]
fn a_sec1_key_is_the_same_key_as_its_pkcs8_form() {
    let (a, b) = (
        KeySet::from_pem_list(SEC1_PEM).unwrap(),
        KeySet::from_pem_list(SEC1_AS_PKCS8_PEM).unwrap(),
    );
    assert_eq!(a.jwks(), b.jwks());
    let token = sign(a.active().unwrap(), serde_json::json!({"sub": "s"}));
    assert_eq!(verify(&b, &token).unwrap()["sub"], "s");
}

#[test]
fn a_sec1_key_that_does_not_name_its_curve_is_refused() {
    // RustCrypto writes SEC1 without the optional curve: the key could be on any 256-bit curve.
    let secret = p256::SecretKey::from_pkcs8_pem(&p256_pem()).unwrap();
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap().to_string();
    let err = parse_pems(&sec1).unwrap_err();
    assert!(
        err.0.contains("P-256") && err.0.contains("PKCS#8"),
        "{}",
        err.0
    );
}

#[test]
fn kids_are_the_rfc7638_thumbprints_jwt_compact_computes() {
    let (rsa_pem, ec_pem) = (test_pem(), p256_pem());
    let set = KeySet::from_pem_list(&format!("{rsa_pem}{ec_pem}")).unwrap();
    let rsa_key = RsaPrivateKey::from_pkcs8_pem(&rsa_pem).unwrap();
    let rsa_public = RsaPublicKey::from(&rsa_key);
    let ec_key = p256::ecdsa::SigningKey::from_pkcs8_pem(&ec_pem).unwrap();
    let point = ec_key.verifying_key().to_encoded_point(false);
    let ec_public = JsonWebKey::EllipticCurve {
        curve: "P-256".into(),
        x: point.x().unwrap().as_slice().into(),
        y: point.y().unwrap().as_slice().into(),
        secret: None,
    };
    let expected = [
        b64url(&JsonWebKey::from(&rsa_public).thumbprint::<sha2::Sha256>()),
        b64url(&ec_public.thumbprint::<sha2::Sha256>()),
    ];
    let jwks = set.jwks().unwrap();
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, expected);
}

#[test]
fn the_rfc7638_example_thumbprint() {
    // RFC 7638 §3.1.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let members = [
        ("e", "AQAB".to_owned()),
        ("kty", "RSA".to_owned()),
        ("n", n.to_owned()),
    ];
    assert_eq!(
        thumbprint(&members),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn a_mixed_set_publishes_each_key_with_its_own_alg_and_kty() {
    let set = KeySet::from_pem_list(&format!("{}{}", p256_pem(), test_pem())).unwrap();
    let jwks = set.jwks().unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let shape: Vec<_> = keys
        .iter()
        .map(|k| (k["alg"].clone(), k["kty"].clone()))
        .collect();
    assert_eq!(
        shape,
        [
            ("ES256".into(), "EC".into()),
            ("RS256".into(), "RSA".into())
        ]
    );
    for k in keys {
        let mut names: Vec<_> = k.as_object().unwrap().keys().cloned().collect();
        names.sort();
        let expected: &[&str] = match k["kty"].as_str() {
            Some("EC") => &["alg", "crv", "kid", "kty", "use", "x", "y"],
            _ => &["alg", "e", "kid", "kty", "n", "use"],
        };
        assert_eq!(names, expected, "public members only");
    }
    // The active (EC) key signs ES256; discovery lists RS256 first all the same.
    assert_eq!(set.active().unwrap().alg, Alg::Es256);
    assert_eq!(set.algs(), [Alg::Rs256, Alg::Es256]);
    assert_eq!(KeySet::load("").algs(), [Alg::Rs256]);
    let token = sign(set.active().unwrap(), serde_json::json!({"sub": "m"}));
    assert_eq!(verify(&set, &token).unwrap()["sub"], "m");
}

#[test]
fn other_key_types_are_refused_with_a_reason() {
    let err = parse_pems(&format!(
        "{}-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        test_pem()
    ))
    .unwrap_err();
    assert!(err.0.starts_with("key 1: not a private key"), "{}", err.0);
}

/// Native signing cost, pure-Rust RSA as the worker ran it in wasm before WebCrypto:
/// `cargo test --lib -- --ignored --nocapture sign_cost`. `rsa` and `num-bigint-dig` are built
/// at opt-level 3 even for tests (Cargo.toml); `p256` is not, so its figure is pessimistic.
#[test]
#[ignore]
fn sign_cost() {
    for (name, pem) in [("RS256", test_pem()), ("ES256", p256_pem())] {
        let set = KeySet::from_pem_list(&pem).unwrap();
        let key = set.active().unwrap();
        let claims = serde_json::json!({"sub": "https://login.example.com/id/00D/005", "iat": 1});
        let n = 200;
        let start = std::time::Instant::now();
        for _ in 0..n {
            sign(key, claims.clone());
        }
        let per = start.elapsed() / n;
        println!("{name}: {} µs per token", per.as_micros());
    }
}
