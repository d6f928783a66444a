"""A generator of *machine* programs: program files written directly, not
compiled from wasm, aimed at the machine coverage cells
(isowasm/fuzz/coverage.py) that compiled programs cannot reach.

The toolchain never addresses memory at 0x80000000, never pops an empty
stack, never calls 4096 frames deep, so a campaign of compiled programs
leaves those cells of the machine untested in the ports and the engine.
Here each program is a sequence of snippets, each one step of one op on
operands of chosen classes (`i32.const a; i32.const b; i32.sub; drop`),
then an ending: `halt 0`, or one of the ways a run can stop (every trap,
each with its own small program: a load from 0xffffffff, `call` recursion
to call_depth, pushes in a loop to stack_overflow, a `drop` on an empty
stack, a `return` outside a call, `halt c` for each trap code).

Steering: program k's snippets are the cells k*S .. k*S+S-1 of the cell
list (in rotation), so every cell is aimed at once every ~20 programs
whatever the others reach — the rare cells get programs of their own rather
than the luck of compiled code. Program k is a pure function of (seed, k).

There is no wasm module, so no wasmtime: the reference executor (the spec)
is the ground truth and the machine backends are compared with it and with
each other, trace for trace.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from isowasm.spec import table
from isowasm.spec.program import Program, format_program

CLASSES = ("zero", "one", "sign", "max", "other")
SNIPPETS = 24             # cells aimed at per program
MEMORY = table.limits()["memory_bytes"]


@dataclass(frozen=True)
class MachineProgram:
    """One generated machine program (the campaign's `m`)."""
    program: Program
    cells: tuple            # the cells it aims at, by name
    ending: str

    @property
    def wasm(self):
        return None


def _value(rng: random.Random, cls: str) -> int:
    if cls == "zero":
        return 0
    if cls == "one":
        return 1
    if cls == "sign":
        return rng.choice((0x7FFF_FFFF, 0x8000_0000))
    if cls == "max":
        return 0xFFFF_FFFF
    while True:
        v = rng.choice((2, 7, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000,
                        0x7FFF_FFFE, 0x8000_0001, 0xFFFF_FFFE, rng.getrandbits(32), rng.getrandbits(8)))
        if v not in (0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF):
            return v


def _address(rng: random.Random, cls: str, width: int) -> int:
    """An address of class `cls`; "other" ones are in bounds (near 0, or
    flush against the end of memory)."""
    if cls != "other":
        return _value(rng, cls)
    return rng.choice((rng.randrange(2, 4096), MEMORY - width, MEMORY - width - rng.randrange(1, 64)))


def cells() -> list[tuple[str, str, str]]:
    """(op, class a, class b) for every cell a snippet can aim at without
    stopping the run ('' for an operand the op does not have)."""
    out = []
    for o in table.ops():
        name, pops = o["name"], o["pops"]
        if name in ("halt", "return", "call") or name.startswith("input"):
            continue   # endings and framing: every program has them
        if pops == 0:
            out.append((name, "", ""))
        elif pops in (1, 3):
            for a in CLASSES:
                if o.get("width") and a in ("sign", "max"):
                    continue   # an address past memory: a trap, so an ending
                out.append((name, a, ""))
        else:
            for a in CLASSES:
                if o.get("width") and a in ("sign", "max"):
                    continue
                for b in CLASSES:
                    out.append((name, a, b))
    return out


CELLS = cells()


def cell_name(cell: tuple[str, str, str]) -> str:
    """As isowasm/fuzz/coverage.py names it: "i32.sub max,sign"."""
    op, a, b = cell
    return f"{op} {a},{b}" if b else f"{op} {a}" if a else op
OPS = {o["name"]: o for o in table.ops()}


def _snippet(rng: random.Random, cell: tuple[str, str, str]) -> list[tuple[str, int]]:
    """Instructions that run `cell`'s op once on operands of its classes and
    leave the stack as they found it."""
    op, a, b = cell
    o = OPS[op]
    width = o.get("width")
    imm = 0
    if o["imm"] in ("local_index",):
        imm = rng.choice((0, 1, 2, 255, rng.randrange(256)))
    elif o["imm"] == "global_index":
        imm = rng.choice((0, 1, 255, rng.randrange(256)))
    elif o["imm"] == "address_offset":
        imm = rng.choice((0, 0, 1, 3, rng.randrange(1024)))
    if op == "br":
        return [("br", 1), ("i32.const", 0xDEAD)]  # the const is jumped over
    if op == "br_if":
        # taken: skips the const+drop pair; not taken: runs it
        return [("i32.const", _value(rng, a)), ("br_if", 2), ("i32.const", 7), ("drop", 0)]
    if op == "select":
        return [("i32.const", _value(rng, "other")), ("i32.const", _value(rng, "other")),
                ("i32.const", _value(rng, a)), ("select", 0), ("drop", 0)]
    if width:
        addr = _address(rng, a, width)
        if imm and addr + imm + width > MEMORY:
            imm = 0
        if o["pops"] == 1:      # load
            return [("i32.const", addr), (op, imm), ("drop", 0)]
        return [("i32.const", addr), ("i32.const", _value(rng, b)), (op, imm)]
    if o["pops"] == 0:
        if op == "i32.const":
            return [(op, _value(rng, rng.choice(CLASSES))), ("drop", 0)]
        return [(op, imm), ("drop", 0)]
    if o["pops"] == 1:
        pre = [("i32.const", _value(rng, a))]
        if op in ("drop", "local.set", "global.set", "output"):
            return pre + [(op, imm)]
        return pre + [(op, imm), ("drop", 0)]      # local.tee, eqz
    return [("i32.const", _value(rng, a)), ("i32.const", _value(rng, b)), (op, imm), ("drop", 0)]


def _endings() -> list[str]:
    traps = [t["name"] for t in table.traps()]
    return ["halt"] * 4 + ["past-end"] * 4 + traps


ENDINGS = _endings()
# memory accesses whose address is past the end (a sign boundary or max):
# they trap, so they end a program, one per program in rotation
PAST_END = [(o["name"], a, b) for o in table.ops() if o.get("width") for a in ("sign", "max")
            for b in (CLASSES if o["pops"] == 2 else ("",))]


def _ending(rng: random.Random, kind: str, turn: int = 0) -> list[tuple[str, int]]:
    """The program's last instructions (before the callee, when it has one)."""
    by_name = {t["name"]: t for t in table.traps()}
    if kind == "halt":
        return [("halt", 0)]
    if kind == "past-end":   # a memory access past the end: the cell this program's turn names
        op, a, b = PAST_END[turn % len(PAST_END)]
        w = OPS[op]["width"]
        addr = _value(rng, a)
        if (turn // len(PAST_END)) % 2:   # every other rotation: just one byte past (ea + w = memory_bytes + 1)
            addr, off = MEMORY - w, 1
        else:
            off = rng.choice((0, 0, 1, 4))
        push = [("i32.const", addr)] + ([("i32.const", _value(rng, b))] if b else [])
        return push + [(op, off), ("halt", 0)]
    t = by_name[kind]
    if t.get("code") is not None:
        return [("halt", t["code"])]
    if kind == "call_depth":     # a call whose target is itself, until the frames run out
        return [("call", 0xFFFF_FFFF), ("halt", 0)]
    if kind == "stack_overflow":  # push in a loop until the stack is full
        return [("i32.const", 1), ("br", 0xFFFF_FFFE)]
    if kind == "stack_underflow":
        return [("drop", 0), ("halt", 0)]
    if kind == "return_outside":
        return [("return", 0), ("halt", 0)]
    raise ValueError(kind)


class MachineGenerator:
    """The campaign's generator interface (see smith.generator)."""
    name = "machine"

    def __init__(self, seed: int, options: dict | None = None):
        self.seed = seed

    def module(self, k: int) -> MachineProgram:
        rng = random.Random(f"isowasm-machine:{self.seed}:{k}")
        start = (k * SNIPPETS) % len(CELLS)
        aimed = [CELLS[(start + j) % len(CELLS)] for j in range(SNIPPETS)]
        code: list[tuple[str, int]] = []
        data = b""
        if rng.random() < 0.25:   # the input section, copied to memory at pc 0
            data = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 16)))   # no NUL: it ends the input
            code.append(("input_base", rng.choice((0, 16, 4096))))
        # one call per program, to a function after the ending (`return` to
        # its own entry, the toolchain's convention: MACHINE.md §4)
        call_at = rng.randrange(len(aimed) + 1)
        for j, cell in enumerate(aimed):
            if j == call_at:
                code.append(("call", None))
            code += _snippet(rng, cell)
        if call_at == len(aimed):
            code.append(("call", None))
        ending = ENDINGS[k % len(ENDINGS)]
        code += _ending(rng, ending, k // len(ENDINGS) * 4 + ENDINGS[:k % len(ENDINGS)].count("past-end"))
        f = len(code)
        code.append(("return", 0xFFFF_FFFF))           # -1: its next instruction minus one is f
        names, imms = [], []
        for pc, (op, imm) in enumerate(code):
            if op == "call" and imm is None:
                imm = (f - (pc + 1)) & 0xFFFF_FFFF
            names.append(op)
            imms.append(imm & 0xFFFF_FFFF)
        prog = Program(names, imms, data, source=f"machine-{k}")
        return MachineProgram(prog, tuple(cell_name(c) for c in aimed), ending)

    def render(self, m: MachineProgram) -> str:
        return format_program(m.program)

    def constructs(self, m: MachineProgram) -> set[str]:
        return {f"machine: {c}" for c in m.cells} | {f"machine ending: {m.ending}"}

    def stats(self, m: MachineProgram) -> Counter:
        return Counter({"gen:machine instructions": len(m.program)})

    def shrink(self, worker, m, signature: str, seconds: float, name: str):
        """Greedy: drop whole snippets' instructions while the signature
        holds (a machine program is its own minimal form otherwise)."""
        return shrink_program(m, lambda cand: worker.evaluate(cand, signature, name), signature, seconds,
                              lambda: worker.stop)


def shrink_program(m: MachineProgram, evaluate, signature: str, seconds: float, should_stop=lambda: False):
    """Delete runs of instructions (halves, then single ones), fixing up
    branch and call offsets, while `evaluate(candidate)[0] == signature`."""
    import time

    deadline = time.monotonic() + seconds
    got, cmp = evaluate(m)
    if got != signature:
        return m, cmp, 0
    tried = 0
    size = max(1, len(m.program) // 2)
    while size >= 1 and time.monotonic() < deadline and not should_stop():
        i, progress = 0, False
        while i < len(m.program) and time.monotonic() < deadline and not should_stop():
            cand = _without(m, i, i + size)
            if cand is not None:
                tried += 1
                g, c = evaluate(cand)
                if g == signature:
                    m, cmp, progress = cand, c, True
                    continue
            i += size
        if not progress:
            size //= 2
    return m, cmp, tried


def _without(m: MachineProgram, lo: int, hi: int) -> MachineProgram | None:
    """`m` without instructions lo..hi-1, branch offsets adjusted; None when
    a branch lands inside the removed range or nothing would remain."""
    p = m.program
    n = len(p)
    if hi > n or hi - lo >= n:
        return None
    branching = {"br", "br_if", "call"}
    names, imms = [], []
    for pc in range(n):
        if lo <= pc < hi:
            continue
        op, imm = p.names[pc], p.imms[pc]
        if op in branching:
            off = imm - (1 << 32) if imm & 0x8000_0000 else imm
            tgt = pc + 1 + off
            if lo <= tgt < hi:
                return None
            new_pc = pc - (hi - lo if pc >= hi else 0)
            new_tgt = tgt - (hi - lo if tgt >= hi else 0)
            imm = (new_tgt - new_pc - 1) & 0xFFFF_FFFF
        if op == "input_base" and names:
            return None
        names.append(op)
        imms.append(imm)
    return MachineProgram(Program(names, imms, p.input, source=p.source), m.cells, m.ending)


# what `constructs` can name: the campaign's coverage share for this generator
ALL_CONSTRUCTS = frozenset({f"machine: {cell_name(c)}" for c in CELLS} | {f"machine ending: {e}" for e in ENDINGS})
