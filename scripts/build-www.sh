#!/bin/sh
# Builds the browser bundle (www/, a Rust crate → wasm with wasm-bindgen --target web) and the
# demo single-page app into build/www/ (served as Workers static assets, wrangler.toml
# [assets]) and the npm package into build/browser-pkg/ (`npm pack` there). Uses the same local
# tools as build-worker.sh: wasm-bindgen from cargo, wasm-opt from npm (binaryen).
set -eu
cd "$(dirname "$0")/.."
[ "${EDGE_OAUTH_PREBUILT:-0}" = "1" ] && [ -f build/www/index.html ] && exit 0
export PATH="$HOME/.cargo/bin:$PATH"
WASM_BINDGEN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
WASM_OPT="${WASM_OPT_BIN:-}"
[ -z "$WASM_OPT" ] && [ -x node_modules/.bin/wasm-opt ] && WASM_OPT=node_modules/.bin/wasm-opt
[ -z "$WASM_OPT" ] && WASM_OPT="$(command -v wasm-opt || true)"

cargo build -p edge-oauth-browser --release --target wasm32-unknown-unknown
pkg=build/browser-pkg
rm -rf "$pkg" build/www
mkdir -p "$pkg" build/www/sdk build/www/static build/www/admin
"$WASM_BINDGEN" --target web --no-typescript --out-dir "$pkg" \
  target/wasm32-unknown-unknown/release/edge_oauth_browser.wasm
# The generated types describe the raw class; the face's types (js/edge-oauth.d.ts) are what an
# app imports, and they include these.
"$WASM_BINDGEN" --target web --out-dir build/browser-types \
  target/wasm32-unknown-unknown/release/edge_oauth_browser.wasm
cp build/browser-types/edge_oauth_browser.d.ts "$pkg/"
if [ -n "$WASM_OPT" ]; then
  "$WASM_OPT" -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-mutable-globals \
    --enable-sign-ext --enable-nontrapping-float-to-int --enable-reference-types \
    --enable-multivalue "$pkg/edge_oauth_browser_bg.wasm" -o "$pkg/edge_oauth_browser_bg.wasm"
else
  echo "build-www: no wasm-opt found; the bundle is not size-optimised" >&2
fi
cp www/js/edge-oauth.js www/js/edge-oauth.d.ts www/README.md "$pkg/"
cp www/js/package.json "$pkg/package.json"
# The demo app at / and the stylesheet shared with the server's pages.
cp "$pkg/edge-oauth.js" "$pkg/edge_oauth_browser.js" "$pkg/edge_oauth_browser_bg.wasm" build/www/sdk/
cp www/demo/index.html www/demo/_headers build/www/
# The operator console: build/www/admin.html is what the assets' default html_handling
# ("auto-trailing-slash") serves at /admin (and /admin/ and /admin.html redirect there); its
# script and styles are /admin/admin.js and /admin/admin.css. The admin API's paths are no
# files, so they reach the worker.
cp www/admin/index.html build/www/admin.html
# What the demo serves is minified (the package keeps the readable files).
ESBUILD="${ESBUILD_BIN:-}"
[ -z "$ESBUILD" ] && [ -x node_modules/.bin/esbuild ] && ESBUILD=node_modules/.bin/esbuild
if [ -n "$ESBUILD" ]; then
  for f in edge-oauth.js edge_oauth_browser.js; do
    "$ESBUILD" --minify --format=esm --log-level=warning "$pkg/$f" --outfile="build/www/sdk/$f"
  done
  "$ESBUILD" --minify --format=esm --log-level=warning www/demo/demo.js --outfile=build/www/demo.js
  "$ESBUILD" --minify --format=esm --log-level=warning www/admin/admin.js --outfile=build/www/admin/admin.js
  "$ESBUILD" --minify --log-level=warning www/admin/admin.css --outfile=build/www/admin/admin.css
  "$ESBUILD" --minify --log-level=warning www/style.css --outfile=build/www/static/edge-oauth.css
else
  cp www/demo/demo.js build/www/
  cp www/admin/admin.js www/admin/admin.css build/www/admin/
  cp www/style.css build/www/static/edge-oauth.css
fi
