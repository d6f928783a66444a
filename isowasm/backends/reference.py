from __future__ import annotations

from isowasm.backends.base import Backend, Case
from spec.reference import run_reference
from spec.result import RunResult


class ReferenceBackend(Backend):
    """The executable spec itself."""

    name = "reference"

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        return run_reference(case.program, max_steps=max_steps, trace=trace, progress=progress)
