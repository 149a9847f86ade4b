-- The floor's tables: `items` (64 rows, read by primary key and updated) and `log` (inserted into).
CREATE TABLE items (id INTEGER PRIMARY KEY, value TEXT NOT NULL, counter INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
INSERT INTO items (id, value) SELECT i, 'item-' || i FROM n;
CREATE TABLE log (id TEXT PRIMARY KEY, item INTEGER NOT NULL, at INTEGER NOT NULL);
