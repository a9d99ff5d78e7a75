#!/usr/bin/env bash
# What opening SQLite costs a request on Spin, whatever the app does with it: the
# runtime's test component, each request opening the `default` database and running
# one primary-key SELECT, on databases of growing schema:
#   - no database (the trivial route of the same component),
#   - a one-table database,
#   - the app's tables alone (a copy of APP_DB without its triggers and indexes),
#   - the app's database as it is (APP_DB).
# Each request pays a new connection and a parse of the whole schema, as on Spin,
# so no app whose requests open this schema can run faster than the last row.
#
#   scripts/bench-sqlite-floor.sh MINISPIN APP_DB    # scripts/bench-api.sh runs it
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] || { echo "usage: $0 MINISPIN APP_DB" >&2; exit 2; }
minispin=$1
app_db=$2
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$PWD/$TARGET_DIR" ;; esac
PROBE="SELECT id FROM accounts WHERE id = 'probe'"

cargo build -q --target wasm32-wasip2 --profile wasm -p minispin-test-http

work=$(mktemp -d)
server=""
BASE=""
stop() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT

cat >"$work/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "sqlite-floor"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "$TARGET_DIR/wasm32-wasip2/wasm/minispin_test_http.wasm"
sqlite_databases = ["default"]
TOML
cat >"$work/probe.lua" <<LUA
wrk.method = "POST"
wrk.body = "$PROBE"
LUA

sql() { # one statement on a new connection, as the probe runs it
  curl -sf -X POST --data-binary "$1" "$BASE/sqlite/query"
}

start() { # state dir; a free port, so nothing else answers in its place
  RUST_LOG=warn "$minispin" up --file "$work/spin.toml" --listen 127.0.0.1:0 \
    --state-dir "$1" >"$1/stdout" 2>"$1/stderr" &
  server=$!
  for _ in $(seq 1 100); do
    BASE=$(sed -n 's/^Serving //p' "$1/stdout" | head -n1)
    [ -z "$BASE" ] || return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "minispin did not start:" >&2; cat "$1/stderr" >&2; exit 1
}

copy_app_db() { # state dir
  cp "$app_db" "$1/sqlite_db.db"
  if [ -f "$app_db-wal" ]; then cp "$app_db-wal" "$1/sqlite_db.db-wal"; fi
}

schema() {
  sql "SELECT group_concat(n || ' ' || type || IIF(n = 1, '', IIF(type = 'index', 'es', 's')), ', ')
       FROM (SELECT type, count(*) AS n FROM sqlite_schema WHERE sql IS NOT NULL
             GROUP BY type ORDER BY CASE type WHEN 'table' THEN 1 WHEN 'index' THEN 2 ELSE 3 END)"
}

trivial_rps=""
measure() { # row name, database (none, one_table, app_tables, app)
  local name=$1 prepare=$2 state out rps p50 p99 errors path=/sqlite/query lua="$work/probe.lua"
  state=$(mktemp -d -p "$work")
  case $prepare in app | app_tables) copy_app_db "$state" ;; esac
  start "$state"
  case $prepare in
    none) path=/hello lua="" ;;
    one_table)
      sql "PRAGMA journal_mode = WAL" >/dev/null  # as the app's migration leaves its file
      sql "CREATE TABLE accounts (id TEXT PRIMARY KEY, plan TEXT NOT NULL) WITHOUT ROWID" >/dev/null ;;
    app_tables)
      sql "SELECT type || ' ' || name FROM sqlite_schema
           WHERE sql IS NOT NULL AND type IN ('trigger', 'index')" >"$state/drops"
      # The answer has no newline after its last line.
      while read -r object || [ -n "$object" ]; do sql "DROP $object" >/dev/null; done <"$state/drops" ;;
  esac
  local objects="none"
  [ "$prepare" = none ] || { sql "$PROBE" >/dev/null; objects=$(schema); }
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency ${lua:+-s "$lua"} "$BASE$path")
  stop
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -n "$trivial_rps" ] || trivial_rps=$rps
  printf '| %-34s | %-34s | %9s | %9.3f | %8s | %8s | %s |\n' "$name" "$objects" "$rps" \
    "$(awk -v a="$rps" -v b="$trivial_rps" 'BEGIN {print a / b}')" "$p50" "$p99" "${errors:-0}"
}

echo "| each request                       | schema                             |   req/s   | × trivial |   p50    |   p99    | non-2xx |"
echo "|------------------------------------|------------------------------------|-----------|-----------|----------|----------|---------|"
measure "answers, opens nothing (trivial)" none
measure "opens SQLite, one SELECT" one_table
measure "opens SQLite, one SELECT" app_tables
measure "opens SQLite, one SELECT" app
