//! `/admin/resources`: protected resources tokens may be asked for (RFC 8707). Gateway routes'
//! resources count as registered without a row; the list shows them too.

use serde::Deserialize;

use super::{json, json_object, typed, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::ids::new_record_id;
use crate::core::oauth::resource::well_formed;
use crate::core::oauth::scope::unknown_scopes;
use crate::core::storage::{ProtectedResource, Store};

/// Salesforce has no key prefix for these; ours reads as "resource".
const RESOURCE_PREFIX: &str = "0rs";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceInput {
    uri: String,
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

fn view(r: &ProtectedResource) -> serde_json::Value {
    serde_json::json!({
        "resource_id": r.resource_id,
        "uri": r.uri,
        "name": r.name,
        "scopes": r.scopes,
        "created_at": r.created_at_s,
    })
}

pub async fn list<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    let mut all: Vec<serde_json::Value> =
        ctx.store.list_resources().await?.iter().map(view).collect();
    all.extend(ctx.config.gateway.iter().map(|r| {
        serde_json::json!({
            "uri": r.resource_for(&ctx.issuer),
            "name": format!("gateway route {}", r.prefix),
            "scopes": r.required_scopes,
            "gateway": true,
        })
    }));
    json(200, &all)
}

pub async fn create<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let input: ResourceInput = typed(json_object(req, false)?)?;
    if !well_formed(&input.uri) {
        return Err(AdminError::bad_request(
            "uri must be an absolute http(s) URI without a fragment",
        ));
    }
    if input.name.trim().is_empty() {
        return Err(AdminError::bad_request("name must not be empty"));
    }
    let unknown = unknown_scopes(&input.scopes);
    if !unknown.is_empty() {
        return Err(AdminError::bad_request(format!(
            "unknown scope(s): {}",
            unknown.join(", ")
        )));
    }
    let resource = ProtectedResource {
        resource_id: new_record_id(ctx.rng, RESOURCE_PREFIX),
        uri: input.uri,
        name: input.name,
        scopes: input.scopes,
        created_at_s: ctx.now_s(),
    };
    ctx.store.create_resource(&resource).await?;
    json(201, &view(&resource))
}

pub async fn delete<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    if !ctx.store.delete_resource(id).await? {
        return Err(AdminError::not_found("resource"));
    }
    Ok(Response::empty(204))
}
