//! The KV/D1/shard-backed store. Every call to KV, D1 or a shard goes through
//! [`EdgeStore::kv_call`], [`EdgeStore::d1_call`] or `Shards::call`, which count round trips per
//! request (exposed in dev, see `mod.rs`).

use std::cell::Cell;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{
    D1Database, D1DatabaseSession, D1PreparedStatement, D1Result, D1SessionConstraint, Env,
    KvStore, RateLimiter,
};

use super::shards::Shards;
use crate::core::storage::{Limit, RateLimiter as Throttle};

use crate::core::storage::StoreError;

pub struct EdgeStore {
    pub kv: KvStore,
    /// This request's D1 session (`Reads`): one sequentially consistent view, from the
    /// primary or from the nearest replica.
    db: Db,
    /// Token families and everything single-use (`shards.rs`).
    pub shards: Shards,
    /// The six `RL_*` rate limiters; a missing one fails the requests that need it (fail
    /// closed), it never switches throttling off.
    login_limiter: Option<RateLimiter>,
    login_ip_limiter: Option<RateLimiter>,
    password_limiter: Option<RateLimiter>,
    user_code_limiter: Option<RateLimiter>,
    client_limiter: Option<RateLimiter>,
    register_limiter: Option<RateLimiter>,
    kv_trips: Cell<u32>,
    d1_trips: Cell<u32>,
}

pub fn backend(e: impl std::fmt::Display) -> StoreError {
    let msg = e.to_string();
    worker::console_error!("storage error: {msg}");
    StoreError::Backend(msg)
}

/// A value bound to a D1 statement.
pub enum Arg<'a> {
    Text(&'a str),
    Int(u64),
    OptInt(Option<u64>),
    OptText(Option<&'a str>),
}

impl From<&Arg<'_>> for JsValue {
    fn from(a: &Arg<'_>) -> JsValue {
        match a {
            Arg::Text(s) => JsValue::from_str(s),
            // D1 numbers are JS numbers; our values (seconds, counters) are far below 2^53.
            Arg::Int(i) => JsValue::from_f64(*i as f64),
            Arg::OptInt(Some(i)) => JsValue::from_f64(*i as f64),
            Arg::OptText(Some(s)) => JsValue::from_str(s),
            Arg::OptInt(None) | Arg::OptText(None) => JsValue::NULL,
        }
    }
}

/// Where a request's D1 reads start (D1 read replication, `docs/scaling.md` "Reads"). Writes
/// always go to the primary, and a session reads its own writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The admin API, the login and consent forms, the cron: what they check or show must be
    /// the latest (a password just changed, an app just created).
    Primary,
    /// Every other request: the nearest replica. What a stale read could let through is
    /// decided elsewhere: single use and bulk revocation in the shards, a code's validity by
    /// the time its user authenticated.
    Nearest,
}

/// A D1 session, or the database itself where the runtime has no sessions.
enum Db {
    Session(D1DatabaseSession),
    Plain(D1Database),
}

impl Db {
    fn open(db: D1Database, reads: Reads) -> Self {
        let constraint = match reads {
            Reads::Primary => D1SessionConstraint::FirstPrimary,
            Reads::Nearest => D1SessionConstraint::FirstUnconstrained,
        };
        match db.with_session_constraint(constraint) {
            Ok(session) => Db::Session(session),
            Err(_) => Db::Plain(db),
        }
    }

    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        match self {
            Db::Session(s) => s.prepare(sql),
            Db::Plain(d) => d.prepare(sql),
        }
    }

    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> worker::Result<Vec<D1Result>> {
        match self {
            Db::Session(s) => s.batch(stmts).await,
            Db::Plain(d) => d.batch(stmts).await,
        }
    }
}

impl EdgeStore {
    pub fn new(env: &Env, reads: Reads) -> worker::Result<Self> {
        Ok(Self {
            kv: env.kv("KV")?,
            db: Db::open(env.d1("DB")?, reads),
            shards: Shards::new(env),
            login_limiter: env.rate_limiter("RL_LOGIN").ok(),
            login_ip_limiter: env.rate_limiter("RL_LOGIN_IP").ok(),
            password_limiter: env.rate_limiter("RL_PASSWORD").ok(),
            user_code_limiter: env.rate_limiter("RL_USER_CODE").ok(),
            client_limiter: env.rate_limiter("RL_CLIENT").ok(),
            register_limiter: env.rate_limiter("RL_REGISTER").ok(),
            kv_trips: Cell::new(0),
            d1_trips: Cell::new(0),
        })
    }

    /// KV, D1 and shard round trips so far.
    pub fn round_trips(&self) -> (u32, u32, u32) {
        (
            self.kv_trips.get(),
            self.d1_trips.get(),
            self.shards.trips(),
        )
    }

    pub async fn kv_call<T, E: std::fmt::Display>(
        &self,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError> {
        self.kv_trips.set(self.kv_trips.get() + 1);
        f.await.map_err(backend)
    }

    async fn d1_call<T>(
        &self,
        f: impl Future<Output = worker::Result<T>>,
    ) -> Result<T, StoreError> {
        self.d1_trips.set(self.d1_trips.get() + 1);
        f.await.map_err(backend)
    }

    pub fn stmt(&self, sql: &str, args: &[Arg<'_>]) -> Result<D1PreparedStatement, StoreError> {
        let values: Vec<JsValue> = args.iter().map(JsValue::from).collect();
        self.db.prepare(sql).bind(&values).map_err(backend)
    }

    /// A statement with values already converted (a batch built from one argument list).
    pub fn stmt_values(
        &self,
        sql: &str,
        values: &[JsValue],
    ) -> Result<D1PreparedStatement, StoreError> {
        self.db.prepare(sql).bind(values).map_err(backend)
    }

    /// Runs one statement; returns the number of rows it changed.
    pub async fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize, StoreError> {
        let stmt = self.stmt(sql, args)?;
        let result = self.d1_call(stmt.run()).await?;
        Ok(changes(&result))
    }

    pub async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        let stmt = self.stmt(sql, args)?;
        self.d1_call(stmt.first::<T>(None)).await
    }

    pub async fn all<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StoreError> {
        let stmt = self.stmt(sql, args)?;
        let result = self.d1_call(stmt.all()).await?;
        result.results::<T>().map_err(backend)
    }

    /// Runs statements in one round trip as one transaction: all or nothing.
    pub async fn batch(
        &self,
        stmts: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, StoreError> {
        self.d1_trips.set(self.d1_trips.get() + 1);
        self.db
            .batch(stmts)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    pub async fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.kv_call(self.kv.get(key).json::<T>()).await
    }

    /// KV's minimum TTL is 60 seconds.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &impl Serialize,
        ttl_s: u64,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).map_err(backend)?;
        let put = self.kv.put(key, text).map_err(backend)?;
        self.kv_call(put.expiration_ttl(ttl_s.max(60)).execute())
            .await
    }
}

pub fn changes(result: &D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

impl Throttle for EdgeStore {
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let (limiter, binding) = match limit {
            Limit::Login => (&self.login_limiter, "RL_LOGIN"),
            Limit::LoginIp => (&self.login_ip_limiter, "RL_LOGIN_IP"),
            Limit::PasswordGrant => (&self.password_limiter, "RL_PASSWORD"),
            Limit::UserCode => (&self.user_code_limiter, "RL_USER_CODE"),
            Limit::ClientAuth => (&self.client_limiter, "RL_CLIENT"),
            Limit::Registration => (&self.register_limiter, "RL_REGISTER"),
        };
        match limiter {
            Some(l) => Ok(l.limit(key.to_owned()).await.map_err(backend)?.success),
            None => Err(backend(format!(
                "rate-limit binding {binding} is missing from wrangler.toml: refusing rather than not throttling"
            ))),
        }
    }
}
