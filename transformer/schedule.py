"""Assigns graph nodes to sub-layers.

Time 0 is the embedding; layer L has an attention sub-layer at time 2L-1 and
an FFN sub-layer at time 2L. A head (all its outputs) must come strictly
after everything its keys, queries and values read; an FFN node strictly
after everything its neurons read.

The heuristic: ASAP placement gives the fewest layers (it *is* the critical
path, so the layer count meets its lower bound); then nodes with slack are
moved later, one at a time in a fixed order, when that lowers the peak
neuron count of the FFN sub-layers or the peak head count (the d_ffn and
head width of the model). The report states the gaps to the simple lower
bounds ceil(total / layers). Residual width is minimised afterwards by
`transformer.build.allocate` (liveness-based reuse of dimensions).
Everything is deterministic (creation order, no hashing of object ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isowasm.transformer.graph import Graph


@dataclass
class Schedule:
    time: dict[int, int]                 # node id -> time
    head_time: dict[int, int]            # head index -> time (odd)
    layers: int
    heads_per_layer: list[int] = field(default_factory=list)
    neurons_per_layer: list[int] = field(default_factory=list)
    report: dict = field(default_factory=dict)


def _ffn_after(t):
    return t + 2 if t % 2 == 0 else t + 1


def _attn_after(t):
    return t + 1 if t % 2 == 0 else t + 2


def schedule(g: Graph, balance: bool = True) -> Schedule:
    hidx = {id(h): i for i, h in enumerate(g.heads)}
    time: dict[int, int] = {}
    htime: dict[int, int] = {}
    for n in g.nodes:
        if n.kind in ("tok", "pos"):
            time[n.id] = 0
        elif n.kind == "ffn":
            t = max((time[d.id] for d in g.node_deps(n)), default=0)
            time[n.id] = _ffn_after(t)
        else:
            h = n.data[0]
            i = hidx[id(h)]
            if i not in htime:
                t = max((time[d.id] for d in h.deps()), default=0)
                htime[i] = _attn_after(t)
            time[n.id] = htime[i]
    tmax = max(time.values())
    layers = (tmax + 1) // 2
    # consumers, for the latest admissible time of each node
    users: dict[int, list] = {n.id: [] for n in g.nodes}
    for n in g.nodes:
        if n.kind == "ffn":
            for d in g.node_deps(n):
                users[d.id].append(("n", n.id))
    for i, h in enumerate(g.heads):
        for d in h.deps():
            users[d.id].append(("h", i))
    if balance:
        _balance(g, time, htime, users, layers)
    sch = Schedule(time, htime, layers)
    sch.heads_per_layer = [sum(1 for t in htime.values() if t == 2 * L - 1) for L in range(1, layers + 1)]
    sch.neurons_per_layer = [sum(len(n.data) for n in g.nodes if n.kind == "ffn" and time[n.id] == 2 * L)
                             for L in range(1, layers + 1)]
    tot_n = sum(sch.neurons_per_layer)
    tot_h = sum(sch.heads_per_layer)
    sch.report = {
        "layers": layers, "layers_lower_bound": layers,
        "d_ffn": max(sch.neurons_per_layer), "d_ffn_lower_bound": -(-tot_n // layers),
        "heads": max(sch.heads_per_layer), "heads_lower_bound": -(-tot_h // layers),
    }
    return sch


def _balance(g, time, htime, users, layers):
    """Move FFN nodes (and heads) later within their slack when that lowers the
    peak load of the layers involved. Fixed order, so deterministic."""
    last = 2 * layers
    nodes = g.nodes

    def latest_node(nid):
        ts = []
        for kind, j in users[nid]:
            ts.append(time[j] if kind == "n" else htime[j])
        if not ts:
            return None  # outputs stay where they are
        t = min(ts) - 1
        return t if t % 2 == 0 else t - 1

    # heads first: move a head later (all its outputs together) when its
    # consumers allow and the target attention sub-layer has fewer heads
    hload: dict[int, int] = {}
    for t in htime.values():
        hload[t] = hload.get(t, 0) + 1
    for i in reversed(range(len(g.heads))):
        h = g.heads[i]
        ts = []
        for o in h.outs:
            for kind, j in users[o.id]:
                ts.append(time[j] if kind == "n" else htime[j])
        if not ts:
            continue
        lt = min(ts) - 1
        lt = lt if lt % 2 == 1 else lt - 1
        t0 = htime[i]
        best, best_load = t0, hload[t0]
        for t in range(t0 + 2, lt + 1, 2):
            if hload.get(t, 0) + 1 < best_load:
                best, best_load = t, hload.get(t, 0) + 1
        if best != t0:
            hload[t0] -= 1
            hload[best] = hload.get(best, 0) + 1
            htime[i] = best
            for o in h.outs:
                time[o.id] = best
    load = {}
    for n in nodes:
        if n.kind == "ffn":
            load[time[n.id]] = load.get(time[n.id], 0) + len(n.data)
    for _ in range(3):
        moved = False
        for n in reversed(nodes):
            if n.kind != "ffn":
                continue
            t0 = time[n.id]
            lt = latest_node(n.id)
            if lt is None or lt <= t0:
                continue
            w = len(n.data)
            best, best_load = t0, load.get(t0, 0)
            for t in range(t0 + 2, min(lt, last) + 1, 2):
                if load.get(t, 0) + w < best_load:
                    best, best_load = t, load.get(t, 0) + w
            if best != t0:
                load[t0] -= w
                load[best] = load.get(best, 0) + w
                time[n.id] = best
                moved = True
        if not moved:
            break
