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
