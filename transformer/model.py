"""The analytic transformer as a standard PyTorch module (float64).

Token embedding + positional features (closed formulas of the position, see
`transformer.graph.posfeat`) -> L x [multi-head attention with softmax at a
fixed scale, ReGLU FFN] on a residual stream -> unembedding -> argmax.
Greedy decoding keeps a KV cache per layer.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import torch

from isowasm.transformer import vocab
from isowasm.transformer.backends import Decoder

PREFILL_CHUNK = 256


def pos_features(cfg, positions: torch.Tensor, d: int) -> torch.Tensor:
    """(n, d) positional part of the residual stream."""
    p = positions.to(torch.int64)
    out = torch.zeros(p.shape[0], d, dtype=torch.float64, device=p.device)
    for dim, kind, k in cfg["pos_features"]:
        if kind == "pos":
            v = p + k
        elif kind == "sq":
            v = p * p
        elif kind == "lo":
            v = torch.where(p >= k, torch.remainder(p - k, 256), torch.zeros_like(p))
        elif kind == "hi":
            v = torch.where(p >= k, torch.div(p - k, 256, rounding_mode="floor"), torch.zeros_like(p))
        elif kind == "byte":
            v = torch.remainder(torch.div(p, 256 ** k, rounding_mode="floor"), 256)
        else:
            raise ValueError(kind)
        out[:, dim] = v.to(torch.float64)
    return out


class AnalyticTransformer(torch.nn.Module):
    def __init__(self, cfg: dict, tensors: dict):
        super().__init__()
        self.cfg = cfg
        self.d = cfg["d_model"]
        self.L = cfg["n_layers"]
        self.H = cfg["n_heads"]
        self.dk = cfg["d_head_qk"]
        self.dv = cfg["d_head_v"]
        self.scale = float(cfg["attn_scale"])
        f64 = torch.float64
        self.embed = torch.nn.Embedding.from_pretrained(tensors["embed"].to(f64), freeze=True)
        self.register_buffer("unembed", tensors["unembed"].to(f64))
        self.heads: list[int] = []   # heads computed per layer
        self.head_index: list[list[int]] = []   # which of the layer's n_heads they are
        # per layer: the heads' projections fused into one matrix (d, H*(2dk+dv)),
        # the output projection (H*dv, d), and the FFN's two input matrices (d, 2F)
        for l in range(self.L):
            t = {k: tensors[f"layers.{l}.{k}"].to(f64) for k in
                 ("attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.wu", "ffn.wv", "ffn.wo")}
            d = self.d
            # Heads whose value or output projection is all zero add exactly
            # 0.0 to the residual stream (layers with fewer heads than n_heads
            # are padded with them): they are left out of the computation.
            live = [h for h in range(self.H) if t["attn.wv"][h].any() and t["attn.wo"][h].any()]
            self.heads.append(len(live))
            self.head_index.append(live)
            H = len(live)
            wq = t["attn.wq"][live].permute(1, 0, 2).reshape(d, H * self.dk)
            wk = t["attn.wk"][live].permute(1, 0, 2).reshape(d, H * self.dk)
            wv = t["attn.wv"][live].permute(1, 0, 2).reshape(d, H * self.dv)
            self.register_buffer(f"w_in{l}", torch.cat([wq, wk, wv], dim=1).contiguous())
            self.register_buffer(f"w_o{l}", t["attn.wo"][live].reshape(H * self.dv, d).contiguous())
            self.register_buffer(f"w_ff{l}", torch.cat([t["ffn.wu"], t["ffn.wv"]], dim=1).contiguous())
            self.register_buffer(f"w_fo{l}", t["ffn.wo"].contiguous())
        self.F = cfg["d_ffn"]

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, start: int = 0, cache: list | None = None, probe: list | None = None):
        """ids: (n,) token ids at positions start..start+n-1. cache: per layer
        [K (H, cap, dk), V (H, cap, dv)] holding positions 0..start-1; it is
        extended (and grown) here. Returns (logits (n, V), residual (n, d), cache).
        `probe`: a list that receives, per layer, the last position's scaled
        attention scores (H, positions), for diagnostics."""
        n = ids.shape[0]
        dk, dv = self.dk, self.dv
        total = start + n
        if cache is None:
            cache = [None] * self.L
        dev = self.unembed.device
        ids = ids.to(dev)
        pos = torch.arange(start, total, device=dev)
        x = self.embed(ids) + pos_features(self.cfg, pos, self.d)
        # the causal mask only concerns the chunk's own keys (key after query)
        new = torch.arange(n, device=dev)
        mask = (new[None, :] > new[:, None])[None] if n > 1 else None
        for l in range(self.L):
            H = self.heads[l]
            c = cache[l]
            if c is None or c[0].shape[1] < total:
                cap = max(1024, 2 * total)
                K = torch.zeros(H, cap, dk, dtype=torch.float64, device=dev)
                V = torch.zeros(H, cap, dv, dtype=torch.float64, device=dev)
                if c is not None:
                    K[:, :start] = c[0][:, :start]
                    V[:, :start] = c[1][:, :start]
                c = cache[l] = [K, V]
            qkv = x @ getattr(self, f"w_in{l}")
            q = qkv[:, :H * dk].reshape(n, H, dk).transpose(0, 1)
            c[0][:, start:total] = qkv[:, H * dk:2 * H * dk].reshape(n, H, dk).transpose(0, 1)
            c[1][:, start:total] = qkv[:, 2 * H * dk:].reshape(n, H, dv).transpose(0, 1)
            # scaling q rather than the (chunk x positions) scores saves a pass
            # over them; the built scale is a power of two, so both round alike
            s = torch.matmul(q * self.scale, c[0][:, :total].transpose(1, 2))
            if mask is not None:
                s[:, :, start:].masked_fill_(mask, float("-inf"))
            if probe is not None:
                probe.append(s[:, -1, :].clone())
            a = torch.softmax(s, dim=-1)
            o = torch.matmul(a, c[1][:, :total])            # (H, n, dv)
            x = x + o.transpose(0, 1).reshape(n, H * dv) @ getattr(self, f"w_o{l}")
            uv = x @ getattr(self, f"w_ff{l}")
            x = x + (torch.relu(uv[:, :self.F]) * uv[:, self.F:]) @ getattr(self, f"w_fo{l}")
        return x @ self.unembed, x, cache

    def session(self, draft: list[str] | None = None) -> "Session":
        return Session(self, draft)


class Session(Decoder):
    """Greedy decoding state: the model as a `transformer.backends.Decoder`.

    With a `draft` (the whole token sequence some other decoder expects:
    prompt and continuation), decoding is *speculative*: the next draft
    tokens go through the model as one chunk, and a chunk position's logits
    are used only when every token before it is the one greedy decoding
    chose. The causal mask makes those logits the model's own on the
    committed prefix, so the tokens generated are this model's greedy decode
    whatever the draft says; a draft that departs from them only ends the
    speculation (the rest is decoded a token at a time)."""

    def __init__(self, model: AnalyticTransformer, draft: list[str] | None = None):
        self.m = model
        self.cache = None
        self.n = 0                   # committed positions (the cache may hold more, fed ahead)
        self.logits = None
        self.resid_last = None
        self.draft = [vocab.INDEX[t] for t in draft] if draft is not None else None
        self.ahead: deque = deque()  # (token id, logits, residual) of positions fed ahead
        self.accepted = 0            # draft tokens taken without a forward pass of their own

    def _forward(self, ids):
        t = torch.tensor(ids, dtype=torch.int64)
        logits, x, self.cache = self.m(t, self.n, self.cache)
        return logits, x

    def _run(self, ids):
        logits, x = self._forward(ids)
        self.n += len(ids)
        self.logits, self.resid_last = logits[-1], x[-1]

    def _chunk(self) -> int:
        """Draft tokens per forward pass: bounded so that one layer's scores
        (heads x chunk x positions, float64) stay near 256 MiB."""
        per_query = max(self.m.heads) * (self.n + 1)
        return max(1, min(1024, (1 << 25) // per_query))

    def feed_ids(self, ids):
        if len(ids) != 1:        # a prompt: prefill in chunks
            self.ahead.clear()
            for i in range(0, len(ids), PREFILL_CHUNK):
                self._run(ids[i:i + PREFILL_CHUNK])
            return
        tid = ids[0]
        if self.ahead and self.ahead[0][0] == tid:
            _, self.logits, self.resid_last = self.ahead.popleft()
            self.n += 1
            self.accepted += 1
            return
        if self.ahead or (self.draft is not None and (self.n >= len(self.draft) or self.draft[self.n] != tid)):
            # greedy decoding left the draft: positions fed ahead are stale
            # (the next forward pass overwrites them) and speculation ends
            self.ahead.clear()
            self.draft = None
        if self.draft is None:
            self._run([tid])
            return
        chunk = self.draft[self.n:self.n + self._chunk()]
        logits, x = self._forward(chunk)
        self.ahead.extend(zip(chunk[1:], logits[1:], x[1:]))
        self.n += 1
        self.logits, self.resid_last = logits[0], x[0]

    def next_id(self) -> int:
        if self.logits is None:
            raise RuntimeError("next_id: no position has been fed yet")
        return int(torch.argmax(self.logits))

    def resid(self, name):
        if self.resid_last is None:
            raise RuntimeError(f"resid({name!r}): no position has been fed yet")
        return float(self.resid_last[self.m.cfg["diag_dims"][name]])


def load_model(path: str | Path | None = None, build_if_missing: bool = True,
               device: str = "cpu") -> AnalyticTransformer:
    from safetensors.torch import load_file

    from isowasm.transformer.build import BUILD_DIR, CONFIG, WEIGHTS, build
    d = Path(path) if path else BUILD_DIR
    if not (d / WEIGHTS).exists():
        if not build_if_missing:
            raise FileNotFoundError(d / WEIGHTS)
        build(d)
    cfg = json.loads((d / CONFIG).read_text())
    tensors = load_file(str(d / WEIGHTS))
    torch.set_num_threads(1)
    return AnalyticTransformer(cfg, tensors).to(device)
