// Property-based fuzzing with schemathesis (PyPI) from tests/fuzz/openapi.yaml: thousands of
// generated requests (coverage + fuzzing phases, fixed seed) against the real worker, checking
// that none is answered with a 5xx. The worker output must show no panic either.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/worker.mjs';
import { startTestWorker } from './harness.mjs';

let w;
before(async () => { w = await startTestWorker(); });
after(() => w?.stop());

test('no generated request gets a 5xx (schemathesis not_a_server_error)', () => {
  const spec = join(w.stateDir, 'openapi.yaml');
  writeFileSync(spec, readFileSync(join(ROOT, 'tests', 'fuzz', 'openapi.yaml'), 'utf8').replaceAll('ADMINTOKEN', w.adminToken));
  const r = spawnSync(join(ROOT, '.venv', 'bin', 'st'), [
    'run', spec, '--url', w.baseUrl, '--checks', 'not_a_server_error', '--max-examples', '100',
    '--phases', 'coverage,fuzzing', '--seed', '20261129', '--workers', '2', '--no-color',
  ], { encoding: 'utf8', timeout: 600000, env: { ...process.env, SCHEMATHESIS_HOOKS: '' } });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-4000));
  const m = out.match(/(\d+) generated, (\d+) passed/);
  assert.ok(m, out.slice(-2000));
  assert.ok(Number(m[1]) > 500, `only ${m[1]} cases generated`);
  assert.equal(m[1], m[2]);
  assert.doesNotMatch(w.output(), /panicked/);
});
