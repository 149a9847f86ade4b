//! Signing keys and the JWKS (`/id/keys`).
//!
//! Keys come from the `SIGNING_KEYS` secret: one or more PEM private keys, newest first
//! ([`parse_pems`]). The first signs; the rest are retired and stay published so that tokens
//! they signed still verify after a rotation. `kid` is the RFC 7638 JWK thumbprint, so it is
//! unique and stable. The key's type decides the JWS `alg`: RSA keys sign RS256 (OIDC Core
//! §15.1 makes it mandatory, and Salesforce clients expect it), EC P-256 keys ES256.
//!
//! The private-key operation is a [`KeyBackend`]: on the edge, the runtime's WebCrypto
//! (`edge::crypto`), so no RSA code ships in the wasm; natively (tests), RustCrypto
//! ([`native`]). This module builds the JWS around it and publishes the public keys.

pub mod managed;
mod material;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
mod public;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use jwt_compact::{Claims, Header};
use serde::Serialize;

use super::secret::{b64url, sha256};
pub use material::{parse_pems, KeyMaterial};
pub use public::{
    from_jwk, member, parse_public_keys, PublicKey, SignatureCheck, Verifier, VerifyFuture,
    MIN_RSA_BITS,
};

/// A JWS algorithm we sign with (RFC 7518 §3.1), in the order discovery lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default, and what Salesforce clients expect.
    Rs256,
    /// ECDSA on P-256 with SHA-256: a signature is far cheaper to make.
    Es256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// The JWK members of the public key (RFC 7518 §6.2, §6.3) besides `kty` (and `crv`), which
    /// the backend supplies.
    pub fn public_members(self) -> [&'static str; 2] {
        match self {
            Alg::Rs256 => ["n", "e"],
            Alg::Es256 => ["x", "y"],
        }
    }

    /// `kty` and, for EC, `crv`: what the algorithm fixes of the JWK.
    fn fixed_members(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Alg::Rs256 => &[("kty", "RSA")],
            Alg::Es256 => &[("crv", "P-256"), ("kty", "EC")],
        }
    }
}

pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, KeyError>> + 'a>>;

/// The private half of a signing key: signs a JWS signing input (RFC 7515 §5.1) with the
/// key's algorithm. For ES256 the signature is the raw 64-byte `r || s` (RFC 7518 §3.4), which
/// is also what WebCrypto's ECDSA returns.
pub trait KeyBackend {
    fn sign<'a>(&'a self, input: &'a [u8]) -> SignFuture<'a>;
}

pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    /// The published JWK: public members only, with `kid`, `alg` and `use`.
    public_jwk: serde_json::Value,
    signer: Box<dyn KeyBackend>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({} {}, [redacted])",
            self.alg.name(),
            self.kid
        )
    }
}

/// The signing keys, or why there are none. An unusable `SIGNING_KEYS` is never served as an
/// empty key set: every request that needs a key gets [`KeyError`] (and the edge logs it).
#[derive(Debug)]
pub struct KeySet {
    keys: Result<Vec<SigningKey>, KeyError>,
}

impl Default for KeySet {
    fn default() -> Self {
        Self::unusable("SIGNING_KEYS is not set")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError(pub String);

/// The JWS `typ` of ID tokens (OIDC Core) and of JWT access tokens (RFC 9068 §2.1), which
/// differ so that one can never pass for the other (RFC 8725 §3.11).
pub const TYP_ID_TOKEN: &str = "JWT";
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// The JWS `typ` of asset tokens: neither an access token nor an ID token here.
pub const TYP_ASSET_TOKEN: &str = "asset+jwt";

impl KeySet {
    /// Parses and loads `pems` with the native backend.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_pem_list(pems: &str) -> Result<Self, KeyError> {
        parse_pems(pems)?
            .iter()
            .enumerate()
            .map(|(i, m)| native::signing_key(m).map_err(|e| KeyError(format!("key {i}: {}", e.0))))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_keys)
    }

    /// The keys of `pems` (native backend), or a key set that reports why it has none.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(pems: &str) -> Self {
        Self::from_pem_list(pems).unwrap_or_else(Self::from_error)
    }

    pub fn unusable(reason: &str) -> Self {
        Self::from_error(KeyError(reason.into()))
    }

    pub fn from_error(e: KeyError) -> Self {
        Self { keys: Err(e) }
    }

    /// Why there are no usable keys, if there are none.
    pub fn error(&self) -> Option<&KeyError> {
        self.keys.as_ref().err()
    }

    /// The keys, newest (signing) first.
    pub fn from_keys(keys: Vec<SigningKey>) -> Self {
        if keys.is_empty() {
            return Self::unusable("SIGNING_KEYS holds no PEM private key");
        }
        Self { keys: Ok(keys) }
    }

    /// The key that signs now.
    pub fn active(&self) -> Result<&SigningKey, KeyError> {
        match &self.keys {
            Ok(keys) => keys
                .first()
                .ok_or_else(|| KeyError("no signing key".into())),
            Err(e) => Err(e.clone()),
        }
    }

    /// The `kid` and algorithm of every key, signer first; none when unusable.
    pub fn kids(&self) -> Vec<(String, Alg)> {
        match &self.keys {
            Ok(keys) => keys.iter().map(|k| (k.kid.clone(), k.alg)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// RFC 7517 JWK Set of every key, active and retired.
    pub fn jwks(&self) -> Result<serde_json::Value, KeyError> {
        let keys: Vec<_> = match &self.keys {
            Ok(keys) => keys.iter().map(|k| k.public_jwk.clone()).collect(),
            Err(e) => return Err(e.clone()),
        };
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The algorithms of the published keys, RS256 first when present; RS256 alone when the
    /// keys are unusable (it is the default, and OIDC Discovery §3 requires it be listed).
    pub fn algs(&self) -> Vec<Alg> {
        let mut algs: Vec<Alg> = match &self.keys {
            Ok(keys) => keys.iter().map(|k| k.alg).collect(),
            Err(_) => vec![Alg::Rs256],
        };
        algs.sort();
        algs.dedup();
        algs
    }
}

/// What a JWS header serializes as: `alg` first, then jwt-compact's fields (`kid`, `typ`, and
/// the extra ones).
#[derive(Serialize)]
struct JwsHeader<'a, T: Serialize> {
    alg: &'static str,
    #[serde(flatten)]
    header: &'a Header<T>,
}

impl SigningKey {
    /// A key of `alg` whose public members ([`Alg::public_members`]) are read from `public`,
    /// a JWK the backend produced; nothing else of it is kept, so no private member can be
    /// published.
    pub fn new(
        alg: Alg,
        public: &serde_json::Value,
        signer: Box<dyn KeyBackend>,
    ) -> Result<Self, KeyError> {
        let mut members: Vec<(&str, String)> = alg
            .fixed_members()
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        for name in alg.public_members() {
            let value = public
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| KeyError(format!("the public key has no `{name}`")))?;
            members.push((name, value.to_owned()));
        }
        members.sort();
        let kid = thumbprint(&members);
        let mut jwk: serde_json::Map<String, serde_json::Value> = members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        jwk.insert("kid".into(), kid.clone().into());
        jwk.insert("alg".into(), alg.name().into());
        jwk.insert("use".into(), "sig".into());
        Ok(Self {
            kid,
            alg,
            public_jwk: jwk.into(),
            signer,
        })
    }

    /// The published JWK (public members, `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// A compact JWS over `claims` (which carry their own `iat`/`exp`), with `kid` and `typ`
    /// ([`TYP_ID_TOKEN`] or [`TYP_ACCESS_TOKEN`]); `alg` is the key's.
    pub async fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        self.sign_with_header(typ, claims, &serde_json::Map::new())
            .await
    }

    /// As [`SigningKey::sign`], with extra header fields.
    pub async fn sign_with_header(
        &self,
        typ: &str,
        claims: &impl Serialize,
        extra_header: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, KeyError> {
        let header = Header::new(extra_header)
            .with_key_id(self.kid.clone())
            .with_token_type(typ);
        let header = serde_json::to_vec(&JwsHeader {
            alg: self.alg.name(),
            header: &header,
        })
        .map_err(|e| KeyError(format!("JWS header: {e}")))?;
        let claims = serde_json::to_vec(&Claims::new(claims))
            .map_err(|e| KeyError(format!("JWT claims: {e}")))?;
        // RFC 7515 §5.1: the signing input is BASE64URL(header) "." BASE64URL(payload).
        let mut jws = format!("{}.{}", b64url(&header), b64url(&claims));
        let signature = self.signer.sign(jws.as_bytes()).await?;
        if self.alg == Alg::Es256 && signature.len() != 64 {
            return Err(KeyError("an ES256 signature is 64 bytes, r || s".into()));
        }
        jws.push('.');
        jws.push_str(&b64url(&signature));
        Ok(jws)
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
/// `members` are sorted, and their values are base64url or fixed names, which JSON writes
/// as they are; they are still written by serde_json, so the JSON is right whatever they hold.
fn thumbprint(members: &[(&str, String)]) -> String {
    let fields: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            let v = serde_json::Value::from(v.as_str());
            format!("\"{k}\":{v}")
        })
        .collect();
    b64url(&sha256(format!("{{{}}}", fields.join(",")).as_bytes()))
}
