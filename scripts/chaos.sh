#!/usr/bin/env bash
# A chaos soak on the real binaries (docs/testing-chaos.md): 3 controllers and
# 3 agents on 127.0.0.1, concurrent clients and watchers, a seeded nemesis,
# then the checkers; prints a summary (operations by outcome, faults
# injected, anomalies) and exits non-zero on any anomaly.
#
#   scripts/chaos.sh [--time 600] [--seed S] [--faults kill,pause,partition,slow,agent-kill,agent-pause]
#                    [--clients N] [--shards N] [--plant stale-read|drop-watch-event --expect CLASS]
#                    [--dir DIR] [--bin DIR]
#
# Needs build/bin/tenure-controller and tenure-agent (cmake --build build).
# Without --seed a fresh one is drawn and printed, so any run can be replayed.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
have_seed=0
have_time=0
for a in "${args[@]}"; do
  case "$a" in
    --seed|--seed=*) have_seed=1 ;;
    --time|--time=*) have_time=1 ;;
  esac
done
if [[ $have_seed == 0 ]]; then
  seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))
  echo "chaos: seed $seed"
  args+=(--seed "$seed")
fi
[[ $have_time == 1 ]] || args+=(--time 600)
exec python3 -u tests/chaos/chaos.py --bin "${TENURE_BIN_DIR:-build/bin}" "${args[@]}"
