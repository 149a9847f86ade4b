//! Development-only endpoints, served only when `DEV_MODE = "1"` (which `make dev` and the test
//! harness set; a deployment never does) and only to the admin token. Without the flag these
//! paths are 404 like any unknown path.
//!
//! - `GET /dev/shards`: what each shard holds, to show keys spread over the shards.

use worker::Env;

use super::store::EdgeStore;
use super::var;
use crate::core::config::Config;
use crate::core::http::{Method, Request, Response};
use crate::core::secret::ct_eq;

pub fn is_dev_path(path: &str) -> bool {
    path == "/dev" || path.starts_with("/dev/")
}

pub async fn handle(env: &Env, store: &EdgeStore, config: &Config, req: &Request) -> Response {
    let error = |status: u16, error: &str| {
        Response::json(status, &serde_json::json!({ "error": error })).no_store()
    };
    if var(env, "DEV_MODE").as_deref() != Some("1") {
        return error(404, "not_found");
    }
    let presented = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "));
    let allowed =
        matches!((&config.admin_token, presented), (Some(t), Some(p)) if ct_eq(t.expose(), p));
    if !allowed {
        return error(401, "unauthorized");
    }
    match (req.method, req.path.as_str()) {
        (Method::Get, "/dev/shards") => match store.shard_stats().await {
            Ok(stats) => {
                let counts: Vec<serde_json::Value> = stats
                    .into_iter()
                    .map(|(route, s)| {
                        serde_json::json!({
                            "shard": route.0,
                            "families": s.families,
                            "tokens": s.tokens,
                            "code_redemptions": s.code_redemptions,
                            "registration_tokens": s.registration_tokens,
                            "jti_markers": s.jti_markers,
                            "epochs": s.epochs,
                        })
                    })
                    .collect();
                let high_water = counts.len();
                Response::json(
                    200,
                    &serde_json::json!({
                        "shards": store.shards.count,
                        "high_water": high_water,
                        "counts": counts,
                    }),
                )
                .no_store()
            }
            Err(_) => error(503, "temporarily_unavailable"),
        },
        _ => error(404, "not_found"),
    }
}
