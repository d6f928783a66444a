from __future__ import annotations

from isowasm.backends.base import Backend, Case
from isowasm.spec.reference import run_reference
from isowasm.spec.result import RunResult


class ReferenceBackend(Backend):
    """The executable spec itself."""

    name = "reference"
    default_max_steps = 30_000_000      # ~1M steps/s tracing (digest) in Python

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        return run_reference(case.program, max_steps=max_steps, trace=trace, progress=progress)
