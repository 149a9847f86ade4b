//! Scopes (salesforce-reference.md §13): requested ⊆ app scopes; omitted ⇒ all app scopes.

use super::error::{ErrorCode, OAuthError};

/// Every scope a connected app may hold.
pub const KNOWN_SCOPES: &[&str] = &[
    "address",
    "api",
    "cdp_api",
    "cdp_ingest_api",
    "chatbot_api",
    "chatter_api",
    "content",
    "custom_permissions",
    "eclair_api",
    "email",
    "forgot_password",
    "full",
    "id",
    "lightning",
    "offline_access",
    "openid",
    "pardot_api",
    "phone",
    "profile",
    "pwdless_login_api",
    "refresh_token",
    "user_registration_api",
    "visualforce",
    "wave_api",
    "web",
];

/// A validated, de-duplicated, ordered set of scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// RFC 6749 §3.3: space-delimited; an unknown or unregistered scope is `invalid_scope`.
    pub fn parse_requested(raw: Option<&str>, allowed: &[String]) -> Result<Self, OAuthError> {
        let Some(raw) = raw else {
            return Ok(Self::from_list(allowed));
        };
        let mut scopes: Vec<String> = Vec::new();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if !allowed.iter().any(|a| a == s) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope not allowed for this app: {s}"),
                ));
            }
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        }
        if scopes.is_empty() {
            return Ok(Self::from_list(allowed));
        }
        Ok(Self(scopes))
    }

    pub fn from_list(list: &[String]) -> Self {
        let mut v: Vec<String> = Vec::new();
        for s in list {
            if !v.contains(s) {
                v.push(s.clone());
            }
        }
        Self(v)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_subset_of(&self, other: &[String]) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Whether a refresh token may be issued (`refresh_token` and `offline_access` are synonyms).
    pub fn allows_refresh(&self) -> bool {
        self.contains("refresh_token") || self.contains("offline_access")
    }

    /// The set without `excluded`.
    pub fn without(&self, excluded: &[&str]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|s| !excluded.contains(&s.as_str()))
                .cloned()
                .collect(),
        )
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn joined(&self) -> String {
        self.0.join(" ")
    }
}

/// Checks a list of scopes for an app registration; returns the unknown ones.
pub fn unknown_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| !KNOWN_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Vec<String> {
        ["api", "refresh_token", "openid"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn omitted_scope_means_all_app_scopes() {
        assert_eq!(
            ScopeSet::parse_requested(None, &app()).unwrap().joined(),
            "api refresh_token openid"
        );
    }

    #[test]
    fn scope_outside_the_app_is_invalid_scope() {
        let e = ScopeSet::parse_requested(Some("api full"), &app()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn duplicates_collapse() {
        assert_eq!(
            ScopeSet::parse_requested(Some("api  api openid"), &app())
                .unwrap()
                .joined(),
            "api openid"
        );
    }
}
