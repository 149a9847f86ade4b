//! The registry in D1: org settings, connected apps, users, app-user grants. Table map in
//! `docs/storage.md`; schema in `migrations/`. Deleting an app and ending a user's tokens fan
//! out to the shards first (`shards.rs`), then change D1: a shard that fails stops the change
//! before anything in D1 says it happened.

use serde::Deserialize;

use super::now_ms;
use super::store::{backend, changes, Arg, EdgeStore};
use crate::core::cache::{TtlCache, ADMIN_STATE_TTL_MS};
use crate::core::model::{App, OrgSettings, User};
use crate::core::secret::SecretHash;
use crate::core::storage::{
    AccessCopyStore, AppStore, AppUserGrant, GrantStore, SettingsStore, StoreError, UserStore,
};

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(backend)
}

#[derive(Deserialize)]
struct SettingsRow {
    org_id: String,
    allow_username_password_flow: i64,
    allow_user_agent_flow: i64,
    allow_code_credentials_flow: i64,
    require_pkce: i64,
    #[serde(default)]
    open_registration: i64,
    #[serde(default)]
    metadata_document_prefixes: Option<String>,
    /// `shard_layout.high_water`, read with the settings (`shards.rs`).
    #[serde(default)]
    high_water: Option<u16>,
}

impl From<SettingsRow> for OrgSettings {
    fn from(r: SettingsRow) -> Self {
        OrgSettings {
            org_id: r.org_id,
            allow_username_password_flow: r.allow_username_password_flow != 0,
            allow_user_agent_flow: r.allow_user_agent_flow != 0,
            allow_code_credentials_flow: r.allow_code_credentials_flow != 0,
            require_pkce: r.require_pkce != 0,
            open_registration: r.open_registration != 0,
            client_id_metadata_document_prefixes: r
                .metadata_document_prefixes
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default(),
        }
    }
}

thread_local! {
    /// The org id never changes once created: every settings read refreshes this per-isolate
    /// copy, and `org_id()` then needs no round trip.
    static ORG_ID: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// Isolate caches of admin state (`core/cache.rs`): changes made here are forgotten at
    /// once, others show within `ADMIN_STATE_TTL_MS`.
    static SETTINGS: TtlCache<Option<OrgSettings>> = TtlCache::new(ADMIN_STATE_TTL_MS);
    static APPS: TtlCache<Option<App>> = TtlCache::new(ADMIN_STATE_TTL_MS);
    static ORIGINS: TtlCache<bool> = TtlCache::new(ADMIN_STATE_TTL_MS);
}

/// An app changed here: the next read of it, and of any CORS origin, goes to D1.
fn app_changed(client_id: &str) {
    APPS.with(|c| c.forget(client_id));
    ORIGINS.with(TtlCache::clear);
}

const SETTINGS_COLUMNS: &str = "org_id, allow_username_password_flow, allow_user_agent_flow, allow_code_credentials_flow, require_pkce, open_registration, metadata_document_prefixes";

impl SettingsStore for EdgeStore {
    async fn load_settings(&self) -> Result<Option<OrgSettings>, StoreError> {
        if let Some(cached) = SETTINGS.with(|c| c.get("", now_ms())) {
            return Ok(cached);
        }
        let row: Option<SettingsRow> = self
            .first(
                &format!("SELECT {SETTINGS_COLUMNS}, (SELECT high_water FROM shard_layout WHERE id = 1) AS high_water FROM settings WHERE id = 1"),
                &[],
            )
            .await?;
        if let Some(r) = &row {
            self.layout_seen(r.high_water).await?;
        }
        let settings: Option<OrgSettings> = row.map(Into::into);
        if let Some(s) = &settings {
            ORG_ID.with(|c| *c.borrow_mut() = Some(s.org_id.clone()));
            SETTINGS.with(|c| c.put("", settings.clone(), now_ms()));
        }
        Ok(settings)
    }
    async fn init_settings(&self, s: &OrgSettings) -> Result<OrgSettings, StoreError> {
        // INSERT OR IGNORE: when two first requests race, the first org id stays.
        self.exec(
            &format!(
                "INSERT OR IGNORE INTO settings (id, {SETTINGS_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?)"
            ),
            &[
                Arg::Text(&s.org_id),
                Arg::Int(s.allow_username_password_flow.into()),
                Arg::Int(s.allow_user_agent_flow.into()),
                Arg::Int(s.allow_code_credentials_flow.into()),
                Arg::Int(s.require_pkce.into()),
                Arg::Int(s.open_registration.into()),
                Arg::Text(&json(&s.client_id_metadata_document_prefixes)?),
            ],
        )
        .await?;
        self.load_settings()
            .await?
            .ok_or_else(|| StoreError::Backend("settings row missing after insert".into()))
    }
    async fn org_id(&self) -> Result<Option<String>, StoreError> {
        if let Some(id) = ORG_ID.with(|c| c.borrow().clone()) {
            return Ok(Some(id));
        }
        Ok(self.load_settings().await?.map(|s| s.org_id))
    }
    async fn save_settings(&self, s: &OrgSettings) -> Result<(), StoreError> {
        SETTINGS.with(|c| c.forget(""));
        self.exec(
            "UPDATE settings SET allow_username_password_flow = ?, allow_user_agent_flow = ?, allow_code_credentials_flow = ?, require_pkce = ?, open_registration = ?, metadata_document_prefixes = ? WHERE id = 1",
            &[
                Arg::Int(s.allow_username_password_flow.into()),
                Arg::Int(s.allow_user_agent_flow.into()),
                Arg::Int(s.allow_code_credentials_flow.into()),
                Arg::Int(s.require_pkce.into()),
                Arg::Int(s.open_registration.into()),
                Arg::Text(&json(&s.client_id_metadata_document_prefixes)?),
            ],
        )
        .await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct AppRow {
    client_id: String,
    secret_hash: String,
    name: String,
    callback_urls: String,
    scopes: String,
    policy: String,
    created_at: u64,
    #[serde(default)]
    registration: Option<String>,
}

impl AppRow {
    fn into_app(self) -> Result<App, StoreError> {
        Ok(App {
            client_id: self.client_id,
            secret_hash: SecretHash(self.secret_hash),
            name: self.name,
            callback_urls: parse(&self.callback_urls)?,
            scopes: parse(&self.scopes)?,
            policy: parse(&self.policy)?,
            created_at: self.created_at,
            registration: self.registration.as_deref().map(parse).transpose()?,
        })
    }
}

const APP_COLUMNS: &str =
    "client_id, secret_hash, name, callback_urls, scopes, policy, created_at, registration";

impl EdgeStore {
    /// Replaces an app's name, callback URLs, scopes, policy and registration; with `token`,
    /// only while its registration access token hashes to it. One conditional statement at the
    /// primary: of concurrent updates with one token, the first replaces it and every other
    /// one finds it gone.
    async fn replace_app(&self, app: &App, token: Option<&SecretHash>) -> Result<bool, StoreError> {
        let reg = app.registration.as_ref().map(json).transpose()?;
        app_changed(&app.client_id);
        let condition = match token {
            Some(_) => " AND json_extract(registration, '$.access_token_hash') = ?",
            None => "",
        };
        let (callbacks, scopes, policy) = (
            json(&app.callback_urls)?,
            json(&app.scopes)?,
            json(&app.policy)?,
        );
        let mut args = vec![
            Arg::Text(&app.name),
            Arg::Text(&callbacks),
            Arg::Text(&scopes),
            Arg::Text(&policy),
            Arg::OptText(reg.as_deref()),
            Arg::Text(&app.client_id),
        ];
        args.extend(token.map(|t| Arg::Text(&t.0)));
        let n = self
            .exec(
                &format!("UPDATE apps SET name = ?, callback_urls = ?, scopes = ?, policy = ?, registration = ? WHERE client_id = ?{condition}"),
                &args,
            )
            .await?;
        Ok(n == 1)
    }
}

impl AppStore for EdgeStore {
    async fn create_app(&self, app: &App) -> Result<(), StoreError> {
        let reg = app.registration.as_ref().map(json).transpose()?;
        app_changed(&app.client_id);
        self.exec(
            &format!("INSERT INTO apps ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            &[
                Arg::Text(&app.client_id),
                Arg::Text(&app.secret_hash.0),
                Arg::Text(&app.name),
                Arg::Text(&json(&app.callback_urls)?),
                Arg::Text(&json(&app.scopes)?),
                Arg::Text(&json(&app.policy)?),
                Arg::Int(app.created_at),
                Arg::OptText(reg.as_deref()),
            ],
        )
        .await?;
        Ok(())
    }
    async fn get_app(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        if let Some(cached) = APPS.with(|c| c.get(client_id, now_ms())) {
            return Ok(cached);
        }
        let row: Option<AppRow> = self
            .first(
                &format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = ?"),
                &[Arg::Text(client_id)],
            )
            .await?;
        let app = row.map(AppRow::into_app).transpose()?;
        APPS.with(|c| c.put(client_id, app.clone(), now_ms()));
        Ok(app)
    }
    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let rows: Vec<AppRow> = self
            .all(
                &format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, client_id"),
                &[],
            )
            .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }
    async fn update_app(&self, app: &App) -> Result<bool, StoreError> {
        self.replace_app(app, None).await
    }
    async fn update_registered_app(
        &self,
        app: &App,
        current: &SecretHash,
    ) -> Result<bool, StoreError> {
        self.replace_app(app, Some(current)).await
    }
    async fn find_registered_app(
        &self,
        client_id: &str,
        token_hash: &SecretHash,
    ) -> Result<Option<App>, StoreError> {
        let row: Option<AppRow> = self
            .first(
                &format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = ? AND json_extract(registration, '$.access_token_hash') = ?"),
                &[Arg::Text(client_id), Arg::Text(&token_hash.0)],
            )
            .await?;
        row.map(AppRow::into_app).transpose()
    }
    async fn rotate_app_secret(
        &self,
        client_id: &str,
        hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        app_changed(client_id);
        let n = self
            .exec(
                "UPDATE apps SET secret_hash = ? WHERE client_id = ?",
                &[Arg::Text(&hash.0), Arg::Text(client_id)],
            )
            .await?;
        Ok(n == 1)
    }
    async fn origin_allowed(&self, origin: &str) -> Result<bool, StoreError> {
        if let Some(cached) = ORIGINS.with(|c| c.get(origin, now_ms())) {
            return Ok(cached);
        }
        let row: Option<serde_json::Value> = self
            .first(
                "SELECT 1 AS ok FROM apps, json_each(apps.policy, '$.allowed_origins') AS o WHERE o.value = ? LIMIT 1",
                &[Arg::Text(origin)],
            )
            .await?;
        ORIGINS.with(|c| c.put(origin, row.is_some(), now_ms()));
        Ok(row.is_some())
    }
    async fn delete_app(&self, client_id: &str, now_s: u64) -> Result<bool, StoreError> {
        app_changed(client_id);
        let live = self
            .revoke_subject(None, Some(client_id), now_ms(), now_s)
            .await?;
        // Elsewhere the copies die with the app lookup too (isolate caches last 30 s).
        self.drop_access_copies(&live).await?;
        let results = self
            .batch(vec![
                self.stmt(
                    "DELETE FROM apps WHERE client_id = ?",
                    &[Arg::Text(client_id)],
                )?,
                self.stmt(
                    "DELETE FROM app_user_grants WHERE client_id = ?",
                    &[Arg::Text(client_id)],
                )?,
            ])
            .await?;
        Ok(results.first().map(changes) == Some(1))
    }
}

#[derive(Deserialize)]
struct UserRow {
    user_id: String,
    username: String,
    password_hash: String,
    email: String,
    name: String,
    active: i64,
    created_at: u64,
    sessions_valid_from_ms: u64,
    /// The user's grant to an app, when the query joins it (`user_with_grant`).
    g_preauthorized: Option<i64>,
    g_approved_scopes: Option<String>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            user_id: r.user_id,
            username: r.username,
            password_hash: r.password_hash,
            email: r.email,
            name: r.name,
            active: r.active != 0,
            created_at: r.created_at,
            sessions_valid_from_ms: r.sessions_valid_from_ms,
        }
    }
}

const USER_COLUMNS: &str =
    "user_id, username, password_hash, email, name, active, created_at, sessions_valid_from_ms";

impl UserStore for EdgeStore {
    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        let result = self
            .exec(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    Arg::Text(&u.user_id),
                    Arg::Text(&u.username),
                    Arg::Text(&u.password_hash),
                    Arg::Text(&u.email),
                    Arg::Text(&u.name),
                    Arg::Int(u.active.into()),
                    Arg::Int(u.created_at),
                    Arg::Int(u.sessions_valid_from_ms),
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // The UNIQUE index on username refused it (a race with another creation).
            Err(e) if self.find_user_by_username(&u.username).await?.is_some() => {
                let _ = e;
                Err(StoreError::Conflict(format!(
                    "username already exists: {}",
                    u.username
                )))
            }
            Err(e) => Err(e),
        }
    }
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .first(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"),
                &[Arg::Text(user_id)],
            )
            .await?;
        Ok(row.map(Into::into))
    }
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .first(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?"),
                &[Arg::Text(username)],
            )
            .await?;
        Ok(row.map(Into::into))
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = self
            .all(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, user_id"),
                &[],
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
    async fn update_user(
        &self,
        u: &User,
        revoke_tokens_at_s: Option<u64>,
    ) -> Result<bool, StoreError> {
        if let Some(now_s) = revoke_tokens_at_s {
            // Every shard first: its families end, and codes minted before the change are
            // refused there from now on.
            self.revoke_subject(Some(&u.user_id), None, u.sessions_valid_from_ms, now_s)
                .await?;
        }
        let changed = self.exec(
            "UPDATE users SET password_hash = ?, email = ?, name = ?, active = ?, sessions_valid_from_ms = ? WHERE user_id = ?",
            &[
                Arg::Text(&u.password_hash),
                Arg::Text(&u.email),
                Arg::Text(&u.name),
                Arg::Int(u.active.into()),
                Arg::Int(u.sessions_valid_from_ms),
                Arg::Text(&u.user_id),
            ],
        )
        .await?;
        Ok(changed == 1)
    }
}

#[derive(Deserialize)]
struct GrantRow {
    preauthorized: i64,
    approved_scopes: Option<String>,
}

impl GrantRow {
    fn into_grant(self) -> Result<AppUserGrant, StoreError> {
        Ok(AppUserGrant {
            preauthorized: self.preauthorized != 0,
            approved_scopes: self.approved_scopes.as_deref().map(parse).transpose()?,
        })
    }
}

impl GrantStore for EdgeStore {
    async fn app_user_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<AppUserGrant>, StoreError> {
        let row: Option<GrantRow> = self
            .first(
                "SELECT preauthorized, approved_scopes FROM app_user_grants WHERE client_id = ? AND user_id = ?",
                &[Arg::Text(client_id), Arg::Text(user_id)],
            )
            .await?;
        row.map(GrantRow::into_grant).transpose()
    }
    async fn user_with_grant(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Option<(User, Option<AppUserGrant>)>, StoreError> {
        let row: Option<UserRow> = self
            .first(
                "SELECT u.user_id, u.username, u.password_hash, u.email, u.name, u.active, u.created_at, u.sessions_valid_from_ms, \
                 g.preauthorized AS g_preauthorized, g.approved_scopes AS g_approved_scopes \
                 FROM users u LEFT JOIN app_user_grants g ON g.client_id = ? AND g.user_id = u.user_id WHERE u.user_id = ?",
                &[Arg::Text(client_id), Arg::Text(user_id)],
            )
            .await?;
        let Some(mut r) = row else {
            return Ok(None);
        };
        let grant = match r.g_preauthorized.take() {
            Some(preauthorized) => Some(
                GrantRow {
                    preauthorized,
                    approved_scopes: r.g_approved_scopes.take(),
                }
                .into_grant()?,
            ),
            None => None,
        };
        let user = User::from(r);
        Ok(Some((user, grant)))
    }
    async fn preauthorize(&self, client_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO app_user_grants (client_id, user_id, preauthorized) VALUES (?, ?, 1) ON CONFLICT (client_id, user_id) DO UPDATE SET preauthorized = 1",
            &[Arg::Text(client_id), Arg::Text(user_id)],
        )
        .await?;
        Ok(())
    }
    async fn record_approval(
        &self,
        client_id: &str,
        user_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        let scopes = json(&scopes)?;
        self.exec(
            "INSERT INTO app_user_grants (client_id, user_id, preauthorized, approved_scopes) VALUES (?, ?, 0, ?) ON CONFLICT (client_id, user_id) DO UPDATE SET approved_scopes = excluded.approved_scopes",
            &[Arg::Text(client_id), Arg::Text(user_id), Arg::Text(&scopes)],
        )
        .await?;
        Ok(())
    }
}
