-- Issue 10 (the gateway for external APIs): registered clients, protected resources, and the
-- org switches of dynamic registration and client ID metadata documents.

-- How a client registered itself (RFC 7591, or a client ID metadata document), as JSON:
-- grant and response types, auth method, the optional metadata it sent, and the SHA-256 of its
-- current registration access token (RFC 7592), which an update replaces only where it still
-- matches (so of concurrent updates with one token exactly one wins). NULL for apps created by
-- an operator.
ALTER TABLE apps ADD COLUMN registration TEXT;

-- RFC 7591 registration without an initial access token (throttled per address).
ALTER TABLE settings ADD COLUMN open_registration INTEGER NOT NULL DEFAULT 0;
-- JSON array of URL prefixes a client ID metadata document must start with; [] = any.
ALTER TABLE settings ADD COLUMN metadata_document_prefixes TEXT NOT NULL DEFAULT '[]';

-- Protected resources (RFC 8707) tokens may be asked for; gateway routes' resources count too
-- without a row.
CREATE TABLE resources (
  resource_id TEXT PRIMARY KEY,
  uri TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  scopes TEXT NOT NULL,          -- JSON array
  created_at INTEGER NOT NULL
);
