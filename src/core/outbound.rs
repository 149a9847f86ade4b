//! Fetching what clients point us at (client ID metadata documents, `jwks_uri`): which URLs may
//! be fetched at all, and the fetch itself as a backend (the Worker's `fetch`, or a test's map).
//!
//! A Worker cannot see the DNS answer behind a host name, so the server-side request forgery
//! guard has two halves: here, every IP literal that is not public (loopback, private,
//! link-local, unique-local, CGNAT, unspecified, multicast) and `localhost` are refused before
//! any fetch; and `wrangler.toml` sets Cloudflare's `global_fetch_strictly_public`, under which
//! a name that resolves to a private address is not reached either. In development
//! (`DEV_MODE=1`) `http://127.0.0.1:…` is allowed, so tests can serve documents on loopback.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

/// What a fetch returned: the status (a redirect is returned, never followed), the body (at
/// most the limit asked for) and the `Cache-Control` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The body is larger than the limit.
    TooLarge,
    /// No answer within the time limit.
    Timeout,
    /// Connection refused, DNS failure, a blocked address, ...
    Unreachable(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => f.write_str("too large"),
            Self::Timeout => f.write_str("unreachable (timed out)"),
            Self::Unreachable(why) => write!(f, "unreachable ({why})"),
        }
    }
}

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + 'a>>;

/// A GET without credentials or cookies, that follows no redirect.
pub trait Fetcher {
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize, timeout_ms: u64) -> FetchFuture<'a>;
}

/// The deployment's fetcher (`Config::outbound`).
#[derive(Clone)]
pub struct Outbound(pub std::rc::Rc<dyn Fetcher>);

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbound")
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Self(std::rc::Rc::new(Offline))
    }
}

/// Fetches nothing (native builds without a test fetcher).
struct Offline;

impl Fetcher for Offline {
    fn get<'a>(&'a self, _url: &'a str, _max: usize, _timeout_ms: u64) -> FetchFuture<'a> {
        Box::pin(async { Err(FetchError::Unreachable("no network here".into())) })
    }
}

/// Whether `raw` may be fetched: `https` to a host that is not a non-public IP literal nor
/// `localhost`; in development also `http(s)://127.0.0.1[:port]`. No user info, no fragment.
pub fn check_url(raw: &str, dev_mode: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("URL must not carry credentials or a fragment".into());
    }
    let dev_loopback = dev_mode && url.host() == Some(url::Host::Ipv4(Ipv4Addr::LOCALHOST));
    if dev_loopback && matches!(url.scheme(), "http" | "https") {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err("URL must use https".into());
    }
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                return Err("localhost is not a public host".into());
            }
        }
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            return Err("the host is not a public address".into())
        }
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            return Err("the host is not a public address".into())
        }
        None => return Err("URL has no host".into()),
        _ => {}
    }
    Ok(url)
}

/// Whether an address is publicly routable (not loopback, private, link-local, CGNAT,
/// unique-local, unspecified, documentation, multicast or broadcast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::LOCALHOST)
        }
    }
}

/// How long a response may be cached by its `Cache-Control` (`max-age`, capped at `cap_s`);
/// `None` when it must not be (`no-store`, `no-cache`, or no `max-age`).
pub fn max_age_s(cache_control: Option<&str>, cap_s: u64) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control?
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
    {
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.filter(|s| *s > 0).map(|s| s.min(cap_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_hosts_outside_development() {
        assert!(check_url("https://client.example.com/meta.json", false).is_ok());
        for bad in [
            "http://client.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://172.16.0.1/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://localhost/x",
            "https://a.localhost/x",
            "https://user:pw@client.example.com/x",
            "https://client.example.com/x#f",
            "file:///etc/passwd",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8123/client.json", true).is_ok());
        assert!(check_url("http://127.0.0.1:8123/client.json", false).is_err());
        assert!(check_url("http://10.0.0.1/client.json", true).is_err());
    }

    #[test]
    fn cache_lifetimes_follow_the_headers_with_a_cap() {
        assert_eq!(max_age_s(Some("public, max-age=600"), 86400), Some(600));
        assert_eq!(max_age_s(Some("max-age=999999"), 86400), Some(86400));
        assert_eq!(max_age_s(Some("no-store"), 86400), None);
        assert_eq!(max_age_s(Some("max-age=60, no-cache"), 86400), None);
        assert_eq!(max_age_s(None, 86400), None);
        assert_eq!(max_age_s(Some("max-age=0"), 86400), None);
    }
}
