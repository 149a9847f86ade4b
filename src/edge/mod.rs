//! The Worker edge: maps `worker::Request` to the core's request, calls the core, maps the
//! response back, and implements the storage traits on KV and D1. It makes no protocol decision.

mod assets;
mod crypto;
mod d1;
mod dev;
mod gateway;
mod http;
mod kv;
mod operators;
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
use crate::core::keys::managed::ManagedKey;
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
    /// Signing keys imported into WebCrypto and the age-stamp key, reused across requests of
    /// this isolate while the PEM bundle they came from is unchanged.
    static KEYS: RefCell<Option<(String, Keys)>> = const { RefCell::new(None) };
    /// The managed signing keys (D1 `signing_keys`), opened, and when they were read.
    static MANAGED: RefCell<Option<(u64, Opened)>> = const { RefCell::new(None) };
    /// The PEM bundle last assembled, for which managed keys and secret, and until when it
    /// holds (`managed::next_change`): requests in between reuse it instead of re-encoding.
    static BUNDLE: RefCell<Option<Bundle>> = const { RefCell::new(None) };
}

struct Bundle {
    opened: Opened,
    secret: String,
    valid_until_s: Option<u64>,
    pems: String,
}

/// `SIGNING_KEYS` and the managed keys as one PEM bundle at `now_s`, signer first.
fn bundle(secret: &str, managed: &Opened, now_s: u64) -> String {
    let cached = BUNDLE.with(|c| {
        c.borrow().as_ref().and_then(|b| {
            let fresh = Rc::ptr_eq(&b.opened, managed)
                && b.secret == secret
                && b.valid_until_s.is_none_or(|t| now_s < t);
            fresh.then(|| b.pems.clone())
        })
    });
    if let Some(pems) = cached {
        return pems;
    }
    let pems = crate::core::keys::managed::assemble(secret, managed, now_s);
    let keys: Vec<ManagedKey> = managed.iter().map(|(k, _)| k.clone()).collect();
    let valid_until_s = crate::core::keys::managed::next_change(&keys, now_s);
    BUNDLE.with(|c| {
        *c.borrow_mut() = Some(Bundle {
            opened: managed.clone(),
            secret: secret.to_owned(),
            valid_until_s,
            pems: pems.clone(),
        })
    });
    pems
}

/// The key set, and the age-stamp key (none while the signing keys are unusable).
type Keys = (Rc<KeySet>, Option<StampKey>);

/// Managed keys with their PKCS#8 DER.
type Opened = Rc<Vec<(ManagedKey, Vec<u8>)>>;

fn cached_keys(pems: &str) -> Option<Keys> {
    KEYS.with(|cell| match cell.borrow().as_ref() {
        Some((cached, keys)) if cached == pems => Some(keys.clone()),
        _ => None,
    })
}

/// A managed key was created, scheduled or deleted through this isolate: read them again now.
pub(crate) fn keys_changed() {
    MANAGED.with(|c| *c.borrow_mut() = None);
}

fn vault(env: &Env) -> Option<crypto::WebCryptoVault> {
    let secret = var(env, "KEY_WRAPPING_KEY")?;
    match crypto::WebCryptoVault::new(&secret) {
        Ok(v) => Some(v),
        Err(e) => {
            worker::console_error!("{}", e.0);
            None
        }
    }
}

/// The managed keys, read from D1 at most once per `KEYS_REFRESH_S` (30 s) per isolate and
/// opened with `KEY_WRAPPING_KEY`. A key that does not open is logged and left out; a failed
/// read keeps the previous copy until the next period.
async fn managed_keys(env: &Env, store: &store::EdgeStore) -> Opened {
    let refresh_ms = var(env, "KEYS_REFRESH_S")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(crate::core::keys::managed::REFRESH_DEFAULT_S)
        .saturating_mul(1000);
    let now = now_ms();
    let cached = MANAGED.with(|c| c.borrow().clone());
    if let Some((read_at, opened)) = &cached {
        if now.saturating_sub(*read_at) < refresh_ms {
            return opened.clone();
        }
    }
    let rows = match crate::core::storage::SigningKeyStore::list_signing_keys(store).await {
        Ok(rows) => rows,
        Err(e) => {
            worker::console_error!("signing_keys unreadable, keeping the last copy: {e:?}");
            let kept = cached.map(|(_, o)| o).unwrap_or_default();
            MANAGED.with(|c| *c.borrow_mut() = Some((now, kept.clone())));
            return kept;
        }
    };
    let mut opened = Vec::with_capacity(rows.len());
    if !rows.is_empty() {
        match vault(env) {
            Some(vault) => {
                for key in rows {
                    match crate::core::keys::managed::KeyVault::open(&vault, &key.sealed, &key.kid)
                        .await
                    {
                        Ok(der) => opened.push((key, der)),
                        Err(e) => worker::console_error!("managed key {}: {}", key.kid, e.0),
                    }
                }
            }
            None => worker::console_error!(
                "{} managed signing keys are stored but KEY_WRAPPING_KEY is not set: they are not used",
                rows.len()
            ),
        }
    }
    let opened = Rc::new(opened);
    MANAGED.with(|c| *c.borrow_mut() = Some((now, opened.clone())));
    opened
}

/// The isolate's keys: `SIGNING_KEYS` and the managed keys, signer first (`keys/managed.rs`).
/// The first request after the bundle changed imports it, which is asynchronous in WebCrypto.
async fn keys(env: &Env, store: &store::EdgeStore) -> Keys {
    let secret = env
        .secret("SIGNING_KEYS")
        .map(|s| s.to_string())
        .unwrap_or_default();
    let managed = managed_keys(env, store).await;
    let pems = if managed.is_empty() {
        secret.clone()
    } else {
        bundle(&secret, &managed, JsClock.now_s())
    };
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
    // The stamp key follows the secret, not the rotation schedule; with managed keys alone, the
    // wrapping key.
    let stamp_source = if secret.trim().is_empty() {
        format!(
            "managed:{}",
            var(env, "KEY_WRAPPING_KEY").unwrap_or_default()
        )
    } else {
        secret
    };
    let stamp = set
        .error()
        .is_none()
        .then(|| StampKey::derive(&stamp_source));
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

fn number(env: &Env, name: &str) -> Option<u64> {
    var(env, name).and_then(|v| v.parse().ok())
}

/// The cron trigger (`wrangler.toml` `[triggers]`): the scheduled cleanup. The run asks every
/// shard to purge now (each shard's own alarm does the same, so a shard whose alarm was lost
/// is still cleaned), then prunes the audit trail past `AUDIT_RETENTION_DAYS`.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let kept_s = number(&env, "AUDIT_RETENTION_DAYS")
        .unwrap_or(crate::core::audit::RETENTION_DAYS_DEFAULT)
        .saturating_mul(86_400);
    let result = match store::EdgeStore::new(&env, store::Reads::Primary) {
        Ok(store) => crate::core::maintenance::run(&store, JsClock.now_s(), kept_s).await,
        Err(e) => Err(crate::core::storage::StoreError::Backend(e.to_string())),
    };
    match result {
        Ok(p) => worker::console_log!(
            "{}",
            serde_json::json!({
                "event": "cleanup",
                "access_tokens": p.access_tokens,
                "families": p.families,
                "code_redemptions": p.code_redemptions,
                "registration_tokens": p.registration_tokens,
                "jti_markers": p.jti_markers,
                "device_codes": p.device_codes,
                "audit_events": p.audit_events,
            })
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
    let vault = vault(env).map(|v| crate::core::keys::managed::Vault(Rc::new(v)));
    Config {
        vault,
        jwks_max_age_s: number(env, "JWKS_MAX_AGE_S"),
        audit_retention_days: number(env, "AUDIT_RETENTION_DAYS"),
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
    let config = config(env, keys(env, &store).await, store.shards.count);
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
        notes: Default::default(),
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
async fn fetch(req: worker::Request, env: Env, wctx: Context) -> worker::Result<worker::Response> {
    let started_ms = now_ms();
    let path = req.path();
    if let Some(route) = crate::core::gateway::route_for(&gateway_routes(&env), &path).cloned() {
        return gateway_request(req, &env, route).await;
    }
    let method = http::raw_method(&req);
    let ip = req.headers().get("cf-connecting-ip").ok().flatten();
    let request = http::to_core(req).await;
    let reads = match &request {
        Ok(r) if needs_primary(r) => store::Reads::Primary,
        _ => store::Reads::Nearest,
    };
    let store = store::EdgeStore::new(&env, reads)?;
    let config = config(&env, keys(&env, &store).await, store.shards.count);
    let mut notes = crate::core::audit::Notes::default();
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
                notes,
            };
            let response = router::handle(&ctx, &request).await;
            notes = ctx.notes;
            response
        }
        Err(resp) => resp,
    };
    // The audit trail is written after the answer has gone: one batch, `waitUntil`.
    let events = notes.take_events(ip.as_deref());
    if !events.is_empty() {
        match env.d1("DB") {
            Ok(db) => wctx.wait_until(operators::write_events(db, events)),
            Err(e) => worker::console_error!("audit: no D1 binding: {e}"),
        }
    }
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
    let trips = store.round_trips();
    if var(&env, "LOG_REQUESTS").as_deref() != Some("0") {
        let line = crate::core::log::RequestLog {
            method: &method,
            path: &path,
            response: &response,
            notes: &notes,
            duration_ms: now_ms().saturating_sub(started_ms),
            round_trips: trips,
        };
        worker::console_log!("{}", line.to_json());
    }
    // Dev only (`EXPOSE_ROUND_TRIPS=1`): how many storage round trips this request made.
    let response = if var(&env, "EXPOSE_ROUND_TRIPS").as_deref() == Some("1") {
        let (kv, d1, shard) = trips;
        response.with_header(
            "x-storage-round-trips",
            &format!("kv={kv}; d1={d1}; do={shard}"),
        )
    } else {
        response
    };
    http::from_core(response)
}
