//! A shard's device grants (`core::oauth::device`): start, find by user code, decide, poll.
//! The one redemption is `redeem` with the device hash, beside the family it starts.

use serde::Deserialize;

use super::{int, json, text, OpResult, Sql};
use crate::core::oauth::device::SLOW_DOWN_S;
use crate::core::storage::{DeviceDecision, DeviceGrant, DevicePoll};
use crate::edge::shards::Op;

/// A device grant's row.
#[derive(Deserialize)]
struct DeviceRow {
    grant_json: String,
    interval_s: u64,
    last_poll_ms: Option<u64>,
    decision: Option<String>,
    redeemed: u64,
}

impl DeviceRow {
    fn grant(&self) -> OpResult<DeviceGrant> {
        serde_json::from_str(&self.grant_json).map_err(|e| e.to_string())
    }
}

/// A device operation, inside the shard's transaction.
pub(super) fn apply(sql: &Sql, op: Op) -> OpResult<serde_json::Value> {
    match op {
        Op::StartDevice { hash, grant, now_s } => {
            let taken: Option<serde_json::Value> = sql.first(
                "SELECT 1 AS taken FROM device_grants WHERE user_code = ? AND expires_at > ? AND redeemed = 0",
                vec![text(&grant.user_code), int(now_s)],
            )?;
            if taken.is_some() {
                return Ok(json(&false));
            }
            let grant_json = serde_json::to_string(&grant).map_err(|e| e.to_string())?;
            sql.run(
                "INSERT INTO device_grants (device_hash, user_code, grant_json, expires_at, interval_s) VALUES (?, ?, ?, ?, ?)",
                vec![
                    text(&hash),
                    text(&grant.user_code),
                    text(&grant_json),
                    int(grant.expires_at_s),
                    int(grant.interval_s),
                ],
            )?;
            Ok(json(&true))
        }
        Op::FindDevice { user_code, now_s } => {
            let row: Option<DeviceRow> = sql.first(
                "SELECT grant_json, interval_s, last_poll_ms, decision, redeemed FROM device_grants \
                 WHERE user_code = ? AND decision IS NULL AND expires_at > ?",
                vec![text(&user_code), int(now_s)],
            )?;
            Ok(json(&row.map(|r| r.grant()).transpose()?))
        }
        Op::DecideDevice {
            user_code,
            decision,
            now_s,
        } => {
            let approved = matches!(decision, DeviceDecision::Approved { .. });
            let decision = serde_json::to_string(&decision).map_err(|e| e.to_string())?;
            let decided = sql.run(
                "UPDATE device_grants SET decision = ?, approved = ? WHERE user_code = ? AND decision IS NULL AND expires_at > ?",
                vec![text(&decision), int(approved.into()), text(&user_code), int(now_s)],
            )?;
            Ok(json(&(decided > 0)))
        }
        Op::PollDevice {
            hash,
            client_id,
            now_ms,
        } => {
            let row: Option<DeviceRow> = sql.first(
                "SELECT grant_json, interval_s, last_poll_ms, decision, redeemed FROM device_grants WHERE device_hash = ?",
                vec![text(&hash)],
            )?;
            let Some(row) = row else {
                return Ok(json(&DevicePoll::Unknown));
            };
            let mut grant = row.grant()?;
            // Another client's poll: as if there were no such code, and nothing recorded.
            if grant.client_id != client_id {
                return Ok(json(&DevicePoll::Unknown));
            }
            let too_soon = row
                .last_poll_ms
                .is_some_and(|last| now_ms < last + row.interval_s * 1000);
            let poll = if row.redeemed != 0 {
                DevicePoll::Redeemed
            } else if grant.expires_at_s * 1000 <= now_ms {
                DevicePoll::Expired
            } else if too_soon {
                DevicePoll::SlowDown
            } else {
                match row.decision.as_deref() {
                    None => DevicePoll::Pending,
                    Some(d) => {
                        let decision: DeviceDecision =
                            serde_json::from_str(d).map_err(|e| e.to_string())?;
                        grant.interval_s = row.interval_s;
                        DevicePoll::Decided {
                            grant: Box::new(grant),
                            decision: Box::new(decision),
                        }
                    }
                }
            };
            let interval = if poll == DevicePoll::SlowDown {
                row.interval_s + SLOW_DOWN_S
            } else {
                row.interval_s
            };
            sql.run(
                "UPDATE device_grants SET last_poll_ms = ?, interval_s = ? WHERE device_hash = ?",
                vec![int(now_ms), int(interval), text(&hash)],
            )?;
            Ok(json(&poll))
        }
        _ => Err("not a device operation".into()),
    }
}
