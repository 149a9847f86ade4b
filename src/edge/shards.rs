//! Token families in shards (`shard_object.rs`): the [`TokenStore`] and
//! [`RegistrationTokenStore`] of the edge. Each call goes to the one shard the key's route names
//! (`core/storage/route.rs`); bulk revocation, the user's token listing and the cron's cleanup
//! fan out to every shard that may hold state. `docs/scaling.md` has the design.

mod keyed;

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{Env, Method, ObjectNamespace, RequestInit};

use super::store::{backend, Arg, EdgeStore};
use super::var;
use crate::core::future::{all, before};
use crate::core::maintenance::{Cutoffs, Purged};
use crate::core::secret::SecretHash;
use crate::core::storage::{
    DeviceDecision, DeviceGrant, Family, FoundToken, Issue, Redemption, Rotation, Route,
    StoreError, TokenKey, TokenKind, TokenRecord, TokenState, TokenStore, UserClaims, MAX_SHARDS,
};

/// How long a shard may take before its caller gives up with `temporarily_unavailable`.
const SHARD_TIMEOUT_MS: u64 = 5_000;

/// A request to a shard: one operation, run in one transaction there.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Starts a family: with `code_hash`, once per code (its redemption).
    Redeem {
        code_hash: Option<String>,
        /// With a device code: redeems its approved grant, once, instead of a code.
        #[serde(default)]
        device_hash: Option<String>,
        family: FamilyRow,
        tokens: Vec<TokenRow>,
        #[serde(default)]
        web_sessions: Vec<String>,
        user_valid_at_ms: u64,
    },
    FindWebSession {
        hash: String,
    },
    Find {
        hash: String,
    },
    Rotate {
        old: String,
        family_id: String,
        tokens: Vec<TokenRow>,
        /// Replaces the family's web sessions (`hybrid_refresh`).
        web_sessions: Option<Vec<String>>,
        now_ms: u64,
    },
    Extend {
        family_id: String,
        tokens: Vec<TokenRow>,
        web_sessions: Option<Vec<String>>,
        now_ms: u64,
    },
    RevokeFamily {
        family_id: String,
        now_s: u64,
    },
    RevokeToken {
        hash: String,
        now_s: u64,
    },
    /// Ends every family of a user or of a client, and records the epoch before which their
    /// codes are refused.
    RevokeSubject {
        user_id: Option<String>,
        client_id: Option<String>,
        valid_from_ms: u64,
        now_s: u64,
    },
    UnexpiredAccess {
        user_id: String,
        now_s: u64,
    },
    /// Rewrites the claims kept with the user's families (a profile change).
    SetUserClaims {
        user_id: String,
        claims: String,
    },
    CreateRegistrationToken {
        hash: String,
        expires_at: u64,
        max_uses: Option<u32>,
    },
    /// Counts one use of an unexpired initial access token with uses left.
    UseRegistrationToken {
        hash: String,
        now_s: u64,
    },
    /// Records a device grant unless a live one has its user code.
    StartDevice {
        hash: String,
        grant: DeviceGrant,
        now_s: u64,
    },
    /// The undecided, unexpired device grant of a user code.
    FindDevice {
        user_code: String,
        now_s: u64,
    },
    DecideDevice {
        user_code: String,
        decision: DeviceDecision,
        now_s: u64,
    },
    PollDevice {
        hash: String,
        client_id: String,
        now_ms: u64,
    },
    /// Records an assertion's `jti` marker once (an expired marker counts as none).
    ClaimJti {
        key: String,
        expires_at: u64,
        now_s: u64,
    },
    Purge {
        now_s: u64,
    },
    Stats,
}

impl Op {
    /// Whether the operation may leave state that the shard's alarm must clean up later.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Find { .. }
                | Op::FindWebSession { .. }
                | Op::FindDevice { .. }
                | Op::UnexpiredAccess { .. }
                | Op::Stats
                | Op::Purge { .. }
        )
    }
}

#[derive(Serialize, Deserialize)]
pub struct FamilyRow {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: String,
    pub auth_time: u64,
    pub created_at: u64,
    pub last_used_ms: u64,
    /// The user's claims (JSON), for the family's refreshes.
    pub user_claims: String,
    /// RFC 8707: the resource the family's access tokens are for.
    #[serde(default)]
    pub resource: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct TokenRow {
    pub hash: String,
    pub family_id: String,
    pub kind: String,
    pub scopes: String,
    pub created_at: u64,
    pub expires_at: Option<u64>,
}

/// A family as a shard stores it.
#[derive(Serialize, Deserialize)]
pub struct StoredFamily {
    family_id: String,
    client_id: String,
    user_id: String,
    scopes: String,
    auth_time: u64,
    created_at: u64,
    last_used_ms: u64,
    revoked_at: Option<u64>,
    #[serde(default)]
    resource: Option<String>,
}

impl StoredFamily {
    fn into_family(self) -> Result<Family, StoreError> {
        Ok(Family {
            family_id: self.family_id,
            client_id: self.client_id,
            user_id: self.user_id,
            scopes: serde_json::from_str(&self.scopes).map_err(backend)?,
            auth_time_s: self.auth_time,
            created_at_s: self.created_at,
            last_used_at_ms: self.last_used_ms,
            revoked_at_s: self.revoked_at,
            resource: self.resource,
        })
    }
}

/// A token with its family, as a shard stores them.
#[derive(Serialize, Deserialize)]
pub struct FoundRow {
    token_hash: String,
    family_id: String,
    kind: String,
    token_scopes: String,
    token_created_at: u64,
    expires_at: Option<u64>,
    state: String,
    rotated_ms: Option<u64>,
    client_id: String,
    user_id: String,
    family_scopes: String,
    auth_time: u64,
    family_created_at: u64,
    last_used_ms: u64,
    revoked_at: Option<u64>,
    #[serde(default)]
    user_claims: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

/// What one shard holds (the development-only `/dev/shards`, and the alarm's "anything left").
#[derive(Serialize, Deserialize, Default)]
pub struct Stats {
    pub families: u64,
    pub tokens: u64,
    pub code_redemptions: u64,
    pub registration_tokens: u64,
    pub epochs: u64,
    #[serde(default)]
    pub jti_markers: u64,
    #[serde(default)]
    pub device_grants: u64,
}

#[derive(Serialize, Deserialize, Default)]
pub struct PurgedWire {
    pub access_tokens: usize,
    pub families: usize,
    pub code_redemptions: usize,
    pub registration_tokens: usize,
    #[serde(default)]
    pub jti_markers: usize,
    #[serde(default)]
    pub device_codes: usize,
}

impl PurgedWire {
    /// Whether some rule hit its row limit (more may be left).
    pub fn any_at(&self, limit: u32) -> bool {
        let limit = limit as usize;
        [
            self.access_tokens,
            self.families,
            self.code_redemptions,
            self.registration_tokens,
            self.jti_markers,
            self.device_codes,
        ]
        .iter()
        .any(|&n| n >= limit)
    }
}

fn kind_str(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Access => "access",
        TokenKind::Refresh => "refresh",
    }
}

fn token_row(t: &TokenRecord) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        hash: t.hash.0.clone(),
        family_id: t.family_id.clone(),
        kind: kind_str(t.kind).to_owned(),
        scopes: serde_json::to_string(&t.scopes).map_err(backend)?,
        created_at: t.created_at_s,
        expires_at: t.expires_at_s,
    })
}

fn token_rows(tokens: &[TokenRecord]) -> Result<Vec<TokenRow>, StoreError> {
    tokens.iter().map(token_row).collect()
}

impl FoundRow {
    /// The user's claims kept with the family (`None` for a row without them).
    fn claims(&self) -> Option<UserClaims> {
        self.user_claims
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
    }

    fn into_parts(self) -> Result<(TokenRecord, Family, Option<u64>), StoreError> {
        let parse = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(backend);
        let token = TokenRecord {
            hash: SecretHash(self.token_hash),
            family_id: self.family_id.clone(),
            kind: if self.kind == "refresh" {
                TokenKind::Refresh
            } else {
                TokenKind::Access
            },
            scopes: parse(&self.token_scopes)?,
            created_at_s: self.token_created_at,
            expires_at_s: self.expires_at,
            state: match self.state.as_str() {
                "active" => TokenState::Active,
                "rotated" => TokenState::Rotated,
                _ => TokenState::Revoked,
            },
        };
        let family = Family {
            family_id: self.family_id,
            client_id: self.client_id,
            user_id: self.user_id,
            scopes: parse(&self.family_scopes)?,
            auth_time_s: self.auth_time,
            created_at_s: self.family_created_at,
            last_used_at_ms: self.last_used_ms,
            revoked_at_s: self.revoked_at,
            resource: self.resource,
        };
        Ok((token, family, self.rotated_ms))
    }
}

thread_local! {
    /// The shard count this isolate has recorded in D1's `shard_layout` (0: not yet).
    static RECORDED: Cell<u16> = const { Cell::new(0) };
}

/// The `SHARD` namespace and the configured shard count.
pub struct Shards {
    ns: Option<ObjectNamespace>,
    /// `SHARDS`: how many shards new families are placed on.
    pub count: u16,
    trips: Cell<u32>,
}

impl Shards {
    pub fn new(env: &Env) -> Self {
        Self {
            ns: env.durable_object("SHARD").ok(),
            count: configured(env),
            trips: Cell::new(0),
        }
    }

    pub fn trips(&self) -> u32 {
        self.trips.get()
    }

    /// Runs `op` in shard `route`. A shard that fails, refuses or takes longer than
    /// [`SHARD_TIMEOUT_MS`] is [`StoreError::Unavailable`]: nothing was decided there.
    pub async fn call<T: DeserializeOwned>(&self, route: Route, op: &Op) -> Result<T, StoreError> {
        self.trips.set(self.trips.get() + 1);
        let unavailable = |e: String| {
            worker::console_error!("shard {}: {e}", route.0);
            StoreError::Unavailable(format!("shard {}: {e}", route.0))
        };
        let ns = self.ns.as_ref().ok_or_else(|| {
            backend("the SHARD Durable Object binding is missing from wrangler.toml")
        })?;
        let stub = ns
            .id_from_name(&format!("shard-{}", route.0))
            .and_then(|id| id.get_stub())
            .map_err(|e| unavailable(e.to_string()))?;
        let body = serde_json::to_string(op).map_err(backend)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = worker::Request::new_with_init(&format!("https://shard/{}", route.0), &init)
            .map_err(|e| unavailable(e.to_string()))?;
        let deadline = worker::Delay::from(std::time::Duration::from_millis(SHARD_TIMEOUT_MS));
        let mut response = before(stub.fetch_with_request(request), deadline)
            .await
            .ok_or_else(|| unavailable("timed out".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        if response.status_code() != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(unavailable(format!("{} {text}", response.status_code())));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| unavailable(e.to_string()))
    }
}

/// `SHARDS` from the environment, 1 to [`MAX_SHARDS`] (1 when unset or not a number).
pub fn configured(env: &Env) -> u16 {
    var(env, "SHARDS")
        .and_then(|v| v.trim().parse::<u16>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_SHARDS)
}

/// A family's shard, from the route at the start of its id.
fn family_route(family_id: &str) -> Result<Route, StoreError> {
    Route::of_key(family_id)
        .ok_or_else(|| backend(format!("family id without a route: {family_id}")))
}

impl EdgeStore {
    /// Records in D1 that shards up to the configured count may hold state, before anything is
    /// placed on `route`: bulk operations then reach every shard that may. Once per isolate,
    /// and usually with no round trip of its own: the settings read brings the recorded count
    /// along ([`Self::layout_seen`]).
    pub async fn placing_on(&self, route: Route) -> Result<(), StoreError> {
        if route.0 == 0 || RECORDED.with(Cell::get) >= self.shards.count {
            return Ok(());
        }
        self.record_layout().await
    }

    /// The recorded high water, as the settings read found it: records the configured count if
    /// it is higher.
    pub async fn layout_seen(&self, high_water: Option<u16>) -> Result<(), StoreError> {
        let count = self.shards.count;
        if count > 1 && high_water.unwrap_or(1) < count {
            return self.record_layout().await;
        }
        RECORDED.with(|r| r.set(r.get().max(high_water.unwrap_or(1).min(count))));
        Ok(())
    }

    async fn record_layout(&self) -> Result<(), StoreError> {
        let count = self.shards.count;
        self.exec(
            "INSERT INTO shard_layout (id, high_water) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET high_water = max(high_water, excluded.high_water)",
            &[Arg::Int(count.into())],
        )
        .await?;
        RECORDED.with(|r| r.set(count));
        Ok(())
    }

    /// Every shard that may hold state: below the configured count and the recorded high water.
    pub async fn all_shards(&self) -> Result<Vec<Route>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            high_water: u16,
        }
        let row: Option<Row> = self
            .first("SELECT high_water FROM shard_layout WHERE id = 1", &[])
            .await?;
        let n = row
            .map_or(1, |r| r.high_water)
            .max(self.shards.count)
            .clamp(1, MAX_SHARDS);
        Ok((0..n).map(Route).collect())
    }

    /// Runs `op` in every shard; fails if any shard failed (after all have answered).
    async fn everywhere<T: DeserializeOwned>(&self, op: &Op) -> Result<Vec<T>, StoreError> {
        let routes = self.all_shards().await?;
        all(routes.into_iter().map(|r| self.shards.call::<T>(r, op)))
            .await
            .into_iter()
            .collect()
    }

    /// Bulk revocation: every family of the user (or client) in every shard, and the epoch
    /// before which their codes are refused. Returns the access tokens that were live.
    pub async fn revoke_subject(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        valid_from_ms: u64,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        let op = Op::RevokeSubject {
            user_id: user_id.map(str::to_owned),
            client_id: client_id.map(str::to_owned),
            valid_from_ms,
            now_s,
        };
        let lists: Vec<Vec<String>> = self.everywhere(&op).await?;
        Ok(lists.into_iter().flatten().map(SecretHash).collect())
    }

    /// Per shard, what it holds (development only, `/dev/shards`).
    pub async fn shard_stats(&self) -> Result<Vec<(Route, Stats)>, StoreError> {
        let routes = self.all_shards().await?;
        let stats: Vec<Stats> = self.everywhere(&Op::Stats).await?;
        Ok(routes.into_iter().zip(stats).collect())
    }
}

fn hashes(list: Vec<String>) -> Vec<SecretHash> {
    list.into_iter().map(SecretHash).collect()
}

fn hex_list(hashes: &[SecretHash]) -> Vec<String> {
    hashes.iter().map(|h| h.0.clone()).collect()
}

impl EdgeStore {
    /// Starts the family of `issue` in its shard, with the code's redemption when there is one.
    async fn start(
        &self,
        code_hash: Option<&SecretHash>,
        device_hash: Option<&SecretHash>,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        let f = &issue.family;
        let op = Op::Redeem {
            code_hash: code_hash.map(|h| h.0.clone()),
            device_hash: device_hash.map(|h| h.0.clone()),
            family: FamilyRow {
                family_id: f.family_id.clone(),
                client_id: f.client_id.clone(),
                user_id: f.user_id.clone(),
                scopes: serde_json::to_string(&f.scopes).map_err(backend)?,
                auth_time: f.auth_time_s,
                created_at: f.created_at_s,
                last_used_ms: f.last_used_at_ms,
                user_claims: serde_json::to_string(&issue.user).map_err(backend)?,
                resource: f.resource.clone(),
            },
            tokens: token_rows(&issue.tokens)?,
            web_sessions: hex_list(&issue.web_sessions),
            user_valid_at_ms,
        };
        let outcome: String = self.shards.call(family_route(&f.family_id)?, &op).await?;
        Ok(match outcome.as_str() {
            "issued" => Redemption::Issued,
            "replayed" => Redemption::Replayed,
            _ => Redemption::UserInvalid,
        })
    }
}

impl TokenStore for EdgeStore {
    async fn redeem_code(
        &self,
        code_hash: &SecretHash,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        self.start(Some(code_hash), None, issue, user_valid_at_ms)
            .await
    }

    async fn start_family(&self, issue: &Issue, user_valid_at_ms: u64) -> Result<bool, StoreError> {
        Ok(self.start(None, None, issue, user_valid_at_ms).await? == Redemption::Issued)
    }

    async fn find_web_session(&self, key: &TokenKey) -> Result<Option<Family>, StoreError> {
        let Some(route) = key.route else {
            return Ok(None);
        };
        let row: Option<StoredFamily> = self
            .shards
            .call(
                route,
                &Op::FindWebSession {
                    hash: key.hash.0.clone(),
                },
            )
            .await?;
        let family = row.map(StoredFamily::into_family).transpose()?;
        Ok(family.filter(|f| Route::of_key(&f.family_id) == Some(route)))
    }

    async fn find_token(&self, key: &TokenKey) -> Result<Option<FoundToken>, StoreError> {
        let Some(route) = key.route.filter(|r| r.0 < MAX_SHARDS) else {
            return Ok(None);
        };
        let row: Option<FoundRow> = self
            .shards
            .call(
                route,
                &Op::Find {
                    hash: key.hash.0.clone(),
                },
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // The user's claims come with the family: no read of the user in D1.
        let user = row.claims();
        let (token, family, rotated_at_ms) = row.into_parts()?;
        // A token under another route than its family's is not ours to find.
        if Route::of_key(&family.family_id) != Some(route) {
            return Ok(None);
        }
        Ok(Some(FoundToken {
            token,
            family,
            rotated_at_ms,
            user,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        family_id: &str,
        tokens: &[TokenRecord],
        web_sessions: Option<&[SecretHash]>,
        now_ms: u64,
    ) -> Result<Rotation, StoreError> {
        #[derive(Deserialize)]
        struct Outcome {
            reused: Option<u64>,
            revoked: Option<bool>,
        }
        let op = Op::Rotate {
            old: old.0.clone(),
            family_id: family_id.to_owned(),
            tokens: token_rows(tokens)?,
            web_sessions: web_sessions.map(hex_list),
            now_ms,
        };
        let o: Outcome = self.shards.call(family_route(family_id)?, &op).await?;
        Ok(match (o.reused, o.revoked) {
            (Some(rotated_at_ms), _) => Rotation::Reused { rotated_at_ms },
            (None, Some(true)) => Rotation::Revoked,
            _ => Rotation::Rotated,
        })
    }

    async fn extend_family(
        &self,
        family_id: &str,
        tokens: &[TokenRecord],
        web_sessions: Option<&[SecretHash]>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let op = Op::Extend {
            family_id: family_id.to_owned(),
            tokens: token_rows(tokens)?,
            web_sessions: web_sessions.map(hex_list),
            now_ms,
        };
        self.shards.call(family_route(family_id)?, &op).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        let op = Op::RevokeFamily {
            family_id: family_id.to_owned(),
            now_s,
        };
        Ok(hashes(
            self.shards.call(family_route(family_id)?, &op).await?,
        ))
    }

    async fn revoke_token(
        &self,
        key: &TokenKey,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        let Some(route) = key.route else {
            return Ok(vec![]);
        };
        let op = Op::RevokeToken {
            hash: key.hash.0.clone(),
            now_s,
        };
        Ok(hashes(self.shards.call(route, &op).await?))
    }

    async fn set_user_claims(&self, user_id: &str, claims: &UserClaims) -> Result<(), StoreError> {
        let op = Op::SetUserClaims {
            user_id: user_id.to_owned(),
            claims: serde_json::to_string(claims).map_err(backend)?,
        };
        let _: Vec<bool> = self.everywhere(&op).await?;
        Ok(())
    }

    async fn unexpired_access_tokens(
        &self,
        user_id: &str,
        now_s: u64,
    ) -> Result<Vec<(TokenRecord, Family)>, StoreError> {
        let op = Op::UnexpiredAccess {
            user_id: user_id.to_owned(),
            now_s,
        };
        let lists: Vec<Vec<FoundRow>> = self.everywhere(&op).await?;
        lists
            .into_iter()
            .flatten()
            .map(|r| r.into_parts().map(|(t, f, _)| (t, f)))
            .collect()
    }

    async fn purge(&self, c: &Cutoffs) -> Result<Purged, StoreError> {
        let per_shard: Vec<PurgedWire> = self.everywhere(&Op::Purge { now_s: c.now_s }).await?;
        Ok(per_shard.into_iter().fold(Purged::default(), |mut sum, p| {
            sum.access_tokens += p.access_tokens;
            sum.families += p.families;
            sum.code_redemptions += p.code_redemptions;
            sum.registration_tokens += p.registration_tokens;
            sum.jti_markers += p.jti_markers;
            sum.device_codes += p.device_codes;
            sum
        }))
    }
}
