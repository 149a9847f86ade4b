//! The native signing backend (tests and other non-wasm builds): RustCrypto's `rsa` and
//! `p256`. The worker signs with WebCrypto instead (`edge::crypto`), so neither crate is
//! compiled into the wasm.

use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;

use super::{Alg, KeyBackend, KeyError, KeyMaterial, SignFuture, SigningKey};
use crate::core::secret::b64url;

/// The key of `material`, signing with RustCrypto.
pub fn signing_key(material: &KeyMaterial) -> Result<SigningKey, KeyError> {
    let der = &material.pkcs8_der;
    match material.alg {
        Alg::Rs256 => {
            let private = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| KeyError(format!("RSA key: {e}")))?;
            let public = serde_json::json!({
                "n": b64url(&private.n().to_bytes_be()),
                "e": b64url(&private.e().to_bytes_be()),
            });
            let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
            SigningKey::new(Alg::Rs256, &public, Box::new(Rs256(signer)))
        }
        Alg::Es256 => {
            let private = p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map_err(|e| KeyError(format!("EC key: {e}")))?;
            let point = private.verifying_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(KeyError("EC key: no public point".into()));
            };
            let public = serde_json::json!({ "x": b64url(x), "y": b64url(y) });
            SigningKey::new(Alg::Es256, &public, Box::new(Es256(private)))
        }
    }
}

struct Rs256(rsa::pkcs1v15::SigningKey<Sha256>);

impl KeyBackend for Rs256 {
    fn sign<'a>(&'a self, input: &'a [u8]) -> SignFuture<'a> {
        // Blinded, as jwt-compact signed before: the private operation is not constant-time.
        let signature = self
            .0
            .try_sign_with_rng(&mut rand_core::OsRng, input)
            .map(|s| s.to_vec())
            .map_err(|e| KeyError(format!("RS256 signing failed: {e}")));
        Box::pin(std::future::ready(signature))
    }
}

struct Es256(p256::ecdsa::SigningKey);

impl KeyBackend for Es256 {
    fn sign<'a>(&'a self, input: &'a [u8]) -> SignFuture<'a> {
        // RFC 6979 nonces; the fixed-size encoding is JWS's r || s (RFC 7518 §3.4).
        let signature = self
            .0
            .try_sign(input)
            .map(|s: p256::ecdsa::Signature| s.to_bytes().to_vec())
            .map_err(|e| KeyError(format!("ES256 signing failed: {e}")));
        Box::pin(std::future::ready(signature))
    }
}
