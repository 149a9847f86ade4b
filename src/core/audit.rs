//! The audit trail: who logged in (or failed to), consented, was issued or revoked tokens, and
//! what the admin changed. Handlers note events in the request's [`Notes`]; the edge writes them
//! to D1 after the response has gone (`waitUntil`, one batch), so the trail never adds a round
//! trip before an answer. Events hold ids, outcomes and reasons, never a secret: no token, code,
//! password, client secret or username that failed to match (it may be a mistyped password).

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A password login on the login page (success or failure).
    Login,
    /// A user approved (or denied) an app's access.
    Consent,
    /// Tokens issued (token endpoint, user-agent and hybrid flows, asset tokens).
    Token,
    /// A token revoked at the revocation endpoint.
    Revoke,
    /// A change made through the admin API.
    Admin,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Login,
        Kind::Consent,
        Kind::Token,
        Kind::Revoke,
        Kind::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Consent => "consent",
            Kind::Token => "token",
            Kind::Revoke => "revoke",
            Kind::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One row of the trail (`audit_events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store (ascending); 0 until stored.
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted: `admin`, a user id, a client id, or `anonymous`.
    pub actor: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// The caller's address (`CF-Connecting-IP`), set by the edge for the whole request.
    pub ip: Option<String>,
    /// What happened, for people: a grant type, an error code, `POST /admin/apps`.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(kind: Kind, success: bool, actor: &str, detail: impl Into<String>) -> Self {
        Self {
            id: 0,
            at: 0,
            kind: kind.name().into(),
            outcome: if success { "success" } else { "failure" }.into(),
            actor: actor.into(),
            user_id: None,
            client_id: None,
            ip: None,
            detail: detail.into(),
        }
    }

    pub fn user(mut self, user_id: Option<&str>) -> Self {
        self.user_id = user_id.map(str::to_owned);
        self
    }

    pub fn client(mut self, client_id: Option<&str>) -> Self {
        self.client_id = client_id.map(str::to_owned);
        self
    }
}

/// What a request's handlers noted on the way: audit events, and for the request's log line
/// the grant type and client id (`edge` writes one JSON line per request).
#[derive(Debug, Default)]
pub struct Notes {
    events: RefCell<Vec<AuditEvent>>,
    grant: RefCell<Option<String>>,
    client_id: RefCell<Option<String>>,
}

impl Notes {
    /// Notes `event` at `now_s`; its client id (when it has one) is the request's too.
    pub fn event(&self, now_s: u64, mut event: AuditEvent) {
        event.at = now_s;
        if let Some(c) = &event.client_id {
            self.client(c);
        }
        self.events.borrow_mut().push(event);
    }

    pub fn grant(&self, grant: &str) {
        *self.grant.borrow_mut() = Some(grant.to_owned());
    }

    pub fn client(&self, client_id: &str) {
        *self.client_id.borrow_mut() = Some(client_id.to_owned());
    }

    pub fn grant_type(&self) -> Option<String> {
        self.grant.borrow().clone()
    }

    pub fn client_id(&self) -> Option<String> {
        self.client_id.borrow().clone()
    }

    /// The events noted, each stamped with the caller's address; leaves none behind.
    pub fn take_events(&self, ip: Option<&str>) -> Vec<AuditEvent> {
        let mut events = std::mem::take(&mut *self.events.borrow_mut());
        for e in &mut events {
            e.ip = ip.map(str::to_owned);
        }
        events
    }
}

/// Rows per page of `GET /admin/audit` by default, and at most.
pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 200;

/// How long events are kept before the cron removes them (`AUDIT_RETENTION_DAYS`).
pub const RETENTION_DAYS_DEFAULT: u64 = 90;

/// A query of the trail: newest first, `before` an event id (the previous page's `next`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since_s: Option<u64>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub kind: Option<String>,
    pub before_id: Option<u64>,
    pub limit: u32,
}

impl AuditQuery {
    /// Whether `e` is an answer (the memory store filters with this; D1 with SQL that says the same).
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.since_s.is_none_or(|s| e.at >= s)
            && self.before_id.is_none_or(|b| e.id < b)
            && self
                .user_id
                .as_ref()
                .is_none_or(|u| e.user_id.as_ref() == Some(u))
            && self
                .client_id
                .as_ref()
                .is_none_or(|c| e.client_id.as_ref() == Some(c))
            && self.kind.as_ref().is_none_or(|k| &e.kind == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_stamp_time_and_address_and_carry_the_client() {
        let notes = Notes::default();
        notes.event(
            42,
            AuditEvent::new(Kind::Token, true, "c1", "authorization_code")
                .client(Some("c1"))
                .user(Some("u1")),
        );
        assert_eq!(notes.client_id().as_deref(), Some("c1"));
        let events = notes.take_events(Some("192.0.2.1"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].at, 42);
        assert_eq!(events[0].ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(events[0].kind, "token");
        assert!(notes.take_events(None).is_empty());
    }

    #[test]
    fn queries_filter_on_every_field() {
        let mut e = AuditEvent::new(Kind::Login, false, "anonymous", "wrong password")
            .user(Some("u1"))
            .client(Some("c1"));
        e.id = 10;
        e.at = 100;
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q.matches(&e)
        };
        assert!(q(|_| {}));
        assert!(q(|q| q.since_s = Some(100)));
        assert!(!q(|q| q.since_s = Some(101)));
        assert!(!q(|q| q.before_id = Some(10)));
        assert!(q(|q| q.before_id = Some(11)));
        assert!(!q(|q| q.user_id = Some("u2".into())));
        assert!(q(|q| q.client_id = Some("c1".into())));
        assert!(!q(|q| q.kind = Some("token".into())));
        assert!(Kind::ALL.iter().all(|k| Kind::parse(k.name()) == Some(*k)));
    }
}
