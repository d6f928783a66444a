"""Deliberately broken backends: test doubles that the conformance suites
must catch. Each behaves exactly like the reference executor except for one
fault, so a suite that lets one pass cannot tell a faulty port from a good one.

* `SwappedLtBackend` exchanges the semantics of `i32.lt_u` and `i32.lt_s`.
  It runs the reference executor on the program with those two opcode names
  exchanged: a trace never names the op (MACHINE.md §5), so the result is
  exactly what a port with the two comparisons mixed up would write.
* `DroppedCarryBackend` forgets the carry flags of `i32.add`: its values and
  output are right, only the trace is wrong. It post-processes the reference
  trace, removing the `'` from every line written by an `i32.add` step (lines
  are attributed to instructions with spec.trace.annotate_lines).

`broken_ops` names the instructions where a divergence must be reported.
"""

from __future__ import annotations

import hashlib

from isowasm.backends.base import Case
from isowasm.backends.reference import ReferenceBackend
from isowasm.spec.program import Program
from isowasm.spec.reference import run_reference
from isowasm.spec.result import RunResult
from isowasm.spec.trace import annotate_lines, digest_text


class SwappedLtBackend(ReferenceBackend):
    name = "broken-lt-swap"
    broken_ops = ("i32.lt_u", "i32.lt_s")
    _SWAP = {"i32.lt_u": "i32.lt_s", "i32.lt_s": "i32.lt_u"}

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        p = case.program
        swapped = Program([self._SWAP.get(n, n) for n in p.names], list(p.imms), p.input, p.source)
        res = run_reference(swapped, max_steps=max_steps, trace=trace, progress=progress)
        res.backend = self.name
        return res


class DroppedCarryBackend(ReferenceBackend):
    name = "broken-add-carry"
    broken_ops = ("i32.add",)

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        res = run_reference(case.program, max_steps=max_steps,
                            trace="none" if trace == "none" else "text", progress=progress)
        res.backend = self.name
        if trace == "none":
            return res
        names = case.program.names
        lines = res.trace.split("\n")
        steps = annotate_lines(case.program, res.trace)   # (0-based step, pc) per line
        for i, (_, pc) in enumerate(steps):
            if pc is not None and names[pc] == "i32.add":
                lines[i] = lines[i].replace("'", "")
        text = "\n".join(lines)
        res.digest = digest_text(text)
        res.checkpoints = _checkpoints(lines, steps, [s for s, _ in res.checkpoints or []])
        res.trace = text if trace == "text" else None
        return res


def _checkpoints(lines: list[str], steps: list, at: list[int]) -> list[tuple[int, str]]:
    """The digests of the rewritten trace after `at` steps each (where the
    reference took its checkpoints), so the runner can localise a divergence
    without re-running everything."""
    out = []
    h = hashlib.sha256()
    pending = iter(at)
    nxt = next(pending, None)
    for line, (step, _) in zip(lines, steps):
        if nxt is not None and step is not None and step >= nxt:   # the first line of step nxt + 1
            out.append((nxt, h.hexdigest()))
            nxt = next(pending, None)
        h.update((line + "\n").encode("ascii"))
    if nxt is not None:   # a checkpoint at the very end (an exhausted budget)
        out.append((nxt, h.hexdigest()))
    return out


DOUBLES = (SwappedLtBackend, DroppedCarryBackend)
