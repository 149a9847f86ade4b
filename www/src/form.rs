//! `application/x-www-form-urlencoded`: building request bodies and authorization URLs, and
//! reading callback parameters from a query or a fragment.

use alloc::string::String;
use alloc::vec::Vec;

/// Appends `name=value` (percent-encoded, `&`-separated) to `out`.
pub fn push(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(['?', '&']) {
        out.push('&');
    }
    encode_into(out, name);
    out.push('=');
    encode_into(out, value);
}

fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Decoded `name=value` pairs, in order.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(s: &str) -> Self {
        Self(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(s: &str) -> String {
    crate::web::decode_component(s)
}

/// Which answer a callback URL carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// In the query: the web server flow's `code` (or its `error`), RFC 6749 §4.1.2.
    Query,
    /// In the fragment: the user-agent flow's tokens (or its `error`), RFC 6749 §4.2.2.
    Fragment,
}

pub struct Callback {
    pub kind: Kind,
    pub params: Params,
}

/// The authorization response in `href`, if it carries one: a fragment with `access_token`,
/// `id_token` or `error` wins; otherwise a query with `state` and `code` or `error`.
pub fn callback(href: &str) -> Option<Callback> {
    let (rest, fragment) = href.split_once('#').unwrap_or((href, ""));
    let params = Params::parse(fragment);
    if ["access_token", "id_token", "error"]
        .iter()
        .any(|k| params.get(k).is_some())
    {
        return Some(Callback {
            kind: Kind::Fragment,
            params,
        });
    }
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params = Params::parse(query);
    let answered = params.get("code").is_some() || params.get("error").is_some();
    (answered && params.get("state").is_some()).then_some(Callback {
        kind: Kind::Query,
        params,
    })
}
