-- Assertion jti markers (issue 8) are routed by a hash of issuer and jti among SHARDS shards.
-- So that a change of SHARDS cannot split one jti's claims between two shards, the layout keeps
-- the count in use, the one before it and when it changed (src/edge/shards.rs, jti_routes;
-- docs/scaling.md "jti markers").
ALTER TABLE shard_layout ADD COLUMN current_count INTEGER;
ALTER TABLE shard_layout ADD COLUMN previous_count INTEGER;
ALTER TABLE shard_layout ADD COLUMN changed_at_ms INTEGER;
