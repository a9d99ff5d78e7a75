#!/usr/bin/env bash
# Browser tests of the billing dashboard: headless Chromium (Debian's) driven by
# playwright-core against the whole app served by minispin, with throwaway state dirs.
#
#   scripts/browser-test.sh                     # run (scripts/test.sh builds first)
#   UPDATE_SCREENSHOTS=1 scripts/browser-test.sh  # also rewrite docs/dashboard-*.png
#   MINISPIN=... SPIN_MANIFEST=... CHROMIUM_PATH=... ARTIFACTS_DIR=... FAKE_STRIPE=...  # overrides
#
# Installs what it needs if missing (Debian `chromium`, `npm ci` in tests/browser),
# builds tests/fake-stripe's binary (cargo: a no-op when it is current), and serves the
# app twice on free loopback ports: with the sandbox (the default provider), and with
# payment_provider=stripe against fake-stripe, which sends its signed webhooks to that
# second app. Seeds accounts through the service API, runs `node --test`, and always
# stops all three. Exits non-zero if a test fails. Reports (TAP on stdout, JUnit XML),
# screenshots and the logs go to $ARTIFACTS_DIR (default target/browser-test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
minispin=${MINISPIN:-$root/target/debug/minispin}
manifest=${SPIN_MANIFEST:-$root/spin.toml}
artifacts=${ARTIFACTS_DIR:-$root/target/browser-test}
service_token=${SPIN_VARIABLE_SERVICE_TOKEN:-browser-test-service-token}
fake_stripe=${FAKE_STRIPE:-}
# fake-stripe's keys (fake_stripe::SECRET, fake_stripe::PUBLISHABLE_KEY): test values,
# accepted by nothing but that test server. The webhook secret is the tests' own.
stripe_secret_key=sk_test_51FakeSecretKeyForTests
stripe_publishable_key=pk_test_browser
stripe_webhook_secret=whsec_browser_tests

log() { printf '[browser-test] %s\n' "$*" >&2; }

# --- What the tests need -------------------------------------------------------------
if [ ! -x "$chromium" ]; then
  log "installing Debian's chromium"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
fi
if [ ! -f tests/browser/node_modules/.package-lock.json ] \
  || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  log "npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
if [ ! -x "$minispin" ]; then
  log "building minispin (scripts/test.sh normally has)"
  cargo build -p minispin
fi
if [ "$manifest" = "$root/spin.toml" ] && [ ! -f target/wasm32-wasip2/wasm/dashboard.wasm ]; then
  log "building the components (scripts/test.sh normally has)"
  "$minispin" build --file spin.toml
fi
if [ -z "$fake_stripe" ]; then
  # scripts/test.sh builds no binary of it: cargo builds it, or finds it current.
  log "cargo build -p fake-stripe"
  cargo build --quiet -p fake-stripe --bin fake-stripe
  fake_stripe=${CARGO_TARGET_DIR:-$root/target}/debug/fake-stripe
fi

# --- The apps and fake-stripe, on free loopback ports, with throwaway state -----------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/browser-test.XXXXXX")
mkdir -p "$artifacts"
pids=()
LOGS=(server.log server-stripe.log fake-stripe.log)
stop() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do stop "$pid"; done
  for name in "${LOGS[@]}"; do
    cp "$tmp/$name" "$artifacts/$name" 2>/dev/null || true
    if [ "$status" -ne 0 ] && [ -s "$tmp/$name" ]; then
      log "$name (last 40 lines):"
      tail -n 40 "$tmp/$name" >&2 || true
    fi
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });"
}

# serve PORT LOG [NAME=VALUE...]: `minispin up` with these variables added to its
# environment (SPIN_VARIABLE_*), and its own state dir.
serve() {
  local port=$1 name=$2
  shift 2
  mkdir -p "$tmp/state-$port"
  log "starting minispin on http://127.0.0.1:$port (state in $tmp/state-$port, log $name)"
  env SPIN_VARIABLE_SERVICE_TOKEN="$service_token" "$@" \
    "$minispin" up --file "$manifest" --listen "127.0.0.1:$port" --state-dir "$tmp/state-$port" \
    >"$tmp/$name" 2>&1 &
  pids+=($!)
}

# answers PID URL: waits until the server answers on URL, up to 60 s.
answers() {
  local pid=$1 url=$2
  for i in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the server for $url exited before answering"
      return 1
    fi
    if curl -s -o /dev/null --max-time 2 "$url/"; then return 0; fi
    if [ "$i" -eq 240 ]; then log "$url did not answer within 60 s"; return 1; fi
    sleep 0.25
  done
}

port=$(free_port)
stripe_port=$(free_port)
while [ "$stripe_port" = "$port" ]; do stripe_port=$(free_port); done
url="http://127.0.0.1:$port"
stripe_url="http://127.0.0.1:$stripe_port"

log "starting fake-stripe (webhooks to $stripe_url)"
"$fake_stripe" --webhook-url "$stripe_url/api/webhooks/stripe" --webhook-secret "$stripe_webhook_secret" \
  >"$tmp/fake-stripe.url" 2>"$tmp/fake-stripe.log" &
pids+=($!)
fake_stripe_url=""
for _ in $(seq 1 100); do
  fake_stripe_url=$(head -n 1 "$tmp/fake-stripe.url" 2>/dev/null || true)
  if [ -n "$fake_stripe_url" ]; then break; fi
  sleep 0.1
done
if [ -z "$fake_stripe_url" ]; then log "fake-stripe did not start"; exit 1; fi
log "fake-stripe on $fake_stripe_url"

serve "$port" server.log SPIN_VARIABLE_TEST_CLOCK=true
sandbox_pid=${pids[-1]}
serve "$stripe_port" server-stripe.log \
  SPIN_VARIABLE_PAYMENT_PROVIDER=stripe \
  SPIN_VARIABLE_STRIPE_SECRET_KEY="$stripe_secret_key" \
  SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET="$stripe_webhook_secret" \
  SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY="$stripe_publishable_key" \
  SPIN_VARIABLE_STRIPE_API_BASE="$fake_stripe_url"
stripe_pid=${pids[-1]}
answers "$sandbox_pid" "$url"
answers "$stripe_pid" "$stripe_url"

# --- Seed and run ------------------------------------------------------------------
export DASHBOARD_URL="$url" SPIN_VARIABLE_SERVICE_TOKEN="$service_token"
export STRIPE_DASHBOARD_URL="$stripe_url" FAKE_STRIPE_URL="$fake_stripe_url"
export DASHBOARD_ACCOUNTS="$tmp/accounts.json" ARTIFACTS_DIR="$artifacts" CHROMIUM_PATH="$chromium"
log "seeding accounts"
timeout 300 node tests/browser/seed.mjs >"$DASHBOARD_ACCOUNTS"

log "running the browser tests"
cd tests/browser
set +e
timeout 900 node --test --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=junit --test-reporter-destination="$artifacts/junit.xml"
result=$?
set -e
if [ "$result" -eq 0 ]; then log "browser tests passed"; else log "browser tests FAILED (exit $result)"; fi
exit "$result"
