//! The [`ResourceStore`] over D1's `resources` table (`migrations/0006_gateway.sql`). Lookups by
//! URI (every authorization and token request that names a `resource`) are cached per isolate
//! like the apps (`core/cache.rs`).

use serde::Deserialize;

use super::now_ms;
use super::store::{Arg, EdgeStore};
use crate::core::cache::{TtlCache, ADMIN_STATE_TTL_MS};
use crate::core::storage::{ProtectedResource, ResourceStore, StoreError};

const COLUMNS: &str = "resource_id, uri, name, scopes, created_at";

thread_local! {
    static BY_URI: TtlCache<Option<ProtectedResource>> = TtlCache::new(ADMIN_STATE_TTL_MS);
}

#[derive(Deserialize)]
struct Row {
    resource_id: String,
    uri: String,
    name: String,
    scopes: String,
    created_at: u64,
}

impl Row {
    fn into_resource(self) -> Result<ProtectedResource, StoreError> {
        Ok(ProtectedResource {
            resource_id: self.resource_id,
            uri: self.uri,
            name: self.name,
            scopes: serde_json::from_str(&self.scopes).map_err(super::store::backend)?,
            created_at_s: self.created_at,
        })
    }
}

impl ResourceStore for EdgeStore {
    async fn create_resource(&self, r: &ProtectedResource) -> Result<(), StoreError> {
        BY_URI.with(|c| c.forget(&r.uri));
        let scopes = serde_json::to_string(&r.scopes).map_err(super::store::backend)?;
        let inserted = self
            .exec(
                "INSERT INTO resources (resource_id, uri, name, scopes, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (uri) DO NOTHING",
                &[
                    Arg::Text(&r.resource_id),
                    Arg::Text(&r.uri),
                    Arg::Text(&r.name),
                    Arg::Text(&scopes),
                    Arg::Int(r.created_at_s),
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "a resource with this uri exists".into(),
            ));
        }
        Ok(())
    }
    async fn list_resources(&self) -> Result<Vec<ProtectedResource>, StoreError> {
        let rows: Vec<Row> = self
            .all(
                &format!("SELECT {COLUMNS} FROM resources ORDER BY created_at, resource_id"),
                &[],
            )
            .await?;
        rows.into_iter().map(Row::into_resource).collect()
    }
    async fn find_resource(&self, uri: &str) -> Result<Option<ProtectedResource>, StoreError> {
        if let Some(cached) = BY_URI.with(|c| c.get(uri, now_ms())) {
            return Ok(cached);
        }
        let row: Option<Row> = self
            .first(
                &format!("SELECT {COLUMNS} FROM resources WHERE uri = ?"),
                &[Arg::Text(uri)],
            )
            .await?;
        let found = row.map(Row::into_resource).transpose()?;
        BY_URI.with(|c| c.put(uri, found.clone(), now_ms()));
        Ok(found)
    }
    async fn delete_resource(&self, resource_id: &str) -> Result<bool, StoreError> {
        BY_URI.with(TtlCache::clear);
        let n = self
            .exec(
                "DELETE FROM resources WHERE resource_id = ?",
                &[Arg::Text(resource_id)],
            )
            .await?;
        Ok(n == 1)
    }
}
