#!/usr/bin/env bash
# The default test suite N times in a row (default 5), to catch tests that
# pass only sometimes: state left between tests, races between xdist
# workers, timing. Prints each run's pass/fail/skip counts and fails when any
# run failed.
#
#   ci/repeat_suite.sh [N] [PYTEST_ARGS...]
#
# PYTEST_ARGS replace the default selection (conformance/), e.g.
# `ci/repeat_suite.sh 20 conformance/test_sequences.py`. The ports must be
# built (`make setup`). Environment (optional):
#   JOBS                      pytest-xdist workers (default 2, as `make test`)
#   ISOWASM_REQUIRE_BACKENDS  backends that must be available (default: make test's)
#   REPEAT_LOGS               where each run's output is kept (default results/repeat)
#
# Last line: REPEAT_OK or REPEAT_FAIL.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-2}
N=5
if [ $# -gt 0 ]; then
  case $1 in
    ''|*[!0-9]*) ;;
    *) N=$1; shift ;;
  esac
fi
if [ "$N" -lt 1 ]; then
  echo "usage: ci/repeat_suite.sh [N >= 1] [PYTEST_ARGS...]" >&2
  exit 2
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(conformance/)
export ISOWASM_REQUIRE_BACKENDS=${ISOWASM_REQUIRE_BACKENDS:-reference,wasmtime,rust,ocaml,transformer}
LOGS=${REPEAT_LOGS:-results/repeat}
mkdir -p "$LOGS"

failed=()
for i in $(seq 1 "$N"); do
  log="$LOGS/run-$i.log"
  start=$SECONDS
  $PYTHON -m pytest "${args[@]}" -n "$JOBS" -q >"$log" 2>&1
  rc=$?
  # pytest's last line: "== 812 passed, 14 skipped, 2 xfailed in 171.20s ==" (or -q's bare form)
  summary=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed)' "$log" | tail -n 1 \
            | sed -E 's/=+//g; s/^ +| +$//g')
  passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  printf 'run %d/%d: exit %d, %s passed (%s) in %ds, log %s\n' \
    "$i" "$N" "$rc" "${passed:-0}" "${summary:-no summary line}" $((SECONDS - start)) "$log"
  if [ "$rc" -ne 0 ]; then
    failed+=("$i")
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /' | head -n 20
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed runs: ${failed[*]} of $N"
  echo "REPEAT_FAIL"
  exit 1
fi
echo "all $N runs passed"
echo "REPEAT_OK"
