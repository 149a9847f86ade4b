//! The in-memory store's device grants, assets and assertion markers (the aggregates of the
//! devices' and server-to-server flows), with the same single-use rules as the shards and D1.

use super::*;

/// A device grant and its state.
#[derive(Clone)]
pub(super) struct DeviceRow {
    route: Option<Route>,
    grant: DeviceGrant,
    decision: Option<DeviceDecision>,
    last_poll_ms: Option<u64>,
    redeemed: bool,
}

impl MemoryStore {
    /// Removes at most `limit` device grants that expired before `before_s`.
    pub(super) fn purge_devices(&self, before_s: u64, limit: usize) -> usize {
        let mut devices = self.devices.borrow_mut();
        let old: Vec<String> = devices
            .iter()
            .filter(|(_, d)| d.grant.expires_at_s <= before_s)
            .map(|(k, _)| k.clone())
            .take(limit)
            .collect();
        devices.retain(|k, _| !old.contains(k));
        old.len()
    }

    /// The device code hash of the undecided, unexpired grant of `user_code`.
    fn pending_device(&self, user_code: &str, now_s: u64) -> Option<String> {
        self.devices
            .borrow()
            .iter()
            .find(|(_, d)| {
                d.grant.user_code == user_code
                    && d.decision.is_none()
                    && d.grant.expires_at_s > now_s
            })
            .map(|(h, _)| h.clone())
    }
}

impl DeviceStore for MemoryStore {
    async fn start_device(&self, key: &TokenKey, grant: &DeviceGrant) -> Result<bool, StoreError> {
        self.shard_up(key.route)?;
        let taken = self
            .devices
            .borrow()
            .values()
            .any(|d| d.grant.user_code == grant.user_code && !d.redeemed);
        if taken {
            return Ok(false);
        }
        self.devices.borrow_mut().insert(
            key.hash.0.clone(),
            DeviceRow {
                route: key.route,
                grant: grant.clone(),
                decision: None,
                last_poll_ms: None,
                redeemed: false,
            },
        );
        Ok(true)
    }
    async fn find_device(
        &self,
        user_code: &str,
        now_s: u64,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let hash = self.pending_device(user_code, now_s);
        Ok(hash.and_then(|h| self.devices.borrow().get(&h).map(|d| d.grant.clone())))
    }
    async fn decide_device(
        &self,
        user_code: &str,
        decision: &DeviceDecision,
        now_s: u64,
    ) -> Result<bool, StoreError> {
        let Some(hash) = self.pending_device(user_code, now_s) else {
            return Ok(false);
        };
        if let Some(d) = self.devices.borrow_mut().get_mut(&hash) {
            d.decision = Some(decision.clone());
        }
        Ok(true)
    }
    async fn poll_device(
        &self,
        key: &TokenKey,
        client_id: &str,
        now_ms: u64,
    ) -> Result<DevicePoll, StoreError> {
        self.shard_up(key.route)?;
        let mut devices = self.devices.borrow_mut();
        let Some(d) = devices.get_mut(&key.hash.0).filter(|d| {
            key.route.is_some() && d.route == key.route && d.grant.client_id == client_id
        }) else {
            return Ok(DevicePoll::Unknown);
        };
        let too_soon = d
            .last_poll_ms
            .is_some_and(|last| now_ms < last + d.grant.interval_s * 1000);
        d.last_poll_ms = Some(now_ms);
        Ok(if d.redeemed {
            DevicePoll::Redeemed
        } else if d.grant.expires_at_s * 1000 <= now_ms {
            DevicePoll::Expired
        } else if too_soon {
            d.grant.interval_s += 5;
            DevicePoll::SlowDown
        } else {
            match &d.decision {
                None => DevicePoll::Pending,
                Some(decision) => DevicePoll::Decided {
                    grant: Box::new(d.grant.clone()),
                    decision: Box::new(decision.clone()),
                },
            }
        })
    }
    async fn redeem_device(
        &self,
        key: &TokenKey,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        self.shard_up(key.route)?;
        {
            let mut devices = self.devices.borrow_mut();
            let Some(d) = devices.get_mut(&key.hash.0) else {
                return Ok(Redemption::Replayed);
            };
            if d.redeemed || !matches!(d.decision, Some(DeviceDecision::Approved { .. })) {
                return Ok(Redemption::Replayed);
            }
            d.redeemed = true;
        }
        Ok(if self.start_family(issue, user_valid_at_ms).await? {
            Redemption::Issued
        } else {
            Redemption::UserInvalid
        })
    }
}

impl AssetStore for MemoryStore {
    async fn record_asset(&self, asset: &Asset) -> Result<Asset, StoreError> {
        let mut assets = self.assets.borrow_mut();
        let existing = assets
            .values_mut()
            .find(|a| a.client_id == asset.client_id && a.device_id == asset.device_id);
        Ok(match existing {
            Some(a) if a.revoked_at_s.is_some() => a.clone(),
            Some(a) => {
                a.name = asset.name.clone();
                a.serial_number = asset.serial_number.clone();
                a.user_id = asset.user_id.clone();
                a.clone()
            }
            None => {
                assets.insert(asset.asset_id.clone(), asset.clone());
                asset.clone()
            }
        })
    }
    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>, StoreError> {
        Ok(self.assets.borrow().get(asset_id).cloned())
    }
    async fn list_assets(&self) -> Result<Vec<Asset>, StoreError> {
        Ok(self.assets.borrow().values().cloned().collect())
    }
    async fn revoke_asset(&self, asset_id: &str, now_s: u64) -> Result<bool, StoreError> {
        Ok(match self.assets.borrow_mut().get_mut(asset_id) {
            Some(a) => {
                a.revoked_at_s.get_or_insert(now_s);
                true
            }
            None => false,
        })
    }
}

impl ReplayStore for MemoryStore {
    async fn claim_jti(&self, key: &SecretHash, expires_at_s: u64) -> Result<bool, StoreError> {
        let mut markers = self.jti_markers.borrow_mut();
        if markers.contains_key(&key.0) {
            return Ok(false);
        }
        markers.insert(key.0.clone(), expires_at_s);
        Ok(true)
    }
}
