//! `GET /admin/audit`: the trail, newest first, filtered and paged (`core/audit.rs`).

use serde_json::json;

use super::{json, AdminError, AdminResult};
use crate::core::audit::{AuditQuery, Kind, PAGE_DEFAULT, PAGE_MAX};
use crate::core::config::Ctx;
use crate::core::http::Request;
use crate::core::storage::Store;

pub async fn list<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let query = parse(req)?;
    // One more than asked for says whether there is an older page.
    let mut events = ctx
        .store
        .list_audit(&AuditQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let next = if events.len() > query.limit as usize {
        events.truncate(query.limit as usize);
        events.last().map(|e| e.id.to_string())
    } else {
        None
    };
    json(200, &json!({"events": events, "next": next}))
}

fn parse(req: &Request) -> Result<AuditQuery, AdminError> {
    let params = req.query_params();
    let get = |name: &str| {
        params
            .get(name)
            .map_err(|_| AdminError::bad_request(format!("{name} given more than once")))
            .map(|v| v.filter(|v| !v.is_empty()))
    };
    let number = |name: &str| -> Result<Option<u64>, AdminError> {
        get(name)?
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    AdminError::bad_request(format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    };
    for (name, _) in params.pairs() {
        if !["since", "user", "client", "kind", "limit", "before"].contains(&name.as_str()) {
            return Err(AdminError::bad_request(format!(
                "unknown query parameter: {name}"
            )));
        }
    }
    let kind = match get("kind")? {
        Some(k) if Kind::parse(k).is_none() => {
            return Err(AdminError::bad_request(
                "kind must be one of login, consent, token, revoke, admin",
            ))
        }
        k => k.map(str::to_owned),
    };
    let limit = match number("limit")? {
        None => PAGE_DEFAULT,
        Some(n) if (1..=u64::from(PAGE_MAX)).contains(&n) => n as u32,
        Some(_) => {
            return Err(AdminError::bad_request(format!(
                "limit must be between 1 and {PAGE_MAX}"
            )))
        }
    };
    Ok(AuditQuery {
        since_s: number("since")?,
        user_id: get("user")?.map(str::to_owned),
        client_id: get("client")?.map(str::to_owned),
        kind,
        before_id: number("before")?,
        limit,
    })
}
