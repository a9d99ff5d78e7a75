#!/usr/bin/env bash
# Deductions that set off an auto-recharge, with the sandbox (which charges at
# once, inside the deduction) and with Stripe answering every request in
# DELAY_MS (our Stripe-compatible test server, tests/fake-stripe): with Stripe
# the recharge runs after the deduction's answer, so the deduction's p99 must
# not contain the delay. wrk, CONNECTIONS connections, DURATION s per scenario.
#
#   scripts/bench-stripe.sh                 # release build of minispin
#   PROFILE=dev scripts/bench-stripe.sh     # reuse the test build
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PROFILE="${PROFILE:-release}"
DELAY_MS="${DELAY_MS:-300}"
PORT="${PORT:-3918}"
STRIPE_PORT="${STRIPE_PORT:-3919}"
BASE="http://127.0.0.1:$PORT"
STRIPE="http://127.0.0.1:$STRIPE_PORT"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
rustup target add wasm32-wasip2 >/dev/null
cargo build -q --profile "$PROFILE" -p minispin -p fake-stripe
bin="target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
"$bin/minispin" build --file spin.toml >/dev/null 2>&1

state=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
export BENCH_SERVICE_TOKEN="bench-$(date +%s)"
auth=(-H "Authorization: Bearer $BENCH_SERVICE_TOKEN" -H "Content-Type: application/json")

serve() { # provider -> starts the app on a fresh database
  local provider=$1 dir
  dir=$(mktemp -d -p "$state")
  mkdir -p "$dir"
  SPIN_VARIABLE_SERVICE_TOKEN="$BENCH_SERVICE_TOKEN" \
  SPIN_VARIABLE_PAYMENT_PROVIDER="$provider" \
  SPIN_VARIABLE_STRIPE_SECRET_KEY="sk_test_51FakeSecretKeyForTests" \
  SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET="whsec_bench" \
  SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY="pk_test_browser" \
  SPIN_VARIABLE_STRIPE_API_BASE="$STRIPE" \
  RUST_LOG=warn "$bin/minispin" up --file spin.toml --listen "127.0.0.1:$PORT" \
    --state-dir "$dir" >"$dir/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$BASE/" && return; sleep 0.2; done
  echo "the app did not start" >&2; exit 1
}

# A team account with a card and, unless "off", auto-recharge whose threshold
# every deduction stays below: each one sets off an evaluation (one pack in flight
# at a time).
account() { # provider, recharge (on|off)
  local key secret
  key=$(curl -sf "${auth[@]}" "$BASE/api/admin/accounts" -d '{"account_id":"bench","plan":"team"}' \
    | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
  if [ "$1" = stripe ]; then
    # Stripe.js's part, done by hand: confirm the SetupIntent with a test card.
    secret=$(curl -sf -X POST -H "Authorization: Bearer $key" "$BASE/api/billing/payment-method/setup" \
      | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
    curl -sf -o /dev/null "$STRIPE/v1/setup_intents/${secret%%_secret_*}/confirm" \
      -d key=pk_test_browser -d "client_secret=$secret" -d payment_method=pm_card_visa
  fi
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
    "$BASE/api/billing/payment-method" -d '{"payment_method":"pm_card_visa"}'
  if [ "$2" = on ]; then
    curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
      "$BASE/api/billing/credits/auto-recharge" \
      -d '{"enabled":true,"pack":"standard","threshold_tokens":1000000000000,"monthly_limit_eur":"100000.00"}'
  fi
  echo "$key"
}

run() { # name, provider, recharge (on|off), Stripe's delay in ms
  local name=$1 provider=$2 recharge=$3 delay=$4 out rps p50 p99 errors key bought stripe
  "$bin/fake-stripe" --port "$STRIPE_PORT" --delay-ms "$delay" >"$state/stripe.log" 2>&1 &
  stripe=$!
  pids+=("$stripe")
  for _ in $(seq 1 50); do [ -s "$state/stripe.log" ] && break; sleep 0.1; done
  serve "$provider"
  key=$(account "$provider" "$recharge")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/deduct.lua \
    "$BASE/api/billing/credits/deductions")
  sleep $(( delay / 1000 + 2 ))  # the last recharge lands
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  bought=$(curl -sf -H "Authorization: Bearer $key" \
    "$BASE/api/billing/credits/auto-recharge" | sed 's/.*"spent_this_month_eur":"\([^"]*\)".*/\1/')
  printf '| %-44s | %8s | %8s | %8s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}" "$bought"
  kill "$server" "$stripe"; wait "$server" "$stripe" 2>/dev/null || true
}

echo "$(nproc) cores, ${CONNECTIONS} connections, ${DURATION}s each"
echo "| deductions that set off an auto-recharge     |  req/s   |   p50    |   p99    | non-2xx | recharged (EUR) |"
echo "|----------------------------------------------|----------|----------|----------|---------|-----------------|"
run "no auto-recharge (the baseline)" sandbox off 0
run "sandbox (charged inside the deduction)" sandbox on 0
run "Stripe answering at once (after the answer)" stripe on 0
run "Stripe answering in ${DELAY_MS} ms (after the answer)" stripe on "$DELAY_MS"
