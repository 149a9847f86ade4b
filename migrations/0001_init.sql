-- edge-oauth schema. Every table and column is described in docs/storage.md.
-- Secrets (client secrets, tokens, codes, registration tokens) appear only as SHA-256 hashes.

CREATE TABLE settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  org_id TEXT NOT NULL,
  allow_username_password_flow INTEGER NOT NULL,
  allow_user_agent_flow INTEGER NOT NULL,
  allow_code_credentials_flow INTEGER NOT NULL,
  require_pkce INTEGER NOT NULL
);

CREATE TABLE apps (
  client_id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  name TEXT NOT NULL,
  callback_urls TEXT NOT NULL,  -- JSON array, exact-match list
  scopes TEXT NOT NULL,         -- JSON array
  policy TEXT NOT NULL,         -- JSON object: the CONTRACT §4 policy fields
  created_at INTEGER NOT NULL
);

CREATE TABLE users (
  user_id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- case-insensitive, as Salesforce usernames
  password_hash TEXT NOT NULL,  -- PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  active INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE app_user_grants (
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  preauthorized INTEGER NOT NULL DEFAULT 0,
  approved_scopes TEXT,         -- JSON array; NULL = never approved
  PRIMARY KEY (client_id, user_id)
);

CREATE TABLE registration_tokens (
  token_hash TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE token_families (
  family_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX token_families_client ON token_families (client_id);
CREATE INDEX token_families_user ON token_families (user_id);

CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  state TEXT NOT NULL CHECK (state IN ('active', 'rotated', 'revoked'))
);
CREATE INDEX tokens_family ON tokens (family_id);

-- Single-use markers: the primary key decides who redeemed or rotated first.
CREATE TABLE code_redemptions (
  code_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  redeemed_at INTEGER NOT NULL
);

CREATE TABLE refresh_rotations (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  rotated_at INTEGER NOT NULL
);
