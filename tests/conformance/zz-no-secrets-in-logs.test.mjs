// No secret in any log line or audit row (checklist 155, 179; top check T24). Runs last in
// tests/conformance (the `zz-` prefix; run the files one at a time, in order): the leak recorder
// of tests/e2e/harness.mjs, on when `EDGE_OAUTH_LEAK_DIR` is set for the whole run, wrote every
// secret the tests saw (`secrets-<pid>.txt`), the ids they saw (`public-<pid>.txt`), and, as
// each worker stopped, its captured output (`log-<pid>-<n>.txt`: wrangler's lines and the
// worker's JSON log lines, src/core/log.rs) and its D1 audit rows (`audit-<pid>-<n>.txt`,
// src/core/audit.rs). This test looks for every secret, as sent and URL- or JSON-encoded, in
// every log and audit file. Secrets of browser (Playwright) and Python requests are not seen by
// the recorder (it wraps node's fetch), so they are not looked for.
// `node --test` runs the files it is given in path order (tests/conformance/ before tests/e2e/),
// so give this file its own run, after the others:
//   export EDGE_OAUTH_LEAK_DIR=$(mktemp -d)
//   node --test --test-concurrency=1 tests/e2e/X.test.mjs tests/conformance/Y.test.mjs …
//   node --test tests/conformance/zz-no-secrets-in-logs.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = process.env.EDGE_OAUTH_LEAK_DIR || '';
const skip = DIR ? false : 'EDGE_OAUTH_LEAK_DIR is not set: no secrets or worker logs were recorded (set it for the whole test run to check)';

function files(prefix) {
  if (!existsSync(DIR)) return [];
  return readdirSync(DIR).filter((f) => f.startsWith(prefix) && f.endsWith('.txt')).sort().map((f) => join(DIR, f));
}

function recordedSecrets() {
  const secrets = new Map(); // value → kind
  for (const file of files('secrets-')) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0 && !secrets.has(line.slice(tab + 1))) secrets.set(line.slice(tab + 1), line.slice(0, tab));
    }
  }
  const ids = new Set(files('public-').flatMap((f) => readFileSync(f, 'utf8').split('\n')));
  for (const id of ids) secrets.delete(id); // an id a test sent as a (wrong) secret is no secret
  return secrets;
}

/**
 * The unique lines of the log and audit files, each with where it first appears. Counters that
 * cannot hold a secret (durations, round trips, row ids and times) are dropped first, so the
 * many requests of a run collapse into few distinct lines.
 */
function haystack() {
  const lines = new Map(); // normalized line → "file:line"
  for (const file of [...files('log-'), ...files('audit-')]) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const key = line
        .replace(/"(duration_ms|kv|d1|shard|id|at)":\d+,?/g, '')
        .replace(/\(\d+ms\)/g, '')
        .replace(/\x1b\[[0-9;]*m/g, '');
      if (key && !lines.has(key)) lines.set(key, `${file.slice(DIR.length + 1)}:${i + 1}`);
    });
  }
  return lines;
}

/** The spellings of `secret` a log could hold: as is, URL-encoded, form-encoded, JSON-escaped. */
function spellings(secret) {
  return [...new Set([
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
  ])];
}

const redact = (s) => `${s.slice(0, 4)}…${s.slice(-4)} (${s.length} chars)`;

test('155 / 179 / T24 the leak recorder saw the run: > 100 secrets of every main kind, worker logs and audit rows', { skip }, () => {
  const secrets = recordedSecrets();
  assert.ok(secrets.size > 100, `only ${secrets.size} secrets were recorded (is this file run after the others, in a run of its own?)`);
  const kinds = new Set(secrets.values());
  for (const kind of ['access_token', 'refresh_token', 'code', 'client_secret', 'password']) {
    assert.ok(kinds.has(kind), `no ${kind} was recorded (kinds: ${[...kinds].sort().join(', ')})`);
  }
  const logs = files('log-');
  const audits = files('audit-');
  assert.ok(logs.length > 0, 'no worker output was saved');
  assert.equal(audits.length, logs.length, 'one audit file for each worker log');
  // The worker's own log lines were captured (one JSON line per request), and audit rows.
  assert.ok(logs.some((f) => readFileSync(f, 'utf8').includes('"event":"request"')), 'no worker log line ("event":"request") in any log file');
  assert.ok(audits.some((f) => readFileSync(f, 'utf8').includes('"kind":"token"')), 'no token audit row in any audit file');
});

test('155 / 179 / T24 no recorded secret (token, code, client secret, password, admin token, key) appears in any worker log line or audit row', { skip }, () => {
  const secrets = recordedSecrets();
  const lines = haystack();
  const text = [...lines.keys()];
  const where = [...lines.values()];
  // One string to search; `starts` maps an offset back to its line.
  const all = text.join('\n');
  const starts = [];
  let offset = 0;
  for (const line of text) { starts.push(offset); offset += line.length + 1; }
  const lineAt = (pos) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid; else hi = mid - 1;
    }
    return lo;
  };
  const leaks = [];
  for (const [secret, kind] of secrets) {
    for (const spelling of spellings(secret)) {
      const pos = all.indexOf(spelling);
      if (pos >= 0) {
        const i = lineAt(pos);
        leaks.push(`${kind} ${redact(secret)} in ${where[i]}: ${text[i].replaceAll(spelling, `<${kind}>`).slice(0, 300)}`);
        break;
      }
    }
  }
  assert.deepEqual(leaks, [], `secrets in logs or audit rows:\n${leaks.join('\n')}`);
});
