// What each worker uploads: `wrangler deploy --dry-run` (offline; ours with EDGE_OAUTH_PREBUILT=1
// so it is not rebuilt), parsed from its "Total Upload: X KiB / gzip: Y KiB" line.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/**
 * What the demo app at `/` downloads (every file of build/www but `_headers` and the console: the page, its
 * script and stylesheet, and the bundle's face, glue and wasm), each as `gzip -9` bytes, next to
 * oidc-client-ts's browser `min.js` measured the same way (issue 11).
 */
export function bundleSizes() {
  const dir = join(ROOT, 'build', 'www');
  const gz = (path) => execFileSync('gzip', ['-9c', path]).length;
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      // The operator console (/admin) is not part of what the demo app loads.
      if (d === dir && (e.name === 'admin' || e.name === 'admin.html')) continue;
      if (e.isDirectory()) walk(p);
      else if (e.name !== '_headers') files.push({ file: relative(dir, p), raw: statSync(p).size, gzip: gz(p) });
    }
  };
  walk(dir);
  files.sort((a, b) => b.gzip - a.gzip);
  const oidc = join(ROOT, 'node_modules', 'oidc-client-ts', 'dist', 'browser', 'oidc-client-ts.min.js');
  const version = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'oidc-client-ts', 'package.json'), 'utf8')).version;
  return {
    files,
    total: files.reduce((s, f) => s + f.gzip, 0),
    oidcClientTs: { version, raw: statSync(oidc).size, gzip: gz(oidc) },
  };
}

// `node bench/sizes.mjs`: the bundle table alone (after `make build`).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const s = bundleSizes();
  for (const f of s.files) console.log(`${String(f.gzip).padStart(7)} B gzip -9  ${String(f.raw).padStart(7)} B raw  ${f.file}`);
  console.log(`${String(s.total).padStart(7)} B gzip -9 in all; oidc-client-ts ${s.oidcClientTs.version} min.js: ${s.oidcClientTs.gzip} B`);
}
