"""The Rust port (ports/rust/, Python module `isowasm_rust`).

Built and installed with `pip install ./ports/rust` (what `make rust` runs).
Programs are handed over as program files (spec.program.format_program,
which caches the text on the Program).
"""

from __future__ import annotations

import time

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.program import format_program
from isowasm.spec.result import RunResult

_UNBUILT = ("rust backend not built: `pip install ./ports/rust` from an isowasm checkout "
            "(`make rust`)")


class RustBackend(Backend):
    name = "rust"
    traces = True
    checkpoint_interval = 16384   # steps between checkpoints (MACHINE.md §5)

    def __init__(self) -> None:
        try:
            import isowasm_rust
        except ImportError:
            raise BackendUnavailable(_UNBUILT) from None
        self._mod = isowasm_rust

    def _result(self, d: dict, seconds: float) -> RunResult:
        return RunResult(
            backend=self.name, status=d["status"], output=d["output"], trap=d["trap"],
            trap_pc=d["trap_pc"], steps=d["steps"], tokens=d["tokens"], trace=d["trace"],
            digest=d["digest"], checkpoints=d["checkpoints"], seconds=seconds,
        )

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        t0 = time.perf_counter()
        # The program file carries the case's input in its input section.
        d = self._mod.run(format_program(case.program), None, max_steps, trace, self.checkpoint_interval)
        res = self._result(d, time.perf_counter() - t0)
        if progress:
            progress(res.steps, res.tokens)
        return res

    def run_batch(self, cases: list[Case], max_steps: int, trace: str = "none") -> list[RunResult]:
        """Many (small) cases in one call into the port; `seconds` of each
        result is its share of the batch's time."""
        t0 = time.perf_counter()
        ds = self._mod.run_batch([(format_program(c.program), None, max_steps) for c in cases], trace,
                                 self.checkpoint_interval)
        share = (time.perf_counter() - t0) / max(len(cases), 1)
        return [self._result(d, share) for d in ds]
