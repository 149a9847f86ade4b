//! `Authorization: Basic` and the other client credentials (`oauth::client_auth::credentials`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use edge_oauth::core::http::{Method, Params, Request};
use edge_oauth::core::oauth::client_auth::{
    credentials, strip_scheme, Proof, JWT_BEARER_ASSERTION,
};
use edge_oauth::core::oauth::error::ErrorCode;
use proptest::prelude::*;
use proptest::sample::select;

use crate::strategies::{b64url, text, word};

fn request(authorization: Option<String>) -> Request {
    Request {
        method: Method::Post,
        origin: "https://login.example.com".into(),
        path: "/services/oauth2/token".into(),
        query: String::new(),
        headers: authorization
            .map(|a| vec![("authorization".to_owned(), a)])
            .unwrap_or_default(),
        body: Vec::new(),
    }
}

/// RFC 6749 §2.3.1: each part form-urlencoded, then joined by `:` and Base64-encoded.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
}

fn authorization() -> BoxedStrategy<Option<String>> {
    let scheme = select(&["Basic", "basic", "BASIC", "Bearer", "Basic\t", "", "Digest"][..]);
    let value = prop_oneof![
        (text(), text()).prop_map(|(i, s)| basic(&i, &s)),
        text().prop_map(|t| STANDARD.encode(t)),
        text(),
        Just("Og==".to_owned()),
        Just("=".to_owned()),
        Just("////".to_owned()),
    ];
    proptest::option::of(prop_oneof![
        4 => (scheme, value).prop_map(|(s, v)| format!("{s} {v}")),
        1 => text(),
    ])
    .boxed()
}

fn assertion() -> BoxedStrategy<String> {
    prop_oneof![
        text(),
        (
            crate::strategies::json_object(),
            crate::strategies::json_object(),
            text()
        )
            .prop_map(|(h, c, s)| format!(
                "{}.{}.{}",
                b64url(serde_json::to_string(&h).unwrap().as_bytes()),
                b64url(serde_json::to_string(&c).unwrap().as_bytes()),
                b64url(s.as_bytes())
            )),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn any_credentials_are_read_without_a_panic(
        auth in authorization(),
        fields in proptest::collection::vec((
            select(&["client_id", "client_secret", "client_assertion_type", "client_assertion"][..]),
            prop_oneof![
                text(),
                Just(JWT_BEARER_ASSERTION.to_owned()),
                assertion(),
            ],
        ), 0..5),
    ) {
        let req = request(auth);
        let params = Params::from_pairs(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        match credentials(&req, &params) {
            Ok(Some(_)) => {}
            Ok(None) => prop_assert!(params.get("client_id").ok().flatten().is_none()),
            Err(e) => prop_assert!(matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::InvalidClient)),
        }
    }

    /// A Basic header built as RFC 6749 says gives back the exact id and secret, whatever
    /// characters they hold (`:`, `%`, `+`, spaces, Unicode), and the scheme's case is free.
    #[test]
    fn basic_credentials_round_trip(
        id in prop_oneof![word(), text()],
        secret in prop_oneof![word(), text()],
        scheme in select(&["Basic", "basic", "BASIC", "bAsIc"][..]),
        with_body_id in any::<bool>(),
    ) {
        let req = request(Some(format!("{scheme} {}", basic(&id, &secret))));
        let params = if with_body_id && !id.is_empty() {
            Params::from_pairs(vec![("client_id".into(), id.clone())])
        } else {
            Params::default()
        };
        let c = credentials(&req, &params).unwrap().unwrap();
        prop_assert_eq!(&c.client_id, &id);
        match c.proof {
            Proof::Secret(Some(s)) => prop_assert_eq!(s.expose(), secret.as_str()),
            _ => prop_assert!(false, "not a secret"),
        }
    }

    /// Two authentication methods in one request are refused (RFC 6749 §2.3).
    #[test]
    fn a_basic_header_and_a_body_secret_are_refused(id in word(), secret in word(), other in "[A-Za-z0-9]{1,12}") {
        let req = request(Some(format!("Basic {}", basic(&id, &secret))));
        let params = Params::from_pairs(vec![("client_secret".into(), other)]);
        let e = credentials(&req, &params).err().unwrap();
        prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn schemes_strip_whatever_the_header(header in text(), scheme in select(&["basic", "bearer"][..])) {
        if let Some(v) = strip_scheme(&header, scheme) {
            prop_assert_eq!(v, v.trim());
            prop_assert!(header.to_ascii_lowercase().trim_start().starts_with(scheme));
        }
    }
}
