"""The analytic transformer run by a runtime isowasm did not write: the
weights exported to ONNX and decoded greedily by onnxruntime (backend
``transformer-onnx``).

The exported graph is the plain transformer and nothing else: token
embedding + closed-form positional features, per layer multi-head attention
(dense softmax over every earlier position, at the model's fixed scale) and
a ReGLU FFN on the residual stream, then the unembedding; float64
throughout. Its inputs are the new tokens, the position of the first, and
each layer's keys and values of the earlier positions; its outputs are the
logits, the residual stream and the keys and values extended by the new
positions (the usual KV-cache signature). Greedy decoding, the speculative
drafting from the engine and the trace bookkeeping are
`transformer.model.Session`'s: only the forward pass is onnxruntime's, so a
byte-identical trace is evidence that the weights are an ordinary
transformer, not a program for isowasm's own engines.

The ONNX file is exported once into the model's cache directory
(`model.onnx` beside `model.safetensors`).
"""

from __future__ import annotations

import os
from pathlib import Path

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.result import RunResult

ONNX_FILE = "model.onnx"
OPSET = 17


def _export_module(model):
    """A torch module computing one forward pass of `model` (an
    transformer.model.AnalyticTransformer) from explicit KV inputs, in ops
    the ONNX exporter maps one to one."""
    import torch

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model
            d = model.d
            feats = model.cfg["pos_features"]
            sel = torch.zeros(len(feats), d, dtype=torch.float64)
            for i, (dim, _kind, _k) in enumerate(feats):
                sel[i, dim] = 1.0
            self.register_buffer("pos_sel", sel)

        def pos_features(self, p):
            cols = []
            for _dim, kind, k in self.m.cfg["pos_features"]:
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
                cols.append(v.to(torch.float64))
            return torch.stack(cols, dim=1) @ self.pos_sel

        def forward(self, ids, start, *past):
            m = self.m
            n = ids.shape[0]
            pos = start + torch.arange(n, dtype=torch.int64)
            x = m.embed(ids) + self.pos_features(pos)
            present = []
            for layer in range(m.L):
                H, dk, dv = m.heads[layer], m.dk, m.dv
                qkv = x @ getattr(m, f"w_in{layer}")
                q = qkv[:, :H * dk].reshape(n, H, dk).transpose(0, 1)
                k = qkv[:, H * dk:2 * H * dk].reshape(n, H, dk).transpose(0, 1)
                v = qkv[:, 2 * H * dk:].reshape(n, H, dv).transpose(0, 1)
                K = torch.cat([past[2 * layer], k], dim=1)
                V = torch.cat([past[2 * layer + 1], v], dim=1)
                s = torch.matmul(q * m.scale, K.transpose(1, 2))
                kpos = torch.arange(K.shape[1], dtype=torch.int64)
                s = s.masked_fill((kpos[None, :] > pos[:, None])[None], float("-inf"))
                o = torch.matmul(torch.softmax(s, dim=-1), V)
                x = x + o.transpose(0, 1).reshape(n, H * dv) @ getattr(m, f"w_o{layer}")
                uv = x @ getattr(m, f"w_ff{layer}")
                x = x + (torch.relu(uv[:, :m.F]) * uv[:, m.F:]) @ getattr(m, f"w_fo{layer}")
                present += [K, V]
            return (x @ m.unembed, x, *present)

    return Step().eval()


def export(model, path: Path) -> Path:
    """Write `model` as ONNX to `path` (atomically)."""
    import torch

    step = _export_module(model)
    past = []
    names_in, names_out = ["ids", "start"], ["logits", "residual"]
    axes = {"ids": {0: "n"}, "logits": {0: "n"}, "residual": {0: "n"}}
    for layer in range(model.L):
        H = model.heads[layer]
        past += [torch.zeros(H, 3, model.dk, dtype=torch.float64), torch.zeros(H, 3, model.dv, dtype=torch.float64)]
        for kind in ("k", "v"):
            names_in.append(f"past_{kind}{layer}")
            names_out.append(f"present_{kind}{layer}")
            axes[f"past_{kind}{layer}"] = {1: "past"}
            axes[f"present_{kind}{layer}"] = {1: "total"}
    args = (torch.tensor([1, 2], dtype=torch.int64), torch.tensor(3, dtype=torch.int64), *past)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with torch.no_grad():
        torch.onnx.export(step, args, str(tmp), input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    os.replace(tmp, path)
    return path


class OrtModel:
    """onnxruntime behind the interface `transformer.model.Session` uses of
    an AnalyticTransformer: `heads`, `cfg`, and a call (ids, start, cache)
    -> (logits, residual, cache), the cache holding each layer's keys and
    values of positions 0..start-1 (later ones, fed ahead of a draft that
    greedy decoding left, are dropped here)."""

    def __init__(self, session, model):
        self.sess = session
        self.heads = list(model.heads)
        self.cfg = model.cfg
        self.L, self.dk, self.dv = model.L, model.dk, model.dv

    def __call__(self, ids, start: int, cache):
        import numpy as np
        import torch

        if cache is None:
            cache = [np.zeros((H, 0, d), dtype=np.float64) for H in self.heads for d in (self.dk, self.dv)]
        feed = {"ids": ids.numpy().astype(np.int64), "start": np.array(start, dtype=np.int64)}
        for layer in range(self.L):
            feed[f"past_k{layer}"] = np.ascontiguousarray(cache[2 * layer][:, :start])
            feed[f"past_v{layer}"] = np.ascontiguousarray(cache[2 * layer + 1][:, :start])
        out = self.sess.run(None, feed)
        return torch.from_numpy(out[0]), torch.from_numpy(out[1]), out[2:]


class OnnxBackend(Backend):
    """The built weights in onnxruntime (CPU), decoded greedily; drafted by
    the engine like transformer-torch when the engine is installed."""

    name = "transformer-onnx"
    heavy = True
    traces = True
    default_max_steps = 10_000        # dense attention: O(n) per token

    def __init__(self, path: str | None = None, draft: bool = True):
        try:
            import onnxruntime as ort
            import onnx  # noqa: F401 - the exporter needs it
        except ImportError as e:
            raise BackendUnavailable(f"transformer-onnx needs onnxruntime and onnx (pip install onnx "
                                     f"onnxruntime): {e}") from None
        try:
            from isowasm.transformer.build import BUILD_DIR
            from isowasm.transformer.model import load_model
        except ImportError as e:
            raise BackendUnavailable(f"transformer-onnx needs torch to export the weights: {e}") from None
        self.model = load_model(path)
        d = Path(path) if path else BUILD_DIR
        f = d / ONNX_FILE
        if not f.exists():
            export(self.model, f)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
        self.ort = OrtModel(self.session, self.model)
        self.max_tokens = int(os.environ.get("ISOWASM_ONNX_MAX_TOKENS", 20_000))
        self.max_tokens_why = "dense attention costs O(n) per token; ISOWASM_ONNX_MAX_TOKENS=0 lifts the limit"
        self.drafter = None
        if draft:
            try:
                from isowasm.transformer.engine_backend import EngineBackend
                self.drafter = EngineBackend(path)
            except BackendUnavailable:
                pass

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        from isowasm.transformer.backends import decode, prompt_tokens
        from isowasm.transformer.model import Session

        draft = None
        if self.drafter is not None:
            text = self.drafter.run(case, max_steps=max_steps, trace="text").trace
            draft = prompt_tokens(case.program) + text.partition("\n")[2].split()
        session = Session(self.ort, draft)
        res = decode(session, case, max_steps=max_steps, trace=trace, progress=progress, backend=self.name)
        if draft is not None:
            res.extra["draft_tokens"] = len(draft)
            res.extra["draft_accepted"] = session.accepted
        return res
