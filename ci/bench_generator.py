#!/usr/bin/env python3
"""Throughput of the Hypothesis program generator (conformance/strategies.py).

Prints, measured on this machine:
  1. generated programs per second, generator alone (Hypothesis draws + WAT rendering);
  2. programs per second for generate + compile (toolchain) + run on the
     reference executor and wasmtime + compare (isowasm.runner.compare_case).

Usage: python ci/bench_generator.py [--seconds S] [--seed N]   (runs in < 60 s)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from isowasm.fuzz.generators import examples, render  # noqa: E402


def bench_generator(seed: int, seconds: float) -> tuple[int, float, list[str]]:
    t0 = time.perf_counter()
    wats: list[str] = []
    batch = 50
    while time.perf_counter() - t0 < seconds:
        wats += [render(m) for m in examples(seed + len(wats), batch)]
    return len(wats), time.perf_counter() - t0, wats


def bench_pipeline(seed: int, seconds: float) -> float | None:
    try:
        from isowasm.backends import get_backend
        from isowasm.backends.base import Case
        from isowasm.runner import compare_case
        from isowasm.toolchain import compile_source
    except ImportError as e:
        print(f"pipeline: skipped ({e})")
        return None
    backends = [get_backend("reference"), get_backend("wasmtime")]
    t_gen = t_compile = t_run = 0.0
    n = bad = 0
    steps: list[int] = []
    t0 = time.perf_counter()
    s = seed
    while time.perf_counter() - t0 < seconds:
        a = time.perf_counter()
        mods = examples(s, 20)
        wats = [render(m) for m in mods]
        t_gen += time.perf_counter() - a
        s += 1
        for wat in wats:
            a = time.perf_counter()
            wasm, program = compile_source(wat, lang="wat", name="bench", input=b"")
            b = time.perf_counter()
            cmp = compare_case(Case("bench", program, wasm=wasm), backends, max_steps=5_000_000)
            c = time.perf_counter()
            t_compile += b - a
            t_run += c - b
            n += 1
            bad += not cmp.ok
            r = cmp.results.get("reference")
            if r is not None and r.steps is not None:
                steps.append(r.steps)
            if time.perf_counter() - t0 >= seconds:
                break
    total = t_gen + t_compile + t_run
    print(f"generate+compile+run (reference, wasmtime): {n} programs in {total:.1f} s "
          f"= {n / total:.1f} programs/s")
    print(f"  per program: generate {1e3 * t_gen / n:.1f} ms, compile {1e3 * t_compile / n:.1f} ms, "
          f"run+compare {1e3 * t_run / n:.1f} ms")
    if steps:
        steps.sort()
        print(f"  machine steps per program: median {statistics.median(steps):.0f}, "
              f"p90 {steps[int(0.9 * len(steps))]}, max {steps[-1]}")
    if bad:
        print(f"  {bad} program(s) disagreed (run the conformance suite to see them)")
    for b in backends:
        b.close()
    del backends, cmp
    import gc
    gc.collect()   # free wasmtime objects now, not during interpreter shutdown
    return n / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="time per measurement (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="results/bench_generator.json", help="record for `isowasm report` ('' to skip)")
    args = ap.parse_args()
    n, dt, wats = bench_generator(args.seed, args.seconds)
    lines = statistics.mean(w.count("\n") for w in wats)
    print(f"generator alone: {n} programs in {dt:.1f} s = {n / dt:.1f} programs/s "
          f"(mean {lines:.0f} WAT lines)")
    rate = bench_pipeline(args.seed, args.seconds)
    if args.json:
        import os

        from isowasm.atomic import atomic_write_json

        rates = {"generator alone": n / dt}
        if rate is not None:
            rates["generate + compile + run + compare (reference, wasmtime)"] = rate
        atomic_write_json(args.json, {"kind": "bench_generator", "time": time.time(),
                                      "cpus": os.cpu_count(), "rates": rates})

if __name__ == "__main__":
    main()
