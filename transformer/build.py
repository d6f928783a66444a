"""Lowers the machine graph to weights: numpy float64 arrays saved as
safetensors, plus a JSON config. `python3 -m isowasm.transformer.build [outdir]`;
without outdir, into the user's cache (`model_dir()`), so an installed
isowasm never writes into its own installation.

Residual stream: each graph node (token feature, positional feature, head
output, FFN node) owns a dimension from the sub-layer that writes it to its
last reader; dimensions are then reused (`allocate`), a freed one being
zeroed by one cleanup neuron first. Per layer:

* attention: for every head, W_q / W_k map the residual to the head's query
  and key vectors (`Head.query_vec` / `key_vec`), W_v to its values, W_o adds
  them into the outputs' dimensions; softmax(scale * q.k) over positions
  0..i, scale = 2**36;
* FFN (ReGLU): h = relu(x W_u) * (x W_v); x += h W_o; one hidden unit per
  neuron; the constant-1 dimension plays the biases.

Margins (why float64 reproduces the exact graph): `latest` heads score
-(sum (a-b)^2) + pos * 2**-26 (+ exclusion -1 for non-writes, -0.5 for the
default at position 0); with address components < 2**12 every partial sum is
a multiple of 2**-26 below 2**27, so exact, and scale * 2**-26 = 1024 makes
every weight but the latest match's underflow to exactly 0. `unique` heads
have margins >= 1 between the match and any other key (<= 2**44 in size, so
rounding errors < 2**-8). Averaging heads are the only inexact step; their
sums are snapped to integers by a unique lookup on the position before any
exact use (the pc query uses the raw sum, within its margin).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from isowasm.transformer import vocab
from isowasm.transformer.graph import Lin
from isowasm.transformer.machine import Machine, readout
from isowasm.transformer.schedule import schedule

ATTN_SCALE = 2.0 ** 36


def model_dir() -> Path:
    """$ISOWASM_MODEL_DIR, else a cache directory named after a hash of the
    construction's sources and the machine table: weights built by another
    version of the construction are never picked up."""
    env = os.environ.get("ISOWASM_MODEL_DIR")
    if env:
        return Path(env)
    from isowasm.toolchain.frontend import cache_dir

    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(here.glob("*.py")) + [here.parent / "spec" / "machine.yaml"]:
        if p.exists():
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return cache_dir() / f"model-{h.hexdigest()[:16]}"


BUILD_DIR = model_dir()
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def lower(m: Machine | None = None):
    m = m or Machine()
    g = m.g
    sch = schedule(g)
    order = sorted(g.nodes, key=lambda n: (sch.time[n.id], n.id))
    L = sch.layers
    V = len(vocab.TOKENS)
    rows = readout(m)
    # cleanup neurons trade FFN width for residual width: try a few caps on
    # the FFN width, keep the one with the fewest parameters
    H0 = max(sch.heads_per_layer)
    best = None
    for extra in (0, 8, 16, 24, 32, 48, 64, None):
        cap = None if extra is None else max(sch.neurons_per_layer) + extra
        alloc = allocate(m, sch, order, rows, cap)
        dd, cl = alloc[1], alloc[2]
        F = max(sch.neurons_per_layer[l] + len(cl.get(2 * (l + 1), ())) for l in range(L))
        params = dd * (2 * V + 3 * L * F) + L * H0 * dd * 40
        if best is None or params < best[0]:
            best = (params, alloc)
    dim, d, cleanups, dim_names = best[1]
    one = dim[g.one.id]

    def put(mat, lin: Lin, col, row_offset=None):
        lin = Lin.of(lin)
        for node, c in lin.terms.items():
            mat[dim[node.id], col] += float(c)
        if lin.const:
            mat[one, col] += float(lin.const)

    tensors: dict[str, np.ndarray] = {}
    E = np.zeros((V, d))
    for n in g.nodes:
        if n.kind == "tok":
            for t, tok in enumerate(vocab.TOKENS):
                E[t, dim[n.id]] = n.data(tok)
    tensors["embed"] = E
    posf = [[dim[n.id], n.data[0], n.data[1]] for n in order if n.kind == "pos"]

    heads_at = [[h for i, h in enumerate(g.heads) if sch.head_time[i] == 2 * l - 1] for l in range(1, L + 1)]
    H = max(len(x) for x in heads_at)
    dk = max(len(h.key_vec) for h in g.heads)
    dv = max(len(h.values) for h in g.heads)
    ffn_at = [[n for n in order if n.kind == "ffn" and sch.time[n.id] == 2 * l] for l in range(1, L + 1)]
    Fw = max(sum(len(n.data) for n in x) + len(cleanups.get(2 * (l + 1), ())) for l, x in enumerate(ffn_at))
    for l in range(L):
        wq = np.zeros((H, d, dk))
        wk = np.zeros((H, d, dk))
        wv = np.zeros((H, d, dv))
        wo = np.zeros((H, dv, d))
        for s, h in enumerate(heads_at[l]):
            for c, lin in enumerate(h.query_vec):
                put(wq[s], lin, c)
            for c, lin in enumerate(h.key_vec):
                put(wk[s], lin, c)
            for c, lin in enumerate(h.values):
                put(wv[s], lin, c)
            for c, o in enumerate(h.outs):
                wo[s, c, dim[o.id]] = 1.0
        tensors[f"layers.{l}.attn.wq"] = wq
        tensors[f"layers.{l}.attn.wk"] = wk
        tensors[f"layers.{l}.attn.wv"] = wv
        tensors[f"layers.{l}.attn.wo"] = wo
        wu = np.zeros((d, Fw))
        wg = np.zeros((d, Fw))
        wd = np.zeros((Fw, d))
        j = 0
        for n in ffn_at[l]:
            for c, u, v in n.data:
                put(wu, u, j)
                put(wg, v, j)
                wd[j, dim[n.id]] = float(c)
                j += 1
        for dd in cleanups.get(2 * (l + 1), ()):   # relu(1) * (-x[dd]) zeroes a freed dimension
            wu[one, j] = 1.0
            wg[dd, j] = -1.0
            wd[j, dd] = 1.0
            j += 1
        tensors[f"layers.{l}.ffn.wu"] = wu
        tensors[f"layers.{l}.ffn.wv"] = wg
        tensors[f"layers.{l}.ffn.wo"] = wd
    U = np.zeros((d, V))
    for t, (terms, const) in enumerate(rows):
        for node, c in terms:
            U[dim[node.id], t] += c
        U[one, t] += const
    tensors["unembed"] = U
    params = int(sum(a.size for a in tensors.values()))
    cfg = {
        "model": "isowasm analytic transformer",
        "d_model": d, "n_layers": L, "n_heads": H, "d_head_qk": dk, "d_head_v": dv, "d_ffn": Fw,
        "vocab": vocab.TOKENS, "vocab_size": V, "attn_scale": ATTN_SCALE,
        "pos_features": posf, "one_dim": one,
        "diag_dims": {k: dim[v.id] for k, v in m.diag.items()},
        "parameters": params,
        "schedule": {**sch.report, "d_ffn": Fw, "d_ffn_scheduled": sch.report["d_ffn"]},
        "heads_per_layer": sch.heads_per_layer,
        "neurons_per_layer": [sch.neurons_per_layer[l] + len(cleanups.get(2 * (l + 1), ())) for l in range(L)],
        "head_names": [[h.name for h in x] for x in heads_at],
        "dim_names": dim_names,
        "residual_nodes": len(order),
        "cleanup_neurons": sum(len(v) for v in cleanups.values()),
        "horizon": "positions < 2**22; stack depth <= 65536; call depth <= 4096; addresses < 2**24",
    }
    return cfg, {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}


def allocate(m: Machine, sch, order, rows, cap: int | None = None):
    """Residual dimensions by liveness: a node's dimension is free once its
    last reader has run; a later node may take it after one FFN neuron
    (relu(1) * -x) has zeroed it at an FFN sub-layer between the two, or in
    the FFN sub-layer that writes the new node (old value exact integer). The
    cleanup goes to the least loaded admissible FFN sub-layer. Greedy, in
    schedule order, lowest dimension first: deterministic."""
    g = m.g
    T = sch.time
    end = 2 * sch.layers + 1
    last = {n.id: T[n.id] for n in g.nodes}
    for n in g.nodes:
        if n.kind == "ffn":
            for dep in g.node_deps(n):
                last[dep.id] = max(last[dep.id], T[n.id])
    for i, h in enumerate(g.heads):
        for dep in h.deps():
            last[dep.id] = max(last[dep.id], sch.head_time[i])
    for terms, _ in rows:
        for n, _ in terms:
            last[n.id] = end
    for n in list(m.diag.values()) + [g.one]:
        last[n.id] = end
    load = {2 * (l + 1): sch.neurons_per_layer[l] for l in range(sch.layers)}
    if cap is None:
        cap = 1 << 30
    # values that are not exact integers in float64 (means, and what is
    # computed from them): their dimension is only zeroed in a sub-layer of
    # its own, never while a new node is written into it
    inexact = set()
    for n in g.nodes:
        if n.kind == "attn" and n.data[0].mode == "avg":
            inexact.add(n.id)
        elif n.kind == "ffn" and any(dep.id in inexact for dep in g.node_deps(n)):
            inexact.add(n.id)
    dim: dict[int, int] = {}
    occupant: list = []       # per dim: (node id, write time, last read)
    names: list = []
    cleanups: dict[int, list] = {}
    for n in order:
        t = T[n.id]
        best = None
        for dd, (a, ta, ra) in enumerate(occupant):
            if ra >= end:
                continue
            lo = max(ra, ta + 1, 2)
            lo += lo % 2
            # an FFN node may zero the old value in the sub-layer that writes it
            hi = t + 1 if (n.kind == "ffn" and a not in inexact) else t
            cands = [c for c in range(lo, hi, 2) if load[c] < cap]
            if not cands:
                continue
            c = min(cands, key=lambda c: (load[c], c))
            if best is None or (load[c], dd) < (load[best[1]], best[0]):
                best = (dd, c)
        if best is None:
            dim[n.id] = len(occupant)
            occupant.append((n.id, t, last[n.id]))
            names.append([n.name])
        else:
            dd, c = best
            cleanups.setdefault(c, []).append(dd)
            load[c] += 1
            dim[n.id] = dd
            occupant[dd] = (n.id, t, last[n.id])
            names[dd].append(n.name)
    for c in cleanups:
        cleanups[c].sort()
    return dim, len(occupant), cleanups, names


def build(outdir: str | Path | None = None) -> Path:
    from safetensors.numpy import save_file
    out = Path(outdir) if outdir else BUILD_DIR
    out.mkdir(parents=True, exist_ok=True)
    cfg, tensors = lower()
    # Written under temporary names and renamed: parallel test workers may
    # build the same directory at once, and a reader must never see half a file.
    tmp = f".tmp.{os.getpid()}"
    save_file(dict(sorted(tensors.items())), str(out / (WEIGHTS + tmp)), metadata={"format": "isowasm-analytic-v1"})
    (out / (CONFIG + tmp)).write_text(json.dumps(cfg, indent=1, sort_keys=True) + "\n")
    os.replace(out / (WEIGHTS + tmp), out / WEIGHTS)
    os.replace(out / (CONFIG + tmp), out / CONFIG)
    return out


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_digest(outdir: str | Path) -> str:
    """The identity of a built model: sha256 over every tensor (name, dtype,
    shape, bytes; by name) and the config's canonical JSON, so it does not
    depend on how a safetensors version lays out its header."""
    from safetensors.numpy import load_file
    d = Path(outdir)
    h = hashlib.sha256()
    for name, t in sorted(load_file(str(d / WEIGHTS)).items()):
        h.update(f"{name}\0{t.dtype.str}\0{t.shape}\0".encode())
        h.update(np.ascontiguousarray(t).tobytes())
    cfg = json.loads((d / CONFIG).read_text())
    h.update(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


if __name__ == "__main__":
    p = build(sys.argv[1] if len(sys.argv) > 1 else None)
    print(p / WEIGHTS, sha256(p / WEIGHTS), "weights digest", weights_digest(p))
