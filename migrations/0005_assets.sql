-- Devices that received asset tokens (issue 9, the asset token flow): one row per app and
-- device id, linked to the user whose access token was exchanged. Revoked rows stay, so the
-- device gets no new asset tokens and its tokens introspect inactive.
CREATE TABLE assets (
  asset_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  name TEXT NOT NULL,
  serial_number TEXT,
  user_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  UNIQUE (client_id, device_id)
);
