"""Tests written for the survivors of mutation testing (ci/mutation.py):
each closes a blind spot the mutants showed, as a general property rather
than a patch for one mutant. Conftest-free (ci/mutation.py runs this file
with --noconftest among its quick stages)."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from conformance.asm import asm
from isowasm.spec.errors import ProgramError
from isowasm.spec.program import format_program, load_program, parse_program
from isowasm.spec.reference import Machine, _run_slice, run_reference
from isowasm.spec.trace import annotate_lines, count_tokens, split_steps, step_text, summarize

from isowasm.backends import required_backends
from isowasm.backends.base import BackendUnavailable

PROG_DIR = Path(__file__).resolve().parent.parent / "transformer" / "programs"
HAND_WRITTEN = sorted(PROG_DIR.glob("*.prog"))

# Programs whose trap pc is not their step count (a branch or a call before
# the trap), whose output is not empty, and that stop on every kind of end.
EXTRA = {
    "trap-after-call": asm([("i32.const", 7), ("call", "->f"), ("halt",), "f:", ("i32.const", 0),
                            ("i32.const", 1), ("br_if", "->t"), ("halt",), "t:", ("i32.load", 0xFFFFFFF0), ("halt",)]),
    "output-then-underflow": asm([("i32.const", 0x41), ("output",), ("i32.const", 0x0A), ("output",),
                                  ("i32.const", 1), ("br", "->x"), ("halt",), "x:", ("drop",), ("drop",), ("halt",)]),
    "every-byte": asm([("i32.const", 0), ("local.set", 0), "top:", ("local.get", 0), ("output",),
                       ("local.get", 0), ("i32.const", 1), ("i32.add",), ("local.tee", 0), ("i32.const", 256),
                       ("i32.ne",), ("br_if", "->top"), ("halt",)]),
    "loop-output": asm([("i32.const", 3), "top:", ("local.tee", 0), ("i32.const", 0x30), ("i32.add",),
                        ("output",), ("local.get", 0), ("i32.const", 1), ("i32.sub",), ("local.tee", 0),
                        ("br_if", "->top"), ("halt",)]),
}


def _programs():
    for p in HAND_WRITTEN:
        yield p.stem, load_program(p)
    for name, prog in EXTRA.items():
        yield name, parse_program(format_program(prog))   # checked as a program file is


def _params():
    """Every program at every budget, except where the trace alone cannot
    tell: input_base writes no tokens of its own (the input section opens
    every trace), so a program that starts with it has the same trace after
    0 steps as after 1, and when input_base traps the trap line could as
    well be the next instruction's (annotate_lines reads it as step 1, pc 1)."""
    for name, prog in _programs():
        starts_with_input_base = prog.names[0] == "input_base"
        r = run_reference(prog, max_steps=1) if starts_with_input_base else None
        input_base_traps = r is not None and r.status == "trapped" and r.trap_pc == 0
        for budget in (None, 0, 1, 2, 5, 9):
            if starts_with_input_base and (budget == 0 or input_base_traps):
                continue
            yield pytest.param(name, prog, budget, id=f"{name}-{budget}")


def test_program_errors_name_the_line_counting_leading_blank_lines():
    """An error's line number counts every line of the file, the first
    ones included when they are blank: the line the user's editor shows."""
    for lead in ("", "\n", "\n\n\n"):
        text = lead + "{\ni32.const 00 00 00 00\nno_such_op\n}\n00 commit(+0,sts=0,bt=0)\n"
        line = lead.count("\n") + 3
        with pytest.raises(ProgramError, match=rf"p:{line}: "):
            parse_program(text, source="p")


@pytest.mark.parametrize("name,prog,budget", list(_params()))
def test_summary_of_a_trace_is_the_run_that_wrote_it(name, prog, budget):
    """`summarize` (what the harness reads from a command backend's trace:
    isowasm/backends/external.py) gives back exactly the reference run's
    status, trap, trap pc, output, steps and tokens — for halts, every trap,
    and runs cut off by the budget at every small step count."""
    r = run_reference(prog, max_steps=budget if budget is not None else 100_000, trace="text")
    s = summarize(prog, r.trace)
    assert s == {"status": r.status, "trap": r.trap, "trap_pc": r.trap_pc, "output": r.output,
                 "steps": r.steps, "tokens": r.tokens}, (name, budget)
    # the same without the trailing newline, which a command may leave out
    # (the token count is the text's own: one separator fewer)
    assert summarize(prog, r.trace.rstrip("\n")) == {**s, "tokens": s["tokens"] - (r.trace.endswith("\n"))}
    ann = annotate_lines(prog, r.trace)
    assert len(ann) == len(r.trace.rstrip("\n").split("\n"))
    assert all(st is not None and 0 <= st <= max(r.steps - 1, 0) for st, _ in ann[1:])


def test_every_byte_is_output_and_read_back():
    r = run_reference(EXTRA["every-byte"], trace="text")
    assert r.status == "halted" and r.output == bytes(range(256))
    assert summarize(EXTRA["every-byte"], r.trace)["output"] == bytes(range(256))


def test_split_steps_regroups_the_trace_into_its_lines():
    for name, prog in _programs():
        r = run_reference(prog, max_steps=1000, trace="text")
        groups = split_steps(r.trace)
        assert "".join(" ".join(g) + "\n" for g in groups) == r.trace, name
        assert sum(len(g) for g in groups) == count_tokens(r.trace) == r.tokens, name


def test_load_program_errors_are_program_errors(tmp_path):
    """A program file that is not UTF-8, or cannot be read, is one
    ProgramError naming the file — never a crash."""
    good = tmp_path / "p.txt"
    good.write_text(format_program(EXTRA["loop-output"]))
    assert load_program(good).names == EXTRA["loop-output"].names
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"{\ni32.const 00 00 00 00\n\xff\xfe\n}\n00 commit(+0,sts=0,bt=0)\n")
    with pytest.raises(ProgramError, match=r"bad\.txt: not a text program file \(byte 24 is not UTF-8\)"):
        load_program(bad)
    with pytest.raises(ProgramError, match=r"missing\.txt: cannot read: No such file"):
        load_program(tmp_path / "missing.txt")
    with pytest.raises(ProgramError, match=r"cannot read"):
        load_program(tmp_path)            # a directory


@pytest.mark.parametrize("name,prog,budget", list(_params()))
def test_annotate_lines_gives_each_line_its_step_and_pc(name, prog, budget):
    """annotate_lines (the pc and step the runner's divergence reports name)
    recovers, from the program and the trace alone, exactly the (step, pc)
    of the reference step that wrote each line; the input line is step 0,
    pc 0 when the program starts with input_base, else neither."""
    r = run_reference(prog, max_steps=budget if budget is not None else 100_000, trace="text")
    m = Machine(prog)
    events: list = []
    _run_slice(m, budget if budget is not None else 100_000, events.append)
    want = [(0, 0) if prog.names[0] == "input_base" else (None, None)]
    for step, (pc, v, f) in enumerate(events):
        want += [(step, pc)] * step_text(prog.names[pc], prog.imms[pc], v, f).count("\n")
    assert annotate_lines(prog, r.trace) == want


@pytest.mark.parametrize("bad", range(4))
def test_a_bad_immediate_byte_is_named_where_it_is(bad):
    """In a section that is not a multiple of 5 tokens, the error names the
    first bad immediate byte itself, whichever of the four it is."""
    imm = ["00", "00", "00"]
    imm.insert(bad, "zz")
    text = "{\ni32.const " + " ".join(imm[:3]) + "\nhalt 00 00 00 00\n}\n00 commit(+0,sts=0,bt=0)\n"
    with pytest.raises(ProgramError) as e:
        parse_program(text)
    if bad < 3:
        assert f"token {bad + 2} 'zz': expected an immediate byte" in str(e.value), str(e.value)
    else:   # the fourth byte is missing: `halt` stands where it should be
        assert "token 5 'halt': expected an immediate byte" in str(e.value), str(e.value)


def test_annotate_lines_of_any_prefix_is_a_prefix():
    """A command backend's trace may stop anywhere (a crash, a budget cut of
    its own): annotate_lines of the first k lines is exactly the first k
    entries of the whole trace's annotation — one per line, whatever the
    last line is (a lone `branch_taken` included) — and summarize never
    raises on it."""
    for name, prog in _programs():
        r = run_reference(prog, max_steps=400, trace="text")
        lines = r.trace.rstrip("\n").split("\n")
        full = annotate_lines(prog, r.trace)
        for k in range(1, len(lines) + 1):
            part = "\n".join(lines[:k]) + "\n"
            assert annotate_lines(prog, part) == full[:k], (name, k)
            summarize(prog, part)


# ---- the ports read program files as the reference does ----------------------

# Python's str.split() separators (what the reference's tokenizer splits on),
# their neighbours, and look-alikes that are not separators.
_SPACES = [c for c in range(0x3001) if chr(c).isspace()]
_NEAR = sorted({c + d for c in _SPACES for d in (-1, 1)} - set(_SPACES)
               | {0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x3001})


def _rust():
    try:
        import isowasm_rust
    except ImportError as e:
        if "rust" in required_backends():
            pytest.fail(f"required backend rust is unavailable: {e}")
        pytest.skip(f"rust port not built: {e}")
    return isowasm_rust


_OCAML: list = []


def _ocaml():
    """One OCaml backend (one batch process) for the whole module."""
    from isowasm.backends.ocaml import OcamlBackend
    if not _OCAML:
        try:
            _OCAML.append(OcamlBackend())
        except BackendUnavailable as e:
            if "ocaml" in required_backends():
                pytest.fail(f"required backend ocaml is unavailable: {e}")
            pytest.skip(str(e))
    return _OCAML[0]


def _ocaml_run(text: str, max_steps: int = 100):
    """The OCaml port's batch answer for a raw program text: ("ok", trace) or
    ("error", message)."""
    proc = _ocaml()._process()
    body = text.encode("utf-8")
    proc.stdin.write(f"run {max_steps} text 16384 - {len(body)}\n".encode() + body)
    proc.stdin.flush()
    head = proc.stdout.readline().decode()
    if head.startswith("error"):
        return "error", head
    f = head.split()
    assert f[0] == "ok", head
    for _ in range(int(f[8])):
        proc.stdout.readline()
    return "ok", proc.stdout.read(int(f[9])).decode()


@pytest.mark.parametrize("cp", _SPACES + _NEAR, ids=lambda c: f"U+{c:04X}")
def test_ports_split_program_files_on_exactly_pythons_whitespace(cp):
    """A program file whose tokens are separated by one code point: every
    port accepts it, with the reference's trace, exactly when the reference
    does (Python's str.split whitespace, MACHINE.md §2), and rejects it when
    the reference does — for each separator and each of its neighbours."""
    sep = chr(cp)
    text = sep.join(["{", "i32.const", "41", "00", "00", "00", "output", "00", "00", "00", "00",
                     "halt", "00", "00", "00", "00", "}", "00", "commit(+0,sts=0,bt=0)"]) + "\n"
    _assert_ports_read_it_as_the_reference_does(text)


_VALID = format_program(asm([("input_base", 0x100), ("i32.const", 0x41), ("output",), ("i32.const", 1),
                              ("br_if", "->end"), ("halt",), "end:", ("halt",)], b"hi"))
_CORRUPT = [None, "0", "000", "zz", "0g", "}", "{", "halt", "i32.cons", "commit(+0,sts=0,bt=1)", "7f'"]


def _corruptions():
    toks = _VALID.split()
    for i in range(len(toks) + 1):
        for r in _CORRUPT + ["dup"]:
            if r == "dup":
                new = toks[:i] + toks[i - 1:] if i else None
            elif i == len(toks):
                new = toks + [r] if r else None
            else:
                new = toks[:i] + ([r] if r else []) + toks[i + 1:]
            if new is not None:
                yield pytest.param("\n".join(new) + "\n", id=f"{i}-{r}")


@pytest.mark.parametrize("text", list(_corruptions()))
def test_ports_reject_each_one_token_corruption_where_the_reference_does(text):
    """Every program file one token away from a valid one (a token deleted,
    doubled or replaced by a near miss): each port accepts it exactly when
    the reference does, with its trace, or rejects it at the same line and
    token."""
    _assert_ports_read_it_as_the_reference_does(text)


def _assert_ports_read_it_as_the_reference_does(text: str) -> None:
    """Both ports accept program file `text` exactly when the reference
    does, with its trace, or reject it at the same line and token."""
    try:
        ref = run_reference(parse_program(text), max_steps=100, trace="text").trace
    except ProgramError as e:
        ref = _where(str(e))          # rejected: where (line, token index)
    kind, got = _ocaml_run(text)
    assert (got if kind == "ok" else _where(got)) == ref
    try:
        rust = _rust().run(text, None, 100, "text", 16384)["trace"]
    except ValueError as e:
        rust = _where(str(e))
    assert rust == ref


def _where(msg: str) -> str:
    m = re.search(r":\d+: token \d+ |at end of file", msg)
    assert m, msg
    return "error at" + m.group(0)


# ---- the Rust port's machine coverage (what guides the fuzzer) ----------------

def _class(v: int) -> int:
    return {0: 0, 1: 1, 0x7FFFFFFF: 2, 0x80000000: 2, 0xFFFFFFFF: 3}.get(v, 4)


def test_rust_coverage_layout_is_the_tables():
    from isowasm.spec import table
    classes, ops, traps, statuses = _rust().coverage_layout()
    assert classes == ["zero", "one", "sign", "max", "other"]
    assert ops == [(o["name"], o["pops"]) for o in table.ops()] + [("input_base", 0)]
    assert traps == table.trap_names()
    assert statuses == ["halted", "trapped", "budget_exhausted"]


@pytest.mark.parametrize("name,prog,budget", list(_params()))
def test_rust_coverage_counts_every_step_and_end(name, prog, budget):
    """run_batch(coverage=True) gives the same runs as without, and per run
    the documented cells: one count per step in (op, class of each operand
    it is about to pop), one for the trap, one for the final status —
    computed here from the reference's stack before every step."""
    rust = _rust()
    classes, ops, traps, statuses = rust.coverage_layout()
    nc, index = len(classes), {n: i for i, (n, _) in enumerate(ops)}
    pops = dict(ops)
    limit = budget if budget is not None else 100_000
    item = [(format_program(prog), None, limit)]
    plain = rust.run_batch(item, "digest", 16384)[0]
    got = rust.run_batch(item, "digest", 16384, coverage=True)[0]
    cells = got.pop("coverage")
    assert got == plain
    want: dict[int, int] = {}
    m = Machine(prog)
    while m.status is None and m.steps < limit:
        op = prog.names[m.pc]
        st = m.stack
        k = pops[op]
        if k == 0:
            a = b = 0
        elif k in (1, 3):   # select (3): its condition, the top
            a, b = (_class(st[-1]) if st else 0), 0
        else:
            a, b = (_class(st[-2]) if len(st) > 1 else 0), (_class(st[-1]) if st else 0)
        c = (index[op] * nc + a) * nc + b
        want[c] = want.get(c, 0) + 1
        _run_slice(m, m.steps + 1, None)
    base = len(ops) * nc * nc
    if m.trap is not None:
        want[base + traps.index(m.trap)] = 1
    status = {"halted": 0, "trapped": 1}.get(m.status, 2)
    want[base + len(traps) + status] = 1
    assert dict(cells) == want


# ---- no memory carried from one run to the next in one port process ----------


def _memory_programs():
    from isowasm.spec import table
    mem = table.limits()["memory_bytes"]
    step, first = 4096, 4094          # every 4 KiB page boundary, straddled (bytes 4094..4097)
    loop = lambda body: ([("i32.const", first), ("local.set", 0), "top:"] + body
                         + [("local.get", 0), ("i32.const", step), ("i32.add",), ("local.tee", 0),
                            ("i32.const", mem - 4), ("i32.le_u",), ("br_if", "->top")])
    dirty = asm(loop([("local.get", 0), ("i32.const", 0xFFFFFFFF), ("i32.store", 0)])
                + [("i32.const", mem - 4), ("i32.const", 0xFFFFFFFF), ("i32.store", 0), ("halt",)])
    dirty_input = asm([("input_base", mem - 2001), ("halt",)], b"x" * 2000)
    count = [("local.get", 0), ("i32.load", 0), ("i32.const", 0), ("i32.ne",), ("local.get", 1),
             ("i32.add",), ("local.set", 1)]
    check = asm(loop(count) + [("i32.const", mem - 4), ("local.set", 0)] + count
                + [("local.get", 1), ("i32.const", 0), ("i32.ne",), ("output",), ("halt",)])
    return [parse_program(format_program(p)) for p in (dirty, check, dirty_input, check)]


def _memory_cases():
    from isowasm.backends.base import Case
    return [Case(f"seq{i}", p) for i, p in enumerate(_memory_programs())]


def test_memory_is_zero_in_every_page_for_the_next_run():
    """A run that writes across every page boundary and the last page (by
    stores and by input_base), then one that reads them back, in one port
    instance: the reader sees zeros everywhere, as in a fresh process
    (checked per run, batched, and in the OCaml port's batch process)."""
    progs = _memory_programs()
    want = [run_reference(p, max_steps=1_000_000).output for p in progs]
    assert want[1] == want[3] == b"\x00"
    rust = _rust()
    assert [rust.run(format_program(p), None, 1_000_000, "none", 16384)["output"] for p in progs] == want
    batch = rust.run_batch([(format_program(p), None, 1_000_000) for p in progs], "none", 16384)
    assert [d["output"] for d in batch] == want
    assert [_ocaml().run(c, max_steps=1_000_000).output for c in _memory_cases()] == want


# A countdown loop of 5 steps an iteration: several checkpoint intervals long.
_LONG = asm([("i32.const", 12_000), ("local.set", 0), "top:", ("local.get", 0), ("i32.const", 1), ("i32.sub",),
             ("local.tee", 0), ("br_if", "->top"), ("halt",)])


def _cli_checkpoints(out: str) -> list[tuple[int, str]]:
    return [(int(f[1]), f[2]) for f in (ln.split() for ln in out.splitlines()) if f and f[0] == "checkpoint"]


def test_ocaml_cli_checkpoints_by_default_where_the_reference_does(tmp_path):
    """`isowasm-ocaml run` without --checkpoint-interval takes its checkpoints
    at the default interval of MACHINE.md §5: the same (steps, digest) pairs
    as the reference's default, over a run several intervals long."""
    import subprocess

    from isowasm.backends.ocaml import ocaml_binary
    binary = ocaml_binary()
    if binary is None:
        if "ocaml" in required_backends():
            pytest.fail("required backend ocaml is unavailable: no isowasm-ocaml binary")
        pytest.skip("isowasm-ocaml is not built")
    path = tmp_path / "long.txt"
    path.write_text(format_program(_LONG))
    ref = run_reference(_LONG, trace="digest")
    assert ref.status == "halted" and len(ref.checkpoints) >= 3
    out = subprocess.run([str(binary), "run", str(path), "--trace", "digest"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert _cli_checkpoints(out) == [tuple(c) for c in ref.checkpoints]
    assert f"digest {ref.digest}" in out.splitlines()


@pytest.mark.parametrize("data", [bytes(range(1, 256)), b"{|}~ \x7f", b"}" * 3 + b"{"])
def test_ports_write_every_input_byte_as_the_reference(data):
    """The input section that opens every trace, for every byte value a
    program's input can hold (the braces and their neighbours included), on
    each port: given as the run's input and carried in the program file."""
    from isowasm.backends.base import Case
    prog = parse_program(format_program(asm([("input_base", 0x40), ("halt",)], data)))
    ref = run_reference(prog, trace="text").trace
    assert _ocaml().run(Case("input", prog), max_steps=10, trace="text").trace == ref
    assert _rust().run(format_program(prog), None, 10, "text", 16384)["trace"] == ref
    assert _rust().run(format_program(parse_program(format_program(asm([("input_base", 0x40), ("halt",)])))),
                       data, 10, "text", 16384)["trace"] == ref


# ---- the toolchain: ops whose second operand is a constant --------------------

# The lowering specialises ops on a constant operand (shift and rotate
# counts, multipliers, divisors, masks); wasm takes shift counts modulo the
# width. Each op on each constant, the other operand computed at run time.
_CONSTS32 = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE]
_CONSTS64 = _CONSTS32 + [0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF]
_BIN = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl", "shr_s", "shr_u",
        "rotl", "rotr", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
_XS32 = [0, 1, 5, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678, 0xFFFFFFF9]
_XS64 = _XS32 + [0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x123456789ABCDEF0, 0x7FFFFFFFFFFFFFFF]

_PRINT = """
  (import "env" "output_byte" (func $out (param i32)))
  (memory (export "memory") 160)
  (global $x32 (mut i32) (i32.const 0))
  (global $x64 (mut i64) (i64.const 0))
  (func $hex (param $v i32) (local $i i32) (local $d i32)
    (local.set $i (i32.const 28))
    (loop $digits
      (local.set $d (i32.and (i32.shr_u (local.get $v) (local.get $i)) (i32.const 15)))
      (call $out (i32.add (local.get $d)
        (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $d) (i32.const 10)))))
      (local.set $i (i32.sub (local.get $i) (i32.const 4)))
      (br_if $digits (i32.ge_s (local.get $i) (i32.const 0)))))
  (func $hex64 (param $v i64)
    (call $hex (i32.wrap_i64 (i64.shr_u (local.get $v) (i64.const 32))))
    (call $hex (i32.wrap_i64 (local.get $v))))
"""


def _const_op_module(width: int, op: str) -> str:
    t, xs, ks = (("i32", _XS32, _CONSTS32) if width == 32 else ("i64", _XS64, _CONSTS64))
    cmp = op in ("eq", "ne") or op[:2] in ("lt", "gt", "le", "ge")
    body = []
    for x in xs:
        body.append(f"(global.set $x{width} ({t}.const {x}))")
        for k in ks:
            if op in ("div_s", "div_u", "rem_s", "rem_u") and k % (1 << width) == 0:
                continue                       # a trap ends the run; traps are the compliance suite's
            if op in ("div_s",) and k % (1 << width) == (1 << width) - 1 and x == 1 << (width - 1):
                continue
            e = f"({t}.{op} (global.get $x{width}) ({t}.const {k}))"
            printer = "$hex" if width == 32 or cmp else "$hex64"
            body.append(f"(call {printer} {e})")
    return "(module" + _PRINT + '(func (export "compute")\n    ' + "\n    ".join(body) + "))\n"


@pytest.mark.parametrize("width", [32, 64])
@pytest.mark.parametrize("op", _BIN)
def test_toolchain_ops_on_every_constant_operand_match_wasmtime(width, op):
    """Each binary op with its second operand a constant (0, 1, powers of
    two and their neighbours, shift counts past the width, sign boundaries)
    and its first read from a global at run time: the compiled program's
    output on the reference executor is wasmtime's on the module."""
    from isowasm.backends import get_backend
    from isowasm.backends.base import Case
    from isowasm.toolchain import compile_source
    wasm, prog = compile_source(_const_op_module(width, op), "wat", f"const-{width}-{op}")
    case = Case(f"const-{width}-{op}", prog, wasm=wasm)
    truth = get_backend("wasmtime").run(case, max_steps=50_000_000)
    got = run_reference(prog, max_steps=50_000_000)
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)


# ---- the toolchain: every memory access width at the end of memory ------------

_WIDTH = {"i32.load": 4, "i32.load8_s": 1, "i32.load8_u": 1, "i32.load16_s": 2, "i32.load16_u": 2,
          "i32.store": 4, "i32.store8": 1, "i32.store16": 2,
          "i64.load": 8, "i64.load8_s": 1, "i64.load8_u": 1, "i64.load16_s": 2, "i64.load16_u": 2,
          "i64.load32_s": 4, "i64.load32_u": 4, "i64.store": 8, "i64.store8": 1, "i64.store16": 2,
          "i64.store32": 4}


def _edge_module(op: str, past: int, const_addr: bool) -> str:
    from isowasm.spec import table
    mem = table.limits()["memory_bytes"]
    t = op[:3]
    addr = mem - _WIDTH[op] + past
    a = f"(i32.const {addr})" if const_addr else "(global.get $a)"
    pattern = "(i64.store (i32.const %d) (i64.const 0x8182838485868788))" % (mem - 8)
    if ".load" in op:
        access = f"({op} {a})"
        show = f"(call $hex64 (i64.extend_i32_u {access}))" if t == "i32" else f"(call $hex64 {access})"
    else:
        value = "(i32.const 0x71727374)" if t == "i32" else "(i64.const 0x0102030405060708)"
        show = f"({op} {a} {value}) (call $hex64 (i64.load (i32.const {mem - 8})))"
    return ("(module" + _PRINT + f'(func (export "compute") (global.set $x32 (i32.const 0)) {pattern}\n'
            f"(call $hex64 (i64.load (i32.const {mem - 8}))) {show}))\n").replace(
        "(global $x32 (mut i32) (i32.const 0))", f"(global $x32 (mut i32) (i32.const 0)) (global $a (mut i32) (i32.const {addr}))")


@pytest.mark.parametrize("const_addr", [False, True], ids=["runtime-address", "constant-address"])
@pytest.mark.parametrize("past", [0, 1], ids=["fits", "one-past"])
@pytest.mark.parametrize("op", sorted(_WIDTH))
def test_toolchain_memory_access_at_the_end_of_memory_matches_wasmtime(op, past, const_addr):
    """Every load and store width, i32 and i64, at the last address where it
    fits (the bytes it reads or writes shown) and one byte further (an oob
    trap): the compiled program on the reference executor is wasmtime's."""
    from isowasm.backends import get_backend
    from isowasm.backends.base import Case
    from isowasm.toolchain import compile_source
    wasm, prog = compile_source(_edge_module(op, past, const_addr), "wat", f"edge-{op}")
    truth = get_backend("wasmtime").run(Case(op, prog, wasm=wasm), max_steps=5_000_000)
    got = run_reference(prog, max_steps=5_000_000)
    assert (got.status, got.trap, got.output) == (truth.status, truth.trap, truth.output)
    assert got.status == ("trapped" if past else "halted")


# ---- the toolchain: what the second mutation run's survivors showed ----------
#
# Helpers shared by the toolchain tests below: a printer of i32 values as 8
# hex digits (through output_byte), and a WAT module run twice, compiled on
# the reference executor and as it is on wasmtime.

_M32 = 0xFFFFFFFF
_HEX = """(import "env" "output_byte" (func $out (param i32)))
  (memory 160)
  (func $hex (param $v i32) (local $i i32) (local $d i32)
    (local.set $i (i32.const 28))
    (loop $digits
      (local.set $d (i32.and (i32.shr_u (local.get $v) (local.get $i)) (i32.const 15)))
      (call $out (i32.add (local.get $d)
        (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $d) (i32.const 10)))))
      (local.set $i (i32.sub (local.get $i) (i32.const 4)))
      (br_if $digits (i32.ge_s (local.get $i) (i32.const 0)))))"""


def _toolchain_vs_wasmtime(wat: str, name: str):
    """(program, reference result, wasmtime result) of a WAT module."""
    import wasmtime
    from isowasm.backends import get_backend
    from isowasm.backends.base import Case
    from isowasm.toolchain import compile_wasm
    wasm = wasmtime.wat2wasm(wat)
    prog = compile_wasm(wasm, name)
    truth = get_backend("wasmtime").run(Case(name, prog, wasm=wasm), max_steps=5_000_000)
    return prog, run_reference(prog, max_steps=5_000_000), truth


def _toolchain_steps(wat: str) -> int:
    import wasmtime
    from isowasm.toolchain import compile_wasm
    r = run_reference(compile_wasm(wasmtime.wat2wasm(wat)), max_steps=5_000_000)
    assert r.status == "halted", r.status
    return r.steps


# -- the cost heuristics choose the cheapest form (dry-run counts, lowering._cost)

class _NoScratch:
    """An emitter context with nothing emitted before the op and no scratch word."""


class _WithScratch:
    """... with the scratch word (lowering.py "Byte moves"), saved or the toolchain's own."""

    def __init__(self, save: bool):
        self.save = save

    def scratch(self):
        from isowasm.spec import table
        return table.limits()["memory_bytes"] - 16, self.save


_EMITTERS = [_NoScratch(), _WithScratch(False), _WithScratch(True)]
_EMITTER_IDS = ["no-scratch", "scratch", "saved-scratch"]


def _cost_constants(seed: str, n: int) -> list[int]:
    """Runs of ones anywhere in the word and their complements, small
    constants and their negations, and seeded random ones of every length."""
    rng = random.Random(seed)
    cs = {((1 << a) - (1 << b)) & _M32 for a in range(33) for b in range(a)}
    cs |= {v ^ _M32 for v in cs} | set(range(1, 300)) | {-v & _M32 for v in range(1, 300)}
    cs |= {rng.getrandbits(32) for _ in range(n)} | {rng.getrandbits(rng.randint(2, 31)) for _ in range(n)}
    return sorted(c for c in cs if c not in (0, _M32))


_NEGATE = 4        # 0 - x: local.set t, i32.const 0, local.get t, i32.sub
_COMPLEMENT = 3    # x & c = x - (x & ~c): local.tee t, local.get t, ..., i32.sub


@pytest.mark.parametrize("em", _EMITTERS, ids=_EMITTER_IDS)
def test_toolchain_mul_by_a_constant_is_never_dearer_than_by_its_negation(em):
    """x * c = -(x * -c): the expansion of `x * c` (shift-and-add over c,
    or over -c and negated, whichever is cheaper) never costs more steps
    than that of `x * -c` plus the negation, over thousands of constants."""
    from isowasm.toolchain import lowering
    worse = []
    for c in _cost_constants("mul", 1500):
        here = lowering._cost(em, lowering.mul_const, c)
        there = lowering._cost(em, lowering.mul_const, -c & _M32) + _NEGATE
        if here > there:
            worse.append((hex(c), here, there))
    assert not worse, f"x * c dearer than -(x * -c): {worse[:10]}"


@pytest.mark.parametrize("em", _EMITTERS, ids=_EMITTER_IDS)
def test_toolchain_and_with_a_constant_is_never_dearer_than_through_its_complement(em):
    """x & c = x - (x & ~c): the expansion of `x & c` never costs more steps
    than that of `x & ~c` plus the subtraction, over many masks, with and
    without the scratch word's byte moves."""
    from isowasm.toolchain import lowering
    worse = []
    for c in _cost_constants("and", 600):
        here = lowering._cost(em, lowering.and_const, c)
        there = lowering._cost(em, lowering.and_const, ~c & _M32) + _COMPLEMENT
        if here > there:
            worse.append((hex(c), here, there))
    assert not worse, f"x & c dearer than x - (x & ~c): {worse[:10]}"


@pytest.mark.parametrize("pages,bound", [(1, 8), (160, 24)], ids=["scratch-free", "scratch-saved"])
def test_toolchain_whole_byte_shifts_and_masks_are_a_store_and_a_load(pages, bound):
    """lowering.py, "Byte moves": a constant shift or mask by whole bytes,
    and extend8_s/16_s, are a store and a load through the scratch word
    (~6 steps; ~12-21 when the module's memory reaches the scratch bytes
    and they are saved and put back), never the bit-serial walk (70+)."""
    def wat(e):
        return (f'(module (memory {pages}) (global $x (mut i32) (i32.const 0x12345678))'
                f' (func (export "compute") (drop {e})))')
    base = _toolchain_steps(wat("(global.get $x)"))
    for e in ["(i32.and (global.get $x) (i32.const 0xFF))", "(i32.and (global.get $x) (i32.const 0xFFFF))",
              "(i32.and (global.get $x) (i32.const 0xFFFF0000))", "(i32.shr_u (global.get $x) (i32.const 24))",
              "(i32.shr_u (global.get $x) (i32.const 16))", "(i32.shr_u (global.get $x) (i32.const 8))",
              "(i32.shr_s (global.get $x) (i32.const 24))", "(i32.shr_s (global.get $x) (i32.const 16))",
              "(i32.shl (global.get $x) (i32.const 24))", "(i32.shl (global.get $x) (i32.const 16))",
              "(i32.extend8_s (global.get $x))", "(i32.extend16_s (global.get $x))"]:
        cost = _toolchain_steps(wat(e)) - base
        assert cost <= bound, f"{e} costs {cost} steps (memory of {pages} pages)"


# -- the cache key

def test_toolchain_cache_key_changes_with_every_toolchain_file(tmp_path, monkeypatch):
    """A cached compilation is reused only by the same toolchain: editing
    any of its files (every .py and .wat, and the machine table it reads)
    changes the cache key of every source, C and WAT, and undoing the edit
    gives the old key back."""
    from isowasm.spec import table
    from isowasm.toolchain import frontend
    tool = tmp_path / "toolchain"
    shutil.copytree(frontend.TOOLCHAIN_DIR, tool, ignore=shutil.ignore_patterns("__pycache__"))
    yaml = tmp_path / "machine.yaml"
    shutil.copyfile(table.MACHINE_YAML, yaml)
    monkeypatch.setattr(frontend, "TOOLCHAIN_DIR", tool)
    monkeypatch.setattr(table, "MACHINE_YAML", yaml)
    files = sorted(tool.glob("*.py")) + sorted(tool.glob("*.wat")) + [yaml]
    assert {p.name for p in files} >= {"compile.py", "lowering.py", "i64.py", "runtime.wat", "machine.yaml"}

    def keys():
        frontend._toolchain_hash.cache_clear()
        return frontend._cache_key("(module)", "wat"), frontend._cache_key("void compute(const char *s) {}", "c")
    try:
        base = keys()
        seen = {base}
        for p in files:
            old = p.read_bytes()
            p.write_bytes(old + b"\n")
            k = keys()
            assert k[0] != base[0] and k[1] != base[1], f"editing {p.name} leaves the cache key as it was"
            assert k not in seen, p.name
            seen.add(k)
            p.write_bytes(old)
            assert keys() == base, p.name
    finally:
        monkeypatch.undo()
        frontend._toolchain_hash.cache_clear()


def test_toolchain_cache_key_of_c_follows_the_runtime_header(tmp_path, monkeypatch):
    """A C source's cache key depends on the force-included runtime header:
    another header gives another key, and with no header at all (an
    installation without isowasm/runtime) the key is still made, different
    from both; a WAT source's key does not depend on it."""
    from isowasm.toolchain import frontend
    real = frontend.RUNTIME_DIR / "isowasm.h"
    src = "void compute(const char *input) { out_byte(65); }"
    keys = {}
    for variant in ("shipped", "edited", "none"):
        d = tmp_path / variant
        d.mkdir()
        if variant != "none":
            (d / "isowasm.h").write_bytes(real.read_bytes() + (b"/* edited */\n" if variant == "edited" else b""))
        monkeypatch.setattr(frontend, "RUNTIME_DIR", d)
        keys[variant] = (frontend._cache_key(src, "c"), frontend._cache_key("(module)", "wat"))
    monkeypatch.undo()
    assert len({k[0] for k in keys.values()}) == 3, keys
    assert len({k[1] for k in keys.values()}) == 1, keys


# -- address folds: `local + k` into the access's offset

# Sequences that leave an address on the stack and then change what the
# local it came from holds (or put another local's value in between): the
# access that follows proves nothing about the local's new value.
_REWRITES = {
    "set-the-address-local": "local.get $p  i32.const -16  local.set $p",
    "tee-the-address-local": "local.get $p  i32.const -16  local.tee $p  drop",
    "address-plus-k-then-set": "local.get $p  i32.const 4  i32.add  i32.const -16  local.set $p",
    "set-another-local": "local.get $p  local.get $q  local.set $r",
    "tee-another-local": "local.get $p  local.get $q  local.tee $r  drop",
    "set-from-a-const": "local.get $p  i32.const 5  local.set $q  i32.const -16  local.set $q",
}


def _fold_module(rewrite: str, access: str) -> str:
    first = "i32.load  call $hex" if access == "load" else "i32.const 0x99  i32.store"
    return f"""(module {_HEX}
  (data (i32.const 0) "\\01\\02\\03\\04") (data (i32.const 64) "\\41\\42\\43\\44\\45\\46\\47\\48")
  (func (export "compute") (local $p i32) (local $q i32) (local $r i32)
    i32.const 64  local.set $p  i32.const -16  local.set $q
    local.get $p  i32.load  call $hex
    {rewrite}  {first}
    local.get $p  i32.const 16  i32.add  i32.load  call $hex
    local.get $q  i32.const 16  i32.add  i32.load  call $hex
    i32.const 64  i32.load  call $hex))
"""


@pytest.mark.parametrize("access", ["load", "store"])
@pytest.mark.parametrize("rewrite", sorted(_REWRITES))
def test_toolchain_address_folds_trust_only_the_value_accessed(rewrite, access):
    """`local.get L; i32.const k; i32.add` feeding an access is folded into
    its offset only when L's value is known to be in memory: the local
    -16 (0xfffffff0) plus 16 wraps to address 0 in wasm, and must not be
    folded into an access of 0xfffffff0 + 16 (a trap) after an access that
    used an older value of L, or another local's value."""
    _, got, truth = _toolchain_vs_wasmtime(_fold_module(_REWRITES[rewrite], access), f"fold-{rewrite}")
    assert (got.status, got.trap, got.output) == (truth.status, truth.trap, truth.output)
    assert got.status == "halted"


# -- shift pairs: (x << k) >> k as one mask or sign extension

_PAIR_XS = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x12348765, 0x80000000, 0x7FFFFFFF, _M32,
            0xDEADBEEF, 0x00FF8001]


def _pair_module(pairs, xs, sep: str = "") -> str:
    body = []
    for x in xs:
        body.append(f"i32.const {x}  global.set $x")
        for k1, k2, shr in pairs:
            body.append(f"global.get $x  i32.const {k1}  i32.shl {sep} i32.const {k2}  {shr}  call $hex")
    return (f"(module {_HEX}\n  (global $x (mut i32) (i32.const 0))\n  (func (export \"compute\")\n    "
            + "\n    ".join(body) + "))\n")


@pytest.mark.parametrize("shr", ["i32.shr_s", "i32.shr_u"])
def test_toolchain_shift_pairs_match_wasmtime(shr):
    """`(x << k) >> k'` for every count 0..32, equal counts and counts equal
    mod 32, and neighbouring unequal ones, on sign and byte boundaries."""
    pairs = [(k, k, shr) for k in range(33)] + [(k, k + 32, shr) for k in (8, 15, 16, 17, 24)]
    pairs += [(k, k + d, shr) for k in (8, 15, 16, 17, 23, 24, 25) for d in (-1, 1)]
    _, got, truth = _toolchain_vs_wasmtime(_pair_module(pairs, _PAIR_XS), "pairs")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)


def test_toolchain_shift_pairs_are_never_dearer_than_two_shifts():
    """A shift pair (compile.py shift_pair) costs no more steps than the
    same two shifts lowered one by one (a nop in between), and less for
    the forms it folds: `>>u k` (a mask), `>>s 16` and `>>s 24` (sign
    extensions)."""
    for shr in ("i32.shr_s", "i32.shr_u"):
        for k in range(33):
            pair = _toolchain_steps(_pair_module([(k, k, shr)], [0x12348765]))
            apart = _toolchain_steps(_pair_module([(k, k, shr)], [0x12348765], sep="nop"))
            assert pair <= apart, (shr, k, pair, apart)
            if 1 <= k <= 31 and (shr == "i32.shr_u" or k in (16, 24)):
                assert pair < apart, (shr, k, pair, apart)


# -- loop-invariant constant ops computed before the loop

_INVARIANT = [("i32.shl", 5), ("i32.shl", 9), ("i32.shr_u", 3), ("i32.mul", 10), ("i32.and", 0x5555)]


def _hoist_module(n: int, pad: int) -> str:
    ops = "\n      ".join(f"local.get $s  local.get $a  i32.const {k}  {op}  i32.add  local.set $s"
                          for op, k in _INVARIANT[:n])
    pads = " ".join("(local i32)" for _ in range(pad))
    return f"""(module {_HEX}
  (func (export "compute") (local $i i32) (local $a i32) (local $s i32) {pads}
    i32.const 0x1234567  local.set $a  i32.const 7  local.set $i
    (loop $l
      {ops}
      local.get $i  i32.const 1  i32.sub  local.tee $i  br_if $l)
    local.get $s  call $hex))
"""


@pytest.mark.parametrize("n", [1, 2, 5])
def test_toolchain_unused_locals_cost_nothing_while_the_frame_has_room(n):
    """n loop-invariant constant ops (`local.get a; i32.const k; op`, a never
    written in the loop) are computed once before the loop, each into a
    local of its own, as long as the frame (locals_per_frame) has room for
    them next to the function's locals and the lowering's scratch locals
    (0 .. T_SAVE + 2): padding the function with unused locals up to that
    point changes nothing, past it the loop costs more, and every padding
    still compiles and runs as on wasmtime."""
    from isowasm.spec import table
    from isowasm.toolchain import lowering
    frame = table.limits()["locals_per_frame"]
    temps = lowering.T_SAVE + 3
    own = 3
    _, got, truth = _toolchain_vs_wasmtime(_hoist_module(n, 0), f"hoist-{n}")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)
    base = got.steps
    for free in (n + 1, n, n - 1, 0):
        pad = frame - temps - own - free
        _, got, truth = _toolchain_vs_wasmtime(_hoist_module(n, pad), f"hoist-{n}-{free}")
        assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)
        if free >= n:
            assert got.steps == base, f"{n} invariant ops, room for {free}: {got.steps} steps, not {base}"
        else:
            assert got.steps > base, (n, free)


# Loops whose bodies mix the hoisting pattern with look-alikes: the constant
# before the local.get, two locals, the local written in the loop, a
# division (never hoisted), nested loops.
_LOOP_BODIES = [
    "local.get $s  i32.const 3  local.get $a  local.get $b  i32.shl  i32.add  i32.add  local.set $s",
    "i32.const 7  local.get $a  i32.const 2  i32.shl  i32.sub  local.get $s  i32.add  local.set $s",
    "local.get $s  local.get $a  i32.const 11  i32.mul  i32.xor  local.set $s",
    "local.get $s  local.get $b  i32.const 5  i32.shr_s  i32.add  local.set $s"
    "  local.get $b  i32.const 3  i32.add  local.set $b",
    "local.get $s  local.get $a  i32.const 3  i32.div_u  i32.add  local.set $s",
    "(loop $in local.get $s  local.get $a  i32.const 0xF0F0  i32.and  i32.add  local.set $s"
    "  local.get $j  i32.const 1  i32.sub  local.tee $j  br_if $in)  i32.const 2  local.set $j",
]


def test_toolchain_loop_invariant_ops_match_wasmtime():
    """Loop-invariant constant ops computed before their loop give the
    results wasmtime does, next to patterns that only look like them."""
    body = "\n      ".join(_LOOP_BODIES)
    wat = f"""(module {_HEX}
  (func (export "compute") (local $i i32) (local $j i32) (local $a i32) (local $b i32) (local $s i32)
    i32.const 0x12345 local.set $a  i32.const 3 local.set $b  i32.const 6 local.set $i  i32.const 2 local.set $j
    (loop $l
      {body}
      local.get $s  call $hex
      local.get $i  i32.const 1  i32.sub  local.tee $i  br_if $l)))
"""
    _, got, truth = _toolchain_vs_wasmtime(wat, "loop-invariants")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)


# -- br_if

_BR_IF_FRAMES = {
    # name: (with br_if, the same with the br_if a drop)
    "block": ("(block (br_if 0 (global.get $c)))", "(block (drop (global.get $c)))"),
    "block-with-value": ("(drop (block (result i32) (br_if 0 (i32.const 5) (global.get $c))))",
                         "(drop (block (result i32) (i32.const 5) (drop (global.get $c))))"),
    "if": ("(if (global.get $d) (then (br_if 0 (global.get $c))))",
           "(if (global.get $d) (then (drop (global.get $c))))"),
    "outer-block": ("(block (block (br_if 1 (global.get $c))))", "(block (block (drop (global.get $c))))"),
    # taken once when c = 1 (c is 0 the second time round): the drop form runs the body 1 + c times
    "loop": ("(loop $l (global.get $c) (global.set $c (i32.const 0)) (br_if $l))",
             "{body}(global.get $c) (global.set $c (i32.const 0)) (drop) "),
}


@pytest.mark.parametrize("c", [0, 1])
@pytest.mark.parametrize("frame", sorted(_BR_IF_FRAMES))
def test_toolchain_br_if_with_just_its_values_is_one_step(frame, c):
    """A br_if whose stack holds exactly its target's values (nothing to
    unwind) is one machine br_if, taken or not: it costs what a drop costs."""
    with_br_if, with_drop = _BR_IF_FRAMES[frame]
    if with_drop.startswith("{body}"):
        with_drop = with_drop[len("{body}"):] * (1 + c)

    def wat(body):
        return (f'(module (global $c (mut i32) (i32.const {c})) (global $d (mut i32) (i32.const 1))'
                f' (func (export "compute") {body}))')
    assert _toolchain_steps(wat(with_br_if)) == _toolchain_steps(wat(with_drop))


@pytest.mark.parametrize("c", [0, 1])
def test_toolchain_br_if_out_of_a_function_matches_wasmtime(c):
    """br_if to a function's own label (a conditional return), with and
    without values to leave and to unwind, in the entry function and a callee."""
    wat = f"""(module {_HEX}
  (global $c (mut i32) (i32.const {c}))
  (func $f (param $x i32) (result i32)
    (i32.const 7) (br_if 0 (global.get $c)) (drop) (i32.add (local.get $x) (i32.const 9)))
  (func $g (param $x i32) (result i32)
    (i32.const 1) (i32.const 2) (i32.add (local.get $x) (i32.const 3))
    (br_if 0 (global.get $c)) (drop) (drop) (drop) (i32.const 40))
  (func $h (param $x i32)
    (br_if 0 (local.get $x)) (call $hex (i32.const 0x11)))
  (func (export "compute")
    (call $hex (call $f (i32.const 100))) (call $hex (call $g (i32.const 100)))
    (call $h (global.get $c)) (call $hex (i32.const 0x22))
    (br_if 0 (global.get $c)) (call $hex (i32.const 0x33))))
"""
    _, got, truth = _toolchain_vs_wasmtime(wat, f"br-if-func-{c}")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)


# -- the decoder's first check

def test_toolchain_decoder_refuses_what_is_not_a_wasm_module():
    """decode_module (which the fuzzer's blame and the oracles also use to
    read a module's ops, counting on it to refuse what is not a module)
    raises a CompileError naming the magic number for bytes that are not a
    module: none, too short, WAT text, one magic byte wrong. It reads every
    module wasmtime accepts, the smallest (the 8-byte header alone)
    included, and compiling that one says what it lacks: `compute`."""
    import wasmtime
    from isowasm.toolchain import compile_wasm
    from isowasm.toolchain.decode import decode_module
    from isowasm.toolchain.errors import CompileError
    empty = wasmtime.wat2wasm("(module)")
    assert len(empty) == 8
    assert decode_module(empty).funcs == []
    full = wasmtime.wat2wasm('(module (func (export "compute") (drop (i32.const 1))))')
    assert [ins.op for f in decode_module(full).funcs for ins in f.body][:2] == ["i32.const", "drop"]
    bad = [b"", b"\0", b"\0as", empty[:4], empty[:7], b"(module)", b"(module (func (export \"compute\")))"]
    bad += [full[:i] + bytes([full[i] ^ 0x20]) + full[i + 1:] for i in range(4)]
    for data in bad:
        with pytest.raises(CompileError, match="not a WebAssembly module"):
            decode_module(data)
    with pytest.raises(CompileError, match="no exported function `compute`"):
        compile_wasm(empty)


# ---- the toolchain: what the third mutation run's survivors showed -----------

# -- bounds checks of a memory smaller than the machine's

def _small_edge_module(op: str, past: int, const_addr: bool, pages: int, grow: int) -> str:
    """_edge_module's access in a memory of `pages` pages (a compiler
    bounds check on every access), grown by `grow` pages first."""
    mem = (pages + grow) * 65536
    addr = mem - _WIDTH[op] + past
    a = f"(i32.const {addr})" if const_addr else "(global.get $a)"
    if ".load" in op:
        access = f"({op} {a})"
        show = f"(call $hex64 (i64.extend_i32_u {access}))" if op[:3] == "i32" else f"(call $hex64 {access})"
    else:
        value = "(i32.const 0x71727374)" if op[:3] == "i32" else "(i64.const 0x0102030405060708)"
        show = f"({op} {a} {value}) (call $hex64 (i64.load (i32.const {mem - 8})))"
    head = _PRINT.replace('(memory (export "memory") 160)', f'(memory (export "memory") {pages} 8)')
    return (f"(module {head} (global $a (mut i32) (i32.const {addr}))\n"
            f'(func (export "compute") (call $hex (memory.grow (i32.const {grow})))\n'
            f"(i64.store (i32.const {mem - 8}) (i64.const 0x8182838485868788))\n"
            f"(call $hex64 (i64.load (i32.const {mem - 8}))) {show}))\n")


@pytest.mark.parametrize("grow", [0, 2], ids=["as-declared", "grown"])
@pytest.mark.parametrize("const_addr", [False, True], ids=["runtime-address", "constant-address"])
@pytest.mark.parametrize("past", [0, 1], ids=["fits", "one-past"])
@pytest.mark.parametrize("op", sorted(_WIDTH))
def test_toolchain_memory_access_at_the_end_of_a_small_memory_matches_wasmtime(op, past, const_addr, grow):
    """In a memory smaller than the machine's (1 page, and 3 after
    memory.grow) the machine's own bounds do not trap: every load and store
    width, i32 and i64, at the last address where it fits and one byte
    further behaves as on wasmtime (the bytes shown, or an oob trap with
    nothing written)."""
    import wasmtime
    from isowasm.backends import get_backend
    from isowasm.backends.base import Case
    from isowasm.toolchain import compile_wasm
    wasm = wasmtime.wat2wasm(_small_edge_module(op, past, const_addr, 1, grow))
    prog = compile_wasm(wasm, f"small-edge-{op}")
    truth = get_backend("wasmtime").run(Case(op, prog, wasm=wasm), max_steps=5_000_000)
    got = run_reference(prog, max_steps=5_000_000)
    assert (got.status, got.trap, got.output) == (truth.status, truth.trap, truth.output)
    assert got.status == ("trapped" if past else "halted")


# -- i64 sub of a constant

_SUB_KS = [1, 2, 5, 0xFFFFFFFF, 0x80000000, 0x100000000, 0x500000000, 0xFFFFFFFF00000000, 0x8000000000000000,
           0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFB, 0xFFFFFFFF00000001, 0x7FFFFFFFFFFFFFFF, 0x123456789ABCDEF0]


def test_toolchain_i64_sub_of_a_constant_is_never_dearer_than_adding_its_negation():
    """a - k = a + (-k mod 2^64): `x - k` for a constant k costs no more
    steps than `x + (-k)` (a low word of 0 needs no carry: one i32.add of
    the high words), and both give what wasmtime gives."""
    def wat(op, k):
        return (f'(module (global $x (mut i64) (i64.const 0x0123456789ABCDEF))'
                f' (func (export "compute") (global.set $x (i64.{op} (global.get $x) (i64.const {k})))))')
    dearer = []
    for k in _SUB_KS:
        sub, add = _toolchain_steps(wat("sub", k)), _toolchain_steps(wat("add", -k & ((1 << 64) - 1)))
        if sub > add:
            dearer.append((hex(k), sub, add))
    assert not dearer, f"x - k dearer than x + (-k): {dearer}"
    body = "\n    ".join(f"(call $hex64 (i64.sub (global.get $x64) (i64.const {k})))" for k in _SUB_KS)
    _, got, truth = _toolchain_vs_wasmtime(
        "(module" + _PRINT + '(func (export "compute") (global.set $x64 (i64.const 0x0123456789ABCDEF))\n    '
        + body + "))\n", "sub-consts")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)


# -- the frame room of i64 shifts by a constant

_SHIFT_KS = [1, 7, 8, 16, 24, 31, 32, 33, 40, 48, 63, 69]
_I64_SHIFT_ROOM = 6     # lowering.py's temporaries 0..3 and i64.py's T, T + 1 (the two words)


def _shift_frame_module(op: str, pad: int) -> str:
    pads = " ".join("(local i32)" for _ in range(pad))
    body = "\n    ".join(f"(call $hex64 (i64.{op} (global.get $x64) (i64.const {k})))" for k in _SHIFT_KS)
    return ("(module" + _PRINT + f'(func (export "compute") {pads}\n'
            "    (global.set $x64 (i64.const 0x8123456789ABCDEF))\n    " + body + "))\n")


@pytest.mark.parametrize("op", ["shl", "shr_s", "shr_u", "rotl", "rotr"])
def test_toolchain_i64_shifts_by_a_constant_fit_a_frame_with_room_for_two_words(op):
    """An i64 shift or rotate by a constant moves its value through two
    scratch locals (i64.py's T and T + 1) beside lowering.py's four: in a
    function whose own locals leave exactly that room in the frame
    (locals_per_frame) it compiles and runs as on wasmtime, over counts on
    and off word and byte boundaries and past 63; one local more and the
    compile error names the frame's limit."""
    import wasmtime
    from isowasm.spec import table
    from isowasm.toolchain import compile_wasm
    from isowasm.toolchain.errors import CompileError
    frame = table.limits()["locals_per_frame"]
    _, got, truth = _toolchain_vs_wasmtime(_shift_frame_module(op, frame - _I64_SHIFT_ROOM), f"shift-frame-{op}")
    assert (got.status, got.output) == (truth.status, truth.output) == ("halted", truth.output)
    with pytest.raises(CompileError, match=f"a frame holds at most {frame} locals"):
        compile_wasm(wasmtime.wat2wasm(_shift_frame_module(op, frame - _I64_SHIFT_ROOM + 1)))


# -- WAT syntax errors

_WAT_ERRORS = [
    # (source, line, column, what wasmtime's message says)
    ('(module (func (export "compute")\n  i32.const 1\n  i32.frob))', 3, 3, "unknown operator"),
    ("\n\n(module", 3, 8, "expected `)`"),
    ('(module\n (func (export "compute") (drop (i32.const 99999999999))))', 2, 44, "out of range"),
    ("(module (func $a)\n\n   (func $a))", 3, 10, "duplicate"),
]


@pytest.mark.parametrize("case", range(len(_WAT_ERRORS)))
def test_toolchain_wat_syntax_errors_name_the_problem_and_where(case):
    """A WAT source wasmtime cannot parse is a CompileError of one line:
    `name:line:column: problem`, the problem the first line of wasmtime's
    own message (not its source excerpt) and the place it points at."""
    import wasmtime
    from isowasm.toolchain import compile_source
    from isowasm.toolchain.errors import CompileError
    text, line, col, what = _WAT_ERRORS[case]
    with pytest.raises(wasmtime.WasmtimeError) as theirs:
        wasmtime.wat2wasm(text)
    problem = str(theirs.value).splitlines()[0]
    assert what in problem
    with pytest.raises(CompileError) as ours:
        compile_source(text, "wat", "prog.wat")
    assert str(ours.value) == f"prog.wat:{line}:{col}: {problem}"


# -- an input reaching the scratch bytes

def _scratch_input_module(memory: str) -> str:
    from isowasm.toolchain.compile import SCRATCH
    ops = [f"(i32.{op} (global.get $x) (i32.const {k}))" for op in ("shr_u", "shr_s", "shl") for k in range(1, 32)]
    ops += [f"(i32.and (global.get $x) (i32.const {c}))" for c in (0xFF, 0xFFFF, 0xFFFF00, 0xFF00FF00, 0x00FFFF00)]
    ops += ["(i32.extend8_s (global.get $x))", "(i32.extend16_s (global.get $x))"]
    body = "\n    ".join(f"(global.set $x (i32.const {x})) " + " ".join(f"(call $hex {e})" for e in ops)
                       for x in (0x12345678, 0x87654321, 0xFFFFFFFF, 0x80000001))
    return (f"(module {_HEX.replace('(memory 160)', memory)}\n"
            f'  (global $x (mut i32) (i32.const 0)) (global $hb i32 (i32.const {SCRATCH - 64}))\n'
            f'  (export "__heap_base" (global $hb))\n  (func (export "compute")\n    {body}))\n')


@pytest.mark.parametrize("memory", ["", "(memory 1)", "(memory 159)"], ids=["no-memory", "1-page", "159-pages"])
def test_toolchain_an_input_reaching_the_scratch_bytes_changes_nothing_computed(memory):
    """An input placed just below lowering.py's scratch bytes (a module
    whose memory never reaches them, so they are the toolchain's own zeros)
    and long enough to cover part or all of them, up to the machine's last
    byte: constant shifts, masks and sign extensions by whole and partial
    bytes, of values with every byte set, print (whole words) what wasmtime
    prints for the module without any input; the module never reads it."""
    import wasmtime
    from isowasm.backends import get_backend
    from isowasm.backends.base import Case
    from isowasm.spec import table
    from isowasm.toolchain import compile_wasm
    from isowasm.toolchain.compile import SCRATCH
    wasm = wasmtime.wat2wasm(_scratch_input_module(memory))
    prog = compile_wasm(wasm, "scratch-input")
    assert prog.imms[0] == SCRATCH - 64
    truth = get_backend("wasmtime").run(Case("scratch-input", prog, wasm=wasm), max_steps=5_000_000)
    assert truth.status == "halted"
    for end in (SCRATCH + 4, SCRATCH + 8, SCRATCH + 12, table.limits()["memory_bytes"] - 1):
        got = run_reference(prog, b"\xff" * (end - (SCRATCH - 64)), max_steps=5_000_000)
        assert (got.status, got.output) == (truth.status, truth.output), f"an input up to {end:#x}"


# -- the compilation cache

@pytest.mark.parametrize("existing", [False, True], ids=["new-directory", "existing-directory"])
def test_toolchain_every_compilation_is_cached_and_reused(tmp_path, monkeypatch, existing):
    """Each new source's compilation is written to the cache (ISOWASM_CACHE),
    whether the directory is yet to be made (parents included) or already
    there, as after the first entry; compiling any of them again is a hit
    (nothing compiled) that gives the same wasm and program."""
    from isowasm.toolchain import frontend
    d = tmp_path / "a" / "cache"
    if existing:
        d.mkdir(parents=True)
    monkeypatch.setenv("ISOWASM_CACHE", str(d))
    srcs = [f'(module (func (export "compute") (drop (i32.const {i}))))' for i in range(3)]
    first = [frontend.compile_source(s, "wat", f"s{i}.wat") for i, s in enumerate(srcs)]
    assert len(list(d.glob("*.prog"))) == len(list(d.glob("*.wasm"))) == len(srcs)

    def compiled(*a, **k):
        raise AssertionError("compiled again: a cache miss")
    monkeypatch.setattr(frontend, "compile_wasm", compiled)
    for i, s in enumerate(srcs):
        wasm, prog = frontend.compile_source(s, "wat", f"s{i}.wat")
        assert (wasm, prog.names, prog.imms) == (first[i][0], first[i][1].names, first[i][1].imms)
