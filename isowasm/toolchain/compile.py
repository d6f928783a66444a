"""Decoded wasm module -> machine program (spec/MACHINE.md §8).

Layout of the program:

    input_base A
    prologue: compute's param 0 = A, globals, reserved globals, data segments,
              the start function
    compute's body, in the top frame; its end/return is `halt 0`
    every other function: `local.set` of its params (last first), its body
    the runtime helpers the program calls (runtime.wat)
    `halt 4`, the target of failed bounds checks

Structured control is flattened onto labels; branch immediates are resolved
at the end (`Asm`). The translator tracks the operand stack height, so a
branch out of a block with surplus values drops them first (wasm unwinds
the stack; the machine does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from isowasm.toolchain import i64, lowering
from isowasm.toolchain.decode import (I32, I64, MEM64_WIDTH, MEM_WIDTH, WIDTH, Function, FuncType, Module,
                                      decode_module, slots)
from isowasm.toolchain.errors import CompileError, unsupported
from isowasm.spec import table
from isowasm.spec.program import Program

M32 = 0xFFFFFFFF
PAGE = 65536
LIMITS = table.limits()
MACHINE_PAGES = LIMITS["memory_bytes"] // PAGE
RUNTIME_WAT = Path(__file__).with_name("runtime.wat")
RUNTIME_I64_WAT = Path(__file__).with_name("runtime_i64.wat")   # spliced into runtime.wat's module
WASM_PAGES = 65536           # the most pages a 32-bit WebAssembly memory can have
# Reserved globals (runtime.wat's), after the program's own; the first three
# hold the memory size for bounds checks and memory.size/grow, the last
# (G_WASM_MAX) the size WebAssembly's memory.grow may reach.
G_MEM_BYTES, G_MEM_PAGES, G_MEM_MAX = range(3)
G_WASM_MAX = 5
# Calls to the runtime imports "trap_NAME" become `halt CODE` (machine.yaml).
# A comparison and its negation (the machine's comparisons push 0 or 1).
INVERSE = {a: b for x, y in (("eq", "ne"), ("lt_s", "ge_s"), ("lt_u", "ge_u"), ("gt_s", "le_s"),
                             ("gt_u", "le_u")) for a, b in ((f"i32.{x}", f"i32.{y}"), (f"i32.{y}", f"i32.{x}"))}
_TRAP_IMPORTS = {f"trap_{t['name']}": t["code"] for t in table.traps() if t["code"] is not None}


class Asm:
    """Machine code with symbolic labels for branch, call and return targets."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.imms: list[int] = []
        self.fixups: list[tuple[int, int]] = []   # (pc, label)
        self.labels: list[int] = []               # label -> pc (-1 until placed)
        self.last_label_pc = -1

    def emit(self, name: str, imm: int = 0) -> None:
        self.names.append(name)
        self.imms.append(imm & M32)

    def new_label(self) -> int:
        self.labels.append(-1)
        return len(self.labels) - 1

    def place(self, label: int) -> None:
        self.labels[label] = len(self.names)
        self.last_label_pc = len(self.names)

    def jump(self, name: str, label: int) -> None:
        """br, br_if, call or return whose immediate is the offset from the
        next instruction to `label`."""
        self.fixups.append((len(self.names), label))
        self.emit(name)

    def pop_const(self) -> int | None:
        """If the last instruction is an i32.const that nothing branches past
        (no label after it), remove it and return its value: the top of the
        stack is then known to be that constant."""
        if self.names and self.names[-1] == "i32.const" and self.last_label_pc < len(self.names):
            self.names.pop()
            return self.imms.pop()
        return None

    def pop_const2(self) -> tuple[int, int] | None:
        """The same for the last two instructions (an i64 constant's low and
        high words): both i32.const, no label between or after them."""
        if (len(self.names) >= 2 and self.names[-1] == self.names[-2] == "i32.const"
                and self.last_label_pc < len(self.names) - 1):
            hi = self.imms.pop()
            lo = self.imms.pop()
            del self.names[-2:]
            return lo, hi
        return None

    def last(self) -> tuple[str, int] | None:
        """The last instruction, when no label follows it (so every path to
        the current end runs it just before): (name, immediate)."""
        if self.names and self.last_label_pc < len(self.names):
            return self.names[-1], self.imms[-1]
        return None

    def pop_last(self) -> None:
        self.names.pop()
        self.imms.pop()

    def resolve(self) -> None:
        for pc, label in self.fixups:
            self.imms[pc] = (self.labels[label] - (pc + 1)) & M32


@dataclass
class _Frame:
    kind: str            # block | loop | if | func
    label: int           # where a branch to this frame goes
    height: int          # operand stack height at entry, below the block's parameters (words)
    arity: int           # words of results at the end
    else_label: int = -1
    params: int = 0      # words of block parameters

    @property
    def branch_arity(self) -> int:
        return self.params if self.kind == "loop" else self.arity


class _Context:
    """What all functions of one program share."""

    def __init__(self, asm: Asm, module: Module, *, runtime: bool, global_base: int,
                 checks: bool, func_labels: dict[int, int], helpers: "_Helpers | None",
                 gmap: list[int] | None = None):
        self.asm = asm
        self.module = module
        self.runtime = runtime                  # compiling runtime.wat
        self.global_base = global_base          # first reserved global
        # wasm global -> its (first) machine global; an i64 takes two
        self.gmap = gmap if gmap is not None else [global_base + i for i in range(len(module.globals))]
        self.checks = checks                    # bounds-check memory accesses
        self.func_labels = func_labels          # function index -> entry label
        self.helpers = helpers
        self.oob_label = asm.new_label()
        self.oob_used = False
        # lowering.py's scratch word: (address, save) or None (runtime.wat)
        self.scratch = None if runtime else scratch_mode(module)


class _Helpers:
    """Runtime helpers called so far, with their entry labels: those of
    runtime.wat, and the ones generated here (GENERATED)."""

    def __init__(self, asm: Asm):
        self.asm = asm
        self.rt = runtime_module()
        self.by_name = {name: idx for name, (kind, idx) in self.rt.exports.items() if kind == 0}
        self.labels: dict[int, int] = {}        # runtime function index -> label
        self.generated: dict[str, int] = {}     # generated helper -> label

    def label(self, name: str) -> int:
        if name in GENERATED:
            if name not in self.generated:
                self.generated[name] = self.asm.new_label()
            return self.generated[name]
        return self.label_of(self.by_name[name])

    def label_of(self, index: int) -> int:
        if index not in self.labels:
            self.labels[index] = self.asm.new_label()
        return self.labels[index]


# Shifts and rotates by a run-time count: a binary search on k mod 32 (5
# compares) into 32 leaves, leaf k the op's constant expansion by k
# (lowering.py: byte moves through the scratch word plus a few bits), so
# a shift costs ~25 steps plus its constant form instead of a bit-serial
# walk over the count. Generated per program (the expansions depend on
# the module's scratch mode), so they are not in runtime.wat.
GENERATED = {"shl", "shr_u", "shr_s", "rotl", "rotr"}


def _gen_shift(fc: "_FuncCompiler", name: str) -> None:
    """The body of the generated helper `name`: (x, k) -> x op (k mod 32)."""
    asm, e = fc.asm, fc.emit
    e("local.set", 1)
    e("local.set", 0)
    ok = asm.new_label()
    e("local.get", 1)
    e("i32.const", 32)
    e("i32.lt_u")
    asm.jump("br_if", ok)
    e("local.get", 1)
    lowering.and_const(fc, 31)
    e("local.set", 1)
    asm.place(ok)

    def leaf(k: int) -> None:
        e("local.get", 0)
        if name == "shl":
            lowering.shl_const(fc, k)
        elif name in ("shr_u", "shr_s"):
            lowering.shr_const(fc, k, signed=name == "shr_s")
        else:
            lowering.rotl_const(fc, k if name == "rotl" else -k & 31)
        asm.jump("return", fc.entry_label)

    def tree(lo: int, hi: int) -> None:
        if hi - lo == 1:
            leaf(lo)
            return
        mid = (lo + hi) // 2
        left = asm.new_label()
        e("local.get", 1)
        e("i32.const", mid)
        e("i32.lt_u")
        asm.jump("br_if", left)
        tree(mid, hi)
        asm.place(left)
        tree(lo, mid)

    tree(0, 32)


def runtime_text() -> str:
    """runtime.wat with the i64 helpers (runtime_i64.wat, module fields
    only) added inside its module."""
    text = RUNTIME_WAT.read_text().rstrip()
    assert text.endswith(")")
    return text[:-1] + "\n" + RUNTIME_I64_WAT.read_text() + ")\n"


@lru_cache(maxsize=1)
def runtime_module() -> Module:
    import wasmtime

    return decode_module(wasmtime.wat2wasm(runtime_text()))


class _FuncCompiler:
    def __init__(self, ctx: _Context, func: Function, entry: bool):
        self.ctx = ctx
        self.asm = ctx.asm
        self.f = func
        self.entry = entry
        # wasm local -> its (first) machine local; an i64 takes two
        self.ltypes = func.all_local_types()
        self.lmap: list[int] = []
        n = 0
        for t in self.ltypes:
            self.lmap.append(n)
            n += WIDTH.get(t, 1)
        self.nlocals = n           # machine locals before the temporaries (hoisted values included)
        self.nwasm = n             # those of the wasm function itself
        self.max_temp = -1
        self.h = 0
        self.offset = 0

    # -- the emitter interface used by lowering.py
    def emit(self, name: str, imm: int = 0) -> None:
        self.asm.emit(name, imm)

    def temp(self, i: int) -> int:
        self.max_temp = max(self.max_temp, i)
        return self.nlocals + i

    def helper(self, name: str) -> None:
        self.asm.jump("call", self.ctx.helpers.label(name))

    def scratch(self) -> tuple[int, bool] | None:
        """lowering.py's scratch bytes in memory (address, save), or None
        when this frame has no room for the temporaries they need."""
        if self.ctx.scratch is None or self.nlocals + lowering.T_SAVE + 3 > LIMITS["locals_per_frame"]:
            return None
        return self.ctx.scratch

    def last(self) -> tuple[str, int] | None:
        """The instruction just emitted, when nothing branches past it."""
        return self.asm.last()

    def pop_last(self) -> None:
        self.asm.pop_last()

    # --
    def err(self, construct: str, why: str) -> CompileError:
        return unsupported(construct, why, None if self.ctx.runtime else self.f.index, self.offset)

    def compile(self, entry_label: int) -> None:
        f = self.f
        for t in f.type.params + f.type.results:
            if t not in WIDTH:
                raise unsupported("non-integer function type", "only i32 and i64 parameters and results "
                                  "are supported", f.index, f.offset)
        i64.annotate(f, self.ctx.module)
        self.asm.place(entry_label)
        self.entry_label = entry_label
        if not self.entry:
            for i in reversed(range(slots(f.type.params))):
                self.emit("local.set", i)
        ctrl = [_Frame("func", -1, 0, slots(f.type.results))]
        dead = False       # after an unconditional branch, until the frame's else/end
        dead_depth = 0     # blocks opened inside dead code
        body = f.body
        hoists, uses = self.plan_hoists()
        folds, folded = self.plan_folds()
        extra: dict[int, int] = {}     # consumer index -> offset folded into it
        pos = -1
        while pos + 1 < len(body):
            pos += 1
            ins = body[pos]
            op = ins.op
            self.offset = ins.offset
            if dead:
                if op in ("block", "loop", "if"):
                    dead_depth += 1
                    continue
                if dead_depth:
                    if op == "end":
                        dead_depth -= 1
                    continue
                if op not in ("else", "end"):
                    continue
            if op == "end" or op == "else":
                fr = ctrl[-1]
                if op == "else":
                    if not dead:
                        self.asm.jump("br", fr.label)
                    self.asm.place(fr.else_label)
                    fr.else_label = -1
                    self.h = fr.height + fr.params
                    dead = False
                    continue
                ctrl.pop()
                if fr.kind == "func":
                    if not dead:
                        self.emit_return()
                    break
                if fr.kind == "if" and fr.else_label >= 0:
                    self.asm.place(fr.else_label)
                if fr.kind != "loop":
                    self.asm.place(fr.label)
                self.h = fr.height + fr.arity
                dead = False
            elif op == "block":
                p = slots(ins.arg.params)
                ctrl.append(_Frame("block", self.asm.new_label(), self.h - p, slots(ins.arg.results), params=p))
            elif op == "loop":
                p = slots(ins.arg.params)
                for local, name, k, slot in hoists.get(pos, ()):
                    self.emit("local.get", self.lmap[local])
                    lowering.lower(name, self, k)
                    self.emit("local.set", slot)
                fr = _Frame("loop", self.asm.new_label(), self.h - p, slots(ins.arg.results), params=p)
                self.asm.place(fr.label)
                ctrl.append(fr)
            elif op == "if":
                self.h -= 1
                p = slots(ins.arg.params)
                fr = _Frame("if", self.asm.new_label(), self.h - p, slots(ins.arg.results),
                            self.asm.new_label(), params=p)
                self.cond_branch(fr.else_label, when_zero=True)
                ctrl.append(fr)
            elif op == "br":
                self.branch_to(ctrl, ins.arg)
                dead = True
            elif op == "br_if":
                self.h -= 1
                self.branch_if(ctrl, ins.arg)
            elif op == "br_table":
                self.h -= 1
                self.br_table(ctrl, *ins.arg)
                dead = True
            elif op == "return":
                self.branch_to(ctrl, len(ctrl) - 1)
                dead = True
            elif op == "unreachable":
                self.emit("halt", 1)
                dead = True
            elif op == "nop":
                pass
            elif op == "call":
                self.call(ins.arg)
            elif op == "drop":
                for _ in range(WIDTH[ins.arg]):
                    self.emit("drop")
                self.h -= WIDTH[ins.arg]
            elif op == "select":
                if ins.arg == I64:
                    i64.select(self)
                    self.h -= 3
                else:
                    self.emit("select")
                    self.h -= 2
            elif op == "local.get" and pos in uses:
                self.emit("local.get", uses[pos])   # a value computed before its loop
                self.h += 1
                pos += 2
            elif op in ("local.get", "local.set", "local.tee"):
                self.local_op(op, ins.arg)
            elif op in ("global.get", "global.set"):
                g = self.ctx.gmap[ins.arg]
                w = WIDTH[self.ctx.module.global_types[ins.arg]]
                if op == "global.get":
                    for j in range(w):
                        self.emit(op, g + j)
                else:
                    for j in reversed(range(w)):
                        self.emit(op, g + j)
                self.h += w if op == "global.get" else -w
            elif op in MEM_WIDTH:
                self.memory_access(op, ins.arg + extra.pop(pos, 0))
            elif op in MEM64_WIDTH:
                i64.memory_access(self, op, ins.arg + extra.pop(pos, 0))
            elif op == "i32.add" and pos in folds and self.fold_add():
                self.h -= 1
                extra[folds[pos]] = folded[pos]
            elif op == "memory.size":
                self.emit("global.get", self.ctx.global_base + G_MEM_PAGES)
                self.h += 1
            elif op == "memory.grow":
                self.helper("mem_grow")
            elif op == "i32.const":
                self.emit("i32.const", ins.arg)
                self.h += 1
            elif op == "i64.const":
                self.emit("i32.const", ins.arg & M32)
                self.emit("i32.const", ins.arg >> 32)
                self.h += 2
            elif op == "i32.shl" and self.shift_pair(body, pos):
                pos += 2
            elif i64.is_i64_op(op):
                if self.ctx.runtime:
                    raise self.err(op, "runtime.wat must use native ops only")
                i64.lower(op, self)
            else:
                self.numeric(op)
        if self.nlocals + self.max_temp + 1 > LIMITS["locals_per_frame"]:
            raise unsupported(f"{self.nwasm} locals", f"a frame holds at most {LIMITS['locals_per_frame']} "
                              f"locals (params and locals, an i64 counting two, and {self.max_temp + 1} compiler "
                              "temporaries)",
                              f.index, f.offset)

    # Loop-invariant constant ops: `local.get L; i32.const k; OP` inside a
    # loop that never writes L (a shift or mask of a value fixed for the
    # whole loop, typically an index scaled inside an inner loop) is
    # computed once before the outermost such loop into a local of its own.
    HOIST_MIN = 6            # steps an expansion must cost to be worth a local

    def plan_hoists(self) -> tuple[dict[int, list], dict[int, int]]:
        """({index of a `loop`: [(wasm local, op, k, machine local)]},
        {index of the pattern's local.get: machine local})."""
        body = self.f.body
        if self.ctx.runtime or not any(ins.op == "loop" for ins in body):
            return {}, {}
        ends: dict[int, int] = {}
        stack: list[int] = []
        for i, ins in enumerate(body):
            if ins.op in ("block", "loop", "if"):
                stack.append(i)
            elif ins.op == "end" and stack:
                ends[stack.pop()] = i
        loops = [i for i, ins in enumerate(body) if ins.op == "loop"]
        writes = {i: {body[j].arg for j in range(i, ends.get(i, len(body)))
                      if body[j].op in ("local.set", "local.tee")} for i in loops}
        hoists: dict[int, list] = {}
        uses: dict[int, int] = {}
        slots_: dict[tuple, int] = {}
        budget = LIMITS["locals_per_frame"] - self.nlocals - lowering.T_SAVE - 3
        for p in range(len(body) - 2):
            a, b, c = body[p], body[p + 1], body[p + 2]
            if (a.op != "local.get" or b.op != "i32.const" or c.op not in lowering.BINARY
                    or c.op.startswith(("i32.div", "i32.rem")) or self.ltypes[a.arg] != I32):
                continue
            outer = next((i for i in loops if i < p < ends.get(i, -1) and a.arg not in writes[i]), None)
            if outer is None:
                continue
            key = (outer, a.arg, c.op, b.arg & M32)
            if key not in slots_:
                if len(slots_) >= min(budget, 16) or self._expansion_cost(a.arg, c.op, b.arg & M32) < self.HOIST_MIN:
                    continue
                slots_[key] = -1
            uses[p] = key
        # machine locals for the hoisted values, after the function's own
        # (the compiler's temporaries move up past them)
        for key in slots_:
            slots_[key] = self.nlocals
            self.nlocals += 1
            outer, local, name, k = key
            hoists.setdefault(outer, []).append((local, name, k, slots_[key]))
        return hoists, {p: slots_[key] for p, key in uses.items()}

    def _expansion_cost(self, local: int, op: str, k: int) -> int:
        c = lowering._Count(self)
        c._last = ("local.get", self.lmap[local])
        lowering.lower(op, c, k)
        return c.n

    # Addresses `local.get L; i32.const k; i32.add` (k < 2^31) feeding a load
    # or store: the add is the access's offset instead (2 steps less) when
    # L's value is known to be below memory_bytes, so that L + k cannot wrap
    # around 2^32 as the wasm add would and the offset (which does not
    # wrap) would not: L was the address of an access that did not trap,
    # with no write to L and no label (a path from elsewhere) in between.

    def plan_folds(self) -> tuple[dict[int, int], dict[int, int]]:
        """({index of a foldable i32.add: index of its load/store}, {add
        index: k})."""
        body = self.f.body
        m = self.ctx.module
        if self.ctx.runtime:
            return {}, {}
        small: set[int] = set()      # wasm locals known below memory_bytes
        stack: list = []             # producers: ("local", L) | ("addr", L, k, i) | None
        folds: dict[int, int] = {}
        ks: dict[int, int] = {}

        def pop():
            return stack.pop() if stack else None

        def stale(local):
            for j, e in enumerate(stack):
                if e is not None and e[1] == local:
                    stack[j] = None

        def accessed(e):
            if e is not None and e[0] in ("local", "addr"):
                small.add(e[1])
        for i, ins in enumerate(body):
            op = ins.op
            if op in MEM_WIDTH or op in MEM64_WIDTH:
                val = pop() if "store" in op else None
                addr = pop()
                if addr is not None and addr[0] == "addr":
                    folds[addr[3]] = i
                    ks[addr[3]] = addr[2]
                accessed(addr)
                del val
                if "store" not in op:
                    stack.append(None)
            elif op == "local.get":
                stack.append(("local", ins.arg, ins.arg in small))
            elif op in ("local.set", "local.tee"):
                pop()
                small.discard(ins.arg)
                stale(ins.arg)
                if op == "local.tee":
                    stack.append(None)
            elif op == "i32.const":
                stack.append(("const", ins.arg & M32))
            elif op == "i32.add":
                b, a = pop(), pop()
                pair = (a, b) if b is not None and b[0] == "const" else (b, a)
                e, c = pair
                if (e is not None and e[0] == "local" and e[2] and c is not None and c[0] == "const"
                        and c[1] < 1 << 31 and i >= 2 and {body[i - 1].op, body[i - 2].op} == {"local.get", "i32.const"}):
                    stack.append(("addr", e[1], c[1], i))
                else:
                    stack.append(None)
            elif op in ("global.get", "memory.size", "i64.const"):
                stack.append(None)
            elif op in ("global.set", "drop"):
                pop()
            elif op == "select":
                pop(), pop(), pop()
                stack.append(None)
            elif op == "memory.grow":
                pop()
                stack.append(None)
            elif op == "call":
                ft = m.func_type(ins.arg)
                for _ in ft.params:
                    pop()
                stack += [None] * len(ft.results)
            elif op in ("br_if",):
                pop()
            elif op in ("block", "if"):
                if op == "if":
                    pop()
                stack = []              # the block's own values only (its parameters unknown)
            elif op == "nop":
                pass
            elif i64.is_i64_op(op) or op in lowering.NATIVE or op in lowering.BINARY or op.startswith("i32."):
                try:
                    pops, pushes = i64._sig(op)
                except Exception:       # noqa: BLE001 - not a plain numeric op: forget everything
                    stack, small = [], set()
                    continue
                for _ in pops:
                    pop()
                stack += [None] * len(pushes)
            else:
                # loop (a merge point), else, end, br, br_table, return,
                # unreachable: nothing known past them
                stack, small = [], set()
        return folds, ks

    def fold_add(self) -> bool:
        """Drop the `i32.const k` just emitted (either side of the local.get)
        instead of adding it; False when the code before does not allow it."""
        asm = self.asm
        if asm.last_label_pc > len(asm.names) - 2 or len(asm.names) < 2:
            return False
        if asm.names[-1] == "i32.const" and asm.names[-2] == "local.get":
            asm.pop_last()
            return True
        if asm.names[-1] == "local.get" and asm.names[-2] == "i32.const":
            imm = asm.imms[-1]
            asm.pop_last()
            asm.pop_last()
            asm.emit("local.get", imm)
            return True
        return False

    def shift_pair(self, body, pos: int) -> bool:
        """`(x << k) >>u k` is a mask of the low 32 - k bits and `(x << 16)
        >>s 16`, `(x << 24) >>s 24` a sign extension (clang's forms of them):
        one lowering instead of two. False (nothing emitted) otherwise."""
        if (self.ctx.runtime or pos < 1 or pos + 2 >= len(body) or body[pos - 1].op != "i32.const"
                or body[pos + 1].op != "i32.const" or body[pos + 2].op not in ("i32.shr_u", "i32.shr_s")):
            return False
        k = body[pos - 1].arg & 31
        signed = body[pos + 2].op == "i32.shr_s"
        if k != body[pos + 1].arg & 31 or (signed and k not in (16, 24)):
            return False
        if self.asm.pop_const() is None:
            return False
        self.h -= 1
        if k == 0:
            return True
        if signed:
            lowering.lower("i32.extend8_s" if k == 24 else "i32.extend16_s", self)
        else:
            lowering.lower("i32.and", self, (1 << (32 - k)) - 1)
        return True

    def local_op(self, op: str, index: int) -> None:
        m, w = self.lmap[index], WIDTH[self.ltypes[index]]
        if w == 1:
            self.emit(op, m)
            self.h += {"local.get": 1, "local.set": -1, "local.tee": 0}[op]
        elif op == "local.get":
            self.emit("local.get", m)
            self.emit("local.get", m + 1)
            self.h += 2
        elif op == "local.set":
            self.emit("local.set", m + 1)
            self.emit("local.set", m)
            self.h -= 2
        else:
            self.emit("local.set", m + 1)
            self.emit("local.tee", m)
            self.emit("local.get", m + 1)

    def numeric(self, op: str) -> None:
        if self.ctx.runtime and op not in lowering.NATIVE:
            raise self.err(op, "runtime.wat must use native ops only")
        if op in lowering.BINARY:
            self.h -= 1
            lowering.lower(op, self, self.asm.pop_const())
        else:
            self.h -= op in lowering.NATIVE_BINARY
            lowering.lower(op, self)

    def call(self, index: int) -> None:
        m = self.ctx.module
        if index < m.num_imported_funcs:
            mod, name, _ = m.imports[index]
            if self.ctx.runtime:
                self.emit("halt", _TRAP_IMPORTS[name])
            else:
                self.emit("output")
                self.h -= 1
            return
        ft = m.func_type(index)
        self.asm.jump("call", self.ctx.func_labels[index])
        self.h += slots(ft.results) - slots(ft.params)

    def memory_access(self, op: str, offset: int) -> None:
        end = offset + MEM_WIDTH[op]
        if end > LIMITS["memory_bytes"]:
            # No address can make this access fit; the machine's own check
            # would see the offset wrapped mod 2^32, so trap here.
            self.ctx.oob_used = True
            self.asm.jump("br", self.ctx.oob_label)
        elif self.ctx.checks:
            self.bounds_check(end, "store" in op)
        self.emit(op, offset)
        self.h -= 2 if "store" in op else 0

    def bounds_check(self, k: int, is_store: bool) -> None:
        """Trap (halt 4) unless addr + k <= memory size, addr the address
        below the stored value (stores) or on top (loads), computed exactly
        as wasm does (no wrap-around): trap iff addr >u size - k, or
        size < k (then size - k wraps)."""
        ctx = self.ctx
        ctx.oob_used = True
        t_addr, t_val = self.temp(0), self.temp(1)
        if is_store:
            self.emit("local.set", t_val)
        self.emit("local.tee", t_addr)
        self.emit("global.get", ctx.global_base + G_MEM_BYTES)
        self.emit("i32.const", k)
        self.emit("i32.sub")
        self.emit("i32.gt_u")
        if k > ctx.module.mem_min * PAGE:
            self.emit("global.get", ctx.global_base + G_MEM_BYTES)
            self.emit("i32.const", k)
            self.emit("i32.lt_u")
            self.emit("i32.add")
        self.asm.jump("br_if", ctx.oob_label)
        self.emit("local.get", t_addr)
        if is_store:
            self.emit("local.get", t_val)

    # -- branches
    def unwind(self, fr: _Frame) -> None:
        """Drop the values between the frame's base and its branch results
        (n words, kept in scratch locals meanwhile: 0, then 2, 3, ...; 1 is
        br_table's index)."""
        n = fr.branch_arity
        surplus = self.h - fr.height - n
        if surplus <= 0:
            return
        ts = [self.temp(0 if j == 0 else j + 1) for j in range(n)]
        for t in reversed(ts):
            self.emit("local.set", t)
        for _ in range(surplus):
            self.emit("drop")
        for t in ts:
            self.emit("local.get", t)

    def emit_return(self) -> None:
        if self.entry:
            self.emit("halt", 0)
        else:
            self.asm.jump("return", self.entry_label)

    def branch_to(self, ctrl: list[_Frame], depth: int) -> None:
        fr = ctrl[-1 - depth]
        if not (fr.kind == "func" and self.entry):  # halt 0 needs no clean stack
            self.unwind(fr)
        if fr.kind == "func":
            self.emit_return()
        else:
            self.asm.jump("br", fr.label)

    def cond_branch(self, label: int, when_zero: bool) -> None:
        """Pop a condition and branch to `label` when it is zero
        (`when_zero`) or non-zero, in as few steps as the code before allows:
        an `i32.eqz` just emitted flips the sense instead of running; a
        comparison just emitted is inverted (lt_s -> ge_s, ...) rather than
        followed by an eqz; otherwise a branch on zero is `br_if skip; br
        label; skip:` (1 step when the condition is non-zero, 2 when it is
        zero: never more than `i32.eqz; br_if`)."""
        asm = self.asm
        while (last := asm.last()) is not None and last[0] == "i32.eqz":
            asm.pop_last()
            when_zero = not when_zero
        last = asm.last()
        if when_zero and last is not None and last[0] in INVERSE:
            asm.names[-1] = INVERSE[last[0]]
            when_zero = False
        if not when_zero:
            asm.jump("br_if", label)
            return
        skip = asm.new_label()
        asm.jump("br_if", skip)
        asm.jump("br", label)
        asm.place(skip)

    def branch_if(self, ctrl: list[_Frame], depth: int) -> None:
        fr = ctrl[-1 - depth]
        if fr.kind != "func" and self.h - fr.height == fr.branch_arity:
            self.cond_branch(fr.label, when_zero=False)
            return
        skip = self.asm.new_label()
        self.cond_branch(skip, when_zero=True)
        self.branch_to(ctrl, depth)
        self.asm.place(skip)

    def br_table(self, ctrl: list[_Frame], targets: list[int], default: int) -> None:
        """Binary search over runs of equal targets: O(log n) compares, each
        leaf an ordinary branch (with its own unwinding)."""
        runs: list[list[int]] = []      # [first index, depth]
        for i, d in enumerate(targets):
            if runs and runs[-1][1] == d:
                continue
            runs.append([i, d])
        if not runs or runs[-1][1] != default:
            runs.append([len(targets), default])
        idx = self.temp(1)
        self.emit("local.set", idx)

        def tree(lo: int, hi: int) -> None:
            if hi - lo == 1:
                self.branch_to(ctrl, runs[lo][1])
                return
            mid = (lo + hi) // 2
            left = self.asm.new_label()
            self.emit("local.get", idx)
            self.emit("i32.const", runs[mid][0])
            self.emit("i32.lt_u")
            self.asm.jump("br_if", left)
            tree(mid, hi)
            self.asm.place(left)
            tree(lo, mid)

        tree(0, len(runs))


SCRATCH = LIMITS["memory_bytes"] - 16      # lowering.py's 12 scratch bytes


def scratch_mode(m: Module) -> tuple[int, bool]:
    """(address, save) of lowering.py's scratch bytes: save is False when the
    module's memory can never reach them (no memory; a memory that cannot
    grow to the machine's size), so they are the toolchain's own, and True
    when every use must put back the bytes it overwrote."""
    if m.mem_min is None:
        return SCRATCH, False
    pages = m.mem_min
    if _uses(m, {"memory.grow"}):
        pages = MACHINE_PAGES if m.mem_max is None else min(m.mem_max, MACHINE_PAGES)
    return SCRATCH, pages * PAGE > SCRATCH


def input_address(m: Module) -> int:
    """Where input_base puts the input (spec §8): (__heap_base + 15) & ~15
    when exported, else the first 16-aligned address past every data
    segment, and never 0 (a null pointer is never the input)."""
    hb = m.exports.get("__heap_base")
    if hb is not None and hb[0] == 3 and hb[1] < len(m.globals):
        return (m.globals[hb[1]] + 15) & ~15 & M32
    end = max([a + len(d) for a, d in m.data] + [1])
    return (end + 15) & ~15


def _check_imports(m: Module) -> None:
    for i, (mod, name, t) in enumerate(m.imports):
        ft = m.types[t]
        if (mod, name) != ("env", "output_byte") or ft.params != (I32,) or ft.results:
            raise unsupported(f"import {mod}.{name}",
                              "the only import allowed is the function env.output_byte (i32) -> ()", None, None)


def _uses(m: Module, ops: set[str]) -> bool:
    return any(ins.op in ops for f in m.funcs for ins in f.body)


def compile_module(m: Module, input: bytes = b"", name: str = "<wasm>") -> Program:
    _check_imports(m)
    exp = m.exports.get("compute")
    if exp is None or exp[0] != 0:
        raise CompileError("no exported function `compute` (the entry point, spec §8)", construct="compute")
    entry = exp[1]
    if entry < m.num_imported_funcs:
        raise CompileError("`compute` is an import; it must be defined by the module", construct="compute")
    et = m.func_type(entry)
    if et.params not in ((), (I32,)):
        raise CompileError("`compute` must take no parameter or one i32 (the input address)",
                           construct="compute", func=entry)
    if m.mem_min is not None and m.mem_min > MACHINE_PAGES:
        raise CompileError(f"memory of {m.mem_min} pages: the machine has {MACHINE_PAGES} "
                           f"({LIMITS['memory_bytes']} bytes)", construct="memory")
    reserved = len(runtime_module().globals)
    gmap, gbase = [], 0
    for t in m.global_types:
        gmap.append(gbase)
        gbase += WIDTH[t]
    if gbase + reserved > LIMITS["globals"]:
        raise CompileError(f"{len(m.globals)} globals ({gbase} machine words, an i64 is two): the machine "
                           f"has {LIMITS['globals']}, {reserved} of them reserved by the toolchain",
                           construct="global")

    mem_min = m.mem_min or 0
    checks = mem_min < MACHINE_PAGES and _uses(m, set(MEM_WIDTH) | set(MEM64_WIDTH))
    asm = Asm()
    func_labels = {f.index: asm.new_label() for f in m.funcs}
    helpers = _Helpers(asm)
    ctx = _Context(asm, m, runtime=False, global_base=gbase, checks=checks,
                   func_labels=func_labels, helpers=helpers, gmap=gmap)

    # Prologue.
    addr = input_address(m)
    asm.emit("input_base", addr)
    fe = m.funcs[entry - m.num_imported_funcs]
    reach = _reachable(m, [entry] + ([m.start] if m.start is not None else []))
    # Initial values nothing reads cost steps for nothing: compute's
    # parameter when its body never reads it, globals no function reads.
    if et.params and any(ins.op == "local.get" and ins.arg == 0 for ins in fe.body):
        asm.emit("i32.const", addr)
        asm.emit("local.set", 0)
    read = {ins.arg for f in m.funcs if f.index in reach for ins in f.body if ins.op == "global.get"}
    for i, v in enumerate(m.globals):
        if i not in read:
            continue
        for j in range(WIDTH[m.global_types[i]]):
            word = v >> (32 * j) & M32
            if word:
                asm.emit("i32.const", word)
                asm.emit("global.set", gmap[i] + j)
    if checks or _uses(m, {"memory.size", "memory.grow"}):
        mem_max = min(MACHINE_PAGES, MACHINE_PAGES if m.mem_max is None else m.mem_max)
        for g, v in ((G_MEM_BYTES, mem_min * PAGE), (G_MEM_PAGES, mem_min), (G_MEM_MAX, mem_max)):
            if v:
                asm.emit("i32.const", v)
                asm.emit("global.set", gbase + g)
    if _uses(m, {"memory.grow"}):
        # Past G_MEM_MAX but within this, memory.grow traps memory_limit
        # (wasm would grow); past this it returns -1, as wasm does.
        wasm_max = WASM_PAGES if m.mem_max is None else min(WASM_PAGES, m.mem_max)
        if wasm_max:
            asm.emit("i32.const", wasm_max)
            asm.emit("global.set", gbase + G_WASM_MAX)
    _data_segments(asm, m, mem_min * PAGE)
    if not ctx.scratch[1] and addr + LIMITS["input_bytes"] > SCRATCH:
        # an input this long could reach the scratch bytes the lowering
        # reads as zero (the module itself never sees them); the NUL after
        # the input is a zero, so it cannot spoil them
        for a in (SCRATCH, SCRATCH + 8):
            asm.emit("i32.const", a)
            asm.emit("i32.const", 0)
            asm.emit("i32.store")
    if m.start is not None:
        asm.jump("call", func_labels[m.start])

    # compute runs in the top frame; functions follow, then the helpers.
    _FuncCompiler(ctx, fe, entry=True).compile(asm.new_label())
    # Only functions reachable from compute (or the start function) are laid
    # out: the program is the transformer's prompt, and dead code would only
    # lengthen it. Calls are all direct (call_indirect is rejected).
    called = {ins.arg for f in m.funcs if f.index in reach for ins in f.body if ins.op == "call"} | {m.start}
    for f in m.funcs:
        if f.index in reach and (f.index != entry or entry in called):
            _FuncCompiler(ctx, f, entry=False).compile(func_labels[f.index])
    _compile_helpers(asm, helpers, gbase, ctx)
    if ctx.oob_used:
        asm.place(ctx.oob_label)
        asm.emit("halt", 4)
    asm.resolve()
    if len(asm.names) > LIMITS["max_instructions"]:
        raise CompileError(f"program of {len(asm.names)} instructions: the machine holds at most "
                           f"{LIMITS['max_instructions']}", construct="program size")
    return Program(asm.names, asm.imms, input, name)


def _reachable(m: Module, roots: list[int]) -> set[int]:
    by_index = {f.index: f for f in m.funcs}
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        i = todo.pop()
        if i in seen or i not in by_index:
            continue
        seen.add(i)
        todo += [ins.arg for ins in by_index[i].body if ins.op == "call"]
    return seen


def _data_segments(asm: Asm, m: Module, mem_bytes: int) -> None:
    """Active data segments as stores of their non-zero 4-byte words (memory
    starts zeroed). A segment outside the memory fails instantiation in
    wasm; here the program traps oob before running anything."""
    for a, data in m.data:
        if a + len(data) > mem_bytes:
            asm.emit("halt", 4)
            return
        for i in range(0, len(data) - 3, 4):
            word = int.from_bytes(data[i:i + 4], "little")
            if word:
                asm.emit("i32.const", a + i)
                asm.emit("i32.const", word)
                asm.emit("i32.store")
        for i in range(len(data) & ~3, len(data)):
            if data[i]:
                asm.emit("i32.const", a + i)
                asm.emit("i32.const", data[i])
                asm.emit("i32.store8")


def _compile_helpers(asm: Asm, helpers: _Helpers, gbase: int, prog_ctx: _Context) -> None:
    """Compile each runtime helper the program called, and those they call,
    with runtime globals mapped onto the reserved ones; then the generated
    helpers it called (in the program's own context: its scratch mode)."""
    for name, label in sorted(helpers.generated.items()):
        fc = _FuncCompiler(prog_ctx, Function(-1, FuncType((I32, I32), (I32,))), entry=False)
        asm.place(label)
        fc.entry_label = label
        _gen_shift(fc, name)
    rt = helpers.rt
    labels = _LabelMap(helpers)
    ctx = _Context(asm, rt, runtime=True, global_base=gbase, checks=False,
                   func_labels=labels, helpers=helpers)
    done: set[int] = set()
    while True:
        todo = [i for i in helpers.labels if i not in done]
        if not todo:
            break
        for i in todo:
            done.add(i)
            f = rt.funcs[i - rt.num_imported_funcs]
            _FuncCompiler(ctx, f, entry=False).compile(helpers.labels[i])


class _LabelMap(dict):
    """Runtime function index -> label, created on first use."""

    def __init__(self, helpers: _Helpers):
        super().__init__()
        self.helpers = helpers

    def __missing__(self, index: int) -> int:
        return self.helpers.label_of(index)


def compile_bytes(wasm: bytes, input: bytes = b"", name: str = "<wasm>") -> Program:
    return compile_module(decode_module(wasm), input, name)
