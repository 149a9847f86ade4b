//! The native signing backend (tests and other non-wasm builds): RustCrypto's `rsa` and
//! `p256`. The worker signs with WebCrypto instead (`edge::crypto`), so neither crate is
//! compiled into the wasm.

use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;

use super::public::{member, PublicKey, Verifier, VerifyFuture};
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

/// Verifies client signatures with RustCrypto (`public.rs`); the worker uses WebCrypto.
pub struct NativeVerifier;

impl Verifier for NativeVerifier {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> VerifyFuture<'a> {
        Box::pin(std::future::ready(verify_now(key, input, signature)))
    }
}

fn verify_now(key: &PublicKey, input: &[u8], signature: &[u8]) -> Result<bool, KeyError> {
    use p256::ecdsa::signature::Verifier as _;
    let part = |name| member(key, name).ok_or_else(|| KeyError(format!("JWK without `{name}`")));
    match key.alg {
        Alg::Rs256 => {
            let public = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&part("n")?),
                rsa::BigUint::from_bytes_be(&part("e")?),
            )
            .map_err(|e| KeyError(format!("RSA key: {e}")))?;
            let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
                return Ok(false);
            };
            let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
            Ok(verifier.verify(input, &signature).is_ok())
        }
        Alg::Es256 => {
            let point = [&[4u8][..], &part("x")?, &part("y")?].concat();
            let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|e| KeyError(format!("EC key: {e}")))?;
            let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
                return Ok(false);
            };
            Ok(public.verify(input, &signature).is_ok())
        }
    }
}

/// The native [`KeyVault`](super::managed::KeyVault): RustCrypto RSA/P-256 key generation and
/// AES-256-GCM.
pub struct NativeVault {
    key: [u8; 32],
}

impl NativeVault {
    pub fn new(wrapping_secret: &str) -> Result<Self, KeyError> {
        Ok(Self {
            key: super::managed::wrapping_key(wrapping_secret)?,
        })
    }
}

impl super::managed::KeyVault for NativeVault {
    fn generate(&self, alg: Alg) -> super::managed::VaultFuture<'_, Vec<u8>> {
        Box::pin(async move {
            use rsa::pkcs8::EncodePrivateKey;
            let mut rng = rand_core::OsRng;
            let der = match alg {
                Alg::Rs256 => rsa::RsaPrivateKey::new(&mut rng, 2048)
                    .map_err(|e| KeyError(format!("RSA key generation: {e}")))?
                    .to_pkcs8_der(),
                Alg::Es256 => p256::SecretKey::random(&mut rng).to_pkcs8_der(),
            }
            .map_err(|e| KeyError(format!("PKCS#8: {e}")))?;
            Ok(der.as_bytes().to_vec())
        })
    }

    fn seal<'a>(&'a self, der: &'a [u8], kid: &'a str) -> super::managed::VaultFuture<'a, Vec<u8>> {
        Box::pin(async move {
            use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
            let cipher = aes_gcm::Aes256Gcm::new((&self.key).into());
            let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut rand_core::OsRng);
            let sealed = cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: der,
                        aad: kid.as_bytes(),
                    },
                )
                .map_err(|_| KeyError("sealing failed".into()))?;
            Ok([nonce.as_slice(), &sealed].concat())
        })
    }

    fn open<'a>(
        &'a self,
        sealed: &'a [u8],
        kid: &'a str,
    ) -> super::managed::VaultFuture<'a, Vec<u8>> {
        Box::pin(async move {
            use aes_gcm::aead::{Aead, KeyInit, Payload};
            if sealed.len() < 12 + 16 {
                return Err(KeyError("sealed key too short".into()));
            }
            let (nonce, body) = sealed.split_at(12);
            aes_gcm::Aes256Gcm::new((&self.key).into())
                .decrypt(
                    nonce.into(),
                    Payload {
                        msg: body,
                        aad: kid.as_bytes(),
                    },
                )
                .map_err(|_| KeyError("the key does not open with KEY_WRAPPING_KEY".into()))
        })
    }

    fn load<'a>(
        &'a self,
        pems: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = super::KeySet> + 'a>> {
        Box::pin(async move { super::KeySet::load(pems) })
    }
}
