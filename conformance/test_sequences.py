"""State carried between runs: one backend instance runs a sequence of
different programs, and every result must be that of a fresh instance
running the program alone.

The ports keep state between runs on purpose (the Rust port's per-thread
memory pool, the OCaml port's persistent batch process that reuses one
machine, the engine's loaded model shared by its sessions), re-zeroing
only what a run touched. The sequence is built to catch a reset that
misses something: programs that store across 4 KiB and 64 KiB page
boundaries, at the end of memory, through a long input_base copy, and that
leave globals, locals of deep frames, operand-stack values and active call
frames behind -- each followed by programs that read exactly those places
and expect the initial state (zeros, an empty stack that underflows, no
frame to return to). Between them run the transformer's hand-written
programs and a fixed-seed batch of random writers and readers at page
edges. The whole sequence runs forward and then backward through the
same instance.

A fresh instance is a new backend object, run on a new thread (the Rust
port's pool is per thread), with a newly loaded model for the engine.
"""

from __future__ import annotations

from functools import partial

from conformance.asm import asm as _asm

import dataclasses
import random
import threading
from pathlib import Path

import pytest

from conformance.conftest import assert_same_run, backend, backend_params
from isowasm.backends import get_backend
from isowasm.backends.base import Case
from isowasm.spec import table
from isowasm.spec.errors import ProgramError
from isowasm.spec.program import Program, format_program, load_program
from isowasm.spec.result import HALTED, TRAPPED

M32 = 0xFFFFFFFF
LIM = table.limits()
MEM = LIM["memory_bytes"]
WASM_PAGE = 65536
SMALL_PAGE = 4096            # the ports' dirty-page granularity
MAX_STEPS = 100_000
BUDGET_WRITER_STEPS = 2_000    # the budget writer's own budget (it never halts)
OPS = {o["name"]: o for o in table.ops()}
STORES = {n: o["width"] for n, o in OPS.items() if o.get("width") and o["pops"] == 2}
LOADS = {n: o["width"] for n, o in OPS.items() if o.get("width") and o["pops"] == 1}
PROG_DIR = Path(__file__).resolve().parent.parent / "transformer" / "programs"

# The layer-by-layer transformers build a new model state per run; they are
# far too slow for ~150 runs. Everything else is here.
MACHINES = backend_params(exclude=("transformer-graph", "transformer-torch"))
OWN_LOADER = {"rust", "ocaml"}   # backends that parse the program file themselves


asm = partial(_asm, source='seq')


def const(v: int):
    return ("i32.const", v & M32)


def out_bytes(addr: int, n: int):
    return [x for k in range(n) for x in (const(addr + k), ("i32.load8_u", 0), ("output",))]


# Stores that straddle a page edge: the bytes after the edge are the ones a
# pool that re-zeroes only the page of the first byte would leave dirty.
EDGES = [SMALL_PAGE, WASM_PAGE, 2 * WASM_PAGE, 3 * WASM_PAGE + SMALL_PAGE, 64 * WASM_PAGE]
LONG_INPUT = bytes((i * 13) % 255 + 1 for i in range(WASM_PAGE + 123))
INPUT_AT = WASM_PAGE - 16      # the long input crosses two 64 KiB edges from here


def _writer() -> Program:
    """Dirty everything a run can touch, and halt three calls deep with
    values on the stack."""
    items = [("i32.const", 0x57), ("output",)]
    for e in EDGES:
        items += [const(e - 2), const(0xA1B2C3D4), ("i32.store", 0)]       # 2 bytes each side
        items += [const(e - 1), const(0xE5F6), ("i32.store16", 0)]        # 1 byte each side
    items += [const(MEM - 4), const(0x01020304), ("i32.store", 0)]
    items += [const(0x5EED), ("global.set", 0), const(7), ("global.set", LIM["globals"] - 1)]
    items += [const(0x11), ("local.set", 0), const(0x22), ("local.set", LIM["locals_per_frame"] - 1)]
    items += [("call", "->f"), ("halt", 0),
              "f:", const(0x33), ("local.set", LIM["locals_per_frame"] - 1), ("call", "->g"), ("halt", 0),
              "g:", const(0x44), ("local.set", 0), ("call", "->h"), ("halt", 0),
              "h:", const(1), const(2), const(3), ("halt", 0)]
    return asm(items, source="writer")


def _memory_reader() -> tuple[Program, bytes]:
    """Every byte around each edge, the end of memory, and the globals:
    all zero in a fresh machine."""
    items, n = [], 0
    for e in EDGES:
        items += out_bytes(e - 4, 8)
        n += 8
    items += out_bytes(MEM - 4, 4)
    n += 4
    for g in (0, LIM["globals"] - 1):
        items += [("global.get", g), ("output",)]
        n += 1
    return asm(items + [("halt", 0)], source="memory-reader"), bytes(n)


def _frame_reader() -> tuple[Program, bytes]:
    """Locals of frame 0 and of frames 1..3 are zero; the stack is empty
    (the final drop underflows)."""
    last = LIM["locals_per_frame"] - 1
    items = [("local.get", 0), ("output",), ("local.get", last), ("output",),
             ("call", "->f"), ("drop",), ("halt", 0),
             "f:", ("local.get", 0), ("output",), ("local.get", last), ("output",), ("call", "->g"),
             ("return", "->f"),
             "g:", ("local.get", 0), ("output",), ("local.get", last), ("output",), ("return", "->g")]
    return asm(items, source="frame-reader"), bytes(6)


def _return_reader() -> Program:
    """No frame survives a run: return at the top traps return_outside."""
    return asm([("i32.const", 0x52), ("output",), ("return", 0)], source="return-reader")


def _long_input() -> Program:
    return asm([("input_base", INPUT_AT), *out_bytes(INPUT_AT + len(LONG_INPUT) - 2, 3), ("halt", 0)],
               LONG_INPUT, source="long-input")


def _short_input() -> tuple[Program, bytes]:
    """A shorter input at the same place: past its NUL, memory is zero."""
    data = b"ab"
    items = [("input_base", INPUT_AT), *out_bytes(INPUT_AT, 4)]
    for a in (WASM_PAGE, WASM_PAGE + SMALL_PAGE + 5, 2 * WASM_PAGE, INPUT_AT + len(LONG_INPUT) - 1):
        items += out_bytes(a, 2)
    return asm(items + [("halt", 0)], data, source="short-input"), b"ab\0\0" + bytes(8)


def _trapping_writer() -> Program:
    """Stores across an edge, then traps oob: memory is left by a trap."""
    e = 5 * WASM_PAGE
    return asm([const(e - 2), const(M32), ("i32.store", 0), const(MEM - 1), ("i32.load16_u", 0), ("halt", 0)],
               source="trapping-writer")


def _budget_writer() -> Program:
    """Stores across an edge in a loop that the budget cuts."""
    e = 6 * WASM_PAGE
    return asm(["loop:", const(e - 3), const(M32), ("i32.store", 0), ("br", "->loop")], source="budget-writer")


def _edge_reader(edges) -> tuple[Program, bytes]:
    items = [x for e in edges for x in out_bytes(e - 4, 8)]
    return asm(items + [("halt", 0)], source="edge-reader"), bytes(8 * len(edges))


# ---- random writers and readers at page edges -----------------------------

HOT = sorted({a + d for a in [0, SMALL_PAGE, WASM_PAGE, 2 * WASM_PAGE, 7 * WASM_PAGE + SMALL_PAGE, MEM - 4]
              for d in (-3, -2, -1, 0, 1, 2) if 0 <= a + d <= MEM - 4})
INDICES = [0, 1, 254, 255]


def random_program(rng: random.Random, k: int) -> Program:
    items = []
    for _ in range(rng.randint(4, 30)):
        kind = rng.choice(["store", "store", "load", "load", "local", "global", "push", "drop"])
        if kind == "store":
            op = rng.choice(sorted(STORES))
            items += [const(rng.choice(HOT)), const(rng.getrandbits(32)), (op, rng.choice([0, 0, 1, 2]))]
        elif kind == "load":
            op = rng.choice(sorted(LOADS))
            items += [const(rng.choice(HOT)), (op, rng.choice([0, 0, 1])), ("output",)]
        elif kind == "local":
            i = rng.choice(INDICES) % LIM["locals_per_frame"]
            if rng.random() < 0.5:
                items += [const(rng.getrandbits(32)), ("local.set", i)]
            else:
                items += [("local.get", i), ("output",)]
        elif kind == "global":
            i = rng.choice(INDICES) % LIM["globals"]
            if rng.random() < 0.5:
                items += [const(rng.getrandbits(32)), ("global.set", i)]
            else:
                items += [("global.get", i), ("output",)]
        elif kind == "push":
            items.append(const(rng.getrandbits(8)))
        else:
            items += [("drop",)]   # underflows unless this program pushed first
    items.append(("halt", 0))
    return asm(items, source=f"random-{k}")


def _sequence() -> list[tuple[str, Program, bytes | None, str]]:
    """(name, program, expected output or None, expected status or None)."""
    mem_reader, mem_zero = _memory_reader()
    frame_reader, frame_zero = _frame_reader()
    short, short_out = _short_input()
    later_edges, later_zero = _edge_reader([5 * WASM_PAGE, 6 * WASM_PAGE])
    seq = [
        ("writer", _writer(), b"W", HALTED),
        ("memory-reader", mem_reader, mem_zero, HALTED),
        ("writer", _writer(), b"W", HALTED),
        ("frame-reader", frame_reader, frame_zero, "trapped:stack_underflow"),
        ("writer", _writer(), b"W", HALTED),
        ("return-reader", _return_reader(), b"R", "trapped:return_outside"),
        ("long-input", _long_input(), LONG_INPUT[-2:] + b"\0", HALTED),
        ("short-input", short, short_out, HALTED),
        ("trapping-writer", _trapping_writer(), b"", "trapped:oob"),
        ("budget-writer", _budget_writer(), b"", "budget-exhausted"),
        ("edge-reader", later_edges, later_zero, HALTED),
    ]
    rng = random.Random(15)
    progs = sorted(PROG_DIR.glob("*.prog"))
    for k in range(40):
        seq.append((f"random-{k}", random_program(rng, k), None, None))
        if k < len(progs):
            seq.append((progs[k].stem, load_program(str(progs[k])), None, None))
    seq += [("memory-reader", mem_reader, mem_zero, HALTED), ("frame-reader", frame_reader, frame_zero,
                                                               "trapped:stack_underflow")]
    return seq + seq[::-1]


SEQUENCE = _sequence()


def _status(r) -> str:
    return f"trapped:{r.trap}" if r.status == TRAPPED else r.status


def _fresh_backend(name: str):
    if name == "transformer":
        import isowasm_engine
        from isowasm.transformer.build import BUILD_DIR
        from isowasm.transformer.engine_backend import EngineBackend
        b = EngineBackend()
        b.engine = isowasm_engine.Engine(str(BUILD_DIR))   # not the process's cached model
        return b
    return get_backend(name)


def _budget(prog: Program) -> int:
    return BUDGET_WRITER_STEPS if prog.source == "budget-writer" else MAX_STEPS


def _fresh_run(name: str, prog: Program, max_steps: int | None = None):
    """The program alone: a new backend instance on a new thread."""
    cache = _FRESH.setdefault(name, {})
    max_steps = _budget(prog) if max_steps is None else max_steps
    key = (format_program(prog), max_steps)
    if key not in cache:
        box = {}

        def work():
            b = _fresh_backend(name)
            try:
                box["r"] = b.run(Case(prog.source, prog), max_steps=max_steps, trace="text")
            except Exception as e:  # noqa: BLE001 - compared with the shared instance's outcome
                box["e"] = e
            finally:
                b.close()

        t = threading.Thread(target=work)
        t.start()
        t.join()
        cache[key] = box
    box = cache[key]
    if "e" in box:
        raise box["e"]
    return box["r"]


_FRESH: dict = {}


def _check(name, res, fresh, want_out, want_status, where):
    assert (res.status_line(), res.output) == (fresh.status_line(), fresh.output)
    assert_same_run(res, fresh)
    if want_out is not None:
        assert res.output == want_out, f"{where}: output {res.output!r}, a fresh machine's is {want_out!r}"
    if want_status is not None:
        assert _status(res) == want_status, f"{where}: {res.status_line()}"


@pytest.mark.parametrize("be", MACHINES)
def test_one_instance_runs_a_sequence_as_fresh_instances_do(be):
    b = backend(be)
    for i, (name, prog, want_out, want_status) in enumerate(SEQUENCE):
        where = f"{be}: program {i} ({name}) of the sequence"
        res = b.run(Case(name, prog), max_steps=_budget(prog), trace="text")
        fresh = _fresh_run(be, prog)
        try:
            _check(be, res, fresh, want_out, want_status, where)
        except AssertionError as e:
            raise AssertionError(f"{where}: differs from a fresh instance's run: {e}") from None


@pytest.mark.parametrize("be", [p for p in MACHINES if p.values[0] in OWN_LOADER])
def test_a_refused_program_file_leaves_the_instance_usable(be):
    """A program file the port's loader refuses, between runs: the next run
    is still a fresh machine's (the OCaml batch process answers an error
    line and keeps its machine)."""
    b = backend(be)
    bad = asm([("i32.const", 1), ("local.set", LIM["locals_per_frame"]), ("halt", 0)], source="bad")
    writer = _writer()
    reader, zero = _memory_reader()
    for _ in range(2):
        assert b.run(Case("writer", writer), max_steps=MAX_STEPS, trace="text").output == b"W"
        with pytest.raises((ProgramError, ValueError)):
            b.run(Case("bad", bad), max_steps=MAX_STEPS, trace="text")
        res = b.run(Case("reader", reader), max_steps=MAX_STEPS, trace="text")
        assert_same_run(res, _fresh_run(be, reader))
        assert res.output == zero


@pytest.mark.parametrize("be", [p for p in MACHINES if p.values[0] == "rust"])
def test_rust_run_batch_is_a_sequence_of_fresh_runs(be):
    """The Rust port's batch mode: the whole sequence in one call into the
    port (one thread, one memory pool), each result a fresh run's."""
    b = backend(be)
    for mode in ("text", "digest"):
        # one budget for the whole batch (the budget writer runs out of it)
        results = b.run_batch([Case(n, p) for n, p, _, _ in SEQUENCE], MAX_STEPS, trace=mode)
        assert len(results) == len(SEQUENCE)
        for i, ((name, prog, want_out, want_status), res) in enumerate(zip(SEQUENCE, results)):
            where = f"rust run_batch ({mode}): item {i} ({name})"
            fresh = _fresh_run(be, prog, MAX_STEPS)
            if mode == "digest":
                fresh = dataclasses.replace(fresh, trace=None)
            try:
                _check(be, res, fresh, want_out, want_status, where)
            except AssertionError as e:
                raise AssertionError(f"{where}: differs from a fresh run: {e}") from None
