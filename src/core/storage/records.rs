//! Records held by the stores, beyond the admin-managed ones in `model.rs`.

use serde::{Deserialize, Serialize};

use crate::core::secret::SecretHash;

/// An admin pre-authorization and/or the scopes the user approved for an app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppUserGrant {
    pub preauthorized: bool,
    pub approved_scopes: Option<Vec<String>>,
}

/// What an authorization code stands for (RFC 6749 §4.1.2: bound to client and redirect URI;
/// RFC 7636 §4.4: to the PKCE challenge; OIDC Core §3.1.2.1: to the nonce).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub user_id: String,
    pub auth_time_s: u64,
    pub expires_at_s: u64,
    /// When the user authenticated (the session the code comes from began), to the millisecond:
    /// a password change or deactivation after it (`User::sessions_valid_from_ms`) kills the
    /// code, even one minted after the change from a stale read of the user.
    #[serde(default, alias = "issued_at_ms")]
    pub authenticated_at_ms: u64,
    /// Chosen when the code is minted, so a replay can revoke what the first redemption issued.
    pub family_id: String,
    /// The user's claims when the code was minted (minutes ago at most), for the ID token and
    /// the access token's edge copy: redemption then needs no read of the user. Whether the
    /// user may still have tokens is decided inside the redemption itself.
    #[serde(default)]
    pub user: Option<UserClaims>,
    /// RFC 8707: the resource the authorization request named, the audience of its tokens.
    #[serde(default)]
    pub resource: Option<String>,
}

/// What tokens say about a user: the claims of ID tokens, userinfo and introspection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    pub username: String,
    pub name: String,
    pub email: String,
    /// When the user was created (userinfo's `updated_at`).
    #[serde(default)]
    pub created_at_s: u64,
}

impl From<&crate::core::model::User> for UserClaims {
    fn from(u: &crate::core::model::User) -> Self {
        Self {
            username: u.username.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            created_at_s: u.created_at,
        }
    }
}

/// The edge-local copy of a live access token (KV, written when the token is issued): all that
/// validation (userinfo, introspection, the identity URL) needs, so it never reads D1. D1 stays
/// the record; a revocation drops the copy, a change to the user rewrites it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessCopy {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub created_at_s: u64,
    pub expires_at_s: u64,
    pub user: UserClaims,
    /// RFC 8707: the one resource the token is for (its `aud`); `None`: no resource named.
    #[serde(default)]
    pub resource: Option<String>,
}

impl AccessCopy {
    /// The copy of a stored access token (`None` for a token without expiry, i.e. not one).
    pub fn of(token: &TokenRecord, family: &Family, user: UserClaims) -> Option<Self> {
        Some(Self {
            family_id: family.family_id.clone(),
            client_id: family.client_id.clone(),
            user_id: family.user_id.clone(),
            scopes: token.scopes.clone(),
            created_at_s: token.created_at_s,
            expires_at_s: token.expires_at_s?,
            user,
            resource: family.resource.clone(),
        })
    }
}

/// A logged-in browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    /// For a session bridged from a hybrid app's web session (`/secur/frontdoor.jsp`): that
    /// web session, which must still be live (its family not revoked, not replaced by a
    /// `hybrid_refresh`) every time this browser session is used.
    #[serde(default)]
    pub web_session: Option<crate::core::storage::TokenKey>,
    pub auth_time_s: u64,
    /// When the session began, to the millisecond: it ends when the user's password changes or
    /// the user is deactivated (`User::sessions_valid_from_ms`).
    #[serde(default)]
    pub created_at_ms: u64,
    pub expires_at_s: u64,
}

/// A validated authorization request waiting for login and/or consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub request: crate::core::oauth::authz::AuthorizationRequest,
    /// Hash of the CSRF token embedded in the page's forms.
    pub csrf_hash: SecretHash,
    /// Hash of the browser cookie the interaction was started with (double-submit binding).
    pub browser_hash: SecretHash,
    /// Set once the user has logged in during this interaction.
    pub user_id: Option<String>,
    /// Their claims then, carried into the code so its redemption needs no read of the user.
    #[serde(default)]
    pub user_claims: Option<UserClaims>,
    pub auth_time_s: Option<u64>,
    /// When their session began, to the millisecond (see `CodeGrant::authenticated_at_ms`).
    #[serde(default)]
    pub session_started_ms: Option<u64>,
    /// Scopes the user approved for this app before (see `record_approval`).
    #[serde(default)]
    pub approved_scopes: Vec<String>,
    pub expires_at_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Issued → rotated | revoked (STYLE §9). A family revocation overrides every token's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Rotated,
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub hash: SecretHash,
    pub family_id: String,
    pub kind: TokenKind,
    /// Scopes of this token; an access token from a narrowing refresh holds fewer than its family.
    pub scopes: Vec<String>,
    pub created_at_s: u64,
    pub expires_at_s: Option<u64>,
    pub state: TokenState,
}

/// Everything issued from one authorization (a code redemption), refreshed or rotated since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub auth_time_s: u64,
    pub created_at_s: u64,
    /// The last refresh, to the millisecond, so an `inactivity_s` window is measured exactly.
    pub last_used_at_ms: u64,
    pub revoked_at_s: Option<u64>,
    /// RFC 8707: the resource every access token of the family is for, fixed at its start.
    #[serde(default)]
    pub resource: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FoundToken {
    pub token: TokenRecord,
    pub family: Family,
    /// When a refresh token was rotated out (its successor issued), to the millisecond.
    pub rotated_at_ms: Option<u64>,
    /// The claims of the family's user, kept with the family (`None` when the user is gone or
    /// inactive): a refresh needs no read of the user. A profile change rewrites them
    /// ([`super::TokenStore::set_user_claims`]); a deactivation revokes the family.
    pub user: Option<UserClaims>,
}

/// A new family with its first tokens, and the hybrid web sessions tied to it (hashes of
/// their `sid`s; empty outside the hybrid flows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub family: Family,
    /// The user's claims, kept with the family for its refreshes.
    pub user: UserClaims,
    pub tokens: Vec<TokenRecord>,
    pub web_sessions: Vec<SecretHash>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redemption {
    Issued,
    Replayed,
    /// The code was consumed, but its user is inactive or changed their password after it was
    /// minted: nothing was issued.
    UserInvalid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    Rotated,
    /// The token was rotated before, at this time: a second presentation.
    Reused {
        rotated_at_ms: u64,
    },
    /// The family was revoked between the lookup and the rotation: nothing was written.
    Revoked,
}

impl FoundToken {
    /// Usable right now: family not revoked, token neither rotated nor revoked nor expired.
    pub fn is_active(&self, now_s: u64) -> bool {
        self.family.revoked_at_s.is_none()
            && self.token.state == TokenState::Active
            && self.token.expires_at_s.is_none_or(|e| e > now_s)
    }
}

/// A device authorization (RFC 8628 §3.2, salesforce-reference.md §8): created when the device
/// asks, decided when a user approves or denies its user code, redeemed once by a poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The user code, normalized: 8 letters, no dash.
    pub user_code: String,
    pub expires_at_s: u64,
    /// Seconds the device must wait between polls; each `slow_down` adds 5.
    pub interval_s: u64,
    /// The family its tokens will belong to (its route is the device code's).
    pub family_id: String,
}

/// A user's answer to a device's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DeviceDecision {
    Approved {
        user_id: String,
        user: UserClaims,
        auth_time_s: u64,
        /// When the approving user's session began (a later password change refuses it).
        authenticated_at_ms: u64,
    },
    Denied,
}

/// What a poll finds (RFC 8628 §3.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DevicePoll {
    /// No such device code (or cleaned up long after it expired).
    Unknown,
    Pending,
    /// Polled sooner than the interval allows; the interval grew by 5 s.
    SlowDown,
    Expired,
    Decided {
        grant: Box<DeviceGrant>,
        decision: Box<DeviceDecision>,
    },
    /// Its tokens were issued already.
    Redeemed,
}

/// A device that received asset tokens (salesforce-reference.md §9): the app, the device id
/// (`did` of its actor token) and the user it is linked to. One per app and device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// `02i…` (Salesforce's Asset prefix), 18 characters.
    pub asset_id: String,
    pub client_id: String,
    pub device_id: String,
    pub name: String,
    pub serial_number: Option<String>,
    pub user_id: String,
    pub created_at_s: u64,
    /// Revoked assets get no new asset tokens, and their tokens introspect inactive.
    pub revoked_at_s: Option<u64>,
}

/// A protected resource tokens may be asked for (RFC 8707), registered by an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResource {
    pub resource_id: String,
    /// The resource indicator: an absolute URI without a fragment, compared exactly.
    pub uri: String,
    pub name: String,
    /// The scopes the resource understands (its RFC 9728 `scopes_supported`).
    pub scopes: Vec<String>,
    pub created_at_s: u64,
}
