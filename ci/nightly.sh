#!/usr/bin/env bash
# The nightly run: a differential fuzzing campaign (isowasm/fuzz.py) for
# ${FUZZ_TIME:-1h}, the regression cases it (and earlier nights) wrote, the
# `slow` test suite, mutation testing (ci/mutation.py), then `isowasm report`
# (FINDINGS.md from results/*.json and results/mutation/*.json).
#
# Environment (all optional):
#   FUZZ_TIME      campaign length: 8h, 30m, 90s ...        (default 1h)
#   FUZZ_SKIP      set: no campaign here (the workflow's shard jobs ran it and merged it)
#   FUZZ_SEED      campaign seed                            (default: today's date, YYYYMMDD)
#   FUZZ_WORKERS   worker processes                         (default: nproc)
#   FUZZ_SHARD     i/N when N machines split one campaign   (default 0/1)
#   FUZZ_BACKENDS  comma-separated backends                 (default: every available non-heavy one)
#   FUZZ_REFERENCE_TRACE  K: trace the Python reference on 1 program in K when
#                  the Rust and OCaml ports cross-check every trace (default 1)
#   FUZZ_OUT       campaign state; a rerun with the same seed resumes it
#                                                           (default results/fuzz/seed-$FUZZ_SEED)
#   JOBS           pytest-xdist workers for the slow suite  (default 2)
#   MUTATION_SKIP  set: no mutation testing here (the workflow's matrix jobs ran it)
#   MUTATION_TIME  time box per component for ci/mutation.py (default 10m; six components)
#   MUTATION_MAX   seeded sample of mutants per component, seed $FUZZ_SEED (default 200)
#   MUTATION_COMPONENTS  comma-separated components          (default: all)
#   ISOWASM_TORCH_MAX_TOKENS  longest trace the heavy tests give transformer-torch,
#                  whose dense attention costs O(n) a token (default 40000 here)
#
# Every step runs even when an earlier one fails; the exit status is non-zero
# when any failed (a campaign that found a divergence counts as failed).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
FUZZ_TIME=${FUZZ_TIME:-1h}
FUZZ_SEED=${FUZZ_SEED:-$(date -u +%Y%m%d)}
FUZZ_WORKERS=${FUZZ_WORKERS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SHARD=${FUZZ_SHARD:-0/1}
FUZZ_OUT=${FUZZ_OUT:-results/fuzz/seed-$FUZZ_SEED}
JOBS=${JOBS:-2}
export ISOWASM_REQUIRE_BACKENDS=${ISOWASM_REQUIRE_BACKENDS:-reference,wasmtime,rust,ocaml}
export ISOWASM_HYPOTHESIS_PROFILE=${ISOWASM_HYPOTHESIS_PROFILE:-nightly}
export ISOWASM_TORCH_MAX_TOKENS=${ISOWASM_TORCH_MAX_TOKENS:-40000}

failed=()
step() {
  local name=$1; shift
  echo "::group::$name" 2>/dev/null || true
  echo "== $name: $*"
  "$@"
  local rc=$?
  echo "== $name: exit $rc"
  echo "::endgroup::" 2>/dev/null || true
  [ "$rc" -eq 0 ] || failed+=("$name ($rc)")
}

mkdir -p results
backends=()
[ -n "${FUZZ_BACKENDS:-}" ] && backends=(--backends "$FUZZ_BACKENDS")
[ -n "${FUZZ_SKIP:-}" ] || step fuzz $PYTHON -m isowasm.cli fuzz --time "$FUZZ_TIME" --seed "$FUZZ_SEED" --workers "$FUZZ_WORKERS" \
  --shard "$FUZZ_SHARD" --out "$FUZZ_OUT" --json results/fuzz.json --regressions conformance/regressions \
  --reference-trace "${FUZZ_REFERENCE_TRACE:-1}" "${backends[@]}"
step regressions $PYTHON -m pytest conformance/test_regressions.py -q -n "$JOBS"
step slow $PYTHON -m pytest conformance/ -n "$JOBS" -q -m slow
# Mutation testing (ci/mutation.py): a fresh seeded sample of each component's
# mutants every night; results/mutation/*.json, rendered by the report.
[ -n "${MUTATION_SKIP:-}" ] || step mutation $PYTHON ci/mutation.py --time-box "${MUTATION_TIME:-10m}" \
  --max-mutants "${MUTATION_MAX:-200}" --seed "$FUZZ_SEED" --out results/mutation \
  ${MUTATION_COMPONENTS:+--component "$MUTATION_COMPONENTS"}
step report $PYTHON -m isowasm.cli report --out results/FINDINGS.md

if [ ${#failed[@]} -gt 0 ]; then
  echo "NIGHTLY_FAIL: ${failed[*]}"
  exit 1
fi
echo "NIGHTLY_OK"
