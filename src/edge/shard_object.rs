//! One shard: a SQLite-backed Durable Object (`TokenShard`, binding `SHARD`, named
//! `shard-{i}`) that holds the token families routed to it (`core/storage/route.rs`) with their
//! tokens, code redemptions and rotations, the single-use initial access tokens routed to it,
//! and the revocation epochs that bulk revocations fan out to every shard.
//!
//! Every operation runs in one `transactionSync`: a Durable Object handles one event at a time,
//! so single use is decided by plain reads and writes with nothing interleaved, and a failure
//! half-way rolls everything back. The shard's alarm removes its expired state.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Reflect};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    durable_object, DurableObject, Env, Request, Response, ScheduledTime, SqlStorage,
    SqlStorageValue, State,
};

mod devices;

use super::shards::{FoundRow, Op, Stats, TokenRow};
use crate::core::maintenance::{Cutoffs, Purged};
use crate::core::oauth::device::DEVICE_TTL_S;
use crate::core::storage::Redemption;

/// How often an idle shard with state left looks for expired rows (in development,
/// `DEV_SHARD_ALARM_MS` may shorten it, for the test that watches an alarm run).
const ALARM_EVERY_MS: f64 = 3_600_000.0;
/// Sooner, when the last run hit its row limit.
const ALARM_BACKLOG_MS: f64 = 60_000.0;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS families (
  family_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, scopes TEXT NOT NULL,
  auth_time INTEGER NOT NULL, created_at INTEGER NOT NULL, last_used_ms INTEGER NOT NULL, revoked_at INTEGER,
  user_claims TEXT, resource TEXT);
CREATE INDEX IF NOT EXISTS families_user ON families (user_id);
CREATE INDEX IF NOT EXISTS families_client ON families (client_id);
CREATE TABLE IF NOT EXISTS tokens (
  token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, kind TEXT NOT NULL, scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER, state TEXT NOT NULL, rotated_ms INTEGER);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family_id);
CREATE TABLE IF NOT EXISTS code_redemptions (
  code_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, redeemed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS epochs (subject TEXT PRIMARY KEY, valid_from_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS registration_tokens (
  token_hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, used_at INTEGER, max_uses INTEGER,
  uses INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS web_sessions (sid_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS web_sessions_family ON web_sessions (family_id);
CREATE TABLE IF NOT EXISTS jti_markers (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS device_grants (
  device_hash TEXT PRIMARY KEY, user_code TEXT NOT NULL, grant_json TEXT NOT NULL, expires_at INTEGER NOT NULL,
  interval_s INTEGER NOT NULL, last_poll_ms INTEGER, decision TEXT, approved INTEGER, redeemed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS device_grants_user_code ON device_grants (user_code);
";

/// Columns added after a table was first created, for shards created before them: each is added
/// once, when the shard starts and finds it missing.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("families", "resource", "TEXT"),
    ("registration_tokens", "max_uses", "INTEGER"),
    ("registration_tokens", "uses", "INTEGER NOT NULL DEFAULT 0"),
];

/// Brings an older shard's tables up to [`SCHEMA`].
fn add_missing_columns(sql: &SqlStorage) -> worker::Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let present: Vec<serde_json::Value> = sql
            .exec(
                &format!("SELECT name FROM pragma_table_info('{table}') WHERE name = ?"),
                vec![text(column)],
            )?
            .to_array()?;
        if present.is_empty() {
            sql.exec(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"),
                None,
            )?;
        }
    }
    Ok(())
}

#[durable_object]
pub struct TokenShard {
    state: State,
    env: Env,
    /// Whether this instance knows an alarm is set (so a write need not ask).
    alarm_known: Cell<bool>,
}

/// A failure inside an operation: rolls its transaction back.
type OpResult<T> = Result<T, String>;

fn int(v: u64) -> SqlStorageValue {
    // Our values (seconds, milliseconds) are far below 2^53.
    SqlStorageValue::Integer(v as i64)
}

fn opt_int(v: Option<u64>) -> SqlStorageValue {
    v.map_or(SqlStorageValue::Null, int)
}

fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::String(v.to_owned())
}

/// The shard's SQL, with errors as strings.
struct Sql(SqlStorage);

impl Sql {
    fn run(&self, query: &str, args: Vec<SqlStorageValue>) -> OpResult<usize> {
        let cursor = self.0.exec(query, args).map_err(|e| e.to_string())?;
        // Drains the cursor, so that the statement has run to its end.
        let _ = cursor.to_array::<serde_json::Value>();
        Ok(cursor.rows_written())
    }

    fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> OpResult<Vec<T>> {
        self.0
            .exec(query, args)
            .and_then(|c| c.to_array::<T>())
            .map_err(|e| e.to_string())
    }

    fn first<T: DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> OpResult<Option<T>> {
        Ok(self.rows(query, args)?.into_iter().next())
    }

    fn insert_token(&self, t: &TokenRow) -> OpResult<()> {
        self.run(
            "INSERT INTO tokens (token_hash, family_id, kind, scopes, created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, 'active')",
            vec![text(&t.hash), text(&t.family_id), text(&t.kind), text(&t.scopes), int(t.created_at), opt_int(t.expires_at)],
        )?;
        Ok(())
    }

    fn live_access_of(
        &self,
        family_where: &str,
        args: Vec<SqlStorageValue>,
        now_s: u64,
    ) -> OpResult<Vec<String>> {
        #[derive(Deserialize)]
        struct Row {
            token_hash: String,
        }
        let mut all = args;
        all.push(int(now_s));
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT token_hash FROM tokens WHERE family_id IN (SELECT family_id FROM families WHERE {family_where} AND revoked_at IS NULL) \
                 AND kind = 'access' AND state = 'active' AND expires_at > ?"
            ),
            all,
        )?;
        Ok(rows.into_iter().map(|r| r.token_hash).collect())
    }

    /// A use of a live family: records it, adds `tokens`, and replaces its web sessions when
    /// `web_sessions` is given (rotation and extension alike).
    fn extend(
        &self,
        family_id: &str,
        tokens: &[TokenRow],
        web_sessions: Option<&[String]>,
        now_ms: u64,
    ) -> OpResult<()> {
        self.run(
            "UPDATE families SET last_used_ms = ? WHERE family_id = ?",
            vec![int(now_ms), text(family_id)],
        )?;
        for t in tokens {
            self.insert_token(t)?;
        }
        if let Some(sids) = web_sessions {
            self.set_web_sessions(family_id, sids)?;
        }
        Ok(())
    }

    /// Revokes the families `family_where` selects; returns their access tokens that were live.
    fn revoke_families(
        &self,
        family_where: &str,
        args: Vec<SqlStorageValue>,
        now_s: u64,
    ) -> OpResult<Vec<String>> {
        let live = self.live_access_of(family_where, args.clone(), now_s)?;
        let mut all = vec![int(now_s)];
        all.extend(args);
        self.run(
            &format!(
                "UPDATE families SET revoked_at = ? WHERE {family_where} AND revoked_at IS NULL"
            ),
            all,
        )?;
        Ok(live)
    }

    /// Replaces the family's hybrid web sessions by `sids`.
    fn set_web_sessions(&self, family_id: &str, sids: &[String]) -> OpResult<()> {
        self.run(
            "DELETE FROM web_sessions WHERE family_id = ?",
            vec![text(family_id)],
        )?;
        for sid in sids {
            self.run(
                "INSERT INTO web_sessions (sid_hash, family_id) VALUES (?, ?)",
                vec![text(sid), text(family_id)],
            )?;
        }
        Ok(())
    }

    fn family_live(&self, family_id: &str) -> OpResult<bool> {
        #[derive(Deserialize)]
        struct Row {
            revoked_at: Option<u64>,
        }
        let row: Option<Row> = self.first(
            "SELECT revoked_at FROM families WHERE family_id = ?",
            vec![text(family_id)],
        )?;
        Ok(row.is_some_and(|r| r.revoked_at.is_none()))
    }

    fn count(&self, table: &str) -> OpResult<u64> {
        #[derive(Deserialize)]
        struct Row {
            n: u64,
        }
        let row: Option<Row> = self.first(&format!("SELECT count(*) AS n FROM {table}"), vec![])?;
        Ok(row.map_or(0, |r| r.n))
    }

    fn stats(&self) -> OpResult<Stats> {
        Ok(Stats {
            families: self.count("families")?,
            tokens: self.count("tokens")?,
            code_redemptions: self.count("code_redemptions")?,
            registration_tokens: self.count("registration_tokens")?,
            epochs: self.count("epochs")?,
            jti_markers: self.count("jti_markers")?,
            device_grants: self.count("device_grants")?,
        })
    }
}

/// The operations, each inside one transaction.
fn apply(sql: &Sql, op: Op) -> OpResult<serde_json::Value> {
    match op {
        Op::Redeem {
            code_hash,
            device_hash,
            family,
            tokens,
            web_sessions,
            user_valid_at_ms,
        } => {
            if let Some(code_hash) = code_hash {
                let fresh = sql.run(
                    "INSERT INTO code_redemptions (code_hash, family_id, redeemed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    vec![text(&code_hash), text(&family.family_id), int(family.created_at)],
                )?;
                if fresh == 0 {
                    return Ok(json(&Redemption::Replayed.wire()));
                }
            }
            // A device grant: approved, and redeemed once.
            if let Some(device_hash) = device_hash {
                let fresh = sql.run(
                    "UPDATE device_grants SET redeemed = 1 WHERE device_hash = ? AND redeemed = 0 AND approved = 1",
                    vec![text(&device_hash)],
                )?;
                if fresh == 0 {
                    return Ok(json(&Redemption::Replayed.wire()));
                }
            }
            // Ended by a bulk revocation after the code was minted: consumed, nothing issued.
            #[derive(Deserialize)]
            struct Epoch {
                valid_from_ms: Option<u64>,
            }
            let epoch: Option<Epoch> = sql.first(
                "SELECT max(valid_from_ms) AS valid_from_ms FROM epochs WHERE subject IN (?, ?)",
                vec![
                    text(&format!("user:{}", family.user_id)),
                    text(&format!("client:{}", family.client_id)),
                ],
            )?;
            if epoch
                .and_then(|e| e.valid_from_ms)
                .is_some_and(|e| e > user_valid_at_ms)
            {
                return Ok(json(&Redemption::UserInvalid.wire()));
            }
            sql.run(
                "INSERT INTO families (family_id, client_id, user_id, scopes, auth_time, created_at, last_used_ms, user_claims, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    text(&family.family_id),
                    text(&family.client_id),
                    text(&family.user_id),
                    text(&family.scopes),
                    int(family.auth_time),
                    int(family.created_at),
                    int(family.last_used_ms),
                    text(&family.user_claims),
                    family.resource.as_deref().map_or(SqlStorageValue::Null, text),
                ],
            )?;
            for t in &tokens {
                sql.insert_token(t)?;
            }
            sql.set_web_sessions(&family.family_id, &web_sessions)?;
            Ok(json(&Redemption::Issued.wire()))
        }
        Op::FindWebSession { hash } => {
            let row: Option<serde_json::Value> = sql.first(
                "SELECT f.family_id, f.client_id, f.user_id, f.scopes, f.auth_time, f.created_at, f.last_used_ms, f.revoked_at, f.resource \
                 FROM web_sessions w JOIN families f ON f.family_id = w.family_id WHERE w.sid_hash = ?",
                vec![text(&hash)],
            )?;
            Ok(json(&row))
        }
        Op::Find { hash } => {
            let row: Option<FoundRow> = sql.first(
                "SELECT t.token_hash, t.family_id, t.kind, t.scopes AS token_scopes, t.created_at AS token_created_at, t.expires_at, t.state, t.rotated_ms, \
                 f.client_id, f.user_id, f.scopes AS family_scopes, f.auth_time, f.created_at AS family_created_at, f.last_used_ms, f.revoked_at, f.user_claims, f.resource \
                 FROM tokens t JOIN families f ON f.family_id = t.family_id WHERE t.token_hash = ?",
                vec![text(&hash)],
            )?;
            Ok(json(&row))
        }
        Op::Rotate {
            old,
            family_id,
            tokens,
            web_sessions,
            now_ms,
        } => {
            #[derive(Deserialize)]
            struct Row {
                rotated_ms: Option<u64>,
            }
            let row: Option<Row> = sql.first(
                "SELECT rotated_ms FROM tokens WHERE token_hash = ? AND family_id = ?",
                vec![text(&old), text(&family_id)],
            )?;
            if let Some(at) = row.as_ref().and_then(|r| r.rotated_ms) {
                return Ok(json(&serde_json::json!({ "reused": at })));
            }
            if row.is_none() || !sql.family_live(&family_id)? {
                return Ok(json(&serde_json::json!({ "revoked": true })));
            }
            sql.run(
                "UPDATE tokens SET state = 'rotated', rotated_ms = ? WHERE token_hash = ?",
                vec![int(now_ms), text(&old)],
            )?;
            sql.extend(&family_id, &tokens, web_sessions.as_deref(), now_ms)?;
            Ok(json(&serde_json::json!({ "rotated": true })))
        }
        Op::Extend {
            family_id,
            tokens,
            web_sessions,
            now_ms,
        } => {
            if !sql.family_live(&family_id)? {
                return Ok(json(&false));
            }
            sql.extend(&family_id, &tokens, web_sessions.as_deref(), now_ms)?;
            Ok(json(&true))
        }
        Op::RevokeFamily { family_id, now_s } => Ok(json(&sql.revoke_families(
            "family_id = ?",
            vec![text(&family_id)],
            now_s,
        )?)),
        Op::RevokeToken { hash, now_s } => {
            #[derive(Deserialize)]
            struct Row {
                family_id: String,
                kind: String,
                state: String,
                expires_at: Option<u64>,
            }
            let row: Option<Row> = sql.first(
                "SELECT family_id, kind, state, expires_at FROM tokens WHERE token_hash = ?",
                vec![text(&hash)],
            )?;
            match row {
                // RFC 7009 §2.1: a refresh token takes its family down.
                Some(r) if r.kind == "refresh" => Ok(json(&sql.revoke_families(
                    "family_id = ?",
                    vec![text(&r.family_id)],
                    now_s,
                )?)),
                Some(r) => {
                    sql.run(
                        "UPDATE tokens SET state = 'revoked' WHERE token_hash = ?",
                        vec![text(&hash)],
                    )?;
                    let was_live = r.state == "active" && r.expires_at.is_some_and(|e| e > now_s);
                    Ok(json(&if was_live { vec![hash] } else { vec![] }))
                }
                // A hybrid web session's `sid`: revoking it ends its family (docs/hybrid.md).
                None => {
                    #[derive(Deserialize)]
                    struct Web {
                        family_id: String,
                    }
                    let web: Option<Web> = sql.first(
                        "SELECT family_id FROM web_sessions WHERE sid_hash = ?",
                        vec![text(&hash)],
                    )?;
                    let Some(web) = web else {
                        return Ok(json(&Vec::<String>::new()));
                    };
                    Ok(json(&sql.revoke_families(
                        "family_id = ?",
                        vec![text(&web.family_id)],
                        now_s,
                    )?))
                }
            }
        }
        Op::RevokeSubject {
            user_id,
            client_id,
            valid_from_ms,
            now_s,
        } => {
            let (subject, column, id) = match (&user_id, &client_id) {
                (Some(u), _) => (format!("user:{u}"), "user_id", u),
                (None, Some(c)) => (format!("client:{c}"), "client_id", c),
                (None, None) => return Err("revoke_subject without a subject".into()),
            };
            sql.run(
                "INSERT INTO epochs (subject, valid_from_ms) VALUES (?, ?) \
                 ON CONFLICT (subject) DO UPDATE SET valid_from_ms = max(valid_from_ms, excluded.valid_from_ms)",
                vec![text(&subject), int(valid_from_ms)],
            )?;
            let filter = format!("{column} = ?");
            Ok(json(&sql.revoke_families(
                &filter,
                vec![text(id)],
                now_s,
            )?))
        }
        Op::UnexpiredAccess { user_id, now_s } => {
            let rows: Vec<FoundRow> = sql.rows(
                "SELECT t.token_hash, t.family_id, t.kind, t.scopes AS token_scopes, t.created_at AS token_created_at, t.expires_at, t.state, t.rotated_ms, \
                 f.client_id, f.user_id, f.scopes AS family_scopes, f.auth_time, f.created_at AS family_created_at, f.last_used_ms, f.revoked_at, f.user_claims, f.resource \
                 FROM tokens t JOIN families f ON f.family_id = t.family_id \
                 WHERE f.user_id = ? AND t.kind = 'access' AND t.state != 'revoked' AND t.expires_at > ?",
                vec![text(&user_id), int(now_s)],
            )?;
            Ok(json(&rows))
        }
        Op::SetUserClaims { user_id, claims } => {
            sql.run(
                "UPDATE families SET user_claims = ? WHERE user_id = ?",
                vec![text(&claims), text(&user_id)],
            )?;
            Ok(json(&true))
        }
        Op::CreateRegistrationToken {
            hash,
            expires_at,
            max_uses,
        } => {
            sql.run(
                "INSERT INTO registration_tokens (token_hash, expires_at, max_uses) VALUES (?, ?, ?)",
                vec![text(&hash), int(expires_at), opt_int(max_uses.map(u64::from))],
            )?;
            Ok(json(&true))
        }
        // One statement decides: of concurrent uses past the limit, none is counted.
        Op::UseRegistrationToken { hash, now_s } => {
            let used = sql.run(
                "UPDATE registration_tokens SET uses = uses + 1, used_at = ? \
                 WHERE token_hash = ? AND expires_at > ? AND (max_uses IS NULL OR uses < max_uses)",
                vec![int(now_s), text(&hash), int(now_s)],
            )?;
            Ok(json(&(used > 0)))
        }
        op @ (Op::StartDevice { .. }
        | Op::FindDevice { .. }
        | Op::DecideDevice { .. }
        | Op::PollDevice { .. }) => devices::apply(sql, op),
        Op::ClaimJti {
            key,
            expires_at,
            now_s,
        } => {
            // A marker past its assertion's expiry no longer refuses anything (the alarm has
            // not removed it yet).
            let claimed = sql.run(
                "INSERT INTO jti_markers (key, expires_at) VALUES (?, ?) \
                 ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE jti_markers.expires_at <= ?",
                vec![text(&key), int(expires_at), int(now_s)],
            )?;
            Ok(json(&(claimed > 0)))
        }
        Op::Purge { now_s } => Ok(json(&purge(sql, &Cutoffs::at(now_s))?.wire())),
        Op::Stats => Ok(json(&sql.stats()?)),
    }
}

/// Removes what can no longer decide anything (`core/maintenance.rs`), at most `limit` rows per
/// rule: the same rules as every store's `purge`, plus epochs older than any session or code
/// they could still refuse.
fn purge(sql: &Sql, c: &Cutoffs) -> OpResult<Purged> {
    let limit = int(c.limit.into());
    let access_tokens = sql.run(
        "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE kind = 'access' AND expires_at <= ? LIMIT ?)",
        vec![int(c.now_s), limit.clone()],
    )?;
    #[derive(Deserialize)]
    struct Row {
        family_id: String,
    }
    let gone: Vec<Row> = sql.rows(
        "SELECT family_id FROM families f WHERE f.revoked_at < ? \
         OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.family_id AND (t.kind = 'refresh' OR t.expires_at > ?)) \
         LIMIT ?",
        vec![int(c.family_revoked_before_s), int(c.now_s), limit.clone()],
    )?;
    for f in &gone {
        sql.run(
            "DELETE FROM web_sessions WHERE family_id = ?",
            vec![text(&f.family_id)],
        )?;
        sql.run(
            "DELETE FROM tokens WHERE family_id = ?",
            vec![text(&f.family_id)],
        )?;
        sql.run(
            "DELETE FROM families WHERE family_id = ?",
            vec![text(&f.family_id)],
        )?;
    }
    let code_redemptions = sql.run(
        "DELETE FROM code_redemptions WHERE rowid IN (SELECT rowid FROM code_redemptions WHERE redeemed_at < ? LIMIT ?)",
        vec![int(c.code_redeemed_before_s), limit.clone()],
    )?;
    let registration_tokens = sql.run(
        "DELETE FROM registration_tokens WHERE rowid IN (SELECT rowid FROM registration_tokens WHERE expires_at <= ? LIMIT ?)",
        vec![int(c.now_s), limit.clone()],
    )?;
    // Kept a while past expiry, so a late poll hears `expired_token` rather than an unknown code.
    let device_codes = sql.run(
        "DELETE FROM device_grants WHERE rowid IN (SELECT rowid FROM device_grants WHERE expires_at <= ? LIMIT ?)",
        vec![int(c.now_s.saturating_sub(DEVICE_TTL_S)), limit.clone()],
    )?;
    let jti_markers = sql.run(
        "DELETE FROM jti_markers WHERE rowid IN (SELECT rowid FROM jti_markers WHERE expires_at <= ? LIMIT ?)",
        vec![int(c.now_s), limit.clone()],
    )?;
    sql.run(
        "DELETE FROM epochs WHERE valid_from_ms < ?",
        vec![int(c.epoch_set_before_ms)],
    )?;
    Ok(Purged {
        access_tokens,
        families: gone.len(),
        code_redemptions,
        registration_tokens,
        jti_markers,
        device_codes,
        audit_events: 0,
    })
}

/// An alarm time: an absolute instant (an `i64` would be read as an offset from now).
fn when(at_ms: f64) -> ScheduledTime {
    ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(at_ms)))
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl TokenShard {
    /// Runs `op` in `storage.transactionSync`: it commits only if the operation succeeds.
    fn atomically(&self, op: Op) -> OpResult<serde_json::Value> {
        let storage = self.state.storage();
        let sql = Sql(storage.sql());
        let out: Rc<RefCell<Option<OpResult<serde_json::Value>>>> = Rc::new(RefCell::new(None));
        let slot = out.clone();
        let body = Closure::once(move || -> Result<JsValue, JsValue> {
            let result = apply(&sql, op);
            let failed = result.is_err();
            *slot.borrow_mut() = Some(result);
            if failed {
                Err(JsValue::from_str("operation failed; rolled back"))
            } else {
                Ok(JsValue::UNDEFINED)
            }
        });
        let raw: &JsValue = storage.as_raw().as_ref();
        let call = Reflect::get(raw, &JsValue::from_str("transactionSync"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or("transactionSync is not available")?;
        let thrown = call.call1(raw, body.as_ref().unchecked_ref()).err();
        let result = out.borrow_mut().take();
        match (result, thrown) {
            (Some(r), _) => r,
            (None, Some(e)) => Err(format!("{e:?}")),
            (None, None) => Err("operation did not run".into()),
        }
    }

    /// A development-only setting: `None` unless `DEV_MODE = "1"`.
    fn dev_var(&self, name: &str) -> Option<String> {
        let var = |name: &str| self.env.var(name).map(|v| v.to_string()).ok();
        (var("DEV_MODE").as_deref() == Some("1"))
            .then(|| var(name))
            .flatten()
            .filter(|v| !v.is_empty())
    }

    /// Whether the development-only `DEV_FAIL_SHARD` switch names this shard.
    fn made_to_fail(&self, shard: &str) -> bool {
        !shard.is_empty() && self.dev_var("DEV_FAIL_SHARD").as_deref() == Some(shard)
    }

    fn alarm_every_ms(&self) -> f64 {
        self.dev_var("DEV_SHARD_ALARM_MS")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(ALARM_EVERY_MS)
    }

    async fn ensure_alarm(&self) {
        if self.alarm_known.get() {
            return;
        }
        let storage = self.state.storage();
        let at = js_sys::Date::now() + self.alarm_every_ms();
        // An alarm set for later than the interval now configured is brought forward.
        let set = match storage.get_alarm().await {
            Ok(Some(existing)) if (existing as f64) <= at => true,
            Ok(_) => storage.set_alarm(when(at)).await.is_ok(),
            Err(_) => false,
        };
        self.alarm_known.set(set);
    }
}

impl DurableObject for TokenShard {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql
            .exec(SCHEMA, None)
            .and_then(|_| add_missing_columns(&sql))
        {
            worker::console_error!("shard schema: {e}");
        }
        Self {
            state,
            env,
            alarm_known: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        // `/{shard index}`: the caller says which shard this is, for the development switch.
        let url = req.url()?;
        let shard = url.path().trim_start_matches('/').to_owned();
        if self.made_to_fail(&shard) {
            return Response::error("shard made to fail (DEV_FAIL_SHARD)", 503);
        }
        let op: Op = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad shard request: {e}"), 400),
        };
        let writes = op.writes();
        match self.atomically(op) {
            Ok(value) => {
                if writes {
                    self.ensure_alarm().await;
                }
                Response::from_json(&value)
            }
            Err(e) => {
                worker::console_error!("shard {shard}: {e}");
                Response::error(e, 500)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let now_s = (js_sys::Date::now() / 1000.0) as u64;
        let result = self.atomically(Op::Purge { now_s });
        let storage = self.state.storage();
        let backlog = result
            .as_ref()
            .ok()
            .and_then(|v| serde_json::from_value::<super::shards::PurgedWire>(v.clone()).ok())
            .is_some_and(|p| p.any_at(Cutoffs::at(now_s).limit));
        let left = self
            .atomically(Op::Stats)
            .ok()
            .and_then(|v| serde_json::from_value::<Stats>(v).ok())
            .is_none_or(|s| {
                s.families
                    + s.tokens
                    + s.code_redemptions
                    + s.registration_tokens
                    + s.epochs
                    + s.jti_markers
                    + s.device_grants
                    > 0
            });
        self.alarm_known.set(false);
        if backlog || left {
            let wait = if backlog {
                ALARM_BACKLOG_MS
            } else {
                self.alarm_every_ms()
            };
            storage.set_alarm(when(js_sys::Date::now() + wait)).await?;
            self.alarm_known.set(true);
        }
        match result {
            Ok(_) => Response::ok("purged"),
            Err(e) => Response::error(e, 500),
        }
    }
}

impl Redemption {
    fn wire(self) -> &'static str {
        match self {
            Redemption::Issued => "issued",
            Redemption::Replayed => "replayed",
            Redemption::UserInvalid => "user_invalid",
        }
    }
}

impl Purged {
    fn wire(&self) -> super::shards::PurgedWire {
        super::shards::PurgedWire {
            access_tokens: self.access_tokens,
            families: self.families,
            code_redemptions: self.code_redemptions,
            registration_tokens: self.registration_tokens,
            jti_markers: self.jti_markers,
            device_codes: self.device_codes,
        }
    }
}
