//! JWTs and JWS headers: `oauth::assertion::Untrusted::parse` (assertions, client assertions,
//! actor tokens), `assertion::instant_ms` (their times), and `oauth::bearer`'s token sorting.

use edge_oauth::core::oauth::assertion::{instant_ms, Untrusted};
use edge_oauth::core::oauth::bearer::{is_foreign_jwt, looks_like_access_token};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

use crate::strategies::{b64url, json, json_object, text};

fn compact(header: &Map<String, Value>, claims: &Map<String, Value>, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(serde_json::to_string(header).unwrap().as_bytes()),
        b64url(serde_json::to_string(claims).unwrap().as_bytes()),
        b64url(sig)
    )
}

/// Headers as clients write them, with a random `typ` and `alg` now and then.
fn header() -> BoxedStrategy<Map<String, Value>> {
    (
        json_object(),
        proptest::option::of(select(
            &["RS256", "ES256", "none", "HS256", "", "rs256"][..],
        )),
        proptest::option::of(select(&["JWT", "at+jwt", "AT+JWT", "asset+jwt", ""][..])),
    )
        .prop_map(|(mut h, alg, typ)| {
            if let Some(a) = alg {
                h.insert("alg".into(), a.into());
            }
            if let Some(t) = typ {
                h.insert("typ".into(), t.into());
            }
            h
        })
        .boxed()
}

/// Strings near a compact JWS: parts that are not base64url, not JSON, not objects; too few
/// or too many dots; padding; whitespace around it.
fn near_jws() -> BoxedStrategy<String> {
    let part = prop_oneof![
        json().prop_map(|v| b64url(v.to_string().as_bytes())),
        text().prop_map(|t| b64url(t.as_bytes())),
        text(),
        Just("e30".to_owned()),
        Just("e30=".to_owned()),
        Just(String::new()),
    ];
    prop_oneof![
        proptest::collection::vec(part, 0..6).prop_map(|p| p.join(".")),
        (text(), text()).prop_map(|(a, b)| format!(" {a}.{b}. ")),
        text(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn any_string_parses_or_is_refused(jwt in prop_oneof![near_jws(), text()]) {
        if let Ok(t) = Untrusted::parse(&jwt) {
            // Accepted: exactly three parts, and the accessors answer.
            prop_assert_eq!(jwt.trim().split('.').count(), 3);
            let _ = (t.alg(), t.typ(), t.claim("iss"), t.claims().len());
        }
        let _ = is_foreign_jwt(&jwt);
        let _ = looks_like_access_token(&jwt);
    }

    /// Encoding a header and claims as a compact JWS and parsing it gives them back.
    #[test]
    fn compact_jws_round_trips(h in header(), c in json_object(), sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        let jwt = compact(&h, &c, &sig);
        let t = Untrusted::parse(&jwt).unwrap();
        prop_assert_eq!(t.claims(), &c);
        prop_assert_eq!(t.alg(), h.get("alg").and_then(Value::as_str).unwrap_or(""));
        prop_assert_eq!(t.typ(), h.get("typ").and_then(Value::as_str));
        for (k, v) in &c {
            prop_assert_eq!(t.claim(k), v.as_str());
        }
        // Whitespace around it changes nothing.
        let padded = format!("  {jwt}\n");
        prop_assert!(Untrusted::parse(&padded).is_ok());
    }

    /// RFC 8725 §3.11: only `typ: at+jwt` passes as an access token; every other three-part
    /// token is foreign (an ID token above all), whatever else its header says.
    #[test]
    fn only_at_jwt_is_an_access_token(h in header(), c in json_object()) {
        let jwt = compact(&h, &c, b"sig");
        let typ = h.get("typ").and_then(Value::as_str);
        prop_assert_eq!(is_foreign_jwt(&jwt), !typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")));
        prop_assert!(looks_like_access_token(&jwt));
    }

    /// NumericDate in seconds, milliseconds, numbers or numeric strings: one instant, never a
    /// panic, never negative.
    #[test]
    fn instants_are_read_in_seconds_or_milliseconds(
        v in prop_oneof![
            json(),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(|i| Value::from(i.to_string())),
            text().prop_map(Value::from),
        ],
        secs in 0u64..10_000_000_000,
    ) {
        let _ = instant_ms(Some(&v));
        prop_assert_eq!(instant_ms(None), None);
        let as_secs = instant_ms(Some(&Value::from(secs)));
        prop_assert_eq!(instant_ms(Some(&Value::from(secs.to_string()))), as_secs);
        if secs > 100_000_000 {
            prop_assert_eq!(instant_ms(Some(&Value::from(secs * 1000))), as_secs);
        }
    }
}
