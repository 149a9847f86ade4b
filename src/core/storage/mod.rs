//! Storage, one async trait per aggregate (STYLE §3). Methods are named for the transition they
//! make. Lookups return `Result<Option<T>, StoreError>`.
//!
//! What lives where (`docs/storage.md` has the full key/table map, `docs/scaling.md` the why):
//! - Shards (SQLite-backed Durable Objects, one transaction per operation): token families and
//!   their tokens, code redemptions, refresh rotations, initial access tokens. Everything
//!   single-use or ordered — code redemption, refresh rotation, revocation — is decided there,
//!   in the shard the key's [`Route`] names.
//! - D1 (read from replicas, written at one primary): settings, apps, users, app-user grants.
//! - KV (eventually consistent, TTL): authorization codes' payloads, login sessions, pending
//!   authorization requests, access tokens' edge copies. Nothing in KV is trusted to be
//!   single-use.
#![allow(async_fn_in_trait)] // The Worker runtime is single-threaded; no `Send` bound is wanted.

pub mod memory;
mod records;
mod route;

pub use records::*;
pub use route::{Route, TokenKey, MAX_SHARDS};

use super::audit::{AuditEvent, AuditQuery};
use super::keys::managed::ManagedKey;
use super::maintenance::{Cutoffs, Purged};
use super::model::{App, OrgSettings, User};
use super::secret::SecretHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness rule refused the write (e.g. a username that is taken). Nothing was written.
    Conflict(String),
    /// The backend failed. The message is for logs only and never reaches a caller.
    Backend(String),
    /// The part of the backend that owns this key (a shard) did not answer, or refused: nothing
    /// was written, and the caller may retry. The message is for logs only.
    Unavailable(String),
}

pub trait SettingsStore {
    async fn load_settings(&self) -> Result<Option<OrgSettings>, StoreError>;
    /// Stores `initial` unless settings exist already; returns whichever is stored.
    async fn init_settings(&self, initial: &OrgSettings) -> Result<OrgSettings, StoreError>;
    async fn save_settings(&self, settings: &OrgSettings) -> Result<(), StoreError>;
    /// The org id alone. It never changes once created, so a store may cache it.
    async fn org_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.load_settings().await?.map(|s| s.org_id))
    }
}

pub trait AppStore {
    async fn create_app(&self, app: &App) -> Result<(), StoreError>;
    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError>;
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    /// Replaces name, callback URLs, scopes, policy and registration. `false` when the app does
    /// not exist.
    async fn update_app(&self, app: &App) -> Result<bool, StoreError>;
    /// RFC 7592 §2.2: replaces a registered client's metadata (as [`Self::update_app`]) only
    /// while its registration access token is still `current`, so that of concurrent updates
    /// with one token exactly one wins (each rotates it). `false`, nothing written, otherwise.
    async fn update_registered_app(
        &self,
        app: &App,
        current: &SecretHash,
    ) -> Result<bool, StoreError>;
    /// The registered app whose current registration access token hashes to `token_hash`,
    /// read where it was last written (no cache, no replica): a token rotated a moment ago
    /// elsewhere must not pass, and its successor must.
    async fn find_registered_app(
        &self,
        client_id: &str,
        token_hash: &SecretHash,
    ) -> Result<Option<App>, StoreError>;
    async fn rotate_app_secret(
        &self,
        client_id: &str,
        hash: &SecretHash,
    ) -> Result<bool, StoreError>;
    /// Whether any app lists `origin` in `allowed_origins` (CORS).
    async fn origin_allowed(&self, origin: &str) -> Result<bool, StoreError>;
    /// Deletes the app, its user grants, and revokes every token issued to it.
    async fn delete_app(&self, client_id: &str, now_s: u64) -> Result<bool, StoreError>;
}

pub trait UserStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces email, name, password hash, active flag and `sessions_valid_from_ms`. With
    /// `revoke_tokens_at_s`, also revokes every token family of the user (a password change or a
    /// deactivation ends everything issued before it): first, so that a failure leaves the user
    /// unchanged rather than changed with live tokens. `false` when the user does not exist.
    async fn update_user(
        &self,
        user: &User,
        revoke_tokens_at_s: Option<u64>,
    ) -> Result<bool, StoreError>;
}

/// What a user has granted an app, and whether an admin pre-authorized them.
pub trait GrantStore {
    async fn app_user_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<AppUserGrant>, StoreError>;
    /// The user and what they granted the app, in one read where the backend can.
    async fn user_with_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<(User, Option<AppUserGrant>)>, StoreError>;
    async fn preauthorize(&self, client_id: &str, user_id: &str) -> Result<(), StoreError>;
    async fn record_approval(
        &self,
        client_id: &str,
        user_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError>;
}

/// Initial access tokens for dynamic registration (RFC 7591 §3), in the shard their route
/// names: each use is counted there, so `max_uses` holds under any concurrency.
pub trait RegistrationTokenStore {
    /// `max_uses`: `None` for any number of registrations until `expires_at_s`.
    async fn create_registration_token(
        &self,
        key: &TokenKey,
        expires_at_s: u64,
        max_uses: Option<u32>,
    ) -> Result<(), StoreError>;
    /// Counts one use of an unexpired token with uses left: `false`, with nothing written, for
    /// an unknown, expired or used-up one.
    async fn use_registration_token(&self, key: &TokenKey, now_s: u64) -> Result<bool, StoreError>;
}

/// Protected resources (RFC 8707) registered by operators (D1).
pub trait ResourceStore {
    /// `Conflict` when a resource with the same URI exists.
    async fn create_resource(&self, resource: &ProtectedResource) -> Result<(), StoreError>;
    async fn list_resources(&self) -> Result<Vec<ProtectedResource>, StoreError>;
    async fn find_resource(&self, uri: &str) -> Result<Option<ProtectedResource>, StoreError>;
    /// `false` when there is no such resource.
    async fn delete_resource(&self, resource_id: &str) -> Result<bool, StoreError>;
}

/// Single-use markers of the assertions clients sign (RFC 7523 §3 `jti`): JWT bearer grants and
/// `private_key_jwt` client authentication. Decided in a shard, like every single use.
pub trait ReplayStore {
    /// Records `key` (a hash of the assertion's issuer and `jti`) until `expires_at_s`, once:
    /// `false`, with nothing written, when it is recorded already (a replay).
    async fn claim_jti(&self, key: &SecretHash, expires_at_s: u64) -> Result<bool, StoreError>;
}

/// Device authorizations (RFC 8628), in the shard their device code's route names; the route is
/// picked from the user code, so the verification page finds the grant by the code a person
/// types. Every transition is one step in that shard.
pub trait DeviceStore {
    /// Records a new grant under its device code; `false`, with nothing written, when a live
    /// grant has the same user code (the caller draws another).
    async fn start_device(&self, key: &TokenKey, grant: &DeviceGrant) -> Result<bool, StoreError>;
    /// The undecided, unexpired grant whose user code is `user_code` (normalized).
    async fn find_device(
        &self,
        user_code: &str,
        now_s: u64,
    ) -> Result<Option<DeviceGrant>, StoreError>;
    /// Decides the undecided, unexpired grant of `user_code`, once: `false` when there is none.
    async fn decide_device(
        &self,
        user_code: &str,
        decision: &DeviceDecision,
        now_s: u64,
    ) -> Result<bool, StoreError>;
    /// A poll by `client_id`: records its time, and answers what the grant's state says (RFC
    /// 8628 §3.5), `SlowDown` when it came sooner than the interval after the previous poll.
    /// Another client's poll is `Unknown` and writes nothing: it says nothing about the grant
    /// and does not slow its owner down.
    async fn poll_device(
        &self,
        key: &TokenKey,
        client_id: &str,
        now_ms: u64,
    ) -> Result<DevicePoll, StoreError>;
    /// Issues `issue` for an approved grant, once: a second redemption is
    /// [`Redemption::Replayed`]; a user ended (epochs) since approving is `UserInvalid`.
    async fn redeem_device(
        &self,
        key: &TokenKey,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError>;
}

/// Devices linked by asset tokens (D1).
pub trait AssetStore {
    /// Records the device for its app, or updates its name, serial number and user while it is
    /// not revoked; returns the stored asset (a revoked one as it was).
    async fn record_asset(&self, asset: &Asset) -> Result<Asset, StoreError>;
    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>, StoreError>;
    async fn list_assets(&self) -> Result<Vec<Asset>, StoreError>;
    /// `false` when there is no such asset.
    async fn revoke_asset(&self, asset_id: &str, now_s: u64) -> Result<bool, StoreError>;
}

/// Authorization code payloads (KV). Redemption itself is decided by [`TokenStore::redeem_code`].
pub trait CodeStore {
    async fn put_code(&self, hash: &SecretHash, code: &CodeGrant) -> Result<(), StoreError>;
    async fn get_code(&self, hash: &SecretHash) -> Result<Option<CodeGrant>, StoreError>;
}

/// Browser login sessions (KV).
pub trait SessionStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, hash: &SecretHash) -> Result<Option<Session>, StoreError>;
}

/// Pending authorization requests between the authorize GET and the login/consent POSTs (KV).
pub trait InteractionStore {
    async fn put_interaction(
        &self,
        id_hash: &SecretHash,
        interaction: &Interaction,
    ) -> Result<(), StoreError>;
    async fn get_interaction(
        &self,
        id_hash: &SecretHash,
    ) -> Result<Option<Interaction>, StoreError>;
}

/// Token families (one per authorization) and their access/refresh tokens. A family lives where
/// the [`Route`] at the start of its id says; its tokens, its code's redemption and its
/// rotations live with it, so each method below is decided in one place, atomically.
pub trait TokenStore {
    /// RFC 6749 §4.1.2: a code is used once. Records the redemption of `code_hash` and issues
    /// `issue` in one transaction; when the code was redeemed before, nothing is written and
    /// [`Redemption::Replayed`] is returned.
    /// The issue happens only if nothing ended the user's or the client's tokens after
    /// `user_valid_at_ms` (when the user authenticated): a password change, a deactivation, the
    /// app's deletion (else [`Redemption::UserInvalid`], the code still consumed). The store
    /// decides this inside the redemption, so the grant needs no separate read of the user.
    async fn redeem_code(
        &self,
        code_hash: &SecretHash,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError>;
    /// Starts a family without a code (tokens issued at the authorization endpoint, and the
    /// grants to come that have no code): `false`, with nothing written, when something ended
    /// the user's or the client's tokens after `user_valid_at_ms`, as for [`Self::redeem_code`].
    async fn start_family(&self, issue: &Issue, user_valid_at_ms: u64) -> Result<bool, StoreError>;
    async fn find_token(&self, key: &TokenKey) -> Result<Option<FoundToken>, StoreError>;
    /// The family of a hybrid web session (`sid`), if the session exists: it ends with its
    /// family's revocation (the caller checks `revoked_at_s`) and when a `hybrid_refresh`
    /// replaces the family's web sessions.
    async fn find_web_session(&self, key: &TokenKey) -> Result<Option<Family>, StoreError>;
    /// Marks `old` rotated and adds `tokens`, once; a second rotation of the same token is
    /// [`Rotation::Reused`] (with the time of the first) and writes nothing, and so is a
    /// rotation in a family revoked meanwhile ([`Rotation::Revoked`]).
    /// With `web_sessions`, the family's web sessions are replaced by these, in the same step.
    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        family_id: &str,
        tokens: &[TokenRecord],
        web_sessions: Option<&[SecretHash]>,
        now_ms: u64,
    ) -> Result<Rotation, StoreError>;
    /// Adds tokens to a live family (refresh without rotation, or within the reuse grace) and
    /// records its use; `false`, with nothing written, when the family was revoked meanwhile.
    async fn extend_family(
        &self,
        family_id: &str,
        tokens: &[TokenRecord],
        web_sessions: Option<&[SecretHash]>,
        now_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Revokes the family; returns its access tokens that were live, whose edge copies must go.
    async fn revoke_family(
        &self,
        family_id: &str,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError>;
    /// RFC 7009 §2.1: revoking a refresh token revokes its family; an access token, itself; a
    /// hybrid web session's `sid`, its family (the session and the tokens end together).
    /// Returns the access tokens that were live and are not any more.
    async fn revoke_token(&self, key: &TokenKey, now_s: u64)
        -> Result<Vec<SecretHash>, StoreError>;
    /// Rewrites the claims kept with every family of the user (a profile change).
    async fn set_user_claims(&self, user_id: &str, claims: &UserClaims) -> Result<(), StoreError>;
    /// The user's access tokens that have not expired and were not revoked one by one, with
    /// their families (revoked or not): the edge copies a change to the user must rewrite or
    /// drop.
    async fn unexpired_access_tokens(
        &self,
        user_id: &str,
        now_s: u64,
    ) -> Result<Vec<(TokenRecord, Family)>, StoreError>;
    /// Removes what can no longer decide anything (`core/maintenance.rs`): expired access
    /// tokens; families revoked before the cutoff, or left with no refresh token and no
    /// unexpired access token, with their tokens and rotation markers; code redemption markers
    /// older than the cutoff; expired registration tokens. At most `limit` rows per rule (in
    /// each shard, where the backend is sharded).
    async fn purge(&self, cutoffs: &Cutoffs) -> Result<Purged, StoreError>;
}

/// The audit trail (D1 `audit_events`, `core/audit.rs`): appended after responses, read by the
/// admin API, pruned by the cron.
pub trait AuditStore {
    /// Appends `events` in one write; ids are assigned in order.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The events `query` matches, newest first, at most `query.limit`.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// Removes at most `limit` events older than `before_s`, oldest first.
    async fn prune_audit(&self, before_s: u64, limit: u32) -> Result<usize, StoreError>;
}

/// Signing keys managed through the admin API (D1 `signing_keys`, `keys/managed.rs`).
pub trait SigningKeyStore {
    async fn list_signing_keys(&self) -> Result<Vec<ManagedKey>, StoreError>;
    /// Conflict when the `kid` exists.
    async fn create_signing_key(&self, key: &ManagedKey) -> Result<(), StoreError>;
    /// Sets when the key signs from; `false` when there is no such key.
    async fn schedule_signing_key(&self, kid: &str, activates_at: u64) -> Result<bool, StoreError>;
    /// `false` when there is no such key.
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError>;
}

/// Edge-local copies of live access tokens (KV), so that validation needs no shard or D1 round
/// trip. Eventually consistent: a copy may not have reached another location yet (validation
/// then falls back to the token's shard for young tokens only), and a dropped copy may linger elsewhere for KV's
/// propagation time (about 60 s; `docs/performance.md`).
pub trait AccessCopyStore {
    async fn put_access_copy(&self, hash: &SecretHash, copy: &AccessCopy)
        -> Result<(), StoreError>;
    async fn get_access_copy(&self, hash: &SecretHash) -> Result<Option<AccessCopy>, StoreError>;
    async fn drop_access_copies(&self, hashes: &[SecretHash]) -> Result<(), StoreError>;
}

/// Which throttle an attempt counts against. Keys always include the caller's address, so an
/// attacker elsewhere cannot use up a user's or a client's allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Password logins, keyed by username and caller IP (`RL_LOGIN`, 10 a minute).
    Login,
    /// Password logins, keyed by caller IP across usernames (`RL_LOGIN_IP`, 100 a minute).
    LoginIp,
    /// Open dynamic registrations (no initial access token), keyed by caller IP
    /// (`RL_REGISTER`, 20 a minute).
    Registration,
    /// Password grants at the token endpoint, keyed by username and caller IP (`RL_PASSWORD`,
    /// 9 a minute: the tenth guess is refused). Apart from `Login`, so that neither door uses up
    /// the other's allowance.
    PasswordGrant,
    /// User codes entered on `/setup/connect`, keyed by caller IP (`RL_USER_CODE`, 10 a minute):
    /// every entry counts, so a guess that happens to be right is refused too once over.
    UserCode,
    /// Failed client authentications, keyed by client id and caller IP (`RL_CLIENT`, 600 a
    /// minute). Successful ones never count.
    ClientAuth,
}

/// Throttling (Workers rate-limit bindings). The bindings are per location and permissive, so
/// they slow guessing down rather than lock accounts. A missing binding is an error, never an
/// open door.
pub trait RateLimiter {
    /// Counts one attempt under `key`; `false` once the limit is exceeded.
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError>;
}

/// Everything the handlers need, in one bound.
pub trait Store:
    SettingsStore
    + AppStore
    + UserStore
    + GrantStore
    + RegistrationTokenStore
    + ResourceStore
    + ReplayStore
    + DeviceStore
    + AssetStore
    + CodeStore
    + SessionStore
    + InteractionStore
    + TokenStore
    + AccessCopyStore
    + AuditStore
    + SigningKeyStore
    + RateLimiter
{
}

impl<T> Store for T where
    T: SettingsStore
        + AppStore
        + UserStore
        + GrantStore
        + RegistrationTokenStore
        + ResourceStore
        + ReplayStore
        + DeviceStore
        + AssetStore
        + CodeStore
        + SessionStore
        + InteractionStore
        + TokenStore
        + AccessCopyStore
        + AuditStore
        + SigningKeyStore
        + RateLimiter
{
}
