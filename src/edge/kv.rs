//! Short-lived state in KV (`docs/storage.md`): code payloads, login sessions, pending
//! authorization requests. Keys are hashes of the secrets; TTLs do the cleanup. Nothing here is
//! trusted to be single-use: code redemption is decided in the family's shard.

use super::now_ms;
use super::store::EdgeStore;
use crate::core::cache::TtlCache;
use crate::core::future::all as join_all;
use crate::core::oauth::authz::CODE_TTL_S;
use crate::core::oauth::interaction::{INTERACTION_TTL_S, SESSION_TTL_S};
use crate::core::secret::SecretHash;
use crate::core::storage::{
    AccessCopy, AccessCopyStore, CodeGrant, CodeStore, Interaction, InteractionStore, Route,
    Session, SessionStore, StoreError,
};

impl CodeStore for EdgeStore {
    async fn put_code(&self, hash: &SecretHash, code: &CodeGrant) -> Result<(), StoreError> {
        if let Some(route) = Route::of_key(&code.family_id) {
            self.placing_on(route).await?;
        }
        self.kv_put(&format!("code:{}", hash.0), code, CODE_TTL_S)
            .await
    }
    async fn get_code(&self, hash: &SecretHash) -> Result<Option<CodeGrant>, StoreError> {
        self.kv_get(&format!("code:{}", hash.0)).await
    }
}

impl SessionStore for EdgeStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> Result<(), StoreError> {
        self.kv_put(&format!("session:{}", hash.0), session, SESSION_TTL_S)
            .await
    }
    async fn get_session(&self, hash: &SecretHash) -> Result<Option<Session>, StoreError> {
        self.kv_get(&format!("session:{}", hash.0)).await
    }
}

impl InteractionStore for EdgeStore {
    async fn put_interaction(
        &self,
        id_hash: &SecretHash,
        interaction: &Interaction,
    ) -> Result<(), StoreError> {
        self.kv_put(
            &format!("interaction:{}", id_hash.0),
            interaction,
            INTERACTION_TTL_S,
        )
        .await
    }
    async fn get_interaction(
        &self,
        id_hash: &SecretHash,
    ) -> Result<Option<Interaction>, StoreError> {
        self.kv_get(&format!("interaction:{}", id_hash.0)).await
    }
}

thread_local! {
    /// Access tokens whose copies this isolate dropped, until they expire: KV may serve a
    /// dropped key from its cache for a while, but a revocation takes effect at once where it
    /// was made. Bounded like the admin caches.
    static DROPPED: TtlCache<()> = TtlCache::new(DROPPED_TTL_MS);
    /// Copies this isolate read or wrote in the last few seconds: a client calling an API
    /// several times a second is validated without a KV read each time.
    static COPIES: TtlCache<AccessCopy> = TtlCache::new(COPY_CACHE_TTL_MS);
}

/// Longer than KV's cache of a read value (60 s).
const DROPPED_TTL_MS: u64 = 120_000;

/// How long an isolate trusts a copy it has seen: this adds to KV's propagation time (about
/// 60 s) in the bound on how long a revocation takes to reach other locations.
pub const COPY_CACHE_TTL_MS: u64 = 5_000;

fn copy_key(hash: &SecretHash) -> String {
    format!("at:{}", hash.0)
}

impl AccessCopyStore for EdgeStore {
    async fn put_access_copy(
        &self,
        hash: &SecretHash,
        copy: &AccessCopy,
    ) -> Result<(), StoreError> {
        let ttl = copy.expires_at_s.saturating_sub(now_ms() / 1000);
        self.kv_put(&copy_key(hash), copy, ttl).await?;
        COPIES.with(|c| c.put(&hash.0, copy.clone(), now_ms()));
        Ok(())
    }
    async fn get_access_copy(&self, hash: &SecretHash) -> Result<Option<AccessCopy>, StoreError> {
        let now = now_ms();
        if DROPPED.with(|d| d.get(&hash.0, now).is_some()) {
            return Ok(None);
        }
        if let Some(copy) = COPIES.with(|c| c.get(&hash.0, now)) {
            return Ok(Some(copy));
        }
        let copy: Option<AccessCopy> = self.kv_get(&copy_key(hash)).await?;
        if let Some(c) = &copy {
            COPIES.with(|cache| cache.put(&hash.0, c.clone(), now));
        }
        Ok(copy)
    }
    async fn drop_access_copies(&self, hashes: &[SecretHash]) -> Result<(), StoreError> {
        let now = now_ms();
        DROPPED.with(|d| hashes.iter().for_each(|h| d.put(&h.0, (), now)));
        COPIES.with(|c| hashes.iter().for_each(|h| c.forget(&h.0)));
        // All at once: one round trip of waiting, however many.
        let deletes = hashes.iter().map(|h| {
            let key = copy_key(h);
            async move { self.kv_call(self.kv.delete(&key)).await }
        });
        for r in join_all(deletes).await {
            r?;
        }
        Ok(())
    }
}
