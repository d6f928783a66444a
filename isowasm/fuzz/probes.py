"""Op probes: one small program per WebAssembly op, run on every operand
class, to say *which op* a compiler lowers wrongly.

When every machine backend agrees on a program and wasmtime does not, the
program file is wrong — the compiler that made it (ours or a foreign one
through `--compiler`), not an engine. The divergent trace cannot name the op
(the machines agree), so the op is found by probing: for each op the
failing module contains, a probe program computes that op alone on every
pair of operand classes (zero, one, small, shift widths 31/32/33, byte and
sign boundaries, INT_MIN, INT_MAX, -1, negatives) and outputs each result,
plus one program per trap the op can raise (the i64 ops likewise: classes
around 2^31, 2^32 and 2^63, both words of each result, 8-byte accesses
straddling the end of memory). The probe is compiled by the
same compiler and run on the reference executor and on wasmtime; the first
operand pair whose output differs names the op and gives its smallest
reproduction ("i32.rem_s(-7, 2): machine 1, wasmtime -1").

The probes are also the first programs of every fuzz campaign
(campaign.Worker.module): a wrong lowering of a single op is then found in
the campaign's first seconds whatever the random generator happens to draw,
and every op meets every operand class at least once.
"""

from __future__ import annotations

from dataclasses import dataclass

from isowasm.fuzz import generators as G

INT_MIN, INT_MAX = -0x8000_0000, 0x7FFF_FFFF
# operand classes: zero, one, small, shift widths, byte/sign boundaries, extremes, negatives
BINARY_OPERANDS = (0, 1, 2, 7, 31, 32, 33, 0x80, INT_MAX, INT_MIN, -1, -2, -7, -0x81)
UNARY_OPERANDS = BINARY_OPERANDS + (0x7F, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x00FF_00FF,
                                    0x1234_5678, -0x1234_5678, 0x0001_0000)
# memory the load probes read: every byte class at every alignment
PATTERN = bytes([0x00, 0x7F, 0x80, 0xFF, 0x01, 0xFE, 0x7F, 0x80, 0xFF, 0x00, 0x80, 0x7F, 0x55, 0xAA, 0x01, 0x80])
PAGE = 65536


def _module(body: tuple, *, data: bytes = b"", globals_: tuple = (), may_trap: bool = False,
            memory=(1, None)) -> G.Module:
    main = G.Func("main", (), False, (), body, None)
    return G.Module(memory, data, globals_, (main,), may_trap, False)


def _out(e) -> G.Out:
    return G.Out(e, all4=True)


def _runtime(v: int):
    """v, computed at run time (the compiler cannot see a constant)."""
    return G.Select(G.Const(v), G.Const(0), G.Const(1))


def _binary(op: str) -> G.Module:
    """Every operand pair twice: as constants (what a compiler may fold or
    special-case) and computed at run time (its general lowering)."""
    pairs = [(a, b) for a in BINARY_OPERANDS for b in BINARY_OPERANDS]
    if op in G.DIVOPS:   # the traps have probes of their own
        pairs = [(a, b) for a, b in pairs if b != 0 and not (op == "i32.div_s" and (a, b) == (INT_MIN, -1))]

    def node(a, b):
        return G.Div(op, a, b, None) if op in G.DIVOPS else G.Binop(op, a, b)
    body = [_out(node(G.Const(a), G.Const(b))) for a, b in pairs]
    body += [_out(node(_runtime(a), _runtime(b))) for a, b in pairs]
    return _module(tuple(body))


@dataclass(frozen=True)
class _Width:
    """What the access, global and select probes need of a value width."""
    loads: dict          # load op -> bytes accessed
    out: object          # the output statement of a value of this width
    operands: tuple      # values stored and held in globals
    data: bytes          # the data segment the loads read
    word: int            # bytes of a value
    stride: int          # bytes between the stored values' slots
    read_back: int       # i32 words read back around each stored value
    prefix: str          # of the globals' names
    selects: tuple       # (a, b) pairs chosen between


W32 = _Width(G.LOADS, _out, UNARY_OPERANDS, PATTERN, 4, 16, 3, "g", ((7, -7), (0, INT_MIN)))


def _loads(op: str, w: _Width = W32) -> G.Module:
    width = w.loads[op]
    body = tuple(w.out(G.Load(op, G.Const(a), off, 0xFFFF))
                 for a in range(len(w.data) - width - 3) for off in (0, 3))
    return _module(body, data=w.data)


def _stores(op: str, w: _Width = W32) -> G.Module:
    """Each value stored at four alignments and two offsets, then every
    word around it read back."""
    body = []
    for i, v in enumerate(w.operands):
        base = w.stride * i
        for a in range(4):
            body.append(G.Store(op, G.Const(base + a), w.word * (a & 1), 0xFFFF, G.Const(v)))
        body += [_out(G.Load("i32.load", G.Const(base + 4 * j), 0, 0xFFFF)) for j in range(w.read_back)]
    return _module(tuple(body))


def _others(w: _Width = W32) -> list[tuple[str, G.Module]]:
    gl = tuple((f"{w.prefix}{i}", True, v) for i, v in enumerate(w.operands[:8]))
    globals_body = tuple(w.out(G.GlobalGet(g[0])) for g in gl) + tuple(
        s for i, g in enumerate(gl) for s in (G.SetGlobal(g[0], G.Const(w.operands[-1 - i])),
                                              w.out(G.GlobalGet(g[0]))))
    conds = (0, 1, -1, INT_MIN, 2)
    select_body = tuple(w.out(G.Select(G.Const(a), G.Const(b), G.Const(c))) for a, b in w.selects for c in conds)
    return [("global.get", _module(globals_body, globals_=gl)),
            ("select", _module(select_body))]


def _traps() -> list[tuple[str, G.Module]]:
    """One program per trap an op raises, with output before it (what ran
    before the trap must match too)."""
    out = []
    for op in G.DIVOPS:
        for a in (7, 0, INT_MIN):
            body = (_out(G.Const(a)), _out(G.Div(op, G.Const(a), G.Const(0), None)))
            out.append((op, _module(body, may_trap=True)))
    out.append(("i32.div_s", _module((_out(G.Const(1)), _out(G.Div("i32.div_s", G.Const(INT_MIN),
                                                                    G.Const(-1), None))), may_trap=True)))
    for op, width in {**G.LOADS, **G.STORES}.items():
        for addr in (PAGE - width + 1, PAGE - 1, -1):   # straddling the end, past it, wrapping
            access = (G.Load(op, G.Const(addr), 0, 0xFFFF_FFFF) if op in G.LOADS else None)
            stmt = _out(access) if access is not None else G.Store(op, G.Const(addr), 0, 0xFFFF_FFFF,
                                                                    G.Const(-1))
            out.append((op, _module((_out(G.Const(width)), stmt), may_trap=True)))
    return out


# ---------------------------------------------------------------------------
# i64 (issue 13): the same for every op of the generator's i64 tables. Each
# i64 result is output as both its words (`$out8`); the right operand is a
# constant (the toolchain's inline expansions) and, on a smaller set of
# classes, a run-time value (`select` of it: the helpers in runtime_i64.wat).

INT64_MIN, INT64_MAX = G.INT64_MIN, G.INT64_MAX
# fewer classes than the i32 probes: an i64 op is dearer to run (its
# helpers take thousands of steps), and the probes open every campaign
BINARY_OPERANDS64 = (0, 1, 7, 63, 64, 0xFFFF_FFFF, 1 << 32, (1 << 32) + 1, INT64_MAX, INT64_MIN, -1, -7)
RUNTIME_OPERANDS64 = (0, 1, 63, (1 << 32) + 1, INT64_MIN, -7)
SHIFT_COUNTS64 = (0, 1, 7, 31, 32, 33, 63, 64, 65, -1)
# the campaign's opening (_opening64) runs fewer still
OPENING_OPERANDS64 = (0, 1, 63, 0xFFFF_FFFF, (1 << 32) + 1, INT64_MIN, -1, -7)
OPENING_RUNTIME64 = (1, (1 << 32) + 1, INT64_MIN, -7)
OPENING_SHIFTS64 = (0, 1, 31, 32, 33, 63, 64)
UNARY_OPERANDS64 = BINARY_OPERANDS64 + (2, 31, 32, 1 << 31, -2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000,
                                        0x7FFF_FFFF, 0x1234_5678_9ABC_DEF0, -0x1234_5678_9ABC_DEF0,
                                        0x00FF_00FF_00FF_00FF)


def _out64(e) -> G.Out:
    return G.Out(e, all4=True, wide=True)


def _binary64(op: str, left=BINARY_OPERANDS64, runtime=RUNTIME_OPERANDS64, shifts=SHIFT_COUNTS64) -> G.Module:
    """op on every pair of the classes, the right operand a constant, and
    on the pairs of `runtime` with the right operand computed at run time
    (shift counts from `shifts`)."""
    out_ = _out64 if op in G.I64_BINOPS or op in G.I64_DIVOPS else _out
    div = op in G.I64_DIVOPS
    right = shifts if op in G.I64_SHIFTS else left
    rright = shifts[::2] if op in G.I64_SHIFTS else runtime

    def ok(a, b):
        return not div or (b != 0 and not (op == "i64.div_s" and (a, b) == (INT64_MIN, -1)))

    def node(a, b):
        return G.Div(op, a, b, None) if div else G.Binop(op, a, b)
    body = [out_(node(G.Const(a), G.Const(b))) for a in left for b in right if ok(a, b)]
    body += [out_(node(G.Const(a), _runtime(b))) for a in runtime for b in rright if ok(a, b)]
    return _module(tuple(body))


def _unary64(op: str) -> G.Module:
    if op in G.I64_CONVERT:
        vals, out_ = UNARY_OPERANDS, _out64
    else:
        vals = UNARY_OPERANDS64
        out_ = _out if op in G.I64_TESTOPS or op in G.I64_WRAP else _out64
    return _module(tuple(out_(G.Unop(op, G.Const(v))) for v in vals))


W64 = _Width(G.I64_LOADS, _out64, UNARY_OPERANDS64, PATTERN + PATTERN[::-1], 8, 24, 5, "G",
             ((7, -7), (INT64_MIN, 1 << 32), (-1, 0)))


def _traps64() -> list[tuple[str, G.Module]]:
    """The i64 traps, with output before each: division by a zero constant
    and by a run-time zero, INT64_MIN / -1 both ways; every access width
    straddling the end of memory (an 8-byte access also with its low word
    inside and its high word outside, where nothing may be written, and
    wrapping past 2^32). After a store the last word of memory is output."""
    out = []
    for op in G.I64_DIVOPS:
        for b in (G.Const(0), _runtime(0)):
            body = (_out(G.Const(7)), _out64(G.Div(op, G.Const(7), b, None)))
            out.append((op, _module(body, may_trap=True)))
    for b in (G.Const(-1), _runtime(-1)):
        body = (_out(G.Const(1)), _out64(G.Div("i64.div_s", G.Const(INT64_MIN), b, None)))
        out.append(("i64.div_s", _module(body, may_trap=True)))
    for op, width in {**G.I64_LOADS, **G.I64_STORES}.items():
        addrs = (PAGE - width + 1, PAGE - 4, -1) if width == 8 else (PAGE - width + 1,)
        for addr in addrs:
            if op in G.I64_LOADS:
                stmts = (_out64(G.Load(op, G.Const(addr), 0, 0xFFFF_FFFF)),)
            else:
                stmts = (G.Store(op, G.Const(addr), 0, 0xFFFF_FFFF, G.Const(-1)),
                         _out(G.Load("i32.load", G.Const(PAGE - 4), 0, 0xFFFF_FFFF)))
            out.append((op, _module((_out(G.Const(width)),) + stmts, may_trap=True)))
    return out


def _probes64() -> list[tuple[str, G.Module]]:
    """One probe per i64 op (value probes, then trap probes): what Blame
    runs to name a wrong i64 op."""
    out = [(op, _binary64(op)) for op in G.I64_BINOPS + G.I64_CMPOPS + G.I64_DIVOPS]
    out += [(op, _unary64(op)) for op in G.I64_UNOPS + G.I64_TESTOPS + G.I64_CONVERT + G.I64_WRAP]
    out += [(op, _loads(op, W64)) for op in G.I64_LOADS]
    out += [(op, _stores(op, W64)) for op in G.I64_STORES]
    out += _others(W64)
    return out + _traps64()


# What a campaign opens with for i64: the same probes merged by family (one
# program for the ten comparisons, ...) and one trap of each kind, so the
# opening costs a few dozen programs, not a hundred; Blame still runs the
# per-op probes above. The families are named "i64:..." (not op names).
_FAMILIES64 = [
    ("i64:arith", ["i64.add", "i64.sub", "i64.and", "i64.or", "i64.xor"]),
    ("i64:shift", ["i64.shl", "i64.shr_s", "i64.shr_u", "i64.rotl", "i64.rotr"]),
    ("i64:mul", ["i64.mul"]),
    ("i64:div_u", ["i64.div_u", "i64.rem_u"]),
    ("i64:div_s", ["i64.div_s", "i64.rem_s"]),
    ("i64:compare", G.I64_CMPOPS),
    ("i64:unary", G.I64_UNOPS + G.I64_TESTOPS + G.I64_CONVERT + G.I64_WRAP),
    ("i64:load", list(G.I64_LOADS)),
    ("i64:store", list(G.I64_STORES)),
]


def _merge(mods: list[G.Module]) -> G.Module:
    body = tuple(s for m in mods for s in m.funcs[0].body)
    first = mods[0]
    return _module(body, data=first.data, globals_=first.globals, may_trap=first.may_trap, memory=first.memory)


def _opening64() -> list[tuple[str, G.Module]]:
    per_op = _probes64()
    value = {op: m for op, m in per_op if not m.may_trap}
    for op in G.I64_BINOPS + G.I64_CMPOPS + G.I64_DIVOPS:
        value[op] = _binary64(op, OPENING_OPERANDS64, OPENING_RUNTIME64, OPENING_SHIFTS64)
    out = [(name, _merge([value[op] for op in ops])) for name, ops in _FAMILIES64]
    others = _others(W64)
    out.append(("i64:global.get+select", _merge([m for _, m in others])))
    traps = [(op, m) for op, m in per_op if m.may_trap]

    def trap(op: str, k: int = 0):
        return [m for o, m in traps if o == op][k]
    # division by a run-time zero for each op, INT64_MIN / -1 at run time;
    # 8-byte accesses straddling the end (high word outside; low word
    # inside), a narrower one of each kind, one wrapping past 2^32
    picks = [(op, trap(op, 1)) for op in G.I64_DIVOPS] + [("i64.div_s", trap("i64.div_s", 3))]
    picks += [("i64.load", trap("i64.load", 1)), ("i64.store", trap("i64.store", 0)),
              ("i64.store", trap("i64.store", 1)), ("i64.load32_u", trap("i64.load32_u")),
              ("i64.store16", trap("i64.store16")), ("i64.load", trap("i64.load", 2))]
    return out + [(f"i64:trap:{op}", m) for op, m in picks]


def probe_modules() -> list[tuple[str, G.Module]]:
    """(op, module) for every op of the generator's tables, value probes
    first, then trap probes; the i64 ones after all the i32 ones, merged by
    family (_opening64; their names start with "i64:"). Deterministic: a
    campaign's program k < len() is probe k."""
    out = [(op, _binary(op)) for op in G.BINOPS + G.CMPOPS + G.DIVOPS]
    out += [(op, _module(tuple(_out(G.Unop(op, x)) for v in UNARY_OPERANDS for x in (G.Const(v), _runtime(v)))))
            for op in G.UNOPS]
    out += [(op, _loads(op)) for op in G.LOADS]
    out += [(op, _stores(op)) for op in G.STORES]
    out += _others()
    out += _traps()
    return out + _opening64()


PROBES = probe_modules()
# what Blame runs: the i32 probes of the opening and one probe per i64 op
BLAME_PROBES = [(op, m) for op, m in PROBES if not op.startswith("i64:")] + _probes64()
PROBED_OPS = frozenset(op for op, _ in BLAME_PROBES)


def wasm_ops(wasm: bytes) -> set[str]:
    """The ops a module's functions use (empty when isowasm's decoder cannot
    read it: nothing to blame then)."""
    from isowasm.toolchain.decode import decode_module

    try:
        m = decode_module(wasm)
    except Exception:   # noqa: BLE001 - a module our decoder refuses: no op names
        return set()
    return {ins.op for f in m.funcs for ins in f.body}


def _out_spans(m: G.Module) -> list[tuple[int, int, object]]:
    """(first output byte, bytes, Out) of each output statement of a probe
    (4 bytes each, 8 for an i64)."""
    spans, at = [], 0
    for s in m.funcs[0].body:
        if type(s) is G.Out:
            n = 8 if s.wide else 4
            spans.append((at, n, s))
            at += n
    return spans


def _span_at(m: G.Module, byte: int):
    return next(((a, n, s) for a, n, s in _out_spans(m) if a <= byte < a + n), None)


def _operands(m: G.Module, index: int, byte: int | None = None) -> str:
    """The op application printed by output statement `index` of a value
    probe (or by the one covering output byte `byte`)."""
    outs = [s for s in m.funcs[0].body if type(s) is G.Out]
    if byte is not None:
        sp = _span_at(m, byte)
        index = outs.index(sp[2]) if sp is not None else len(outs)
    if index >= len(outs):
        return "?"
    e = outs[index].value
    args = [getattr(e, f) for f in ("a", "b", "cond") if hasattr(e, f)]
    if type(e) is G.Load:
        return f"{e.op} offset={e.offset} at {e.addr.value}"
    if type(e) is G.GlobalGet:
        return f"global.get ${e.name} (output word {index})"

    def show(a):
        if type(a) is G.Const:
            return str(a.value)
        if type(a) is G.Select and type(a.a) is G.Const:
            return f"{a.a.value} at run time"
        return None
    text = ", ".join(x for x in map(show, args) if x is not None)
    return f"{getattr(e, 'op', type(e).__name__.lower())}({text})"


def _last_application(m: G.Module) -> str:
    """What a trap probe's last statement does (the access or division
    that should trap)."""
    last = m.funcs[0].body[-1]
    e = last.value if type(last) is G.Out else last
    if type(e) in (G.Load, G.Store) and type(e.addr) is G.Const:
        return f"{e.op} offset={e.offset} at {e.addr.value & 0xFFFF_FFFF:#x}"
    outs = [s_ for s_ in m.funcs[0].body if type(s_) is G.Out]
    return _operands(m, len(outs) - 1)


class Blame:
    """Which of a module's ops the compiler gets wrong: each op's probes
    are run once (cached), compiled by `compile(wat, name) -> (wasm, Program)`
    and run on the reference executor and on `wasmtime` (a backend)."""

    def __init__(self, compile, wasmtime, max_steps: int = 1_000_000):
        self.compile = compile
        self.wasmtime = wasmtime
        self.max_steps = max_steps
        self.cache: dict[str, str | None] = {}

    def probe(self, op: str) -> str | None:
        """None when the compiler gets `op` right on every probe, else what
        it gets wrong (the first differing operand pair or trap)."""
        if op in self.cache:
            return self.cache[op]
        self.cache[op] = None
        for i, (pop, m) in enumerate(BLAME_PROBES):
            if pop != op:
                continue
            why = self._run(m, f"probe-{i}")
            if why is not None:
                self.cache[op] = why
                break
        return self.cache[op]

    def _run(self, m: G.Module, name: str) -> str | None:
        from isowasm.backends.base import Case
        from isowasm.runner import _inconclusive_status, expected_status
        from isowasm.spec.reference import run_reference

        try:
            wasm, prog = self.compile(G.render(m), name)
        except Exception as e:   # noqa: BLE001 - a compiler that rejects the probe
            return f"rejected: {(str(e).splitlines() or [type(e).__name__])[0]}"
        want = self.wasmtime.run(Case(name, prog, wasm=wasm), max_steps=self.max_steps)
        got = run_reference(prog, max_steps=self.max_steps)
        if _inconclusive_status(got) and got.output == want.output[:len(got.output)]:
            # stopped at the probe's budget (or a resource limit) on the way
            # to the right output: a slow lowering, not a wrong one
            return None
        k = next((i for i, (x, y) in enumerate(zip(got.output, want.output)) if x != y), None)
        if k is not None:
            sp = _span_at(m, k)
            at, n = (sp[0], sp[1]) if sp is not None else (k // 4 * 4, 4)
            word = lambda o: int.from_bytes(o[at:at + n].ljust(n, b"\0"), "little", signed=True)  # noqa: E731
            return f"{_operands(m, 0, byte=k)}: machine {word(got.output)}, wasmtime {word(want.output)}"
        if expected_status(got) != expected_status(want) or len(got.output) != len(want.output):
            return (f"{_last_application(m)}: machine {expected_status(got)} after "
                    f"{len(got.output)} output bytes, wasmtime {expected_status(want)} after {len(want.output)}")
        return None

    def blame(self, ops) -> dict[str, str]:
        """{op: what is wrong} for the ops among `ops` whose probes fail."""
        return {op: why for op in sorted(set(ops) & PROBED_OPS) if (why := self.probe(op)) is not None}


def _program_suspect(sig: dict) -> bool:
    """Every machine (or the reference executor, the spec, alone) disagrees
    with wasmtime: the program file is the suspect, not an engine. A run
    that ran out of its budget is slow, not wrong: no op to blame."""
    return (sig.get("backend") in ("machines", "reference") and sig.get("kind") != "trace"
            and not sig.get("signature", "").startswith("status:budget-exhausted"))


def refine(sig: dict, blamed: dict[str, str]) -> dict:
    """A program-suspect signature with the op(s) the probes blame: the
    machines ran a wrong program, so the cause is the op's lowering."""
    if not blamed or not _program_suspect(sig):
        return sig
    op = "+".join(sorted(blamed))
    kind, who = sig["kind"], sig["backend"]
    if kind == "status":
        head = sig["signature"].rsplit(":", 2)[0]   # status:A-vs-B
        s = f"{head}:{op}:{who}"
    else:
        s = f"{kind}:{op}:{who}"
    return {**sig, "signature": s, "op": op, "blame": "; ".join(f"{k}: {v}" for k, v in sorted(blamed.items()))}


_BLAMES: dict[str, Blame] = {}   # per compiler, for this process


def blamed(sig: dict, wasm: bytes | None, compiler, wasmtime) -> dict:
    """`sig` refined by the probes when every machine agrees against
    wasmtime. compiler: an isowasm.compilers.Compiler, or None for isowasm's
    own toolchain; wasmtime: a backend (None: nothing to probe against)."""
    if not _program_suspect(sig) or wasm is None or wasmtime is None:
        return sig
    key = getattr(compiler, "name", "isowasm")
    b = _BLAMES.get(key)
    if b is None:
        from isowasm.fuzz.oracles import compile_wat

        def compile_probe(wat: str, name: str):
            mod, prog = compile_wat(wat, name)
            return mod, (compiler.compile(mod, name) if compiler is not None else prog)

        b = _BLAMES[key] = Blame(compile_probe, wasmtime)
    return refine(sig, b.blame(wasm_ops(wasm)))
