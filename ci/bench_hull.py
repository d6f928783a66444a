#!/usr/bin/env python3
"""Cost per operation of the generic engine's incremental 2-D hull
(transformer/engine/src/hull.rs; transformer/ENGINE.md, "Generic hull
engine"), measured in Rust by `isowasm_engine.hull_bench`.

For n = 1e5 and 1e6 keys inserted in random order, then 1e5 queries in
random directions, prints ns per insert and ns per query, for three key
shapes:
  parabola  keys (2a, -a^2): every key a hull vertex (the largest hull)
  disk      uniform in a square: a hull of O(log n) corners
  line      collinear keys with duplicates: one edge holding everything
and, for scale, the cost of answering one query by brute force (numpy
argmax over the n dot products).

Usage: python ci/bench_hull.py [--sizes 100000,1000000] [--queries 100000]
(needs the engine: pip install ./transformer/engine; about 10 s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=100_000)
    args = ap.parse_args()
    import isowasm_engine as iso
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print(f"{'keys':>9} {'shape':>9} {'insert ns/op':>13} {'query ns/op':>12} {'corners':>8} {'brute ns/query':>15}")
    for n in sizes:
        keys = np.stack([2.0 * np.arange(n), -np.arange(n, dtype=np.float64) ** 2], axis=1)
        q = np.array([0.3, 0.7])
        reps = 20
        t0 = time.perf_counter()
        for _ in range(reps):
            int(np.argmax(keys @ q))
        brute = (time.perf_counter() - t0) / reps * 1e9
        for shape in ("parabola", "disk", "line"):
            ins, qry, corners = iso.hull_bench(n, shape, args.queries)
            print(f"{n:>9.0e} {shape:>9} {ins:>13.0f} {qry:>12.0f} {corners:>8} {brute:>15.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
