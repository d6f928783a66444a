#!/usr/bin/env python3
"""Throughput of the transformer inference engine (transformer/engine/,
transformer/ENGINE.md).

Prints, measured on this machine:
  1. per example: sequential greedy generation (tok/s, trace digest), the
     teacher-forced verification of the reference trace (batched over 2
     threads, and token by token), the reference executor's rate, and the
     PyTorch model's rate on a short prefix (--torch-tokens; 0 skips it);
  2. the flat cost: tok/s over the 10K-token slices ending at 10K, 100K, 1M
     and 10M tokens of one long run (an 11.3M-token C program), and its peak
     resident memory (resource.getrusage and VmHWM, in a child process).

Writes results/bench_engine.json ({"kind": "bench_engine", "time", "cpus",
"rows", "flat"}).

Usage: python ci/bench_engine.py [--quick] [--torch-tokens N] [--json PATH]
(about 5 minutes; --quick skips sudoku and the long run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LONG_C = (Path(__file__).resolve().parents[1] / "transformer/programs/long_hash.c").read_text()

WINDOWS = (10_000, 100_000, 1_000_000, 10_000_000)


def bench_examples(names, torch_tokens: int) -> list[dict]:
    from isowasm.suites.examples import load_examples
    from isowasm.spec.reference import run_reference
    from isowasm.transformer.engine_backend import EngineBackend, verify_trace
    eng = EngineBackend()
    torch_b = None
    if torch_tokens:
        try:
            from isowasm.transformer.backends import TorchBackend
            torch_b = TorchBackend()
        except Exception as e:  # torch missing: no ratio
            print(f"(torch: {e})")
    rows = []
    for ex in load_examples():
        if names and ex.name not in names:
            continue
        case = ex.case()
        t = time.perf_counter()
        ref = run_reference(case.program, trace="text", max_steps=ex.max_steps)
        ref_s = time.perf_counter() - t
        res = eng.run(case, max_steps=ex.max_steps, trace="digest")
        assert res.digest == ref.digest, ex.name
        gen = res.extra["generated_tokens"]
        row = {"example": ex.name, "tokens": res.tokens, "generated": gen,
               "seq_tok_s": round(res.extra["tok_per_s"]), "seq_seconds": round(res.seconds, 3),
               "reference_tok_s": round(ref.tokens / ref_s)}
        for th, key in ((2, "tf_tok_s"), (0, "tf_seq_tok_s")):
            v = verify_trace(case, ref.trace, threads=th)
            assert v["ok"], (ex.name, v)
            row[key] = round(v["checked"] / v["seconds"])
        if torch_b is not None:
            # a prefix: torch runs ~10^2-10^3 tok/s; its rate falls with length (O(n) attention)
            steps = max(1, torch_tokens // 5)
            r = torch_b.run(case, max_steps=steps, trace="none")
            e2 = eng.run(case, max_steps=steps, trace="none")
            row["torch_prefix_tokens"] = r.tokens
            row["torch_tok_s"] = round(r.extra["tok_per_s"], 1)
            row["engine_prefix_tok_s"] = round(e2.extra["tok_per_s"] or 0)
        row["seq_vs_torch"] = round(row["seq_tok_s"] / row["torch_tok_s"]) if row.get("torch_tok_s") else None
        row["seq_vs_reference"] = round(row["seq_tok_s"] / row["reference_tok_s"], 3)
        rows.append(row)
        print(f"{ex.name:10s} {res.tokens:>10,} tokens  sequential {row['seq_tok_s']:>9,} tok/s  "
              f"teacher-forced {row['tf_tok_s']:>9,} tok/s (2 threads), {row['tf_seq_tok_s']:>9,} (token by token)  "
              f"reference {row['reference_tok_s']:>9,} tok/s"
              + (f"  torch {row['torch_tok_s']:,} tok/s (first {row['torch_prefix_tokens']:,})"
                 if row.get("torch_tok_s") else ""))
    return rows


def long_child() -> None:
    """The long run, in its own process (its peak memory is its own)."""
    from isowasm.toolchain import compile_source
    from isowasm.spec.program import format_program
    from isowasm.transformer import vocab
    from isowasm.transformer.backends import token_flags
    from isowasm.transformer.engine_backend import load_engine
    _, prog = compile_source(LONG_C, "c", "long")
    eng, _ = load_engine()
    s = eng.session()
    s.feed([vocab.INDEX[t] for t in format_program(prog).split()])
    flags = token_flags()
    marks = [(0, 0.0)]
    n = 0
    t0 = time.perf_counter()
    stopped = False
    while not stopped:
        ids, _, stopped, _ = s.generate(10_000, 10 ** 9, flags, False)
        n += len(ids) // 2
        marks.append((n, time.perf_counter() - t0))
    flat = {}
    for w in WINDOWS:
        # the rate over the 10K-token slice that ends at (or first passes) w
        i = next((i for i, (k, _) in enumerate(marks) if k >= w and i > 0), None)
        if i is None or i == 0:
            continue
        dk = marks[i][0] - marks[i - 1][0]
        dt = marks[i][1] - marks[i - 1][1]
        flat[str(w)] = round(dk / dt)
    total = marks[-1]
    hwm = None
    try:  # this process's own peak (getrusage's may include the parent's, inherited at fork)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    print(json.dumps({"generated": total[0], "seconds": round(total[1], 2), "tok_s": round(total[0] / total[1]),
                      "window_tok_s": flat,
                      "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "vm_hwm_mb": hwm}))


def bench_long() -> dict:
    p = subprocess.run([sys.executable, __file__, "--long-child"], capture_output=True, text=True, cwd=ROOT,
                       check=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"long run   {out['generated']:>10,} tokens in {out['seconds']} s = {out['tok_s']:,} tok/s; "
          + ", ".join(f"at {int(k):,}: {v:,} tok/s" for k, v in out["window_tok_s"].items())
          + f"; peak RSS {out['max_rss_mb']} MB (getrusage), {out['vm_hwm_mb']} MB (VmHWM)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip sudoku and the long run")
    ap.add_argument("--examples", nargs="*", default=None, help="only these examples")
    ap.add_argument("--torch-tokens", type=int, default=2000, help="PyTorch prefix length (0: skip torch)")
    ap.add_argument("--json", default="results/bench_engine.json", help="record ('' to skip)")
    ap.add_argument("--long-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.long_child:
        long_child()
        return 0
    names = a.examples or (["hello", "addition", "fibonacci", "collatz", "matching"] if a.quick else None)
    # the long run first, while this process is small (a child's getrusage
    # peak starts from its parent's at fork)
    flat = None if a.quick else bench_long()
    rows = bench_examples(names, a.torch_tokens)
    if a.json:
        from isowasm.atomic import atomic_write_json

        atomic_write_json(ROOT / a.json, {"kind": "bench_engine", "time": time.time(), "cpus": os.cpu_count(),
                                          "rows": rows, "flat": flat})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
