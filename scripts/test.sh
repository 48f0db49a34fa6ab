#!/usr/bin/env bash
# Every test, in two groups at once, each in its own isolated network namespace: the tests that
# wait on a hanging 100ms (they sleep through most of their ten minutes, by design: the proof is
# that nothing else waits with them), beside all the others. Extra arguments go to the second.
set -uo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/pytest -q -p no:cacheprovider --durations=15)
# Each test has its own limit (pyproject's `timeout`); this bounds a group as a whole, with
# SIGINT first so that pytest still prints what ran and what failed.
bounded=(timeout --signal=INT --kill-after=60 50m)
waiting=(
  tests/integration/test_go_live_slow.py
  tests/integration/test_slow_100ms_after_go_live.py
  tests/integration/test_end_room_retry.py
)
ignored=()
for file in "${waiting[@]}"; do ignored+=(--ignore "$file"); done
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"${bounded[@]}" scripts/isolated.sh "${pytest[@]}" "${waiting[@]}" >"$log" 2>&1 &
waiting_pid=$!
"${bounded[@]}" scripts/isolated.sh "${pytest[@]}" "${ignored[@]}" "$@"
others=$?
wait "$waiting_pid"
slow=$?
echo "--- the tests that wait on a hanging 100ms (run beside the others):"
cat "$log"
if ((others != 0 || slow != 0)); then exit 1; fi
