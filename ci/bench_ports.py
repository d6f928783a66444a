#!/usr/bin/env python3
"""Throughput of the machine implementations, measured in one run and printed
as ratios to the Python reference (the machines are shared and noisy, so
ratios taken together mean more than absolute figures).

    python ci/bench_ports.py                      # sudoku, all available machine backends
    python ci/bench_ports.py --backends reference # the reference executor alone
    python ci/bench_ports.py --program collatz --repeat 3
    python ci/bench_ports.py --batch 2000         # small-program throughput too

Prints instructions/s and trace tokens/s with tracing off ("none") and to the
incremental digest ("digest"), and writes results/bench_ports.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isowasm.atomic import atomic_write_json  # noqa: E402
from isowasm.backends import available_backends  # noqa: E402
from isowasm.backends.base import Case  # noqa: E402
from isowasm.suites.examples import load_examples  # noqa: E402
from isowasm.spec.program import Program  # noqa: E402


def small_programs(n: int) -> list[Case]:
    """n distinct small straight-line + loop programs (a few hundred steps each),
    the size Hypothesis and fuzzing produce."""
    cases = []
    for k in range(n):
        c = (k * 2654435761) & 0xFFFFFFFF
        instrs = [("i32.const", c), ("local.set", 0), ("i32.const", 20 + k % 7), ("local.set", 1),
                  # loop: local0 = local0 + local1 ; output low byte ; local1 -= 1 ; br_if local1
                  ("local.get", 0), ("local.get", 1), ("i32.add", 0), ("local.tee", 0), ("output", 0),
                  ("local.get", 1), ("i32.const", 1), ("i32.sub", 0), ("local.tee", 1),
                  ("br_if", (-10) & 0xFFFFFFFF), ("halt", 0)]
        prog = Program([a for a, _ in instrs], [b for _, b in instrs], b"", f"small{k}")
        cases.append(Case(f"small{k}", prog))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="sudoku")
    ap.add_argument("--backends", nargs="*")
    ap.add_argument("--modes", nargs="*", default=["none", "digest"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the best is kept")
    ap.add_argument("--batch", type=int, default=0, help="also time N small programs per backend")
    ap.add_argument("--json", default="results/bench_ports.json")
    args = ap.parse_args()

    avail = available_backends()
    names = args.backends or [n for n, b in avail.items() if not isinstance(b, str) and b.traces
                              and not n.startswith("transformer")]
    backends = {}
    for n in names:
        b = avail.get(n)
        if b is None or isinstance(b, str):
            print(f"skip {n}: {b or 'unknown backend'}")
            continue
        backends[n] = b
    ex = {e.name: e for e in load_examples()}[args.program]
    case = ex.case()

    rows = []
    base: dict[str, float] = {}
    print(f"program {ex.name}: {len(case.program)} instructions, budget {ex.max_steps:,} steps")
    print(f"{'backend':<12}{'trace':<8}{'steps':>12}{'tokens':>12}{'seconds':>10}{'instr/s':>14}{'tok/s':>14}{'x ref':>8}")
    for mode in args.modes:
        for n, b in backends.items():
            best = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = b.run(case, max_steps=ex.max_steps, trace=mode)
                dt = time.perf_counter() - t0
                if best is None or dt < best[0]:
                    best = (dt, r)
            dt, r = best
            if r.status != "halted" or r.output != ex.expect_output:
                print(f"{n}: WRONG RESULT ({r.status_line()}); figure not recorded")
                continue
            ips = r.steps / dt
            if n == "reference":
                base[mode] = ips
            ratio = ips / base[mode] if mode in base else float("nan")
            print(f"{n:<12}{mode:<8}{r.steps:>12,}{r.tokens:>12,}{dt:>10.3f}{ips:>14,.0f}{r.tokens / dt:>14,.0f}{ratio:>8.1f}")
            rows.append({"backend": n, "trace": mode, "program": ex.name, "steps": r.steps,
                         "tokens": r.tokens, "seconds": dt, "instr_per_s": ips,
                         "tok_per_s": r.tokens / dt, "ratio_to_reference": ratio})
    batch_rows = []
    if args.batch:
        cases = small_programs(args.batch)
        print(f"\nbatch: {args.batch} small programs (trace digest)")
        for n, b in backends.items():
            t0 = time.perf_counter()
            if hasattr(b, "run_batch"):
                rs = b.run_batch(cases, max_steps=10_000, trace="digest")
            else:
                rs = [b.run(c, max_steps=10_000, trace="digest") for c in cases]
            dt = time.perf_counter() - t0
            bad = sum(r.status != "halted" for r in rs)
            print(f"{n:<12}{args.batch / dt:>12,.0f} programs/s" + (f"  ({bad} did not halt!)" if bad else ""))
            batch_rows.append({"backend": n, "programs": args.batch, "seconds": dt, "programs_per_s": args.batch / dt})
    if args.json:
        atomic_write_json(args.json, {"kind": "bench_ports", "time": time.time(), "cpus": os.cpu_count(),
                                      "rows": rows, "batch": batch_rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
