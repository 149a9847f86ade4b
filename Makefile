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

test: tools tools-browser tools-python
	$(MAKE) test-native
	$(MAKE) test-wasm
	$(MAKE) test-e2e

test-native:
	cargo test --all-targets

# The wasm32 build of the whole worker, exactly as deployed, and the browser bundle's unit tests
# (www/src/tests.rs) in headless Chromium through wasm-bindgen-test-runner and chromedriver.
test-wasm: build
	cd www && CHROMEDRIVER=$$(command -v chromedriver) CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		cargo test --features std --target wasm32-unknown-unknown

# The whole e2e suite twice: with one token shard, then with four (issue 15). Both runs always
# run; the target fails if either failed.
test-e2e: build
	@s1=0; s4=0; \
	echo "== e2e suite with SHARDS=1 =="; \
	SHARDS=1 node --test --test-concurrency=1 --test-reporter=spec tests/e2e/ || s1=$$?; \
	echo "== e2e suite with SHARDS=4 =="; \
	SHARDS=4 node --test --test-concurrency=1 --test-reporter=spec tests/e2e/ || s4=$$?; \
	echo "== e2e: SHARDS=1 $$([ $$s1 = 0 ] && echo passed || echo FAILED), SHARDS=4 $$([ $$s4 = 0 ] && echo passed || echo FAILED) =="; \
	[ $$s1 = 0 ] && [ $$s4 = 0 ]

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
