# promio.connect: `make run` serves the app, `make test` checks everything. Both install what is
# missing first (scripts/install-tools.sh; Debian's chromium and the npm packages for the tests).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TOOLS_DIR ?= $(HOME)/.cache/promio-connect/tools
export PATH := $(HOME)/.cargo/bin:$(TOOLS_DIR)/node_modules/.bin:$(PATH)
export PROMIO_TOOLS_DIR := $(TOOLS_DIR)
# The built server finds its compiled site (WASM, JS, CSS) through these.
SITE_ENV := LEPTOS_OUTPUT_NAME=promio-connect LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
# The site is split into WASM chunks (pages other than the login page load on demand); release
# builds also leave brotli and gzip copies of each file for the server to send as they are.
LEPTOS_BUILD := cargo leptos build --split
LEPTOS_RELEASE := cargo leptos build --release --split --precompress

.PHONY: run dev test bench tools native-deps browser apache e2e-deps lint deploy-check rust-tests site e2e

# The integration tests' harness (a clock the test moves, a captured mailbox) is behind the server's
# `test-support` feature. Every cargo command of the tests and the lint passes it, so that the
# server crate is built once for all of them.
TEST_FEATURES := --features promio-connect/test-support

# Rebuilds and restarts on every change to the code or the stylesheet (cargo-leptos watch), with
# the demo data of `make run`, on http://localhost:3000.
dev: tools
	cargo leptos watch --split -- serve --demo

run: tools
	@echo "==> building the release server and site (first time: about 10 minutes)"
	$(LEPTOS_RELEASE)
	@echo "==> serving on http://localhost:3000 (data in ./data)"
	$(SITE_ENV) ./target/release/promio-connect serve --demo

test: tools e2e-deps lint deploy-check rust-tests e2e
	@echo "==> all checks passed"
	@if [ -z "$${TEST_DATABASE_URL:-}" ]; then $(NO_POSTGRES_WARNING); fi

# Performance on this machine, against baselines measured in the same run (see README "Performance").
bench: tools
	@echo "==> building the release server and site, and the bench"
	$(LEPTOS_RELEASE)
	cargo build --release -p promio-bench
	@# The build's output is written out first, so that the kernel does not do it while measuring.
	sync
	./target/release/promio-bench target/release/promio-connect target/site

tools: native-deps
	@bash scripts/install-tools.sh

# OpenSSL's headers for webauthn-rs (passkeys), and pkg-config to find them.
native-deps:
	@{ command -v pkg-config >/dev/null && pkg-config --exists openssl; } || { \
	  echo "==> installing Debian's libssl-dev and pkg-config (passkeys use OpenSSL)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config; } \
	    || { echo "make: cannot install libssl-dev and pkg-config (needs root and apt-get)"; exit 1; }; }

browser:
	@command -v chromium >/dev/null || { \
	  echo "==> installing Debian's chromium for the end-to-end tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    || { echo "make: cannot install Debian's chromium (needs root and apt-get)"; exit 1; }; }

# Apache with mod_auth_openidc: the end-to-end suite puts a page behind promio.connect with it, as
# an operator would put an existing tool (end2end/support/apache.ts).
apache:
	@[ -x /usr/sbin/apache2 ] && [ -e /usr/lib/apache2/modules/mod_auth_openidc.so ] || { \
	  echo "==> installing Debian's apache2 and libapache2-mod-auth-openidc for the end-to-end tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      apache2 libapache2-mod-auth-openidc; } \
	    || { echo "make: cannot install apache2 and libapache2-mod-auth-openidc (needs root and apt-get)"; exit 1; }; }

# npm ci again when package.json names a package that node_modules lacks (a checkout that added one).
e2e-deps: browser apache
	@command -v npm >/dev/null || { echo "make: npm is missing (Debian: apt-get install nodejs npm)"; exit 1; }
	@[ -d end2end/node_modules/@playwright/test ] && [ -d end2end/node_modules/openid-client ] || { \
	  echo "==> installing the end-to-end test packages"; cd end2end && npm ci --no-audit --no-fund; }

lint:
	@echo "==> cargo fmt"
	cargo fmt --all -- --check
	@echo "==> cargo clippy (server and UI, native)"
	cargo clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings
	@echo "==> cargo clippy (UI, WASM with hydration)"
	cargo clippy -p promio-frontend --target wasm32-unknown-unknown --features hydrate -- -D warnings

# Without TEST_DATABASE_URL two of the test layers do not run at all; a line among the test output
# is easily missed, so this block says so, after the Rust tests and again at the very end.
NO_POSTGRES_WARNING := printf '%s\n' '' \
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
  '!!  WARNING: TEST_DATABASE_URL is not set. The PostgreSQL and scale layers did NOT run:' \
  '!!  the integration tests ran on SQLite only, and nothing tested two server instances on one' \
  '!!  PostgreSQL (shared sessions and counters, the outbox sending each mail once) or the' \
  '!!  database and SMTP faults. To run them:' \
  '!!    TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test make test' \
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
  '' >&2

# One test at a time within a test binary: the integration tests each run the whole app on a
# runtime of their own, and leptos's server-side rendering, when two such runtimes render at once
# in one process, has been seen to leave a page unfinished now and then (the server itself has one
# runtime). The suite is bound by I/O and hashing, so this costs no time.
# The systemd unit (deploy/promio-connect.service) as systemd reads it. The copy checked names an
# executable that exists here and an optional settings file; everything else is the unit as shipped.
deploy-check:
	@echo "==> systemd-analyze verify deploy/promio-connect.service"
	@command -v systemd-analyze >/dev/null || { echo "make: systemd-analyze is missing (Debian: apt-get install systemd)"; exit 1; }
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	  sed -e "s#^ExecStart=/opt/promio-connect/promio-connect#ExecStart=$$(command -v true)#" \
	      -e "s#^EnvironmentFile=/#EnvironmentFile=-/#" deploy/promio-connect.service > "$$dir/promio-connect.service" && \
	  out=$$(systemd-analyze verify "$$dir/promio-connect.service" 2>&1) && [ -z "$$out" ] || { echo "$$out"; exit 1; }

rust-tests: export RUST_TEST_THREADS = 1
rust-tests:
	@echo "==> Rust tests (SQLite)"
	env -u TEST_DATABASE_URL cargo test --workspace $(TEST_FEATURES)
	@if [ -n "$${TEST_DATABASE_URL:-}" ]; then \
	  echo "==> integration tests against PostgreSQL ($${TEST_DATABASE_URL%%@*}@…), with those that need it"; \
	  cargo test -p promio-connect $(TEST_FEATURES) --test api -- --include-ignored; \
	  echo "==> two instances and faults on PostgreSQL (server processes)"; \
	  cargo test -p promio-connect $(TEST_FEATURES) --test scale -- --ignored --test-threads 2; \
	else $(NO_POSTGRES_WARNING); fi

site:
	@echo "==> building the server and the WASM site"
	$(LEPTOS_BUILD)

e2e: e2e-deps site
	@echo "==> Playwright in Debian's chromium"
	cd end2end && npx playwright test
