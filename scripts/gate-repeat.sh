#!/usr/bin/env bash
# Runs the gate N times (default 10) against the local environment and tallies the verdicts:
#   scripts/gate-repeat.sh [N] [SHAPE] [FAULT]
# SHAPE: gate (default) or smoke. FAULT (scripts/fault.py): critical-log, redis-frozen or postgres-frozen,
# injected before each run and removed after it.
# Healthy (no FAULT): exit 0 when no run FAILed and every run gave a verdict (PASS, WARN, or INCONCLUSIVE:
# the load generator was starved, exit 3, not the stack's fault). With a FAULT: exit 0 when every run
# FAILed. Not part of every CI run: about 1.5 minutes per full gate. Each run's output goes to
# reports/gate-repeat-<i>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shape=${2:-gate}
fault=${3:-}
make -s up || exit 2
mkdir -p reports
declare -A tally=([PASS]=0 [WARN]=0 [FAIL]=0 [INCONCLUSIVE]=0 [none]=0)
for i in $(seq 1 "$runs"); do
  log="reports/gate-repeat-$i.log"
  [ -n "$fault" ] && { .venv/bin/python scripts/fault.py on "$fault" || exit 2; }
  .venv/bin/codexops gate --target local --shape "$shape" >"$log" 2>&1
  code=$?
  [ -n "$fault" ] && { .venv/bin/python scripts/fault.py off "$fault" || exit 2; }
  verdict=$(grep -o 'verdict: [A-Z]*' "$log" | tail -n 1 | cut -d' ' -f2)
  verdict=${verdict:-none}
  tally[$verdict]=$((${tally[$verdict]:-0} + 1))
  echo "run $i/$runs: ${verdict} (exit $code; $(grep -o 'report: .*' "$log" | tail -n 1))"
  grep -E '^    - ' "$log" | head -n 3
done
echo "gate ($shape${fault:+, fault $fault}) x $runs: PASS ${tally[PASS]}, WARN ${tally[WARN]}," \
  "INCONCLUSIVE ${tally[INCONCLUSIVE]}, FAIL ${tally[FAIL]}, no verdict ${tally[none]}"
if [ -n "$fault" ]; then
  [ "${tally[FAIL]}" -eq "$runs" ]
else
  [ "${tally[FAIL]}" -eq 0 ] && [ "${tally[none]}" -eq 0 ]
fi
