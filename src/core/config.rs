//! Deployment configuration and the per-request context handed to every handler.

use super::audit::{AuditEvent, Notes};
use super::env::{Clock, Rng};
use super::gateway::GatewayRoute;
use super::http::CookiePolicy;
use super::keys::managed::{Vault, JWKS_MAX_AGE_DEFAULT_S};
use super::keys::{KeySet, SignatureCheck};
use super::oauth::stamp::StampKey;
use super::outbound::Outbound;
use super::secret::Secret;
use super::storage::Store;

#[derive(Debug, Default)]
pub struct Config {
    /// Fixed issuer URL (`ISSUER`); `None` means the origin the request came in on.
    pub issuer: Option<String>,
    /// Bearer token of the admin API; `None` disables the admin API.
    pub admin_token: Option<Secret>,
    pub keys: std::rc::Rc<KeySet>,
    /// The key of access tokens' age stamps (`oauth/stamp.rs`), derived from the signing keys;
    /// `None` while they are unusable.
    pub stamp_key: Option<StampKey>,
    /// How many shards new families are placed on (`SHARDS`, `storage/route.rs`); 0 counts
    /// as 1.
    pub shards: u16,
    /// Checks what clients sign (JWT bearer and client assertions, `keys/public.rs`).
    pub signatures: SignatureCheck,
    /// Fetches client ID metadata documents (`outbound.rs`).
    pub outbound: Outbound,
    /// The gateway's routes (`GATEWAY_ROUTES`, `GATEWAY_UPSTREAM`; `gateway.rs`).
    pub gateway: Vec<GatewayRoute>,
    /// `DEV_MODE=1`: development-only allowances (loopback metadata documents).
    pub dev_mode: bool,
    /// Seals and opens managed signing keys (`KEY_WRAPPING_KEY`); `None`: keys cannot be
    /// created through the admin API.
    pub vault: Option<Vault>,
    /// `JWKS_MAX_AGE_S`: the JWKS cache lifetime, and so the least time a new key is published
    /// before it signs (`keys/managed.rs`); `None`: 300.
    pub jwks_max_age_s: Option<u64>,
    /// `AUDIT_RETENTION_DAYS`; `None`: 90.
    pub audit_retention_days: Option<u64>,
}

impl Config {
    pub fn jwks_max_age_s(&self) -> u64 {
        self.jwks_max_age_s.unwrap_or(JWKS_MAX_AGE_DEFAULT_S)
    }

    /// How long audit events are kept, in seconds.
    pub fn audit_retention_s(&self) -> u64 {
        self.audit_retention_days
            .unwrap_or(crate::core::audit::RETENTION_DAYS_DEFAULT)
            .saturating_mul(86_400)
    }
}

/// What a handler needs: storage, time, randomness, configuration.
pub struct Ctx<'a, S: Store> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
    pub config: &'a Config,
    /// The issuer for this request (CONTRACT §1 `ISSUER`, else the request origin).
    pub issuer: String,
    /// What the handlers noted: audit events, and the grant and client of the log line.
    pub notes: Notes,
}

impl<S: Store> Ctx<'_, S> {
    pub fn now_s(&self) -> u64 {
        self.clock.now_s()
    }

    /// How our browser cookies are named and flagged for this issuer.
    pub fn cookies(&self) -> CookiePolicy {
        CookiePolicy::for_issuer(&self.issuer)
    }

    /// Notes an audit event now (written after the response, `core/audit.rs`).
    pub fn audit(&self, event: AuditEvent) {
        self.notes.event(self.now_s(), event);
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}
