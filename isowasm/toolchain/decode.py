"""WebAssembly binary decoder: module sections and function bodies.

The module has already been validated by wasmtime (compile_wasm does that
first), so this decoder trusts the structure and only has to (a) read what
the translator needs and (b) name, with its byte offset, the first construct
outside the machine's i32 subset. Every rejection goes through
`errors.unsupported`, so messages all read "construct in function F, byte
offset 0xOFF: why".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isowasm.toolchain.errors import CompileError, unsupported

I32 = 0x7F
I64 = 0x7E
WIDTH = {I32: 1, I64: 2}      # machine slots (i32 words) per value: an i64 is a (lo, hi) pair
_VALTYPE = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
            0x70: "funcref", 0x6F: "externref"}

# Single-byte opcodes 0x45..0xc4, in encoding order (names for messages and
# for the translator's dispatch).
_NUMERIC = """i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u
i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u
f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne f64.lt f64.gt f64.le f64.ge
i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u
i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr
i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u
i64.and i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr
f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt f32.add f32.sub f32.mul
f32.div f32.min f32.max f32.copysign f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest
f64.sqrt f64.add f64.sub f64.mul f64.div f64.min f64.max f64.copysign
i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u i64.extend_i32_s
i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u
f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64
f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32
i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64
i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s""".split()

_MEMOPS = """i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u
i64.load8_s i64.load8_u i64.load16_s i64.load16_u i64.load32_s i64.load32_u
i32.store i64.store f32.store f64.store i32.store8 i32.store16 i64.store8 i64.store16
i64.store32""".split()

OPNAMES: dict[int, str] = {
    0x00: "unreachable", 0x01: "nop", 0x02: "block", 0x03: "loop", 0x04: "if", 0x05: "else",
    0x0B: "end", 0x0C: "br", 0x0D: "br_if", 0x0E: "br_table", 0x0F: "return", 0x10: "call",
    0x11: "call_indirect", 0x12: "return_call", 0x13: "return_call_indirect",
    0x06: "try", 0x07: "catch", 0x08: "throw", 0x09: "rethrow",
    0x1A: "drop", 0x1B: "select", 0x1C: "select",
    0x20: "local.get", 0x21: "local.set", 0x22: "local.tee", 0x23: "global.get",
    0x24: "global.set", 0x25: "table.get", 0x26: "table.set",
    0x3F: "memory.size", 0x40: "memory.grow",
    0x41: "i32.const", 0x42: "i64.const", 0x43: "f32.const", 0x44: "f64.const",
    0xD0: "ref.null", 0xD1: "ref.is_null", 0xD2: "ref.func",
}
OPNAMES.update({0x28 + i: n for i, n in enumerate(_MEMOPS)})
OPNAMES.update({0x45 + i: n for i, n in enumerate(_NUMERIC)})

_FC_NAMES = ["i32.trunc_sat_f32_s", "i32.trunc_sat_f32_u", "i32.trunc_sat_f64_s", "i32.trunc_sat_f64_u",
             "i64.trunc_sat_f32_s", "i64.trunc_sat_f32_u", "i64.trunc_sat_f64_s", "i64.trunc_sat_f64_u",
             "memory.init", "data.drop", "memory.copy", "memory.fill", "table.init", "elem.drop",
             "table.copy", "table.grow", "table.size", "table.fill"]

# The integer ops that take no immediate and are either native or lowered
# (i64 ones by isowasm/toolchain/i64.py onto i32 pairs).
I32_NULLARY = {n for n in _NUMERIC if n.startswith("i32.") and n not in (
    "i32.trunc_f32_s", "i32.trunc_f32_u", "i32.trunc_f64_s",
    "i32.trunc_f64_u", "i32.reinterpret_f32")}
I64_NULLARY = {n for n in _NUMERIC if n.startswith("i64.") and "_f32" not in n and "_f64" not in n
               and n != "i64.reinterpret_f64"}
I32_MEMOPS = {"i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u",
              "i32.store", "i32.store8", "i32.store16"}
I64_MEMOPS = {n for n in _MEMOPS if n.startswith("i64.")}
MEM_WIDTH = {"i32.load": 4, "i32.load8_s": 1, "i32.load8_u": 1, "i32.load16_s": 2,
             "i32.load16_u": 2, "i32.store": 4, "i32.store8": 1, "i32.store16": 2}
# i64 accesses: bytes touched (the bounds check's width).
MEM64_WIDTH = {"i64.load": 8, "i64.load8_s": 1, "i64.load8_u": 1, "i64.load16_s": 2,
               "i64.load16_u": 2, "i64.load32_s": 4, "i64.load32_u": 4,
               "i64.store": 8, "i64.store8": 1, "i64.store16": 2, "i64.store32": 4}


def _why(name: str) -> str:
    """The reason a construct is outside the machine, for the error message."""
    if name.startswith(("f32", "f64")) or "_f32" in name or "_f64" in name:
        return "floating point is not supported (the machine has only integers: i32, and i64 as i32 pairs)"
    if name.startswith(("table", "elem")) or name in ("call_indirect", "return_call_indirect", "ref.func"):
        return "tables and indirect calls are not supported"
    if name.startswith(("memory.", "data.")):
        return "bulk memory operations are not supported"
    if name.startswith("v128") or name == "simd":
        return "SIMD is not supported"
    return "not supported by the isowasm machine"


@dataclass
class Instr:
    op: str
    arg: object = None     # immediate: int, tuple, or list, depending on op
    offset: int = 0        # byte offset of the opcode in the module


@dataclass
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]


def slots(types) -> int:
    """Machine words taken by values of these types (i64 = 2)."""
    return sum(WIDTH[t] for t in types)


@dataclass
class Function:
    index: int             # function index (imports first)
    type: FuncType
    locals: int = 0        # declared locals beyond the params
    body: list[Instr] = field(default_factory=list)
    offset: int = 0        # byte offset of the body
    local_types: list[int] = field(default_factory=list)   # of the declared locals

    def all_local_types(self) -> list[int]:
        return list(self.type.params) + self.local_types


@dataclass
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[tuple[str, str, int]] = field(default_factory=list)  # (module, name, type index)
    funcs: list[Function] = field(default_factory=list)                # defined functions only
    globals: list[int] = field(default_factory=list)                   # initial values (i32 or i64)
    global_types: list[int] = field(default_factory=list)              # I32 or I64, per global
    exports: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (kind, index)
    mem_min: int | None = None     # pages; None when the module has no memory
    mem_max: int | None = None
    start: int | None = None
    data: list[tuple[int, bytes]] = field(default_factory=list)        # active segments (address, bytes)

    @property
    def num_imported_funcs(self) -> int:
        return len(self.imports)

    def func_type(self, index: int) -> FuncType:
        if index < len(self.imports):
            return self.types[self.imports[index][2]]
        return self.funcs[index - len(self.imports)].type


class _Reader:
    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise CompileError(f"truncated module at byte offset 0x{self.pos:x}")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def sleb(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    n -= 1 << shift
                return n

    def bytes(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise CompileError(f"truncated module at byte offset 0x{self.pos:x}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def name(self) -> str:
        return self.bytes(self.u32()).decode("utf-8", "replace")


def _valtype(r: _Reader, what: str, func: int | None) -> int:
    off = r.pos
    t = r.byte()
    if t not in WIDTH:
        kind = _VALTYPE.get(t, f"0x{t:02x}")
        raise unsupported(f"{kind} {what}", _why(kind + "."), func, off)
    return t


def _check_valtypes(types, what: str, func: int | None, off: int | None) -> None:
    for t in types:
        if t not in WIDTH:
            kind = _VALTYPE.get(t, f"0x{t:02x}")
            raise unsupported(f"{kind} {what}", _why(kind + "."), func, off)


# Constant-expression ops of extended-const: opcode -> (type, fn).
_CONST_OPS = {
    0x6A: (I32, lambda a, b: a + b), 0x6B: (I32, lambda a, b: a - b), 0x6C: (I32, lambda a, b: a * b),
    0x7C: (I64, lambda a, b: a + b), 0x7D: (I64, lambda a, b: a - b), 0x7E: (I64, lambda a, b: a * b),
}
_MASK = {I32: 0xFFFFFFFF, I64: 0xFFFFFFFFFFFFFFFF}


def _const_expr(r: _Reader, what: str, m: "Module", want: int = I32) -> int:
    """A constant expression, evaluated: i32/i64.const, global.get of an
    earlier (immutable) global, and the extended-const add/sub/mul. wasmtime
    has validated the module, so the types are right; the value is kept
    unsigned, modulo 2^32 or 2^64."""
    stack: list[int] = []
    while True:
        off = r.pos
        op = r.byte()
        if op == 0x0B:
            break
        if op == 0x41:
            stack.append(r.sleb() & _MASK[I32])
        elif op == 0x42:
            stack.append(r.sleb() & _MASK[I64])
        elif op == 0x23:
            stack.append(m.globals[r.u32()])
        elif op in _CONST_OPS:
            t, fn = _CONST_OPS[op]
            b, a = stack.pop(), stack.pop()
            stack.append(fn(a, b) & _MASK[t])
        else:
            name = OPNAMES.get(op, f"opcode 0x{op:02x}")
            raise unsupported(f"{name} in {what} initialiser",
                              "only integer constants, global.get and i32/i64 add, sub and mul are supported",
                              None, off)
    return stack[-1] & _MASK[want]


def decode_module(wasm: bytes) -> Module:
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise CompileError("not a WebAssembly module (bad magic number)")
    m = Module()
    func_types: list[int] = []
    r = _Reader(wasm, 8)
    while r.pos < r.end:
        sid = r.byte()
        size = r.u32()
        start = r.pos
        s = _Reader(wasm, start, start + size)
        if sid == 1:
            for _ in range(s.u32()):
                s.byte()  # 0x60
                params = tuple(s.byte() for _ in range(s.u32()))
                results = tuple(s.byte() for _ in range(s.u32()))
                m.types.append(FuncType(params, results))
        elif sid == 2:
            for _ in range(s.u32()):
                off = s.pos
                mod, name = s.name(), s.name()
                kind = s.byte()
                what = f"import {mod}.{name}"
                if kind != 0:
                    kinds = {1: "table", 2: "memory", 3: "global", 4: "tag"}
                    raise unsupported(f"{what} ({kinds.get(kind, kind)})",
                                      "the only import allowed is the function env.output_byte (i32) -> ()", None, off)
                m.imports.append((mod, name, s.u32()))
        elif sid == 3:
            func_types = [s.u32() for _ in range(s.u32())]
        elif sid == 5:
            n = s.u32()
            if n > 1:
                raise unsupported(f"{n} memories", "the machine has a single memory", None, start)
            if n:
                off = s.pos
                flags = s.u32()
                if flags & 4:
                    raise unsupported("64-bit memory", "the machine's memory is 32-bit", None, off)
                m.mem_min = s.u32()
                m.mem_max = s.u32() if flags & 1 else None
        elif sid == 6:
            for _ in range(s.u32()):
                t = _valtype(s, "global", None)
                s.byte()  # mutability
                m.globals.append(_const_expr(s, "global", m, t))
                m.global_types.append(t)
        elif sid == 7:
            for _ in range(s.u32()):
                name = s.name()
                kind = s.byte()
                m.exports[name] = (kind, s.u32())
        elif sid == 8:
            m.start = s.u32()
        elif sid == 10:
            n = s.u32()
            nimp = len(m.imports)
            for i in range(n):
                fsize = s.u32()
                fstart = s.pos
                f = Function(nimp + i, m.types[func_types[i]], offset=fstart)
                b = _Reader(wasm, fstart, fstart + fsize)
                for _ in range(b.u32()):
                    cnt = b.u32()
                    t = _valtype(b, "local", f.index)
                    f.locals += cnt
                    f.local_types += [t] * cnt
                f.body = _decode_body(b, f.index, m.types)
                m.funcs.append(f)
                s.pos = fstart + fsize
        elif sid == 11:
            for _ in range(s.u32()):
                off = s.pos
                flags = s.u32()
                if flags & 1:
                    raise unsupported("passive data segment", _why("memory.init"), None, off)
                if flags == 2:
                    s.u32()
                addr = _const_expr(s, "data segment offset", m)
                m.data.append((addr, s.bytes(s.u32())))
        r.pos = start + size
    if len(m.funcs) != len(func_types):
        raise CompileError("function and code sections disagree (malformed module)")
    return m


def _decode_body(b: _Reader, func: int, types: list[FuncType]) -> list[Instr]:
    out: list[Instr] = []
    while b.pos < b.end:
        off = b.pos
        op = b.byte()
        name = OPNAMES.get(op)
        if op in (0x02, 0x03, 0x04):
            out.append(Instr(name, _blocktype(b, func, off, types), off))
        elif op in (0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24):
            out.append(Instr(name, b.u32(), off))
        elif op == 0x0E:
            targets = [b.u32() for _ in range(b.u32())]
            out.append(Instr(name, (targets, b.u32()), off))
        elif op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B):
            out.append(Instr(name, None, off))
        elif op == 0x1C:
            sel = [b.byte() for _ in range(b.u32())]
            if len(sel) != 1 or sel[0] not in WIDTH:
                kind = _VALTYPE.get(sel[0], "?") if sel else "?"
                raise unsupported(f"select of {kind}", _why(kind + "."), func, off)
            out.append(Instr("select", None, off))
        elif name in I32_MEMOPS or name in I64_MEMOPS:
            if b.u32() & 0x40:  # alignment flag: a memory index follows
                _memory_index(b, name, func, off)
            out.append(Instr(name, b.u32() & 0xFFFFFFFF, off))
        elif op in (0x3F, 0x40):
            _memory_index(b, name, func, off)
            out.append(Instr(name, None, off))
        elif op == 0x41:
            out.append(Instr(name, b.sleb() & 0xFFFFFFFF, off))
        elif op == 0x42:
            out.append(Instr(name, b.sleb() & 0xFFFFFFFFFFFFFFFF, off))
        elif name in I32_NULLARY or name in I64_NULLARY:
            out.append(Instr(name, None, off))
        elif op == 0xFC:
            sub = b.u32()
            cname = _FC_NAMES[sub] if sub < len(_FC_NAMES) else f"0xfc {sub}"
            raise unsupported(cname, _why(cname), func, off)
        elif op == 0xFD:
            raise unsupported("SIMD instruction", _why("simd"), func, off)
        elif op == 0xFE:
            raise unsupported("atomic instruction", "threads and atomics are not supported", func, off)
        elif name is not None:
            raise unsupported(name, _why(name), func, off)
        else:
            raise unsupported(f"opcode 0x{op:02x}", "unknown to the isowasm toolchain", func, off)
    return out


def _memory_index(b: _Reader, name: str, func: int, off: int) -> None:
    if b.u32():
        raise unsupported(f"{name} of memory 1+", "the machine has a single memory", func, off)


def _blocktype(b: _Reader, func: int, off: int, types: list[FuncType]) -> FuncType:
    """The block's parameter and result types: none, one value type, or a
    type index (multi-value: parameters and several results)."""
    t = b.buf[b.pos]
    if t == 0x40:
        b.pos += 1
        return FuncType((), ())
    if t in WIDTH:
        b.pos += 1
        return FuncType((), (t,))
    if t in _VALTYPE:
        b.pos += 1
        kind = _VALTYPE[t]
        raise unsupported(f"block of type {kind}", _why(kind + "."), func, off)
    ft = types[b.sleb()]
    _check_valtypes(ft.params + ft.results, "block type", func, off)
    return ft
