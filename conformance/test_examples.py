"""The six example programs on the machine: outputs against the manifest
(itself checked against wasmtime in test_examples_wasm.py), reference traces
against the golden records, and — marked slow — every backend against the
reference by checkpointed digest."""

from __future__ import annotations

import pytest

from conformance import golden
from conformance.conftest import backend, backend_params
from isowasm.suites.examples import load_examples
from isowasm.runner import compare_case
from isowasm.spec.reference import run_reference
from isowasm.spec.trace import canonical_file

EXAMPLES = {e.name: e for e in load_examples()}
GOLDEN = golden.load()


@pytest.fixture(scope="module")
def cases():
    return {}


def _case(cases, name):
    if name not in cases:
        cases[name] = EXAMPLES[name].case()
    return cases[name]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_reference_trace_matches_golden(name, cases):
    ex = EXAMPLES[name]
    case = _case(cases, name)
    g = golden.record_for(GOLDEN[name], case.wasm, len(case.program))
    assert g is not None, (
        f"{name}: no golden record of this module (sha256 {golden.wasm_sha(case.wasm)[:12]}, "
        f"{len(case.program)} instructions, made by {golden.clang_version()}): the toolchain's output "
        "changed, or a clang not seen before made a new module; run `python -m conformance.golden "
        "--update` and review")
    ref = golden.ref_file(name, g)
    mode = "text" if ref.exists() else "digest"
    r = run_reference(case.program, max_steps=ex.max_steps, trace=mode)
    assert (r.status, r.output) == ("halted", ex.expect_output)
    assert (r.steps, r.tokens, r.digest) == (g["steps"], g["tokens"], g["sha256"]), (
        f"{name}: trace changed ({r.steps} steps, {r.tokens} tokens); if the lowering changed on "
        "purpose, run `python -m conformance.golden --update` and review")
    if mode == "text":
        assert canonical_file(case.program, r.trace) == ref.read_text(encoding="ascii")


def test_sudoku_is_a_million_token_run():
    assert all(g["tokens"] >= 1_000_000 for g in GOLDEN["sudoku"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("be", backend_params(exclude=("reference",)))
def test_long_run_on_every_backend(name, be, cases):
    ex = EXAMPLES[name]
    cmp = compare_case(_case(cases, name), [backend("reference"), backend(be), backend("wasmtime")],
                       max_steps=ex.max_steps, trace="digest")
    assert cmp.ok, cmp.report()
