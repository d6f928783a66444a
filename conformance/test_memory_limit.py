"""Resource limits are never silent: memory.grow past the machine's memory.

The machine's linear memory is limits.memory_bytes (160 wasm pages). A module
with `(memory 1)` and no maximum may grow to 65536 pages in WebAssembly, and
wasmtime does; the machine cannot. Where WebAssembly would let memory.grow
succeed but the machine cannot hold the memory, the run ends with the
resource trap `memory_limit` (halt 5, machine.yaml `resource: true`), never a
-1 that wasm would not have returned. The differential runner then calls the
comparison with wasmtime *inconclusive*, like call_depth, not failed. Where
WebAssembly itself returns -1 (past the module's maximum), so does the
machine, and the comparison is an ordinary one.
"""

from __future__ import annotations

import pytest

from conformance.conftest import backend
from isowasm.backends.base import Case
from isowasm.runner import compare_case
from isowasm.spec import table
from isowasm.toolchain import compile_source

MACHINES = ("reference", "rust", "ocaml", "transformer")
OUT = '(import "env" "output_byte" (func $out (param i32)))'
# the module of conformance/test_cli.py's verify test: 1 page, no maximum,
# memory.grow by 306 pages (to 307 > 160); wasmtime returns the old size 1
GROW_306 = (f'(module {OUT} (memory 1)\n'
            '(func (export "compute") (call $out (i32.add (i32.const 48) (memory.grow (i32.const 306))))))')


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOWASM_CACHE", str(tmp_path / "cache"))


def _compare(wat: str, name: str):
    wasm, prog = compile_source(wat, "wat", f"{name}.wat")
    case = Case(name, prog, wasm)
    return compare_case(case, [backend(n) for n in ("reference", "wasmtime") + MACHINES[1:]],
                        max_steps=100_000, trace="text")


def test_memory_limit_is_a_resource_trap_with_a_halt_code():
    t = {t["name"]: t for t in table.traps()}["memory_limit"]
    assert t["resource"] is True and t["code"] == 5
    assert table.trap_by_code()[5] == "memory_limit"
    assert "memory_limit" in table.resource_traps()


def test_grow_by_306_traps_memory_limit_and_is_inconclusive():
    cmp = _compare(GROW_306, "grow306")
    assert set(cmp.results) == {"wasmtime", *MACHINES}, cmp.report()
    truth = cmp.results["wasmtime"]
    assert (truth.status, truth.output) == ("halted", b"1"), cmp.report()   # wasmtime grew
    for name in MACHINES:
        r = cmp.results[name]
        assert f"{r.status}:{r.trap}" == "trapped:memory_limit", cmp.report()
        assert r.output == b"", cmp.report()
        assert r.trace.endswith("trap(memory_limit)\n"), name
        assert cmp.verdict(name) == "inconclusive", cmp.report()
    # inconclusive, not failed: no problem, no divergence between the machines
    assert cmp.ok and not cmp.problems and cmp.divergence is None, cmp.report()
    assert not cmp.failed
    assert {i.split()[0] for i in cmp.inconclusive} == set(MACHINES), cmp.inconclusive
    assert all("trapped:memory_limit vs wasmtime halted" in i for i in cmp.inconclusive)
    # every machine traps at the same step, the compiled memory_limit check
    ref = cmp.results["reference"]
    assert cmp.case.program.names[ref.trap_pc] == "halt" and cmp.case.program.imms[ref.trap_pc] == 5
    assert {(cmp.results[n].steps, cmp.results[n].tokens, cmp.results[n].trap_pc) for n in MACHINES} \
        == {(ref.steps, ref.tokens, ref.trap_pc)}


def test_grow_past_the_module_maximum_still_returns_minus_1():
    # (memory 1 200): WebAssembly refuses 1 + 306 > 200 itself, so the machine
    # returns -1 as wasmtime does, and the comparison is an ordinary pass.
    cmp = _compare(GROW_306.replace("(memory 1)", "(memory 1 200)"), "grow306max")
    assert cmp.ok and not cmp.inconclusive, cmp.report()
    for name in ("wasmtime", *MACHINES):
        r = cmp.results[name]
        assert (r.status, r.output) == ("halted", bytes([(48 - 1) & 255])), cmp.report()
