#!/bin/sh
# Builds the worker with worker-build, using local tool binaries so nothing is fetched from
# GitHub: wasm-bindgen from cargo, wasm-opt (binaryen) and esbuild from npm.
set -eu
[ "${EDGE_OAUTH_PREBUILT:-0}" = "1" ] && [ -f build/worker/shim.mjs ] && exit 0
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
worker-build --release
# worker-build keeps the wasm "name" section (function names for stack traces): about a third of
# the upload. Our code never panics by design (clippy denies unwrap/expect/panic), so it goes.
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling
