#!/usr/bin/env bash
# Benchmarks minispin serving a trivial component on loopback: requests per second
# and p50/p99 latency at 32 connections (wrk), plus the runtime's own per-request
# instantiation time. Bounded: DURATION seconds of load (default 10).
#
#   scripts/bench-runtime.sh            # 10 s at 32 connections
#   DURATION=30 CONNECTIONS=64 scripts/bench-runtime.sh
#   PROFILE=dev scripts/bench-runtime.sh   # reuse the test build, no release compile
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
# release (default) or dev: dev reuses the test build (dependencies, wasmtime included,
# are optimized in the dev profile too) and skips a long release compile of wasmtime.
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$PWD/$TARGET_DIR" ;; esac

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true

echo "building minispin ($PROFILE) and the trivial test component" >&2
cargo build --profile "$PROFILE" -p minispin
bin_dir="$TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
cargo build --target wasm32-wasip2 --profile wasm -p minispin-test-http

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "$TARGET_DIR/wasm32-wasip2/wasm/minispin_test_http.wasm"
TOML

# Per-request log lines off (RUST_LOG=warn): this measures the runtime, not the terminal.
RUST_LOG=warn "$bin_dir/minispin" up --file "$work/spin.toml" \
  --listen 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^Serving ' "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base="$(sed -n 's/^Serving //p' "$work/stdout" | head -n1)"
[ -n "$base" ] || { echo "minispin did not start:" >&2; cat "$work/stderr" >&2; exit 1; }
url="$base/hello"
curl -fsS "$url" >/dev/null 2>&1 || true

echo "wrk: ${DURATION}s, ${CONNECTIONS} connections, ${THREADS} threads, GET $url" >&2
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" | tee "$work/wrk"

kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""

rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk")"
p50="$(awk '$1 == "50%" {print $2}' "$work/wrk")"
p99="$(awk '$1 == "99%" {print $2}' "$work/wrk")"
inst="$(sed -n 's/^minispin: //p' "$work/stderr")"
echo
echo "== minispin benchmark ($PROFILE build, ${CONNECTIONS} connections, ${DURATION}s, $(nproc) cores)"
echo "requests/s:    $rps"
echo "latency p50:   $p50"
echo "latency p99:   $p99"
echo "instantiation: $inst"
