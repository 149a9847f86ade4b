//! Signing keys and the JWKS (`/id/keys`).
//!
//! Keys come from the `SIGNING_KEYS` secret: one or more PEM private keys (PKCS#8 or PKCS#1),
//! newest first. The first signs; the rest are retired and stay published so that tokens they
//! signed still verify after a rotation. `kid` is the RFC 7638 JWK thumbprint, so it is unique
//! and stable. RS256 is the one algorithm today (OIDC Core §15.1 makes it mandatory); a key's
//! algorithm is a field, so others slot in beside it.

use jwt_compact::alg::{Rsa, RsaPrivateKey, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Serialize;
use sha2::Sha256;

use super::secret::b64url;

pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    private: RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {}, [redacted])", self.alg, self.kid)
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

impl KeySet {
    /// Parses concatenated PEM blocks. Literal `\n` sequences are accepted for newlines, as
    /// dotenv files and dashboard secrets often carry them.
    pub fn from_pem_list(pems: &str) -> Result<Self, KeyError> {
        Self::parse_pems(pems).map(Self::from_keys)
    }

    /// The keys of `pems`, or a key set that reports why it has none.
    pub fn load(pems: &str) -> Self {
        match Self::parse_pems(pems) {
            Ok(keys) => Self::from_keys(keys),
            Err(e) => Self { keys: Err(e) },
        }
    }

    pub fn unusable(reason: &str) -> Self {
        Self {
            keys: Err(KeyError(reason.into())),
        }
    }

    /// Why there are no usable keys, if there are none.
    pub fn error(&self) -> Option<&KeyError> {
        self.keys.as_ref().err()
    }

    fn parse_pems(pems: &str) -> Result<Vec<SigningKey>, KeyError> {
        let text = pems.replace("\\n", "\n");
        let blocks = pem::parse_many(&text)
            .map_err(|e| KeyError(format!("SIGNING_KEYS is not valid PEM: {e}")))?;
        // parse_many stops quietly at a block with no END line: a truncated key must not vanish.
        if blocks.len() != text.matches("-----BEGIN ").count() {
            return Err(KeyError(
                "SIGNING_KEYS has a PEM block with no END line".into(),
            ));
        }
        let keys = blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let der = block.contents();
                match block.tag() {
                    "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(der).ok(),
                    "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(der).ok(),
                    _ => None,
                }
                .map(SigningKey::rs256)
                .ok_or_else(|| KeyError(format!("key {i} is not an RSA private key")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError("SIGNING_KEYS holds no PEM private key".into()));
        }
        Ok(keys)
    }

    pub fn from_keys(keys: Vec<SigningKey>) -> Self {
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

    /// RFC 7517 JWK Set of every key, active and retired.
    pub fn jwks(&self) -> Result<serde_json::Value, KeyError> {
        let keys: Vec<_> = match &self.keys {
            Ok(keys) => keys.iter().map(SigningKey::public_jwk).collect(),
            Err(e) => return Err(e.clone()),
        };
        Ok(serde_json::json!({ "keys": keys }))
    }
}

impl SigningKey {
    pub fn rs256(private: RsaPrivateKey) -> Self {
        let public = RsaPublicKey::from(&private);
        let kid = b64url(&JsonWebKey::from(&public).thumbprint::<Sha256>());
        Self {
            kid,
            alg: "RS256",
            private,
        }
    }

    pub fn public_jwk(&self) -> serde_json::Value {
        let public = RsaPublicKey::from(&self.private);
        let mut jwk = serde_json::to_value(JsonWebKey::from(&public)).unwrap_or_default();
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), self.kid.clone().into());
            obj.insert("alg".into(), self.alg.into());
            obj.insert("use".into(), "sig".into());
        }
        jwk
    }

    /// A compact JWS over `claims` (which carry their own `iat`/`exp`), with `kid` and `typ`
    /// ([`TYP_ID_TOKEN`] or [`TYP_ACCESS_TOKEN`]).
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        self.sign_with_header(typ, claims, &serde_json::Map::new())
    }

    /// As [`SigningKey::sign`], with extra header fields.
    pub fn sign_with_header(
        &self,
        typ: &str,
        claims: &impl Serialize,
        extra_header: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, KeyError> {
        let header = Header::new(extra_header)
            .with_key_id(self.kid.clone())
            .with_token_type(typ);
        Rsa::rs256()
            .token(&header, &Claims::new(claims), &self.private)
            .map_err(|e| KeyError(format!("signing failed: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jwt_compact::UntrustedToken;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    /// A fresh 2048-bit key as PKCS#8 PEM, for tests.
    pub fn test_pem() -> String {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }

    #[test]
    fn parses_several_keys_and_publishes_all_with_unique_kids() {
        let (a, b) = (test_pem(), test_pem());
        let escaped = format!("{a}{b}").replace('\n', "\\n");
        let set = KeySet::from_pem_list(&escaped).unwrap();
        let jwks = set.jwks().unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0]["kid"], keys[1]["kid"]);
        assert_eq!(keys[0]["kty"], "RSA");
        assert_eq!(keys[0]["alg"], "RS256");
        assert!(
            keys[0].get("d").is_none(),
            "private part leaked: {}",
            keys[0]
        );
        assert_eq!(set.active().unwrap().kid, keys[0]["kid"]);
    }

    #[test]
    fn tokens_signed_before_a_rotation_still_verify_from_the_new_jwks() {
        let (old, new) = (test_pem(), test_pem());
        let before = KeySet::from_pem_list(&old).unwrap();
        let token = before
            .active()
            .unwrap()
            .sign(TYP_ID_TOKEN, &serde_json::json!({"sub": "x"}))
            .unwrap();
        // Rotation: the new key goes first (it signs from now on), the old one stays listed.
        let after = KeySet::from_pem_list(&format!("{new}{old}")).unwrap();
        let kid = UntrustedToken::new(&token)
            .unwrap()
            .header()
            .key_id
            .clone()
            .unwrap();
        assert_ne!(after.active().unwrap().kid, kid, "the new key signs now");
        let jwks = after.jwks().unwrap();
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str());
        let jwk: JsonWebKey<'_> =
            serde_json::from_value(published.expect("retired key published").clone()).unwrap();
        let public = RsaPublicKey::try_from(&jwk).unwrap();
        let untrusted = UntrustedToken::new(&token).unwrap();
        assert!(Rsa::rs256()
            .validator::<serde_json::Value>(&public)
            .validate(&untrusted)
            .is_ok());
    }

    #[test]
    fn rejects_garbage() {
        assert!(KeySet::from_pem_list("not a key").is_err());
    }

    #[test]
    fn accepts_pkcs1_beside_pkcs8() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::CRLF).unwrap().to_string();
        let set = KeySet::from_pem_list(&format!("{}{pkcs1}", test_pem())).unwrap();
        assert_eq!(set.jwks().unwrap()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_truncated_block_is_refused_not_skipped() {
        let (a, b) = (test_pem(), test_pem());
        let cut = |pem: &str| pem[..pem.find("-----END").unwrap()].to_string();
        assert!(KeySet::from_pem_list(&format!("{a}{}", cut(&b))).is_err());
        assert!(KeySet::from_pem_list(&format!("{}{b}", cut(&a))).is_err());
        let pkcs1 = b.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        assert!(
            KeySet::from_pem_list(&pkcs1).is_err(),
            "PKCS#8 body under a PKCS#1 label"
        );
    }

    #[test]
    fn an_unusable_secret_is_reported_on_use_never_served_as_an_empty_set() {
        for set in [
            KeySet::load("not a key"),
            KeySet::load(""),
            KeySet::default(),
        ] {
            assert!(set.error().is_some());
            assert!(set.active().is_err());
            assert!(set.jwks().is_err(), "an empty JWKS would hide the problem");
        }
        assert!(KeySet::load(&test_pem()).error().is_none());
    }

    #[test]
    fn signed_token_verifies_with_published_key() {
        let set = KeySet::from_pem_list(&test_pem()).unwrap();
        let key = set.active().unwrap();
        let token = key
            .sign(TYP_ID_TOKEN, &serde_json::json!({"sub": "x"}))
            .unwrap();
        let untrusted = UntrustedToken::new(&token).unwrap();
        assert_eq!(untrusted.header().key_id.as_deref(), Some(key.kid.as_str()));
        let public = RsaPublicKey::from(&key.private);
        let verified = Rsa::rs256()
            .validator::<serde_json::Value>(&public)
            .validate(&untrusted)
            .unwrap();
        assert_eq!(verified.claims().custom["sub"], "x");
    }
}
