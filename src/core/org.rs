//! The org: its id and settings, created with the defaults on first use. Below the endpoints,
//! beside `model.rs`, so grants, PKCE, introspection and the admin API read org state without
//! importing the router.

use super::config::Ctx;
use super::env::Rng;
use super::ids::{new_record_id, ORG_PREFIX};
use super::model::OrgSettings;
use super::storage::{Store, StoreError};

/// The org's settings, created with CONTRACT §4 defaults and a fresh org id on first use.
pub async fn org_settings<S: Store>(ctx: &Ctx<'_, S>) -> Result<OrgSettings, StoreError> {
    if let Some(s) = ctx.store.load_settings().await? {
        return Ok(s);
    }
    init_org(ctx.store, ctx.rng).await
}

/// The org id (for token prefixes and identity URLs); cached by the edge store.
pub async fn org_id<S: Store>(ctx: &Ctx<'_, S>) -> Result<String, StoreError> {
    match ctx.store.org_id().await? {
        Some(id) => Ok(id),
        // First use of a fresh org: create it (without reading the settings a second time).
        None => Ok(init_org(ctx.store, ctx.rng).await?.org_id),
    }
}

async fn init_org<S: Store>(store: &S, rng: &dyn Rng) -> Result<OrgSettings, StoreError> {
    store
        .init_settings(&OrgSettings::with_defaults(new_record_id(rng, ORG_PREFIX)))
        .await
}
