#!/usr/bin/env bash
# Builds every component and serves the app on 127.0.0.1:3000, state under .spin/.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2

export SPIN_VARIABLE_SERVICE_TOKEN="${SPIN_VARIABLE_SERVICE_TOKEN:-dev-service-token}"
echo "service token: \$SPIN_VARIABLE_SERVICE_TOKEN (default 'dev-service-token')"
exec cargo run -p minispin -- up --build --file spin.toml --listen "${LISTEN:-127.0.0.1:3000}" "$@"
