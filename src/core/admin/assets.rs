//! `/admin/assets`: devices that received asset tokens (`oauth/grants/token_exchange.rs`).

use super::{json, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::storage::{Asset, Store};

fn view(a: &Asset) -> serde_json::Value {
    serde_json::json!({
        "asset_id": a.asset_id,
        "client_id": a.client_id,
        "device_id": a.device_id,
        "name": a.name,
        "serial_number": a.serial_number,
        "user_id": a.user_id,
        "created_at": a.created_at_s,
        "revoked_at": a.revoked_at_s,
    })
}

pub async fn list<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    let assets: Vec<_> = ctx.store.list_assets().await?.iter().map(view).collect();
    json(200, &serde_json::json!({ "assets": assets }))
}

/// Revokes the asset: no new asset tokens for the device, and its tokens introspect inactive.
pub async fn revoke<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    if !ctx.store.revoke_asset(id, ctx.now_s()).await? {
        return Err(AdminError::not_found("asset"));
    }
    let asset = ctx
        .store
        .get_asset(id)
        .await?
        .ok_or_else(|| AdminError::not_found("asset"))?;
    json(200, &view(&asset))
}
