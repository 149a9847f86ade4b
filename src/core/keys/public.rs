//! Public keys that verify what clients sign: JWT bearer assertions (RFC 7523 §2.1) and
//! `private_key_jwt` client assertions (RFC 7523 §2.2, OIDC Core §9), with the key an admin
//! registered on the app (its `certificate` field, salesforce-reference.md §5, §14).
//!
//! The field holds a PEM `CERTIFICATE` (what Salesforce admins upload), a PEM `PUBLIC KEY`
//! (SubjectPublicKeyInfo), one JWK or a JWK Set; several PEM blocks may follow each other
//! (a key rollover). Every form is read into the same [`PublicKey`]: the algorithm and the JWK
//! members, which both verification backends import (WebCrypto's `importKey("jwk")` on the
//! edge, RustCrypto natively). The certificate's own signature and validity dates are not
//! checked: like Salesforce, we trust the key because an admin registered it, not because of
//! who issued the certificate.

use std::future::Future;
use std::pin::Pin;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::material::{
    take, whole, ID_EC_PUBLIC_KEY, INTEGER, OID, PRIME256V1, RSA_ENCRYPTION, SEQUENCE,
};
use super::{Alg, KeyError};
use crate::core::secret::b64url;

/// Smallest RSA modulus we accept (RFC 7518 §3.3: "2048 bits or larger MUST be used").
pub const MIN_RSA_BITS: usize = 2048;

const BIT_STRING: u8 = 0x03;
/// `[0] EXPLICIT Version` at the start of an X.509 v3 TBSCertificate (RFC 5280 §4.1).
const VERSION: u8 = 0xa0;

/// A registered public key: its algorithm, its `kid` when the JWK named one, and the JWK
/// (`kty`, and `n`/`e` or `crv`/`x`/`y`; nothing private).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub alg: Alg,
    pub kid: Option<String>,
    pub jwk: Value,
}

pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, KeyError>> + 'a>>;

/// Checks a JWS signature (RFC 7515 §5.2) over `input` with `key`, for the key's algorithm.
/// ES256 signatures are the raw 64-byte `r || s` (RFC 7518 §3.4). `Ok(false)` is a signature
/// that does not verify; `Err` is a backend that could not run.
pub trait Verifier {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> VerifyFuture<'a>;
}

/// The keys of an app's `certificate` field, or why it holds none we can use.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKey>, KeyError> {
    let text = text.trim().replace("\\n", "\n");
    let keys = if text.starts_with('{') {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| KeyError(format!("the certificate is not valid JSON: {e}")))?;
        match value.get("keys") {
            Some(Value::Array(keys)) => keys.iter().map(from_jwk).collect::<Result<_, _>>()?,
            Some(_) => return Err(KeyError("`keys` of a JWK Set must be an array".into())),
            None => vec![from_jwk(&value)?],
        }
    } else {
        let blocks = pem::parse_many(&text)
            .map_err(|e| KeyError(format!("the certificate is not valid PEM: {e}")))?;
        if blocks.len() != text.matches("-----BEGIN ").count() {
            return Err(KeyError("a PEM block has no END line".into()));
        }
        blocks
            .iter()
            .map(|b| match b.tag() {
                "CERTIFICATE" => certificate_spki(b.contents()).and_then(from_spki),
                "PUBLIC KEY" => from_spki(b.contents()),
                other => Err(format!("a `{other}` block is no certificate or public key")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(KeyError)?
    };
    if keys.is_empty() {
        return Err(KeyError(
            "no key: expected a PEM certificate or public key, a JWK or a JWK Set".into(),
        ));
    }
    Ok(keys)
}

/// RFC 5280 §4.1: `Certificate ::= SEQUENCE { tbsCertificate, ... }`, and in the TBSCertificate,
/// after the optional version, the serial number, signature algorithm, issuer, validity and
/// subject: the SubjectPublicKeyInfo.
fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    const NOT_X509: &str = "not an X.509 certificate";
    let certificate = whole(SEQUENCE, der).ok_or(NOT_X509)?;
    let (tbs, _) = take(SEQUENCE, certificate).ok_or(NOT_X509)?;
    let mut rest = match take(VERSION, tbs) {
        Some((_, rest)) => rest,
        None => tbs,
    };
    let (_serial, next) = take(INTEGER, rest).ok_or(NOT_X509)?;
    rest = next;
    for _field in ["signature", "issuer", "validity", "subject"] {
        let (_, next) = take(SEQUENCE, rest).ok_or(NOT_X509)?;
        rest = next;
    }
    let spki_len = rest.len() - take(SEQUENCE, rest).ok_or(NOT_X509)?.1.len();
    Ok(&rest[..spki_len])
}

/// RFC 5280 §4.1.2.7 SubjectPublicKeyInfo: RSA (RFC 8017 A.1.1 `RSAPublicKey`) or P-256 (an
/// uncompressed point, RFC 5480 §2.2).
fn from_spki(der: &[u8]) -> Result<PublicKey, String> {
    const NOT_SPKI: &str = "not a SubjectPublicKeyInfo";
    let body = whole(SEQUENCE, der).ok_or(NOT_SPKI)?;
    let (algorithm, rest) = take(SEQUENCE, body).ok_or(NOT_SPKI)?;
    let bits = whole(BIT_STRING, rest).ok_or(NOT_SPKI)?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(NOT_SPKI.into()),
    };
    let (oid, params) = take(OID, algorithm).ok_or(NOT_SPKI)?;
    match oid {
        RSA_ENCRYPTION => {
            let seq = whole(SEQUENCE, key).ok_or("not an RSA public key")?;
            let (n, rest) = take(INTEGER, seq).ok_or("not an RSA public key")?;
            let e = whole(INTEGER, rest).ok_or("not an RSA public key")?;
            rsa_key(unsigned(n), unsigned(e), None)
        }
        ID_EC_PUBLIC_KEY if whole(OID, params) == Some(PRIME256V1) => match key {
            [4, point @ ..] if point.len() == 64 => Ok(ec_key(&point[..32], &point[32..], None)),
            _ => Err("the P-256 key is not an uncompressed point".into()),
        },
        ID_EC_PUBLIC_KEY => Err("EC keys must be on P-256 (ES256)".into()),
        _ => Err("unsupported key type: RSA or EC P-256 expected".into()),
    }
}

/// RFC 7517 §4 / RFC 7518 §6: an RSA or P-256 public JWK. Private members are refused, so a
/// private key pasted by mistake is not kept.
pub fn from_jwk(jwk: &Value) -> Result<PublicKey, KeyError> {
    let obj = jwk
        .as_object()
        .ok_or_else(|| KeyError("a JWK must be a JSON object".into()))?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| obj.contains_key(*m))
    {
        return Err(KeyError(
            "the JWK holds a private key; register the public key only".into(),
        ));
    }
    let member = |name: &str| -> Result<Vec<u8>, KeyError> {
        obj.get(name)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| KeyError(format!("the JWK has no valid `{name}`")))
    };
    let kid = obj.get("kid").and_then(Value::as_str).map(str::to_owned);
    let key = match obj.get("kty").and_then(Value::as_str) {
        Some("RSA") => rsa_key(&member("n")?, &member("e")?, kid),
        Some("EC") if obj.get("crv").and_then(Value::as_str) == Some("P-256") => {
            match (member("x")?, member("y")?) {
                (x, y) if x.len() == 32 && y.len() == 32 => Ok(ec_key(&x, &y, kid)),
                _ => Err("P-256 coordinates are 32 bytes each".into()),
            }
        }
        Some("EC") => Err("EC keys must be on P-256 (ES256)".into()),
        _ => Err("a JWK's kty must be RSA or EC".into()),
    }
    .map_err(KeyError)?;
    match obj.get("alg").and_then(Value::as_str) {
        None => Ok(key),
        Some(alg) if alg == key.alg.name() => Ok(key),
        Some(alg) => Err(KeyError(format!(
            "the JWK's alg {alg} does not fit its key ({} expected)",
            key.alg.name()
        ))),
    }
}

/// A DER INTEGER's magnitude: without the sign byte a positive number may start with.
fn unsigned(int: &[u8]) -> &[u8] {
    match int {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => int,
    }
}

fn rsa_key(n: &[u8], e: &[u8], kid: Option<String>) -> Result<PublicKey, String> {
    let n = unsigned(n);
    // An empty INTEGER has no bits (its count must not underflow).
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(PublicKey {
        alg: Alg::Rs256,
        kid,
        jwk: jwk(&[
            ("kty", "RSA".into()),
            ("n", b64url(n)),
            ("e", b64url(unsigned(e))),
        ]),
    })
}

fn ec_key(x: &[u8], y: &[u8], kid: Option<String>) -> PublicKey {
    PublicKey {
        alg: Alg::Es256,
        kid,
        jwk: jwk(&[
            ("kty", "EC".into()),
            ("crv", "P-256".into()),
            ("x", b64url(x)),
            ("y", b64url(y)),
        ]),
    }
}

fn jwk(members: &[(&str, String)]) -> Value {
    Value::Object(
        members
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect::<Map<_, _>>(),
    )
}

/// The JWK member `name` decoded (the backends read `n`, `e`, `x`, `y` with this).
pub fn member(key: &PublicKey, name: &str) -> Option<Vec<u8>> {
    key.jwk
        .get(name)
        .and_then(Value::as_str)
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
}

/// The verification backend of a deployment, shared by its requests: WebCrypto on the edge
/// (`edge::crypto`), RustCrypto natively (the default there).
#[derive(Clone)]
pub struct SignatureCheck(pub std::rc::Rc<dyn Verifier>);

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignatureCheck")
    }
}

impl Default for SignatureCheck {
    #[cfg(not(target_arch = "wasm32"))]
    fn default() -> Self {
        Self(std::rc::Rc::new(super::native::NativeVerifier))
    }
    /// The edge always sets WebCrypto's; this one refuses, so nothing verifies by accident.
    #[cfg(target_arch = "wasm32")]
    fn default() -> Self {
        Self(std::rc::Rc::new(NoVerifier))
    }
}

#[cfg(target_arch = "wasm32")]
struct NoVerifier;

#[cfg(target_arch = "wasm32")]
impl Verifier for NoVerifier {
    fn verify<'a>(&'a self, _: &'a PublicKey, _: &'a [u8], _: &'a [u8]) -> VerifyFuture<'a> {
        Box::pin(std::future::ready(Err(KeyError(
            "no signature verification backend".into(),
        ))))
    }
}
