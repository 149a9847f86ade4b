//! Form bodies and query strings (`core::http`): `Params`, the body reader, cookies, path
//! segments. Multipart bodies are parsed by the runtime (workerd's `FormData`, in
//! `edge::http::multipart_pairs`) and re-encoded as a form with `form_urlencoded::Serializer`
//! before the core sees them; that re-encoding must give the core exactly the fields sent.

use edge_oauth::core::http::{
    percent_decode, BodyError, BodyReader, Method, ParamError, Params, Request, MAX_BODY_BYTES,
    MAX_PARAM_BYTES,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::strategies::text;

fn request(headers: Vec<(String, String)>, query: String, body: Vec<u8>) -> Request {
    Request {
        method: Method::Post,
        origin: "https://login.example.com".into(),
        path: "/services/oauth2/token".into(),
        query,
        headers,
        body,
    }
}

/// Names a protocol request uses, so that generated pairs collide with them and with each other.
fn name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(&["grant_type", "code", "client_id", "client_secret", "scope", "a", ""][..])
            .prop_map(str::to_owned),
        1 => text(),
    ]
    .boxed()
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((name(), text()), 0..8)
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn any_bytes_parse_as_a_form(raw in vec(any::<u8>(), 0..512)) {
        let p = Params::parse(&raw);
        for (k, _) in p.pairs() {
            // Every name can be asked for without a panic.
            let _ = p.get(k);
        }
    }

    #[test]
    fn near_form_text_parses(raw in text()) {
        let p = Params::parse(raw.as_bytes());
        prop_assert!(p.pairs().len() <= raw.split('&').count());
    }

    /// What the edge does to a multipart body: its text fields, serialized as a form, come back
    /// as the same fields in the same order (any Unicode, `&`, `=`, `+`, `%`, newlines).
    #[test]
    fn multipart_fields_reencoded_as_a_form_round_trip(fields in pairs()) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish();
        prop_assert!(body.is_ascii());
        let parsed = Params::parse(body.as_bytes());
        prop_assert_eq!(parsed.pairs(), &fields[..]);
    }

    /// CONTRACT §2: a name sent twice is `invalid_request`; an empty value is absent; a value
    /// over 8 KiB is refused.
    #[test]
    fn get_follows_the_duplicate_empty_and_size_rules(
        mut fields in pairs(),
        big in proptest::option::of(MAX_PARAM_BYTES - 2..MAX_PARAM_BYTES + 3),
        wanted in name(),
    ) {
        if let Some(n) = big {
            fields.push((wanted.clone(), "x".repeat(n)));
        }
        let p = Params::from_pairs(fields.clone());
        let values: Vec<&String> = fields.iter().filter(|(k, _)| *k == wanted).map(|(_, v)| v).collect();
        let got = p.get(&wanted);
        match values.as_slice() {
            [] => prop_assert_eq!(got, Ok(None)),
            [v] if v.len() > MAX_PARAM_BYTES => prop_assert_eq!(got, Err(ParamError::TooLarge(wanted.clone()))),
            [v] if v.is_empty() => prop_assert_eq!(got, Ok(None)),
            [v] => prop_assert_eq!(got, Ok(Some(v.as_str()))),
            _ => prop_assert_eq!(got, Err(ParamError::Duplicate(wanted.clone()))),
        }
    }

    /// Body parameters come first; a query parameter is added only under a name the body lacks.
    #[test]
    fn merging_keeps_the_body_and_adds_only_missing_query_names(body in pairs(), query in pairs()) {
        let merged = Params::from_pairs(body.clone()).merged_with(Params::from_pairs(query.clone()));
        let merged = merged.pairs();
        prop_assert_eq!(&merged[..body.len()], &body[..]);
        for (k, v) in &merged[body.len()..] {
            prop_assert!(!body.iter().any(|(b, _)| b == k));
            prop_assert!(query.contains(&(k.clone(), v.clone())));
        }
        for (k, v) in &query {
            if !body.iter().any(|(b, _)| b == k) {
                prop_assert!(merged.contains(&(k.clone(), v.clone())));
            }
        }
    }

    #[test]
    fn form_params_need_the_form_media_type(
        content_type in prop_oneof![
            select(&[
                "application/x-www-form-urlencoded",
                "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
                " application/x-www-form-urlencoded ;x=y",
                "application/json",
                "multipart/form-data; boundary=x",
                "text/plain",
                "",
            ][..]).prop_map(str::to_owned),
            text(),
        ],
        body in vec(any::<u8>(), 0..256),
        query in text(),
    ) {
        let req = request(vec![("content-type".into(), content_type.clone())], query, body.clone());
        let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match req.form_params() {
            Ok(p) => {
                prop_assert_eq!(media, "application/x-www-form-urlencoded");
                let expected = Params::parse(&body);
                prop_assert_eq!(p.pairs(), expected.pairs());
            }
            Err(e) => {
                prop_assert_eq!(e, ParamError::ContentType);
                prop_assert_ne!(media, "application/x-www-form-urlencoded");
            }
        }
        let _ = req.query_params();
        let _ = req.client_ip();
    }

    #[test]
    fn cookies_are_found_and_never_panic(header in text(), name in "[a-z_]{1,8}", value in "[A-Za-z0-9]{0,12}") {
        let req = request(vec![("cookie".into(), header.clone())], String::new(), Vec::new());
        let _ = req.cookie(&name);
        let with = request(
            vec![("cookie".into(), format!("other=1; {name}={value}; x"))],
            String::new(),
            Vec::new(),
        );
        prop_assert_eq!(with.cookie(&name), Some(value.as_str()));
    }

    /// A path segment percent-encoded byte by byte decodes back; one without `%` is unchanged.
    #[test]
    fn path_segments_decode(s in text()) {
        let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(percent_decode(&encoded), s.clone());
        if !s.contains('%') {
            prop_assert_eq!(percent_decode(&s), s.clone());
        }
        let _ = percent_decode(&format!("{s}%"));
        let _ = percent_decode(&format!("%{s}"));
    }

    /// The edge's body reader: refused by a declared length over the limit before any chunk,
    /// or as soon as the chunks pass it; never holds more than the limit.
    #[test]
    fn bodies_over_the_limit_are_refused(
        declared in proptest::option::of(prop_oneof![
            (0u64..200_000).prop_map(|n| n.to_string()),
            text(),
            Just("99999999999999999999999".to_owned()),
            Just(" 65536 ".to_owned()),
        ]),
        sizes in vec(0usize..40_000, 0..6),
    ) {
        let start = BodyReader::start(declared.as_deref());
        match declared.as_deref().map(|d| d.trim().parse::<u64>()) {
            Some(Ok(n)) if n > MAX_BODY_BYTES as u64 => prop_assert_eq!(start.err(), Some(BodyError::TooLarge)),
            Some(Err(_)) => prop_assert_eq!(start.err(), Some(BodyError::Unreadable)),
            _ => {
                let mut reader = start.unwrap();
                let mut total = 0usize;
                let mut refused = false;
                for n in &sizes {
                    total += n;
                    match reader.push(&vec![b'a'; *n]) {
                        Ok(()) => prop_assert!(total <= MAX_BODY_BYTES),
                        Err(e) => {
                            prop_assert_eq!(e, BodyError::TooLarge);
                            prop_assert!(total > MAX_BODY_BYTES);
                            refused = true;
                            break;
                        }
                    }
                }
                if !refused {
                    prop_assert_eq!(reader.finish().len(), total);
                }
            }
        }
    }

    #[test]
    fn methods_parse_case_insensitively(m in select(&["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"][..]), lower in any::<bool>(), other in text()) {
        let raw = if lower { m.to_ascii_lowercase() } else { m.to_owned() };
        prop_assert_eq!(Method::parse(&raw).name(), m);
        let _ = Method::parse(&other);
    }
}
