"""What the analytic transformer's attention did where a backend diverged.

Given the common prefix of two traces (the reference's, up to the first
divergent token) the float64 PyTorch module is run over the program and
that prefix, and at the last position, the one whose prediction is the
divergent token, every head is shown with the key position that won, its
token, its softmax weight and its score margin over the runner-up, then the
logits of the expected and predicted tokens. A head that won the wrong key,
or won by a margin too thin for float64, is where to look; when every head
won clearly and the model still predicts the reference token, the model is
right and the diverging backend is not computing it faithfully.

The module's forward pass is dense, so the prefix is bounded
(`MAX_POSITIONS`, env ISOWASM_EXPLAIN_MAX_POSITIONS).
"""

from __future__ import annotations

import os

from isowasm.spec.program import format_instructions
from isowasm.transformer import vocab

MAX_POSITIONS = int(os.environ.get("ISOWASM_EXPLAIN_MAX_POSITIONS", 40_000))
PREFILL = 512


def explain(model, prog, reference_trace: str, token_index: int, got: str | None = None) -> str:
    """Lines describing the model's attention at the position that predicts
    token `token_index` of `reference_trace` (canonical trace text, input
    line first), where a backend emitted `got` instead."""
    import torch

    trace_toks = reference_trace.split()
    if not 0 <= token_index < len(trace_toks):
        return f"no explanation: token {token_index} is outside the reference trace ({len(trace_toks)} tokens)"
    seq = format_instructions(prog).split() + trace_toks[:token_index]
    expected = trace_toks[token_index]
    if len(seq) > MAX_POSITIONS:
        return (f"no explanation: {len(seq)} positions before the divergence, over ISOWASM_EXPLAIN_MAX_POSITIONS="
                f"{MAX_POSITIONS} (the dense forward pass is O(n²))")
    ids = [vocab.INDEX[t] for t in seq]
    cache = None
    probe: list = []
    for i in range(0, len(ids), PREFILL):
        last = i + PREFILL >= len(ids)
        logits, _, cache = model(torch.tensor(ids[i:i + PREFILL]), i, cache, probe if last else None)
    logits = logits[-1]
    names = model.cfg.get("head_names") or []
    pos = len(seq) - 1
    lines = [f"the model at position {pos} ({seq[-1]!r}), which predicts trace token {token_index}:"]
    for layer, scores in enumerate(probe):
        for h in range(scores.shape[0]):
            idx = model.head_index[layer][h]
            name = names[layer][idx] if layer < len(names) and idx < len(names[layer]) else f"head {idx}"
            lines.append(f"  layer {layer + 1} {name}: " + _head_line(scores[h], seq))
    top = torch.topk(logits, 2)
    pred = vocab.TOKENS[int(top.indices[0])]
    exp_logit = float(logits[vocab.INDEX[expected]]) if expected in vocab.INDEX else float("nan")
    lines.append(f"  logits: model predicts {pred!r} ({float(top.values[0]):.6g}); reference {expected!r} "
                 f"({exp_logit:.6g}); runner-up {vocab.TOKENS[int(top.indices[1])]!r} "
                 f"(margin {float(top.values[0] - top.values[1]):.6g})"
                 + (f"; the diverging backend emitted {got!r}" if got is not None else ""))
    if pred == expected:
        lines.append("  the model itself predicts the reference token: the diverging backend does not compute it")
    return "\n".join(lines)


def _head_line(s, seq) -> str:
    import torch

    n = s.shape[0]
    w = torch.softmax(s, dim=0)
    top = torch.topk(s, min(2, n))
    best = int(top.indices[0])
    if n > 1 and float(top.values[0] - top.values[1]) == 0.0 and float(w[best]) < 0.5:
        tied = int((s == top.values[0]).sum())
        return f"uniform over {tied} positions (weight {float(w[best]):.3g} each)"
    text = f"position {best} ({seq[best]!r}) won, weight {float(w[best]):.6g}"
    if n > 1:
        second = int(top.indices[1])
        text += f", margin {float(top.values[0] - top.values[1]):.6g} over position {second} ({seq[second]!r})"
    return text
