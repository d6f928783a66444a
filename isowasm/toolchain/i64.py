"""i64 on the i32 machine: every i64 value is a pair of machine words.

An i64 occupies two operand-stack slots, the low word below the high word
(`lo hi`, hi on top); an i64 local, parameter or global is two consecutive
machine locals or globals (lo, hi); an i64 result stays on the stack as
its two words, as i32 results do. Nothing else in the machine changes, and
the module wasmtime runs is the original one (this is isowasm's own
lowering, not a rewrite of the module).

Each i64 op is one of (worst / median steps over operand classes, run-time
operands unless said, as ci/bench_lowering.py records them in a module of
160 pages; conformance/test_i64.py checks every op against wasmtime):

| op                          | lowering                                           | steps       |
|-----------------------------|----------------------------------------------------|-------------|
| const, extend_i32_u, wrap   | i32.const pair / push 0 / drop the high word       | 1-2         |
| extend_i32_s, extend32_s    | the word, then 0 - (lo <s 0)                       | 6-7         |
| extend8_s, extend16_s       | i32.extend8/16_s (lowering.py), then the same      | 19          |
| add, sub                    | word-wise; carry = lo' <u b.lo, borrow = a.lo <u b.lo | 13       |
| eq ne lt gt le ge, eqz      | high words decide unless equal, then the low words | 5-12        |
| and, or, xor                | the i32 op on each word (constant words inline)    | 1,160 / 350; const <= 480 |
| shl/shr/rotl/rotr by const  | word moves plus lowering.py's constant shifts      | <= 310      |
| ... by a variable           | helpers shl64, shr_u64, shr_s64, rotl64, rotr64    | 960 / 550   |
| mul by a constant           | inline: 32x32->64 shift-and-add over the low word  | <= 730      |
|                             | of c, plus the cross products (lowering.mul_const) |             |
| mul                         | helper mul64 (the same, as a loop)                 | 2,010 / 410 |
| div/rem s/u                 | helpers with wasm's traps (div_zero; int_overflow  | 3,440 / 120 |
|                             | for INT64_MIN / -1; INT64_MIN rem_s -1 = 0); by a  |             |
|                             | divisor below 2^31 ~1,500; div_u/rem_u by a        |             |
|                             | constant power of two inline (shr_u / and)         |             |
| clz, ctz, popcnt            | helpers: the i32 op on the word that decides       | 140-730     |
| loads and stores            | i32 accesses of the words, the high word first     | 6-8         |

Memory: an 8-byte access touches the high word (ea + 4) first, so an access
that straddles the end of memory traps before it reads or writes anything,
as in wasm; with compiler bounds checks (a memory smaller than the
machine's) the whole 8 bytes are checked once. Narrower i64 loads are the
i32 loads followed by the sign or zero word; narrower stores drop the high
word and store the low one.

Constant operands: when the right operand's two words were just pushed as
i32.const (an i64.const), the op sees the constant (Asm.pop_const2); when
only its high word was (i64.extend_i32_u pushes 0), the op sees that word.

Scratch locals: this module uses the function's temporaries 4..9, above
the 0..3 of lowering.py, so an i64 op can call the i32 lowerings.
"""

from __future__ import annotations

from isowasm.spec import table
from isowasm.toolchain import lowering
from isowasm.toolchain.decode import I32, I64, MEM64_WIDTH

M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
T = 4                       # first scratch local of this module

BINARY = {"add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
          "shl", "shr_s", "shr_u", "rotl", "rotr"}
COMPARE = {"eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"}
UNARY = {"clz", "ctz", "popcnt", "extend8_s", "extend16_s", "extend32_s"}
SHIFTS = {"shl", "shr_s", "shr_u", "rotl", "rotr"}
HELPER = {"mul": "mul64", "div_s": "div_s64", "div_u": "div_u64", "rem_s": "rem_s64",
          "rem_u": "rem_u64", "shl": "shl64", "shr_s": "shr_s64", "shr_u": "shr_u64",
          "rotl": "rotl64", "rotr": "rotr64", "clz": "clz64", "ctz": "ctz64",
          "popcnt": "popcnt64"}


def is_i64_op(op: str) -> bool:
    return op.startswith("i64.") or op == "i32.wrap_i64"


# ------------------------------------------------------------------ types

def _sig(op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(popped, pushed) value types of a numeric or memory op."""
    if op == "i32.wrap_i64":
        return (I64,), (I32,)
    if op in ("i64.extend_i32_s", "i64.extend_i32_u"):
        return (I32,), (I64,)
    t = I64 if op.startswith("i64.") else I32
    name = op[4:]
    if name == "const":
        return (), (t,)
    if name.startswith("load"):
        return (I32,), (t,)
    if name.startswith("store"):
        return (I32, t), ()
    if name == "eqz":
        return (t,), (I32,)
    if name in COMPARE:
        return (t, t), (I32,)
    if name in UNARY:
        return (t,), (t,)
    return (t, t), (t,)


def annotate(f, m) -> None:
    """Record on each `drop` and `select` the type of its operand (their
    only untyped operands), by the validator's stack discipline. Dead code
    after an unconditional branch is skipped exactly as compile.py skips it,
    so every drop/select that gets compiled is annotated."""
    locals_ = f.all_local_types()
    st: list[int] = []
    ctrl: list[tuple[int, tuple, tuple]] = []       # (height, params, results)
    ctrl.append((0, (), tuple(f.type.results)))
    dead, dead_depth = False, 0
    for ins in f.body:
        op = ins.op
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
        if op == "else":
            h, params, _ = ctrl[-1]
            del st[h:]
            st += params
            dead = False
        elif op == "end":
            h, _, results = ctrl.pop()
            del st[h:]
            st += results
            dead = False
            if not ctrl:
                break
        elif op in ("block", "loop", "if"):
            if op == "if":
                st.pop()
            ft = ins.arg
            ctrl.append((len(st) - len(ft.params), tuple(ft.params), tuple(ft.results)))
        elif op in ("br", "return", "unreachable", "br_table"):
            dead = True
        elif op == "br_if":
            st.pop()
        elif op == "call":
            ft = m.func_type(ins.arg)
            if ft.params:
                del st[len(st) - len(ft.params):]
            st += ft.results
        elif op == "drop":
            ins.arg = st.pop()
        elif op == "select":
            st.pop()
            t = st.pop()
            st.pop()
            st.append(t)
            ins.arg = t
        elif op == "local.get":
            st.append(locals_[ins.arg])
        elif op == "local.set":
            st.pop()
        elif op == "global.get":
            st.append(m.global_types[ins.arg])
        elif op == "global.set":
            st.pop()
        elif op == "memory.size":
            st.append(I32)
        elif op in ("memory.grow", "nop", "local.tee"):
            pass
        else:
            pops, pushes = _sig(op)
            if pops:
                del st[len(st) - len(pops):]
            st += pushes


# ------------------------------------------------------------------ emission helpers

class _Operand:
    """The right operand b of a binary op: each word a known constant or a
    scratch local holding it."""

    def __init__(self, em, lo: int | None, hi: int | None, lo_t: int, hi_t: int):
        self.em, self.lo, self.hi, self.lo_t, self.hi_t = em, lo, hi, lo_t, hi_t

    def get_lo(self) -> None:
        self.em.emit("i32.const", self.lo) if self.lo is not None else self.em.emit("local.get", self.lo_t)

    def get_hi(self) -> None:
        self.em.emit("i32.const", self.hi) if self.hi is not None else self.em.emit("local.get", self.hi_t)


def _pop_right(fc) -> tuple[int | None, int | None]:
    """The right operand's words when they were just pushed as constants."""
    both = fc.asm.pop_const2()
    if both is not None:
        return both
    return None, fc.asm.pop_const()


def _push_back(fc, lo, hi) -> None:
    """Put constant words taken by _pop_right back on the stack."""
    if lo is not None:
        fc.emit("i32.const", lo)
    if hi is not None:
        fc.emit("i32.const", hi)


def _split(fc, lo, hi) -> _Operand:
    """[a.lo a.hi (b.lo) (b.hi)] -> [a.lo], with a.hi in temp T+1 and b's
    unknown words in temps T+2 (lo), T+3 (hi)."""
    e = fc.emit
    b = _Operand(fc, lo, hi, fc.temp(T + 2), fc.temp(T + 3))
    if hi is None:
        e("local.set", b.hi_t)
    if lo is None:
        e("local.set", b.lo_t)
    e("local.set", fc.temp(T + 1))
    return b


def sign_word(fc) -> None:
    """[v] -> [v, v >>s 31]: the high word of v sign-extended."""
    t = fc.temp(T)
    fc.emit("local.tee", t)
    fc.emit("i32.const", 0)
    fc.emit("local.get", t)
    fc.emit("i32.const", 0)
    fc.emit("i32.lt_s")
    fc.emit("i32.sub")


def _swap(fc) -> None:
    """[lo hi] -> [hi lo]."""
    t0, t1 = fc.temp(T), fc.temp(T + 1)
    fc.emit("local.set", t1)
    fc.emit("local.set", t0)
    fc.emit("local.get", t1)
    fc.emit("local.get", t0)


# ------------------------------------------------------------------ the ops

def lower(op: str, fc) -> None:
    """Emit machine code for i64 op `op` (or i32.wrap_i64) and adjust the
    compiler's stack height `fc.h` (in machine words)."""
    e = fc.emit
    if op == "i32.wrap_i64":
        e("drop")
        fc.h -= 1
        return
    if op == "i64.extend_i32_u":
        e("i32.const", 0)
        fc.h += 1
        return
    if op == "i64.extend_i32_s":
        sign_word(fc)
        fc.h += 1
        return
    name = op[4:]
    if name == "eqz":
        t = fc.temp(T)
        e("local.set", t)
        e("i32.eqz")
        e("i32.const", 0)
        e("local.get", t)
        e("i32.eqz")
        e("select")
        fc.h -= 1
    elif name in ("extend8_s", "extend16_s", "extend32_s"):
        e("drop")
        if name != "extend32_s":
            lowering.lower("i32." + name, fc)
        sign_word(fc)
    elif name in ("clz", "ctz", "popcnt"):
        fc.helper(HELPER[name])
    elif name in COMPARE:
        lo, hi = _pop_right(fc)
        _compare(fc, name, lo, hi)
        fc.h -= 3
    elif name in BINARY:
        lo, hi = _pop_right(fc)
        _binary(fc, name, lo, hi)
        fc.h -= 2
    else:
        raise fc.err(op, "not an i64 operation the toolchain knows")


def _compare(fc, name: str, lo, hi) -> None:
    """The high words decide (signed or unsigned as the op) unless they are
    equal; then the low words, unsigned: select(lo_cmp, hi_strict, hi_eq)."""
    e = fc.emit
    if lo == 0 and hi == 0 and name in ("lt_s", "ge_s"):
        # x < 0, x >= 0: the sign of the high word
        t = fc.temp(T + 1)
        e("local.set", t)
        e("drop")
        e("local.get", t)
        e("i32.const", 0)
        e("i32.lt_s" if name == "lt_s" else "i32.ge_s")
        return
    b = _split(fc, lo, hi)
    ahi = fc.temp(T + 1)
    if name in ("eq", "ne"):
        b.get_lo()
        e("i32." + name)
        e("i32.const", 0 if name == "eq" else 1)
    else:
        signed = name.endswith("_s")
        strict = name[:2].replace("le", "lt").replace("ge", "gt")
        b.get_lo()
        e(f"i32.{name[:2]}_u")
        e("local.get", ahi)
        b.get_hi()
        e(f"i32.{strict}_{'s' if signed else 'u'}")
    e("local.get", ahi)
    b.get_hi()
    e("i32.eq")
    e("select")


def _binary(fc, name: str, lo, hi) -> None:
    e = fc.emit
    if lo is not None and name in ("sub",):
        # a - k = a + (-k mod 2^64)
        k = -((hi << 32) | lo) & M64
        name, lo, hi = "add", k & M32, k >> 32
    if name == "add":
        _add(fc, lo, hi)
    elif name == "sub":
        b = _split(fc, lo, hi)
        a_lo, ahi = fc.temp(T), fc.temp(T + 1)
        e("local.tee", a_lo)
        b.get_lo()
        e("i32.sub")
        e("local.get", ahi)
        b.get_hi()
        e("i32.sub")
        e("local.get", a_lo)
        b.get_lo()
        e("i32.lt_u")
        e("i32.sub")
    elif name in ("and", "or", "xor"):
        b = _split(fc, lo, hi)
        i32op = "i32." + name
        if lo is not None:
            lowering.lower(i32op, fc, lo)
        else:
            b.get_lo()
            lowering.lower(i32op, fc)
        e("local.get", fc.temp(T + 1))
        if hi is not None:
            lowering.lower(i32op, fc, hi)
        else:
            b.get_hi()
            lowering.lower(i32op, fc)
    elif name in SHIFTS:
        if lo is not None:
            _shift_const(fc, name, lo & 63)
        else:
            if hi is None:
                e("drop")           # only k mod 64 matters: the high word of k is unused
            fc.helper(HELPER[name])
    elif name == "mul" and lo is not None:
        mul_const(fc, (hi << 32) | lo)
    elif name in ("div_u", "rem_u") and lo is not None and _pow2(lo, hi):
        k = ((hi << 32) | lo).bit_length() - 1
        if name == "div_u":
            _shift_const(fc, "shr_u", k)
        else:
            m = (1 << k) - 1
            _binary(fc, "and", m & M32, m >> 32)
    else:
        _push_back(fc, lo, hi)
        fc.helper(HELPER[name])


def _pow2(lo: int, hi: int) -> bool:
    k = (hi << 32) | lo
    return k != 0 and not k & (k - 1)


def _add(fc, lo, hi) -> None:
    e = fc.emit
    if lo == 0:
        # no carry out of the low word
        if hi:
            e("i32.const", hi)
            e("i32.add")
        return
    b = _split(fc, lo, hi)
    r_lo, ahi = fc.temp(T), fc.temp(T + 1)
    b.get_lo()
    e("i32.add")
    e("local.tee", r_lo)
    e("local.get", ahi)
    if hi != 0:
        b.get_hi()
        e("i32.add")
    e("local.get", r_lo)
    b.get_lo()
    e("i32.lt_u")            # the carry: lo' < b.lo
    e("i32.add")


def _shift_const(fc, name: str, k: int) -> None:
    """[lo hi] -> [lo' hi'] shifted or rotated by the constant k (0..63)."""
    e = fc.emit
    if name == "rotr":
        name, k = "rotl", -k & 63
    if k == 0:
        return
    t_lo, t_hi = fc.temp(T), fc.temp(T + 1)
    if name == "rotl":
        if k >= 32:
            _swap(fc)
            k -= 32
            if k == 0:
                return
        # lo' = (lo << k) + (hi >>u 32-k), hi' = (hi << k) + (lo >>u 32-k)
        e("local.set", t_hi)
        e("local.tee", t_lo)
        lowering.shl_const(fc, k)
        e("local.get", t_hi)
        lowering.shr_const(fc, 32 - k, signed=False)
        e("i32.add")
        e("local.get", t_hi)
        lowering.shl_const(fc, k)
        e("local.get", t_lo)
        lowering.shr_const(fc, 32 - k, signed=False)
        e("i32.add")
    elif name == "shl":
        if k >= 32:
            e("drop")
            lowering.shl_const(fc, k - 32)
            e("local.set", t_hi)
            e("i32.const", 0)
            e("local.get", t_hi)
            return
        # lo' = lo << k, hi' = (hi << k) + (lo >>u 32-k)
        e("local.set", t_hi)
        e("local.tee", t_lo)
        lowering.shl_const(fc, k)
        e("local.get", t_hi)
        lowering.shl_const(fc, k)
        e("local.get", t_lo)
        lowering.shr_const(fc, 32 - k, signed=False)
        e("i32.add")
    else:
        signed = name == "shr_s"
        e("local.set", t_hi)
        if k >= 32:
            # lo' = hi >> k-32, hi' = the fill
            e("drop")
            e("local.get", t_hi)
            lowering.shr_const(fc, k - 32, signed=signed)
            if signed:
                e("i32.const", 0)
                e("local.get", t_hi)
                e("i32.const", 0)
                e("i32.lt_s")
                e("i32.sub")
            else:
                e("i32.const", 0)
            return
        # lo' = (lo >>u k) + (hi << 32-k), hi' = hi >> k
        lowering.shr_const(fc, k, signed=False)
        e("local.get", t_hi)
        lowering.shl_const(fc, 32 - k)
        e("i32.add")
        e("local.get", t_hi)
        lowering.shr_const(fc, k, signed=signed)


def mul_const(fc, c: int) -> None:
    """[x.lo x.hi] -> x * c mod 2^64 for a constant c:
    x.lo * c.lo as a full 64-bit product (shift-and-add over c.lo's bits,
    MSB first, in the pair (L, H)), plus (x.hi * c.lo + x.lo * c.hi) mod 2^32
    (lowering.mul_const) added to the high word."""
    e = fc.emit
    c &= M64
    if c == 0:
        e("drop")
        e("drop")
        e("i32.const", 0)
        e("i32.const", 0)
        return
    if not c & (c - 1):
        _shift_const(fc, "shl", c.bit_length() - 1)
        return
    clo, chi = c & M32, c >> 32
    x, xh, cross, L, H = (fc.temp(T + i) for i in range(5))
    e("local.set", xh)
    e("local.set", x)
    have = False
    if clo:
        e("local.get", xh)
        lowering.mul_const(fc, clo)
        have = True
    if chi:
        e("local.get", x)
        lowering.mul_const(fc, chi)
        if have:
            e("i32.add")
    if clo <= 1:
        # x.lo * c.lo is 0 or x.lo, no high word
        if clo:
            e("local.set", cross)
            e("local.get", x)
            e("local.get", cross)
        else:
            e("local.set", cross)
            e("i32.const", 0)
            e("local.get", cross)
        return
    e("local.set", cross)
    # (L, H) = x.lo * c.lo: start from x for the top bit, then per lower bit
    # double the pair, adding x (with its carry into H) where the bit is set.
    e("local.get", x)
    e("local.set", L)
    h_zero = True
    for p in range(clo.bit_length() - 2, -1, -1):
        if h_zero:
            e("local.get", L)
            e("i32.const", 0)
            e("i32.lt_s")
            e("local.set", H)
            h_zero = False
        else:
            e("local.get", H)
            e("local.get", H)
            e("i32.add")
            e("local.get", L)
            e("i32.const", 0)
            e("i32.lt_s")
            e("i32.add")
            e("local.set", H)
        e("local.get", L)
        e("local.get", L)
        e("i32.add")
        if clo >> p & 1:
            e("local.get", x)
            e("i32.add")
            e("local.tee", L)
            e("local.get", x)
            e("i32.lt_u")
            e("local.get", H)
            e("i32.add")
            e("local.set", H)
        else:
            e("local.set", L)
    e("local.get", L)
    e("local.get", H)
    e("local.get", cross)
    e("i32.add")


# ------------------------------------------------------------------ memory

def memory_access(fc, op: str, offset: int) -> None:
    """i64 loads and stores on i32 accesses (see the module docstring)."""
    e = fc.emit
    ctx = fc.ctx
    width = MEM64_WIDTH[op]
    store = "store" in op
    fc.h += -3 if store else 1
    if offset + width > table.limits()["memory_bytes"]:
        # no address makes this access fit (and offset + 4 could wrap)
        ctx.oob_used = True
        fc.asm.jump("br", ctx.oob_label)
        return
    ta, tl, th = fc.temp(T), fc.temp(T + 1), fc.temp(T + 2)
    if store:
        if op == "i64.store":
            e("local.set", th)
            e("local.set", tl)
            if ctx.checks:
                fc.bounds_check(offset + width, False)
            e("local.tee", ta)
            e("local.get", th)
            e("i32.store", offset + 4)      # the high word first: a straddling store traps unwritten
            e("local.get", ta)
            e("local.get", tl)
            e("i32.store", offset)
        else:
            e("drop")
            if ctx.checks:
                fc.bounds_check(offset + width, True)
            e({"i64.store8": "i32.store8", "i64.store16": "i32.store16", "i64.store32": "i32.store"}[op], offset)
        return
    if ctx.checks:
        fc.bounds_check(offset + width, False)
    if op == "i64.load":
        e("local.tee", ta)
        e("i32.load", offset + 4)
        e("local.set", th)
        e("local.get", ta)
        e("i32.load", offset)
        e("local.get", th)
        return
    narrow = {"i64.load8_s": "i32.load8_s", "i64.load8_u": "i32.load8_u", "i64.load16_s": "i32.load16_s",
              "i64.load16_u": "i32.load16_u", "i64.load32_s": "i32.load", "i64.load32_u": "i32.load"}[op]
    e(narrow, offset)
    if op.endswith("_s"):
        sign_word(fc)
    else:
        e("i32.const", 0)


def select(fc) -> None:
    """[a.lo a.hi b.lo b.hi c] -> c ? a : b, word by word."""
    e = fc.emit
    c, bh, bl, ah = (fc.temp(T + i) for i in range(4))
    e("local.set", c)
    e("local.set", bh)
    e("local.set", bl)
    e("local.set", ah)
    e("local.get", bl)
    e("local.get", c)
    e("select")
    e("local.get", ah)
    e("local.get", bh)
    e("local.get", c)
    e("select")
