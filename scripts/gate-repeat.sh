#!/usr/bin/env bash
# Runs the healthy gate N times (default 10) against the local environment and reports how many
# passed. Not part of every CI run: it takes about a minute per gate.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
make -s up || exit 2
mkdir -p reports
passed=0
for i in $(seq 1 "$runs"); do
  log="reports/gate-repeat-$i.log"
  .venv/bin/codexops gate --target local >"$log" 2>&1
  verdict=$(grep -o 'verdict: [A-Z]*' "$log" | tail -n 1)
  echo "run $i/$runs: ${verdict:-no verdict} ($(grep -o 'report: .*' "$log" | tail -n 1))"
  [ "$verdict" = "verdict: PASS" ] && passed=$((passed + 1))
done
echo "healthy gate: $passed of $runs passed"
[ "$passed" -eq "$runs" ]
