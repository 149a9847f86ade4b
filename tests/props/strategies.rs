//! Generators shared by the properties: arbitrary text that hits the characters parsers split
//! on, JSON values, URL-shaped strings and base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

/// Characters that mean something to one of the parsers, plus a few that must never get through
/// to a header (CR, LF, NUL) and some outside ASCII.
const SPECIAL: &[char] = &[
    '&', '=', '+', '%', '?', '#', '/', ':', '@', '.', '!', ' ', '\t', '\r', '\n', '\0', '"', '\\',
    ';', ',', '[', ']', '{', '}', '-', '_', '~', '*', '<', '>', '\u{7f}', 'é', '☃', '\u{200b}',
    '\u{fffd}', '0', '9', 'a', 'Z',
];

/// Text made mostly of [`SPECIAL`] characters, printable ASCII or anything at all.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => vec(select(SPECIAL), 0..24).prop_map(|c| c.into_iter().collect::<String>()),
        3 => "[ -~]{0,40}",
        2 => any::<String>(),
        1 => vec(prop_oneof![select(SPECIAL), any::<char>(), proptest::char::range('a', 'z')], 0..200)
            .prop_map(|c| c.into_iter().collect::<String>()),
    ]
    .boxed()
}

/// A short token-ish word (`[A-Za-z0-9._~-]`), or sometimes anything.
pub fn word() -> BoxedStrategy<String> {
    prop_oneof![4 => "[A-Za-z0-9._~-]{1,12}", 1 => text()].boxed()
}

/// A JSON value of bounded depth and size.
pub fn json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Dyadic fractions: exact in binary and in their shortest decimal form, so they survive
        // a JSON round trip (serde_json's default float parsing is not exact for every f64).
        any::<i16>()
            .prop_filter_map("finite", |i| serde_json::Number::from_f64(
                f64::from(i) / 64.0
            ))
            .prop_map(Value::Number),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(word(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A JSON object.
pub fn json_object() -> BoxedStrategy<serde_json::Map<String, Value>> {
    btree_map(word(), json(), 0..8)
        .prop_map(|m| m.into_iter().collect::<serde_json::Map<String, Value>>())
        .boxed()
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// URL-shaped strings: schemes, hosts and ports that the callback and fetch rules treat
/// differently, paths, queries and fragments with awkward characters; or any text.
pub fn url_like() -> BoxedStrategy<String> {
    let scheme = select(
        &[
            "https://",
            "http://",
            "HTTPS://",
            "javascript:",
            "data:",
            "file://",
            "vbscript:",
            "blob:",
            "about:",
            "sfdc://",
            "com.example.app:/",
            "myapp:",
            "ftp://",
            "",
            "//",
            "https:",
            "http:/",
        ][..],
    );
    let host = select(
        &[
            "app.example.com",
            "localhost",
            "127.0.0.1",
            "[::1]",
            "127.0.0.2",
            "10.0.0.1",
            "169.254.169.254",
            "[fe80::1]",
            "[::ffff:127.0.0.1]",
            "0.0.0.0",
            "example.com.",
            "xn--bcher-kva.example",
            "bücher.example",
            "user:pass@app.example.com",
            "app.example.com.evil.com",
            "",
            "a b",
            "LOCALHOST",
            "sub.localhost",
            "[::]",
            "127.0.0.1:80@evil.com",
            "%31%32%37.0.0.1",
        ][..],
    );
    let port = prop_oneof![
        Just(String::new()),
        (0u32..70000).prop_map(|p| format!(":{p}")),
        Just(":".to_owned()),
        Just(":123456".to_owned()),
    ];
    let piece = prop_oneof![
        "[a-z0-9/._~-]{0,12}",
        text(),
        Just("%2F..%2F".to_owned()),
        Just("\n".to_owned()),
    ]
    .boxed();
    let rest = (
        piece.clone(),
        proptest::option::of(piece.clone()),
        proptest::option::of(piece),
    )
        .prop_map(|(path, query, fragment)| {
            let mut s = format!("/{path}");
            if let Some(q) = query {
                s.push('?');
                s.push_str(&q);
            }
            if let Some(f) = fragment {
                s.push('#');
                s.push_str(&f);
            }
            s
        });
    prop_oneof![
        6 => (scheme, host, port, rest).prop_map(|(s, h, p, r)| format!("{s}{h}{p}{r}")),
        1 => text(),
    ]
    .boxed()
}

/// Whether every character of a header value is one the edge can put into a `Headers` object
/// and send: visible ASCII, space and tab (RFC 9110 §5.5, without obs-text). A CR, LF or NUL,
/// or a character above U+00FF, makes workerd's `Headers` throw, which is a 500.
pub fn is_sendable_header_value(v: &str) -> bool {
    v.chars().all(|c| c == '\t' || (' '..='~').contains(&c))
}
