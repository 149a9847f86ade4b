//! Redirect URIs: registration rules and the exact match of RFC 6749 §3.1.2 / RFC 9700 §4.1.3.

/// Why a callback URL cannot be registered.
pub fn check_callback_url(raw: &str) -> Result<(), String> {
    // RFC 6749 §3.1.2, RFC 3986 §4.3: an absolute URI, so visible ASCII only. The parser would
    // drop tabs and newlines and percent-encode spaces and other characters, but redirects use
    // the registered string as it is, and a `Location` carrying them cannot be sent.
    if !raw.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "callback URL must be an absolute URI: visible ASCII only, percent-encode the rest: {}",
            raw.escape_default()
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|_| format!("callback URL is not an absolute URL: {raw}"))?;
    if url.fragment().is_some() || raw.contains('#') {
        // RFC 6749 §3.1.2: the endpoint URI MUST NOT include a fragment component.
        return Err(format!("callback URL must not have a fragment: {raw}"));
    }
    match url.scheme() {
        "https" => Ok(()),
        // Plain HTTP only for loopback (RFC 8252 §7.3), as Salesforce allows http://localhost.
        "http" => match url.host_str() {
            Some("localhost" | "127.0.0.1" | "[::1]") => Ok(()),
            _ => Err(format!(
                "callback URL must use https (http only for loopback): {raw}"
            )),
        },
        // Script-bearing schemes would turn a redirect into code execution.
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about" => {
            Err(format!("callback URL scheme not allowed: {raw}"))
        }
        // Private-use schemes of native apps (RFC 8252 §7.1), e.g. `sfdc://success`.
        _ if url.cannot_be_a_base() && !raw.contains(':') => {
            Err(format!("callback URL is not an absolute URL: {raw}"))
        }
        _ => Ok(()),
    }
}

/// Exact, case-sensitive string comparison against the registered list: no prefix, path,
/// query or case leeway (RFC 9700 §4.1.3). The one exception is the port of a loopback IP
/// literal (RFC 8252 §7.3): native apps and MCP clients listen on whatever port is free, so
/// `http://127.0.0.1:PORT/…` and `http://[::1]:PORT/…` match a registered URI that differs only
/// in its port. `localhost` is not included (RFC 8252 §8.3: it may resolve elsewhere).
pub fn is_registered(registered: &[String], given: &str) -> bool {
    registered.iter().any(|r| {
        r == given
            || loopback_without_port(r).is_some_and(|p| Some(p) == loopback_without_port(given))
    })
}

/// `http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest` as (host, rest), the port dropped;
/// `None` for anything else. Compared as written, so no normalisation can widen a match.
fn loopback_without_port(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|h| after.starts_with(h))?;
    let rest = &after[host.len()..];
    // An optional `:digits`, then the path (which must start with `/`).
    let rest = match rest.strip_prefix(':') {
        Some(port_and_path) => {
            let digits = port_and_path
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(port_and_path.len());
            if digits == 0 || digits > 5 {
                return None;
            }
            &port_and_path[digits..]
        }
        None => rest,
    };
    rest.starts_with('/').then_some((host, rest))
}

/// `redirect_uri` with `pairs` added to its query (RFC 6749 §4.1.2: retaining any query it has).
pub fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{encoded}")
}

/// `redirect_uri` with `pairs` in its fragment (RFC 6749 §4.2.2: the user-agent flow's
/// tokens never reach the client's server, nor its logs).
pub fn with_fragment(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{redirect_uri}#{encoded}")
}

/// Whether the redirect URI has a private-use scheme (RFC 8252 §7.1, e.g. `myapp://cb`) rather
/// than http(s): a native app's own, where the user-agent flow may return a refresh token
/// (salesforce-reference.md §2).
pub fn is_private_use_scheme(redirect_uri: &str) -> bool {
    url::Url::parse(redirect_uri).is_ok_and(|u| !matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(check_callback_url("https://app.example.com/cb").is_ok());
        assert!(check_callback_url("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_callback_url("sfdc://success").is_ok());
        assert!(check_callback_url("/relative").is_err());
        assert!(check_callback_url("https://app.example.com/cb#frag").is_err());
        assert!(check_callback_url("http://evil.example.com/cb").is_err());
        assert!(check_callback_url("javascript:alert(1)").is_err());
        for not_a_uri in [
            "https://a.example/c\nb",
            "https://a.example/c b",
            " https://a.example/cb",
            "https://a.example/\u{2603}",
        ] {
            assert!(check_callback_url(not_a_uri).is_err(), "{not_a_uri:?}");
        }
    }

    #[test]
    fn open_redirect_variants_do_not_match() {
        let reg = vec!["https://app.example.com/cb".to_string()];
        assert!(is_registered(&reg, "https://app.example.com/cb"));
        for evil in [
            "https://app.example.com/cb/extra",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#x",
            "https://app.example.com:444/cb",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com/cb/",
            "https://app.example.com.evil.com/cb",
        ] {
            assert!(!is_registered(&reg, evil), "{evil}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_with_any_port_and_nothing_else_does() {
        let reg = vec![
            "http://127.0.0.1:9/cb".to_string(),
            "http://[::1]/cb?x=1".to_string(),
            "http://localhost:9/cb".to_string(),
        ];
        for ok in [
            "http://127.0.0.1:9/cb",
            "http://127.0.0.1:54321/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb?x=1",
        ] {
            assert!(is_registered(&reg, ok), "{ok}");
        }
        for evil in [
            "http://127.0.0.1:54321/cb2",
            "http://127.0.0.1:54321/cb/",
            "http://127.0.0.1:54321/cb?x=1",
            "http://127.0.0.1:54321/CB",
            "http://127.0.0.1:54321@evil.example/cb",
            "http://127.0.0.1.evil.example:9/cb",
            "https://127.0.0.1:9/cb",
            "http://[::1]:8080/cb",
            "http://localhost:54321/cb",
            "http://127.0.0.2:9/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:123456/cb",
        ] {
            assert!(!is_registered(&reg, evil), "{evil}");
        }
    }

    #[test]
    fn query_is_kept() {
        assert_eq!(
            with_query("https://a/cb?x=1", &[("code", "c d")]),
            "https://a/cb?x=1&code=c+d"
        );
    }
}
