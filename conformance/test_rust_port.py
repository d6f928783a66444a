"""The Rust port (ports/rust/, Python module isowasm_rust) against the
reference executor: byte-identical traces, equal digests, checkpoints,
statuses, traps, step and token counts, budgets, and the same rejections (at
the same token and line) of malformed programs. Hand-written programs cover
all 35 ops plus input_base; a fixed-seed batch of random programs covers
their combinations."""

from __future__ import annotations

from conformance.asm import asm

import random

import pytest

from isowasm.backends import required_backends
from isowasm.backends.base import BackendUnavailable, Case
from isowasm.spec import table
from isowasm.spec.errors import ProgramError
from isowasm.spec.program import Program, format_program, parse_program
from isowasm.spec.reference import run_reference

try:
    import isowasm_rust
    from isowasm.backends.rust import RustBackend
except ImportError as e:  # not built
    isowasm_rust, _WHY = None, f"rust backend not built: run `make rust` ({e})"
else:
    _WHY = None

if _WHY is not None and "rust" in required_backends():
    raise RuntimeError(f"required backend rust is unavailable: {_WHY}")
pytestmark = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")

M32 = 0xFFFFFFFF
LIM = table.limits()
MEM = LIM["memory_bytes"]


# ---- helpers -----------------------------------------------------------



def const(v: int):
    return ("i32.const", v & M32)


FIELDS = ("status", "trap", "trap_pc", "output", "steps", "tokens", "trace", "digest", "checkpoints")


def agree(prog: Program, max_steps: int = 100_000, interval: int = 16384,
          modes=("text", "digest", "none"), data: bytes | None = None) -> dict:
    """Run the port and the reference in each mode; every field must match.
    Returns the port's text-mode (else last) result."""
    text = format_program(prog)
    out = None
    for mode in modes:
        ref = run_reference(prog, data, max_steps=max_steps, trace=mode, checkpoint_interval=interval)
        got = isowasm_rust.run(text, data, max_steps, mode, interval)
        for f in FIELDS:
            want = getattr(ref, f)
            if f == "checkpoints" and want is not None:
                want = [tuple(c) for c in want]
            assert got[f] == want, f"{f} differs in trace mode {mode}"
        if out is None or mode == "text":
            out = got
    return out


# ---- the tables --------------------------------------------------------

def test_tables_match_machine_yaml():
    assert isowasm_rust.limits() == LIM
    assert isowasm_rust.op_names() == table.op_names() + ["input_base"]
    assert isowasm_rust.traps() == [(t["name"], t["code"], t["resource"]) for t in table.traps()]


# ---- every op ----------------------------------------------------------

EDGE = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x00FF00FF,
        0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x12345678]


def test_arithmetic_flags_and_comparisons():
    binops = ["i32.add", "i32.sub", "i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u", "i32.gt_s",
              "i32.gt_u", "i32.le_s", "i32.le_u", "i32.ge_s", "i32.ge_u"]
    items = []
    for a in EDGE:
        items += [const(a), ("i32.eqz",), ("drop",)]
        for b in EDGE[::2] + [a]:
            for op in binops:
                items += [const(a), const(b), (op,), ("output",)]
    items.append(("halt", 0))
    r = agree(asm(items), max_steps=1_000_000, modes=("text", "none"))
    assert r["status"] == "halted"
    assert "'" in r["trace"]


def test_locals_globals_select_drop_tee():
    items = [const(5), ("local.set", 0), const(7), ("local.tee", 255), ("global.set", 255),
             ("local.get", 0), ("local.get", 255), ("i32.add",), ("global.set", 3),
             ("global.get", 3), ("global.get", 255), ("global.get", 9),
             const(0), ("select",), const(1), ("select",), ("output",),
             const(0xABCDEF01), ("drop",), ("local.get", 17), ("output",), ("halt", 0)]
    agree(asm(items))


def test_memory_all_widths_signs_and_offsets():
    items = [("input_base", 64)]
    vals = [0x80FF7F01, 0x7F80FF00, 0xFFFFFFFF, 0x00008000]
    for i, v in enumerate(vals):
        items += [const(1000 + 16 * i), const(v), ("i32.store", 3)]
        items += [const(2000 + 16 * i), const(v), ("i32.store16", 1)]
        items += [const(3000 + 16 * i), const(v), ("i32.store8", 0)]
    for base in (1003, 1019, 1035, 1051, 2001, 2017, 3000, 3016, 64, 66):
        for op in ("i32.load", "i32.load8_u", "i32.load8_s", "i32.load16_u", "i32.load16_s"):
            for off in (0, 1, 2):
                items += [const(base), (op, off), ("output",)]
    items += [const(MEM - 4), ("i32.load", 0), ("output",), const(MEM - 1), const(0x5A), ("i32.store8", 0)]
    items += [const(MEM - 2), ("i32.load16_s", 0), ("output",), ("halt", 0)]
    r = agree(asm(items, b"AB\x80\xff"))
    assert r["status"] == "halted"
    # no wrap-around: 0xffffffff + 0x41 is past 2^32, out of bounds as in wasm
    r = agree(asm([const(0xFFFFFFFF), ("i32.load8_u", 0x41), ("output",), ("halt", 0)]))
    assert (r["status"], r["trap"]) == ("trapped", "oob")


def test_branches_calls_returns():
    # sum(n) = n + sum(n - 1), recursively; then a nested call chain.
    items = [
        ("input_base", 0x100),
        const(10), ("call", "->sum"), ("output",),
        const(3), ("call", "->outer"), ("output",),
        const(0), ("br_if", "->never"), ("br", "->end"),
        "never:", ("halt", 1),
        "end:", ("halt", 0),
        "sum:", ("local.set", 0), ("local.get", 0), ("i32.eqz",), ("br_if", "->base"),
        ("local.get", 0), ("local.get", 0), const(1), ("i32.sub",), ("call", "->sum"),
        ("i32.add",), ("return", "->sum"),
        "base:", const(0x30), ("return", "->sum"),
        "outer:", ("local.set", 1), const(99), ("local.set", 2), ("local.get", 1),
        ("call", "->inner"), ("local.get", 2), ("i32.add",), ("return", "->outer"),
        "inner:", ("local.set", 1), ("local.get", 2), ("output",), ("local.get", 1),
        const(2), ("i32.add",), ("return", "->inner"),
    ]
    r = agree(asm(items, b"x"))
    assert r["status"] == "halted"
    assert "return_commit" in r["trace"] and "call_commit" in r["trace"]


def test_return_flags_when_convention_is_broken():
    # A return immediate that does not follow the toolchain convention: the
    # port must still emit exactly (rpc - pc - 1) with the borrows of k - kc.
    items = [("call", "->f"), ("call", "->g"), ("halt", 0),
             "f:", ("return", 0x00010203), "g:", const(1), ("drop",), ("return", 0xFFFFFF00)]
    r = agree(asm(items))
    assert "'" in r["trace"]


def test_outputs_every_byte():
    items = []
    for b in range(256):
        items += [const(b | 0x1200), ("output",)]
    items.append(("halt", 0))
    r = agree(asm(items))
    assert r["output"] == bytes(range(256))


@pytest.mark.parametrize("data", [b"", b"a", b"{}", b"hello, world\n\t\x7f\x80\xfe\xff", bytes(range(1, 256))])
def test_input_sections(data):
    # echo the input through memory
    items = [("input_base", 0x40), const(0x40), ("local.set", 0),
             "loop:", ("local.get", 0), ("i32.load8_u", 0), ("local.tee", 1), ("i32.eqz",),
             ("br_if", "->done"), ("local.get", 1), ("output",), ("local.get", 0), const(1),
             ("i32.add",), ("local.set", 0), ("br", "->loop"), "done:", ("halt", 0)]
    prog = asm(items, data)
    r = agree(prog)
    assert r["output"] == data
    # an explicit input overrides the section, as for the reference
    agree(prog, data=b"other")


# ---- traps --------------------------------------------------------------

TRAPS = [
    ("unreachable", [const(1), ("halt", 1)]),
    ("div_zero", [("halt", 2)]),
    ("int_overflow", [const(0), ("halt", 3)]),
    ("oob", [("halt", 4)]),
    ("memory_limit", [("halt", 5)]),
    ("oob", [const(MEM - 3), ("i32.load", 0), ("halt", 0)]),
    ("oob", [const(MEM), ("i32.load8_s", 0), ("halt", 0)]),
    ("oob", [const(0), ("i32.load16_u", 0xFFFFFFFF), ("halt", 0)]),
    ("oob", [const(MEM - 1), const(7), ("i32.store16", 0), ("halt", 0)]),
    ("oob", [const(4), const(7), ("i32.store", MEM - 7), ("halt", 0)]),
    ("oob", [("input_base", MEM - 2), ("halt", 0)]),
    ("call_depth", ["f:", ("call", "->f"), ("halt", 0)]),
    ("stack_overflow", ["l:", const(1), ("br", "->l")]),
    ("stack_overflow", ["l:", ("local.get", 0), ("br", "->l")]),
    ("stack_overflow", ["l:", ("global.get", 0), ("br", "->l")]),
    ("stack_underflow", [("drop",), ("halt", 0)]),
    ("stack_underflow", [const(1), ("i32.sub",), ("halt", 0)]),
    ("stack_underflow", [const(1), const(2), ("select",), ("halt", 0)]),
    ("stack_underflow", [("local.tee", 0), ("halt", 0)]),
    ("stack_underflow", [("global.set", 0), ("halt", 0)]),
    ("stack_underflow", [("br_if", 0), ("halt", 0)]),
    ("stack_underflow", [("output",), ("halt", 0)]),
    ("stack_underflow", [("i32.eqz",), ("halt", 0)]),
    ("stack_underflow", [("i32.load", 0), ("halt", 0)]),
    ("stack_underflow", [const(5), ("i32.store8", 0), ("halt", 0)]),
    ("return_outside", [const(1), ("return", 0)]),
]


@pytest.mark.parametrize("trap,items", TRAPS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(TRAPS)])
def test_traps(trap, items):
    modes = ("digest", "none") if trap == "stack_overflow" else ("text", "digest", "none")
    r = agree(asm(items, b"x}"), max_steps=200_000, modes=modes)
    assert (r["status"], r["trap"]) == ("trapped", trap)


# ---- budget and checkpoints -----------------------------------------------

def _countdown(n: int) -> Program:
    return asm([const(n), ("local.set", 0), "l:", ("local.get", 0), const(1), ("i32.sub",),
                ("local.tee", 0), ("br_if", "->l"), ("halt", 0)])


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 16383, 16384, 16385, 40_000, 60_002])
def test_budget_and_default_checkpoints(budget):
    r = agree(_countdown(12_000), max_steps=budget, modes=("digest", "none"))
    assert r["steps"] == min(budget, 60_003)
    assert r["status"] == ("halted" if budget >= 60_003 else "budget-exhausted")


@pytest.mark.parametrize("interval", [1, 2, 3, 5, 7, 1000])
def test_checkpoint_intervals(interval):
    # halting on, before and after an interval boundary
    for n in (1, 2, 3, 4):
        agree(_countdown(n), interval=interval)
        agree(_countdown(n), interval=interval, max_steps=5 * n)


# ---- malformed programs -------------------------------------------------

MALFORMED = [
    "",
    "   \n  ",
    "halt 00 00 00 00",
    "{ halt 00 00 00 00",
    "{ }",
    "{\n}\n00 commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00\n}\n",
    "{\ni32.const 01 02 03\nhalt 00 00 00 00\n}\n",
    "{\nhalt 00 00 00 00 00\n}\n",
    "{\ni32.mul 00 00 00 00\nhalt 00 00 00 00\n}\n",
    "{\nHALT 00 00 00 00\n}\n",
    "{\nhalt 00 00 0g 00\n}\n",
    "{\nhalt 00 00 000 00\n}\n",
    "{\nhalt 0 00 00 00\n}\n",
    "{\nhalt 00 00 00 00\ninput_base 00 00 00 00\nhalt 00 00 00 00\n}\n",
    "{\nlocal.get 00 01 00 00\nhalt 00 00 00 00\n}\n",
    "{\nlocal.set ff ff ff ff\nhalt 00 00 00 00\n}\n",
    "{\nglobal.get 00 01 00 00\nhalt 00 00 00 00\n}\n",
    "{\nhalt 06 00 00 00\n}\n",
    "{\nhalt 00 00 00 01\n}\n",
    "{\nbr 00 00 00 00\n}\n",
    "{\nbr fe ff ff ff\n}\n",
    "{\ncall 05 00 00 00\nhalt 00 00 00 00\n}\n",
    "{\nhalt 00 00 00 00\nbr_if 00 00 00 00\n}\n",
    "{\ni32.const 00 00 00 00\n}\n",
    "{\nhalt 00 00 00 00\n}\nxy 00 commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00 00\n}\na b\n",
    "{\nhalt 00 00 00 00\n}\na commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00 00\n}\na 00\n",
    "{\nhalt 00 00 00 00\n}\na 00 commit(+0,sts=0,bt=1)\n",
    "{\nhalt 00 00 00 00\n}\n00 commit(+0,sts=0,bt=0) x\n",
    "{\nhalt 00 00 00 00\n}\n{ 00 commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00 00\n}\nff' 00 commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00 00\n}\n\u00e9 00 commit(+0,sts=0,bt=0)\n",
    "{\nhalt 00 00 00 00\n}\n}\n",
]


def _location(msg: str) -> list[str]:
    # "<program>:LINE: token K 'TOK': ..." or "<program>: at end of file: ..."
    return msg.split(": ")[:2]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_programs_rejected_at_the_same_token(text):
    with pytest.raises(ProgramError) as ref:
        parse_program(text)
    with pytest.raises(ValueError) as got:
        isowasm_rust.run(text, None, 10)
    msg = str(got.value)
    assert "\n" not in msg
    assert _location(msg) == _location(str(ref.value))
    with pytest.raises(ValueError):
        isowasm_rust.parse(text)


def test_input_limits():
    over = "{\nhalt 00 00 00 00\n}\n" + "a " * (LIM["input_bytes"] + 1) + "00 commit(+0,sts=0,bt=0)\n"
    with pytest.raises(ValueError, match="over the limit"):
        isowasm_rust.run(over, None, 10)
    ok = "{\nhalt 00 00 00 00\n}\n" + "a " * LIM["input_bytes"] + "00 commit(+0,sts=0,bt=0)\n"
    assert isowasm_rust.run(ok, None, 10)["tokens"] == LIM["input_bytes"] + 3
    with pytest.raises(ValueError, match="00"):
        isowasm_rust.run("{ halt 00 00 00 00 }", b"a\x00b", 10)


def test_parse_matches_reference():
    prog = asm([("input_base", 0x10), const(-2), ("br_if", 1), ("return", 0xFFFFFFF0), ("halt", 0)], b"q{")
    names, imms, data = isowasm_rust.parse(format_program(prog))
    assert (names, imms, data) == (prog.names, prog.imms, prog.input)
    # case-insensitive hex and arbitrary whitespace on input
    names, imms, _ = isowasm_rust.parse("{\ti32.const  Ab cD 00 80\r\nhalt 00 00 00 00 }")
    assert imms == [0x8000CDAB, 0]


def test_bad_arguments():
    prog = format_program(_countdown(1))
    with pytest.raises(ValueError):
        isowasm_rust.run(prog, None, 10, "full")
    with pytest.raises(ValueError):
        isowasm_rust.run(prog, None, -1)
    with pytest.raises(ValueError):
        isowasm_rust.run(prog, None, 10, "digest", 0)


# ---- random programs --------------------------------------------------------

_OPS = table.op_names()


def random_program(rng: random.Random) -> Program:
    n = rng.randint(2, 40)
    values = EDGE + [rng.getrandbits(32) for _ in range(4)]
    names, imms = [], []
    if rng.random() < 0.5:
        names.append("input_base")
        imms.append(rng.choice([0, 3, 0x100, MEM - 64, MEM - 2]))
    depth = 0
    while len(names) < n - 1:
        op = rng.choice(_OPS)
        pc = len(names)
        if op in ("br", "br_if", "call"):
            imm = rng.randint(0, n - 1) - (pc + 1)
        elif op.startswith(("local.", "global.")):
            imm = rng.choice([0, 1, 2, 255])
        elif op == "halt":
            imm = 0 if rng.random() < 0.7 else rng.randint(1, 4)
        elif op == "i32.const":
            imm = rng.choice(values)
        elif op.startswith("i32.load") or op.startswith("i32.store"):
            imm = rng.choice([0, 1, 2, 7, MEM - 8, 0xFFFFFFFF])
        elif op == "return":
            imm = rng.randint(-n, n)
        else:
            imm = 0
        # keep the stack mostly fed so runs go beyond the first few steps
        if depth < 3 and op not in ("i32.const", "local.get", "global.get") and rng.random() < 0.8:
            names.append("i32.const")
            imms.append(rng.choice(values) if rng.random() < 0.5 else rng.randint(0, 300))
            depth += 1
            continue
        depth += 1 if op in ("i32.const", "local.get", "global.get") else -1
        names.append(op)
        imms.append(imm & M32)
    names.append(rng.choice(["halt", "br", "return"]))
    imms.append(rng.randint(0, n - 1) - n if names[-1] == "br" else 0)
    imms[-1] &= M32
    return Program(names, imms, bytes(rng.randint(1, 255) for _ in range(rng.randint(0, 5))))


def test_random_programs():
    rng = random.Random(20261124)
    statuses = set()
    for _ in range(400):
        prog = random_program(rng)
        parse_program(format_program(prog))  # the generator makes valid programs
        r = agree(prog, max_steps=rng.choice([50, 300, 3000]), interval=rng.choice([1, 7, 64]),
                  modes=("text", "none"))
        statuses.add(r["trap"] or r["status"])
    assert {"halted", "budget-exhausted", "stack_underflow"} <= statuses


# ---- batch and backend ----------------------------------------------------

def test_run_batch_matches_single_runs():
    rng = random.Random(7)
    progs = [random_program(rng) for _ in range(50)] + [_countdown(30)]
    items = [(format_program(p), None if i % 3 else b"zz", 500) for i, p in enumerate(progs)]
    for mode in ("none", "digest"):
        batch = isowasm_rust.run_batch(items, mode)
        single = [isowasm_rust.run(t, d, m, mode) for t, d, m in items]
        assert batch == single
    with pytest.raises(ValueError, match="batch item 1"):
        isowasm_rust.run_batch([items[0], ("{ }", None, 10)])


def test_backend():
    b = RustBackend()
    assert (b.name, b.traces) == ("rust", True)
    prog = _countdown(100)
    case = Case("countdown", prog)
    seen = []
    r = b.run(case, max_steps=10_000, trace="digest", progress=lambda s, t: seen.append((s, t)))
    ref = run_reference(prog, max_steps=10_000, trace="digest")
    assert r.backend == "rust"
    assert (r.status, r.steps, r.tokens, r.digest, r.checkpoints) == \
           (ref.status, ref.steps, ref.tokens, ref.digest, ref.checkpoints)
    assert seen == [(r.steps, r.tokens)]
    assert b.run(case, max_steps=10, trace="text").trace == run_reference(prog, max_steps=10, trace="text").trace
    rs = b.run_batch([case, Case("t", asm([("drop",), ("halt", 0)]))], max_steps=1000, trace="none")
    assert [x.status_line() for x in rs] == ["halted", "trapped (stack_underflow at pc 0)"]


def test_memory_is_fresh_for_every_run():
    # The port reuses its memory buffer between runs; a run must never see
    # what an earlier one wrote (the input section, stores, page edges).
    addrs = [0, 4095, 4096, 123_457, MEM - 4]
    writer = asm([("input_base", 0)] + [x for a in addrs for x in (const(a), const(0xFFFFFFFF), ("i32.store", 0))]
                 + [("halt", 0)], b"dirty")
    reader = asm([x for a in addrs for x in (const(a), ("i32.load", 0), ("output",))] + [("halt", 0)])
    w, r = format_program(writer), format_program(reader)
    for out in (isowasm_rust.run(w, None, 100), isowasm_rust.run(r, None, 100),
                isowasm_rust.run_batch([(w, None, 100), (r, None, 100)])[1]):
        assert out["status"] == "halted"
    assert isowasm_rust.run(r, None, 100)["output"] == bytes(len(addrs))
    assert isowasm_rust.run_batch([(w, None, 100), (r, None, 100)])[1]["output"] == bytes(len(addrs))
