#!/usr/bin/env bash
# Runs every test of the project: the domain rules, the HTTP contract, the local
# runtime, the real components end to end over HTTP, and the dashboard in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

# Automatic toolchain installs may be off (RUSTUP_AUTO_INSTALL=0): ask for the target.
rustup target add wasm32-wasip2

# The Redis tests (the runtime's key-value test, and the e2e scenario running
# deploy/runtime-config.example.toml on two instances) start their own redis-server
# (Debian's) on a free loopback port; the e2e scenario fails without one.
if ! command -v redis-server >/dev/null; then
  apt-get install -y -qq redis-server >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
fi
redis-server --version >/dev/null \
  || { echo "redis-server is not runnable: apt-get install -y redis-server" >&2; exit 1; }

# Build every test and the runtime's binary in one go (one feature resolution, so
# wasmtime compiles once), then every component of spin.toml the way `spin build`
# does.
cargo test --no-run
target/debug/minispin build --file spin.toml

cargo test --no-fail-fast

if [ -x scripts/browser-test.sh ]; then
  scripts/browser-test.sh
fi

# The OpenAPI document against the served app: schemathesis (PyPI), about two minutes.
scripts/schemathesis.sh
