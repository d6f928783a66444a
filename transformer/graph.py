"""The graph DSL of the analytic transformer, and its exact evaluator.

A program for the transformer is a DAG of named nodes, each of which owns one
dimension of the residual stream:

* ``tok``  - a token-embedding feature (a function of the token string);
* ``pos``  - a positional feature (a closed formula of the position, see
  `posfeat`); both are layer 0;
* ``ffn``  - a sum of ReGLU neurons ``coef * relu(u) * v`` with ``u`` and ``v``
  affine combinations (`Lin`) of earlier nodes; lives in an FFN sub-layer;
* ``attn`` - one output of an attention head (`Head`); lives in an attention
  sub-layer.

Heads come in three modes:

* ``avg``    - constant keys: the mean of a value over positions 0..i
  (a running sum, once multiplied by the position count by one neuron);
* ``latest`` - exact-match lookup: among the positions j <= i where ``write``
  is 1 and the key address equals the query address (a tuple of small
  non-negative integers), the latest one's values; when none, the values
  at position 0 (the *default*, the `{` token);
* ``unique`` - exact-match lookup where at most one write matches (program
  fetch, relative positions, snapping a running sum to an integer); no
  tie-break term, so addresses may be large (< 2**22).

A lookup that matches nothing returns the values at position 0 (the `{`
token, whose key is the default); the machine keeps those zero.

`Evaluator` runs the graph token by token with exact Python integers and
Fractions; it implements the *semantics* above directly, while
`transformer.build` lowers the same graph to weights whose float64 forward
pass reproduces it (see the margins documented there).
"""

from __future__ import annotations

from fractions import Fraction


class Node:
    __slots__ = ("id", "name", "kind", "data")

    def __init__(self, name: str, kind: str, data):
        self.id = -1
        self.name = name
        self.kind = kind
        self.data = data

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"

    # arithmetic builds affine combinations
    def __add__(self, o): return Lin.of(self) + o
    def __radd__(self, o): return Lin.of(o) + self
    def __sub__(self, o): return Lin.of(self) - o
    def __rsub__(self, o): return Lin.of(o) - self
    def __mul__(self, k): return Lin.of(self) * k
    __rmul__ = __mul__
    def __neg__(self): return -Lin.of(self)


class Lin:
    """An affine combination sum(coef * node) + const."""

    __slots__ = ("terms", "const")

    def __init__(self, terms=None, const=0):
        self.terms: dict[Node, int | Fraction] = dict(terms) if terms else {}
        self.const = const

    @staticmethod
    def of(x) -> "Lin":
        if isinstance(x, Lin):
            return x
        if isinstance(x, Node):
            return Lin({x: 1})
        return Lin(None, x)

    def __add__(self, o):
        o = Lin.of(o)
        t = dict(self.terms)
        for n, c in o.terms.items():
            v = t.get(n, 0) + c
            if v:
                t[n] = v
            else:
                t.pop(n, None)
        return Lin(t, self.const + o.const)

    __radd__ = __add__

    def __neg__(self):
        return Lin({n: -c for n, c in self.terms.items()}, -self.const)

    def __sub__(self, o):
        return self + (-Lin.of(o))

    def __rsub__(self, o):
        return Lin.of(o) + (-self)

    def __mul__(self, k):
        if isinstance(k, (Lin, Node)):
            raise TypeError("a product of two signals needs a neuron (Graph.mul)")
        if k == 0:
            return Lin()
        return Lin({n: c * k for n, c in self.terms.items()}, self.const * k)

    __rmul__ = __mul__

    def key(self):
        return (tuple(sorted((n.id, c) for n, c in self.terms.items())), self.const)

    def compile(self):
        """(tuple of (node id, coef), const) for fast evaluation."""
        return tuple((n.id, c) for n, c in self.terms.items()), self.const


def posfeat(kind: str, k: int, pos: int) -> int:
    """Positional features (the torch module computes the same formulas)."""
    if kind == "pos":      # pos + k
        return pos + k
    if kind == "sq":       # pos ** 2
        return pos * pos
    if kind == "lo":       # low byte of pos - k (0 when negative)
        return (pos - k) & 255 if pos >= k else 0
    if kind == "hi":       # (pos - k) >> 8 (0 when negative)
        return (pos - k) >> 8 if pos >= k else 0
    if kind == "byte":     # byte k of pos
        return (pos >> (8 * k)) & 255
    raise ValueError(kind)


# posfeat as source text for the generated evaluator (same formulas)
_POSFEAT_SRC = {
    "pos": "pos + {k}",
    "sq": "pos * pos",
    "lo": "(pos - {k}) & 255 if pos >= {k} else 0",
    "hi": "(pos - {k}) >> 8 if pos >= {k} else 0",
    "byte": "(pos >> (8 * {k})) & 255",
}


class Head:
    def __init__(self, name, mode, values, write=None, keys=(), queries=(), key_vec=(), query_vec=()):
        self.name = name
        self.mode = mode                   # avg | latest | unique
        self.values = [Lin.of(v) for v in values]
        self.write = Lin.of(write) if write is not None else None
        self.keys = [Lin.of(k) for k in keys]          # semantic address (key side)
        self.queries = [Lin.of(q) for q in queries]    # semantic address (query side)
        self.key_vec = [Lin.of(k) for k in key_vec]    # what the weights compute
        self.query_vec = [Lin.of(q) for q in query_vec]
        self.outs: list[Node] = []
        self.time = None

    def deps(self):
        for lin in self.values + self.key_vec + self.query_vec:
            yield from lin.terms


# Lowering constants (see transformer/build.py for the margins they give).
DELTA = Fraction(1, 2 ** 26)   # tie-break bonus per position for `latest` heads
MISS = 4                       # exclusion of non-writes in `unique` heads
GATE_K = 2 ** 24               # key components are < GATE_K


class Graph:
    def __init__(self):
        self.nodes: list[Node] = []
        self.heads: list[Head] = []
        self._cache: dict = {}
        self.one = self.tok("one", lambda t: 1)
        self.lb = None   # the `{` indicator, set by the machine (position 0 only)

    # ---- leaves -------------------------------------------------------
    def _add(self, node: Node) -> Node:
        node.id = len(self.nodes)
        self.nodes.append(node)
        return node

    def tok(self, name: str, fn) -> Node:
        return self._add(Node(name, "tok", fn))

    def pos(self, name: str, kind: str, k: int = 0) -> Node:
        return self._add(Node(name, "pos", (kind, k)))

    def position(self) -> Node:
        return self._cached(("pos",), lambda: self.pos("pos", "pos", 0))

    # ---- FFN ------------------------------------------------------------
    def ffn(self, name: str, neurons) -> Node:
        ns = [(c, Lin.of(u), Lin.of(v)) for c, u, v in neurons]
        return self._add(Node(name, "ffn", ns))

    def mul(self, name, u, v) -> Node:
        """relu(u) * v: the product when u >= 0."""
        return self.ffn(name, [(1, u, v)])

    def step(self, name, x, t) -> Node:
        """[x >= t] for integer-valued x."""
        x = Lin.of(x)
        return self.ffn(name, [(1, x - (t - 1), self.one), (-1, x - t, self.one)])

    def eq(self, name, x, t) -> Node:
        """[x == t] for integer-valued x."""
        x = Lin.of(x)
        return self.ffn(name, [(1, x - (t - 1), self.one), (-2, x - t, self.one), (1, x - (t + 1), self.one)])

    def all_of(self, name, conds) -> Node:
        """AND of 0/1 signals."""
        s = sum((Lin.of(c) for c in conds), Lin())
        return self.ffn(name, [(1, s - (len(conds) - 1), self.one)])

    def gate_neurons(self, value, conds, hi=255):
        """Neurons computing value * AND(conds) for 0 <= value <= hi."""
        s = sum((Lin.of(c) for c in conds), Lin())
        m = len(conds)
        return [(1, Lin.of(value) - (hi + 1) * (m - s), self.one)]

    def step_gate_neurons(self, x, t, conds):
        """Neurons computing [x >= t] * AND(conds) for integer 0 <= x <= 255."""
        s = sum((Lin.of(c) for c in conds), Lin())
        m = len(conds)
        pen = 512 * (m - s)
        x = Lin.of(x)
        return [(1, x - (t - 1) - pen, self.one), (-1, x - t - pen, self.one)]

    # ---- attention --------------------------------------------------------
    def _head(self, h: Head, out_names) -> list[Node]:
        self.heads.append(h)
        for i, n in enumerate(out_names):
            h.outs.append(self._add(Node(n, "attn", (h, i))))
        return h.outs

    def average(self, name, values: dict) -> list[Node]:
        h = Head(name, "avg", list(values.values()))
        return self._head(h, [f"{name}.{k}" for k in values])

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _query_sq(self, name, qs):
        def make():
            ns = []
            for q in qs:
                ns += [(1, q, q), (1, -q, -q)]
            return self.ffn(f"{name}.qsq", ns)
        return self._cached(("qsq", tuple(q.key() for q in qs)), make)

    def lookup(self, name, mode, keys, queries, values: dict, write=None, key_sq=None) -> list[Node]:
        """Exact-match lookup (see the module docstring). `keys`/`queries`:
        address components (affine in the residual); `key_sq`: an affine
        expression equal to sum(key**2) where one is at hand (positional
        keys), else helper neurons compute it."""
        keys = [Lin.of(k) for k in keys]
        queries = [Lin.of(q) for q in queries]
        one = Lin.of(self.one)
        w = Lin.of(write) if write is not None else one
        if mode == "unique":
            if key_sq is None:
                key_sq = Lin.of(self._cached(("ksq_u", tuple(k.key() for k in keys)), lambda: self.ffn(
                    f"{name}.ksq", [(1, k, k) for k in keys])))
            kv = list(keys) + [Lin.of(key_sq)]
            qv = [2 * q for q in queries] + [-one]
            if write is not None:
                kv.append(MISS * (w - 1))
                qv.append(one)
        elif mode == "latest":
            lb = Lin.of(self.lb)
            if keys:
                gk = self._cached(("kg", tuple(k.key() for k in keys)), lambda: [
                    self.ffn(f"{name}.kg{i}", [(1, one - lb, k)]) for i, k in enumerate(keys)])
                ksq = self._cached(("ksq", tuple(k.key() for k in keys)), lambda: self.ffn(
                    f"{name}.ksq", [(1, k - GATE_K * lb, k) for k in keys]))
                qsq = self._query_sq(name, queries)
                kv = [Lin.of(x) for x in gk] + [Lin.of(ksq), one - lb]
                qv = [2 * q for q in queries] + [-one, -Lin.of(qsq)]
            else:
                kv, qv = [], []
            pos = self.position()
            kv.append(DELTA * Lin.of(pos) + (w - 1) + Fraction(1, 2) * lb)
            qv.append(one)
        else:
            raise ValueError(mode)
        h = Head(name, mode, list(values.values()), write=w, keys=keys, queries=queries,
                 key_vec=kv, query_vec=qv)
        return self._head(h, [f"{name}.{k}" for k in values])

    def prune(self, roots) -> int:
        """Drop every node (and head output) that no root depends on; returns
        how many nodes went. Node ids are renumbered in creation order."""
        live: set[int] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n.id in live:
                continue
            live.add(n.id)
            if n.kind == "attn":
                h, i = n.data
                stack.extend(h.values[i].terms)
                for lin in h.key_vec + h.query_vec:
                    stack.extend(lin.terms)
            else:
                stack.extend(self.node_deps(n))
        live.add(self.one.id)
        before = len(self.nodes)
        for h in self.heads:
            keep = [i for i, o in enumerate(h.outs) if o.id in live]
            h.values = [h.values[i] for i in keep]
            h.outs = [h.outs[i] for i in keep]
            for j, o in enumerate(h.outs):
                o.data = (h, j)
        self.heads = [h for h in self.heads if h.outs]
        self.nodes = [n for n in self.nodes if n.id in live]
        for i, n in enumerate(self.nodes):
            n.id = i
        self._cache.clear()
        return before - len(self.nodes)

    # ---- schedule-independent facts ---------------------------------------
    def node_deps(self, n: Node):
        if n.kind == "ffn":
            for _, u, v in n.data:
                yield from u.terms
                yield from v.terms
        elif n.kind == "attn":
            yield from n.data[0].deps()


def _num(x):
    if type(x) is Fraction and x.denominator == 1:
        return x.numerator
    return x


class Evaluator:
    """Exact, incremental evaluation of a graph: feed tokens one at a time;
    `vals` then holds every node's value at the last position.

    The graph is translated once into the source of one Python function
    (one local variable per node, neurons and lookups written out in node
    order) so that a token costs straight-line integer arithmetic rather
    than an interpreter walk over the node list; the semantics are those of
    the module docstring, stated once in `_emit_*` below. Values are Python
    integers, and Fractions only where a coefficient or an average makes
    them so (`_frac`), so the arithmetic stays exact.
    """

    def __init__(self, g: Graph):
        self.g = g
        self.pos = -1
        self.vals: tuple = (0,) * len(g.nodes)
        self._tokcache: dict[str, tuple] = {}
        self._tok = [n for n in g.nodes if n.kind == "tok"]
        self.source = self._generate()
        ns: dict = {"Fraction": Fraction, "_num": _num}
        ns.update(self._consts)
        exec(compile(self.source, "<transformer.graph evaluator>", "exec"), ns)
        self._step = ns["step"]

    # ---- code generation ----------------------------------------------------
    def _const(self, c) -> str:
        if isinstance(c, Fraction) and c.denominator != 1:
            name = f"K{len(self._consts)}"
            self._consts[name] = c
            return name
        return repr(int(c))

    def _expr(self, lin: Lin) -> str:
        """Source of an affine combination; `one` is the constant 1."""
        terms, const = lin.compile()
        parts = []
        for i, c in terms:
            if i == self.g.one.id:
                const = const + c
                continue
            v = f"v{i}"
            parts.append(v if c == 1 else f"-{v}" if c == -1 else f"{self._const(c)}*{v}")
        if const or not parts:
            parts.append(self._const(const))
        return " + ".join(parts).replace("+ -", "- ")

    def _is_frac(self, lin: Lin) -> bool:
        return (isinstance(lin.const, Fraction) and lin.const.denominator != 1) or any(
            n.id in self._frac or (isinstance(c, Fraction) and c.denominator != 1) for n, c in lin.terms.items())

    def _exact(self, lin: Lin) -> str:
        """Source of an affine combination, normalised when it may be a Fraction."""
        return f"_num({self._expr(lin)})" if self._is_frac(lin) else self._expr(lin)

    def _emit_ffn(self, out, n: Node):
        """sum of coef * relu(u) * v over the node's neurons."""
        out.append("    s = 0")
        frac = False
        for c, u, v in n.data:
            out.append(f"    u = {self._expr(u)}")
            vv = self._expr(v)
            prod = "u" if vv == "1" else f"u * ({vv})"
            out.append(f"    if u > 0: s += {self._const(c)} * {prod}")
            frac |= self._is_frac(u) or self._is_frac(v) or (isinstance(c, Fraction) and c.denominator != 1)
        if frac:
            self._frac.add(n.id)
            out.append("    s = _num(s)")
        out.append(f"    v{n.id} = s")

    def _emit_head(self, out, h: Head):
        k = len(self._heads)
        self._heads.append(h)
        outs = ", ".join(f"v{o.id}" for o in h.outs) + ","
        vals = [self._expr(v) for v in h.values]
        if h.mode == "avg":
            # running sums over positions 0..pos, divided by the count
            for j, v in enumerate(vals):
                out.append(f"    A{k}[{j}] += {v}")
            out.append(f"    {outs} = [_num(Fraction(a, pos + 1)) for a in A{k}]")
            self._frac.update(o.id for o in h.outs)
            return
        keys = "".join(self._exact(q) + ", " for q in h.keys)
        queries = "".join(self._exact(q) + ", " for q in h.queries)
        vnum = "".join(self._exact(v) + ", " for v in h.values)
        name = h.name
        # position 0 (the `{` token) is every lookup's default: a query that
        # matches no write reads its values
        out.append(f"    if pos == 0: D{k}[:] = ({vnum})")
        bad = " or ".join(f"type(k{j}) is not int or k{j} < 0" for j in range(len(h.keys)))
        names = "".join(f"k{j}, " for j in range(len(h.keys)))
        store = [f"key = {names + ' = ' if names else ''}({keys})"]
        if bad:
            store.append(f"if {bad}: raise AssertionError(f'{name}: write key {{key}} at pos {{pos}}')")
        store.append(f"S{k}[key] = ({vnum})")
        w = self._expr(h.write)
        if w == "1":
            out += [f"    {line}" for line in store]
        else:
            out.append(f"    w = {w}")
            out.append("    if w == 1:")
            out += [f"        {line}" for line in store]
            out.append("    elif w != 0:")
            out.append(f"        raise AssertionError(f'{name}: write flag {{w}} at pos {{pos}}')")
        out.append(f"    {outs} = S{k}.get(({queries}), D{k})")
        if any(self._is_frac(v) for v in h.values):
            self._frac.update(o.id for o in h.outs)

    def _generate(self) -> str:
        self._consts: dict = {}
        self._frac: set[int] = set()
        self._heads: list[Head] = []
        body: list[str] = []
        tok = ", ".join(f"v{n.id}" for n in self._tok) + ","
        body.append(f"    {tok} = tv")
        for n in self.g.nodes:
            if n.kind == "pos":
                body.append(f"    v{n.id} = {_POSFEAT_SRC[n.data[0]].format(k=n.data[1])}")
            elif n.kind == "ffn":
                self._emit_ffn(body, n)
            elif n.kind == "attn" and n.data[1] == 0:
                self._emit_head(body, n.data[0])
        body.append("    return (" + ", ".join(f"v{n.id}" for n in self.g.nodes) + ",)")
        state = []
        for k, h in enumerate(self._heads):
            if h.mode == "avg":
                self._consts[f"A{k}"] = [0] * len(h.values)
                state.append(f"A{k}=A{k}")
            else:
                self._consts[f"S{k}"] = {}
                self._consts[f"D{k}"] = [0] * len(h.values)
                state.append(f"S{k}=S{k}, D{k}=D{k}")
        self._consts["posfeat"] = posfeat
        head = f"def step(pos, tv, posfeat=posfeat, {', '.join(state)}):"
        return "\n".join([head] + body) + "\n"

    # ---- running ------------------------------------------------------------
    def feed(self, token: str) -> tuple:
        self.pos += 1
        tv = self._tokcache.get(token)
        if tv is None:
            tv = self._tokcache[token] = tuple(n.data(token) for n in self._tok)
        self.vals = self._step(self.pos, tv)
        return self.vals
