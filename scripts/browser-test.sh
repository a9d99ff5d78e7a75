#!/usr/bin/env bash
# Browser tests of the billing dashboard: headless Chromium (Debian's) driven by
# playwright-core against the whole app served by minispin, with a throwaway state dir.
#
#   scripts/browser-test.sh                     # run (scripts/test.sh builds first)
#   UPDATE_SCREENSHOTS=1 scripts/browser-test.sh  # also rewrite docs/dashboard-*.png
#   MINISPIN=... SPIN_MANIFEST=... CHROMIUM_PATH=... ARTIFACTS_DIR=...  # overrides
#
# Installs what it needs if missing (Debian `chromium`, `npm ci` in tests/browser),
# starts `minispin up` on a free loopback port, seeds accounts through the service
# API, runs `node --test`, and always stops the server. Exits non-zero if a test fails.
# Reports (TAP on stdout, JUnit XML), screenshots and the server log go to
# $ARTIFACTS_DIR (default target/browser-test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
minispin=${MINISPIN:-$root/target/debug/minispin}
manifest=${SPIN_MANIFEST:-$root/spin.toml}
artifacts=${ARTIFACTS_DIR:-$root/target/browser-test}
service_token=${SPIN_VARIABLE_SERVICE_TOKEN:-browser-test-service-token}

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

# --- The app, on a free loopback port, with throwaway state ---------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/browser-test.XXXXXX")
mkdir -p "$artifacts"
server_pid=""
cleanup() {
  status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  cp "$tmp/server.log" "$artifacts/server.log" 2>/dev/null || true
  if [ "$status" -ne 0 ] && [ -f "$tmp/server.log" ]; then
    log "server log (last 40 lines):"
    tail -n 40 "$tmp/server.log" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });")
url="http://127.0.0.1:$port"
mkdir -p "$tmp/state"
log "starting minispin on $url (state in $tmp/state)"
SPIN_VARIABLE_SERVICE_TOKEN="$service_token" SPIN_VARIABLE_TEST_CLOCK=true \
  "$minispin" up --file "$manifest" --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

for i in $(seq 1 240); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "minispin exited before answering"
    exit 1
  fi
  if curl -s -o /dev/null --max-time 2 "$url/"; then break; fi
  if [ "$i" -eq 240 ]; then log "minispin did not answer within 60 s"; exit 1; fi
  sleep 0.25
done

# --- Seed and run ------------------------------------------------------------------
export DASHBOARD_URL="$url" SPIN_VARIABLE_SERVICE_TOKEN="$service_token"
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
