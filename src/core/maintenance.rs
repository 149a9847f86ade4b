//! Cleanup: removes token state that can no longer decide anything, so the tables do not grow
//! without end. Each shard runs it from its own alarm, and the Worker's cron trigger
//! (`wrangler.toml` `[triggers]`) asks every shard too. Each run removes at most
//! [`PURGE_BATCH`] rows per rule; a backlog drains over several runs.

use super::oauth::authz::CODE_TTL_S;
use super::oauth::interaction::SESSION_TTL_S;
use super::storage::{Store, StoreError};

/// Rows removed per rule and run at most (one transaction stays small).
pub const PURGE_BATCH: u32 = 1000;

/// How long a revoked family is kept (for an operator's look at what happened) before it goes.
pub const REVOKED_KEPT_S: u64 = 86_400;

/// What may go, as of `now_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    pub now_s: u64,
    /// Redemption markers of codes minted before this: the code itself (its KV payload and
    /// `expires_at_s`) is gone, so no presentation of it gets as far as redemption.
    pub code_redeemed_before_s: u64,
    /// Families revoked before this go with their tokens and rotation markers: any token of
    /// theirs is refused whether or not its row exists.
    pub family_revoked_before_s: u64,
    /// Revocation epochs (a password change, a deactivation, an app's deletion) set before this
    /// go: every session that began before them has expired, and so has every code minted from
    /// one, so nothing they could refuse is left — however stale a replica's view of the user.
    pub epoch_set_before_ms: u64,
    pub limit: u32,
}

impl Cutoffs {
    pub fn at(now_s: u64) -> Self {
        Self {
            now_s,
            code_redeemed_before_s: now_s.saturating_sub(2 * CODE_TTL_S),
            family_revoked_before_s: now_s.saturating_sub(REVOKED_KEPT_S),
            epoch_set_before_ms: now_s
                .saturating_sub(SESSION_TTL_S + CODE_TTL_S)
                .saturating_mul(1000),
            limit: PURGE_BATCH,
        }
    }
}

/// Rows removed, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired access tokens.
    pub access_tokens: usize,
    /// Families revoked long enough ago, and families with nothing usable left (no refresh
    /// token, every access token expired).
    pub families: usize,
    pub code_redemptions: usize,
    pub registration_tokens: usize,
    /// Assertion `jti` markers past their assertion's expiry.
    pub jti_markers: usize,
    /// Device codes expired for a whole device-code lifetime.
    pub device_codes: usize,
    /// Audit events older than the retention (`AUDIT_RETENTION_DAYS`).
    pub audit_events: usize,
}

/// One cleanup run: the shards' token state, then the audit events older than `audit_kept_s`.
pub async fn run<S: Store>(store: &S, now_s: u64, audit_kept_s: u64) -> Result<Purged, StoreError> {
    let mut purged = store.purge(&Cutoffs::at(now_s)).await?;
    purged.audit_events = store
        .prune_audit(now_s.saturating_sub(audit_kept_s), PURGE_BATCH)
        .await?;
    Ok(purged)
}
