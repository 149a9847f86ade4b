// What each worker uploads: `wrangler deploy --dry-run` (offline; ours with EDGE_OAUTH_PREBUILT=1
// so it is not rebuilt), parsed from its "Total Upload: X KiB / gzip: Y KiB" line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../scripts/worker.mjs';

export function deploySize(config) {
  const outdir = mkdtempSync(join(tmpdir(), 'edge-oauth-bench-size-'));
  try {
    const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', outdir, ...(config ? ['--config', config] : [])], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, EDGE_OAUTH_PREBUILT: '1', WRANGLER_SEND_METRICS: 'false', CI: '1' },
    });
    const m = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(r.stdout + r.stderr);
    if (!m) return { error: `wrangler deploy --dry-run: exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}` };
    return { uploadKiB: Number(m[1]), gzipKiB: Number(m[2]) };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Raw and gzip KiB of a wasm file. */
export function wasmSize(path) {
  const wasm = readFileSync(path);
  return { rawKiB: wasm.length / 1024, gzipKiB: gzipSync(wasm).length / 1024 };
}
