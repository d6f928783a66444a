"""Every i32 op through the toolchain, against wasmtime.

Each op gets one WAT program that applies it to all pairs of edge values
(0, ±1, INT_MIN, INT_MAX, INT_MIN+1, INT_MAX-1, powers of two ±1) and writes
every result as 4 bytes through output_byte; the reference executor's output
must equal wasmtime's byte for byte. Operands are read from a data segment
at run time (so nothing can be folded) and, separately, the right operand
is written as an i32.const (so the toolchain's constant expansions in
lowering.py are exercised). A last test bounds the steps each lowered op
costs on its worst operands: the lowering must stay O(32), never O(value).
"""

from __future__ import annotations

import faulthandler
import functools
import random

import pytest
import wasmtime

from isowasm.toolchain import compile_wasm
from isowasm.spec.reference import run_reference

# wasmtime turns wasm traps into signals caught by handlers it installs with
# its first Engine. When an Engine exists before pytest enables faulthandler
# (conftest builds the backends at import), faulthandler's handlers shadow
# wasmtime's and the first trap kills the process ("Illegal instruction").
# Disabling faulthandler puts wasmtime's handlers back.
if faulthandler.is_enabled():
    faulthandler.disable()

M32 = 0xFFFFFFFF
INT_MIN, INT_MAX = 0x80000000, 0x7FFFFFFF


def _edges(ks) -> list[int]:
    vals = [0, 1, M32, INT_MIN, INT_MAX, INT_MIN + 1, INT_MAX - 1]
    for k in ks:
        vals += [1 << k, (1 << k) - 1, (1 << k) + 1, (-(1 << k)) & M32]
    out = []
    for v in vals:
        if v & M32 not in out:
            out.append(v & M32)
    return out


PAIR_VALUES = _edges((1, 2, 4, 5, 8, 15, 16, 24, 30, 31)) + [0x55555555, 0xAAAAAAAA, 10, 1000, 0xDEADBEEF]
UNARY_VALUES = _edges(range(1, 32)) + [0x55555555, 0xAAAAAAAA, 0xDEADBEEF, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF]
SHIFT_COUNTS = list(range(0, 34)) + [63, 64, 100, M32, INT_MIN, INT_MAX, 0xFFFFFFE1]

BINARY = ["i32.add", "i32.sub", "i32.mul", "i32.div_s", "i32.div_u", "i32.rem_s", "i32.rem_u",
          "i32.and", "i32.or", "i32.xor", "i32.shl", "i32.shr_s", "i32.shr_u", "i32.rotl", "i32.rotr",
          "i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u", "i32.gt_s", "i32.gt_u", "i32.le_s",
          "i32.le_u", "i32.ge_s", "i32.ge_u"]
UNARY = ["i32.clz", "i32.ctz", "i32.popcnt", "i32.extend8_s", "i32.extend16_s", "i32.eqz"]
SHIFTS = {"i32.shl", "i32.shr_s", "i32.shr_u", "i32.rotl", "i32.rotr"}
A_BASE, B_BASE, OUT = 0x1000, 0x3000, 0x100

_PRINT = f"""
  (func $print (param $v i32)
    (i32.store (i32.const {OUT}) (local.get $v))
    (call $out (i32.load8_u (i32.const {OUT})))
    (call $out (i32.load8_u (i32.const {OUT + 1})))
    (call $out (i32.load8_u (i32.const {OUT + 2})))
    (call $out (i32.load8_u (i32.const {OUT + 3}))))"""


def _data(addr: int, vals: list[int]) -> str:
    raw = b"".join(v.to_bytes(4, "little") for v in vals)
    text = "".join("\\%02x" % b for b in raw)
    return f'(data (i32.const {addr}) "{text}")'


def _right_values(op: str) -> list[int]:
    vals = SHIFT_COUNTS if op in SHIFTS else PAIR_VALUES
    if op in ("i32.div_s", "i32.div_u", "i32.rem_s", "i32.rem_u"):
        vals = [v for v in vals if v]   # division by zero is tested as a trap below
    return vals


def _left_values(op: str) -> list[int]:
    vals = PAIR_VALUES
    if op == "i32.div_s":  # INT_MIN / -1 traps; tested below
        vals = [v for v in vals if v != INT_MIN]
    return vals


def runtime_wat(op: str, left: list[int], right: list[int]) -> str:
    """op on every (a, b) of left x right, both loaded from memory."""
    return f"""(module
  (import "env" "output_byte" (func $out (param i32)))
  (memory 1)
  {_data(A_BASE, left)}
  {_data(B_BASE, right)}{_PRINT}
  (func (export "compute")
    (local $i i32) (local $j i32)
    (loop $li
      (local.set $j (i32.const 0))
      (loop $lj
        (call $print ({op} (i32.load (i32.add (i32.const {A_BASE}) (local.get $i)))
                           (i32.load (i32.add (i32.const {B_BASE}) (local.get $j)))))
        (br_if $lj (i32.ne (local.tee $j (i32.add (local.get $j) (i32.const 4))) (i32.const {4 * len(right)}))))
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const {4 * len(left)}))))))
"""


def const_wat(op: str, left: list[int], right: list[int]) -> str:
    """op on every a of `left` (from memory) with each b of `right` written
    as an i32.const right operand, one function per constant."""
    funcs = "".join(f"""
  (func $c{k} (param $x i32) (result i32) ({op} (local.get $x) (i32.const {b})))""" for k, b in enumerate(right))
    calls = "".join(f"\n        (call $print (call $c{k} (local.get $a)))" for k in range(len(right)))
    return f"""(module
  (import "env" "output_byte" (func $out (param i32)))
  (memory 1)
  {_data(A_BASE, left)}{_PRINT}{funcs}
  (func (export "compute")
    (local $i i32) (local $a i32)
    (loop $li
      (local.set $a (i32.load (i32.add (i32.const {A_BASE}) (local.get $i))))
      {calls}
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const {4 * len(left)}))))))
"""


def unary_wat(op: str, vals: list[int]) -> str:
    return f"""(module
  (import "env" "output_byte" (func $out (param i32)))
  (memory 1)
  {_data(A_BASE, vals)}{_PRINT}
  (func (export "compute")
    (local $i i32)
    (loop $li
      (call $print ({op} (i32.load (i32.add (i32.const {A_BASE}) (local.get $i)))))
      (br_if $li (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const {4 * len(vals)}))))))
"""


@functools.lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def wasmtime_run(wasm: bytes) -> tuple[bytes, str | None]:
    """(output, trap name or None) of running compute in wasmtime."""
    store = wasmtime.Store(_engine())
    out = bytearray()
    linker = wasmtime.Linker(_engine())
    linker.define_func("env", "output_byte", wasmtime.FuncType([wasmtime.ValType.i32()], []),
                       lambda v: out.append(v & 0xFF))
    inst = linker.instantiate(store, wasmtime.Module(_engine(), wasm))
    try:
        inst.exports(store)["compute"](store)
    except wasmtime.Trap as e:
        names = {wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "div_zero",
                 wasmtime.TrapCode.INTEGER_OVERFLOW: "int_overflow",
                 wasmtime.TrapCode.UNREACHABLE: "unreachable",
                 wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "oob"}
        return bytes(out), names.get(e.trap_code, str(e.trap_code))
    return bytes(out), None


def check_against_wasmtime(wat: str, max_steps: int = 30_000_000):
    wasm = wasmtime.wat2wasm(wat)
    prog = compile_wasm(wasm, "test")
    res = run_reference(prog, max_steps=max_steps)
    want_out, want_trap = wasmtime_run(wasm)
    assert res.status != "budget-exhausted"
    assert res.trap == want_trap
    if res.output != want_out:
        # Name the first differing result (4 bytes each) for the failure message.
        i = next(i for i in range(0, max(len(res.output), len(want_out)), 4)
                 if res.output[i:i + 4] != want_out[i:i + 4])
        raise AssertionError(f"result #{i // 4}: machine {res.output[i:i + 4].hex()} "
                             f"!= wasmtime {want_out[i:i + 4].hex()}")
    return res


@pytest.mark.parametrize("op", BINARY)
def test_binary_runtime_operands(op):
    check_against_wasmtime(runtime_wat(op, _left_values(op), _right_values(op)))


@pytest.mark.parametrize("op", BINARY)
def test_binary_constant_right_operand(op):
    check_against_wasmtime(const_wat(op, _left_values(op), _right_values(op)))


@pytest.mark.parametrize("op", BINARY)
def test_binary_random_operands(op):
    # Beyond the edges: random values with random bit patterns, seeded by
    # the op's name so every run tests the same ones.
    rng = random.Random(op)
    left = [rng.getrandbits(32) for _ in range(12)] + [rng.getrandbits(rng.randint(1, 31)) for _ in range(8)]
    right = [rng.getrandbits(32) for _ in range(8)] + [rng.getrandbits(rng.randint(1, 31)) | 1 for _ in range(8)]
    right = [v for v in right if v]
    check_against_wasmtime(runtime_wat(op, left, right))
    check_against_wasmtime(const_wat(op, left, right))


@pytest.mark.parametrize("op", UNARY)
def test_unary(op):
    rng = random.Random(op)
    check_against_wasmtime(unary_wat(op, UNARY_VALUES + [rng.getrandbits(32) for _ in range(32)]))


@pytest.mark.parametrize("op", ["i32.div_s", "i32.div_u", "i32.rem_s", "i32.rem_u"])
@pytest.mark.parametrize("form", ["runtime", "const"])
def test_division_by_zero_traps(op, form):
    make = runtime_wat if form == "runtime" else const_wat
    res = check_against_wasmtime(make(op, [7], [0]))
    assert res.trap == "div_zero"


@pytest.mark.parametrize("form", ["runtime", "const"])
def test_div_s_overflow_traps_and_rem_s_does_not(form):
    make = runtime_wat if form == "runtime" else const_wat
    assert check_against_wasmtime(make("i32.div_s", [INT_MIN], [M32])).trap == "int_overflow"
    res = check_against_wasmtime(make("i32.rem_s", [INT_MIN], [M32]))
    assert res.trap is None and res.output == b"\0\0\0\0"


def test_div_s_zero_divisor_checked_before_overflow():
    assert check_against_wasmtime(runtime_wat("i32.div_s", [INT_MIN], [0])).trap == "div_zero"


# Worst-case cost, in machine steps, of one lowered op with run-time operands
# (call and return included). Measured values are in the toolchain's report;
# the bounds leave headroom but fail any loop that runs value-many times.
STEP_BOUND = {
    "i32.mul": 800, "i32.div_u": 1200, "i32.rem_u": 1200, "i32.div_s": 1300, "i32.rem_s": 1300,
    "i32.and": 1000, "i32.or": 1000, "i32.xor": 1000, "i32.shl": 300, "i32.shr_u": 800,
    "i32.shr_s": 800, "i32.rotl": 700, "i32.rotr": 700,
    "i32.clz": 200, "i32.ctz": 400, "i32.popcnt": 450, "i32.extend8_s": 200, "i32.extend16_s": 250,
}
WORST = [0, 1, M32, INT_MIN, INT_MAX, 0x55555555, 0xAAAAAAAA, 31, 32, 0x7FFF0001]


def _one_op_wat(op: str, a: int, b: int | None, const: bool = False) -> str:
    right = f" (i32.const {b})" if const else f" (i32.load (i32.const {B_BASE}))"
    operands = f"(i32.load (i32.const {A_BASE}))" + ("" if b is None else right)
    body = f"(drop ({op} {operands}))" if op else ""
    return f"""(module (memory 160) {_data(A_BASE, [a])} {_data(B_BASE, [b or 0])}
  (func (export "compute") {body}))"""


def op_cost(op: str, a: int, b: int | None, const: bool = False) -> int:
    """Steps of `op a b` beyond those of loading its operands and dropping
    the result. With `const`, b is an i32.const the toolchain folds into the
    expansion (it costs no step of its own)."""
    def steps(o):
        return run_reference(compile_wasm(wasmtime.wat2wasm(_one_op_wat(o, a, b, const)))).steps
    operands = 2 if b is None or const else 4   # i32.const + i32.load per loaded operand
    return steps(op) - steps(None) - operands - 1


@pytest.mark.parametrize("op", sorted(STEP_BOUND))
def test_step_bound(op):
    unary = op in ("i32.clz", "i32.ctz", "i32.popcnt", "i32.extend8_s", "i32.extend16_s")
    worst = 0
    for a in WORST:
        for b in [None] if unary else WORST:
            if op.startswith(("i32.div", "i32.rem")) and (b == 0 or (op == "i32.div_s" and (a, b) == (INT_MIN, M32))):
                continue
            worst = max(worst, op_cost(op, a, b))
    assert worst <= STEP_BOUND[op], f"{op} costs {worst} steps on its worst operands"


# Constant right operands expand inline (lowering.py); the longest is a
# shift right by 1 (31 bits extracted at ~10 steps each).
CONST_BOUND = 450


@pytest.mark.parametrize("op", ["i32.mul", "i32.and", "i32.or", "i32.xor", "i32.shl", "i32.shr_s",
                                "i32.shr_u", "i32.rotl", "i32.rotr", "i32.div_u", "i32.rem_u"])
def test_constant_expansion_step_bound(op):
    consts = SHIFT_COUNTS if op in SHIFTS else [v for v in PAIR_VALUES if v]
    if op in ("i32.div_u", "i32.rem_u"):
        consts = [1 << k for k in range(32)]        # the expanded cases: powers of two
    worst = max(op_cost(op, a, c, const=True) for a in (M32, INT_MIN, 0x55555555) for c in consts)
    assert worst <= CONST_BOUND, f"{op} with a constant costs {worst} steps"
