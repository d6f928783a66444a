"""The generic hull engine (transformer/ENGINE.md, "Generic hull engine";
format: transformer/MODEL_FORMAT.md) on a model that is not isowasm's
construction: a small hand-built "pointer-chasing memory" transformer with
2-D heads, saved in the documented format, decoded greedily by the engine
and by the PyTorch module (transformer/model.py, float64, dense softmax),
token by token, with the logits and the heads' outputs compared at every
position.

The toy machine. Tokens: BOS, K0..K7 (addresses), V0..V5 (values). A prompt
is BOS then pairs "K_a V_v" (write v at address a). At a K_a the next token
is V_m, m the latest value written at a; at a V_v it is K_(v + c), c = 1 when
the mean of the values over all positions so far exceeds sqrt(1/2), else 0.

Heads (d_head_qk = 2, attn_scale = 2^20):
  layer 0  prev   key (2j, -j^2), query (i-1, 1): the previous token (keys
                  on a parabola: every key a hull vertex)
           vavg   key (j, isV), query (isBOS, 1): every V position ties on one
                  horizontal hull edge (collinear keys, an edge orthogonal to
                  q): the mean of their values
           (an all-zero padding slot)
  layer 1  mem    key (2a, -a^2 + j/1024 - 4(1 - w)), query (b, 1): the latest
                  write at address b (w: the position is a write)
           tieavg the same keys without j/1024: every write at b ties
                  (duplicate keys), or, with no write at b, the writes at b-1
                  and b+1 tie on a hull edge: their mean
           mean   W_q = 0: the uniform average of the values
  layer 1 FFN: c = relu(K(mean - tau)) - relu(K(mean - tau) - 1), tau = sqrt(1/2)
(|mean - tau| >= 1/(12 n^2) by |2S^2 - n^2| >= 1, so K = 2^19 saturates it).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
iso = pytest.importorskip("isowasm_engine")
if not hasattr(iso.Engine, "generic"):
    pytest.skip("isowasm_engine predates the generic hull engine: pip install ./transformer/engine",
                allow_module_level=True)

from isowasm.transformer.model import AnalyticTransformer  # noqa: E402

A, B = 8, 6
VOCAB = ["BOS"] + [f"K{a}" for a in range(A)] + [f"V{v}" for v in range(B)]
BOS, K0, V0 = 0, 1, 1 + A
(ONE, POS, POSM1, SQ, ISK, ISV, ADDR, ADDR2, VAL, PREV_A, PREV_A2, AVGV, MEM, AVGAT,
 MEAN, C, ISBOS) = range(17)
D = 17
SCALE = 2.0 ** 20
DELTA = 2.0 ** -10
KC = 2.0 ** 19
TAU = math.sqrt(0.5)
G = 1000.0
HEAD_DIMS = {"prev": (0, PREV_A), "vavg": (0, AVGV), "mem": (1, MEM), "tieavg": (1, AVGAT), "mean": (1, MEAN)}


def toy_model(scale=SCALE, dk=2, ffn_pad=0):
    """ffn_pad: that many all-zero FFN neurons before the two live ones (the
    format's padding of a narrower layer, here at the front)."""
    H, dv, F, L, V = 3, 2, 2 + ffn_pad, 2, len(VOCAB)
    E = np.zeros((V, D))
    E[:, ONE] = 1
    E[BOS, ISBOS] = 1
    for a in range(A):
        E[K0 + a, ISK] = 1
        E[K0 + a, ADDR] = a
        E[K0 + a, ADDR2] = a * a
    for v in range(B):
        E[V0 + v, ISV] = 1
        E[V0 + v, VAL] = v
    t = {"embed": E}
    for l in range(L):
        for k in ("wq", "wk"):
            t[f"layers.{l}.attn.{k}"] = np.zeros((H, D, dk))
        t[f"layers.{l}.attn.wv"] = np.zeros((H, D, dv))
        t[f"layers.{l}.attn.wo"] = np.zeros((H, dv, D))
        t[f"layers.{l}.ffn.wu"] = np.zeros((D, F))
        t[f"layers.{l}.ffn.wv"] = np.zeros((D, F))
        t[f"layers.{l}.ffn.wo"] = np.zeros((F, D))
    q0, k0, v0, o0 = (t[f"layers.0.attn.{k}"] for k in ("wq", "wk", "wv", "wo"))
    q1, k1, v1, o1 = (t[f"layers.1.attn.{k}"] for k in ("wq", "wk", "wv", "wo"))
    # layer 0, head 0 "prev": key (2j, -j^2), query (i - 1, 1)
    q0[0, POSM1, 0] = 1
    q0[0, ONE, 1] = 1
    k0[0, POS, 0] = 2
    k0[0, SQ, 1] = -1
    v0[0, ADDR, 0] = 1
    v0[0, ADDR2, 1] = 1
    o0[0, 0, PREV_A] = 1
    o0[0, 1, PREV_A2] = 1
    # layer 0, head 1 "vavg": key (j, isV), query (isBOS, 1)
    q0[1, ISBOS, 0] = 1
    q0[1, ONE, 1] = 1
    k0[1, POS, 0] = 1
    k0[1, ISV, 1] = 1
    v0[1, VAL, 0] = 1
    o0[1, 0, AVGV] = 1
    # layer 1, heads 0 "mem" and 1 "tieavg": key (2a, -a^2 (+ j/1024) - 4 (1 - w)), query (b, 1)
    for h, out in ((0, MEM), (1, AVGAT)):
        q1[h, ADDR, 0] = 1
        q1[h, ONE, 1] = 1
        k1[h, PREV_A, 0] = 2
        k1[h, PREV_A2, 1] = -1
        k1[h, ISV, 1] = 4
        k1[h, ONE, 1] = -4
        v1[h, VAL, 0] = 1
        o1[h, 0, out] = 1
    k1[0, POS, 1] = DELTA
    # layer 1, head 2 "mean": W_q = 0
    k1[2, ONE, 0] = 1
    v1[2, VAL, 0] = 1
    o1[2, 0, MEAN] = 1
    if dk == 3:   # a head with three query/key dimensions (for the refusal test)
        q0[0, ONE, 2] = 1
        k0[0, ONE, 2] = 1
    # layer 1 FFN: c = relu(K (mean - tau)) - relu(K (mean - tau) - 1)
    wu, wg, wd = (t[f"layers.1.ffn.{k}"] for k in ("wu", "wv", "wo"))
    for j, (off, sign) in enumerate(((0.0, 1.0), (-1.0, -1.0)), start=ffn_pad):
        wu[MEAN, j] = KC
        wu[ONE, j] = -KC * TAU + off
        wg[ONE, j] = 1
        wd[j, C] = sign
    U = np.zeros((D, V))
    for a in range(A):
        U[VAL, K0 + a] = 2 * a
        U[C, K0 + a] = 2 * a
        U[ONE, K0 + a] = -a * a
        U[ISV, K0 + a] = G
    for v in range(B):
        U[MEM, V0 + v] = 2 * v
        U[ONE, V0 + v] = -v * v
        U[ISK, V0 + v] = G
    t["unembed"] = U
    cfg = {
        "model": "toy pointer-chasing memory (conformance/test_hull_engine.py)",
        "d_model": D, "n_layers": L, "n_heads": H, "d_head_qk": dk, "d_head_v": dv, "d_ffn": F,
        "vocab": VOCAB, "vocab_size": V, "attn_scale": scale,
        "pos_features": [[POS, "pos", 0], [POSM1, "pos", -1], [SQ, "sq", 0]],
        "head_names": [["prev", "vavg", "pad"], ["mem", "tieavg", "mean"]],
    }
    return cfg, {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in t.items()}


def save(cfg, tensors, d: Path) -> Path:
    from safetensors.numpy import save_file
    d.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(tensors.items())), str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    return d


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    cfg, tensors = toy_model()
    d = save(cfg, tensors, tmp_path_factory.mktemp("toy"))
    tm = AnalyticTransformer(cfg, {k: torch.from_numpy(v) for k, v in tensors.items()})
    return d, tm


def prompt(seed: int, sparse: bool = False) -> list[int]:
    rng = random.Random(seed)
    addrs = list(range(0, A, 2)) if sparse else list(range(A))
    rng.shuffle(addrs)
    addrs += [rng.choice(addrs) for _ in range(rng.randrange(0, 8))]   # rewrites
    ids = [BOS]
    for a in addrs:
        ids += [K0 + a, V0 + rng.randrange(B)]
    return ids


def machine(ids: list[int], n: int) -> list[int]:
    """The toy machine itself (prompts that write every address)."""
    seq = list(ids)
    out = []
    for _ in range(n):
        mem = {}
        for i in range(1, len(seq) - 1):
            if K0 <= seq[i] < V0:
                mem[seq[i] - K0] = seq[i + 1] - V0
        last = seq[-1]
        if K0 <= last < V0:
            nxt = V0 + mem[last - K0]
        else:
            vals = [s - V0 if s >= V0 else 0 for s in seq]
            c = 1 if sum(vals) / len(vals) > TAU else 0
            nxt = K0 + (last - V0) + c
        out.append(nxt)
        seq.append(nxt)
    return out


def torch_decode(tm, ids, n):
    """Greedy decoding by the PyTorch module: (tokens, per-step logits, residuals)."""
    logits, x, cache = tm(torch.tensor(ids), 0, None)
    pos = len(ids)
    toks, lg, xs = [], [logits[-1].clone()], [x[-1].clone()]
    for _ in range(n):
        t = int(torch.argmax(lg[-1]))
        toks.append(t)
        logits, x, cache = tm(torch.tensor([t]), pos, cache)
        pos += 1
        lg.append(logits[-1].clone())
        xs.append(x[-1].clone())
    return toks, lg, xs


SEEDS = [(s, False) for s in range(6)] + [(100 + s, True) for s in range(3)]


@pytest.mark.parametrize("seed,sparse", SEEDS)
def test_greedy_decoding_matches_torch(toy, seed, sparse):
    d, tm = toy
    eng = iso.Engine(str(d))
    assert eng.generic                       # d_head_qk = 2: the generic path by default
    assert [h[2] for h in eng.heads()] == ["hull2d"] * 5
    ids = prompt(seed, sparse)
    n = 60
    toks, lg, xs = torch_decode(tm, ids, n)
    if not sparse:
        assert toks == machine(ids, n), "the toy model does not run its machine"
    s = eng.session()
    s.feed(ids)
    for step in range(n + 1):
        # the logits are exact integers in both: equal, not close
        assert s.logits() == lg[step].tolist(), f"logits differ at step {step}"
        x = s.residual()
        for name, (_, dim) in HEAD_DIMS.items():
            assert x[dim] == pytest.approx(float(xs[step][dim]), rel=1e-12, abs=1e-12), (name, step)
        assert x[C] == float(xs[step][C])
        if step == n:
            break
        t = s.next_token()
        assert t == toks[step], f"step {step}: engine {VOCAB[t]}, torch {VOCAB[toks[step]]}"
        s.feed([t])
    st = {name: (corners, scans) for name, corners, scans in s.stats()}
    assert st["prev"][0] >= len(ids) + n     # every parabola key stays a hull vertex (upper or lower)
    assert all(scans == 0 for _, scans in st.values())   # dyadic keys: the O(1) near-tie check decided


def test_ties_are_exercised(toy):
    """The averaging heads see real ties: several writes of one address
    (duplicates), every V position (a collinear edge), and a missing address
    between two written ones (an edge orthogonal to the query)."""
    d, tm = toy
    ids = [BOS, K0 + 2, V0 + 1, K0 + 2, V0 + 4, K0 + 4, V0 + 5, K0 + 3]
    s = iso.Engine(str(d)).session()
    s.feed(ids)
    x = s.residual()
    assert x[AVGAT] == pytest.approx((1 + 4 + 5) / 3)   # address 3 missing: writes at 2 and 4 tie
    assert x[MEM] == 5                                  # the latest of the nearest: position 6
    assert x[AVGV] == pytest.approx((1 + 4 + 5) / 3)    # every V position
    s2 = iso.Engine(str(d)).session()
    s2.feed(ids[:-1] + [K0 + 2])
    assert s2.residual()[AVGAT] == pytest.approx(2.5)   # both writes of address 2 (duplicate keys)
    assert s2.residual()[MEM] == 4
    _, _, xs = torch_decode(tm, ids, 0)
    assert x[AVGAT] == pytest.approx(float(xs[0][AVGAT]), rel=1e-14)


def test_padded_ffn_neurons_change_nothing(toy, tmp_path):
    """Five FFN neurons, the live two last: the same logits, token by token,
    as the two-neuron model (the engine must lay out the gate and linear
    halves by the model's own width)."""
    d, _ = toy
    cfg, tensors = toy_model(ffn_pad=3)
    padded = iso.Engine(str(save(cfg, tensors, tmp_path / "m")))
    ids = prompt(4)
    a, b = iso.Engine(str(d)).session(), padded.session()
    a.feed(ids)
    b.feed(ids)
    toks = []
    for _ in range(40):
        assert b.logits() == a.logits()
        t = a.next_token()
        toks.append(t)
        a.feed([t])
        b.feed([t])
    assert toks == machine(ids, 40)


def test_teacher_forced_verify(toy):
    d, tm = toy
    eng = iso.Engine(str(d))
    ids = prompt(3)
    toks, _, _ = torch_decode(tm, ids, 40)
    r = eng.verify_ids(ids, toks)
    assert r["ok"] and r["checked"] == 40 and r["threads"] == 0
    bad = list(toks)
    bad[17] = K0 + 7 if bad[17] != K0 + 7 else K0
    r = eng.verify_ids(ids, bad)
    assert not r["ok"] and r["first_mismatch"]["index"] == 17
    assert r["first_mismatch"]["position"] == len(ids) + 16


def test_near_tie_is_refused(tmp_path):
    """At scale 2^9 the previous-token head's runner-up (score 1 below the
    maximum) gets softmax weight e^-512 != 0: the engine names the head and
    position rather than return the hardmax answer."""
    cfg, tensors = toy_model(scale=2.0 ** 9)
    d = save(cfg, tensors, tmp_path / "m")
    s = iso.Engine(str(d)).session()
    with pytest.raises(RuntimeError, match=r"head prev \(layer 0\) at position 1: near-tie: position 1 "):
        s.feed(prompt(0))


def test_three_dimensional_head_is_refused(tmp_path):
    cfg, tensors = toy_model(dk=3)
    d = save(cfg, tensors, tmp_path / "m")
    with pytest.raises(ValueError, match=r"head prev \(layer 0, slot 0\): query and key use 3 dimensions"):
        iso.Engine(str(d), generic=True)
    # d_head_qk = 3: not the generic path by default; the classified path refuses it too
    with pytest.raises(ValueError):
        iso.Engine(str(d))


def test_hull_bench_runs():
    ins, qry, corners = iso.hull_bench(20000, "parabola", 20000)
    # every key on the upper chain; the lower chain keeps the two extremes
    # the figures are nanoseconds per key and per query: no hull insert or
    # query takes under 1 ns or over 1 ms
    assert corners == 20000 + 2 and 1 <= ins < 1e6 and 1 <= qry < 1e6
    print(f"hull 2e4 parabola keys: insert {ins:.0f} ns, query {qry:.0f} ns")
