"""What one run of one implementation produced (the backend interface's
return value)."""

from __future__ import annotations

from dataclasses import dataclass, field

HALTED = "halted"
TRAPPED = "trapped"
BUDGET = "budget-exhausted"
# Not a machine outcome: a decoder (the transformer backends) stopped because
# the model broke the trace format (more than MAX_STEP_TOKENS tokens without
# a step end), which would otherwise generate forever. Never a pass.
MALFORMED = "malformed-trace"
STATUSES = (HALTED, TRAPPED, BUDGET, MALFORMED)
MAX_STEP_TOKENS = 6   # spec/MACHINE.md: every step emits at most 6 tokens


@dataclass
class RunResult:
    backend: str
    status: str                      # one of STATUSES
    output: bytes = b""
    trap: str | None = None          # trap name when status == trapped
    trap_pc: int | None = None       # pc of the trapping instruction, where known
    steps: int | None = None         # executed instructions (None: backend cannot tell)
    tokens: int | None = None        # trace tokens, input section included
    trace: str | None = None         # canonical trace text (after the `}` line)
    digest: str | None = None        # sha256 hex of the canonical trace text
    checkpoints: list[tuple[int, str]] | None = None  # (steps, digest so far)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def status_line(self) -> str:
        if self.status == TRAPPED:
            where = f" at pc {self.trap_pc}" if self.trap_pc is not None else ""
            return f"trapped ({self.trap}{where})"
        return self.status
