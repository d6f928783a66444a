"""The OCaml port (ports/ocaml/, through its batch process) against the
reference executor: byte-identical traces, digests, checkpoints, statuses,
traps, budgets and the same rejections of malformed programs, on hand-written
programs covering all 35 ops plus input_base, and on random ones."""

from __future__ import annotations

import random
import re
import subprocess

import pytest

from isowasm.backends.base import BackendUnavailable, Case
from isowasm.spec import table
from isowasm.spec.errors import ProgramError
from isowasm.spec.program import Program, format_program, parse_program
from isowasm.spec.reference import run_reference

try:
    from isowasm.backends.ocaml import OcamlBackend, ocaml_binary
    _backend = OcamlBackend()
    _SKIP = None
except BackendUnavailable as e:
    _backend, _SKIP = None, str(e)

pytestmark = pytest.mark.skipif(_SKIP is not None, reason=f"ocaml port: {_SKIP}")

M32 = 0xFFFFFFFF


@pytest.fixture(scope="module")
def ocaml():
    yield _backend
    _backend.close()


def asm(items, data: bytes = b"") -> Program:
    """Assemble [(op, imm), (op,), "label:", ...]; a branch/call immediate may
    be "@label" (resolved to the offset from the next instruction)."""
    labels, ops = {}, []
    for it in items:
        if isinstance(it, str):
            labels[it.rstrip(":")] = len(ops)
        else:
            ops.append(it)
    names, imms = [], []
    for pc, (name, *rest) in enumerate(ops):
        imm = rest[0] if rest else 0
        if isinstance(imm, str):
            imm = labels[imm.lstrip("@")] - (pc + 1)
        names.append(name)
        imms.append(imm & M32)
    return Program(names, imms, data)


def same(ocaml, prog: Program, max_steps: int = 100_000, modes=("text", "digest", "none"), interval=None):
    """Run both implementations in every mode and require identical results."""
    if interval is not None:
        ocaml.checkpoint_interval = interval
    first = None
    try:
        for mode in modes:
            kw = {} if interval is None else {"checkpoint_interval": interval}
            ref = run_reference(prog, max_steps=max_steps, trace=mode, **kw)
            got = ocaml.run(Case("t", prog), max_steps=max_steps, trace=mode)
            for f in ("status", "trap", "trap_pc", "steps", "tokens", "output", "digest",
                      "checkpoints", "trace"):
                assert getattr(got, f) == getattr(ref, f), (mode, f, getattr(got, f), getattr(ref, f))
            assert got.backend == "ocaml"
            first = first or ref
    finally:
        ocaml.checkpoint_interval = 16384
    return first


# ---------------------------------------------------------------- programs

EDGE = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x00FF00FF,
        0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x12345678]
BINOPS = ["i32.add", "i32.sub", "i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u", "i32.gt_s",
          "i32.gt_u", "i32.le_s", "i32.le_u", "i32.ge_s", "i32.ge_u"]


def test_binops_and_flags(ocaml):
    items = []
    for op in BINOPS:
        for a in EDGE:
            for b in EDGE[::3] + [a]:
                items += [("i32.const", a), ("i32.const", b), (op,), ("drop",)]
    for a in EDGE:
        items += [("i32.const", a), ("i32.eqz",), ("output",)]
    items.append(("halt",))
    r = same(ocaml, asm(items))
    assert r.status == "halted" and "'" in r.trace


def test_locals_globals_select_drop(ocaml):
    items = [
        ("i32.const", 7), ("local.set", 0), ("i32.const", 0xFFFFFFFF), ("local.tee", 255),
        ("global.set", 3), ("global.get", 3), ("local.get", 0), ("i32.add",), ("output",),
        ("global.get", 255), ("local.get", 254), ("i32.const", 1), ("select",), ("output",),
        ("i32.const", 5), ("i32.const", 6), ("i32.const", 0), ("select",), ("output",),
        ("i32.const", 5), ("i32.const", 6), ("i32.const", 0x80000000), ("select",), ("local.set", 9),
        ("local.get", 9), ("drop",), ("halt",),
    ]
    same(ocaml, asm(items))


def test_memory_all_widths(ocaml):
    items = [("input_base", 100)]
    for i in range(12):  # echo the input, bytes signed and unsigned
        items += [("i32.const", 100 + i), ("i32.load8_u", 0), ("output",),
                  ("i32.const", 96 + i), ("i32.load8_s", 4), ("drop",)]
    items += [
        ("i32.const", 200), ("i32.const", 0x80FF7F01), ("i32.store", 0),
        ("i32.const", 201), ("i32.load", 0), ("drop",),          # unaligned
        ("i32.const", 199), ("i32.load16_s", 1), ("drop",),
        ("i32.const", 200), ("i32.load16_s", 2), ("drop",),
        ("i32.const", 200), ("i32.load16_u", 2), ("drop",),
        ("i32.const", 200), ("i32.load8_s", 3), ("drop",),
        ("i32.const", 300), ("i32.const", 0xABCDEF12), ("i32.store16", 1),
        ("i32.const", 300), ("i32.const", 0x3456789A), ("i32.store8", 0),
        ("i32.const", 300), ("i32.load", 0), ("drop",),
        ("i32.const", 10485760 - 4), ("i32.const", 0x01020304), ("i32.store", 0),
        ("i32.const", 10485756), ("i32.load", 0), ("drop",),
        ("halt",),
    ]
    data = bytes([0x41, 0x7B, 0x7D, 0x20, 0xFF, 0x80, 0x7E, 0x21, 0x01, 0x30, 0x0A, 0x7F])
    same(ocaml, asm(items, data))


def test_fresh_memory_between_runs(ocaml):
    # The batch process reuses its memory: a second run must see zeros again.
    w = asm([("i32.const", 5000), ("i32.const", 0xDEADBEEF), ("i32.store", 0),
             ("i32.const", 10485759), ("i32.const", 0x55), ("i32.store8", 0), ("halt",)])
    r = asm([("i32.const", 5000), ("i32.load", 0), ("output",),
             ("i32.const", 10485759), ("i32.load8_u", 0), ("output",), ("halt",)])
    same(ocaml, w)
    res = same(ocaml, r)
    assert res.output == b"\0\0"


def test_control_calls_returns(ocaml):
    items = [
        ("input_base", 0),
        ("i32.const", 3), ("call", "@f"), ("output",),
        ("i32.const", 0), ("br_if", "@never"),
        ("i32.const", 9), ("br_if", "@skip"),
        "never:", ("halt", 1),
        "skip:", ("br", "@end"),
        "f:", ("local.set", 0), ("local.get", 0), ("i32.eqz",), ("br_if", "@base"),
        ("local.get", 0), ("i32.const", 1), ("i32.sub",), ("call", "@f"),
        ("local.get", 0), ("i32.add",), ("return", "@f"),
        "base:", ("i32.const", 0x40), ("return", "@f"),
        "end:", ("i32.const", 0x21), ("call", "@g"), ("halt",),
        "g:", ("output",), ("return", 0x1234),  # breaks the return convention: flags of k - kc
    ]
    same(ocaml, asm(items, b"hi"))


def test_outputs(ocaml):
    items = []
    for b in [0, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0xFF, 0x141, 0x7B, 0x7D]:
        items += [("i32.const", b), ("output",)]
    items.append(("halt",))
    res = same(ocaml, asm(items))
    assert res.output == bytes([0, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0xFF, 0x41, 0x7B, 0x7D])


@pytest.mark.parametrize("items,trap", [
    ([("halt", 1)], "unreachable"),
    ([("i32.const", 1), ("halt", 2)], "div_zero"),
    ([("halt", 3)], "int_overflow"),
    ([("halt", 4)], "oob"),
    ([("halt", 5)], "memory_limit"),
    ([("i32.const", 10485757), ("i32.load", 0), ("halt",)], "oob"),
    ([("i32.const", 10485759), ("i32.load16_u", 0), ("halt",)], "oob"),
    ([("i32.const", 0), ("i32.load8_s", 10485760), ("halt",)], "oob"),
    ([("i32.const", 10485757), ("i32.const", 1), ("i32.store", 0), ("halt",)], "oob"),
    ([("i32.const", 0xFFFFFFFF), ("i32.const", 1), ("i32.store8", 0), ("halt",)], "oob"),
    ([("i32.const", 0xFFFFFFFF), ("i32.const", 1), ("i32.store8", 1), ("halt",)], "oob"),  # 0xffffffff + 1 = 2^32: no wrap
    ([("i32.const", 10485759), ("i32.const", 1), ("i32.store16", 0), ("halt",)], "oob"),
    ([("input_base", 10485759), ("halt",)], "oob"),
    (["f:", ("call", "@f"), ("halt",)], "call_depth"),
    (["l:", ("i32.const", 1), ("br", "@l")], "stack_overflow"),
    (["l:", ("local.get", 0), ("br", "@l")], "stack_overflow"),
    (["l:", ("global.get", 0), ("br", "@l")], "stack_overflow"),
    ([("drop",), ("halt",)], "stack_underflow"),
    ([("i32.const", 1), ("i32.add",), ("halt",)], "stack_underflow"),
    ([("i32.const", 1), ("i32.lt_s",), ("halt",)], "stack_underflow"),
    ([("i32.eqz",), ("halt",)], "stack_underflow"),
    ([("local.tee", 0), ("halt",)], "stack_underflow"),
    ([("local.set", 0), ("halt",)], "stack_underflow"),
    ([("global.set", 0), ("halt",)], "stack_underflow"),
    ([("i32.const", 1), ("i32.const", 1), ("select",), ("halt",)], "stack_underflow"),
    ([("i32.load", 0), ("halt",)], "stack_underflow"),
    ([("i32.const", 1), ("i32.store8", 0), ("halt",)], "stack_underflow"),
    ([("br_if", 0), ("halt",)], "stack_underflow"),
    ([("output",), ("halt",)], "stack_underflow"),
    ([("i32.const", 1), ("return", 0)], "return_outside"),
])
def test_traps(ocaml, items, trap):
    res = same(ocaml, asm(items, b"x{"), max_steps=200_000)
    assert res.trap == trap and res.status == ("trapped" if trap else "halted")


def _loop(n: int) -> Program:
    return asm([("i32.const", n), ("local.set", 0),
                "l:", ("local.get", 0), ("i32.const", 1), ("i32.sub",), ("local.tee", 0),
                ("br_if", "@l"), ("halt",)])


@pytest.mark.parametrize("budget", [0, 1, 2, 7, 16383, 16384, 16385, 32768, 40000, 50002, 50003, 60000])
def test_budget_and_checkpoints(ocaml, budget):
    res = same(ocaml, _loop(10_000), max_steps=budget, modes=("digest", "none"))
    assert res.steps == min(budget, 50_003)
    assert res.status == ("halted" if budget >= 50_003 else "budget-exhausted")


def test_halt_on_checkpoint_boundary(ocaml):
    # 2 + 5n + 1 steps; with interval 8 and n = 1 the halt is step 8.
    for n in (1, 5, 9):
        for interval in (1, 3, 8, 16):
            same(ocaml, _loop(n), modes=("digest",), interval=interval)


def test_input_sections(ocaml):
    prog = [("input_base", 64), ("i32.const", 64), ("i32.load", 0), ("output",), ("halt",)]
    for data in [b"", b"a", b"{}", b" \t\n", bytes(range(1, 256)), b"~" * 1000]:
        same(ocaml, asm(prog, data))
        same(ocaml, asm(prog[1:], data))  # no input_base: the section is still written


# ------------------------------------------------------------ random programs

def _random_program(rng: random.Random) -> Program:
    n = rng.randint(2, 40)
    pushers = [("i32.const", None), ("local.get", None), ("global.get", None)]
    others = [(o, None) for o in BINOPS + ["i32.eqz", "drop", "select", "local.set", "local.tee",
                                           "global.set", "output", "i32.load", "i32.load8_s",
                                           "i32.load8_u", "i32.load16_s", "i32.load16_u",
                                           "i32.store", "i32.store8", "i32.store16", "br_if",
                                           "br", "call", "return"]]
    names, imms = ["input_base"], [rng.choice([0, 16, 10485750])]
    for pc in range(1, n):
        name, _ = rng.choice(pushers * 4 + others)
        if name in ("br", "br_if", "call"):
            imm = rng.randrange(n + 1) - (pc + 1)
        elif name.startswith(("local.", "global.")):
            imm = rng.randrange(4)
        elif name == "i32.const" or "load" in name or "store" in name:
            imm = rng.choice(EDGE + [rng.getrandbits(32), rng.randrange(64)])
        else:
            imm = rng.choice([0, 0, rng.getrandbits(32)])
        names.append(name)
        imms.append(imm & M32)
    names.append(rng.choice(["halt", "halt", "br", "return"]))
    imms.append(0 if names[-1] != "br" else (-rng.randrange(1, n + 1)) & M32)
    data = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(6)))
    return Program(names, imms, data)


def test_random_programs(ocaml):
    rng = random.Random(20240611)
    for _ in range(300):
        prog = _random_program(rng)
        prog = parse_program(format_program(prog))  # only valid programs
        same(ocaml, prog, max_steps=rng.choice([50, 500]), modes=("text",))


_POPS = {"i32.const": (0, 1), "local.get": (0, 1), "global.get": (0, 1), "local.set": (1, 0),
         "local.tee": (1, 1), "global.set": (1, 0), "drop": (1, 0), "select": (3, 1),
         "i32.eqz": (1, 1), "output": (1, 0), "i32.load": (1, 1), "i32.load8_s": (1, 1),
         "i32.load8_u": (1, 1), "i32.load16_s": (1, 1), "i32.load16_u": (1, 1),
         "i32.store": (2, 0), "i32.store8": (2, 0), "i32.store16": (2, 0), "br_if": (1, 0),
         "br": (0, 0), "call": (0, 0), "return": (0, 0), **{o: (2, 1) for o in BINOPS}}


def _balanced_program(rng: random.Random) -> Program:
    """Ops chosen so the straight-line stack never underflows: programs that
    loop, call and touch memory for a while before they stop."""
    n = rng.randint(5, 80)
    names, imms, depth = ["input_base"], [rng.choice([0, 100])], 0
    for pc in range(1, n):
        cands = [o for o, (p, _) in _POPS.items() if p <= depth]
        weights = [6 if _POPS[o] == (0, 1) else 0.3 if o in ("br", "call", "return") else 1 for o in cands]
        name = rng.choices(cands, weights)[0]
        depth += _POPS[name][1] - _POPS[name][0]
        if name in ("br", "br_if", "call"):
            imm = rng.randrange(n + 1) - (pc + 1)
        elif name.startswith(("local.", "global.")):
            imm = rng.randrange(3)
        elif name == "i32.const":
            imm = rng.choice(EDGE + [rng.randrange(8), rng.randrange(200), rng.getrandbits(32)])
        elif "load" in name or "store" in name:
            imm = rng.choice([0, 1, 2, 100, 10485755, rng.getrandbits(32)])
        else:
            imm = 0 if name != "return" else rng.randrange(-n, n)
        names.append(name)
        imms.append(imm & M32)
    names.append(rng.choice(["halt", "br", "return"]))
    imms.append(0 if names[-1] != "br" else (-rng.randrange(1, n + 1)) & M32)
    return Program(names, imms, bytes(rng.randrange(1, 256) for _ in range(rng.randrange(8))))


def test_random_balanced_programs(ocaml):
    rng = random.Random(7)
    statuses = set()
    for _ in range(200):
        try:
            prog = parse_program(format_program(_balanced_program(rng)))
        except ProgramError:
            continue
        res = same(ocaml, prog, max_steps=rng.choice([100, 3000]), modes=("text",),
                   interval=rng.choice([1, 5, 64, 16384]))
        statuses.add(res.status)
    assert statuses == {"halted", "trapped", "budget-exhausted"}


# ------------------------------------------------------------ malformed programs

GOOD = "{\ni32.const 01 00 00 00\noutput 00 00 00 00\nhalt 00 00 00 00\n}\nA 00 commit(+0,sts=0,bt=0)\n"
MALFORMED = [
    "",
    "   \n",
    "halt 00 00 00 00 }",
    "{ halt 00 00 00 00",
    "{ }",
    "{ halt 00 00 00 }",
    "{ hlt 00 00 00 00 }",
    "{ halt 00 00 00 0g }",
    "{ halt 00 00 00 000 }",
    "{ i32.const 01 00 00 00 i32.const 01 }",
    "{ i32.const 00 00 00 00 }",
    "{ i32.const 00 00 00 00 input_base 00 00 00 00 halt 00 00 00 00 }",
    "{ local.get 00 01 00 00 halt 00 00 00 00 }",
    "{ local.tee 00 01 00 00 halt 00 00 00 00 }",
    "{ global.get 00 01 00 00 halt 00 00 00 00 }",
    "{ halt 06 00 00 00 }",
    "{ halt 00 00 00 01 }",
    "{ br 00 00 00 00 }",
    "{ br fd ff ff ff halt 00 00 00 00 }",
    "{ call 01 00 00 00 halt 00 00 00 00 }",
    "{ br_if ff ff ff 7f halt 00 00 00 00 }",
    "{ halt 00 00 00 00 } A B",
    "{ halt 00 00 00 00 } A commit(+0,sts=0,bt=0)",
    "{ halt 00 00 00 00 } A 00",
    "{ halt 00 00 00 00 } A 00 halt",
    "{ halt 00 00 00 00 } A 00 commit(+0,sts=0,bt=0) 00",
    "{ halt 00 00 00 00 } { 00 commit(+0,sts=0,bt=0)",
    "{ halt 00 00 00 00 } abc 00 commit(+0,sts=0,bt=0)",
    "{ halt 00 00 00 00 }\n\n 0x 00 commit(+0,sts=0,bt=0)",
    "{\nhalt 00 00 00 00\n}\n" + "41 " * (1 << 20) + "42 00 commit(+0,sts=0,bt=0)\n",
    "{ HALT 00 00 00 00 }",
    "{ { halt 00 00 00 00 }",
    "x{ halt 00 00 00 00 }",
]
_WHERE = re.compile(r":(\d+): token (\d+) |: at end of file: ")


def _where(msg: str):
    m = _WHERE.search(msg)
    return m.group(0) if m else msg.removeprefix("error ").rstrip("\n")


@pytest.mark.parametrize("text", MALFORMED, ids=lambda t: repr(t[:40]))
def test_malformed_programs(ocaml, text):
    with pytest.raises(ProgramError) as ref:
        parse_program(text)
    proc = ocaml._process()
    body = text.encode()
    proc.stdin.write(f"run 100 none 16384 - {len(body)}\n".encode() + body)
    proc.stdin.flush()
    line = proc.stdout.readline().decode()
    assert line.startswith("error ") and line.count("\n") == 1, line
    assert _where(line) == _where(str(ref.value)), (line, str(ref.value))
    # ... and the process is still alive and well
    same(ocaml, parse_program(GOOD))


def test_unicode_whitespace_and_upper_hex(ocaml):
    text = "{\u00a0halt\u2003 00 00\x1c00 00\r\n}\u3000 4A 00 commit(+0,sts=0,bt=0)"
    prog = parse_program(text)
    proc = ocaml._process()
    body = text.encode()
    proc.stdin.write(f"run 100 text 16384 - {len(body)}\n".encode() + body)
    proc.stdin.flush()
    head = proc.stdout.readline().decode().split()
    assert head[0] == "ok", head
    n = int(head[9])
    trace = proc.stdout.read(n).decode()
    assert trace == run_reference(prog, trace="text").trace


def test_backend_raises_program_error(ocaml):
    bad = Program(["i32.const"], [0], b"")  # falls off the end
    with pytest.raises(ProgramError, match="fall off"):
        ocaml.run(Case("bad", bad), max_steps=10)
    same(ocaml, parse_program(GOOD))


# ------------------------------------------------------------ process and CLI

def test_restart_after_death(ocaml):
    same(ocaml, parse_program(GOOD))
    ocaml._process().kill()
    ocaml._process().wait()
    same(ocaml, parse_program(GOOD))
    ocaml.close()
    same(ocaml, parse_program(GOOD))


def test_protocol_errors_keep_process(ocaml):
    proc = ocaml._process()
    body = GOOD.encode()
    for req in [b"frobnicate\n", b"run 1 2 3\n", f"run 10 sideways 16384 - {len(body)}\n".encode() + body,
                f"run 10 text 16384 4100 {len(body)}\n".encode() + body,
                f"run 10 text 16384 4 {len(body)}\n".encode() + body,
                f"run 10 text 0 - {len(body)}\n".encode() + body]:
        proc.stdin.write(req)
        proc.stdin.flush()
        assert proc.stdout.readline().startswith(b"error "), req
    proc.stdin.write(b"ping\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith(b"pong")
    # an input override (hex) replaces the program's own input
    proc.stdin.write(f"run 10 text 16384 4243 {len(body)}\n".encode() + body)
    proc.stdin.flush()
    head = proc.stdout.readline().split()
    trace = proc.stdout.read(int(head[9])).decode()
    assert head[0] == b"ok" and trace.startswith("B C 00 commit")
    same(ocaml, parse_program(GOOD))


def test_table_matches_yaml():
    out = subprocess.run([str(ocaml_binary()), "table"], capture_output=True, text=True, check=True).stdout
    ops = [l.split()[1] for l in out.splitlines() if l.startswith("op ")]
    assert ops == table.op_names() + ["input_base"]
    lim = {l.split()[1]: int(l.split()[2]) for l in out.splitlines() if l.startswith("limit ")}
    assert lim == table.limits()
    traps = [l.split()[1:] for l in out.splitlines() if l.startswith("trap ")]
    assert traps == [[t["name"], str(t["code"]) if t["code"] is not None else "-",
                      "true" if t["resource"] else "false"] for t in table.traps()]


def test_cli_run(tmp_path):
    prog = parse_program(GOOD)
    path = tmp_path / "p.txt"
    path.write_text(format_program(prog))
    out = subprocess.run([str(ocaml_binary()), "run", str(path), "--trace", "text", "--input-hex", "7a7b"],
                         capture_output=True, text=True, check=True).stdout
    head, _, trace = out.partition("trace\n")
    ref = run_reference(prog, b"z{", trace="text")
    assert trace == ref.trace
    assert f"digest {ref.digest}\n" in head and "status halted\n" in head
    bad = tmp_path / "bad.txt"
    bad.write_text("{ hlt 00 00 00 00 }")
    r = subprocess.run([str(ocaml_binary()), "run", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "token 1" in r.stderr
