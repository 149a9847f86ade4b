-- Issue 13 (operators): the audit trail and signing keys managed through the admin API.

-- One row per event (src/core/audit.rs): logins, consents, token issuance and revocation, admin
-- changes. Never a secret. Written after the response (waitUntil); pruned by the cron after
-- AUDIT_RETENTION_DAYS.
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,           -- Unix seconds
  kind TEXT NOT NULL CHECK (kind IN ('login', 'consent', 'token', 'revoke', 'admin')),
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
  actor TEXT NOT NULL,
  user_id TEXT,
  client_id TEXT,
  ip TEXT,
  detail TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_client ON audit_events (client_id, id);

-- Signing keys created through /admin/keys (src/core/keys/managed.rs). The private key is kept
-- only sealed: AES-256-GCM under a key derived from the KEY_WRAPPING_KEY secret, with the kid as
-- associated data.
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,           -- RFC 7638 thumbprint
  alg TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),
  sealed TEXT NOT NULL,           -- base64url(nonce || ciphertext || tag)
  created_at INTEGER NOT NULL,
  activates_at INTEGER            -- signs from then; NULL: published, not scheduled
);
