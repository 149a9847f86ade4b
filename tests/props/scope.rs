//! Scopes (`oauth::scope`): requested ⊆ the app's, de-duplicated, in order; unknown names are
//! found for registration.

use edge_oauth::core::oauth::error::ErrorCode;
use edge_oauth::core::oauth::scope::{unknown_scopes, ScopeSet, KNOWN_SCOPES};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use crate::strategies::text;

/// Scope words: known names, near misses, separators.
fn scope_word() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(KNOWN_SCOPES).prop_map(str::to_owned),
        1 => select(&["API", "api ", " ", "", "openid\t", "full\u{a0}", "refresh_token,api"][..]).prop_map(str::to_owned),
        1 => text(),
    ]
    .boxed()
}

fn app_scopes() -> impl Strategy<Value = Vec<String>> {
    subsequence(KNOWN_SCOPES, 1..KNOWN_SCOPES.len())
        .prop_map(|s| s.into_iter().map(str::to_owned).collect())
}

proptest! {
    #![proptest_config(crate::config(1024))]

    #[test]
    fn requested_scopes_are_the_apps_own(
        allowed in app_scopes(),
        words in vec(scope_word(), 0..8),
        sep in select(&[" ", "  ", "+", "\t"][..]),
        omitted in any::<bool>(),
    ) {
        let raw = words.join(sep);
        let requested = if omitted { None } else { Some(raw.as_str()) };
        match ScopeSet::parse_requested(requested, &allowed) {
            Ok(set) => {
                let got = set.to_vec();
                prop_assert!(!got.is_empty());
                prop_assert!(set.is_subset_of(&allowed));
                for s in &got {
                    prop_assert!(KNOWN_SCOPES.contains(&s.as_str()), "unknown scope parsed: {s:?}");
                }
                let mut dedup = got.clone();
                dedup.dedup();
                dedup.sort();
                dedup.dedup();
                prop_assert_eq!(dedup.len(), got.len(), "duplicates in {:?}", got);
                // Its joined form parses back to itself.
                prop_assert_eq!(ScopeSet::parse_requested(Some(&set.joined()), &allowed).unwrap(), set.clone());
                if !omitted && raw.split(' ').any(|w| !w.is_empty()) {
                    // Every word requested is there, in the order first requested.
                    let asked: Vec<&str> = raw.split(' ').filter(|w| !w.is_empty()).collect();
                    let mut firsts: Vec<&str> = Vec::new();
                    for w in asked {
                        if !firsts.contains(&w) { firsts.push(w); }
                    }
                    prop_assert_eq!(got, firsts);
                } else {
                    prop_assert_eq!(got, ScopeSet::from_list(&allowed).to_vec());
                }
            }
            Err(e) => {
                prop_assert_eq!(e.code, ErrorCode::InvalidScope);
                prop_assert!(raw.split(' ').any(|w| !w.is_empty() && !allowed.iter().any(|a| a == w)));
            }
        }
    }

    #[test]
    fn unknown_scopes_are_exactly_the_unknown_names(words in vec(scope_word(), 0..10)) {
        let unknown = unknown_scopes(&words);
        let expected: Vec<String> = words.iter().filter(|w| !KNOWN_SCOPES.contains(&w.as_str())).cloned().collect();
        prop_assert_eq!(unknown, expected);
    }

    #[test]
    fn without_removes_only_what_is_named(allowed in app_scopes(), drop in subsequence(KNOWN_SCOPES, 0..5)) {
        let set = ScopeSet::from_list(&allowed);
        let rest = set.without(&drop);
        for s in rest.as_slice() {
            prop_assert!(!drop.contains(&s.as_str()));
            prop_assert!(set.contains(s));
        }
        for s in set.as_slice() {
            prop_assert_eq!(rest.contains(s), !drop.contains(&s.as_str()));
        }
        prop_assert_eq!(set.allows_refresh(), set.contains("refresh_token") || set.contains("offline_access"));
    }
}
