"""transformer-onnx: the built weights exported to ONNX and decoded by
onnxruntime. The graph uses standard ONNX operators only, and greedy
decoding with it gives the reference's trace, byte for byte (the whole
compliance suite runs on it in the slow suite, within its token limit)."""

from __future__ import annotations

import pytest

from conformance.conftest import assert_same_run, backend
from isowasm.backends import available_backends
from isowasm.suites.compliance import build_case, load_cases
from isowasm.spec.reference import run_reference

ort = pytest.importorskip("onnxruntime", reason="transformer-onnx needs onnxruntime")

# short cases of different kinds: a trap before any output, branches on
# comparisons, a loop over the input
SHORT = ("limits/unreachable-traps", "comparisons/compare-in-branches", "io/output-low-byte-only",
         "comparisons/int-min-vs-int-max")
CASES = {f"{c.category}/{c.name}": c for c in load_cases()}


@pytest.fixture(scope="module")
def onnx_backend():
    if isinstance(available_backends().get("transformer-onnx"), str):
        pytest.fail(f"transformer-onnx unavailable: {available_backends()['transformer-onnx']}")
    return backend("transformer-onnx")


def test_graph_is_standard_onnx(onnx_backend):
    import onnx

    from isowasm.transformer.build import BUILD_DIR
    from isowasm.transformer.onnx_backend import ONNX_FILE

    g = onnx.load(str(BUILD_DIR / ONNX_FILE))
    onnx.checker.check_model(g)
    assert {o.domain for o in g.opset_import} <= {"", "ai.onnx"}
    ops = {n.op_type for n in g.graph.node}
    assert {"MatMul", "Softmax", "Relu"} <= ops, ops
    # float64 end to end: the analytic weights need its exactness
    assert all(t.data_type == onnx.TensorProto.DOUBLE for t in g.graph.initializer
               if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE))


@pytest.mark.parametrize("name", SHORT)
def test_short_cases_match_the_reference(onnx_backend, name):
    cc = CASES[name]
    case = build_case(cc)
    ref = run_reference(case.program, max_steps=cc.max_steps, trace="text")
    res = onnx_backend.run(case, max_steps=cc.max_steps, trace="text")
    assert_same_run(res, ref)


def test_greedy_decoding_without_a_draft(onnx_backend):
    """onnxruntime's own choices, one token per forward pass (no engine draft)."""
    from isowasm.transformer.onnx_backend import OnnxBackend

    b = OnnxBackend(draft=False)
    cc = CASES["comparisons/int-min-vs-int-max"]
    case = build_case(cc)
    ref = run_reference(case.program, max_steps=cc.max_steps, trace="text")
    assert_same_run(b.run(case, max_steps=cc.max_steps, trace="text"), ref)
