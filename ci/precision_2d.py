#!/usr/bin/env python3
"""How far a 2-D hardmax key stays exact in float64, for each address-keyed
`latest` lookup of isowasm's construction (issue 16, item 1).

A 2-D exact-match head with latest-wins ties (the public original's form)
keys a write of address a at position j as (2a, -a^2 + eps*j) and queries
address b as (b, 1): the score 2ab - a^2 + eps*j = b^2 - (a-b)^2 + eps*j
peaks at a = b, and among equal addresses at the latest j, provided
eps*j < 1 (a neighbour address loses at least 1). In float64 the key's
second coordinate and the score are rounded at magnitude ~a^2, so the
recency term eps*j, needing log2(N) bits below 1, fits only while
2*log2(K) + log2(N) stays under the 53-bit mantissa (K distinct
addresses, N positions).

This script measures it rather than arguing it: per head (the address
domain from spec/machine.yaml's limits), for N = 2^n, it builds the worst
case (the largest addresses, written at the last positions before N, each
queried against all), computes the keys and scores in float64 as a
standard attention would (one matmul), compares them with exact rational
arithmetic, and finds the largest n at
which every key and score is still exact. The construction's own
heads use per-byte key components and a centred score (transformer/
ENGINE.md), exact for positions < 2^24 (engine) and 2^22 (the float64
module).

    python ci/precision_2d.py [--json results/precision_2d.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_LOG2_POSITIONS = 30


def address_domains(limits: dict) -> dict[str, int]:
    """Distinct addresses each `latest` lookup of the construction keys on,
    by head name prefix (transformer/machine.py)."""
    frames = limits["call_depth"] + 1
    return {
        "stack": limits["operand_stack"],
        "frame": frames,
        "local": frames * limits["locals_per_frame"],
        "global": limits["globals"],
        "mem_store": limits["memory_bytes"],
        "mem_input": limits["memory_bytes"],
    }


def latest_heads():
    """(name, key components) of every `latest` head the model is built from."""
    from isowasm.transformer.machine import Machine
    m = Machine()
    return [(h.name, len(h.keys)) for h in m.g.heads if h.mode == "latest"]


def keys_exact(n_addr: int, log2_n: int) -> bool:
    """Are the float64 keys and scores of a 2-D latest head exact at
    N = 2**log2_n positions? Checked on the largest addresses and the last
    positions (where the magnitudes peak), each address queried against
    every key: float64 (one matmul, as a standard attention computes it)
    against exact rational arithmetic."""
    n = 2 ** log2_n
    eps = Fraction(1, n)                      # eps*j < 1 for every j < N
    addrs = sorted({max(n_addr - d, 0) for d in (1, 2, 3)} | {n_addr // 2})
    pos = list(range(max(n - 8, 0), n))
    pairs = [(a, j) for a in addrs for j in pos]
    keys = np.array([[2.0 * a, -float(a * a) + float(eps) * j] for a, j in pairs])
    exact_k2 = [-Fraction(a * a) + eps * j for a, j in pairs]
    if any(Fraction(k) != e for k, e in zip(keys[:, 1], exact_k2)):
        return False
    q = np.array([[float(b), 1.0] for b in addrs])
    scores = q @ keys.T
    for qi, b in enumerate(addrs):
        for ki, (a, j) in enumerate(pairs):
            if Fraction(scores[qi, ki]) != 2 * a * b - a * a + eps * j:
                return False
    return True


def exact_horizon(n_addr: int) -> int:
    """The largest n <= MAX_LOG2_POSITIONS with keys_exact at 2**n and below."""
    best = 0
    for log2_n in range(2, MAX_LOG2_POSITIONS + 1):
        if not keys_exact(n_addr, log2_n):
            break
        best = log2_n
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(Path("results") / "precision_2d.json"), help="'' for none")
    a = ap.parse_args(argv)
    from isowasm.spec import table
    t0 = time.time()
    domains = address_domains(table.limits())
    rows = []
    for name, n_keys in latest_heads():
        if n_keys == 0:
            n_addr = 1
        else:
            prefix = next((p for p in domains if name.startswith(p)), None)
            if prefix is None:
                print(f"precision_2d: latest head {name!r} has no address domain here; add it to address_domains",
                      file=sys.stderr)
                return 2
            n_addr = domains[prefix]
        h = exact_horizon(n_addr)
        rows.append({"head": name, "key_components": n_keys, "addresses": n_addr, "exact_log2_positions": h})
        print(f"{name:10s} {n_keys} components, {n_addr:>10,} addresses: a 2-D key is exact "
              f"for positions < 2^{h}" + (" (or more)" if h == MAX_LOG2_POSITIONS else ""))
    out = {
        "kind": "precision_2d",
        "time": time.time(),
        "cpus": os.cpu_count(),
        "seconds": round(time.time() - t0, 1),
        "max_log2_tried": MAX_LOG2_POSITIONS,
        "module_horizon_log2": 22,
        "engine_horizon_log2": 24,
        "rows": rows,
    }
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
