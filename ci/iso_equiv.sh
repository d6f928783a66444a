#!/usr/bin/env bash
# Build every port from scratch, then check that all implementations agree
# byte for byte on the examples, the compliance suite and a fixed-seed batch
# of generated programs. Last line: ISO_EQUIV_OK or ISO_EQUIV_FAIL.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

fail() { echo "build failed: $1"; echo "ISO_EQUIV_FAIL"; exit 1; }

rm -rf ports/rust/target ports/ocaml/_build transformer/engine/target
$PYTHON -m pip install -q ./ports/rust || fail "rust port (pip install ./ports/rust)"
(cd ports/ocaml && dune build 2>&1) || fail "ocaml port (dune build)"
$PYTHON -m pip install -q ./transformer/engine || fail "transformer engine (pip install ./transformer/engine)"
$PYTHON -m isowasm.transformer.build >/dev/null || fail "transformer weights (python -m isowasm.transformer.build)"

export ISOWASM_REQUIRE_BACKENDS=${ISOWASM_REQUIRE_BACKENDS:-reference,wasmtime,rust,ocaml,transformer}
exec $PYTHON -m isowasm.iso_equiv "$@"
