//! The memory store's audit trail and managed signing keys.

use super::MemoryStore;
use crate::core::audit::{AuditEvent, AuditQuery};
use crate::core::keys::managed::ManagedKey;
use crate::core::storage::{AuditStore, SigningKeyStore, StoreError};

impl AuditStore for MemoryStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut trail = self.audit.borrow_mut();
        for e in events {
            let mut e = e.clone();
            e.id = trail.last().map_or(1, |last| last.id + 1);
            trail.push(e);
        }
        Ok(())
    }
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .audit
            .borrow()
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit as usize)
            .cloned()
            .collect())
    }
    async fn prune_audit(&self, before_s: u64, limit: u32) -> Result<usize, StoreError> {
        let mut trail = self.audit.borrow_mut();
        let old = trail
            .iter()
            .filter(|e| e.at < before_s)
            .take(limit as usize)
            .map(|e| e.id)
            .collect::<Vec<_>>();
        trail.retain(|e| !old.contains(&e.id));
        Ok(old.len())
    }
}

impl SigningKeyStore for MemoryStore {
    async fn list_signing_keys(&self) -> Result<Vec<ManagedKey>, StoreError> {
        Ok(self.signing_keys.borrow().values().cloned().collect())
    }
    async fn create_signing_key(&self, key: &ManagedKey) -> Result<(), StoreError> {
        let mut keys = self.signing_keys.borrow_mut();
        if keys.contains_key(&key.kid) {
            return Err(StoreError::Conflict("a key with this kid exists".into()));
        }
        keys.insert(key.kid.clone(), key.clone());
        Ok(())
    }
    async fn schedule_signing_key(&self, kid: &str, activates_at: u64) -> Result<bool, StoreError> {
        Ok(match self.signing_keys.borrow_mut().get_mut(kid) {
            Some(k) => {
                k.activates_at = Some(activates_at);
                true
            }
            None => false,
        })
    }
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        Ok(self.signing_keys.borrow_mut().remove(kid).is_some())
    }
}
