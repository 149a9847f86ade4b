-- Scale (docs/scaling.md): token families, tokens, code redemptions, refresh rotations and
-- initial access tokens live in sharded Durable Objects (src/edge/shard_object.rs) from now on.
-- D1 keeps the registry (settings, apps, users, grants) and the shard layout.
-- Nothing had been deployed with the tables below holding live state that must survive: they go.

DROP TABLE IF EXISTS refresh_rotations;
DROP TABLE IF EXISTS code_redemptions;
DROP TABLE IF EXISTS tokens;
DROP TABLE IF EXISTS token_families;
DROP TABLE IF EXISTS registration_tokens;

-- The highest shard count ever configured: recorded before a family is placed on a new shard,
-- so that bulk revocation and cleanup reach every shard that may hold state after SHARDS shrinks.
CREATE TABLE shard_layout (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  high_water INTEGER NOT NULL
);
