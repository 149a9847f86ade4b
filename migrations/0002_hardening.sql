-- Hardening (docs/storage.md): sessions end when a user's password changes or the user is
-- deactivated; refresh-token idle time and rotation time are kept to the millisecond.

-- Browser sessions that began before this instant (ms since the epoch) are over.
ALTER TABLE users ADD COLUMN sessions_valid_from_ms INTEGER NOT NULL DEFAULT 0;

-- The last refresh of a family, in milliseconds (was whole seconds), so that an `inactivity_s`
-- window is measured exactly.
ALTER TABLE token_families RENAME COLUMN last_used_at TO last_used_ms;
UPDATE token_families SET last_used_ms = last_used_ms * 1000;

-- When a refresh token was rotated out, in milliseconds (was whole seconds): the reuse grace
-- (`refresh_reuse_grace_s`) counts from it.
ALTER TABLE refresh_rotations RENAME COLUMN rotated_at TO rotated_ms;
UPDATE refresh_rotations SET rotated_ms = rotated_ms * 1000;
