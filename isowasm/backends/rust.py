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

    def run_batch(self, cases: list[Case], max_steps: int, trace: str = "none",
                  coverage: bool = False) -> list[RunResult]:
        """Many (small) cases in one call into the port; `seconds` of each
        result is its share of the batch's time. coverage=True: each result's
        `extra["coverage"]` holds its machine coverage cells
        (isowasm/fuzz/coverage.py)."""
        t0 = time.perf_counter()
        items = [(format_program(c.program), None, max_steps) for c in cases]
        ds = (self._mod.run_batch(items, trace, self.checkpoint_interval, coverage=True) if coverage
              else self._mod.run_batch(items, trace, self.checkpoint_interval))
        share = (time.perf_counter() - t0) / max(len(cases), 1)
        out = [self._result(d, share) for d in ds]
        if coverage:
            for r, d in zip(out, ds):
                r.extra["coverage"] = d["coverage"]
        return out

    def coverage_layout(self):
        return self._mod.coverage_layout()
