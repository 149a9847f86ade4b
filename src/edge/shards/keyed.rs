//! The shards' keys that are not a token family's: `jti` markers and device grants (found by a
//! hash of what the client or the person sends, so routed by hash, across a change of `SHARDS`
//! too), and initial access tokens.

use std::cell::Cell;

use serde::Deserialize;

use super::Op;
use crate::core::secret::SecretHash;
use crate::core::storage::{
    DeviceDecision, DeviceGrant, DevicePoll, DeviceStore, Issue, Redemption,
    RegistrationTokenStore, ReplayStore, Route, StoreError, TokenKey, MAX_SHARDS,
};
use crate::edge::store::{backend, Arg, EdgeStore};

thread_local! {
    /// The previous shard count and when it changed, as this isolate recorded or read it for
    /// keys routed by hash ([`EdgeStore::hashed_routes`]); `None` until the first.
    static JTI_LAYOUT: Cell<Option<(u16, u64)>> = const { Cell::new(None) };
}

/// How long after `SHARDS` changes a `jti` marker is also claimed under the previous count:
/// workers of both counts may run during a rollout, and an assertion claimed by one under the
/// old count stays presentable for its lifetime (at most 10 minutes). Every isolate that sees
/// the count change restarts it.
const JTI_TRANSITION_MS: u64 = 3_600_000;

impl EdgeStore {
    /// The shards a key we do not route ourselves may be in — a `jti` marker, a device grant
    /// found by its user code: `Route::pick(key, SHARDS)`, and for a while after the count
    /// changed, under the previous count first (`docs/scaling.md`, "jti markers"). The first
    /// such key of an isolate reads the layout, and records this worker's count as current
    /// when it is not, remembering the count it replaces: two workers running different counts
    /// then always share at least one shard, where exactly one claim wins.
    async fn hashed_routes(&self, key: &str) -> Result<Vec<Route>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            current_count: Option<u16>,
            previous_count: Option<u16>,
            changed_at_ms: Option<u64>,
        }
        let count = self.shards.count;
        let layout = match JTI_LAYOUT.with(Cell::get) {
            Some(layout) => layout,
            None => {
                let row: Option<Row> = self
                    .first(
                        "SELECT current_count, previous_count, changed_at_ms FROM shard_layout WHERE id = 1",
                        &[],
                    )
                    .await?;
                let (current, previous, changed) = row
                    .map(|r| (r.current_count, r.previous_count, r.changed_at_ms))
                    .unwrap_or((None, None, None));
                let layout = match current {
                    // The first record of a count, or a change: the count it replaces.
                    Some(current) if current != count => {
                        let now = crate::edge::now_ms();
                        self.exec(
                            "INSERT INTO shard_layout (id, high_water, current_count, previous_count, changed_at_ms) VALUES (1, ?, ?, ?, ?) \
                             ON CONFLICT (id) DO UPDATE SET high_water = max(high_water, excluded.high_water), current_count = excluded.current_count, previous_count = excluded.previous_count, changed_at_ms = excluded.changed_at_ms",
                            &[Arg::Int(count.into()), Arg::Int(count.into()), Arg::Int(current.into()), Arg::Int(now)],
                        )
                        .await?;
                        (current, now)
                    }
                    Some(_) => (previous.unwrap_or(count), changed.unwrap_or(0)),
                    None => {
                        self.exec(
                            "INSERT INTO shard_layout (id, high_water, current_count) VALUES (1, ?, ?) \
                             ON CONFLICT (id) DO UPDATE SET high_water = max(high_water, excluded.high_water), current_count = coalesce(current_count, excluded.current_count)",
                            &[Arg::Int(count.into()), Arg::Int(count.into())],
                        )
                        .await?;
                        (count, 0)
                    }
                };
                JTI_LAYOUT.with(|l| l.set(Some(layout)));
                layout
            }
        };
        let (previous, changed_at_ms) = layout;
        let mut routes = Vec::with_capacity(2);
        if previous != count && crate::edge::now_ms() < changed_at_ms + JTI_TRANSITION_MS {
            routes.push(Route::pick(key, previous));
        }
        let current = Route::pick(key, count);
        if !routes.contains(&current) {
            routes.push(current);
        }
        Ok(routes)
    }
}

impl ReplayStore for EdgeStore {
    async fn claim_jti(&self, key: &SecretHash, expires_at_s: u64) -> Result<bool, StoreError> {
        let op = Op::ClaimJti {
            key: key.0.clone(),
            expires_at: expires_at_s,
            now_s: crate::edge::now_ms() / 1000,
        };
        for route in self.hashed_routes(&key.0).await? {
            self.placing_on(route).await?;
            if !self.shards.call::<bool>(route, &op).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl DeviceStore for EdgeStore {
    async fn start_device(&self, key: &TokenKey, grant: &DeviceGrant) -> Result<bool, StoreError> {
        let route = key
            .route
            .ok_or_else(|| backend("device code without a route"))?;
        self.placing_on(route).await?;
        let op = Op::StartDevice {
            hash: key.hash.0.clone(),
            grant: grant.clone(),
            now_s: crate::edge::now_ms() / 1000,
        };
        self.shards.call(route, &op).await
    }

    async fn find_device(
        &self,
        user_code: &str,
        now_s: u64,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let op = Op::FindDevice {
            user_code: user_code.to_owned(),
            now_s,
        };
        for route in self.hashed_routes(user_code).await? {
            if let Some(grant) = self.shards.call::<Option<DeviceGrant>>(route, &op).await? {
                return Ok(Some(grant));
            }
        }
        Ok(None)
    }

    async fn decide_device(
        &self,
        user_code: &str,
        decision: &DeviceDecision,
        now_s: u64,
    ) -> Result<bool, StoreError> {
        let op = Op::DecideDevice {
            user_code: user_code.to_owned(),
            decision: decision.clone(),
            now_s,
        };
        for route in self.hashed_routes(user_code).await? {
            if self.shards.call::<bool>(route, &op).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn poll_device(
        &self,
        key: &TokenKey,
        client_id: &str,
        now_ms: u64,
    ) -> Result<DevicePoll, StoreError> {
        let Some(route) = key.route.filter(|r| r.0 < MAX_SHARDS) else {
            return Ok(DevicePoll::Unknown);
        };
        let op = Op::PollDevice {
            hash: key.hash.0.clone(),
            client_id: client_id.to_owned(),
            now_ms,
        };
        self.shards.call(route, &op).await
    }

    async fn redeem_device(
        &self,
        key: &TokenKey,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        self.start(None, Some(&key.hash), issue, user_valid_at_ms)
            .await
    }
}

impl RegistrationTokenStore for EdgeStore {
    async fn create_registration_token(
        &self,
        key: &TokenKey,
        expires_at_s: u64,
        max_uses: Option<u32>,
    ) -> Result<(), StoreError> {
        let route = key
            .route
            .ok_or_else(|| backend("registration token without a route"))?;
        self.placing_on(route).await?;
        let op = Op::CreateRegistrationToken {
            hash: key.hash.0.clone(),
            expires_at: expires_at_s,
            max_uses,
        };
        let _: bool = self.shards.call(route, &op).await?;
        Ok(())
    }
    async fn use_registration_token(&self, key: &TokenKey, now_s: u64) -> Result<bool, StoreError> {
        // A token without a route (not one of ours) is unknown in every shard.
        let Some(route) = key.route.filter(|r| r.0 < MAX_SHARDS) else {
            return Ok(false);
        };
        let op = Op::UseRegistrationToken {
            hash: key.hash.0.clone(),
            now_s,
        };
        self.shards.call(route, &op).await
    }
}
