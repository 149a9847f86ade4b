//! The [`AssetStore`] over D1's `assets` table (`migrations/0005_assets.sql`).

use serde::Deserialize;

use super::store::{Arg, EdgeStore};
use crate::core::storage::{Asset, AssetStore, StoreError};

const COLUMNS: &str =
    "asset_id, client_id, device_id, name, serial_number, user_id, created_at, revoked_at";

#[derive(Deserialize)]
struct Row {
    asset_id: String,
    client_id: String,
    device_id: String,
    name: String,
    serial_number: Option<String>,
    user_id: String,
    created_at: u64,
    revoked_at: Option<u64>,
}

impl From<Row> for Asset {
    fn from(r: Row) -> Self {
        Self {
            asset_id: r.asset_id,
            client_id: r.client_id,
            device_id: r.device_id,
            name: r.name,
            serial_number: r.serial_number,
            user_id: r.user_id,
            created_at_s: r.created_at,
            revoked_at_s: r.revoked_at,
        }
    }
}

impl AssetStore for EdgeStore {
    async fn record_asset(&self, a: &Asset) -> Result<Asset, StoreError> {
        // One statement: a new device is inserted, a known one updated unless revoked.
        self.exec(
            "INSERT INTO assets (asset_id, client_id, device_id, name, serial_number, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (client_id, device_id) DO UPDATE SET name = excluded.name, serial_number = excluded.serial_number, user_id = excluded.user_id \
             WHERE assets.revoked_at IS NULL",
            &[
                Arg::Text(&a.asset_id),
                Arg::Text(&a.client_id),
                Arg::Text(&a.device_id),
                Arg::Text(&a.name),
                Arg::OptText(a.serial_number.as_deref()),
                Arg::Text(&a.user_id),
                Arg::Int(a.created_at_s),
            ],
        )
        .await?;
        let row: Option<Row> = self
            .first(
                &format!("SELECT {COLUMNS} FROM assets WHERE client_id = ? AND device_id = ?"),
                &[Arg::Text(&a.client_id), Arg::Text(&a.device_id)],
            )
            .await?;
        row.map(Asset::from)
            .ok_or_else(|| StoreError::Backend("asset row missing after its write".into()))
    }

    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>, StoreError> {
        let row: Option<Row> = self
            .first(
                &format!("SELECT {COLUMNS} FROM assets WHERE asset_id = ?"),
                &[Arg::Text(asset_id)],
            )
            .await?;
        Ok(row.map(Asset::from))
    }

    async fn list_assets(&self) -> Result<Vec<Asset>, StoreError> {
        let rows: Vec<Row> = self
            .all(
                &format!("SELECT {COLUMNS} FROM assets ORDER BY created_at, asset_id"),
                &[],
            )
            .await?;
        Ok(rows.into_iter().map(Asset::from).collect())
    }

    async fn revoke_asset(&self, asset_id: &str, now_s: u64) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE assets SET revoked_at = coalesce(revoked_at, ?) WHERE asset_id = ?",
                &[Arg::Int(now_s), Arg::Text(asset_id)],
            )
            .await?;
        Ok(changed > 0)
    }
}
