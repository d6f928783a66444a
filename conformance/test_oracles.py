"""Two independent oracles (issue 14): wasmi beside wasmtime.

(a) the `wasmi` backend follows the wasmtime backend's conventions: output
    bytes from `env.output_byte`, traps under the machine's names, the input
    where `input_base` puts it, the step budget as fuel (budget-exhausted,
    never a different value);
(b) the oracle-disagreement signature: which oracle the machines contradict;
(c) a planted oracle bug — a wrapper declared as the ground truth (`wasmtime`
    through ISOWASM_PLUGINS) that flips the last output byte of any module
    containing `i32.rem_u` — is reported by `isowasm fuzz` as an oracle
    disagreement blaming wasmtime, never as a divergence of the machines,
    and no regression case is written for it;
(d) the oracle set's defaults and errors.

Every campaign writes into a tmp directory.
"""

from __future__ import annotations

import json
import os

import pytest

from isowasm.backends.base import Case
from isowasm.backends.wasmtime_backend import WasmtimeBackend
from isowasm.spec.result import BUDGET, HALTED, TRAPPED, RunResult

wasmi_mod = pytest.importorskip("isowasm_fuzz_native", reason="pip install ./ports/fuzz-native")

PLANTED = "wasmtime=conformance.test_oracles:RemUFlipWasmtime"


class RemUFlipWasmtime(WasmtimeBackend):
    """wasmtime with a planted bug: when the module contains `i32.rem_u`,
    the last output byte is flipped. Declared under the name `wasmtime`, it
    is the ground truth of every comparison."""

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        res = super().run(case, max_steps=max_steps, trace=trace, progress=progress)
        if res.output and _has_rem_u(case.wasm):
            res.output = res.output[:-1] + bytes([res.output[-1] ^ 0xFF])
        return res


def _has_rem_u(wasm) -> bool:
    from isowasm.toolchain.decode import decode_module

    try:
        m = decode_module(bytes(wasm))
    except Exception:   # noqa: BLE001
        return False
    return any(ins.op == "i32.rem_u" for f in m.funcs for ins in f.body)


def _case(wat: str, input: bytes = b"") -> Case:
    from isowasm.toolchain.frontend import compile_wasm, wat_to_wasm

    wasm = wat_to_wasm(wat)
    return Case("t", compile_wasm(wasm, "t", input), wasm=wasm)


def _both(case, max_steps=100_000):
    from isowasm.backends import get_backend

    return (get_backend("wasmtime").run(case, max_steps=max_steps),
            get_backend("wasmi").run(case, max_steps=max_steps))


OUT = '(import "env" "output_byte" (func $o (param i32)))'


@pytest.mark.parametrize("body,status,trap,output", [
    ("i32.const 72 call $o i32.const 105 call $o", HALTED, None, b"Hi"),
    ("i32.const 1 call $o unreachable", TRAPPED, "unreachable", b"\x01"),
    ("i32.const 1 i32.const 0 i32.div_u drop", TRAPPED, "div_zero", b""),
    ("i32.const 0x80000000 i32.const -1 i32.div_s drop", TRAPPED, "int_overflow", b""),
    ("i32.const 65536 i32.load drop", TRAPPED, "oob", b""),
    ("i32.const 7 i32.const 3 i32.rem_u call $o", HALTED, None, b"\x01"),
])
def test_wasmi_backend_matches_wasmtime(body, status, trap, output):
    wat = f"(module {OUT} (memory 1) (func (export \"compute\") {body}))"
    wt, wi = _both(_case(wat))
    assert (wi.status, wi.trap, wi.output) == (status, trap, output)
    assert (wt.status, wt.trap, wt.output) == (wi.status, wi.trap, wi.output)


def test_wasmi_reads_the_input_where_input_base_puts_it():
    # memory not exported: the backend exports it to write the input, as wasmtime's does
    wat = (f"(module {OUT} (memory 1) (func (export \"compute\") (param $p i32)"
           "  (block $done (loop $next"
           "    (br_if $done (i32.eqz (i32.load8_u (local.get $p))))"
           "    (call $o (i32.add (i32.load8_u (local.get $p)) (i32.const 1)))"
           "    (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $next)))))")
    wt, wi = _both(_case(wat, b"HAL"))
    assert wi.status == HALTED and wi.output == b"IBM" == wt.output


def test_wasmi_budget_is_inconclusive_not_a_value():
    wat = f"(module {OUT} (func (export \"compute\") (loop $l (call $o (i32.const 1)) (br $l))))"
    wt, wi = _both(_case(wat), max_steps=1000)
    assert wi.status == BUDGET and wt.status == BUDGET
    assert set(wi.output) <= {1} and len(wi.output) <= 1000


def test_wasmi_stack_overflow_is_the_resource_trap_call_depth():
    wat = "(module (func $f (export \"compute\") (call $f)))"
    _, wi = _both(_case(wat), max_steps=100_000_000)
    assert (wi.status, wi.trap) in ((TRAPPED, "call_depth"), (BUDGET, None))


def _r(status, output=b"", trap=None, name="x"):
    return RunResult(backend=name, status=status, output=output, trap=trap)


def test_oracle_disagreement_signature():
    from isowasm.fuzz.oracles import oracle_disagreement

    order, traces = ["reference", "wasmtime", "wasmi"], {"reference": True, "wasmtime": False, "wasmi": False}
    agree = {"reference": _r(HALTED, b"ab"), "wasmtime": _r(HALTED, b"ab"), "wasmi": _r(HALTED, b"ab")}
    assert oracle_disagreement(agree, ["wasmtime", "wasmi"], order, traces) is None
    bad_wt = {**agree, "wasmtime": _r(HALTED, b"a\x9e")}
    d = oracle_disagreement(bad_wt, ["wasmtime", "wasmi"], order, traces)
    assert d["signature"] == "oracle-disagreement:output-value:wasmtime" and d["kind"] == "oracle-disagreement"
    bad_wi = {**agree, "wasmi": _r(TRAPPED, b"a", "div_zero")}
    d = oracle_disagreement(bad_wi, ["wasmtime", "wasmi"], order, traces)
    assert d["signature"] == "oracle-disagreement:status:halted-vs-trapped:div_zero:wasmi"
    # a budget on either side: only the outputs' common prefix is compared
    budget = {**agree, "wasmi": _r(BUDGET, b"a")}
    assert oracle_disagreement(budget, ["wasmtime", "wasmi"], order, traces) is None
    # without a machine to side with, neither oracle is singled out
    d = oracle_disagreement({k: v for k, v in bad_wt.items() if k != "reference"},
                            ["wasmtime", "wasmi"], order, traces)
    assert d["backend"] == "wasmtime-vs-wasmi"


def test_oracle_set_defaults_and_errors():
    from isowasm.fuzz.campaign import resolve_oracles
    from isowasm.spec.errors import IsowasmError

    assert resolve_oracles(None, ["reference", "wasmtime"]) == ["wasmtime", "wasmi"]
    assert resolve_oracles(None, ["reference", "rust"]) == []      # no wasmtime: no cross-check
    assert resolve_oracles(["none"], ["reference", "wasmtime"]) == []
    assert resolve_oracles(["wasmtime", "wasmi"], ["reference"]) == ["wasmtime", "wasmi"]
    with pytest.raises(IsowasmError, match="machine trace"):
        resolve_oracles(["reference"], ["reference", "wasmtime"])


def _campaign(tmp, *args, env=None):
    from isowasm.fuzz import cli_fuzz

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return cli_fuzz(["--out", str(tmp / "state"), "--json", str(tmp / "fuzz.json"),
                         "--regressions", str(tmp / "regressions"), "--status-every", "1000",
                         "--workers", "1", *args])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_planted_oracle_bug_is_an_oracle_disagreement_not_a_machine_divergence(tmp_path):
    # the op probes open the campaign; program 22 is i32.rem_u's (every operand
    # class, each result output): the planted wasmtime flips its last byte
    rc = _campaign(tmp_path, "--time", "120s", "--programs", "32", "--seed", "0",
                   "--backends", "reference,wasmtime,rust", env={"ISOWASM_PLUGINS": PLANTED})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1
    assert doc["oracles"] == ["wasmtime", "wasmi"]
    sigs = [f["signature"] for f in doc["findings"]]
    assert sigs and all(s.startswith("oracle-disagreement:") for s in sigs), sigs
    assert "oracle-disagreement:output-value:wasmtime" in sigs, sigs
    for f in doc["findings"]:
        assert f["kind"] == "oracle-disagreement" and f["backend"] == "wasmtime", f
        assert "i32.rem_u" in f["wat"] and f["regression"] is None
        assert "oracle disagreement" in f["report"]
        # the machines are not blamed: no machine verdict against the suspect oracle
        assert "rust: output" not in f["report"] and "reference: output" not in f["report"]
    assert not (tmp_path / "regressions").exists() or not list((tmp_path / "regressions").iterdir())
    from isowasm import report
    text = report.render(tmp_path)
    assert "oracle-disagreement:output-value:wasmtime" in text and "oracles wasmtime, wasmi" in text


def test_without_the_second_oracle_the_planted_bug_blames_the_machines(tmp_path):
    """The control: with `--oracles none` the same planted bug reads as the
    machines disagreeing with the ground truth — what a second oracle is for."""
    rc = _campaign(tmp_path, "--time", "120s", "--programs", "32", "--seed", "0", "--oracles", "none",
                   "--backends", "reference,wasmtime", "--shrink-seconds", "5",
                   env={"ISOWASM_PLUGINS": PLANTED})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1 and doc["oracles"] == []
    assert not any(f["signature"].startswith("oracle-disagreement") for f in doc["findings"])
    assert any(f["kind"].startswith("output") for f in doc["findings"]), [f["signature"] for f in doc["findings"]]
