//! Redirect URIs (`oauth::redirect`): the registration rules, the exact match with its one
//! loopback-port exception (RFC 8252 §7.3), and the responses built on them.

use edge_oauth::core::oauth::redirect::{
    check_callback_url, is_private_use_scheme, is_registered, with_fragment, with_query,
};
use proptest::prelude::*;
use proptest::sample::select;

use crate::strategies::{is_sendable_header_value, text, url_like};

const SCRIPT_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob", "about"];

proptest! {
    #![proptest_config(crate::config(1024))]

    /// What registration accepts: an absolute URI (RFC 6749 §3.1.2, RFC 3986 §4.3: visible
    /// ASCII only, no space, no control character) without a fragment, no script-bearing
    /// scheme, plain http only to loopback. Redirects put the registered string verbatim into a
    /// `Location` header, so anything else would be a header the edge cannot send.
    #[test]
    fn accepted_callback_urls_keep_the_rules(raw in url_like()) {
        if check_callback_url(&raw).is_ok() {
            prop_assert!(!raw.contains('#'), "fragment accepted: {raw:?}");
            let url = url::Url::parse(&raw).unwrap();
            prop_assert!(url.fragment().is_none());
            prop_assert!(!SCRIPT_SCHEMES.contains(&url.scheme()), "{raw:?}");
            if url.scheme() == "http" {
                prop_assert!(matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")), "{raw:?}");
            }
            prop_assert!(raw.chars().all(|c| c.is_ascii_graphic()), "not an RFC 3986 URI: {raw:?}");
            prop_assert!(is_sendable_header_value(&raw));
            prop_assert!(is_registered(std::slice::from_ref(&raw), &raw));
        }
    }

    /// Anything but the registered string itself fails the match, except a loopback IP
    /// literal's port.
    #[test]
    fn only_the_exact_string_matches(registered in url_like(), given in url_like()) {
        let reg = vec![registered.clone()];
        if is_registered(&reg, &given) && given != registered {
            let loopback = |u: &str| u.starts_with("http://127.0.0.1") || u.starts_with("http://[::1]");
            prop_assert!(loopback(&registered) && loopback(&given), "{registered:?} matched {given:?}");
            // Same host, same path and query: only the port differs.
            let strip = |u: &str| {
                let rest = u.strip_prefix("http://").unwrap();
                let host_end = if rest.starts_with('[') { rest.find(']').unwrap() + 1 } else { rest.find([':', '/']).unwrap_or(rest.len()) };
                let (host, after) = rest.split_at(host_end);
                let after = after.strip_prefix(':').map(|p| p.trim_start_matches(|c: char| c.is_ascii_digit())).unwrap_or(after);
                (host.to_owned(), after.to_owned())
            };
            prop_assert_eq!(strip(&registered), strip(&given));
        }
    }

    #[test]
    fn loopback_literals_match_on_any_port(
        host in select(&["127.0.0.1", "[::1]"][..]),
        registered_port in proptest::option::of(1u32..65536),
        port in proptest::option::of(1u32..65536),
        path in "/[a-z0-9/._-]{0,12}(\\?[a-z=&]{0,8})?",
        other in "/[a-z0-9]{1,6}",
    ) {
        let at = |p: Option<u32>, path: &str| match p {
            Some(p) => format!("http://{host}:{p}{path}"),
            None => format!("http://{host}{path}"),
        };
        let reg = vec![at(registered_port, &path)];
        prop_assert!(is_registered(&reg, &at(port, &path)));
        if other != path {
            prop_assert!(!is_registered(&reg, &at(port, &other)));
        }
        prop_assert!(!is_registered(&reg, &at(port, &path).replacen("http://", "https://", 1)));
        let localhost = format!("http://localhost:{}{path}", port.unwrap_or(80));
        prop_assert!(!is_registered(&reg, &localhost));
    }

    /// The authorization response: `with_query` keeps the callback's own query and adds the
    /// pairs, `with_fragment` puts them after `#`; both decode back to what was sent.
    #[test]
    fn responses_carry_their_parameters(
        base in "https://app\\.example\\.com/[a-z]{0,6}(\\?[a-z]{1,3}=[a-z]{0,3})?",
        pairs in proptest::collection::vec(("[a-z_]{1,8}", text()), 0..5),
    ) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let q = with_query(&base, &refs);
        prop_assert!(q.starts_with(&base));
        prop_assert!(is_sendable_header_value(&q));
        let url = url::Url::parse(&q).unwrap();
        let got: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        prop_assert_eq!(&got[got.len() - pairs.len()..], &pairs[..]);

        let f = with_fragment(&base, &refs);
        prop_assert!(is_sendable_header_value(&f));
        let (before, fragment) = f.split_once('#').unwrap();
        prop_assert_eq!(before, base.as_str());
        let got: Vec<(String, String)> = form_urlencoded::parse(fragment.as_bytes()).into_owned().collect();
        prop_assert_eq!(got, pairs);
    }

    #[test]
    fn private_use_schemes_are_not_http(raw in url_like()) {
        if is_private_use_scheme(&raw) {
            let scheme = url::Url::parse(&raw).unwrap().scheme().to_owned();
            prop_assert!(scheme != "http" && scheme != "https");
        }
    }
}
