//! The Worker edge: maps `worker::Request` to the core's request, calls the core, maps the
//! response back, and implements the storage traits on KV and D1. It makes no protocol decision.

mod assets;
mod crypto;
mod d1;
mod dev;
mod gateway;
mod http;
mod kv;
mod outbound;
mod resources;
mod shard_object;
mod shards;
mod store;

use std::cell::RefCell;
use std::rc::Rc;

use worker::{event, Context, Env};

use crate::core::config::{Config, Ctx};
use crate::core::env::{Clock, OsRng};
use crate::core::keys::KeySet;
use crate::core::oauth::stamp::StampKey;
use crate::core::router;
use crate::core::secret::Secret;

/// The runtime's wall clock, in milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

thread_local! {
    /// Signing keys imported into WebCrypto and the age-stamp key derived from the secret,
    /// reused across requests of this isolate while the secret is unchanged.
    static KEYS: RefCell<Option<(String, Keys)>> = const { RefCell::new(None) };
}

/// The key set, and the age-stamp key (none while the signing keys are unusable).
type Keys = (Rc<KeySet>, Option<StampKey>);

fn cached_keys(pems: &str) -> Option<Keys> {
    KEYS.with(|cell| match cell.borrow().as_ref() {
        Some((cached, keys)) if cached == pems => Some(keys.clone()),
        _ => None,
    })
}

/// The isolate's keys; its first request (or the first after the secret changed) imports
/// them, which is asynchronous in WebCrypto.
async fn keys(env: &Env) -> Keys {
    let pems = env
        .secret("SIGNING_KEYS")
        .map(|s| s.to_string())
        .unwrap_or_default();
    if let Some(keys) = cached_keys(&pems) {
        return keys;
    }
    let set = Rc::new(crypto::load(&pems).await);
    // Requests that arrived during the import imported too; the first to finish is kept, so
    // an unusable secret is still logged once per isolate.
    if let Some(keys) = cached_keys(&pems) {
        return keys;
    }
    if let Some(e) = set.error() {
        worker::console_error!("SIGNING_KEYS unusable: {}", e.0);
    }
    let stamp = set.error().is_none().then(|| StampKey::derive(&pems));
    let keys = (set, stamp);
    KEYS.with(|cell| *cell.borrow_mut() = Some((pems, keys.clone())));
    keys
}

pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .or_else(|| env.secret(name).map(|v| v.to_string()).ok())
        .filter(|v| !v.is_empty())
}

/// The cron trigger (`wrangler.toml` `[triggers]`): the scheduled cleanup. D1 holds nothing
/// that expires any more; the run asks every shard to purge now (each shard's own alarm does
/// the same), so that a shard whose alarm was lost is still cleaned.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let result = match store::EdgeStore::new(&env, store::Reads::Primary) {
        Ok(store) => crate::core::maintenance::run(&store, JsClock.now_s()).await,
        Err(e) => Err(crate::core::storage::StoreError::Backend(e.to_string())),
    };
    match result {
        Ok(p) => worker::console_log!(
            "cleanup: {} expired access tokens, {} families, {} code redemptions, {} registration tokens, {} jti markers removed from the shards",
            p.access_tokens,
            p.families,
            p.code_redemptions,
            p.registration_tokens,
            p.jti_markers
        ),
        Err(e) => worker::console_error!("cleanup failed: {e:?}"),
    }
}

/// The gateway's routes from `GATEWAY_ROUTES` and (development) `GATEWAY_UPSTREAM`; a broken
/// setting is logged and serves no route (nothing is forwarded unchecked).
fn gateway_routes(env: &Env) -> Vec<crate::core::gateway::GatewayRoute> {
    let routes = var(env, "GATEWAY_ROUTES");
    let upstream = var(env, "GATEWAY_UPSTREAM");
    if routes.is_none() && upstream.is_none() {
        return Vec::new();
    }
    crate::core::gateway::parse_routes(routes.as_deref(), upstream.as_deref()).unwrap_or_else(|e| {
        worker::console_error!("{e}");
        Vec::new()
    })
}

fn config(env: &Env, keys: Keys, shards: u16) -> Config {
    let (keys, stamp_key) = keys;
    Config {
        issuer: var(env, "ISSUER").map(|i| i.trim_end_matches('/').to_owned()),
        admin_token: var(env, "ADMIN_TOKEN").map(Secret::new),
        keys,
        stamp_key,
        shards,
        signatures: crate::core::keys::SignatureCheck(Rc::new(crypto::WebCryptoVerifier)),
        outbound: crate::core::outbound::Outbound(Rc::new(outbound::WorkerFetcher)),
        gateway: gateway_routes(env),
        dev_mode: var(env, "DEV_MODE").as_deref() == Some("1"),
    }
}

/// A request under a gateway route: checked in the core (no body needed), then forwarded with
/// its body stream untouched.
async fn gateway_request(
    req: worker::Request,
    env: &Env,
    route: crate::core::gateway::GatewayRoute,
) -> worker::Result<worker::Response> {
    let store = store::EdgeStore::new(env, store::Reads::Nearest)?;
    let config = config(env, keys(env).await, store.shards.count);
    let head = match http::head_to_core(&req) {
        Ok(head) => head,
        Err(resp) => return http::from_core(resp),
    };
    let ctx = Ctx {
        store: &store,
        clock: &JsClock,
        rng: &OsRng,
        config: &config,
        issuer: config.issuer.clone().unwrap_or_else(|| head.origin.clone()),
    };
    match crate::core::gateway::decide(&ctx, &head, &route).await {
        crate::core::gateway::Decision::Forward { url, identity } => {
            gateway::forward(req, &url, identity).await
        }
        crate::core::gateway::Decision::Refuse(resp) => http::from_core(resp),
    }
}

/// Requests whose D1 reads must be the latest (`store::Reads::Primary`): the admin API, the
/// development endpoints, and the login and consent forms (a password just changed, a user
/// just deactivated).
fn needs_primary(r: &crate::core::http::Request) -> bool {
    r.path.starts_with("/admin")
        || dev::is_dev_path(&r.path)
        // RFC 7592: a registration access token rotated a moment ago is checked at the primary.
        || r.path.starts_with(crate::core::oauth::register::PATH)
        || (r.method == crate::core::http::Method::Post && r.path == "/services/oauth2/authorize")
}

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, _ctx: Context) -> worker::Result<worker::Response> {
    let path = req.path();
    if let Some(route) = crate::core::gateway::route_for(&gateway_routes(&env), &path).cloned() {
        return gateway_request(req, &env, route).await;
    }
    let request = http::to_core(req).await;
    let reads = match &request {
        Ok(r) if needs_primary(r) => store::Reads::Primary,
        _ => store::Reads::Nearest,
    };
    let store = store::EdgeStore::new(&env, reads)?;
    let config = config(&env, keys(&env).await, store.shards.count);
    let path = request.as_ref().map(|r| r.path.clone()).unwrap_or_default();
    let response = match request {
        Ok(request) if dev::is_dev_path(&request.path) => {
            dev::handle(&env, &store, &config, &request).await
        }
        Ok(request) => {
            let ctx = Ctx {
                store: &store,
                clock: &JsClock,
                rng: &OsRng,
                config: &config,
                issuer: config
                    .issuer
                    .clone()
                    .unwrap_or_else(|| request.origin.clone()),
            };
            router::handle(&ctx, &request).await
        }
        Err(resp) => resp,
    };
    // A server error is the operator's to fix: say where, with the (secret-free) description.
    if response.status >= 500 {
        let body = String::from_utf8_lossy(&response.body);
        let keys = config
            .keys
            .error()
            .map(|e| format!(" (SIGNING_KEYS unusable: {})", e.0))
            .unwrap_or_default();
        worker::console_error!("{} {path}: {body}{keys}", response.status);
    }
    // Dev only (`EXPOSE_ROUND_TRIPS=1`): how many storage round trips this request made.
    let response = if var(&env, "EXPOSE_ROUND_TRIPS").as_deref() == Some("1") {
        let (kv, d1, shard) = store.round_trips();
        response.with_header(
            "x-storage-round-trips",
            &format!("kv={kv}; d1={d1}; do={shard}"),
        )
    } else {
        response
    };
    http::from_core(response)
}
