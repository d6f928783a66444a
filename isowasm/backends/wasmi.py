"""A second, independent oracle: the original .wasm module on the wasmi
interpreter (the `wasmi` crate, built into the isowasm_fuzz_native
extension: `pip install ./ports/fuzz-native`).

Same conventions as the wasmtime backend (wasmtime_backend.py): output and
status only (no machine trace); the input placed where the program's
`input_base` puts it, `compute` called with that address when it takes a
parameter (spec/MACHINE.md §8); wasmi's traps mapped onto the machine's trap
names (unreachable, oob, div_zero, int_overflow; its stack overflow as
call_depth, a resource trap); fuel equal to the step budget, wasmi charging
at most one unit per wasm operator, so running out is `budget-exhausted`
(inconclusive), never a different value.

`isowasm fuzz` runs it beside wasmtime (`--oracles`); when the two disagree
the case is an *oracle disagreement*, not a divergence of the machines.
"""

from __future__ import annotations

import time

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.errors import IsowasmError
from isowasm.spec.result import BUDGET, HALTED, TRAPPED, RunResult

_UNBUILT = "wasmi backend needs isowasm_fuzz_native: pip install ./ports/fuzz-native"


class WasmiBackend(Backend):
    name = "wasmi"
    traces = False
    needs_wasm = True
    oracle = True

    def __init__(self) -> None:
        try:
            import isowasm_fuzz_native
        except ImportError:
            raise BackendUnavailable(_UNBUILT) from None
        self._n = isowasm_fuzz_native
        self._exported: dict[bytes, bytes] = {}

    def _with_memory_export(self, wasm: bytes) -> bytes:
        """The module with its memory exported as "memory" (so the input can
        be written into it), cached per module."""
        from isowasm.backends.wasmtime_backend import _export_memory

        out = self._exported.get(wasm)
        if out is None:
            if len(self._exported) > 256:
                self._exported.clear()
            out = self._exported[wasm] = _export_memory(wasm)
        return out

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        if case.wasm is None:
            raise IsowasmError(f"{case.name}: the wasmi backend needs the original .wasm module")
        t0 = time.perf_counter()
        prog = case.program
        src = bytes(case.wasm)   # a bytearray is not a bytes argument
        wasm, addr, mem = src, 0, None
        if prog.names and prog.names[0] == "input_base":
            addr = prog.imms[0]
            if case.input:
                mem = "memory"
                if src in self._exported:
                    wasm = self._exported[src]
        try:
            try:
                d = self._n.wasmi_run(wasm, bytes(case.input) if mem else b"", addr, mem, max_steps)
            except ValueError as e:
                if mem is None or "no exported memory" not in str(e) or wasm is not src:
                    raise
                # as the wasmtime backend does: export the memory to write the input
                wasm = self._with_memory_export(src)
                d = self._n.wasmi_run(wasm, bytes(case.input), addr, mem, max_steps)
        except ValueError as e:
            raise IsowasmError(f"{case.name}: {e}") from None
        status = {"halted": HALTED, "trapped": TRAPPED, "budget-exhausted": BUDGET}[d["status"]]
        return RunResult(backend=self.name, status=status, output=bytes(d["output"]), trap=d["trap"],
                         seconds=time.perf_counter() - t0)
