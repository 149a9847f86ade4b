//! Secrets (client secrets, codes, tokens, CSRF tokens, session ids) as newtypes.
//!
//! A [`Secret`] prints `[redacted]`, has no `Display`, and is compared in constant time. Only its
//! SHA-256 [`Secret::hash`] is ever stored: every secret we mint carries at least 256 bits of
//! entropy, so a fast hash is enough (no offline guessing is feasible) — passwords, which people
//! choose, go through Argon2id instead (`password.rs`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::env::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A secret value received from or handed to a caller. No `PartialEq`: the only comparison is
/// [`Secret::matches`], in constant time against a stored hash.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// `len` base62 characters (5.95 bits each): 43 characters carry 256 bits. Base62 keeps
    /// tokens inside Salesforce's `[.\w]*` token shape (salesforce-reference.md §0.4).
    pub fn random_base62(rng: &dyn Rng, len: usize) -> Self {
        let mut out = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while out.len() < len {
            rng.fill(&mut buf);
            for b in buf {
                // Rejection sampling: 248 = 4 * 62, so accepted bytes are uniform over base62.
                if b < 248 && out.len() < len {
                    out.push(BASE62[(b % 62) as usize] as char);
                }
            }
        }
        Self(out)
    }

    /// The only way to read the value out: for the response that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256, the form in which secrets are stored and looked up.
    pub fn hash(&self) -> SecretHash {
        SecretHash(hex(&Sha256::digest(self.0.as_bytes())))
    }

    /// Constant-time comparison against a stored hash.
    pub fn matches(&self, stored: &SecretHash) -> bool {
        self.hash().0.as_bytes().ct_eq(stored.0.as_bytes()).into()
    }
}

/// The stored form of a secret.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretHash(pub String);

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Constant-time string equality, for values compared in the clear (CSRF tokens, bearer tokens).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Salesforce's token-response `signature`: Base64(HMAC-SHA256(key = client secret,
/// msg = id + issued_at)) with the standard alphabet and padding (salesforce-reference.md §0.4).
pub fn salesforce_signature(client_secret: &Secret, id: &str, issued_at: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(client_secret.expose().as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    b64(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::env::OsRng;

    #[test]
    fn debug_never_prints_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn random_base62_has_requested_length_and_alphabet() {
        let s = Secret::random_base62(&OsRng, 43);
        assert_eq!(s.expose().len(), 43);
        assert!(s.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s.expose(), Secret::random_base62(&OsRng, 43).expose());
    }

    #[test]
    fn matches_compares_against_hash() {
        let s = Secret::new("abc");
        assert!(s.matches(&s.hash()));
        assert!(!Secret::new("abd").matches(&s.hash()));
        assert_eq!(
            s.hash().0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn signature_is_hmac_sha256_of_id_and_issued_at() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = salesforce_signature(&Secret::new("Jefe"), "what do ya want ", "for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        assert_eq!(sig.len(), 44);
    }
}
