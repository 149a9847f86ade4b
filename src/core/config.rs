//! Deployment configuration and the per-request context handed to every handler.

use super::env::{Clock, Rng};
use super::gateway::GatewayRoute;
use super::http::CookiePolicy;
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
}

/// What a handler needs: storage, time, randomness, configuration.
pub struct Ctx<'a, S: Store> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
    pub config: &'a Config,
    /// The issuer for this request (CONTRACT §1 `ISSUER`, else the request origin).
    pub issuer: String,
}

impl<S: Store> Ctx<'_, S> {
    pub fn now_s(&self) -> u64 {
        self.clock.now_s()
    }

    /// How our browser cookies are named and flagged for this issuer.
    pub fn cookies(&self) -> CookiePolicy {
        CookiePolicy::for_issuer(&self.issuer)
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}
