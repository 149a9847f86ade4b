//! Age stamps: every access token carries its issue time, authenticated with a MAC, so that
//! validation can tell a token young enough that its edge copy may not have reached this
//! location yet (and only such a token is looked up in D1) from a guessed or old one, without
//! any storage read. A flood of random or forged tokens therefore never reaches D1.
//!
//! A stamp is 28 base62 characters: the issue time (6, seconds) and a truncated HMAC-SHA256
//! (22, 128 bits) over the token's random part and that time. The opaque access token is
//! `{org_id}!{random 43}{stamp}`; a JWT access token's `jti` is `{random 22}{stamp}`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::core::secret::ct_eq;

/// How long after issue a token without an edge copy is still looked up in D1: KV takes up to
/// about 60 s to show a write in other locations, and caches a miss for 60 s.
pub const YOUNG_S: u64 = 120;

const TIME_LEN: usize = 6;
const MAC_LEN: usize = 22;
pub const STAMP_LEN: usize = TIME_LEN + MAC_LEN;

/// The key stamps are made with, derived from the signing keys secret (so it needs no
/// configuration of its own, and changes when the keys do).
#[derive(Clone)]
pub struct StampKey([u8; 32]);

impl std::fmt::Debug for StampKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampKey([redacted])")
    }
}

impl StampKey {
    pub fn derive(secret_material: &str) -> Self {
        let mut mac = mac_with(b"edge-oauth access-token age stamp v1");
        mac.update(secret_material.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// The stamp for a token whose random part is `random`, issued at `iat_s`.
    pub fn stamp(&self, random: &str, iat_s: u64) -> String {
        let time = base62(u128::from(iat_s), TIME_LEN);
        format!("{time}{}", self.mac(random, &time))
    }

    /// The authenticated issue time of `random` + `stamp`, if the stamp is ours.
    pub fn issued_at(&self, random: &str, stamp: &str) -> Option<u64> {
        if stamp.len() != STAMP_LEN || !stamp.is_ascii() {
            return None;
        }
        let (time, tag) = stamp.split_at(TIME_LEN);
        if !ct_eq(&self.mac(random, time), tag) {
            return None;
        }
        unbase62(time).and_then(|t| u64::try_from(t).ok())
    }

    fn mac(&self, random: &str, time: &str) -> String {
        let mut mac = mac_with(&self.0);
        mac.update(random.as_bytes());
        mac.update(b".");
        mac.update(time.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        first.copy_from_slice(&bytes[..16]);
        base62(u128::from_be_bytes(first), MAC_LEN)
    }
}

fn mac_with(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_mac(),
    }
}

#[cold]
fn unreachable_mac() -> Hmac<Sha256> {
    std::process::abort()
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62, left-padded to `width` (62^22 > 2^128, 62^6 > the seconds until year 3700).
fn base62(mut n: u128, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn unbase62(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |n, b| {
        let d = ALPHABET.iter().position(|&a| a == b)? as u128;
        n.checked_mul(62)?.checked_add(d)
    })
}

/// Splits an opaque access token `{org_id}!{random}{stamp}` into its random part and stamp.
pub fn opaque_parts(token: &str) -> Option<(&str, &str)> {
    let (_, rest) = token.rsplit_once('!')?;
    let split = rest.len().checked_sub(STAMP_LEN)?;
    (split > 0 && rest.is_char_boundary(split)).then(|| rest.split_at(split))
}

/// Splits a `jti` `{random}{stamp}`.
pub fn jti_parts(jti: &str) -> Option<(&str, &str)> {
    let split = jti.len().checked_sub(STAMP_LEN)?;
    (split > 0 && jti.is_char_boundary(split)).then(|| jti.split_at(split))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_gives_back_its_time_and_nothing_else_verifies() {
        let key = StampKey::derive("keys");
        let s = key.stamp("AbC123", 1_796_000_000);
        assert_eq!(s.len(), STAMP_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.issued_at("AbC123", &s), Some(1_796_000_000));
        // Another random part, another time, another key, or a cut stamp: refused.
        assert_eq!(key.issued_at("AbC124", &s), None);
        let forged = format!("{}{}", key.stamp("x", 1_796_000_100).split_at(6).0, &s[6..]);
        assert_eq!(key.issued_at("AbC123", &forged), None);
        assert_eq!(StampKey::derive("other").issued_at("AbC123", &s), None);
        assert_eq!(key.issued_at("AbC123", &s[1..]), None);
        assert_eq!(key.issued_at("AbC123", "é"), None);
    }

    #[test]
    fn parts_of_tokens() {
        let key = StampKey::derive("k");
        let random = "R".repeat(43);
        let token = format!("00Dxx!{random}{}", key.stamp(&random, 7));
        let (r, s) = opaque_parts(&token).unwrap();
        assert_eq!(r, random);
        assert_eq!(key.issued_at(r, s), Some(7));
        assert!(opaque_parts("00Dxx!short").is_none());
        assert!(opaque_parts("no-bang").is_none());
        let jti = format!("{}{}", "J".repeat(22), key.stamp(&"J".repeat(22), 9));
        let (r, s) = jti_parts(&jti).unwrap();
        assert_eq!(key.issued_at(r, s), Some(9));
    }
}
