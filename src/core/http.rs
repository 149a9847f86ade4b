//! The core's view of HTTP: a plain request in, a plain response out. The edge maps
//! `worker::Request`/`worker::Response` to and from these and decides nothing.

use serde::Serialize;

/// Largest body we read: a token request with a 171-character verifier, a JWT assertion and a
/// long state fits many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest single parameter value. Salesforce caps callback URL lists at 2000 characters.
pub const MAX_PARAM_BYTES: usize = 8 * 1024;

/// Why the edge refused a body before the core saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_BODY_BYTES`]: 413 (RFC 9110 §15.5.14).
    TooLarge,
    /// A malformed `Content-Length`, or the stream failed.
    Unreadable,
}

/// Reads a body of at most [`MAX_BODY_BYTES`], chunk by chunk. A declared `Content-Length`
/// over the limit is refused by [`BodyReader::start`], before a single byte is read; a body
/// without one (chunked) is refused by [`BodyReader::push`] as soon as it passes the limit. So
/// an oversized body costs neither memory nor the work of authenticating its sender.
#[derive(Debug, Default)]
pub struct BodyReader {
    body: Vec<u8>,
}

impl BodyReader {
    pub fn start(content_length: Option<&str>) -> Result<Self, BodyError> {
        match content_length.map(|l| l.trim().parse::<u64>()) {
            Some(Ok(n)) if n > MAX_BODY_BYTES as u64 => Err(BodyError::TooLarge),
            Some(Err(_)) => Err(BodyError::Unreadable),
            _ => Ok(Self::default()),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if self.body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        self.body
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "OTHER",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// Scheme and host the request came in on, e.g. `http://127.0.0.1:8787`.
    pub origin: String,
    pub path: String,
    /// Raw query string without the `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The media type of the body, lower case, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    pub fn query_params(&self) -> Params {
        Params::parse(self.query.as_bytes())
    }

    /// Form parameters of a POST body (`application/x-www-form-urlencoded`; the edge re-encodes
    /// `multipart/form-data` into this form before the core sees it).
    pub fn form_params(&self) -> Result<Params, ParamError> {
        if self.content_type() != "application/x-www-form-urlencoded" {
            return Err(ParamError::ContentType);
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ParamError::TooLarge("body".into()));
        }
        Ok(Params::parse(&self.body))
    }

    /// The caller's address as Cloudflare's edge reports it (`CF-Connecting-IP`), for
    /// throttling keys; `unknown` where no edge set it.
    pub fn client_ip(&self) -> &str {
        self.header("cf-connecting-ip")
            .map(str::trim)
            .filter(|ip| !ip.is_empty() && ip.len() <= 64)
            .unwrap_or("unknown")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamError {
    Duplicate(String),
    TooLarge(String),
    ContentType,
}

impl ParamError {
    pub fn describe(&self) -> String {
        match self {
            Self::Duplicate(name) => format!("duplicate parameter: {name}"),
            Self::TooLarge(name) => format!("parameter too large: {name}"),
            Self::ContentType => "content type must be application/x-www-form-urlencoded".into(),
        }
    }
}

/// Decoded `application/x-www-form-urlencoded` pairs, in order.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).into_owned().collect())
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The single value of a protocol parameter. CONTRACT §2: duplicates are `invalid_request`.
    /// An empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ParamError> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(ParamError::Duplicate(name.into()));
        }
        match first {
            Some((_, v)) if v.len() > MAX_PARAM_BYTES => Err(ParamError::TooLarge(name.into())),
            Some((_, v)) if !v.is_empty() => Ok(Some(v.as_str())),
            _ => Ok(None),
        }
    }

    /// Merges `other` under `self`: `other`'s parameters are added under the names `self`
    /// lacks (body parameters win over query parameters of the same name), all of them, so
    /// that a name `other` repeats is still a duplicate.
    pub fn merged_with(mut self, other: Params) -> Self {
        let own = self.0.len();
        for (k, v) in other.0 {
            if !self.0[..own].iter().any(|(key, _)| *key == k) {
                self.0.push((k, v));
            }
        }
        self
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self::new(status, "application/json;charset=UTF-8", body)
    }

    /// A page that may not be framed, runs no script, and whose forms may only be sent to us and
    /// redirected on to `form_target` (a CSP source: the client's callback origin or scheme).
    /// Browsers apply `form-action` to the redirects that follow a form submission too, so the
    /// callback must be listed or the final redirect to the client is blocked.
    pub fn html(status: u16, body: String, form_target: &str) -> Self {
        let csp = format!(
            "default-src 'none'; style-src 'self'; form-action 'self' {form_target}; frame-ancestors 'none'; base-uri 'none'"
        );
        Self::new(status, "text/html;charset=UTF-8", body)
            .with_header("x-frame-options", "DENY")
            .with_header("content-security-policy", &csp)
            .with_header("referrer-policy", "no-referrer")
            .no_store()
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain;charset=UTF-8", body.into())
    }

    pub fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
        // The Location carries a code or tokens' context: never leak it onwards as a Referer.
        .with_header("referrer-policy", "no-referrer")
        .no_store()
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// RFC 6749 §5.1: token responses must not be cached.
    pub fn no_store(self) -> Self {
        self.with_header("cache-control", "no-store")
            .with_header("pragma", "no-cache")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The browser cookies we set (RFC 6265bis): host-only (no `Domain`), `Path=/`, `HttpOnly`,
/// `SameSite=Lax`. When the issuer is https they carry `Secure` and the `__Host-` prefix, which
/// browsers accept only with exactly those attributes, so no subdomain or plain-http page can
/// plant or shadow them. Plain-http development (loopback) keeps the bare names: non-browser
/// clients drop `Secure` cookies there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn for_issuer(issuer: &str) -> Self {
        Self {
            secure: issuer.starts_with("https://"),
        }
    }

    pub fn name(self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// The cookie's value in `req`.
    pub fn read<'r>(self, req: &'r Request, base: &str) -> Option<&'r str> {
        req.cookie(&self.name(base))
    }

    /// A `Set-Cookie` header value.
    pub fn set(self, base: &str, value: &str, max_age_s: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}",
            self.name(base)
        )
    }
}

/// A path segment with its `%XX` escapes decoded (a `+` stays a `+`, unlike in a form); an
/// escape that is not valid UTF-8 leaves the segment as it was.
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_repeated_in_the_merged_params_stays_a_duplicate() {
        let body = Params::parse(b"grant_type=x&scope=body");
        let merged = body.merged_with(Params::parse(b"scope=q&state=1&state=2"));
        assert_eq!(merged.get("scope"), Ok(Some("body")));
        assert_eq!(
            merged.get("state"),
            Err(ParamError::Duplicate("state".into()))
        );
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert_eq!(p.get("a"), Err(ParamError::Duplicate("a".into())));
        assert_eq!(p.get("b"), Ok(Some("2")));
        assert_eq!(p.get("c"), Ok(None));
    }

    /// The edge's reading loop over chunks of `sizes`: the result and how many chunks it pulled.
    fn read(content_length: Option<&str>, sizes: &[usize]) -> (Result<usize, BodyError>, usize) {
        let mut pulled = 0;
        let result = (|| {
            let mut reader = BodyReader::start(content_length)?;
            for n in sizes {
                pulled += 1;
                reader.push(&vec![b'a'; *n])?;
            }
            Ok(reader.finish().len())
        })();
        (result, pulled)
    }

    #[test]
    fn an_oversized_content_length_is_refused_before_any_chunk_is_read() {
        let (result, reads) = read(Some("65537"), &[65537]);
        assert_eq!(result, Err(BodyError::TooLarge));
        assert_eq!(reads, 0, "the body was read before its length was checked");
        let (result, reads) = read(Some("99999999999999999999999"), &[1]);
        assert_eq!((result, reads), (Err(BodyError::Unreadable), 0));
    }

    #[test]
    fn a_chunked_body_is_abandoned_once_it_passes_the_limit() {
        // Four 30,000-byte chunks: the third crosses 65,536, the fourth is never pulled.
        let (result, reads) = read(None, &[30_000, 30_000, 30_000, 30_000]);
        assert_eq!(result, Err(BodyError::TooLarge));
        assert_eq!(reads, 3);
    }

    #[test]
    fn a_body_at_the_limit_is_read_whole() {
        assert_eq!(read(Some("65536"), &[65_536]).0, Ok(65_536));
        assert_eq!(read(None, &[32_768, 32_768]).0, Ok(65_536));
    }

    #[test]
    fn path_segments_decode_escapes_only() {
        assert_eq!(
            percent_decode("https%3A%2F%2Fa.example%2Fc.json"),
            "https://a.example/c.json"
        );
        assert_eq!(percent_decode("a+b%2"), "a+b%2");
        assert_eq!(percent_decode("%FF"), "%FF");
    }

    #[test]
    fn empty_values_count_as_absent() {
        assert_eq!(Params::parse(b"a=").get("a"), Ok(None));
    }
}
