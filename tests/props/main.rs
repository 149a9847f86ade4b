//! Property tests of the core's parsers (proptest, stable Rust): whatever a caller sends, no
//! parser panics; where there is an encoder, decoding gives back what was encoded; and what a
//! parser accepts keeps its invariants (an accepted redirect URI has no fragment, parsed scopes
//! are known names, an accepted RSA key has at least 2048 bits, …). The last module drives the
//! whole router with generated requests: no 5xx, and every header value is one the edge can
//! send.
//!
//! Each property runs a bounded number of cases so the target stays well under a minute in a
//! debug build on two cores; `PROPTEST_CASES=N` runs N cases of every property instead. A
//! failure prints its (shrunk) input: keep it as a plain `#[test]` beside the property, as the
//! `regression_*` tests here are.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::test_runner::Config as ProptestConfig;

#[allow(dead_code)]
#[path = "../flows/support.rs"]
mod support;

mod admin;
mod client_auth;
mod jwt;
mod keys;
mod metadata;
mod params;
mod redirect;
mod router;
mod scope;
mod strategies;

/// `default_cases` cases (or `PROPTEST_CASES`), no failure files: a failing input becomes a
/// regression test by hand.
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
