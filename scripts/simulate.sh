#!/usr/bin/env bash
# The deterministic fault simulation (crates/credits/tests/simulation.rs) over many
# seeds, split across the machine's cores, in a release-optimized test build.
#
#   scripts/simulate.sh                  # 100,000 seeds of 120 steps
#   SEEDS=10000 STEPS=500 scripts/simulate.sh
#
# Prints each slice's summary and the wall time; a failure prints its seed and the
# command that replays it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS="${SEEDS:-100000}"
STEPS="${STEPS:-120}"
JOBS="${JOBS:-$(nproc)}"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
# Each seed's database lives in a temporary directory: in memory where there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
logs="${CARGO_TARGET_DIR:-target}"
mkdir -p "$logs"

cargo test -q --release -p credits --test simulation --no-run
start=$(date +%s)
per=$(( (SEEDS + JOBS - 1) / JOBS ))
pids=()
for j in $(seq 0 $((JOBS - 1))); do
  from=$(( 1 + j * per ))
  count=$(( from + per - 1 > SEEDS ? SEEDS - from + 1 : per ))
  [ "$count" -gt 0 ] || continue
  SIM_SEED_FROM=$from SIM_SEEDS=$count SIM_STEPS=$STEPS \
    cargo test -q --release -p credits --test simulation seeds_keep_every_invariant -- --nocapture \
    > "$logs/simulate-$j.log" 2>&1 &
  pids+=($!)
done
failed=0
for j in "${!pids[@]}"; do
  if ! wait "${pids[$j]}"; then failed=1; fi
  grep -E "seeds|replay|panicked" "$logs/simulate-$j.log" || true
done
echo "$SEEDS seeds × $STEPS steps on $JOBS cores: $(( $(date +%s) - start )) s"
exit $failed
