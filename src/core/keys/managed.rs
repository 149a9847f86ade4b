//! Signing keys managed through the admin API (`/admin/keys`), beside those of the
//! `SIGNING_KEYS` secret. Their private halves are stored in D1 only sealed (AES-256-GCM) with
//! a key derived from the `KEY_WRAPPING_KEY` secret, bound to their `kid`.
//!
//! Rotation is a schedule, not a switch, so every isolate agrees without being told:
//! - a new key is published at once, and signs only from `activates_at`, which is at least one
//!   JWKS cache lifetime after it was created (`JWKS_MAX_AGE_S`, 300 s): no client that cached
//!   the key set before the key existed can meet a token it signed;
//! - the signer is the managed key with the latest `activates_at` not in the future, else the
//!   first key of `SIGNING_KEYS`;
//! - a key that signed and was followed stays published for [`MAX_TOKEN_LIFETIME_S`] after it
//!   stopped (the longest any token it signed can live), then leaves the JWKS.
//!
//! Isolates cache the rows for `KEYS_REFRESH_S` (30 s), so an activation or deletion shows
//! everywhere within that; a schedule needs no refresh at all.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::{Alg, KeyError, KeySet};

/// The longest a token we sign can be valid: an access token (`access_token_ttl_s`, at most 30
/// days; ID tokens live at most 12 hours and asset tokens a day).
pub const MAX_TOKEN_LIFETIME_S: u64 = 30 * 86_400;

/// The JWKS `Cache-Control: max-age` by default, and so the least time a new key is published
/// before it signs.
pub const JWKS_MAX_AGE_DEFAULT_S: u64 = 300;

/// How long an isolate trusts its copy of the managed keys by default (`KEYS_REFRESH_S`).
pub const REFRESH_DEFAULT_S: u64 = 30;

/// A managed key as stored (`signing_keys`): the private key only sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedKey {
    pub kid: String,
    pub alg: Alg,
    /// `seal(pkcs8 DER)`: nonce and AES-GCM ciphertext with its tag.
    pub sealed: Vec<u8>,
    pub created_at: u64,
    /// When it signs from; `None`: published, not scheduled.
    pub activates_at: Option<u64>,
}

impl std::fmt::Debug for ManagedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ManagedKey({} {} created {} activates {:?}, [sealed])",
            self.alg.name(),
            self.kid,
            self.created_at,
            self.activates_at
        )
    }
}

/// What `/admin/keys` shows of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    pub kid: String,
    pub alg: &'static str,
    pub source: &'static str,
    pub status: &'static str,
    pub created_at: Option<u64>,
    pub activates_at: Option<u64>,
    pub retired_at: Option<u64>,
    pub published_until: Option<u64>,
}

/// The managed key that signs at `now_s`, if any: the latest activation not in the future.
pub fn signer(keys: &[ManagedKey], now_s: u64) -> Option<&ManagedKey> {
    keys.iter()
        .filter(|k| k.activates_at.is_some_and(|a| a <= now_s))
        .max_by_key(|k| (k.activates_at, k.created_at, k.kid.as_str()))
}

/// The managed key that signs at `now_s` when `SIGNING_KEYS` holds no key as well: before any
/// managed key has activated, the oldest one signs (there is nothing else to sign with).
pub fn effective_signer(keys: &[ManagedKey], now_s: u64, secret_keys: bool) -> Option<&ManagedKey> {
    signer(keys, now_s).or_else(|| {
        if secret_keys {
            None
        } else {
            keys.iter()
                .filter(|k| published(keys, k, now_s))
                .min_by_key(|k| (k.created_at, k.kid.as_str()))
        }
    })
}

/// The activation time for `kid` wanted at `at`, moved past any other key's activation at the
/// same second, so that two keys never tie and the later scheduling takes over.
pub fn free_second(keys: &[ManagedKey], kid: &str, mut at: u64) -> u64 {
    while keys
        .iter()
        .any(|k| k.kid != kid && k.activates_at == Some(at))
    {
        at += 1;
    }
    at
}

/// When `key` stopped signing (the next activation after its own, up to `now_s`).
pub fn retired_at(keys: &[ManagedKey], key: &ManagedKey, now_s: u64) -> Option<u64> {
    let own = key.activates_at.filter(|a| *a <= now_s)?;
    if signer(keys, now_s).is_some_and(|s| s.kid == key.kid) {
        return None;
    }
    keys.iter()
        .filter(|k| k.kid != key.kid)
        .filter_map(|k| k.activates_at)
        .filter(|a| *a >= own && *a <= now_s)
        .min()
}

/// Whether `key` is still in the JWKS at `now_s`.
pub fn published(keys: &[ManagedKey], key: &ManagedKey, now_s: u64) -> bool {
    retired_at(keys, key, now_s).is_none_or(|r| now_s < r + MAX_TOKEN_LIFETIME_S)
}

/// The status of every key: the managed ones (newest first), then those of `SIGNING_KEYS` in
/// its order (`secret_kids`).
pub fn statuses(keys: &[ManagedKey], secret_kids: &[(String, Alg)], now_s: u64) -> Vec<KeyStatus> {
    let signing = effective_signer(keys, now_s, !secret_kids.is_empty());
    let mut managed: Vec<&ManagedKey> = keys.iter().collect();
    managed.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.kid.clone())));
    let mut out: Vec<KeyStatus> = managed
        .into_iter()
        .map(|k| {
            let retired = retired_at(keys, k, now_s);
            let status = if signing.is_some_and(|s| s.kid == k.kid) {
                "active"
            } else if retired.is_some() {
                "retired"
            } else {
                "pending"
            };
            KeyStatus {
                kid: k.kid.clone(),
                alg: k.alg.name(),
                source: "managed",
                status,
                created_at: Some(k.created_at),
                activates_at: k.activates_at,
                retired_at: retired,
                published_until: retired.map(|r| r + MAX_TOKEN_LIFETIME_S),
            }
        })
        .collect();
    for (i, (kid, alg)) in secret_kids.iter().enumerate() {
        // A managed key may be a copy of a SIGNING_KEYS one; it is listed once, as managed.
        if keys.iter().any(|k| &k.kid == kid) {
            continue;
        }
        out.push(KeyStatus {
            kid: kid.clone(),
            alg: alg.name(),
            source: "secret",
            status: if i == 0 && signing.is_none() {
                "active"
            } else {
                "published"
            },
            created_at: None,
            activates_at: None,
            retired_at: None,
            published_until: None,
        });
    }
    out
}

/// The PEM bundle to load at `now_s`, signer first: the managed signer if one has activated,
/// then `SIGNING_KEYS` as given, then the other managed keys still published. `opened` pairs
/// each managed key with its PKCS#8 DER.
pub fn assemble(secret_pems: &str, opened: &[(ManagedKey, Vec<u8>)], now_s: u64) -> String {
    let keys: Vec<ManagedKey> = opened.iter().map(|(k, _)| k.clone()).collect();
    let secret = secret_pems.trim();
    let signing = effective_signer(&keys, now_s, !secret.is_empty()).map(|k| k.kid.clone());
    let pem_of = |der: &[u8]| pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()));
    let mut bundle = String::new();
    if let Some((_, der)) = opened
        .iter()
        .find(|(k, _)| Some(&k.kid) == signing.as_ref())
    {
        bundle.push_str(&pem_of(der));
    }
    if !secret.is_empty() {
        bundle.push_str(secret);
        bundle.push('\n');
    }
    let mut rest: Vec<&(ManagedKey, Vec<u8>)> = opened
        .iter()
        .filter(|(k, _)| Some(&k.kid) != signing.as_ref() && published(&keys, k, now_s))
        .collect();
    rest.sort_by_key(|(k, _)| std::cmp::Reverse(k.created_at));
    for (_, der) in rest {
        bundle.push_str(&pem_of(der));
    }
    bundle
}

/// The next instant after `now_s` at which [`assemble`]'s answer can change with nothing
/// stored changing: a scheduled activation, or a retired key leaving the JWKS. `None`: never.
pub fn next_change(keys: &[ManagedKey], now_s: u64) -> Option<u64> {
    let activations = keys
        .iter()
        .filter_map(|k| k.activates_at)
        .filter(|a| *a > now_s);
    let departures = keys
        .iter()
        .filter_map(|k| retired_at(keys, k, now_s))
        .map(|r| r + MAX_TOKEN_LIFETIME_S)
        .filter(|t| *t > now_s);
    activations.chain(departures).min()
}

pub type VaultFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KeyError>> + 'a>>;

/// Makes, seals and opens managed keys: WebCrypto on the edge, RustCrypto natively. Holds the
/// key derived from `KEY_WRAPPING_KEY`.
pub trait KeyVault {
    /// A new private key for `alg`, as PKCS#8 DER.
    fn generate(&self, alg: Alg) -> VaultFuture<'_, Vec<u8>>;
    /// AES-256-GCM under the wrapping key with a fresh 96-bit nonce, `kid` as associated data:
    /// `nonce || ciphertext || tag`.
    fn seal<'a>(&'a self, der: &'a [u8], kid: &'a str) -> VaultFuture<'a, Vec<u8>>;
    /// The DER `seal` was given, if `sealed` was sealed for `kid` under this wrapping key.
    fn open<'a>(&'a self, sealed: &'a [u8], kid: &'a str) -> VaultFuture<'a, Vec<u8>>;
    /// The keys of a PEM bundle, loaded as the deployment signs (for a new key's `kid`).
    fn load<'a>(&'a self, pems: &'a str) -> Pin<Box<dyn Future<Output = KeySet> + 'a>>;
}

/// The deployment's vault, when `KEY_WRAPPING_KEY` is set.
#[derive(Clone)]
pub struct Vault(pub std::rc::Rc<dyn KeyVault>);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

/// The least length of `KEY_WRAPPING_KEY`: 32 characters (at least 128 bits even as hex).
pub const MIN_WRAPPING_KEY_LEN: usize = 32;

/// The AES-256 key derived from the `KEY_WRAPPING_KEY` secret, or why it is unusable.
pub fn wrapping_key(secret: &str) -> Result<[u8; 32], KeyError> {
    if secret.len() < MIN_WRAPPING_KEY_LEN {
        return Err(KeyError(format!(
            "KEY_WRAPPING_KEY must be at least {MIN_WRAPPING_KEY_LEN} characters"
        )));
    }
    let mut input = b"edge-oauth key wrapping v1\0".to_vec();
    input.extend_from_slice(secret.as_bytes());
    Ok(crate::core::secret::sha256(&input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created_at: u64, activates_at: Option<u64>) -> ManagedKey {
        ManagedKey {
            kid: kid.into(),
            alg: Alg::Rs256,
            sealed: vec![],
            created_at,
            activates_at,
        }
    }

    #[test]
    fn the_signer_is_the_latest_activation_not_in_the_future() {
        let keys = [
            key("a", 0, Some(300)),
            key("b", 1000, Some(1300)),
            key("c", 2000, None),
        ];
        assert_eq!(signer(&keys, 299), None);
        assert_eq!(signer(&keys, 300).map(|k| k.kid.as_str()), Some("a"));
        assert_eq!(signer(&keys, 1299).map(|k| k.kid.as_str()), Some("a"));
        assert_eq!(signer(&keys, 1300).map(|k| k.kid.as_str()), Some("b"));
        assert_eq!(retired_at(&keys, &keys[0], 1299), None);
        assert_eq!(retired_at(&keys, &keys[0], 1300), Some(1300));
        assert_eq!(retired_at(&keys, &keys[2], 5000), None);
        assert!(published(&keys, &keys[0], 1300 + MAX_TOKEN_LIFETIME_S - 1));
        assert!(!published(&keys, &keys[0], 1300 + MAX_TOKEN_LIFETIME_S));
        // Never activated: published (pending) for as long as it exists.
        assert!(published(&keys, &keys[2], u64::MAX / 2));
    }

    #[test]
    fn statuses_name_one_active_key() {
        let keys = [key("a", 0, Some(300)), key("b", 1000, Some(1300))];
        let secret = [("s1".to_owned(), Alg::Rs256), ("s2".to_owned(), Alg::Es256)];
        let at = |now| {
            statuses(&keys, &secret, now)
                .into_iter()
                .map(|s| (s.kid, s.status))
                .collect::<Vec<_>>()
        };
        let own = |v: Vec<(&str, &'static str)>| -> Vec<(String, &'static str)> {
            v.into_iter().map(|(k, s)| (k.to_owned(), s)).collect()
        };
        assert_eq!(
            at(100),
            own(vec![
                ("b", "pending"),
                ("a", "pending"),
                ("s1", "active"),
                ("s2", "published")
            ])
        );
        assert_eq!(
            at(400),
            own(vec![
                ("b", "pending"),
                ("a", "active"),
                ("s1", "published"),
                ("s2", "published")
            ])
        );
        let later = statuses(&keys, &secret, 1400);
        assert_eq!(later[0].status, "active");
        assert_eq!(later[1].status, "retired");
        assert_eq!(later[1].retired_at, Some(1300));
        assert_eq!(later[1].published_until, Some(1300 + MAX_TOKEN_LIFETIME_S));
    }

    #[test]
    fn the_bundle_puts_the_signer_first_and_drops_expired_keys() {
        let der = |b: u8| vec![b; 4];
        let opened = vec![
            (key("a", 0, Some(300)), der(1)),
            (key("b", 1000, Some(1300)), der(2)),
        ];
        let pem_of = |d: Vec<u8>| pem::encode(&pem::Pem::new("PRIVATE KEY", d));
        let secret = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        // Before any activation: the secret signs, both managed keys are published after it.
        let b = assemble(secret, &opened, 100);
        assert!(b.starts_with(secret));
        assert!(b.contains(&pem_of(der(1))) && b.contains(&pem_of(der(2))));
        // After b activates: b first, a still published.
        let b = assemble(secret, &opened, 1400);
        assert!(b.starts_with(&pem_of(der(2))));
        assert!(b.contains(&pem_of(der(1))));
        // After a's tokens have all expired: a is gone.
        let b = assemble(secret, &opened, 1300 + MAX_TOKEN_LIFETIME_S);
        assert!(!b.contains(&pem_of(der(1))));
        // No secret at all: the managed keys alone; before any activation the oldest signs, and
        // the statuses say so.
        assert!(assemble("", &opened, 1400).starts_with(&pem_of(der(2))));
        assert!(assemble("", &opened, 100).starts_with(&pem_of(der(1))));
        let st = statuses(
            &[key("a", 0, Some(300)), key("b", 1000, Some(1300))],
            &[],
            100,
        );
        assert_eq!((st[1].kid.as_str(), st[1].status), ("a", "active"));
        assert_eq!(st[0].status, "pending");
    }

    #[test]
    fn the_bundle_changes_only_at_an_activation_or_a_departure() {
        let keys = [
            key("a", 0, Some(300)),
            key("b", 1000, Some(1300)),
            key("c", 2000, None),
        ];
        assert_eq!(next_change(&keys, 100), Some(300));
        assert_eq!(next_change(&keys, 300), Some(1300));
        assert_eq!(next_change(&keys, 1300), Some(1300 + MAX_TOKEN_LIFETIME_S));
        assert_eq!(next_change(&keys, 1300 + MAX_TOKEN_LIFETIME_S), None);
        let opened: Vec<(ManagedKey, Vec<u8>)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), vec![i as u8 + 1; 4]))
            .collect();
        // Between two changes the bundle is the same, so it may be reused.
        assert_eq!(assemble("", &opened, 300), assemble("", &opened, 1299));
        assert_ne!(assemble("", &opened, 1299), assemble("", &opened, 1300));
    }

    #[test]
    fn the_wrapping_key_needs_length() {
        assert!(wrapping_key("short").is_err());
        let a = wrapping_key(&"k".repeat(32)).unwrap_or_default();
        let b = wrapping_key(&"k".repeat(33)).unwrap_or_default();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}
