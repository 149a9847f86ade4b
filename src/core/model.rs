//! The records the server keeps: connected apps, users, org settings (CONTRACT §4).

use serde::{Deserialize, Serialize};

use super::secret::SecretHash;

/// How long refresh tokens of an app stay usable (salesforce-reference.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RefreshTokenPolicy {
    Named(NamedRefreshPolicy),
    Lifetime { lifetime_s: u64 },
    Inactivity { inactivity_s: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedRefreshPolicy {
    /// Valid until revoked (Salesforce's default).
    Infinite,
    /// "Expire immediately": no refresh token is issued.
    Zero,
}

impl Default for RefreshTokenPolicy {
    fn default() -> Self {
        Self::Named(NamedRefreshPolicy::Infinite)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermittedUsers {
    /// "All users may self-authorize": consent page on first use.
    #[default]
    AllSelfAuthorize,
    /// "Admin approved users are pre-authorized": only pre-authorized users, no consent page.
    AdminApproved,
}

/// Token lifetimes and switches of a connected app. Defaults follow Salesforce's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// Unknown fields are refused by the admin API before this is deserialized.
#[serde(default)]
pub struct AppPolicy {
    pub pkce_required: bool,
    pub secret_required_web_server: bool,
    pub secret_required_refresh: bool,
    pub permitted_users: PermittedUsers,
    pub refresh_token_policy: RefreshTokenPolicy,
    pub rotate_refresh_tokens: bool,
    pub access_token_ttl_s: u64,
    pub id_token_ttl_s: u64,
    pub jwt_access_tokens: bool,
    pub client_credentials_user: Option<String>,
    pub certificate: Option<String>,
    pub asset_tokens: Option<AssetTokenPolicy>,
    pub allowed_origins: Vec<String>,
    /// Whether the device flow may be used with this app (Salesforce's "Enable for Device
    /// Flow"; default on).
    pub device_flow: bool,
    /// Seconds (0–60) during which a rotated-out refresh token presented again by its client
    /// gets a fresh pair instead of revoking the family, for clients that refresh in parallel.
    /// 0, the default, is Salesforce's rule: any reuse revokes the family.
    pub refresh_reuse_grace_s: u64,
    /// May introspect every client's tokens (an API gateway), not only its own (RFC 7662 §4
    /// leaves who may see what to the server).
    pub introspect_all_tokens: bool,
}

impl AppPolicy {
    /// Whether refresh rotates the refresh token. RFC 9700 §2.2.2: refresh tokens of public
    /// clients (no secret needed to refresh) MUST be sender-constrained or rotate.
    pub fn rotates(&self) -> bool {
        self.rotate_refresh_tokens || !self.secret_required_refresh
    }
}

impl Default for AppPolicy {
    fn default() -> Self {
        Self {
            pkce_required: false,
            secret_required_web_server: true,
            secret_required_refresh: true,
            permitted_users: PermittedUsers::default(),
            refresh_token_policy: RefreshTokenPolicy::default(),
            rotate_refresh_tokens: false,
            // Salesforce's default session timeout is 2 hours.
            access_token_ttl_s: 7200,
            // Salesforce's default ID token validity is 2 minutes (§0.6).
            id_token_ttl_s: 120,
            jwt_access_tokens: false,
            client_credentials_user: None,
            certificate: None,
            asset_tokens: None,
            allowed_origins: Vec::new(),
            device_flow: true,
            refresh_reuse_grace_s: 0,
            introspect_all_tokens: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetTokenPolicy {
    /// `aud` of the asset tokens: the services devices present them to.
    pub audiences: Vec<String>,
    /// Asset tokens' lifetime (Salesforce's `assetValidityPeriod`).
    pub ttl_s: u64,
    /// Public JWKs that sign the app's actor tokens (its devices' or its factory's keys).
    #[serde(default)]
    pub actor_keys: Vec<serde_json::Value>,
    /// Accept actor tokens signed by no registered key (`alg: none`, or signed only by the
    /// device key in their own `cnf.jwk`). Off by default.
    #[serde(default)]
    pub allow_unsigned: bool,
}

/// A connected app (an OAuth client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub client_id: String,
    /// SHA-256 of the consumer secret; the secret itself is shown once and never stored.
    pub secret_hash: SecretHash,
    pub name: String,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    pub policy: AppPolicy,
    pub created_at: u64,
    /// How a client registered itself (RFC 7591, or a client ID metadata document); `None`
    /// for apps an operator created.
    #[serde(default)]
    pub registration: Option<super::oauth::client_metadata::Registration>,
}

impl App {
    /// Whether the app may use `grant_type` at the token endpoint: a registered client only
    /// the grant types it registered (RFC 7591 §2), an operator's app every one.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.registration
            .as_ref()
            .is_none_or(|r| r.grant_types.iter().any(|g| g == grant_type))
    }
}

/// A user who can log in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub username: String,
    /// PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): algorithm, parameters and salt are
    /// recorded per hash so they can be raised later.
    pub password_hash: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub created_at: u64,
    /// Browser sessions begun before this instant are over: set when the password changes or
    /// the user is deactivated.
    #[serde(default)]
    pub sessions_valid_from_ms: u64,
}

/// Org-wide switches (CONTRACT §4; salesforce-reference.md §11.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgSettings {
    pub org_id: String,
    pub allow_username_password_flow: bool,
    pub allow_user_agent_flow: bool,
    pub allow_code_credentials_flow: bool,
    pub require_pkce: bool,
    /// RFC 7591 registration without an initial access token (throttled per address).
    #[serde(default)]
    pub open_registration: bool,
    /// URL prefixes a client ID metadata document must start with; empty: any.
    #[serde(default)]
    pub client_id_metadata_document_prefixes: Vec<String>,
}

impl OrgSettings {
    pub fn with_defaults(org_id: String) -> Self {
        Self {
            org_id,
            allow_username_password_flow: false,
            allow_user_agent_flow: true,
            allow_code_credentials_flow: false,
            require_pkce: false,
            open_registration: false,
            client_id_metadata_document_prefixes: Vec::new(),
        }
    }
}
