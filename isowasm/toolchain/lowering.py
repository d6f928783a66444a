"""Lowering of every i32 operation the machine lacks — the one place to look.

Each wasm i32 op is one of:

* NATIVE: the machine has it (spec/MACHINE.md §4); emitted as is.
* a call to a runtime helper in runtime.wat (any operands): the algorithm
  and its cost are written there, next to the code. All are bit-serial
  loops of at most 32 iterations: bits are read MSB first with `lt_s 0`
  and values shifted left by doubling (`x + x`), because the machine has
  neither shifts nor masks.
* an inline expansion when the right operand is a constant (clang puts
  constants on the right): the same bit-serial ideas with the loop unrolled
  over the constant's bits, which is much cheaper than the general helper
  (e.g. `x << 2` is 6 steps, `x * 10` 12 steps). Written below.

| op                     | runtime operands     | constant right operand c       |
|------------------------|----------------------|--------------------------------|
| mul                    | helper `mul`         | shift-and-add over c's bits    |
| div_u / rem_u          | helper `div_u/rem_u` | c = 2^k: shr_u k / and 2^k-1   |
| div_s / rem_s          | helper               | helper                         |
| and                    | helper `and`         | select the bits of c or of ~c  |
| or / xor               | helper (via and)     | from and: (x&~c)+c, x+c-2(x&c) |
| shl / shr_s / shr_u    | helper               | k doublings / extract 32-k bits |
| rotl / rotr            | helper               | shl + shr_u                    |
| clz / ctz / popcnt     | helper               | —                              |
| extend8_s / extend16_s | inline: shl then shr_s by 24 / 16                      |

The emitter `em` given to each function has: emit(name, imm=0), temp(i)
(the i-th scratch local of the current function) and helper(name) (emit a
call to a runtime helper). Scratch locals: 0 doubling scratch, 1 the value
being read bit by bit, 2 and 3 copies kept across a nested expansion.
"""

from __future__ import annotations

M32 = 0xFFFFFFFF

NATIVE = {"i32.add", "i32.sub", "i32.eqz", "i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u",
          "i32.gt_s", "i32.gt_u", "i32.le_s", "i32.le_u", "i32.ge_s", "i32.ge_u"}

# Lowered op -> runtime.wat helper (the function exported under that name).
HELPER = {op: op[4:] for op in (
    "i32.mul", "i32.div_s", "i32.div_u", "i32.rem_s", "i32.rem_u", "i32.and", "i32.or",
    "i32.xor", "i32.shl", "i32.shr_s", "i32.shr_u", "i32.rotl", "i32.rotr",
    "i32.clz", "i32.ctz", "i32.popcnt")}

NATIVE_BINARY = NATIVE - {"i32.eqz"}
# Lowered binary ops: the compiler hands lower() a constant right operand.
BINARY = {"i32.mul", "i32.div_s", "i32.div_u", "i32.rem_s", "i32.rem_u", "i32.and", "i32.or",
          "i32.xor", "i32.shl", "i32.shr_s", "i32.shr_u", "i32.rotl", "i32.rotr"}


def lower(op: str, em, const: int | None = None) -> None:
    """Emit machine code for wasm `op`. `const` is the right operand when the
    compiler saw it was an i32.const (and did not emit it)."""
    if op in NATIVE:
        em.emit(op)
    elif op == "i32.extend8_s":
        shl_const(em, 24)
        shr_const(em, 24, signed=True)
    elif op == "i32.extend16_s":
        shl_const(em, 16)
        shr_const(em, 16, signed=True)
    elif const is not None and _inline_const(op, em, const & M32):
        pass
    else:
        if const is not None:
            em.emit("i32.const", const)
        em.helper(HELPER[op])


def _inline_const(op: str, em, c: int) -> bool:
    """Expand `x op c` inline when there is a cheap form; False otherwise."""
    if op == "i32.mul":
        mul_const(em, c)
    elif op == "i32.shl":
        shl_const(em, c & 31)
    elif op in ("i32.shr_u", "i32.shr_s"):
        shr_const(em, c & 31, signed=op == "i32.shr_s")
    elif op == "i32.rotl":
        rotl_const(em, c & 31)
    elif op == "i32.rotr":
        rotl_const(em, -c & 31)
    elif op == "i32.and":
        and_const(em, c)
    elif op == "i32.or":
        or_const(em, c)
    elif op == "i32.xor":
        xor_const(em, c)
    elif op == "i32.div_u" and c and not c & (c - 1):
        shr_const(em, c.bit_length() - 1, signed=False)
    elif op == "i32.rem_u" and c and not c & (c - 1):
        and_const(em, c - 1)
    else:
        return False
    return True


def double_n(em, k: int) -> None:
    """x -> x << k: k doublings of the top of the stack, 3 steps each."""
    t = em.temp(0)
    for _ in range(k):
        em.emit("local.tee", t)
        em.emit("local.get", t)
        em.emit("i32.add")


def shl_const(em, k: int) -> None:
    double_n(em, k & 31)


def shr_const(em, k: int, signed: bool) -> None:
    """x -> x >> k: read the top 32-k bits of x MSB first into r (r = 2r + bit).
    The signed form starts r at -bit31, which after the doublings is the sign
    fill. 4 + 10 steps per extracted bit after the first."""
    k &= 31
    if k == 0:
        return
    x = em.temp(1)
    em.emit("local.set", x)
    if signed:
        em.emit("i32.const", 0)
    em.emit("local.get", x)
    em.emit("i32.const", 0)
    em.emit("i32.lt_s")
    if signed:
        em.emit("i32.sub")
    for _ in range(31 - k):
        double_n(em, 1)
        em.emit("local.get", x)
        em.emit("local.get", x)
        em.emit("i32.add")
        em.emit("local.tee", x)
        em.emit("i32.const", 0)
        em.emit("i32.lt_s")
        em.emit("i32.add")


def _select_bits_cost(c: int) -> int:
    hi, lo = c.bit_length() - 1, (c & -c).bit_length() - 1
    return 3 * (31 - hi) + 7 * bin(c).count("1") + 4 * (hi - lo)


def _select_bits(em, c: int) -> None:
    """x -> x & c for c != 0: shift bit hi(c) of x to the top, then walk down
    to bit lo(c), adding 2^p (via select) for each bit p set in both."""
    hi, lo = c.bit_length() - 1, (c & -c).bit_length() - 1
    y = em.temp(1)
    double_n(em, 31 - hi)
    em.emit("local.set", y)
    first = True
    for p in range(hi, lo - 1, -1):
        if c >> p & 1:
            em.emit("i32.const", 1 << p)
            em.emit("i32.const", 0)
            em.emit("local.get", y)
            em.emit("i32.const", 0)
            em.emit("i32.lt_s")
            em.emit("select")
            if not first:
                em.emit("i32.add")
            first = False
        if p > lo:
            em.emit("local.get", y)
            em.emit("local.get", y)
            em.emit("i32.add")
            em.emit("local.set", y)


def and_const(em, c: int) -> None:
    """x & c: select the bits of c, or x - (x & ~c) when ~c has fewer bits
    to walk."""
    c &= M32
    if c == M32:
        return
    if c == 0:
        em.emit("drop")
        em.emit("i32.const", 0)
        return
    nc = ~c & M32
    if _select_bits_cost(nc) + 3 < _select_bits_cost(c):
        keep = em.temp(2)
        em.emit("local.tee", keep)
        em.emit("local.get", keep)
        _select_bits(em, nc)
        em.emit("i32.sub")
    else:
        _select_bits(em, c)


def or_const(em, c: int) -> None:
    """x | c = (x & ~c) + c (the two have no bit in common)."""
    and_const(em, ~c & M32)
    if c & M32:
        em.emit("i32.const", c & M32)
        em.emit("i32.add")


def xor_const(em, c: int) -> None:
    """x ^ c = x + c - 2 (x & c); x ^ -1 = -1 - x; x ^ INT_MIN = x + INT_MIN."""
    c &= M32
    if c == 0:
        return
    if c in (0x80000000, M32):
        if c == M32:
            t = em.temp(1)
            em.emit("local.set", t)
            em.emit("i32.const", M32)
            em.emit("local.get", t)
            em.emit("i32.sub")
        else:
            em.emit("i32.const", c)
            em.emit("i32.add")
        return
    keep = em.temp(3)
    em.emit("local.tee", keep)
    em.emit("i32.const", c)
    em.emit("i32.add")
    em.emit("local.get", keep)
    and_const(em, c)
    double_n(em, 1)
    em.emit("i32.sub")


def mul_const(em, c: int) -> None:
    """x * c by shift-and-add over the bits of c (or of -c, then negate, when
    that is shorter): start from x for the top bit, then per lower bit double
    (3 steps) and add x when the bit is set (2 steps)."""
    c &= M32
    if c == 0:
        em.emit("drop")
        em.emit("i32.const", 0)
        return
    nc = -c & M32

    def cost(v: int) -> int:
        return 3 * (v.bit_length() - 1) + 2 * bin(v).count("1")

    negate = cost(nc) + 4 < cost(c)
    v = nc if negate else c
    x = em.temp(2)
    if bin(v).count("1") > 1:
        em.emit("local.tee", x)
    for p in range(v.bit_length() - 2, -1, -1):
        double_n(em, 1)
        if v >> p & 1:
            em.emit("local.get", x)
            em.emit("i32.add")
    if negate:
        t = em.temp(1)
        em.emit("local.set", t)
        em.emit("i32.const", 0)
        em.emit("local.get", t)
        em.emit("i32.sub")


def rotl_const(em, k: int) -> None:
    """rotl(x, k) = (x << k) + (x >>u (32 - k)); the two parts share no bit."""
    k &= 31
    if k == 0:
        return
    keep = em.temp(3)
    em.emit("local.tee", keep)
    shl_const(em, k)
    em.emit("local.get", keep)
    shr_const(em, 32 - k, signed=False)
    em.emit("i32.add")
