# edge-oauth: `make dev` serves locally, `make test` runs every test, `make bench` measures.
# Everything needed is installed on first use from crates.io, npm and Debian (never GitHub).
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock)
WORKER_BUILD_VERSION := 0.8.7
SOURCES := $(shell find src -name '*.rs') www/asset-token.html www/asset-token.js Cargo.toml Cargo.lock
# The browser bundle and demo app (www/, served from build/www as static assets).
WWW_SOURCES := $(shell find www/src www/js www/demo www/admin -type f) www/Cargo.toml www/style.css www/README.md Cargo.lock scripts/build-www.sh

.PHONY: dev test test-native test-wasm test-e2e bench build tools tools-rust tools-browser tools-python lint deploy

dev: tools build
	node scripts/dev.mjs

# Every layer prints its time; a failing layer does not stop the others, and the target fails at
# the end if any failed. The e2e layer runs two streams side by side (the machine's two cores are
# mostly idle while tests wait on the worker): the whole suite with one token shard, and the files
# whose behaviour depends on the shard count again with four, followed by the conformance tests.
# Every test worker's log and audit trail, and every secret the tests saw, are collected in one
# directory (EDGE_OAUTH_LEAK_DIR); the last test checks that no secret is in any of them.
test: tools tools-browser tools-python
	@failed=""; t=$$(date +%s); \
	for layer in native wasm e2e; do \
	  t0=$$(date +%s); \
	  $(MAKE) --no-print-directory test-$$layer || failed="$$failed $$layer"; \
	  echo "== layer $$layer: $$(( $$(date +%s) - t0 )) s =="; \
	done; \
	echo "== make test: $$(( $$(date +%s) - t )) s in all; $${failed:+FAILED:$$failed}$${failed:-every layer passed} =="; \
	[ -z "$$failed" ]

test-native:
	cargo test --all-targets

# The wasm32 build of the whole worker, exactly as deployed, and the browser bundle's unit tests
# (www/src/tests.rs) in headless Chromium through wasm-bindgen-test-runner and chromedriver.
test-wasm: build
	cd www && CHROMEDRIVER=$$(command -v chromedriver) CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		cargo test --features std --target wasm32-unknown-unknown

# The e2e files that keep or decide token state in the shards (codes, refresh rotation,
# revocation, device codes, initial access tokens, jti markers, assets, user epochs, web
# sessions), run again with SHARDS=4 (issue 15). The others (clients, pages, the browser bundle,
# throttles, deploy, fuzzing) do not depend on the shard count and run once, with SHARDS=1.
SHARDED_E2E := admin asset-tokens attacks cleanup device edge-copies hardening hardening-workers \
	hybrid mcp-gateway registration round-trips server-grants-clients server-grants-rejections \
	shards user-agent
NODE_TEST := node --test --test-concurrency=1 --test-reporter=spec

# Stream 1: every e2e file with SHARDS=1. Stream 2: the sharded files with SHARDS=4, then the
# conformance tests (tests/conformance/, SHARDS=1) but their last file, which reads what both
# streams left in EDGE_OAUTH_LEAK_DIR and so runs once both are done. Stream 2's output is shown
# after stream 1's.
test-e2e: build
	@leak=$$(mktemp -d); export EDGE_OAUTH_LEAK_DIR=$$leak; out2=$$leak/stream2.out; \
	( t0=$$(date +%s); s=0; \
	  SHARDS=4 $(NODE_TEST) $(foreach f,$(SHARDED_E2E),tests/e2e/$(f).test.mjs) $(wildcard tests/conformance/races.test.mjs) > $$out2.e2e 2>&1 || s=1; \
	  echo "== e2e SHARDS=4 (sharded files): $$(( $$(date +%s) - t0 )) s, $$([ $$s = 0 ] && echo passed || echo FAILED) ==" >> $$out2.e2e; \
	  t1=$$(date +%s); c=0; \
	  SHARDS=1 $(NODE_TEST) $$(ls tests/conformance/*.test.mjs | grep -v /zz-) > $$out2.conf 2>&1 || c=1; \
	  echo "== conformance: $$(( $$(date +%s) - t1 )) s, $$([ $$c = 0 ] && echo passed || echo FAILED) ==" >> $$out2.conf; \
	  echo $$s$$c > $$out2.status ) & p2=$$!; \
	t0=$$(date +%s); s1=0; \
	echo "== e2e suite with SHARDS=1 =="; \
	SHARDS=1 $(NODE_TEST) tests/e2e/ || s1=1; \
	echo "== e2e SHARDS=1: $$(( $$(date +%s) - t0 )) s, $$([ $$s1 = 0 ] && echo passed || echo FAILED) =="; \
	wait $$p2; \
	echo "== e2e suite with SHARDS=4 (sharded files; ran beside the SHARDS=1 suite) =="; cat $$out2.e2e; \
	echo "== conformance tests (ran after the SHARDS=4 files) =="; cat $$out2.conf; \
	t2=$$(date +%s); s3=0; \
	SHARDS=1 $(NODE_TEST) tests/conformance/zz-*.test.mjs || s3=1; \
	echo "== no secrets in logs: $$(( $$(date +%s) - t2 )) s, $$([ $$s3 = 0 ] && echo passed || echo FAILED) =="; \
	st=$$(cat $$out2.status); rm -rf $$leak; \
	[ $$s1 = 0 ] && [ "$$st" = 00 ] && [ $$s3 = 0 ]

bench: tools build
	node scripts/bench.mjs

# Deploys the [env.production] Worker of wrangler.toml to Cloudflare (docs/deploy.md): creates the
# KV namespace and D1 database on the first run, applies the D1 migrations, sets the secrets that
# are missing, and deploys. Idempotent. ISSUER=https://auth.example.com pins the issuer.
deploy: tools build
	node scripts/deploy.mjs

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -p edge-oauth-browser --target wasm32-unknown-unknown -- -D warnings

build: build/worker/shim.mjs build/www/index.html

build/worker/shim.mjs: $(SOURCES)
	EDGE_OAUTH_PREBUILT=0 sh scripts/build-worker.sh

build/www/index.html: $(WWW_SOURCES)
	EDGE_OAUTH_PREBUILT=0 sh scripts/build-www.sh

tools: tools-rust node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Skips every install that is already at the right version.
tools-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@wasm-bindgen --version 2>/dev/null | grep -q " $(WASM_BINDGEN_VERSION)$$" || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force
	@cargo install --list | grep -q "^worker-build v$(WORKER_BUILD_VERSION):" || cargo install worker-build --version $(WORKER_BUILD_VERSION) --force

# Python clients for the e2e tests (authlib), in a project-local venv.
tools-python: .venv/.installed

.venv/.installed: tests/e2e/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
	@touch $@

tools-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
