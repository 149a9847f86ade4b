//! Run in headless Chromium by wasm-bindgen-test (`make test-wasm`).

use crate::form::{callback, Kind, Params};
use crate::{b64, pkce};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn pkce_s256_matches_rfc_7636_appendix_b() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(
        pkce::challenge(verifier).await.unwrap(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[wasm_bindgen_test]
fn the_appendix_b_verifier_is_its_octets_in_base64url() {
    let octets = [
        116u8, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    assert_eq!(
        b64::encode(&octets),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        b64::decode("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap(),
        octets
    );
    assert!(b64::decode("a=").is_none() && b64::decode("abcde").is_none());
}

/// State, nonce and verifier: 43 base64url characters from 32 random bytes (256 bits), never
/// repeated, and every bit position takes both values.
#[wasm_bindgen_test]
fn state_and_nonce_carry_256_random_bits() {
    let mut seen = std::collections::HashSet::new();
    let (mut ones, mut zeros) = ([0u32; 256], [0u32; 256]);
    for _ in 0..1000 {
        let t = pkce::random_token().unwrap();
        assert_eq!(t.len(), 43);
        let bytes = b64::decode(&t).unwrap();
        assert_eq!(bytes.len(), 32);
        for (i, b) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if b >> bit & 1 == 1 {
                    ones[i * 8 + bit] += 1
                } else {
                    zeros[i * 8 + bit] += 1
                }
            }
        }
        assert!(seen.insert(t), "a token repeated");
    }
    // Each bit is 1 in about half the samples (binomial, 1000 draws: 400..600 is > 9 sigma).
    for i in 0..256 {
        assert!(
            (400..=600).contains(&ones[i]),
            "bit {i} is biased: {} ones, {} zeros",
            ones[i],
            zeros[i]
        );
    }
}

#[wasm_bindgen_test]
fn a_code_answer_is_read_from_the_query() {
    let cb = callback("https://app.example/cb?code=abc%2Bd&state=s1").unwrap();
    assert_eq!(cb.kind, Kind::Query);
    assert_eq!(cb.params.get("code"), Some("abc+d"));
    assert_eq!(cb.params.get("state"), Some("s1"));
}

#[wasm_bindgen_test]
fn an_error_in_the_query_is_an_answer() {
    let cb = callback("https://app.example/cb?error=access_denied&error_description=end-user+denied+authorization&state=s1").unwrap();
    assert_eq!(cb.kind, Kind::Query);
    assert_eq!(cb.params.get("error"), Some("access_denied"));
    assert_eq!(
        cb.params.get("error_description"),
        Some("end-user denied authorization")
    );
}

#[wasm_bindgen_test]
fn an_error_in_the_fragment_is_an_answer() {
    let cb = callback(
        "https://app.example/cb#error=access_denied&error_description=end-user%20denied&state=s2",
    )
    .unwrap();
    assert_eq!(cb.kind, Kind::Fragment);
    assert_eq!(cb.params.get("error"), Some("access_denied"));
    assert_eq!(cb.params.get("error_description"), Some("end-user denied"));
    assert_eq!(cb.params.get("state"), Some("s2"));
}

#[wasm_bindgen_test]
fn user_agent_tokens_are_read_from_the_fragment() {
    let cb = callback("https://app.example/cb?keep=1#access_token=00D%21AQ&token_type=Bearer&state=s3&expires_in=7200").unwrap();
    assert_eq!(cb.kind, Kind::Fragment);
    assert_eq!(cb.params.get("access_token"), Some("00D!AQ"));
    assert_eq!(cb.params.get("expires_in"), Some("7200"));
}

#[wasm_bindgen_test]
fn urls_without_an_answer_are_not_callbacks() {
    assert!(callback("https://app.example/").is_none());
    assert!(
        callback("https://app.example/?code=x").is_none(),
        "no state: not ours"
    );
    assert!(callback("https://app.example/?page=2#section").is_none());
    assert_eq!(Params::parse("a=%zz&b").get("a"), Some("%zz"));
    assert_eq!(Params::parse("a=%zz&b").get("b"), Some(""));
}

#[wasm_bindgen_test]
fn form_values_are_percent_encoded() {
    let mut s = String::new();
    crate::form::push(&mut s, "scope", "openid api");
    crate::form::push(&mut s, "redirect_uri", "http://127.0.0.1:8787/?a=b&c");
    assert_eq!(
        s,
        "scope=openid%20api&redirect_uri=http%3A%2F%2F127.0.0.1%3A8787%2F%3Fa%3Db%26c"
    );
}

fn claims(json: &str) -> wasm_bindgen::JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn expect(nonce: Option<&'static str>) -> crate::jwt::Expect<'static> {
    crate::jwt::Expect {
        issuer: "https://op.example",
        client_id: "app",
        now_s: 1_000_000.0,
        nonce,
        at_hash: Some(("abc", true)),
        sub: None,
    }
}

#[wasm_bindgen_test]
fn id_token_claims_are_checked_one_by_one() {
    use crate::jwt::check_claims;
    let good = r#"{"iss":"https://op.example","aud":"app","exp":1000100,"iat":999990,"sub":"u1","nonce":"n1","at_hash":"abc"}"#;
    assert_eq!(check_claims(&claims(good), &expect(Some("n1"))), Ok(()));
    let cases = [
        (
            good.replace("https://op.example", "https://evil.example"),
            "iss is not the issuer",
        ),
        (
            good.replace(r#""aud":"app""#, r#""aud":"other""#),
            "aud does not include this client",
        ),
        (
            good.replace(r#""aud":"app""#, r#""aud":["app","other"]"#),
            "azp is not this client",
        ),
        (
            good.replace(r#""aud":"app""#, r#""aud":"app","azp":"other""#),
            "azp is not this client",
        ),
        (good.replace("1000100", "999900"), "expired"),
        (good.replace("999990", "1000500"), "iat is in the future"),
        (
            good.replace(r#""nonce":"n1""#, r#""nonce":"n2""#),
            "nonce does not match",
        ),
        (good.replace(r#","nonce":"n1""#, ""), "nonce does not match"),
        (
            good.replace(r#""at_hash":"abc""#, r#""at_hash":"abd""#),
            "at_hash does not match the access token",
        ),
        (good.replace(r#","at_hash":"abc""#, ""), "no at_hash"),
        (good.replace(r#""sub":"u1","#, ""), "no sub"),
    ];
    for (json, why) in cases {
        assert_eq!(
            check_claims(&claims(&json), &expect(Some("n1"))),
            Err(why),
            "{json}"
        );
    }
    // Two audiences with azp naming us are fine; a changed sub on refresh is not.
    let two = good.replace(r#""aud":"app""#, r#""aud":["app","other"],"azp":"app""#);
    assert_eq!(check_claims(&claims(&two), &expect(Some("n1"))), Ok(()));
    let mut refresh = expect(None);
    refresh.sub = Some("u2");
    assert_eq!(check_claims(&claims(good), &refresh), Err("sub changed"));
}

#[wasm_bindgen_test]
fn only_rs256_and_es256_compact_tokens_are_decoded() {
    use crate::jwt::decode;
    let header = |alg: &str| {
        b64::encode(
            ["{\"alg\":\"", alg, "\",\"kid\":\"k1\"}"]
                .concat()
                .as_bytes(),
        )
    };
    let payload = b64::encode(b"{\"sub\":\"u\"}");
    let token = |alg: &str| [header(alg), payload.clone(), "c2ln".into()].join(".");
    let ok = token("RS256");
    let jws = decode(&ok).unwrap();
    assert_eq!(
        (
            jws.alg.as_str(),
            jws.kid.as_deref(),
            jws.signature.as_slice()
        ),
        ("RS256", Some("k1"), &b"sig"[..])
    );
    assert_eq!(jws.signed, &ok[..ok.rfind('.').unwrap()]);
    assert!(decode(&token("ES256")).is_ok());
    for alg in ["none", "HS256", "PS256"] {
        assert_eq!(decode(&token(alg)).err(), Some("unsupported alg"), "{alg}");
    }
    assert_eq!(decode("a.b").err(), Some("not a compact JWS"));
    assert_eq!(
        decode(&[ok.as_str(), "x"].join(".")).err(),
        Some("not a compact JWS")
    );
}
