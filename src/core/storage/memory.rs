//! In-memory stores for native tests. Same semantics as the KV/D1/shard implementations,
//! including the single-use decisions, so flow tests exercise the real rules. Lookups by key
//! honour routes as a sharded store does: a key whose route is not its family's finds nothing.

mod devices;
mod operators;

use devices::DeviceRow;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;
use crate::core::maintenance::{Cutoffs, Purged};
use crate::core::model::{App, OrgSettings, User};
use crate::core::secret::SecretHash;

#[derive(Default)]
pub struct MemoryStore {
    settings: RefCell<Option<OrgSettings>>,
    apps: RefCell<BTreeMap<String, App>>,
    users: RefCell<BTreeMap<String, User>>,
    grants: RefCell<HashMap<(String, String), AppUserGrant>>,
    /// Initial access tokens: expiry, uses left (`None`: any number).
    registration_tokens: RefCell<HashMap<String, (u64, Option<u32>)>>,
    resources: RefCell<BTreeMap<String, ProtectedResource>>,
    assets: RefCell<BTreeMap<String, Asset>>,
    /// Device grants by device code hash.
    devices: RefCell<HashMap<String, DeviceRow>>,
    /// Claimed assertion `jti`s (hash of issuer and jti) and until when they are kept.
    jti_markers: RefCell<HashMap<String, u64>>,
    codes: RefCell<HashMap<String, CodeGrant>>,
    sessions: RefCell<HashMap<String, Session>>,
    interactions: RefCell<HashMap<String, Interaction>>,
    /// Redeemed codes' hashes and when they were redeemed.
    redeemed_codes: RefCell<HashMap<String, u64>>,
    /// Rotated refresh tokens' hashes and when they were rotated (ms).
    rotated: RefCell<HashMap<String, u64>>,
    families: RefCell<HashMap<String, Family>>,
    tokens: RefCell<HashMap<String, TokenRecord>>,
    /// Hybrid web sessions: `sid` hash → family id.
    web_sessions: RefCell<HashMap<String, String>>,
    access_copies: RefCell<HashMap<String, AccessCopy>>,
    /// Lookups of token records (the D1 reads that validation must avoid).
    token_reads: std::cell::Cell<u32>,
    /// Makes every edge-copy write fail, as a KV outage would.
    copy_writes_fail: std::cell::Cell<bool>,
    /// A shard that is down: every operation on a key it owns is `Unavailable`.
    down: std::cell::Cell<Option<Route>>,
    attempts: RefCell<HashMap<(Limit, String), u32>>,
    /// The audit trail, oldest first (`operators.rs`).
    audit: RefCell<Vec<crate::core::audit::AuditEvent>>,
    signing_keys: RefCell<BTreeMap<String, crate::core::keys::managed::ManagedKey>>,
}

/// Attempts allowed per key over a store's lifetime (the bindings reset per period instead);
/// the same numbers as `wrangler.toml`.
pub const MEMORY_LOGIN_LIMIT: u32 = 10;
pub const MEMORY_LOGIN_IP_LIMIT: u32 = 100;
pub const MEMORY_PASSWORD_GRANT_LIMIT: u32 = 9;
pub const MEMORY_USER_CODE_LIMIT: u32 = 10;
pub const MEMORY_REGISTRATION_LIMIT: u32 = 20;
pub const MEMORY_CLIENT_AUTH_LIMIT: u32 = 600;

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of token records held, for tests that check nothing was written.
    pub fn token_count(&self) -> usize {
        self.tokens.borrow().len()
    }

    /// Forgets every edge copy of an access token, as if none had reached this location yet.
    pub fn lose_access_copies(&self) {
        self.access_copies.borrow_mut().clear();
    }

    /// From now on every edge-copy write fails (a KV outage).
    pub fn fail_access_copy_writes(&self) {
        self.copy_writes_fail.set(true);
    }

    /// From now on the shard `route` is down (`None`: every shard is up again).
    pub fn take_shard_down(&self, route: Option<Route>) {
        self.down.set(route);
    }

    /// `Unavailable` if the shard of `key` (a family id, or a token's route) is down.
    fn shard_up(&self, route: Option<Route>) -> Result<(), StoreError> {
        match (self.down.get(), route) {
            (Some(down), Some(r)) if down == r => {
                Err(StoreError::Unavailable(format!("shard {} is down", r.0)))
            }
            _ => Ok(()),
        }
    }

    /// How many times a token record was looked up.
    pub fn token_reads(&self) -> u32 {
        self.token_reads.get()
    }

    /// Number of edge copies held.
    pub fn access_copy_count(&self) -> usize {
        self.access_copies.borrow().len()
    }

    /// Revokes the matching live families; returns their live access tokens.
    fn revoke_families_where(&self, now_s: u64, pred: impl Fn(&Family) -> bool) -> Vec<SecretHash> {
        let mut revoked = HashSet::new();
        for f in self.families.borrow_mut().values_mut() {
            if pred(f) && f.revoked_at_s.is_none() {
                f.revoked_at_s = Some(now_s);
                revoked.insert(f.family_id.clone());
            }
        }
        self.tokens
            .borrow()
            .values()
            .filter(|t| {
                revoked.contains(&t.family_id)
                    && t.kind == TokenKind::Access
                    && t.state == TokenState::Active
                    && t.expires_at_s.is_none_or(|e| e > now_s)
            })
            .map(|t| t.hash.clone())
            .collect()
    }

    fn insert_tokens(&self, tokens: &[TokenRecord]) {
        let mut map = self.tokens.borrow_mut();
        for t in tokens {
            map.insert(t.hash.0.clone(), t.clone());
        }
    }

    /// Replaces the family's web sessions by `sids`.
    fn set_web_sessions(&self, family_id: &str, sids: &[SecretHash]) {
        let mut map = self.web_sessions.borrow_mut();
        map.retain(|_, f| f != family_id);
        for s in sids {
            map.insert(s.0.clone(), family_id.to_owned());
        }
    }

    /// Whether the user may still be issued tokens for what they authenticated at
    /// `user_valid_at_ms` (the shards' epochs, here read off the user).
    fn user_valid(&self, user_id: &str, user_valid_at_ms: u64) -> bool {
        self.users
            .borrow()
            .get(user_id)
            .is_some_and(|u| u.active && u.sessions_valid_from_ms <= user_valid_at_ms)
    }
}

impl SettingsStore for MemoryStore {
    async fn load_settings(&self) -> Result<Option<OrgSettings>, StoreError> {
        Ok(self.settings.borrow().clone())
    }
    async fn init_settings(&self, initial: &OrgSettings) -> Result<OrgSettings, StoreError> {
        Ok(self
            .settings
            .borrow_mut()
            .get_or_insert_with(|| initial.clone())
            .clone())
    }
    async fn save_settings(&self, settings: &OrgSettings) -> Result<(), StoreError> {
        *self.settings.borrow_mut() = Some(settings.clone());
        Ok(())
    }
}

impl AppStore for MemoryStore {
    async fn create_app(&self, app: &App) -> Result<(), StoreError> {
        let mut apps = self.apps.borrow_mut();
        if apps.contains_key(&app.client_id) {
            return Err(StoreError::Conflict("client_id already exists".into()));
        }
        apps.insert(app.client_id.clone(), app.clone());
        Ok(())
    }
    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        Ok(self.apps.borrow().get(client_id).cloned())
    }
    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        Ok(self.apps.borrow().values().cloned().collect())
    }
    async fn update_app(&self, app: &App) -> Result<bool, StoreError> {
        let mut apps = self.apps.borrow_mut();
        match apps.get_mut(&app.client_id) {
            Some(stored) => {
                let secret_hash = stored.secret_hash.clone();
                *stored = App {
                    secret_hash,
                    ..app.clone()
                };
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn update_registered_app(
        &self,
        app: &App,
        current: &SecretHash,
    ) -> Result<bool, StoreError> {
        let stored_hash = self
            .apps
            .borrow()
            .get(&app.client_id)
            .and_then(|a| a.registration.as_ref()?.access_token_hash.clone());
        if stored_hash.as_ref() != Some(current) {
            return Ok(false);
        }
        self.update_app(app).await
    }
    async fn find_registered_app(
        &self,
        client_id: &str,
        token_hash: &SecretHash,
    ) -> Result<Option<App>, StoreError> {
        Ok(self.apps.borrow().get(client_id).cloned().filter(|a| {
            a.registration
                .as_ref()
                .and_then(|r| r.access_token_hash.as_ref())
                == Some(token_hash)
        }))
    }
    async fn rotate_app_secret(
        &self,
        client_id: &str,
        hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        Ok(match self.apps.borrow_mut().get_mut(client_id) {
            Some(app) => {
                app.secret_hash = hash.clone();
                true
            }
            None => false,
        })
    }
    async fn origin_allowed(&self, origin: &str) -> Result<bool, StoreError> {
        Ok(self
            .apps
            .borrow()
            .values()
            .any(|a| a.policy.allowed_origins.iter().any(|o| o == origin)))
    }
    async fn delete_app(&self, client_id: &str, now_s: u64) -> Result<bool, StoreError> {
        let existed = self.apps.borrow_mut().remove(client_id).is_some();
        self.grants.borrow_mut().retain(|(c, _), _| c != client_id);
        let _ = self.revoke_families_where(now_s, |f| f.client_id == client_id);
        Ok(existed)
    }
}

impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut users = self.users.borrow_mut();
        if users
            .values()
            .any(|u| u.username.eq_ignore_ascii_case(&user.username))
        {
            return Err(StoreError::Conflict("username already exists".into()));
        }
        users.insert(user.user_id.clone(), user.clone());
        Ok(())
    }
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users.borrow().get(user_id).cloned())
    }
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .users
            .borrow()
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .cloned())
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.users.borrow().values().cloned().collect())
    }
    async fn update_user(
        &self,
        user: &User,
        revoke_tokens_at_s: Option<u64>,
    ) -> Result<bool, StoreError> {
        let found = match self.users.borrow_mut().get_mut(&user.user_id) {
            Some(stored) => {
                *stored = user.clone();
                true
            }
            None => false,
        };
        if let (true, Some(now_s)) = (found, revoke_tokens_at_s) {
            let _ = self.revoke_families_where(now_s, |f| f.user_id == user.user_id);
        }
        Ok(found)
    }
}

impl GrantStore for MemoryStore {
    async fn app_user_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<AppUserGrant>, StoreError> {
        Ok(self
            .grants
            .borrow()
            .get(&(client_id.to_owned(), user_id.to_owned()))
            .cloned())
    }
    async fn user_with_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<(User, Option<AppUserGrant>)>, StoreError> {
        let Some(user) = self.get_user(user_id).await? else {
            return Ok(None);
        };
        Ok(Some((user, self.app_user_grant(client_id, user_id).await?)))
    }
    async fn preauthorize(&self, client_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.grants
            .borrow_mut()
            .entry((client_id.to_owned(), user_id.to_owned()))
            .or_default()
            .preauthorized = true;
        Ok(())
    }
    async fn record_approval(
        &self,
        client_id: &str,
        user_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        self.grants
            .borrow_mut()
            .entry((client_id.to_owned(), user_id.to_owned()))
            .or_default()
            .approved_scopes = Some(scopes.to_vec());
        Ok(())
    }
}

impl RegistrationTokenStore for MemoryStore {
    async fn create_registration_token(
        &self,
        key: &TokenKey,
        expires_at_s: u64,
        max_uses: Option<u32>,
    ) -> Result<(), StoreError> {
        if key.route.is_none() {
            return Err(StoreError::Backend(
                "registration token without a route".into(),
            ));
        }
        self.registration_tokens
            .borrow_mut()
            .insert(key.hash.0.clone(), (expires_at_s, max_uses));
        Ok(())
    }
    async fn use_registration_token(&self, key: &TokenKey, now_s: u64) -> Result<bool, StoreError> {
        let mut tokens = self.registration_tokens.borrow_mut();
        match tokens.get_mut(&key.hash.0) {
            Some((expires, left)) if *expires > now_s && *left != Some(0) => {
                if let Some(n) = left {
                    *n -= 1;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl ResourceStore for MemoryStore {
    async fn create_resource(&self, resource: &ProtectedResource) -> Result<(), StoreError> {
        let mut all = self.resources.borrow_mut();
        if all.values().any(|r| r.uri == resource.uri) {
            return Err(StoreError::Conflict(
                "a resource with this uri exists".into(),
            ));
        }
        all.insert(resource.resource_id.clone(), resource.clone());
        Ok(())
    }
    async fn list_resources(&self) -> Result<Vec<ProtectedResource>, StoreError> {
        Ok(self.resources.borrow().values().cloned().collect())
    }
    async fn find_resource(&self, uri: &str) -> Result<Option<ProtectedResource>, StoreError> {
        Ok(self
            .resources
            .borrow()
            .values()
            .find(|r| r.uri == uri)
            .cloned())
    }
    async fn delete_resource(&self, resource_id: &str) -> Result<bool, StoreError> {
        Ok(self.resources.borrow_mut().remove(resource_id).is_some())
    }
}

impl CodeStore for MemoryStore {
    async fn put_code(&self, hash: &SecretHash, code: &CodeGrant) -> Result<(), StoreError> {
        self.codes.borrow_mut().insert(hash.0.clone(), code.clone());
        Ok(())
    }
    async fn get_code(&self, hash: &SecretHash) -> Result<Option<CodeGrant>, StoreError> {
        Ok(self.codes.borrow().get(&hash.0).cloned())
    }
}

impl SessionStore for MemoryStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> Result<(), StoreError> {
        self.sessions
            .borrow_mut()
            .insert(hash.0.clone(), session.clone());
        Ok(())
    }
    async fn get_session(&self, hash: &SecretHash) -> Result<Option<Session>, StoreError> {
        Ok(self.sessions.borrow().get(&hash.0).cloned())
    }
}

impl InteractionStore for MemoryStore {
    async fn put_interaction(
        &self,
        id_hash: &SecretHash,
        interaction: &Interaction,
    ) -> Result<(), StoreError> {
        self.interactions
            .borrow_mut()
            .insert(id_hash.0.clone(), interaction.clone());
        Ok(())
    }
    async fn get_interaction(
        &self,
        id_hash: &SecretHash,
    ) -> Result<Option<Interaction>, StoreError> {
        Ok(self.interactions.borrow().get(&id_hash.0).cloned())
    }
}

impl TokenStore for MemoryStore {
    async fn redeem_code(
        &self,
        code_hash: &SecretHash,
        issue: &Issue,
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        self.shard_up(Route::of_key(&issue.family.family_id))?;
        if self
            .redeemed_codes
            .borrow_mut()
            .insert(code_hash.0.clone(), issue.family.created_at_s)
            .is_some()
        {
            return Ok(Redemption::Replayed);
        }
        Ok(if self.start_family(issue, user_valid_at_ms).await? {
            Redemption::Issued
        } else {
            Redemption::UserInvalid
        })
    }
    async fn start_family(&self, issue: &Issue, user_valid_at_ms: u64) -> Result<bool, StoreError> {
        self.shard_up(Route::of_key(&issue.family.family_id))?;
        if !self.user_valid(&issue.family.user_id, user_valid_at_ms) {
            return Ok(false);
        }
        self.families
            .borrow_mut()
            .insert(issue.family.family_id.clone(), issue.family.clone());
        self.insert_tokens(&issue.tokens);
        self.set_web_sessions(&issue.family.family_id, &issue.web_sessions);
        Ok(true)
    }
    async fn find_web_session(&self, key: &TokenKey) -> Result<Option<Family>, StoreError> {
        self.shard_up(key.route)?;
        let family_id = self.web_sessions.borrow().get(&key.hash.0).cloned();
        Ok(family_id
            .filter(|f| key.route.is_some() && Route::of_key(f) == key.route)
            .and_then(|f| self.families.borrow().get(&f).cloned()))
    }
    async fn find_token(&self, key: &TokenKey) -> Result<Option<FoundToken>, StoreError> {
        self.token_reads.set(self.token_reads.get() + 1);
        self.shard_up(key.route)?;
        let Some(token) = self.routed_token(key) else {
            return Ok(None);
        };
        let hash = &key.hash;
        let family = self.families.borrow().get(&token.family_id).cloned();
        let rotated_at_ms = self.rotated.borrow().get(&hash.0).copied();
        Ok(family.map(|family| FoundToken {
            user: self
                .users
                .borrow()
                .get(&family.user_id)
                .filter(|u| u.active)
                .map(UserClaims::from),
            token,
            family,
            rotated_at_ms,
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
        self.shard_up(Route::of_key(family_id))?;
        if let Some(&rotated_at_ms) = self.rotated.borrow().get(&old.0) {
            return Ok(Rotation::Reused { rotated_at_ms });
        }
        if !self.family_live(family_id) {
            return Ok(Rotation::Revoked);
        }
        self.rotated.borrow_mut().insert(old.0.clone(), now_ms);
        if let Some(t) = self.tokens.borrow_mut().get_mut(&old.0) {
            t.state = TokenState::Rotated;
        }
        self.extend_family(family_id, tokens, web_sessions, now_ms)
            .await?;
        Ok(Rotation::Rotated)
    }
    async fn extend_family(
        &self,
        family_id: &str,
        tokens: &[TokenRecord],
        web_sessions: Option<&[SecretHash]>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.shard_up(Route::of_key(family_id))?;
        if !self.family_live(family_id) {
            return Ok(false);
        }
        if let Some(f) = self.families.borrow_mut().get_mut(family_id) {
            f.last_used_at_ms = now_ms;
        }
        self.insert_tokens(tokens);
        if let Some(sids) = web_sessions {
            self.set_web_sessions(family_id, sids);
        }
        Ok(true)
    }
    async fn revoke_family(
        &self,
        family_id: &str,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        self.shard_up(Route::of_key(family_id))?;
        Ok(self.revoke_families_where(now_s, |f| f.family_id == family_id))
    }
    async fn revoke_token(
        &self,
        key: &TokenKey,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        let hash = &key.hash;
        self.shard_up(key.route)?;
        match self.routed_token(key) {
            Some(t) if t.kind == TokenKind::Refresh => {
                self.revoke_family(&t.family_id, now_s).await
            }
            Some(_) => {
                if let Some(t) = self.tokens.borrow_mut().get_mut(&hash.0) {
                    t.state = TokenState::Revoked;
                }
                Ok(vec![hash.clone()])
            }
            // A hybrid web session's `sid`: revoking it ends its family.
            None => match self.find_web_session(key).await? {
                Some(f) => self.revoke_family(&f.family_id, now_s).await,
                None => Ok(vec![]),
            },
        }
    }
    async fn set_user_claims(&self, _: &str, _: &UserClaims) -> Result<(), StoreError> {
        // The memory store reads the user's claims from the user at every lookup.
        Ok(())
    }
    async fn unexpired_access_tokens(
        &self,
        user_id: &str,
        now_s: u64,
    ) -> Result<Vec<(TokenRecord, Family)>, StoreError> {
        let families = self.families.borrow();
        Ok(self
            .tokens
            .borrow()
            .values()
            .filter(|t| {
                t.kind == TokenKind::Access
                    && t.state != TokenState::Revoked
                    && t.expires_at_s.is_none_or(|e| e > now_s)
            })
            .filter_map(|t| {
                let f = families.get(&t.family_id)?;
                (f.user_id == user_id).then(|| (t.clone(), f.clone()))
            })
            .collect())
    }
    async fn purge(&self, cutoffs: &Cutoffs) -> Result<Purged, StoreError> {
        Ok(self.purge_now(cutoffs))
    }
}

impl MemoryStore {
    /// The token `key` names, if the route it carries is its family's (as a sharded store
    /// would look only in the shard the route names).
    fn routed_token(&self, key: &TokenKey) -> Option<TokenRecord> {
        let token = self.tokens.borrow().get(&key.hash.0).cloned()?;
        (key.route.is_some() && key.route == Route::of_key(&token.family_id)).then_some(token)
    }

    fn family_live(&self, family_id: &str) -> bool {
        self.families
            .borrow()
            .get(family_id)
            .is_some_and(|f| f.revoked_at_s.is_none())
    }

    fn purge_now(&self, c: &Cutoffs) -> Purged {
        let limit = c.limit as usize;
        let mut purged = Purged::default();
        let expired: Vec<String> = self
            .tokens
            .borrow()
            .values()
            .filter(|t| t.kind == TokenKind::Access && t.expires_at_s.is_some_and(|e| e <= c.now_s))
            .map(|t| t.hash.0.clone())
            .take(limit)
            .collect();
        purged.access_tokens = expired.len();
        self.tokens.borrow_mut().retain(|h, _| !expired.contains(h));
        let usable = |family_id: &str| {
            self.tokens.borrow().values().any(|t| {
                t.family_id == family_id
                    && (t.kind == TokenKind::Refresh || t.expires_at_s.is_some_and(|e| e > c.now_s))
            })
        };
        let mut gone: Vec<String> = self
            .families
            .borrow()
            .values()
            .filter(|f| {
                f.revoked_at_s
                    .is_some_and(|r| r < c.family_revoked_before_s)
                    || !usable(&f.family_id)
            })
            .map(|f| f.family_id.clone())
            .collect();
        gone.sort();
        gone.truncate(limit);
        purged.families = gone.len();
        let hashes: HashSet<String> = self
            .tokens
            .borrow()
            .values()
            .filter(|t| gone.contains(&t.family_id))
            .map(|t| t.hash.0.clone())
            .collect();
        self.rotated.borrow_mut().retain(|h, _| !hashes.contains(h));
        self.tokens.borrow_mut().retain(|h, _| !hashes.contains(h));
        self.families
            .borrow_mut()
            .retain(|id, _| !gone.contains(id));
        let old: Vec<String> = self
            .redeemed_codes
            .borrow()
            .iter()
            .filter(|(_, at)| **at < c.code_redeemed_before_s)
            .map(|(h, _)| h.clone())
            .take(limit)
            .collect();
        purged.code_redemptions = old.len();
        self.redeemed_codes
            .borrow_mut()
            .retain(|h, _| !old.contains(h));
        let before = self.registration_tokens.borrow().len();
        self.registration_tokens
            .borrow_mut()
            .retain(|_, (expires, _)| *expires > c.now_s);
        purged.registration_tokens = before - self.registration_tokens.borrow().len();
        let before = self.jti_markers.borrow().len();
        self.jti_markers
            .borrow_mut()
            .retain(|_, expires| *expires > c.now_s);
        purged.jti_markers = before - self.jti_markers.borrow().len();
        purged.device_codes = self.purge_devices(
            c.now_s
                .saturating_sub(crate::core::oauth::device::DEVICE_TTL_S),
            limit,
        );
        purged
    }

    /// Whether a redemption marker for this code is still held.
    pub fn code_redemption_held(&self, code_hash: &SecretHash) -> bool {
        self.redeemed_codes.borrow().contains_key(&code_hash.0)
    }

    /// Number of token families held.
    pub fn family_count(&self) -> usize {
        self.families.borrow().len()
    }
}

impl AccessCopyStore for MemoryStore {
    async fn put_access_copy(
        &self,
        hash: &SecretHash,
        copy: &AccessCopy,
    ) -> Result<(), StoreError> {
        if self.copy_writes_fail.get() {
            return Err(StoreError::Backend("KV is down".into()));
        }
        self.access_copies
            .borrow_mut()
            .insert(hash.0.clone(), copy.clone());
        Ok(())
    }
    async fn get_access_copy(&self, hash: &SecretHash) -> Result<Option<AccessCopy>, StoreError> {
        Ok(self.access_copies.borrow().get(&hash.0).cloned())
    }
    async fn drop_access_copies(&self, hashes: &[SecretHash]) -> Result<(), StoreError> {
        let mut copies = self.access_copies.borrow_mut();
        for h in hashes {
            copies.remove(&h.0);
        }
        Ok(())
    }
}

impl RateLimiter for MemoryStore {
    async fn allow(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let mut attempts = self.attempts.borrow_mut();
        let n = attempts.entry((limit, key.to_owned())).or_default();
        *n += 1;
        Ok(*n
            <= match limit {
                Limit::Login => MEMORY_LOGIN_LIMIT,
                Limit::LoginIp => MEMORY_LOGIN_IP_LIMIT,
                Limit::PasswordGrant => MEMORY_PASSWORD_GRANT_LIMIT,
                Limit::UserCode => MEMORY_USER_CODE_LIMIT,
                Limit::Registration => MEMORY_REGISTRATION_LIMIT,
                Limit::ClientAuth => MEMORY_CLIENT_AUTH_LIMIT,
            })
    }
}
