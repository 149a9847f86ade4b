//! Short-lived state in KV (`docs/storage.md`): code payloads, login sessions, pending
//! authorization requests. Keys are hashes of the secrets; TTLs do the cleanup. Nothing here is
//! trusted to be single-use: code redemption is decided in D1.

use super::store::EdgeStore;
use crate::core::oauth::authz::CODE_TTL_S;
use crate::core::oauth::interaction::{INTERACTION_TTL_S, SESSION_TTL_S};
use crate::core::secret::SecretHash;
use crate::core::storage::{
    CodeGrant, CodeStore, Interaction, InteractionStore, Session, SessionStore, StoreError,
};

impl CodeStore for EdgeStore {
    async fn put_code(&self, hash: &SecretHash, code: &CodeGrant) -> Result<(), StoreError> {
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
