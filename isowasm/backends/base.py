"""The one interface every implementation of the machine implements.

A backend runs a Case (a lowered program, optionally the original .wasm, and
an input) under a step budget and returns a spec.result.RunResult. Backends
that produce machine traces (`traces = True`) must honour the trace modes of
spec/MACHINE.md §5: "none", "digest" (sha256 of the canonical trace text, plus
checkpoints where they can), "text" (the canonical trace text itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from isowasm.spec.errors import IsowasmError
from isowasm.spec.program import Program
from isowasm.spec.result import RunResult


@dataclass
class Case:
    name: str
    program: Program            # the machine program; its .input is the input
    wasm: bytes | None = None   # the original module, for ground truth
    expect_output: bytes | None = None
    expect_status: str | None = None

    @property
    def input(self) -> bytes:
        return self.program.input


class BackendUnavailable(IsowasmError):
    """The backend cannot run here (not built, not installed); the message
    says how to make it available."""


class Backend:
    name: str = "?"
    traces: bool = True          # produces a machine trace
    needs_wasm: bool = False     # runs the original module instead of the program
    # Heavy backends (thousands of tokens/s, e.g. the transformer evaluated
    # layer by layer) run the shared suites only under `-m heavy`; their own
    # test module keeps a fast subset in the default run.
    heavy: bool = False
    # The step budget when the caller names none: about a minute of this
    # backend's own speed, so a program that never halts ends in
    # budget-exhausted within a minute rather than hours. None: the table's
    # default_max_steps. A comparison uses the least of its backends'.
    default_max_steps: int | None = None

    def run(self, case: Case, *, max_steps: int, trace: str = "none") -> RunResult:
        raise NotImplementedError

    def explain(self, case: Case, divergence) -> str | None:
        """Optional: what this backend computed at a divergence from the
        reference (a `runner.Divergence` whose `trace_a` is the reference's
        trace), as lines for the report; None when it has nothing to add."""
        return None

    def close(self) -> None:
        """Release processes or handles (persistent batch modes)."""
