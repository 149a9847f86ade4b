//! ID tokens: decoding a compact JWS and checking its claims (OpenID Connect Core §3.1.3.7,
//! §3.2.2.11, §12.2). The signature itself is checked with WebCrypto (`web::verify`).

use crate::b64;
use crate::web::{err, get, get_str, parse_json};
use alloc::string::String;
use alloc::vec::Vec;
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

/// Clock skew allowed on `exp` and `iat`, seconds.
const LEEWAY_S: f64 = 60.0;

pub struct Jws<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: JsValue,
    /// `header.payload`, the bytes the signature covers.
    pub signed: &'a str,
    pub signature: Vec<u8>,
}

/// Why an ID token is refused (the `error_description` of `invalid_id_token`).
pub type Why = &'static str;

fn part(s: &str) -> Result<JsValue, Why> {
    let bytes = b64::decode(s).ok_or("not base64url")?;
    let v = parse_json(core::str::from_utf8(&bytes).map_err(|_| "not UTF-8")?);
    if v.is_object() {
        Ok(v)
    } else {
        Err("not a JSON object")
    }
}

#[inline(never)]
pub fn invalid(why: Why) -> JsValue {
    err("invalid_id_token", why)
}

#[inline(never)]
pub fn decode(token: &str) -> Result<Jws<'_>, Why> {
    // No slicing by index: its panic path would pull Unicode tables into the download.
    let (signed, s) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let (h, p) = signed.split_once('.').ok_or("not a compact JWS")?;
    if p.contains('.') {
        return Err("not a compact JWS");
    }
    let header = part(h)?;
    let alg = get_str(&header, "alg").unwrap_or_default();
    // Only what the server signs with; never `none`, never HMAC with a public key.
    if alg != "RS256" && alg != "ES256" {
        return Err("unsupported alg");
    }
    Ok(Jws {
        alg,
        kid: get_str(&header, "kid"),
        claims: part(p)?,
        signed,
        signature: b64::decode(s).ok_or("bad signature encoding")?,
    })
}

/// The JWK in `jwks` that can check this JWS: its `kid` (when the header names one) and a key
/// type that fits the algorithm, never an encryption key.
#[inline(never)]
pub fn find_key(jwks: &JsValue, jws: &Jws<'_>) -> Option<JsValue> {
    let kty = if jws.alg == "ES256" { "EC" } else { "RSA" };
    let keys: Array = get(jwks, "keys").dyn_into().ok()?;
    keys.iter().find(|k| {
        get_str(k, "kty").as_deref() == Some(kty)
            && get_str(k, "use").as_deref() != Some("enc")
            && (jws.kid.is_none() || get_str(k, "kid") == jws.kid)
    })
}

/// What the claims must say.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub now_s: f64,
    /// The nonce sent with the authorization request (none on refresh).
    pub nonce: Option<&'a str>,
    /// `at_hash` computed from the access token that came with the ID token, and whether the
    /// claim must be present (the user-agent flow: OIDC Core §3.2.2.10).
    pub at_hash: Option<(&'a str, bool)>,
    /// On refresh, the `sub` of the ID token being replaced (OIDC Core §12.2).
    pub sub: Option<&'a str>,
}

#[inline(never)]
pub fn check_claims(c: &JsValue, e: &Expect<'_>) -> Result<(), Why> {
    if get_str(c, "iss").as_deref() != Some(e.issuer) {
        return Err("iss is not the issuer");
    }
    let aud = get(c, "aud");
    let auds: Vec<String> = match aud.dyn_ref::<Array>() {
        Some(a) => a.iter().filter_map(|v| v.as_string()).collect(),
        None => aud.as_string().into_iter().collect(),
    };
    if !auds.iter().any(|a| a == e.client_id) {
        return Err("aud does not include this client");
    }
    let azp = get_str(c, "azp");
    if (auds.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != e.client_id) {
        return Err("azp is not this client");
    }
    let exp = get(c, "exp").as_f64().ok_or("no exp")?;
    if exp + LEEWAY_S <= e.now_s {
        return Err("expired");
    }
    let iat = get(c, "iat").as_f64().ok_or("no iat")?;
    if iat > e.now_s + LEEWAY_S {
        return Err("iat is in the future");
    }
    let sub = get_str(c, "sub").ok_or("no sub")?;
    if e.sub.is_some_and(|s| s != sub) {
        return Err("sub changed");
    }
    if let Some(n) = e.nonce {
        if get_str(c, "nonce").as_deref() != Some(n) {
            return Err("nonce does not match");
        }
    }
    if let Some((expected, required)) = e.at_hash {
        match get_str(c, "at_hash") {
            Some(h) if h == expected => {}
            Some(_) => return Err("at_hash does not match the access token"),
            None if required => return Err("no at_hash"),
            None => {}
        }
    }
    Ok(())
}
