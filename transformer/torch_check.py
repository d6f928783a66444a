"""The PyTorch module on long traces: teacher-forced checks at sampled
positions with full dense attention (issue 16, item 3).

`AnalyticTransformer` (transformer/model.py) costs O(n) per token, O(N^2)
per trace: decoding every long trace with it is 100+ CPU-hours. This check
runs the module's own weights and layer arithmetic at a sample P of the
trace's positions (>= 2,000, the last 500 included), each with the dense
softmax over *all* earlier positions, every head, every layer:

* the keys and values of the other positions come from the residual
  streams the Rust engine computes (`Session.feed_layers`, the engine fed
  the reference sequence: prompt + trace tokens) — but projected with the
  module's own W_k / W_v (`w_in{l}`), and the engine's residuals are
  themselves checked at every position of P (below);
* layer-major: for l = 0 .. L-1, the queries of P are the module's own —
  (x_l(p) @ W_q) * attn_scale from the residual the *torch* computation
  reached at p (embedding + positional features, then its own earlier
  layers) — and the engine's layer-l residuals of every position j <=
  max(P) stream past in blocks: k_j, v_j = x_l(j) W_k, x_l(j) W_v; scores
  s = (q * scale) . k_j (as the module forms them); a float64 online
  softmax per (head, p) over j = 0 .. p (causal, the position itself
  included, as the module's mask): running max m, sum of weights
  sum_j e^(s_j - m), weighted value sum. Memory O(|P| * heads * dv).
* then at each p the module's layer code: x += o W_o; x += (relu(x W_u) *
  (x W_v)) W_o^ffn, the unembedding and torch.argmax; checked: (a) the
  argmax is the reference's next token, (b) at every layer boundary the
  torch residual equals the engine's (|t - e| <= TOL * max(1, |e|) per
  dimension), (c) the argmax margin (best logit - runner-up) is reported.

The only arithmetic difference from `AnalyticTransformer.forward` is the
softmax's normalisation order: the module computes sum_j (w_j / W) v_j,
this computes (sum_j w_j v_j) / W. With the construction's scores the
weights are exactly 1 (the winners: ties, or every position of an
averaging head) or exactly 0 (every other position, e^(-scale * gap) with
scale * gap >= 746 underflows), so here the value sums are exact integer
sums and the means correctly rounded — the engine's sum / count; the
module's per-weight rounding is a few ulps away. TOL = 1e-9 relative
(absolute below 1) covers that and any summation order by orders of
magnitude (the residual's inexact entries are means and products of means
with counts below 2^24: a few ulps, < 1e-12 relative), while a wrong
attention winner or FFN output moves a residual entry by >= 2^-8
(bytes, flags, counts and positions are integers; the DSL's smallest
constant step is far above 1e-9).

`conformance/test_torch_long.py` also checks this arithmetic against the
module's own forward pass (dense prefill) on a short trace.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
import torch

TOL = 1e-9
DEFAULT_POSITIONS = 2000
DEFAULT_TAIL = 500
ENGINE_BLOCK = 4096
SCORE_ELEMS = 1 << 20     # (heads x queries x keys) float64 scores per sub-block: 8 MiB


def choose_positions(first: int, last: int, n: int = DEFAULT_POSITIONS, tail: int = DEFAULT_TAIL,
                     seed: int = 0) -> list[int]:
    """Positions to check among first..last (inclusive): every one when there
    are at most n; else the last `tail`, `first` itself, and one position
    drawn (seeded) from each of n - tail - 1 equal strata of the rest."""
    total = last - first + 1
    if total <= n:
        return list(range(first, last + 1))
    tail = min(tail, n)
    out = set(range(last - tail + 1, last + 1))
    lo, hi = first, last - tail          # the rest: lo..hi inclusive
    k = n - tail
    if k > 0:
        out.add(lo)
        rng = random.Random(seed)
        span = hi - lo + 1
        strata = k - 1
        for s in range(strata):
            a = lo + 1 + (span - 1) * s // strata
            b = lo + 1 + (span - 1) * (s + 1) // strata
            if b > a:
                out.add(rng.randrange(a, b))
    # strata can collide only when they are a position wide; fill up from the front
    p = lo
    while len(out) < n and p <= hi:
        out.add(p)
        p += 1
    return sorted(out)


class _Weights:
    """The module's buffers, split per layer into the pieces used here."""

    def __init__(self, model):
        self.m = model
        self.L = model.L
        self.dk, self.dv, self.d, self.F = model.dk, model.dv, model.d, model.F
        self.scale = model.scale
        self.w_in = [getattr(model, f"w_in{l}") for l in range(self.L)]
        self.w_o = [getattr(model, f"w_o{l}") for l in range(self.L)]
        self.w_ff = [getattr(model, f"w_ff{l}") for l in range(self.L)]
        self.w_fo = [getattr(model, f"w_fo{l}") for l in range(self.L)]
        self.H = list(model.heads)
        names = model.cfg.get("head_names")
        self.head_names = [[names[l][h] if names else f"L{l}H{h}" for h in model.head_index[l]]
                           for l in range(self.L)]
        dn = model.cfg.get("dim_names")
        self.dim_names = dn if dn else [[str(i)] for i in range(self.d)]

    def embed(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        from isowasm.transformer.model import pos_features
        return self.m.embed(ids) + pos_features(self.m.cfg, pos, self.d)

    def writers(self, l: int, dim: int) -> list[str]:
        """What writes residual dimension `dim` in layer l: head names (W_o
        rows) and "ffn"."""
        out = []
        wo = self.w_o[l]
        for h in range(self.H[l]):
            if wo[h * self.dv:(h + 1) * self.dv, dim].any():
                out.append(self.head_names[l][h])
        if self.w_fo[l][:, dim].any():
            out.append("ffn")
        return out


def _rel_err(t: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Per element |t - e| / max(1, |e|); NaN on either side counts as inf."""
    err = (t - e).abs() / torch.clamp(e.abs(), min=1.0)
    return torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)


class _Stream:
    """The engine's layer-l residuals of positions 0 .. end-1, in blocks
    (fresh session each time). An engine error at position j ends the
    stream after j's predecessors; `error` then holds (j, message)."""

    def __init__(self, engine, seq: list[int], l: int, end: int, with_final: bool):
        self.engine, self.seq, self.l, self.end = engine, seq, l, end
        self.layers = [l, l + 1] if with_final else [l]
        self.error = None

    def blocks(self, d: int):
        s = self.engine.session()
        a = 0
        nlay = len(self.layers)
        while a < self.end:
            b = min(a + ENGINE_BLOCK, self.end)
            try:
                raw = s.feed_layers(self.seq[a:b], self.layers)
            except RuntimeError as e:
                j = s.position
                self.error = (j, str(e))
                if j > a:   # replay the block's good part on a fresh session
                    s = self.engine.session()
                    if a:
                        s.feed(self.seq[:a])
                    raw = s.feed_layers(self.seq[a:j], self.layers)
                    yield a, np.frombuffer(raw, dtype="<f8").reshape(j - a, nlay, d)
                return
            yield a, np.frombuffer(raw, dtype="<f8").reshape(b - a, nlay, d)
            a = b


def check_sequence(model, engine, seq: list[int], check_from: int, positions: list[int] | None = None,
                   n_positions: int = DEFAULT_POSITIONS, tail: int = DEFAULT_TAIL, seed: int = 0,
                   tol: float = TOL, progress=None, keep_final: bool = False) -> dict:
    """Teacher-forced dense-attention check of `model` (AnalyticTransformer)
    on the token-id sequence `seq` (prompt + reference trace): at every
    checked position p (check_from <= p <= len(seq) - 2; `positions`, or
    `choose_positions`), the module's argmax must be seq[p + 1].
    `engine`: an `isowasm_engine.Engine` on the same weights (the keys'
    and values' residual streams). Returns a dict (see ci/torch_long_traces.py);
    with `keep_final`, also "final_residual" (|P|, d) and "checked_positions"."""
    t0 = time.perf_counter()
    W = _Weights(model)
    L, d, dk, dv = W.L, W.d, W.dk, W.dv
    last = len(seq) - 2
    if last < check_from:
        raise ValueError("nothing to check: the sequence ends at the prompt")
    if positions is None:
        positions = choose_positions(check_from, last, n_positions, tail, seed)
    positions = sorted(set(positions))
    if positions[0] < 0 or positions[-1] > last:
        raise ValueError(f"positions must lie in 0..{last}")
    dev = model.unembed.device
    f64 = torch.float64
    P = torch.tensor(positions, dtype=torch.int64, device=dev)
    ids = torch.tensor(seq, dtype=torch.int64)
    x = W.embed(ids[P.cpu()].to(dev), P)               # torch's own x_0(p), (|P|, d)
    failures: list[dict] = []
    engine_error = None
    max_err = 0.0
    err_at = None
    winners = []     # per layer: (H, |P|) winning position of each head (first maximum)
    wsums = []       # per layer: (H, |P|) softmax denominators (the winner's weight is 1 / it)

    def note(kind, p_idx, layer, **kw):
        failures.append({"kind": kind, "position": int(P[p_idx]), "layer": layer, **kw})

    def compare(t, e, boundary):
        """t, e: (|P|, d), torch's and the engine's residual at layer
        boundary `boundary` (0: the embedding, l: after layer l - 1, L: the
        final residual); records a failure per position that differs."""
        nonlocal max_err, err_at
        err = _rel_err(t, e)
        row_max, row_dim = err.max(dim=1)
        if row_max.numel():
            i = int(row_max.argmax())
            if err_at is None or float(row_max[i]) > max_err:
                max_err = float(row_max[i])
                err_at = {"position": int(P[i]), "boundary": boundary, "dim": int(row_dim[i])}
        lw = boundary - 1 if boundary > 0 else None      # the layer that wrote it
        for i in torch.nonzero(row_max > tol).flatten().tolist():
            dims = torch.nonzero(err[i] > tol).flatten().tolist()
            kw = {"n_dims": len(dims),
                  "dims": [{"dim": k, "names": W.dim_names[k], "torch": float(t[i, k]),
                            "engine": float(e[i, k])} for k in dims[:8]]}
            if lw is not None:
                sus = sorted({w for k in dims for w in W.writers(lw, k)})
                kw["writers"] = sus
                kw["heads"] = [{"head": W.head_names[lw][h], "winner": int(winners[lw][h, i]),
                                "winner_token": _tok(seq[int(winners[lw][h, i])]),
                                "winner_weight": float(1.0 / wsums[lw][h, i])}
                               for h in range(W.H[lw]) if W.head_names[lw][h] in sus]
            note("embedding" if lw is None else "residual", i, lw, boundary=boundary, **kw)

    for l in range(L):
        H = W.H[l]
        qkv = x @ W.w_in[l]
        Q = (qkv[:, :H * dk].reshape(-1, H, dk).transpose(0, 1) * W.scale).contiguous()   # (H, |P|, dk)
        npos = P.shape[0]
        M = torch.full((H, npos), -math.inf, dtype=f64, device=dev)
        S = torch.zeros((H, npos), dtype=f64, device=dev)
        A = torch.zeros((H, npos, dv), dtype=f64, device=dev)
        best = torch.zeros((H, npos), dtype=torch.int64, device=dev)
        buf = torch.empty(SCORE_ELEMS + H * npos * 16, dtype=f64, device=dev)
        zmask = torch.empty(buf.shape[0], dtype=torch.bool, device=dev)
        eng_rows = torch.full((npos, 2 if l == L - 1 else 1, d), math.nan, dtype=f64, device=dev)
        end = int(P[-1]) + 1
        st = _Stream(engine, seq, l, end, with_final=(l == L - 1))
        for a, blk in st.blocks(d):
            n = blk.shape[0]
            b = a + n
            X = torch.from_numpy(blk.copy()).to(dev)
            # keep the engine's rows at checked positions
            lo_i = int(torch.searchsorted(P, torch.tensor(a, device=dev)))
            hi_i = int(torch.searchsorted(P, torch.tensor(b, device=dev)))
            if hi_i > lo_i:
                eng_rows[lo_i:hi_i] = X[P[lo_i:hi_i] - a]
            kv = X[:, 0, :] @ W.w_in[l][:, H * dk:]
            K = kv[:, :H * dk].reshape(n, H, dk).transpose(0, 1)          # (H, n, dk)
            V = kv[:, H * dk:].reshape(n, H, dv).transpose(0, 1).contiguous()   # (H, n, dv)
            Kt = K.transpose(1, 2).contiguous()                          # (H, dk, n)
            if lo_i >= npos:
                continue
            sub = max(16, min(n, SCORE_ELEMS // max(1, H * (npos - lo_i))))
            for c0 in range(0, n, sub):
                c1 = min(n, c0 + sub)
                c = c1 - c0
                ja = a + c0
                j0 = int(torch.searchsorted(P, torch.tensor(ja, device=dev)))
                if j0 >= npos:
                    break
                nq = npos - j0          # the queries at positions >= ja (the rest lie before it)
                s = buf[:H * nq * c].view(H, nq, c)
                torch.bmm(Q[:, j0:], Kt[:, :, c0:c1], out=s)            # (q * scale) . k, as the module
                pq = P[j0:]
                if int(pq[0]) < ja + c - 1:    # causal: a key after its query is masked out
                    jpos = torch.arange(ja, ja + c, device=dev)
                    s.masked_fill_((jpos[None, :] > pq[:, None])[None], -math.inf)
                mb, ib = s.max(dim=-1)
                m_old = M[:, j0:]
                m_new = torch.maximum(m_old, mb)
                alpha = torch.exp(m_old - m_new)
                s.sub_(m_new[..., None])
                # w = exp(s - m_new); exp(t) is exactly 0.0 in float64 for t < -746 (it
                # underflows), and torch's exp is slow there: those entries are set to
                # 0 directly (the same bits; checked in conformance/test_torch_long.py)
                z = zmask[:H * nq * c].view(H, nq, c)
                torch.lt(s, -750.0, out=z)
                s.masked_fill_(z, 0.0).exp_().masked_fill_(z, 0.0)
                S[:, j0:] = S[:, j0:] * alpha + s.sum(dim=-1)
                A[:, j0:] = torch.baddbmm(A[:, j0:] * alpha[..., None], s, V[:, c0:c1])
                best[:, j0:] = torch.where(mb > m_old, ib + ja, best[:, j0:])
                M[:, j0:] = m_new
            if progress:
                progress(l, b, end)
        if st.error is not None:
            j, msg = st.error
            engine_error = {"kind": "engine-error", "position": j, "layer": l, "message": msg}
            keep = P < j
            if not bool(keep.any()):
                positions = []
                break
            k = int(keep.sum())
            P, x, M, S, A, best, eng_rows = P[:k], x[:k], M[:, :k], S[:, :k], A[:, :k], best[:, :k], eng_rows[:k]
            winners = [w_[:, :k] for w_ in winners]
            wsums = [w_[:, :k] for w_ in wsums]
            failures = [f for f in failures if f["position"] < j]
        winners.append(best)
        wsums.append(S)
        compare(x, eng_rows[:, 0], l)           # x_l(p): torch's own against the engine's
        o = (A / S[..., None])                                   # (H, |P|, dv)
        x = x + o.transpose(0, 1).reshape(-1, H * dv) @ W.w_o[l]
        uv = x @ W.w_ff[l]
        x = x + (torch.relu(uv[:, :W.F]) * uv[:, W.F:]) @ W.w_fo[l]
        if l == L - 1:
            compare(x, eng_rows[:, 1], L)
    res = {"positions": int(P.shape[0]) if positions else 0,
           "scores": int(sum(W.H) * (int(P.sum()) + int(P.shape[0]))) if positions else 0, "tokens": len(seq) - check_from - 1,
           "sequence": len(seq)}
    if positions:
        logits = x @ model.unembed
        pred = torch.argmax(logits, dim=-1)
        top2 = torch.topk(logits, 2, dim=-1).values
        margin = top2[:, 0] - top2[:, 1]
        exp = torch.tensor([seq[int(p) + 1] for p in P], dtype=torch.int64, device=dev)
        for i in torch.nonzero(pred != exp).flatten().tolist():
            e_, g_ = int(exp[i]), int(pred[i])
            note("argmax", i, None, expected=_tok(e_), predicted=_tok(g_),
                 margin=float(logits[i, g_] - logits[i, e_]), expected_logit=float(logits[i, e_]),
                 predicted_logit=float(logits[i, g_]))
        ok_rows = pred == exp
        if keep_final:
            res["final_residual"] = x.cpu().numpy()
            res["checked_positions"] = P.cpu().tolist()
        res.update({
            "first_position": int(P[0]), "last_position": int(P[-1]),
            "tail_covered": int(P[-1]) == last,
            "min_margin": float(margin[ok_rows].min()) if bool(ok_rows.any()) else None,
            "min_margin_at": int(P[int(torch.where(ok_rows, margin, torch.full_like(margin, math.inf)).argmin())])
            if bool(ok_rows.any()) else None,
        })
    if engine_error is not None:
        failures.append(engine_error)
    rank = {"engine-error": -1, "embedding": 0, "residual": 1, "argmax": 2}
    failures.sort(key=lambda f: (f["position"], rank[f["kind"]], f.get("boundary", 0)))
    res.update({
        "ok": not failures,
        "max_residual_error": max_err,
        "max_residual_error_at": err_at,
        "tolerance": tol,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "seconds": round(time.perf_counter() - t0, 3),
    })
    return res


def _tok(t: int) -> str:
    from isowasm.transformer import vocab
    return vocab.TOKENS[t]


def describe_failure(f: dict | None) -> str:
    """One line for a failure dict of `check_sequence`."""
    if f is None:
        return "ok"
    k = f["kind"]
    if k == "argmax":
        return (f"position {f['position']}: the module predicts {f['predicted']!r}, the reference has "
                f"{f['expected']!r} (logit margin {f['margin']:.6g})")
    if k == "engine-error":
        return f"position {f['position']}, layer {f['layer']}: the engine stopped: {f['message']}"
    dims = ", ".join(f"{d['dim']} ({'/'.join(d['names'][:2])}): torch {d['torch']!r} engine {d['engine']!r}"
                     for d in f.get("dims", [])[:3])
    heads = "; ".join(f"head {h['head']} attends to position {h['winner']} ({h['winner_token']}) with "
                      f"weight {h['winner_weight']:.3g}"
                      for h in f.get("heads", []))
    if k == "embedding":
        s = f"position {f['position']}: the embedding differs from the engine's in {f['n_dims']} dims: {dims}"
    else:
        s = (f"position {f['position']}, layer {f['layer']}: its output residual differs from the engine's "
             f"in {f['n_dims']} dims: {dims}; written there by {', '.join(f['writers']) or 'nothing'}")
    if heads:
        s += f"; {heads}"
    return s


def check_trace(case, trace_text: str, model=None, engine=None, **kw) -> dict:
    """`check_sequence` on `case` (a backends Case) and its reference trace
    text (canonical: the input line, then the steps), with the ids built as
    `engine_backend.verify_trace` builds them."""
    from isowasm.transformer.engine_backend import trace_ids
    prompt, ref = trace_ids(case, trace_text)
    if model is None:
        from isowasm.transformer.model import load_model
        model = load_model()
    if engine is None:
        from isowasm.transformer.engine_backend import load_engine
        engine = load_engine()[0]
    return check_sequence(model, engine, prompt + ref, len(prompt) - 1, **kw)
