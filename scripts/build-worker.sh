#!/bin/sh
# Builds the worker with worker-build. Where the project's npm tools are installed (`make`
# installs them), it uses local binaries so nothing is fetched from GitHub: wasm-bindgen from
# cargo, wasm-opt (binaryen) and esbuild from npm. In a bare checkout (a `git archive` export
# served with plain `wrangler dev`), worker-build finds or fetches its own.
set -eu
[ "${EDGE_OAUTH_PREBUILT:-0}" = "1" ] && [ -f build/worker/shim.mjs ] && exit 0
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
use_tool() { # VAR path: export VAR=path unless VAR is set or path is missing
  eval "current=\${$1:-}"
  if [ -z "$current" ] && [ -n "$2" ] && [ -x "$2" ]; then export "$1=$2"; fi
}
use_tool WASM_BINDGEN_BIN "$(command -v wasm-bindgen || true)"
use_tool WASM_OPT_BIN "$PWD/node_modules/.bin/wasm-opt"
use_tool WASM_OPT_BIN "$(command -v wasm-opt || true)"
use_tool ESBUILD_BIN "$PWD/node_modules/.bin/esbuild"
use_tool ESBUILD_BIN "$(command -v esbuild || true)"
worker-build --release
# worker-build keeps the wasm "name" section (function names for stack traces): about a third of
# the upload. Our code never panics by design (clippy denies unwrap/expect/panic), so it goes.
WASM_OPT="${WASM_OPT_BIN:-$(command -v wasm-opt || true)}"
if [ -n "$WASM_OPT" ]; then
  "$WASM_OPT" build/index_bg.wasm -o build/index_bg.wasm --strip-debug --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
else
  echo "build-worker: no wasm-opt found; the names section stays in the upload" >&2
fi
