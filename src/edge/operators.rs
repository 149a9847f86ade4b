//! The audit trail and the managed signing keys in D1 (`migrations/0007_operators.sql`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use super::store::{backend, Arg, EdgeStore};
use crate::core::audit::{AuditEvent, AuditQuery};
use crate::core::keys::managed::ManagedKey;
use crate::core::keys::Alg;
use crate::core::secret::b64url;
use crate::core::storage::{AuditStore, SigningKeyStore, StoreError};

const INSERT_EVENT: &str = "INSERT INTO audit_events (at, kind, outcome, actor, user_id, client_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

fn event_args(e: &AuditEvent) -> Vec<JsValue> {
    [
        Arg::Int(e.at),
        Arg::Text(&e.kind),
        Arg::Text(&e.outcome),
        Arg::Text(&e.actor),
        Arg::OptText(e.user_id.as_deref()),
        Arg::OptText(e.client_id.as_deref()),
        Arg::OptText(e.ip.as_deref()),
        Arg::Text(&e.detail),
    ]
    .iter()
    .map(JsValue::from)
    .collect()
}

/// Writes a request's events in one batch, off the response path (`waitUntil` in `mod.rs`):
/// straight to the database, so it needs nothing of the request's store. A failure is logged
/// (without the events' contents) and does not reach the caller, who has been answered.
pub async fn write_events(db: D1Database, events: Vec<AuditEvent>) {
    if events.is_empty() {
        return;
    }
    let stmts: Result<Vec<D1PreparedStatement>, _> = events
        .iter()
        .map(|e| db.prepare(INSERT_EVENT).bind(&event_args(e)))
        .collect();
    let result = match stmts {
        Ok(stmts) => db.batch(stmts).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        worker::console_error!("audit: {} events not written: {e}", events.len());
    }
}

#[derive(Deserialize)]
struct EventRow {
    id: u64,
    at: u64,
    kind: String,
    outcome: String,
    actor: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    detail: String,
}

impl AuditStore for EdgeStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let stmts = events
            .iter()
            .map(|e| self.stmt_values(INSERT_EVENT, &event_args(e)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch(stmts).await.map(|_| ())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        // The same filter as AuditQuery::matches; an absent one is a NULL that matches all.
        let rows: Vec<EventRow> = self
            .all(
                "SELECT id, at, kind, outcome, actor, user_id, client_id, ip, detail FROM audit_events
                 WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR id < ?2)
                   AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR client_id = ?4)
                   AND (?5 IS NULL OR kind = ?5)
                 ORDER BY id DESC LIMIT ?6",
                &[
                    Arg::OptInt(q.since_s),
                    Arg::OptInt(q.before_id),
                    Arg::OptText(q.user_id.as_deref()),
                    Arg::OptText(q.client_id.as_deref()),
                    Arg::OptText(q.kind.as_deref()),
                    Arg::Int(q.limit.into()),
                ],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                id: r.id,
                at: r.at,
                kind: r.kind,
                outcome: r.outcome,
                actor: r.actor,
                user_id: r.user_id,
                client_id: r.client_id,
                ip: r.ip,
                detail: r.detail,
            })
            .collect())
    }

    async fn prune_audit(&self, before_s: u64, limit: u32) -> Result<usize, StoreError> {
        self.exec(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?)",
            &[Arg::Int(before_s), Arg::Int(limit.into())],
        )
        .await
    }
}

#[derive(Deserialize)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed: String,
    created_at: u64,
    activates_at: Option<u64>,
}

impl KeyRow {
    fn into_key(self) -> Result<ManagedKey, StoreError> {
        let alg = match self.alg.as_str() {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            other => return Err(backend(format!("signing_keys: unknown alg {other}"))),
        };
        Ok(ManagedKey {
            kid: self.kid,
            alg,
            sealed: URL_SAFE_NO_PAD.decode(&self.sealed).map_err(backend)?,
            created_at: self.created_at,
            activates_at: self.activates_at,
        })
    }
}

impl SigningKeyStore for EdgeStore {
    async fn list_signing_keys(&self) -> Result<Vec<ManagedKey>, StoreError> {
        let rows: Vec<KeyRow> = self
            .all(
                "SELECT kid, alg, sealed, created_at, activates_at FROM signing_keys ORDER BY created_at",
                &[],
            )
            .await?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn create_signing_key(&self, key: &ManagedKey) -> Result<(), StoreError> {
        let sealed = b64url(&key.sealed);
        let inserted = self
            .exec(
                "INSERT INTO signing_keys (kid, alg, sealed, created_at, activates_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING",
                &[
                    Arg::Text(&key.kid),
                    Arg::Text(key.alg.name()),
                    Arg::Text(&sealed),
                    Arg::Int(key.created_at),
                    Arg::OptInt(key.activates_at),
                ],
            )
            .await?;
        super::keys_changed();
        if inserted == 0 {
            return Err(StoreError::Conflict("a key with this kid exists".into()));
        }
        Ok(())
    }

    async fn schedule_signing_key(&self, kid: &str, activates_at: u64) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "UPDATE signing_keys SET activates_at = ? WHERE kid = ?",
                &[Arg::Int(activates_at), Arg::Text(kid)],
            )
            .await?;
        super::keys_changed();
        Ok(n > 0)
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        let n = self
            .exec("DELETE FROM signing_keys WHERE kid = ?", &[Arg::Text(kid)])
            .await?;
        super::keys_changed();
        Ok(n > 0)
    }
}
