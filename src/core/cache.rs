//! Isolate-local caches of admin state (apps, org settings): read on nearly every request,
//! changed rarely. An entry lives [`ADMIN_STATE_TTL_MS`]; the isolate that makes a change
//! forgets the entry at once, and every other isolate picks the change up when its entry runs
//! out. Misses are cached too, so a flood of unknown client ids costs one read per id and
//! period. The edge keeps one cache per kind of state per isolate (`edge/d1.rs`).

use std::cell::RefCell;
use std::collections::HashMap;

/// How stale cached admin state may be in an isolate that did not make the change.
pub const ADMIN_STATE_TTL_MS: u64 = 30_000;

/// Entries held at most; past that the cache starts over (it is a cache, not a store).
const MAX_ENTRIES: usize = 1024;

pub struct TtlCache<V> {
    entries: RefCell<HashMap<String, (u64, V)>>,
    ttl_ms: u64,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            entries: RefCell::new(HashMap::new()),
            ttl_ms,
        }
    }

    /// The cached value, if it was stored less than the TTL ago.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<V> {
        let entries = self.entries.borrow();
        let (stored_at, value) = entries.get(key)?;
        (now_ms.saturating_sub(*stored_at) < self.ttl_ms).then(|| value.clone())
    }

    pub fn put(&self, key: &str, value: V, now_ms: u64) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (now_ms, value));
    }

    /// Called by the isolate that changed `key`: the next read goes to the store.
    pub fn forget(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }

    /// Forgets everything (a change whose keys are not known, e.g. an app's CORS origins).
    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let cache = TtlCache::new(ADMIN_STATE_TTL_MS);
        cache.put("a", Some(1), 1_000);
        cache.put("missing", None::<i32>, 1_000);
        assert_eq!(
            cache.get("a", 1_000 + ADMIN_STATE_TTL_MS - 1),
            Some(Some(1))
        );
        assert_eq!(cache.get("missing", 2_000), Some(None), "misses are cached");
        assert_eq!(cache.get("a", 1_000 + ADMIN_STATE_TTL_MS), None, "expired");
        cache.put("a", Some(2), 5_000);
        cache.forget("a");
        assert_eq!(cache.get("a", 5_001), None);
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let cache = TtlCache::new(1_000);
        for i in 0..=MAX_ENTRIES {
            cache.put(&i.to_string(), i, 0);
        }
        assert!(cache.entries.borrow().len() <= MAX_ENTRIES);
        assert_eq!(cache.get(&MAX_ENTRIES.to_string(), 0), Some(MAX_ENTRIES));
    }
}
