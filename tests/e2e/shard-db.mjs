// Read-only access to the shards' local SQLite files (src/edge/shard_object.rs), as the D1 file
// is read in harness.mjs: `wrangler dev` keeps each Durable Object of class TokenShard in its own
// file under the state directory. Used by tests that look at what is stored, never to change it.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every shard's SQLite file under `stateDir`. */
export function shardFiles(stateDir) {
  const root = join(stateDir, 'v3', 'do');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.endsWith('TokenShard'))
    .flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite').map((f) => join(root, d, f)));
}

/** The rows `sql` returns in every shard, together. */
export function shardRows(stateDir, sql) {
  return shardFiles(stateDir).flatMap((file) => {
    const out = execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8' }).trim();
    return out ? JSON.parse(out) : [];
  });
}
