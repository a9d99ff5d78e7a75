#!/usr/bin/env bash
# Load-tests the app on loopback with wrk: requests per second and p50/p99 latency
# at 32 connections for deductions, hold + settle pairs, the balance page and the
# usage report, beside the runtime's trivial-component figure
# (scripts/bench-runtime.sh, run first in the same run); then what opening the
# app's database alone costs a request (scripts/bench-sqlite-floor.sh), and each
# component's release .wasm size. The runtime opens
# SQLite as Spin does (a new connection per open, no pragmas of its own), so these are the
# figures a deployment on Spin gets. Bounded: DURATION s per scenario.
#
#   scripts/bench-api.sh                 # release build of minispin (slow first time)
#   PROFILE=dev scripts/bench-api.sh     # reuse the test build (deps optimized)
#   HOST_SQLITE_FLAGS=-DSQLITE_DEFAULT_MEMSTATUS=0 scripts/bench-api.sh
#       # a host whose bundled SQLite is compiled with other flags (LIBSQLITE3_FLAGS, as
#       # an operator building Spin from source would pass them); its own target dir.
#       # The trivial component has no SQLite: bench-runtime.sh measures it on the default build.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PROFILE="${PROFILE:-release}"
export DURATION CONNECTIONS THREADS PROFILE
PORT="${PORT:-3917}"
BASE="http://127.0.0.1:$PORT"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
rustup target add wasm32-wasip2 >/dev/null
scripts/bench-runtime.sh 2>/dev/null | sed -n '/^== minispin benchmark/,$p'
profile_dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
if [ -n "${HOST_SQLITE_FLAGS:-}" ]; then
  # Only SQLite's compile flags differ; the default build stays as it is.
  LIBSQLITE3_FLAGS="$HOST_SQLITE_FLAGS" CARGO_TARGET_DIR=target/host-sqlite-flags \
    cargo build -q --profile "$PROFILE" -p minispin
  minispin="target/host-sqlite-flags/$profile_dir/minispin"
else
  cargo build -q --profile "$PROFILE" -p minispin
  minispin="target/$profile_dir/minispin"
fi
"$minispin" build --file spin.toml >/dev/null 2>&1

state=$(mktemp -d)
export BENCH_SERVICE_TOKEN="bench-$(date +%s)"
SPIN_VARIABLE_SERVICE_TOKEN="$BENCH_SERVICE_TOKEN" RUST_LOG=warn "$minispin" up --file spin.toml \
  --listen "127.0.0.1:$PORT" --state-dir "$state" >"$state/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "$BASE/" && break; sleep 0.2; done

key=$(curl -sf -H "Authorization: Bearer $BENCH_SERVICE_TOKEN" -H "Content-Type: application/json" \
  "$BASE/api/admin/accounts" -d '{"account_id":"bench","plan":"team"}' \
  | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
export BENCH_ACCOUNT_KEY="$key"
for i in $(seq 1 20); do  # some history to read
  curl -sf -o /dev/null -H "Authorization: Bearer $BENCH_SERVICE_TOKEN" -H "Content-Type: application/json" \
    "$BASE/api/billing/credits/deductions" -d '{"account_id":"bench","tokens":1,"operation":"warm"}'
done

run() { # name, path, [script]
  local name=$1 path=$2 script=${3:-}
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency ${script:+-s "$script"} "$BASE$path")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-34s | %10s | %8s | %8s | %s |\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
}

echo
echo "$(nproc) cores, ${CONNECTIONS} connections, ${DURATION}s each; the host's SQLite: ${HOST_SQLITE_FLAGS:-as Spin builds it, the flags of the rusqlite bundled build}"
echo "| scenario                           |   req/s    |   p50    |   p99    | non-2xx |"
echo "|------------------------------------|------------|----------|----------|---------|"
run "the app's JSON 404 (no storage)" "/no-such-route"
run "GET /api/billing/credits" "/api/billing/credits" bench/balance.lua
run "POST /api/billing/credits/deductions" "/api/billing/credits/deductions" bench/deduct.lua
run "GET /api/billing/credits/usage" "/api/billing/credits/usage?group_by=project" bench/usage.lua
# A streaming call's billing: hold, then settle (pairs per second = req/s / 2).
run "POST …/holds + …/settle (requests)" "/api/billing/credits/holds" bench/holds.lua

echo
balance=$(curl -sf -H "Authorization: Bearer $key" "$BASE/api/billing/credits?limit=1")
echo "after the run: $(sed 's/.*"plan":{[^}]*"used_tokens":\([0-9]*\).*/plan used_tokens=\1/' <<<"$balance")"

# The floor under every row above: what opening this database costs a request.
kill "$server"; wait "$server" 2>/dev/null || true
echo
echo "Opening SQLite as Spin does, this run's database and smaller ones (scripts/bench-sqlite-floor.sh):"
scripts/bench-sqlite-floor.sh "$minispin" "$state/sqlite_db.db"
echo
echo "| component | release .wasm |"
echo "|---|---|"
for f in target/wasm32-wasip2/wasm/*.wasm; do
  printf '| %s | %s KiB |\n' "$(basename "$f" .wasm)" "$(( $(stat -c %s "$f") / 1024 ))"
done
