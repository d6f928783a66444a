"""A tiny assembler for hand-written machine programs in the tests."""

from __future__ import annotations

from isowasm.spec.program import Program

M32 = 0xFFFFFFFF


def asm(items, data: bytes = b"", source: str = "<asm>") -> Program:
    """[(op, imm), (op,), "label:"]; an immediate "->label" becomes the offset
    from the next instruction to the label (branches, calls, and the return
    convention)."""
    labels, ops = {}, []
    for it in items:
        if isinstance(it, str):
            labels[it[:-1]] = len(ops)
        else:
            ops.append(it)
    names, imms = [], []
    for pc, (name, *imm) in enumerate(ops):
        v = imm[0] if imm else 0
        if isinstance(v, str):
            v = labels[v[2:]] - (pc + 1)
        names.append(name)
        imms.append(v & M32)
    return Program(names, imms, data, source)
