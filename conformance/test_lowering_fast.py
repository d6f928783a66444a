"""The cheaper lowering forms (issue 13), each against wasmtime.

* constant shifts, masks and sign extensions through the scratch word at the
  top of memory (lowering.py "Byte moves"), in both of its modes: the
  toolchain's own bytes (a memory that can never reach them) and saved and
  put back (a memory of 160 pages, or one that may grow to it);
* loop-invariant constant ops computed before their loop (compile.py);
* branches on a condition without the `i32.eqz` (inverted comparisons,
  `br_if skip; br`), and initial values nothing reads left out;
* the unrolled run-time helpers (and/or/xor, mul, div/rem) on operands of
  every magnitude, which decides where their walk starts.
"""

from __future__ import annotations

import faulthandler
import random

import pytest
import wasmtime

from conformance.test_lowering import M32, PAIR_VALUES, _data, check_against_wasmtime
from isowasm.spec.reference import run_reference
from isowasm.toolchain import compile_wasm
from isowasm.toolchain.compile import SCRATCH, scratch_mode
from isowasm.toolchain.decode import decode_module

if faulthandler.is_enabled():
    faulthandler.disable()

A_BASE, OUT = 0x1000, 0x100
VALUES = PAIR_VALUES[::2] + [0x12345678, 0x80, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x00FF00FF, 0xFF00FF00]
MASKS = [0xFF, 0xFFFF, 0xFFFFFF, 0xFF00, 0xFF0000, 0xFF000000, 0x00FF00FF, 0xFF00FF00, 0xFFFF00FF,
         0x1FF, 0x7F, 0x80, 1, 3, 7, 0xF, 0x3F, 0xF0F0F0F0, 0x80000001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
         0xFFFFFF00, 0xFE, 0x0FF0, 0x1FE00]
MEMORIES = {"free": "(memory 1)", "save": "(memory 160)", "save-grow": "(memory 1)"}


def _consts(op: str) -> list[int]:
    if op in ("i32.shl", "i32.shr_u", "i32.shr_s", "i32.rotl", "i32.rotr"):
        return list(range(32)) + [33, 63, M32]
    rng = random.Random(op)
    return MASKS + [rng.getrandbits(32) for _ in range(8)]


def const_module(ops: list[tuple[str, int]], memory: str, grow: bool = False, unary: bool = False) -> str:
    """Every (op, constant) on every value of VALUES (read from memory), each
    result printed as 4 bytes; with `grow`, the module also grows its memory
    (so it may reach the scratch bytes)."""
    funcs, calls = [], []
    for k, (op, c) in enumerate(ops):
        body = f"({op} (local.get $x))" if unary else f"({op} (local.get $x) (i32.const {c}))"
        funcs.append(f"(func $c{k} (param $x i32) (result i32) {body})")
        calls.append(f"(call $print (call $c{k} (local.get $a)))")
    g = "(drop (memory.grow (i32.const 0)))" if grow else ""
    return f"""(module
  (import "env" "output_byte" (func $out (param i32)))
  {memory}
  {_data(A_BASE, VALUES)}
  (func $print (param $v i32)
    (i32.store (i32.const {OUT}) (local.get $v))
    (call $out (i32.load8_u (i32.const {OUT})))
    (call $out (i32.load8_u (i32.const {OUT + 1})))
    (call $out (i32.load8_u (i32.const {OUT + 2})))
    (call $out (i32.load8_u (i32.const {OUT + 3}))))
  {" ".join(funcs)}
  (func (export "compute")
    (local $i i32) (local $a i32)
    {g}
    (loop $li
      (local.set $a (i32.load (i32.add (i32.const {A_BASE}) (local.get $i))))
      {" ".join(calls)}
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const {4 * len(VALUES)}))))))
"""


@pytest.mark.parametrize("mode", sorted(MEMORIES))
@pytest.mark.parametrize("op", ["i32.and", "i32.or", "i32.xor", "i32.shl", "i32.shr_u", "i32.shr_s",
                                "i32.rotl", "i32.rotr", "i32.mul"])
def test_constant_forms_against_wasmtime(op, mode):
    wat = const_module([(op, c) for c in _consts(op)], MEMORIES[mode], grow=mode == "save-grow")
    m = decode_module(wasmtime.wat2wasm(wat))
    assert scratch_mode(m)[1] == (mode != "free")
    check_against_wasmtime(wat)


@pytest.mark.parametrize("mode", sorted(MEMORIES))
def test_sign_extension_against_wasmtime(mode):
    wat = const_module([("i32.extend8_s", 0), ("i32.extend16_s", 0)], MEMORIES[mode],
                       grow=mode == "save-grow", unary=True)
    check_against_wasmtime(wat)


def test_byte_forms_are_cheap():
    """x & 0xFF, x >> 24, extend8_s cost a store and a load, not a 32-bit
    walk; x >> 1 a third of the bit-serial 300 steps."""
    from conformance.test_lowering import op_cost
    assert op_cost("i32.and", 0xDEADBEEF, 0xFF, const=True) <= 14
    assert op_cost("i32.shr_u", 0xDEADBEEF, 24, const=True) <= 14
    assert op_cost("i32.shr_u", 0xDEADBEEF, 1, const=True) <= 130
    assert op_cost("i32.extend8_s", 0xDEADBEEF, None) <= 14


def test_save_mode_puts_the_scratch_bytes_back():
    """With a memory of 160 pages the scratch bytes are the program's: what
    it stored there reads back unchanged after every kind of expansion."""
    words = [(SCRATCH - 4 + 4 * i, (0x01020304 * (i + 1)) & M32) for i in range(6)]
    stores = " ".join(f"(i32.store (i32.const {a}) (i32.const {v - (1 << 32) if v >> 31 else v}))"
                      for a, v in words)
    ops = ["(i32.and (local.get $x) (i32.const 255))", "(i32.shr_u (local.get $x) (i32.const 9))",
           "(i32.shr_s (local.get $x) (i32.const 8))", "(i32.shl (local.get $x) (i32.const 17))",
           "(i32.extend16_s (local.get $x))", "(i32.and (local.get $x) (i32.const 0x1ff))",
           "(i32.shr_u (local.get $x) (i32.const 8))", "(i32.rotl (local.get $x) (i32.const 12))"]
    sums = " ".join(f"(local.set $s (i32.add (local.get $s) {o}))" for o in ops)
    reads = " ".join(f"(call $out (i32.load8_u (i32.const {a + j})))" for a, _ in words for j in range(4))
    wat = f"""(module (import "env" "output_byte" (func $out (param i32))) (memory 160)
  {_data(A_BASE, [0xDEADBEEF])}
  (func (export "compute") (local $x i32) (local $s i32)
    {stores}
    (local.set $x (i32.load (i32.const {A_BASE})))
    {sums}
    (call $out (local.get $s))
    {reads}))"""
    check_against_wasmtime(wat)


def test_scratch_modes():
    def mode(wat):
        return scratch_mode(decode_module(wasmtime.wat2wasm(wat)))
    f = '(func (export "compute") {})'
    assert mode(f"(module {f.format('')})") == (SCRATCH, False)
    assert mode(f"(module (memory 1) {f.format('')})")[1] is False
    assert mode(f"(module (memory 159) {f.format('')})")[1] is False
    assert mode(f"(module (memory 160) {f.format('')})")[1] is True
    grow = "(drop (memory.grow (i32.const 1)))"
    assert mode(f"(module (memory 1) {f.format(grow)})")[1] is True
    assert mode(f"(module (memory 1 3) {f.format(grow)})")[1] is False


def test_input_reaching_the_scratch_is_zeroed_first():
    """An input placed near the top of a 159-page memory could reach the
    scratch bytes the expansions read as zero: the prologue clears them."""
    top = 159 * 65536
    wat = f"""(module (import "env" "output_byte" (func $out (param i32))) (memory 159)
  (global $hb i32 (i32.const {top - 64})) (export "__heap_base" (global $hb))
  {_data(A_BASE, [0xDEADBEEF])}
  (func (export "compute") (param $p i32)
    (call $out (i32.shr_u (i32.load (i32.const {A_BASE})) (i32.const 8)))
    (call $out (i32.shr_u (i32.load (i32.const {A_BASE})) (i32.const 16)))
    (call $out (i32.shl (i32.load (i32.const {A_BASE})) (i32.const 8)))
    (call $out (i32.load8_u (local.get $p)))))"""
    prog = compile_wasm(wasmtime.wat2wasm(wat), "t")
    res = run_reference(prog, b"\x07" * 65595, max_steps=1_000_000)   # up to 4 bytes below the end
    v = 0xDEADBEEF
    assert res.status == "halted", res.trap
    assert res.output == bytes([(v >> 8) & 0xFF, (v >> 16) & 0xFF, (v << 8) & 0xFF, 7])


# ---------------------------------------------------------------------------
# loop-invariant constant ops


def _loop_wat(write_in_loop: bool, n: int) -> str:
    upd = "(local.set $d (i32.add (local.get $d) (i32.const 1)))" if write_in_loop else ""
    return f"""(module (import "env" "output_byte" (func $out (param i32))) (memory 1)
  {_data(A_BASE, [3, 0x01020304])}
  (func (export "compute") (local $i i32) (local $d i32) (local $j i32)
    (local.set $d (i32.load (i32.const {A_BASE})))
    (loop $outer
      (local.set $i (i32.const 0))
      (loop $inner
        (call $out (i32.add (i32.shl (local.get $d) (i32.const 9))
                            (i32.and (local.get $d) (i32.const 0x1ff))))
        (call $out (i32.shr_u (i32.add (local.get $d) (local.get $i)) (i32.const 3)))
        {upd}
        (br_if $inner (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {n}))))
      (local.set $d (i32.add (local.get $d) (i32.const 7)))
      (br_if $outer (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (i32.const 3))))))"""


@pytest.mark.parametrize("write_in_loop", [False, True])
def test_loop_invariant_ops_match_wasmtime(write_in_loop):
    check_against_wasmtime(_loop_wat(write_in_loop, 9))


def test_loop_invariant_ops_are_computed_once_per_loop():
    def steps(n, w):
        return run_reference(compile_wasm(wasmtime.wat2wasm(_loop_wat(w, n)))).steps
    # 3 outer rounds: per extra inner iteration, the shift and the mask of
    # the fixed $d cost nothing more than reading their local...
    per_iter_hoisted = (steps(20, False) - steps(10, False)) / 30
    per_iter_plain = (steps(20, True) - steps(10, True)) / 30
    # ...while with $d written in the loop both are recomputed every time
    assert per_iter_plain - per_iter_hoisted >= 15, (per_iter_hoisted, per_iter_plain)


# ---------------------------------------------------------------------------
# branches and the prologue


def test_branches_on_conditions():
    conds = ["(i32.lt_s (local.get $a) (local.get $b))", "(i32.eqz (i32.ge_u (local.get $a) (local.get $b)))",
             "(i32.eqz (i32.eqz (local.get $a)))", "(i32.eqz (local.get $a))", "(local.get $a)",
             "(i32.ne (local.get $a) (local.get $b))", "(i32.eqz (i32.eq (local.get $a) (i32.const 5)))"]
    body = []
    for c in conds:
        body.append(f"(if {c} (then (call $out (i32.const 1))) (else (call $out (i32.const 2))))")
        body.append(f"(block $b (br_if $b {c}) (call $out (i32.const 3)))")
        body.append(f"(call $out (block $v (result i32) (drop (br_if $v (i32.const 4) {c})) (i32.const 5)))")
        body.append(f"(call $out (i32.eqz {c}))")
    pairs = [(0, 0), (1, 0), (0, 1), (5, 5), (-1, 3), (7, -7)]
    calls = " ".join(f"(call $f (i32.const {a}) (i32.const {b}))" for a, b in pairs)
    wat = f"""(module (import "env" "output_byte" (func $out (param i32)))
  (func $f (param $a i32) (param $b i32) {" ".join(body)})
  (func (export "compute") {calls}))"""
    assert len(check_against_wasmtime(wat).output) > 2 * len(pairs) * len(conds)


def test_if_on_a_comparison_needs_no_eqz():
    wat = """(module (import "env" "output_byte" (func $out (param i32)))
  (func (export "compute") (local $a i32)
    (if (i32.lt_s (local.get $a) (i32.const 3)) (then (call $out (i32.const 1))))))"""
    prog = compile_wasm(wasmtime.wat2wasm(wat))
    assert "i32.eqz" not in prog.names and "i32.ge_s" in prog.names


def test_unread_initial_values_are_left_out():
    wat = """(module (import "env" "output_byte" (func $out (param i32))) (memory 1)
  (global $unread (mut i32) (i32.const 77)) (global $read (mut i32) (i32.const 78))
  (func (export "compute") (param $p i32)
    (global.set $unread (i32.const 1)) (call $out (global.get $read))))"""
    prog = compile_wasm(wasmtime.wat2wasm(wat))
    consts = [imm for n, imm in zip(prog.names, prog.imms) if n == "i32.const"]
    assert 77 not in consts and 78 in consts
    assert ("local.set", 0) not in list(zip(prog.names, prog.imms))[:4]
    assert run_reference(prog).output == bytes([78])


# ---------------------------------------------------------------------------
# the unrolled helpers, on operands of every magnitude


@pytest.mark.parametrize("op", ["i32.and", "i32.or", "i32.xor", "i32.mul", "i32.div_u", "i32.rem_u",
                                "i32.div_s", "i32.rem_s"])
def test_helpers_on_every_magnitude(op):
    from conformance.test_lowering import runtime_wat
    rng = random.Random(op)
    vals = sorted({rng.getrandbits(k) | (1 << (k - 1)) for k in range(1, 33)} | {0, 1, M32})
    right = [v for v in vals if v] if "div" in op or "rem" in op else vals
    left = [v for v in vals if not (op == "i32.div_s" and v == 0x80000000)]
    check_against_wasmtime(runtime_wat(op, left, right))



# ---------------------------------------------------------------------------
# `local + k` addresses folded into the access's offset


def _fold_wat(body: str, pages: int = 1) -> str:
    end = pages * 65536 - 6
    return f"""(module (import "env" "output_byte" (func $out (param i32))) (memory {pages})
  (data (i32.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c")
  (func $f (param $p i32) (param $q i32) {body})
  (func (export "compute")
    (call $f (i32.const 0) (i32.const 100))
    (call $f (i32.const 3) (i32.const 200))
    (call $f (i32.const -3) (i32.const 300))
    (call $f (i32.const {end}) (i32.const 400))))"""


@pytest.mark.parametrize("pages", [1, 160])
def test_folded_addresses_match_wasmtime(pages):
    # after an access through $p, $p + 2 cannot wrap: folded; before it, or
    # after $p is written, it may (p = -3 reads address -1 + ... mod 2^32)
    body = """
    (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 5))))
    (if (i32.lt_u (local.get $p) (i32.const 100)) (then
      (call $out (i32.load8_u (local.get $p)))
      (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 2))))
      (i32.store8 (i32.add (local.get $q) (i32.const 1)) (i32.load8_u (i32.add (local.get $p) (i32.const 1))))
      (i32.store8 (local.get $q) (i32.const 9))
      (i32.store8 (i32.add (local.get $q) (i32.const 1)) (i32.load8_u (i32.add (i32.const 3) (local.get $p))))
      (call $out (i32.load8_u (i32.add (local.get $q) (i32.const 1))))
      (local.set $p (i32.sub (local.get $p) (i32.const 6)))
      (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 8))))))
    (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 6))))"""
    check_against_wasmtime(_fold_wat(body, pages))


@pytest.mark.parametrize("pages", [1, 160])
def test_folding_keeps_wasm_traps(pages):
    # p = the end - 6 passes the first access; p + 3 + 4 is past the end: both trap the same
    body = """
    (call $out (i32.load8_u (local.get $p)))
    (call $out (i32.load (i32.add (local.get $p) (i32.const 3))))"""
    res = check_against_wasmtime(_fold_wat(body, pages))
    assert res.trap == "oob"


def test_folding_saves_the_adds():
    wat = _fold_wat("""
    (call $out (i32.load8_u (local.get $p)))
    (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 1))))
    (call $out (i32.load8_u (i32.add (local.get $p) (i32.const 2))))""")
    prog = compile_wasm(wasmtime.wat2wasm(wat))
    assert ("i32.load8_u", 1) in zip(prog.names, prog.imms) and ("i32.load8_u", 2) in zip(prog.names, prog.imms)


@pytest.mark.parametrize("mode", ["free", "save"])
def test_shift_pairs_against_wasmtime(mode):
    """(x << k) >> k: a mask (shr_u) or, for 16 and 24, a sign extension
    (shr_s), lowered as one op; every other k as two."""
    funcs, calls = [], []
    for k in list(range(0, 34)) + [-8, -16]:
        for shr in ("i32.shr_u", "i32.shr_s"):
            n = len(funcs)
            funcs.append(f"(func $c{n} (param $x i32) (result i32) "
                         f"({shr} (i32.shl (local.get $x) (i32.const {k})) (i32.const {k})))")
            calls.append(f"(call $print (call $c{n} (local.get $a)))")
    wat = const_module([], MEMORIES[mode]).replace("{CALLS}", "")
    wat = wat.replace('(func (export "compute")', " ".join(funcs) + '\n  (func (export "compute")')
    wat = wat.replace("(local.set $a (i32.load (i32.add (i32.const 4096) (local.get $i))))",
                      "(local.set $a (i32.load (i32.add (i32.const 4096) (local.get $i))))\n      " + " ".join(calls))
    assert len(check_against_wasmtime(wat).output) == 4 * len(calls) * len(VALUES)


# ---------------------------------------------------------------------------
# the same forms when the scratch bytes must be saved (a memory of 160 pages)


@pytest.mark.parametrize("op", ["i32.shl", "i32.shr_u", "i32.shr_s", "i32.rotl", "i32.rotr"])
def test_runtime_shifts_in_save_mode(op):
    """Shifts by a run-time count: the generated dispatch into the constant
    expansions, with the scratch bytes saved and put back."""
    from conformance.test_lowering import SHIFT_COUNTS, runtime_wat
    wat = runtime_wat(op, VALUES, SHIFT_COUNTS).replace("(memory 1)", "(memory 160)")
    check_against_wasmtime(wat)


@pytest.mark.parametrize("op", ["i64.shl", "i64.shr_u", "i64.shr_s", "i64.rotl", "i64.rotr", "i64.and",
                                "i64.or", "i64.xor", "i64.mul", "i64.extend8_s"])
@pytest.mark.parametrize("pages", [1, 160])
def test_i64_constant_forms_in_both_modes(op, pages):
    from conformance import test_i64 as T
    if op == "i64.extend8_s":
        wat = T.unary_wat(op, T.EDGES)
    else:
        consts = list(range(0, 66)) if op[4:] in T.SHIFTS else T.EDGES
        wat = T.const_wat(op, T.EDGES[::2], consts)
    T.check(wat.replace("(memory 1)", f"(memory {pages})"))
