#!/usr/bin/env bash
# Schemathesis (PyPI) against the whole app served by minispin, with a throwaway
# state dir: every operation of the OpenAPI document that the app serves at
# /api/openapi.json, generated from the document and checked against it (no 5xx,
# status codes, content types, headers and bodies as documented, schema-violating
# requests refused), then its stateful mode along the document's links.
#
#   scripts/schemathesis.sh                    # run (scripts/test.sh builds first)
#   MAX_EXAMPLES=50 scripts/schemathesis.sh    # deeper; default 15 per operation
#   MINISPIN=... SPIN_MANIFEST=... ARTIFACTS_DIR=...  # overrides
#
# Three runs, each under its own time budget so the whole stays within about two
# minutes: each operation with the token its security scheme names (all phases,
# stateful included), then every operation with the service token, then every
# operation with an account key (the wrong kind answers 403, which must match the
# document too). Exits non-zero on any finding; reports go to $ARTIFACTS_DIR
# (default target/schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

minispin=${MINISPIN:-$root/target/debug/minispin}
manifest=${SPIN_MANIFEST:-$root/spin.toml}
artifacts=${ARTIFACTS_DIR:-$root/target/schemathesis}
venv=$root/target/schemathesis-venv
max_examples=${MAX_EXAMPLES:-15}
service_token=schemathesis-service-token
# Pinned so a new release cannot change what passes; bump deliberately.
schemathesis_version=4.32.5

log() { printf '[schemathesis] %s\n' "$*" >&2; }

# --- What the run needs ------------------------------------------------------------
if [ ! -x "$venv/bin/schemathesis" ] \
  || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  log "installing schemathesis $schemathesis_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
if [ ! -x "$minispin" ]; then
  log "building minispin (scripts/test.sh normally has)"
  cargo build -p minispin
fi
if [ "$manifest" = "$root/spin.toml" ] && [ ! -f target/wasm32-wasip2/wasm/not_found.wasm ]; then
  log "building the components (scripts/test.sh normally has)"
  "$minispin" build --file spin.toml
fi

# --- The app, on a free loopback port, with throwaway state ---------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
rm -rf "$artifacts"
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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
mkdir -p "$tmp/state"
log "starting minispin on $url (state in $tmp/state)"
# The test clock is on: X-Test-Clock is part of the document, so it is fuzzed too.
SPIN_VARIABLE_SERVICE_TOKEN="$service_token" SPIN_VARIABLE_TEST_CLOCK=true \
  "$minispin" up --file "$manifest" --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

for i in $(seq 1 240); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "minispin exited before answering"
    exit 1
  fi
  if curl -s -o /dev/null --max-time 2 "$url/api/openapi.json"; then break; fi
  if [ "$i" -eq 240 ]; then log "minispin did not answer within 60 s"; exit 1; fi
  sleep 0.25
done

# --- Seed: the account the document's examples name, with credits to spend -----------
api() { # METHOD PATH TOKEN [BODY]
  curl -sS --fail-with-body -X "$1" "$url$2" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
log "seeding the account acme"
account_key=$(api POST /api/admin/accounts "$service_token" '{"account_id":"acme","plan":"pro"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
api PUT /api/billing/payment-method "$account_key" '{"payment_method":"pm_card_visa"}' >/dev/null
api POST /api/billing/credits/purchases "$account_key" '{"pack":"pro"}' >/dev/null
api POST /api/billing/credits/deductions "$service_token" \
  '{"account_id":"acme","tokens":1200,"operation":"enrichment"}' >/dev/null

# Each operation gets the token of the scheme it declares.
cat >"$tmp/schemathesis.toml" <<EOF
[auth.openapi.serviceToken]
bearer = "$service_token"

[auth.openapi.accountKey]
bearer = "$account_key"
EOF

# positive_data_acceptance is left out: a valid body naming an account that does not
# exist, or more tokens than it has, is rightly refused (404, 402, 409).
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks=$checks,response_headers_conformance,response_schema_conformance
checks=$checks,negative_data_rejection,missing_required_header,unsupported_method
checks=$checks,allow_header_conformance,use_after_free,ensure_resource_availability

st() { # NAME CONFIG [ARGS...]
  local name=$1 config=$2
  shift 2
  log "run: $name"
  # From the throwaway dir: schemathesis keeps a .schemathesis cache where it runs.
  (cd "$tmp" && timeout 300 "$venv/bin/schemathesis" --config-file "$config" --no-color \
    run "$url/api/openapi.json" \
    --checks "$checks" --max-examples "$max_examples" --seed 1 --workers 1 \
    --request-timeout 10 --suppress-health-check all \
    --report junit --report-junit-path "$artifacts/junit-$name.xml" \
    --exclude-path / "$@")
}

result=0
# The dashboard (GET /, HTML) is left out: it is the browser tests' subject.
st scheme-tokens "$tmp/schemathesis.toml" --phases examples,coverage,fuzzing,stateful \
  --max-time 60 || result=1

printf '' >"$tmp/none.toml"
st service-token "$tmp/none.toml" --phases examples,fuzzing --max-time 20 \
  -H "Authorization: Bearer $service_token" || result=1
st account-key "$tmp/none.toml" --phases examples,fuzzing --max-time 20 \
  -H "Authorization: Bearer $account_key" || result=1

if [ "$result" -eq 0 ]; then log "schemathesis passed"; else log "schemathesis FAILED"; fi
exit "$result"
