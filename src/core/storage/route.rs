//! Routes: where the state of one token family lives when the backend is sharded.
//!
//! A family's route is picked when its authorization code is minted — a hash of the family's
//! random part, modulo the number of shards then configured — and written, as two base62
//! characters, at the start of the family id and of every token of the family (refresh tokens,
//! access tokens or their `jti`, initial access tokens). Every later lookup goes straight to the
//! shard its key names, so changing the number of shards moves nothing and strands nothing:
//! old keys keep their old route (`docs/scaling.md`). A store that is not sharded ignores routes.

use crate::core::secret::{sha256, SecretHash};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The largest shard count a deployment may configure (`SHARDS`).
pub const MAX_SHARDS: u16 = 64;

/// A shard index, `0..MAX_SHARDS`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Route(pub u16);

impl Route {
    /// Characters a route takes at the start of a key.
    pub const LEN: usize = 2;

    /// The route of a new key whose random part is `random`, among `shards` shards.
    pub fn pick(random: &str, shards: u16) -> Self {
        let h = sha256(random.as_bytes());
        let n = u16::from_be_bytes([h[0], h[1]]);
        Self(n % shards.clamp(1, MAX_SHARDS))
    }

    /// Two base62 characters.
    pub fn encode(self) -> String {
        let (hi, lo) = (usize::from(self.0 / 62), usize::from(self.0 % 62));
        [ALPHABET[hi % 62] as char, ALPHABET[lo] as char]
            .iter()
            .collect()
    }

    /// The route at the start of `key`, if it is one (a valid index below [`MAX_SHARDS`]).
    pub fn of_key(key: &str) -> Option<Self> {
        let digit = |b: u8| ALPHABET.iter().position(|&a| a == b);
        let bytes = key.as_bytes();
        let (hi, lo) = (digit(*bytes.first()?)?, digit(*bytes.get(1)?)?);
        let n = u16::try_from(hi * 62 + lo).ok()?;
        (n < MAX_SHARDS).then_some(Self(n))
    }
}

/// How a presented secret is looked up: its hash, and the route its shape carries (`None` for
/// anything that is not one of our routed tokens, which no store will find).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenKey {
    pub hash: SecretHash,
    pub route: Option<Route>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_round_trip_and_stay_below_the_shard_count() {
        for n in 0..MAX_SHARDS {
            let r = Route(n);
            assert_eq!(r.encode().len(), Route::LEN);
            assert_eq!(Route::of_key(&format!("{}rest", r.encode())), Some(r));
        }
        assert_eq!(Route(0).encode(), "00");
        assert_eq!(Route(2).encode(), "02");
        assert_eq!(Route(63).encode(), "11");
        assert_eq!(Route::of_key("1"), None);
        assert_eq!(Route::of_key("!!x"), None);
        assert_eq!(Route::of_key("zz"), None);
        let mut seen = [0u32; 4];
        for i in 0..400 {
            let r = Route::pick(&format!("random{i}"), 4);
            seen[usize::from(r.0)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(Route::pick("x", 1), Route(0));
        assert_eq!(Route::pick("x", 0), Route(0));
    }
}
