"""The Python reference executor: the executable form of spec/MACHINE.md.

One function, `_run_slice`, holds the semantics of every op (MACHINE.md §4),
written as a single dispatch loop over local variables because that is what
makes CPython fast enough (≥ 1.5 M instructions/s untraced). Tracing records
one event `(pc, value, flags)` per step; spec/trace.py turns events into
tokens, so the token layout lives there, beside the YAML it follows.
"""

from __future__ import annotations

import sys
import time

from isowasm.spec import table
from isowasm.spec.program import Program
from isowasm.spec.result import BUDGET, HALTED, TRAPPED, RunResult
from isowasm.spec.trace import TRAP_EVENT, TraceSink

M32 = 0xFFFFFFFF
_LIM = table.limits()
_TRAP_NAMES = table.trap_names()
_TRAP_CODE = table.trap_by_code()
_TRAP_INDEX = {n: i for i, n in enumerate(_TRAP_NAMES)}


class Machine:
    """Machine state (MACHINE.md §3) between slices of execution."""

    def __init__(self, prog: Program, data: bytes | None = None):
        self.prog = prog
        self.code = list(zip(prog.codes, prog.imms))
        self.data = prog.input if data is None else data
        self.pc = 0
        self.stack: list[int] = []
        self.locals = [0] * _LIM["locals_per_frame"]
        self.frames: list[tuple[int, list[int], int]] = []
        self.globals = [0] * _LIM["globals"]
        self.mem = bytearray(_LIM["memory_bytes"])
        self.output = bytearray()
        self.steps = 0
        self.tokens = len(self.data) + 2  # the input section opens every trace
        self.status: str | None = None
        self.trap: str | None = None
        self.trap_pc: int | None = None


def _run_slice(m: Machine, limit: int, ev) -> None:
    """Execute until `m.steps == limit` or the machine stops. `ev` is None, or
    a list's append that receives one (pc, value, flags) event per step."""
    (HALT, RETURN, CALL, BR, BR_IF, DROP, SELECT, LGET, LSET, LTEE, GGET, GSET,
     LOAD, LOAD8S, LOAD8U, LOAD16S, LOAD16U, STORE, STORE8, STORE16, CONST,
     EQZ, EQ, NE, LTS, LTU, GTS, GTU, LES, LEU, GES, GEU, ADD, SUB, OUTPUT,
     INBASE) = range(36)
    code = m.code
    pc = m.pc
    stack = m.stack
    push = stack.append
    pop = stack.pop
    loc = m.locals
    glob = m.globals
    mem = m.mem
    mv32 = memoryview(mem).cast("I") if sys.byteorder == "little" else None
    memsize = len(mem)
    steps = m.steps
    tokens = m.tokens
    maxstack = _LIM["operand_stack"]
    maxdepth = _LIM["call_depth"]
    frames = m.frames
    trap = None
    tracing = ev is not None
    # Tokens are 5 per step except where the branch below adjusts `tokens`.
    try:
        while steps < limit:
            op, imm = code[pc]
            steps += 1
            if op == LGET:
                if len(stack) >= maxstack:
                    trap = "stack_overflow"; break
                v = loc[imm]
                push(v)
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == CONST:
                if len(stack) >= maxstack:
                    trap = "stack_overflow"; break
                push(imm)
                if tracing: ev((pc, imm, 0))
                pc += 1
            elif op == LSET:
                v = pop()
                loc[imm] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == ADD:
                b = pop(); a = stack[-1]
                v = (a + b) & M32
                stack[-1] = v
                if tracing: ev((pc, v, _carries(a, b)))
                pc += 1
            elif op == BR_IF:
                if pop():
                    tokens += 1
                    if tracing: ev((pc, 1, 0))
                    pc += 1 + (imm - 0x100000000 if imm & 0x80000000 else imm)
                else:
                    tokens -= 4
                    if tracing: ev((pc, 0, 0))
                    pc += 1
            elif op == LTEE:
                v = stack[-1]
                loc[imm] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == LOAD:
                ea = stack[-1] + imm
                if ea + 4 > memsize:
                    trap = "oob"; break
                if mv32 is not None and not ea & 3:
                    v = mv32[ea >> 2]
                else:
                    v = int.from_bytes(mem[ea:ea + 4], "little")
                stack[-1] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == STORE:
                v = pop()
                ea = pop() + imm
                if ea + 4 > memsize:
                    trap = "oob"; break
                if mv32 is not None and not ea & 3:
                    mv32[ea >> 2] = v
                else:
                    mem[ea:ea + 4] = v.to_bytes(4, "little")
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == BR:
                tokens += 1
                if tracing: ev((pc, 1, 0))
                pc += 1 + (imm - 0x100000000 if imm & 0x80000000 else imm)
            elif op == SUB:
                b = pop(); a = stack[-1]
                v = (a - b) & M32
                stack[-1] = v
                if tracing: ev((pc, v, _borrows(a, b)))
                pc += 1
            elif op == EQZ:
                v = 0 if stack[-1] else 1
                stack[-1] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op <= GEU and op >= EQ:
                b = pop(); a = stack[-1]
                if op == EQ: v = a == b
                elif op == NE: v = a != b
                elif op == LTU: v = a < b
                elif op == GTU: v = a > b
                elif op == LEU: v = a <= b
                elif op == GEU: v = a >= b
                else:
                    a ^= 0x80000000; b ^= 0x80000000  # signed order = unsigned order of the flipped sign bit
                    if op == LTS: v = a < b
                    elif op == GTS: v = a > b
                    elif op == LES: v = a <= b
                    else: v = a >= b
                v = 1 if v else 0
                stack[-1] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == LOAD8U or op == LOAD8S:
                ea = stack[-1] + imm
                if ea + 1 > memsize:
                    trap = "oob"; break
                v = mem[ea]
                f = 0
                if op == LOAD8S and v & 0x80:
                    v |= 0xFFFFFF00; f = 0b1111
                stack[-1] = v
                if tracing: ev((pc, v, f))
                pc += 1
            elif op == LOAD16U or op == LOAD16S:
                ea = stack[-1] + imm
                if ea + 2 > memsize:
                    trap = "oob"; break
                v = mem[ea] | mem[ea + 1] << 8
                f = 0
                if op == LOAD16S and v & 0x8000:
                    v |= 0xFFFF0000; f = 0b1110
                stack[-1] = v
                if tracing: ev((pc, v, f))
                pc += 1
            elif op == STORE8:
                v = pop()
                ea = pop() + imm
                if ea + 1 > memsize:
                    trap = "oob"; break
                mem[ea] = v & 0xFF
                tokens -= 3
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == STORE16:
                v = pop()
                ea = pop() + imm
                if ea + 2 > memsize:
                    trap = "oob"; break
                mem[ea] = v & 0xFF
                mem[ea + 1] = (v >> 8) & 0xFF
                tokens -= 2
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == CALL:
                if len(frames) >= maxdepth:
                    trap = "call_depth"; break
                frames.append((pc + 1, loc, imm))
                loc = [0] * len(loc)
                tokens += 1
                if tracing: ev((pc, 0, 0))
                pc += 1 + (imm - 0x100000000 if imm & 0x80000000 else imm)
            elif op == RETURN:
                if not frames:
                    trap = "return_outside"; break
                rpc, loc, kc = frames.pop()
                tokens += 1
                if tracing: ev((pc, (rpc - pc - 1) & M32, _borrows(imm, kc)))
                pc = rpc
            elif op == GGET:
                if len(stack) >= maxstack:
                    trap = "stack_overflow"; break
                v = glob[imm]
                push(v)
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == GSET:
                glob[imm] = pop()
                tokens -= 4
                if tracing: ev((pc, 0, 0))
                pc += 1
            elif op == DROP:
                pop()
                tokens -= 4
                if tracing: ev((pc, 0, 0))
                pc += 1
            elif op == SELECT:
                c = pop(); b = pop()
                v = stack[-1] if c else b
                stack[-1] = v
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == OUTPUT:
                v = pop() & 0xFF
                m.output.append(v)
                tokens -= 4
                if tracing: ev((pc, v, 0))
                pc += 1
            elif op == HALT:
                if imm:
                    trap = _TRAP_CODE[imm]; break
                tokens -= 4
                if tracing: ev((pc, 0, 0))
                m.status = HALTED
                break
            elif op == INBASE:
                data = m.data + b"\x00"
                if imm + len(data) > memsize:
                    trap = "oob"; break
                mem[imm:imm + len(data)] = data
                tokens -= 5  # the input section was counted when the machine was made
                if tracing: ev((pc, 0, 0))
                pc += 1
            else:  # pragma: no cover - the parser admits only known opcodes
                raise AssertionError(f"opcode {op} at pc {pc}")
    except IndexError:
        # Only pops of an empty list raise IndexError here (locals and globals
        # are bounded at load time, memory by explicit checks).
        trap = "stack_underflow"
    if trap is not None:
        # The trapping step emits trap(NAME) alone: one token instead of five.
        tokens -= 4
        m.status = TRAPPED
        m.trap = trap
        m.trap_pc = pc
        if tracing: ev((pc, TRAP_EVENT, _TRAP_INDEX[trap]))
    m.pc = pc
    m.locals = loc
    m.tokens = tokens + 5 * (steps - m.steps)
    m.steps = steps


def _carries(a: int, b: int) -> int:
    f = 0
    c = 0
    for i in range(4):
        s = ((a >> 8 * i) & 255) + ((b >> 8 * i) & 255) + c
        c = s >> 8
        f |= c << i
    return f


def _borrows(a: int, b: int) -> int:
    f = 0
    c = 0
    for i in range(4):
        s = ((a >> 8 * i) & 255) - ((b >> 8 * i) & 255) - c
        c = 1 if s < 0 else 0
        f |= c << i
    return f


def run_reference(prog: Program, data: bytes | None = None, *, max_steps: int | None = None,
                  trace: str = "none", checkpoint_interval: int = 16384, progress=None) -> RunResult:
    """Run `prog` on `data` (default: the program file's own input).

    trace: "none" | "digest" (sha256 + checkpoints) | "text" (canonical trace
    text, digest and checkpoints too). `progress(steps, tokens)` is called
    between slices when given.
    """
    if trace not in ("none", "digest", "text"):
        raise ValueError(f"trace mode {trace!r}")
    if max_steps is None:
        max_steps = _LIM["default_max_steps"]
    t0 = time.perf_counter()
    m = Machine(prog, data)
    sink = TraceSink(prog, m.data, keep_text=(trace == "text")) if trace != "none" else None
    events: list = []
    ev = events.append if sink else None
    interval = checkpoint_interval if sink else 1 << 20
    while m.status is None and m.steps < max_steps:
        limit = min(max_steps, (m.steps // interval + 1) * interval)
        _run_slice(m, limit, ev)
        if sink:
            sink.feed(events)
            events.clear()
            if m.status is None and m.steps % interval == 0:
                sink.checkpoint(m.steps)
        if progress:
            progress(m.steps, m.tokens)
    status = m.status or BUDGET
    res = RunResult(
        backend="reference", status=status, output=bytes(m.output), trap=m.trap,
        trap_pc=m.trap_pc, steps=m.steps, tokens=m.tokens, seconds=time.perf_counter() - t0,
    )
    if sink:
        res.digest = sink.hexdigest()
        res.checkpoints = sink.checkpoints
        res.trace = sink.text() if trace == "text" else None
        if sink.tokens != res.tokens:  # the two counts are independent; they must agree
            raise AssertionError(f"token count {res.tokens} != rendered {sink.tokens}")
    return res
