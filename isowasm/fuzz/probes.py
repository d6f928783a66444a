"""Op probes: one small program per WebAssembly op, run on every operand
class, to say *which op* a compiler lowers wrongly.

When every machine backend agrees on a program and wasmtime does not, the
program file is wrong — the compiler that made it (ours or a foreign one
through `--compiler`), not an engine. The divergent trace cannot name the op
(the machines agree), so the op is found by probing: for each op the
failing module contains, a probe program computes that op alone on every
pair of operand classes (zero, one, small, shift widths 31/32/33, byte and
sign boundaries, INT_MIN, INT_MAX, -1, negatives) and outputs each result,
plus one program per trap the op can raise. The probe is compiled by the
same compiler and run on the reference executor and on wasmtime; the first
operand pair whose output differs names the op and gives its smallest
reproduction ("i32.rem_s(-7, 2): machine 1, wasmtime -1").

The probes are also the first programs of every fuzz campaign
(campaign.Worker.module): a wrong lowering of a single op is then found in
the campaign's first seconds whatever the random generator happens to draw,
and every op meets every operand class at least once.
"""

from __future__ import annotations

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


def _loads(op: str) -> G.Module:
    width = G.LOADS[op]
    body = tuple(_out(G.Load(op, G.Const(a), off, 0xFFFF))
                 for a in range(len(PATTERN) - width - 3) for off in (0, 3))
    return _module(body, data=PATTERN)


def _stores(op: str) -> G.Module:
    body = []
    for i, v in enumerate(UNARY_OPERANDS):
        base = 16 * i
        for a in range(4):
            body.append(G.Store(op, G.Const(base + a), 4 * (a & 1), 0xFFFF, G.Const(v)))
        body += [_out(G.Load("i32.load", G.Const(base + 4 * j), 0, 0xFFFF)) for j in range(3)]
    return _module(tuple(body))


def _others() -> list[tuple[str, G.Module]]:
    gl = tuple((f"g{i}", True, v) for i, v in enumerate(UNARY_OPERANDS[:8]))
    globals_body = tuple(_out(G.GlobalGet(g[0])) for g in gl) + tuple(
        s for i, g in enumerate(gl) for s in (G.SetGlobal(g[0], G.Const(UNARY_OPERANDS[-1 - i])),
                                              _out(G.GlobalGet(g[0]))))
    conds = (0, 1, -1, INT_MIN, 2)
    select_body = tuple(_out(G.Select(G.Const(a), G.Const(b), G.Const(c)))
                        for a, b in ((7, -7), (0, INT_MIN)) for c in conds)
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


def probe_modules() -> list[tuple[str, G.Module]]:
    """(op, module) for every op of the generator's tables, value probes
    first, then trap probes. Deterministic: a campaign's program k < len()
    is probe k."""
    out = [(op, _binary(op)) for op in G.BINOPS + G.CMPOPS + G.DIVOPS]
    out += [(op, _module(tuple(_out(G.Unop(op, x)) for v in UNARY_OPERANDS for x in (G.Const(v), _runtime(v)))))
            for op in G.UNOPS]
    out += [(op, _loads(op)) for op in G.LOADS]
    out += [(op, _stores(op)) for op in G.STORES]
    out += _others()
    return out + _traps()


PROBES = probe_modules()
PROBED_OPS = frozenset(op for op, _ in PROBES)


def wasm_ops(wasm: bytes) -> set[str]:
    """The ops a module's functions use (empty when isowasm's decoder cannot
    read it: nothing to blame then)."""
    from isowasm.toolchain.decode import decode_module

    try:
        m = decode_module(wasm)
    except Exception:   # noqa: BLE001 - a module our decoder refuses: no op names
        return set()
    return {ins.op for f in m.funcs for ins in f.body}


def _operands(m: G.Module, index: int) -> str:
    """The op application printed by output word `index` of a value probe."""
    outs = [s for s in m.funcs[0].body if type(s) is G.Out]
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
        for i, (pop, m) in enumerate(PROBES):
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
            w = k // 4
            word = lambda o: int.from_bytes(o[4 * w:4 * w + 4].ljust(4, b"\0"), "little", signed=True)  # noqa: E731
            return f"{_operands(m, w)}: machine {word(got.output)}, wasmtime {word(want.output)}"
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
