"""Diagnostics of the analytic transformer (`isowasm model info`)."""

from __future__ import annotations

import json
from pathlib import Path


def model_info(path: str | Path | None = None) -> dict:
    """Dimensions, parameter count and per-layer use of heads and neurons.
    Reads the built config when there is one, else lowers the graph."""
    from isowasm.transformer.build import BUILD_DIR, CONFIG, WEIGHTS, lower, weights_digest
    d = Path(path) if path else BUILD_DIR
    digest = None
    if (d / CONFIG).exists():
        cfg = json.loads((d / CONFIG).read_text())
        source = str(d / CONFIG)
        if (d / WEIGHTS).exists():
            digest = weights_digest(d)
    else:
        cfg, _ = lower()
        source = "graph (not built)"
    layers = []
    for l in range(cfg["n_layers"]):
        layers.append({"layer": l + 1, "heads": cfg["heads_per_layer"][l], "head_names": cfg["head_names"][l],
                       "neurons": cfg["neurons_per_layer"][l]})
    return {
        "source": source,
        "d_model": cfg["d_model"], "n_layers": cfg["n_layers"], "n_heads": cfg["n_heads"],
        "d_head_qk": cfg["d_head_qk"], "d_head_v": cfg["d_head_v"], "d_ffn": cfg["d_ffn"],
        "vocab_size": cfg["vocab_size"], "parameters": cfg["parameters"], "attn_scale": cfg["attn_scale"],
        "schedule": cfg["schedule"], "horizon": cfg["horizon"], "layers": layers,
        "graph_nodes": cfg.get("residual_nodes"), "cleanup_neurons": cfg.get("cleanup_neurons"),
        "weights_digest": digest,
    }


def format_info(info: dict) -> str:
    s = info["schedule"]
    out = [
        f"analytic transformer ({info['source']})",
        f"  d_model {info['d_model']}, layers {info['n_layers']}, heads {info['n_heads']} per layer "
        f"(q/k dim {info['d_head_qk']}, v dim {info['d_head_v']}), d_ffn {info['d_ffn']}, "
        f"vocab {info['vocab_size']}, parameters {info['parameters']:,}",
        f"  schedule: layers {s['layers']} (lower bound {s['layers_lower_bound']}), "
        f"d_ffn {s['d_ffn']} ({s.get('d_ffn_scheduled', s['d_ffn'])} before cleanup neurons; lower bound "
        f"{s['d_ffn_lower_bound']}), "
        f"heads {s['heads']} (lower bound {s['heads_lower_bound']})",
        f"  residual: {info['graph_nodes']} graph nodes in {info['d_model']} dimensions "
        f"({info['cleanup_neurons']} cleanup neurons reuse freed ones)",
        f"  attention scale {info['attn_scale']:g}; horizon: {info['horizon']}",
    ]
    if info.get("weights_digest"):
        out.append(f"  weights digest (sha256 of tensors and config): {info['weights_digest']}")
    for L in info["layers"]:
        out.append(f"  layer {L['layer']}: {L['heads']:2d} heads, {L['neurons']:4d} neurons  "
                   f"[{', '.join(L['head_names'])}]")
    return "\n".join(out)


def print_info(path: str | Path | None = None) -> dict:
    info = model_info(path)
    print(format_info(info))
    return info


if __name__ == "__main__":
    print_info()
