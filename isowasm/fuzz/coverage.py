"""Machine coverage: which of the machine's ops ran on which operand
classes, which traps and which limits a campaign reached.

The fuzzer's op coverage (generators.constructs) says what the *programs*
contain; this says what the *machine* did. The Rust port counts, for every
step, the op and the classes of the operands it is about to pop — zero, one,
a sign boundary (0x7fffffff, 0x80000000), max (0xffffffff), any other — and
how each run ended (ports/rust/src/machine.rs, `coverage`). A cell is one
(op, class of a, class of b) for ops popping two operands, (op, class) for
one (select: its condition), the op alone for none; then every trap and
every final status (budget_exhausted is the step limit reached; call_depth,
stack_overflow and memory_limit are the machine's resource limits). Compiled
programs cannot reach all of them (no compiled program addresses memory at
0x80000000 or pops an empty stack): the machine-program generator
(machine_programs.py) aims at every cell directly.
`isowasm report` shows the share reached and every cell never reached.
"""

from __future__ import annotations

from collections import Counter

_LAYOUT: list = []


def layout():
    """(classes, [(op, pops)], traps, statuses) from the Rust port, or None
    when it is not installed."""
    if not _LAYOUT:
        try:
            import isowasm_rust
        except ImportError:
            return None
        _LAYOUT.append(isowasm_rust.coverage_layout())
    return _LAYOUT[0]


def cell_names() -> dict[int, str]:
    """Every reachable cell's index -> its name ("i32.sub max,sign",
    "trap oob", "status budget_exhausted")."""
    lay = layout()
    if lay is None:
        return {}
    classes, ops, traps, statuses = lay
    C = len(classes)
    names = {}
    for i, (op, pops) in enumerate(ops):
        if op == "input_base":
            continue   # only at pc 0, no operands: not the generator's to reach
        if pops == 0:
            names[(i * C) * C] = op
        elif pops in (1, 3):
            for a in range(C):
                names[(i * C + a) * C] = f"{op} {classes[a]}"
        else:
            for a in range(C):
                for b in range(C):
                    names[(i * C + a) * C + b] = f"{op} {classes[a]},{classes[b]}"
    base = len(ops) * C * C
    for j, t in enumerate(traps):
        names[base + j] = f"trap {t}"   # stack_underflow, return_outside: machine programs only
    for j, s in enumerate(statuses):
        names[base + len(traps) + j] = f"status {s}"
    return names


def add(total: Counter, cells: dict) -> None:
    for k, v in cells.items():
        total[str(k)] += v


def summary(counts: dict) -> dict:
    """The campaign JSON's `machine_coverage`: share of reachable cells
    reached, and the cells never reached by name."""
    names = cell_names()
    if not names:
        return {}
    reached = {int(k) for k, v in counts.items() if v}
    missing = sorted(names[i] for i in names if i not in reached)
    return {"cells": len(names), "reached": len(names) - len(missing),
            "percent": round(100.0 * (len(names) - len(missing)) / len(names), 1), "missing": missing}
