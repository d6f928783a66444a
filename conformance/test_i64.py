"""i64 through the toolchain (isowasm/toolchain/i64.py), against wasmtime.

Every i64 op of the integer subset on all pairs of edge values (0, ±1,
INT64_MIN, INT64_MAX, 2^32, 2^32 - 1, 2^31, carries across the halves, ...)
read from a data segment at run time, and again with the right operand
written as an i64.const (the toolchain's constant expansions) and as a
zero-extended i32 (its known-high-word forms); every result is written as 8
bytes through output_byte and must equal wasmtime's byte for byte. Then the
traps (division by zero, INT64_MIN / -1, out-of-bounds accesses at the last
bytes of memory), i64 locals, globals, parameters, results, select and
branches carrying i64 values, and a bound on each op's cost in steps.

The machine backends other than the reference are held to the reference on
the i64 compliance category (conformance/test_compliance.py) and the 64-bit
examples (test_examples.py).
"""

from __future__ import annotations

import faulthandler
import random

import pytest
import wasmtime

from conformance.test_lowering import wasmtime_run
from isowasm.spec.reference import run_reference
from isowasm.toolchain import compile_source, compile_wasm

if faulthandler.is_enabled():     # see test_lowering.py: wasmtime's trap handlers
    faulthandler.disable()

M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
IMIN, IMAX = 1 << 63, (1 << 63) - 1


def _edges() -> list[int]:
    vals = [0, 1, M64, IMIN, IMAX, IMIN + 1, IMAX - 1, 1 << 32, (1 << 32) - 1, (1 << 32) + 1,
            1 << 31, (1 << 31) - 1, M32 << 32, -(1 << 32) & M64, 0x123456789ABCDEF0,
            0xFEDCBA9876543210, 10, 1000, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA,
            -10 & M64, (1 << 62) + 3, 0x00000001FFFFFFFF, 0xFFFFFFFF00000001]
    out: list[int] = []
    for v in vals:
        if v not in out:
            out.append(v)
    return out


EDGES = _edges()
SHIFT_COUNTS = [0, 1, 2, 7, 31, 32, 33, 40, 63, 64, 65, 127, 128, M64, 1 << 32, (1 << 32) + 5, IMIN]
SHIFT_VALUES = [0xFEDCBA9876543210, 0x123456789ABCDEF0, 1, M64, IMIN, IMAX, 0x80000000]
BINARY = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
          "shl", "shr_s", "shr_u", "rotl", "rotr",
          "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
SHIFTS = {"shl", "shr_s", "shr_u", "rotl", "rotr"}
COMPARE = {"eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"}
DIVS = {"div_s", "div_u", "rem_s", "rem_u"}
UNARY = ["clz", "ctz", "popcnt", "eqz", "extend8_s", "extend16_s", "extend32_s"]
A_BASE, B_BASE, OUT = 0x1000, 0x3000, 0x100


def s64(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def _data(addr: int, vals: list[int]) -> str:
    raw = b"".join((v & M64).to_bytes(8, "little") for v in vals)
    return f'(data (i32.const {addr}) "' + "".join("\\%02x" % b for b in raw) + '")'


# $print takes an i64 parameter: every test also passes i64 arguments.
_PRINT = f"""
  (import "env" "output_byte" (func $out (param i32)))
  (func $print (param $v i64) (local $i i32)
    (i64.store (i32.const {OUT}) (local.get $v))
    (loop $l
      (call $out (i32.load8_u offset={OUT} (local.get $i)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 8)))))"""


def _result(op: str, expr: str) -> str:
    name = op[4:]
    return f"(i64.extend_i32_u {expr})" if name in COMPARE or name == "eqz" else expr


def runtime_wat(op: str, left: list[int], right: list[int]) -> str:
    """op on every (a, b) of left x right, both loaded from memory."""
    expr = _result(op, f"({op} (i64.load (i32.add (i32.const {A_BASE}) (local.get $i))) "
                       f"(i64.load (i32.add (i32.const {B_BASE}) (local.get $j))))")
    return f"""(module{_PRINT}
  (memory 1)
  {_data(A_BASE, left)}
  {_data(B_BASE, right)}
  (func (export "compute") (local $i i32) (local $j i32)
    (loop $li
      (local.set $j (i32.const 0))
      (loop $lj
        (call $print {expr})
        (br_if $lj (i32.ne (local.tee $j (i32.add (local.get $j) (i32.const 8))) (i32.const {8 * len(right)}))))
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8))) (i32.const {8 * len(left)}))))))
"""


def const_wat(op: str, left: list[int], right: list[int], zext: bool = False) -> str:
    """op on every a of `left` (from memory) with each b of `right` as an
    i64.const right operand (zext: as i64.extend_i32_u of an i32 loaded at
    run time, so only its high word is known), one function per b."""
    def operand(b: int) -> str:
        if zext:
            return f"(i64.extend_i32_u (i32.load (i32.const {B_BASE + 8 * right.index(b)})))"
        return f"(i64.const {s64(b)})"
    funcs = "".join(f"""
  (func $c{k} (param $x i64) (result i64) {_result(op, f"({op} (local.get $x) {operand(b)})")})"""
                    for k, b in enumerate(right))
    calls = "".join(f"\n      (call $print (call $c{k} (local.get $a)))" for k in range(len(right)))
    return f"""(module{_PRINT}
  (memory 1)
  {_data(A_BASE, left)}
  {_data(B_BASE, right)}{funcs}
  (func (export "compute") (local $i i32) (local $a i64)
    (loop $li
      (local.set $a (i64.load (i32.add (i32.const {A_BASE}) (local.get $i))))
      {calls}
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8))) (i32.const {8 * len(left)}))))))
"""


def unary_wat(op: str, vals: list[int]) -> str:
    return f"""(module{_PRINT}
  (memory 1)
  {_data(A_BASE, vals)}
  (func (export "compute") (local $i i32)
    (loop $li
      (call $print {_result(op, f"({op} (i64.load (i32.add (i32.const {A_BASE}) (local.get $i))))")})
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8))) (i32.const {8 * len(vals)}))))))
"""


def check(wat: str, max_steps: int = 30_000_000):
    """The reference's output and trap equal wasmtime's on the original module."""
    wasm = wasmtime.wat2wasm(wat)
    prog = compile_wasm(wasm, "test")
    res = run_reference(prog, max_steps=max_steps)
    want_out, want_trap = wasmtime_run(wasm)
    assert res.status != "budget-exhausted"
    assert res.trap == want_trap, (res.trap, want_trap)
    if res.output != want_out:
        i = next(i for i in range(0, max(len(res.output), len(want_out)), 8)
                 if res.output[i:i + 8] != want_out[i:i + 8])
        raise AssertionError(f"result #{i // 8}: machine {res.output[i:i + 8][::-1].hex()} "
                             f"!= wasmtime {want_out[i:i + 8][::-1].hex()}")
    return res


def _left(op: str) -> list[int]:
    return SHIFT_VALUES if op in SHIFTS else [v for v in EDGES if not (op == "div_s" and v == IMIN)]


def _right(op: str) -> list[int]:
    if op in SHIFTS:
        return SHIFT_COUNTS
    return [v for v in EDGES if v] if op in DIVS else EDGES


@pytest.mark.parametrize("op", BINARY)
def test_binary_runtime_operands(op):
    check(runtime_wat("i64." + op, _left(op), _right(op)))


@pytest.mark.parametrize("op", BINARY)
def test_binary_constant_right_operand(op):
    check(const_wat("i64." + op, _left(op), _right(op)))


@pytest.mark.parametrize("op", BINARY)
def test_binary_zero_extended_right_operand(op):
    right = [v & M32 for v in _right(op)]
    right = [v for i, v in enumerate(right) if v not in right[:i] and (v or op not in DIVS)]
    check(const_wat("i64." + op, _left(op), right, zext=True))


@pytest.mark.parametrize("op", BINARY)
def test_binary_random_operands(op):
    rng = random.Random("i64." + op)
    left = [rng.getrandbits(64) for _ in range(10)] + [rng.getrandbits(rng.randint(1, 63)) for _ in range(6)]
    right = [rng.getrandbits(64) for _ in range(6)] + [rng.getrandbits(rng.randint(1, 63)) | 1 for _ in range(6)]
    if op == "div_s":
        left = [v for v in left if v != IMIN]
    check(runtime_wat("i64." + op, left, right))
    check(const_wat("i64." + op, left, right))


def test_mul_by_wide_constants():
    # the multipliers of splitmix64, xorshift64*, FNV-1a 64 and a few shapes
    consts = [0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x2545F4914F6CDD1D, 0x100000001B3,
              0x9E3779B97F4A7C15, 3, 10, M64, IMIN + 1, 0xFFFFFFFF, 1 << 32 | 1, 0x80000001]
    check(const_wat("i64.mul", EDGES, consts))


@pytest.mark.parametrize("op", ["div_u", "rem_u", "div_s", "rem_s"])
def test_division_by_constants(op):
    consts = [1, 2, 3, 7, 10, 1 << 31, (1 << 31) + 1, M32, 1 << 32, 1 << 40, IMAX, IMIN, M64, 1 << 63 | 5]
    if op == "div_s":
        left = [v for v in EDGES if v != IMIN]
    else:
        left = EDGES
    check(const_wat("i64." + op, left, consts))


@pytest.mark.parametrize("op", UNARY)
def test_unary(op):
    rng = random.Random("i64." + op)
    vals = EDGES + [1 << k for k in range(64)] + [rng.getrandbits(64) for _ in range(16)]
    vals += [0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000]
    check(unary_wat("i64." + op, vals))


def test_conversions():
    vals = [0, 1, M32, 0x80000000, 0x7FFFFFFF, 0x12345678, 0xFEDCBA98]
    body = "".join(f"""
    (call $print (i64.extend_i32_s (i32.load (i32.const {A_BASE + 8 * k}))))
    (call $print (i64.extend_i32_u (i32.load (i32.const {A_BASE + 8 * k}))))
    (call $print (i64.extend_i32_u (i32.wrap_i64 (i64.load (i32.const {A_BASE + 8 * k})))))"""
                   for k in range(len(vals)))
    check(f"""(module{_PRINT} (memory 1) {_data(A_BASE, [v | (0xABCD0000 << 32) for v in vals])}
  (func (export "compute") {body}))""")


# ---------------------------------------------------------------- traps

def _div_wat(op: str, a: int, b: int, form: str) -> str:
    if form == "runtime":
        return runtime_wat(op, [a], [b])
    return const_wat(op, [a], [b])


@pytest.mark.parametrize("op", ["div_s", "div_u", "rem_s", "rem_u"])
@pytest.mark.parametrize("form", ["runtime", "const"])
def test_division_by_zero_traps(op, form):
    for a in (0, 7, M64, IMIN, 1 << 32):
        assert check(_div_wat("i64." + op, a, 0, form)).trap == "div_zero"


@pytest.mark.parametrize("form", ["runtime", "const"])
def test_div_s_overflow_traps_and_rem_s_does_not(form):
    assert check(_div_wat("i64.div_s", IMIN, M64, form)).trap == "int_overflow"
    res = check(_div_wat("i64.rem_s", IMIN, M64, form))
    assert res.trap is None and res.output == bytes(8)
    # nearby operands do not trap
    for a, b in ((IMIN + 1, M64), (IMIN, 1), (IMIN, M64 - 1), (IMIN | 1 << 32, M64), (IMIN, M32)):
        assert check(_div_wat("i64.div_s", a, b, form)).trap is None


def test_div_s_zero_divisor_checked_before_overflow():
    assert check(runtime_wat("i64.div_s", [IMIN], [0])).trap == "div_zero"


LOADS = {"i64.load": 8, "i64.load8_s": 1, "i64.load8_u": 1, "i64.load16_s": 2, "i64.load16_u": 2,
         "i64.load32_s": 4, "i64.load32_u": 4}
STORES = {"i64.store": 8, "i64.store8": 1, "i64.store16": 2, "i64.store32": 4}


def _mem_wat(pages: int, body: str) -> str:
    """A memory of `pages` whose last 16 bytes are 0x80..0x8f (stored at run
    time: a data segment there would leave no room for the input)."""
    end = pages * 65536
    return f"""(module{_PRINT} (memory {pages})
  (func (export "compute")
    (i64.store (i32.const {end - 16}) (i64.const {s64(0x8786858483828180)}))
    (i64.store (i32.const {end - 8}) (i64.const {s64(0x8F8E8D8C8B8A8988)}))
    {body}))"""


# (address, offset) pairs around and past the end of a memory of `size` bytes
def _near_end(size: int, w: int) -> list[tuple[int, int]]:
    return [(size - w + 1, 0), (size - 4, 0), (size - 8, 4), (size - w, 1), (0, size), (size - 1, 0),
            (M32 - 3, 0), (M32, 8), (size - 16, M32 - 20), (size - 8, 0), (size - 12, 4)]


@pytest.mark.parametrize("pages", [1, 160])     # compiler bounds checks / the machine's own
@pytest.mark.parametrize("op", sorted(LOADS))
def test_loads_at_the_end_of_memory(op, pages):
    size, w = pages * 65536, LOADS[op]
    for addr in range(size - w - 3, size - w + 1):
        check(_mem_wat(pages, f"(call $print ({op} (i32.const {addr})))"))
    for addr, off in _near_end(size, w):
        res = check(_mem_wat(pages, f"(call $print (i64.const 1)) (call $print ({op} offset={off} (i32.const {addr})))"))
        if addr + off + w > size:
            assert res.trap == "oob" and res.output == b"\1" + bytes(7), (addr, off)


@pytest.mark.parametrize("pages", [1, 160])
@pytest.mark.parametrize("op", sorted(STORES))
def test_stores_at_the_end_of_memory(op, pages):
    size, w = pages * 65536, STORES[op]
    v = 0x0102030405060708
    for addr in range(size - w - 3, size - w + 1):
        check(_mem_wat(pages, f"({op} (i32.const {addr}) (i64.const {v})) (call $print (i64.load (i32.const {size - 8}))) (call $print (i64.load (i32.const {size - 16})))"))
    for addr, off in _near_end(size, w):
        res = check(_mem_wat(pages, f"({op} offset={off} (i32.const {addr}) (i64.const {v})) (call $print (i64.const 1))"))
        if addr + off + w > size:
            assert res.trap == "oob" and res.output == b"", (addr, off)


def test_load_store_values_and_offsets():
    vals = [0x8081828384858687, 0x7F00FF017FFF8000, 0x0000000080000000]
    body = ""
    for k, v in enumerate(vals):
        a = 0x2000 + 16 * k
        body += f"(i64.store offset=3 (i32.const {a}) (i64.const {s64(v)}))"
        for op in sorted(LOADS):
            for off in (3, 4, 5, 7):
                body += f"(call $print ({op} offset={off} (i32.const {a})))"
        for op in sorted(STORES):
            body += f"({op} offset=1 (i32.const {a + 8}) (i64.const {s64(~v)})) (call $print (i64.load (i32.const {a + 8})))"
    check(_mem_wat(1, body))


# ---------------------------------------------------------------- values in the machine

def test_locals_globals_params_results_select_and_branches():
    wat = f"""(module{_PRINT} (memory 1)
  (global $g (mut i64) (i64.const -81985529216486896))
  (global $k i64 (i64.const 0x7fffffff80000000))
  (global $h (mut i32) (i32.const 5))
  (func $pair (param $a i64) (param $x i32) (param $b i64) (result i64)
    (local $t i64) (local $u i32)
    (local.set $t (i64.add (local.get $a) (local.get $b)))
    (local.set $u (i32.add (local.get $x) (i32.const 1)))
    (i64.add (local.tee $t (i64.mul (local.get $t) (i64.extend_i32_u (local.get $u)))) (local.get $t)))
  (func $pick (param $c i32) (param $a i64) (param $b i64) (result i64)
    (select (local.get $a) (local.get $b) (local.get $c)))
  (func $typed (param $c i32) (param $a i64) (param $b i64) (result i64)
    (select (result i64) (local.get $a) (local.get $b) (local.get $c)))
  (func $early (param $a i64) (result i64)
    ;; branches and returns that carry an i64 over surplus values
    (i64.const 99)
    (block $b (result i64)
      (i32.const 7)
      (i64.const 5)
      (br_if $b (local.get $a) (i64.eqz (local.get $a)))
      (drop)
      (drop)
      (if (i64.lt_s (local.get $a) (i64.const 0))
        (then (i64.const 1) (local.get $a) (return)))
      (i64.const 3)
      (i64.add (local.get $a))
      (br 0))
    (i64.add))
  (func $blocks (param $a i64) (result i64)
    (if (result i64) (i64.gt_u (local.get $a) (i64.const 100))
      (then (i64.shr_u (local.get $a) (i64.const 3)))
      (else (loop $l (result i64)
        (local.set $a (i64.add (local.get $a) (i64.const 0x100000000)))
        (br_if $l (i64.lt_u (local.get $a) (i64.const 0x500000000)))
        (local.get $a)))))
  (func (export "compute")
    (call $print (global.get $g))
    (call $print (global.get $k))
    (global.set $g (i64.xor (global.get $g) (global.get $k)))
    (call $print (global.get $g))
    (call $print (i64.extend_i32_u (global.get $h)))
    (call $print (call $pair (i64.const -1) (i32.const 2) (i64.const 0x100000000)))
    (call $print (call $pick (i32.const 1) (i64.const 0x1111111122222222) (i64.const 0x3333333344444444)))
    (call $print (call $pick (i32.const 0) (i64.const 0x1111111122222222) (i64.const 0x3333333344444444)))
    (call $print (call $typed (i32.const 0) (i64.const 1) (i64.const -1)))
    (call $print (call $early (i64.const 0)))
    (call $print (call $early (i64.const -5)))
    (call $print (call $early (i64.const 0x700000000)))
    (call $print (call $blocks (i64.const 7)))
    (call $print (call $blocks (i64.const 0xffffffffff)))
    (drop (i64.const 4)) (drop (i32.const 4))))"""
    res = check(wat)
    assert len(res.output) == 13 * 8


def test_i64_global_initialisers_and_data_offsets():
    # extended-const and global.get initialisers are evaluated by the toolchain
    wat = f"""(module{_PRINT} (memory 1)
  (global $a i64 (i64.const 0x123456789))
  (global $b i64 (global.get $a))
  (global $c i32 (i32.const 40))
  (global $d (mut i64) (i64.const -1))
  (data (global.get $c) "\\2a")
  (func (export "compute")
    (call $print (global.get $a)) (call $print (global.get $b)) (call $print (global.get $d))
    (call $print (i64.load8_u (i32.const 40)))))"""
    check(wat)


def test_c_long_long():
    src = r"""
    static unsigned long long fnv(const char *s) {
        unsigned long long h = 0xcbf29ce484222325ULL;
        while (*s) { h ^= (unsigned char)*s++; h *= 0x100000001b3ULL; }
        return h;
    }
    void compute(const char *in) {
        long long x = parse_int(&in);
        unsigned long long h = fnv("isowasm");
        long long q = (long long)h / (x ? x : 1), r = (long long)h % (x ? x : 1);
        unsigned u = (unsigned)(h >> 35) ^ (unsigned)(q >> 7) ^ (unsigned)r;
        out_hex(u); out_nl();
        out_int((int)(x * x * x >> 20)); out_nl();
    }"""
    from isowasm.backends.base import Case
    from isowasm.backends.wasmtime_backend import WasmtimeBackend
    wt = WasmtimeBackend()
    for inp in (b"12345", b"-7", b"0"):
        wasm, prog = compile_source(src, "c", "ll.c", inp)
        res = run_reference(prog)
        want = wt.run(Case("c", prog, wasm), max_steps=10**7)
        assert (res.output, res.status) == (want.output, want.status) and res.status == "halted"


# ---------------------------------------------------------------- cost

# Worst cost in machine steps of one i64 op with run-time operands (call
# and return included), beyond loading the operands: the lowering must stay
# O(64) and never O(value). Measured worst values are in the comments.
STEP_BOUND = {
    "add": 20, "sub": 20, "eq": 20, "lt_u": 20, "ge_s": 20, "eqz": 10,   # 13, 13, 10, 13, 13, 6
    "mul": 3200,                                                        # ~2,600
    "div_u": 4500, "rem_u": 4500, "div_s": 4600, "rem_s": 4600,         # ~3,500
    "and": 2000, "or": 2000, "xor": 2000,                              # 2 x the i32 op
    "shl": 900, "shr_u": 1200, "shr_s": 1200, "rotl": 1000, "rotr": 1000,
    "clz": 250, "ctz": 450, "popcnt": 900,
    "extend8_s": 250, "extend16_s": 300, "extend32_s": 10,
}
WORST = [0, 1, M64, IMIN, IMAX, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA, 1 << 32, M32,
         0x80000000, 0x7FFF00017FFF0001, 0xFFFFFFFF7FFFFFFF, 3, 63, 65]


def _one_op_wat(op: str, a: int, b: int | None) -> str:
    operands = f"(i64.load (i32.const {A_BASE}))" + ("" if b is None else f" (i64.load (i32.const {B_BASE}))")
    body = f"(drop ({op} {operands}))" if op else ""
    return f"""(module (memory 160) {_data(A_BASE, [a])} {_data(B_BASE, [b or 0])}
  (func (export "compute") {body}))"""


def op_cost(op: str, a: int, b: int | None) -> int:
    def steps(o):
        return run_reference(compile_wasm(wasmtime.wat2wasm(_one_op_wat(o, a, b)))).steps
    loads = 7 if b is None else 14          # i32.const + the two-word load, per operand
    return steps(op) - steps(None) - loads - 2


@pytest.mark.parametrize("op", sorted(STEP_BOUND))
def test_step_bound(op):
    unary = op in UNARY
    worst = 0
    for a in WORST:
        for b in [None] if unary else WORST:
            if op in DIVS and (b == 0 or (op == "div_s" and (a, b) == (IMIN, M64))):
                continue
            worst = max(worst, op_cost("i64." + op, a, b))
    assert worst <= STEP_BOUND[op], f"i64.{op} costs {worst} steps on its worst operands"


# ---------------------------------------------------------------- the rest of the integer language

def test_multi_value_functions_and_blocks():
    wat = f"""(module{_PRINT} (memory 1)
  (func $divmod (param $a i64) (param $b i64) (result i64 i64)
    (i64.div_u (local.get $a) (local.get $b)) (i64.rem_u (local.get $a) (local.get $b)))
  (func $three (param $x i32) (result i32 i64 i32)
    (local.get $x) (i64.extend_i32_s (local.get $x)) (i32.add (local.get $x) (i32.const 1)))
  (func $swap (param $a i64) (param $b i32) (result i32 i64) (local.get $b) (local.get $a))
  (func $blocks (param $n i32) (result i64)
    (local $s i64)
    ;; a block with parameters and two results; a branch carrying both
    (i64.const 10) (i32.const 3)
    (block $b (param i64 i32) (result i64 i32)
      (br_if $b (i32.eqz (local.get $n)))
      (i32.add (local.get $n))
      (local.set $n)
      (i64.mul (i64.const 7))
      (local.get $n))
    (i64.extend_i32_u)
    (i64.add)
    ;; a loop with a parameter: sums 1..4 into the carried i64
    (i64.const 0) (i32.const 4)
    (loop $l (param i64 i32) (result i64)
      (local.set $n)
      (i64.add (i64.extend_i32_u (local.get $n)))
      (local.get $n)
      (i32.sub (i32.const 1))
      (local.tee $n)
      (local.get $n)
      (br_if $l)
      (drop))
    (i64.add)
    ;; if with a parameter, both arms
    (i64.const 5)
    (if (param i64) (result i64) (i32.gt_u (local.get $n) (i32.const 100))
      (then (i64.add (i64.const 1)))
      (else (i64.sub (i64.const 1))))
    (i64.add))
  (func $table (param $k i32) (result i64 i32)
    ;; br_table carrying two values past a surplus one
    (block $a (result i64 i32)
      (block $b (result i64 i32)
        (i32.const 99)
        (i64.const 11) (i32.const 12)
        (br_table $a $b $a (local.get $k)))
      (local.set $k)
      (i64.add (i64.const 100))
      (i32.add (local.get $k) (i32.const 100))))
  (func (export "compute")
    (local $q i64) (local $r i64) (local $i i32)
    (call $divmod (i64.const 1000000000007) (i64.const 97))
    (local.set $r) (local.set $q)
    (call $print (local.get $q)) (call $print (local.get $r))
    (call $three (i32.const -5))
    (call $print (i64.extend_i32_u)) (call $print) (call $print (i64.extend_i32_u))
    (call $swap (i64.const 0x123456789) (i32.const 9))
    (call $print) (call $print (i64.extend_i32_u))
    (call $print (call $blocks (i32.const 0)))
    (call $print (call $blocks (i32.const 2)))
    (call $table (i32.const 0)) (call $print (i64.extend_i32_u)) (call $print)
    (call $table (i32.const 1)) (call $print (i64.extend_i32_u)) (call $print)
    (call $table (i32.const 7)) (call $print (i64.extend_i32_u)) (call $print)))"""
    check(wat)


def test_extended_const_initialisers():
    wat = f"""(module{_PRINT} (memory 1)
  (global $a i32 (i32.const 40))
  (global $b i32 (i32.add (global.get $a) (i32.const 2)))
  (global $c i64 (i64.mul (i64.const 0x100000000) (i64.sub (i64.const 3) (i64.const 1))))
  (global $d (mut i32) (i32.mul (global.get $b) (i32.const -3)))
  (global $e i64 (i64.add (global.get $c) (i64.const -1)))
  (data (i32.add (global.get $a) (i32.const 8)) "\\2a")
  (func (export "compute")
    (call $print (i64.extend_i32_u (global.get $b)))
    (call $print (global.get $c))
    (call $print (i64.extend_i32_s (global.get $d)))
    (call $print (global.get $e))
    (call $print (i64.load8_u (i32.const 48)))))"""
    check(wat)
