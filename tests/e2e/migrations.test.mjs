// D1 migrations (migrations/*.sql), applied by wrangler exactly as `make deploy` and upgrades do
// (`wrangler d1 migrations apply`), on local D1 databases in temporary directories:
//   - from empty to the latest: every table the worker uses exists, and d1_migrations lists
//     every file;
//   - upgrades keep data: all migrations but the last are applied, every table gets rows, then
//     the last one is applied: it succeeds and every row is still there (and the same, one
//     migration at a time, from the first to the last).
// Rows are made generically from each table's schema (types, NOT NULL, CHECK, UNIQUE, foreign
// keys), so a new migration needs no change here unless a table has a constraint the generic
// filler cannot satisfy: then add an entry to FILLERS.
//
// Nothing here depends on the shard count, so under SHARDS=4 every test is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../scripts/worker.mjs';

const skip = process.env.SHARDS === '4' ? 'migrations do not depend on shards: runs with SHARDS=1 only' : false;
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const MIGRATIONS = join(ROOT, 'migrations');
const FILES = readdirSync(MIGRATIONS).filter((f) => /^\d+.*\.sql$/.test(f)).sort();

// The D1 tables the worker reads and writes (src/edge/d1.rs, shards.rs, assets.rs,
// resources.rs, ...). Token state lives in the Durable Objects' own SQLite, not here.
const TABLES = ['settings', 'apps', 'users', 'app_user_grants', 'shard_layout', 'assets', 'resources'];

/**
 * Per-table row makers for constraints the generic filler cannot satisfy: `table: (n, db) =>
 * SQL statement inserting one row` (n is unique per call). None needed so far.
 */
const FILLERS = {};

const q = (name) => `"${name.replace(/"/g, '""')}"`;
const lit = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

/** A throwaway project: a wrangler config whose migrations_dir holds the given files. */
function project(files) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-oauth-migrations-'));
  const migrations = join(dir, 'migrations');
  const state = join(dir, 'state');
  mkdirSync(migrations);
  const config = join(dir, 'wrangler.toml');
  writeFileSync(config, [
    'name = "edge-oauth-migrations-test"',
    'compatibility_date = "2025-09-01"',
    '[[d1_databases]]',
    'binding = "DB"',
    'database_name = "edge-oauth"',
    'database_id = "00000000-0000-0000-0000-000000000000"',
    'migrations_dir = "migrations"',
    '',
  ].join('\n'));
  const add = (f) => copyFileSync(join(MIGRATIONS, f), join(migrations, f));
  files.forEach(add);

  function apply() {
    const r = spawnSync(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state, '--config', config], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' },
    });
    assert.equal(r.status, 0, `wrangler d1 migrations apply failed:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }
  function file() {
    const d = join(state, 'v3', 'd1', 'miniflare-D1DatabaseObject');
    return join(d, readdirSync(d).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite'));
  }
  function query(sql) {
    const out = execFileSync('sqlite3', ['-json', file(), sql], { encoding: 'utf8' });
    return out.trim() ? JSON.parse(out) : [];
  }
  /** Runs statements the way D1 does: foreign keys enforced. Throws with sqlite's message. */
  function exec(sql) {
    const r = spawnSync('sqlite3', ['-bail', file()], { input: `PRAGMA foreign_keys = ON;\n${sql}\n`, encoding: 'utf8' });
    if (r.status !== 0 || r.stderr.trim()) throw new Error(r.stderr.trim() || `sqlite3 exit ${r.status}`);
  }
  return { dir, add, apply, query, exec, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The application's tables (not SQLite's, not D1's bookkeeping). */
function userTables(db) {
  return db.query("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
    + "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> 'd1_migrations' ORDER BY name");
}

/** A value a CHECK constraint on `col` pins: `CHECK (col = v)` or `CHECK (col IN (v, ...))`. */
function checkedValue(tableSql, col) {
  const c = col.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const eq = tableSql.match(new RegExp(`CHECK\\s*\\(\\s*"?${c}"?\\s*=\\s*('(?:[^']|'')*'|-?\\d+(?:\\.\\d+)?)\\s*\\)`, 'i'));
  if (eq) return eq[1];
  const inList = tableSql.match(new RegExp(`CHECK\\s*\\(\\s*"?${c}"?\\s+IN\\s*\\(\\s*('(?:[^']|'')*'|-?\\d+(?:\\.\\d+)?)`, 'i'));
  return inList?.[1];
}

let counter = 1000;

/** One INSERT for `table` from its schema; every column gets a value (nullable ones too). */
function insertFor(db, table, sql) {
  if (FILLERS[table]) return FILLERS[table](counter++, db);
  const cols = db.query(`PRAGMA table_info(${q(table)})`);
  const fks = db.query(`PRAGMA foreign_key_list(${q(table)})`);
  const names = [];
  const values = [];
  for (const col of cols) {
    const n = counter++;
    const fk = fks.find((f) => f.from === col.name);
    const checked = checkedValue(sql, col.name);
    const type = (col.type || '').toUpperCase();
    let v;
    if (fk) v = `(SELECT ${q(fk.to ?? 'rowid')} FROM ${q(fk.table)} ORDER BY rowid DESC LIMIT 1)`;
    else if (checked !== undefined) v = checked;
    else if (type.includes('INT')) v = String(n);
    else if (/REAL|FLOA|DOUB/.test(type)) v = `${n}.5`;
    else if (type.includes('BLOB')) v = `X'${n.toString(16).padStart(8, '0')}'`;
    // Text: digits only, so the value is also valid JSON (several columns hold JSON).
    else v = lit(String(n));
    names.push(q(col.name));
    values.push(v);
  }
  return `INSERT INTO ${q(table)} (${names.join(', ')}) VALUES (${values.join(', ')});`;
}

/** Tables in an order where every table comes after the tables its foreign keys point to. */
function fkOrder(db, tables) {
  const deps = new Map(tables.map((t) => [t.name, db.query(`PRAGMA foreign_key_list(${q(t.name)})`).map((f) => f.table).filter((x) => x !== t.name)]));
  const out = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name) || !deps.has(name)) return;
    seen.add(name);
    for (const d of deps.get(name)) visit(d);
    out.push(tables.find((t) => t.name === name));
  };
  tables.forEach((t) => visit(t.name));
  return out;
}

/** Adds a row to every table (a table that cannot take one more, like the one-row settings, keeps its row). */
function fill(db) {
  for (const { name, sql } of fkOrder(db, userTables(db))) {
    const stmt = insertFor(db, name, sql);
    try {
      db.exec(stmt);
    } catch (e) {
      const rows = db.query(`SELECT count(*) AS n FROM ${q(name)}`)[0].n;
      if (rows === 0) {
        assert.fail(`cannot put a row into ${name} generically (${e.message}) with\n  ${stmt}\n`
          + 'add a row maker for it to FILLERS in tests/e2e/migrations.test.mjs');
      }
    }
    assert.ok(db.query(`SELECT count(*) AS n FROM ${q(name)}`)[0].n > 0, `${name} has a row`);
  }
}

/** Every table's rows, with the columns that identify a row (its primary key, else rowid). */
function snapshot(db) {
  const out = {};
  for (const { name } of userTables(db)) {
    const cols = db.query(`PRAGMA table_info(${q(name)})`);
    const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const key = pk.length ? pk : ['rowid'];
    const rows = db.query(`SELECT ${pk.length ? '' : 'rowid, '}* FROM ${q(name)}`);
    out[name] = { key, columns: cols.map((c) => c.name), rows };
  }
  return out;
}

/**
 * Checks that migration `file` (just applied) kept the data of `before`: a table that is gone
 * was dropped or renamed by the migration; in a table that remains every row is still there,
 * found by its key, and the columns it still has hold the same values, unless the migration
 * itself updates (or deletes from) that table.
 */
function assertKept(db, before, file) {
  const migration = readFileSync(join(MIGRATIONS, file), 'utf8').replace(/--.*$/gm, '');
  const after = snapshot(db);
  for (const [table, { key, rows }] of Object.entries(before)) {
    const t = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const name = `(?:"${t}"|\`${t}\`|\\b${t}\\b)`;
    if (!after[table]) {
      assert.match(migration, new RegExp(`(DROP\\s+TABLE\\s+(IF\\s+EXISTS\\s+)?${name}|ALTER\\s+TABLE\\s+${name}\\s+RENAME\\s+TO)`, 'i'),
        `${file}: table ${table} disappeared without a DROP TABLE or RENAME in the migration`);
      continue;
    }
    if (new RegExp(`DELETE\\s+FROM\\s+${name}`, 'i').test(migration)) continue;
    const updated = new RegExp(`UPDATE\\s+${name}`, 'i').test(migration);
    const now = after[table];
    const common = now.columns.filter((c) => before[table].columns.includes(c));
    assert.ok(now.rows.length >= rows.length, `${file}: ${table} lost rows (${rows.length} → ${now.rows.length})`);
    for (const row of rows) {
      const found = now.rows.find((r) => key.every((k) => r[k] === row[k]));
      assert.ok(found, `${file}: ${table} lost the row ${JSON.stringify(row)}`);
      if (!updated) {
        for (const c of common) assert.deepEqual(found[c], row[c], `${file}: ${table}.${c} changed for ${JSON.stringify(row)}`);
      }
    }
  }
}

const appliedNames = (db) => db.query('SELECT name FROM d1_migrations ORDER BY id').map((r) => r.name);

test('migrations: from empty to the latest, every table the worker uses, every file recorded', { skip }, () => {
  const db = project(FILES);
  try {
    db.apply();
    const tables = userTables(db).map((t) => t.name);
    for (const t of TABLES) assert.ok(tables.includes(t), `table ${t} (have: ${tables.join(', ')})`);
    assert.deepEqual(appliedNames(db), FILES, 'd1_migrations lists every file in migrations/, in order');
    // The SQL in the worker (outside the Durable Object, whose tables live in its own SQLite)
    // names only tables that exist.
    const used = new Set();
    const walk = (d) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (f.endsWith('.rs') && !/shard_object/.test(p)) {
          for (const line of readFileSync(p, 'utf8').split('\n')) {
            if (/^\s*\/\//.test(line)) continue;
            for (const m of line.matchAll(/\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z][a-z0-9_]*)\b/g)) {
              if (!m[1].startsWith('pragma_')) used.add(m[1]);
            }
          }
        }
      }
    };
    walk(join(ROOT, 'src'));
    assert.ok(used.size >= 5, `found SQL in src/ (${[...used].join(', ')})`);
    for (const t of used) assert.ok(tables.includes(t), `src/ uses table ${t}, which no migration creates`);
    // A second apply is a no-op.
    assert.match(db.apply(), /No migrations to apply/);
  } finally {
    db.cleanup();
  }
});

test('migrations: upgrade to the last migration keeps every row (all but the last applied, every table filled)', { skip }, () => {
  assert.ok(FILES.length >= 2);
  const db = project(FILES.slice(0, -1));
  try {
    db.apply();
    fill(db);
    const before = snapshot(db);
    assert.ok(Object.values(before).every((t) => t.rows.length > 0), 'every table has a row');
    db.add(FILES.at(-1));
    db.apply();
    assert.deepEqual(appliedNames(db), FILES);
    assertKept(db, before, FILES.at(-1));
    fill(db); // the new schema takes rows too
  } finally {
    db.cleanup();
  }
});

test('migrations: every upgrade step (1..k applied, every table filled, then k+1) keeps every row', { skip }, () => {
  const db = project(FILES.slice(0, 1));
  try {
    db.apply();
    for (let k = 1; k < FILES.length; k++) {
      fill(db);
      const before = snapshot(db);
      db.add(FILES[k]);
      db.apply();
      assert.deepEqual(appliedNames(db), FILES.slice(0, k + 1));
      assertKept(db, before, FILES[k]);
    }
    fill(db);
  } finally {
    db.cleanup();
  }
});
