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

    def eq_if_neurons(self, x, t, cond, span=64):
        """Neurons for [x == t] * cond, integer x with |x - t| < span, cond 0/1."""
        x = Lin.of(x) - span * (1 - Lin.of(cond))
        return [(1, x - (t - 1), self.one), (-2, x - t, self.one), (1, x - (t + 1), self.one)]

    def eq_if(self, name, x, t, cond, span=64) -> Node:
        return self.ffn(name, self.eq_if_neurons(x, t, cond, span))

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
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    return x


class Evaluator:
    """Exact, incremental evaluation of a graph: feed tokens one at a time;
    `vals` then holds every node's value at the last position."""

    def __init__(self, g: Graph):
        self.g = g
        self.pos = -1
        self.vals: list = [0] * len(g.nodes)
        self._tokcache: dict[str, list] = {}
        self._tok = [n for n in g.nodes if n.kind == "tok"]
        self._pos = [(n.id, n.data) for n in g.nodes if n.kind == "pos"]
        prog = []
        seen = set()
        for n in g.nodes:
            if n.kind == "ffn":
                prog.append(("ffn", n.id, [(c, u.compile(), v.compile()) for c, u, v in n.data]))
            elif n.kind == "attn":
                h = n.data[0]
                if id(h) not in seen:
                    seen.add(id(h))
                    prog.append(("head", h, self._compile_head(h)))
        self._prog = prog

    def _compile_head(self, h: Head):
        st = {"mode": h.mode, "outs": [o.id for o in h.outs],
              "values": [v.compile() for v in h.values]}
        if h.mode == "avg":
            st["sum"] = [0] * len(h.values)
        else:
            st["write"] = h.write.compile()
            st["keys"] = [k.compile() for k in h.keys]
            st["queries"] = [q.compile() for q in h.queries]
            st["store"] = {}
        return st

    @staticmethod
    def _lin(c, vals):
        terms, const = c
        s = const
        for i, k in terms:
            s += k * vals[i]
        return s

    def feed(self, token: str) -> list:
        self.pos += 1
        pos = self.pos
        vals = self.vals
        tv = self._tokcache.get(token)
        if tv is None:
            tv = [(n.id, n.data(token)) for n in self._tok]
            self._tokcache[token] = tv
        for i, v in tv:
            vals[i] = v
        for i, (kind, k) in self._pos:
            vals[i] = posfeat(kind, k, pos)
        lin = self._lin
        for item in self._prog:
            if item[0] == "ffn":
                s = 0
                for c, u, v in item[2]:
                    uu = lin(u, vals)
                    if uu > 0:
                        s += c * uu * lin(v, vals)
                vals[item[1]] = _num(s)
            else:
                st = item[2]
                if st["mode"] == "avg":
                    sm = st["sum"]
                    for j, v in enumerate(st["values"]):
                        sm[j] += lin(v, vals)
                    for o, s in zip(st["outs"], sm):
                        vals[o] = _num(Fraction(s, pos + 1)) if isinstance(s, int) else _num(s / (pos + 1))
                    continue
                w = lin(st["write"], vals)
                if pos == 0:
                    # position 0 (the `{` token) is every lookup's default:
                    # a query that matches no write reads its values
                    st["default"] = [_num(lin(v, vals)) for v in st["values"]]
                if w == 1:
                    key = tuple(_num(lin(k, vals)) for k in st["keys"])
                    for a in key:
                        if not isinstance(a, int) or a < 0:
                            raise AssertionError(f"{item[1].name}: write key {key} at pos {pos}")
                    st["store"][key] = [lin(v, vals) for v in st["values"]]
                elif w != 0:
                    raise AssertionError(f"{item[1].name}: write flag {w} at pos {pos}")
                q = tuple(_num(lin(k, vals)) for k in st["queries"])
                got = st["store"].get(q)
                if got is None:
                    for o, v in zip(st["outs"], st["default"]):
                        vals[o] = v
                else:
                    for o, v in zip(st["outs"], got):
                        vals[o] = _num(v)
        return vals
