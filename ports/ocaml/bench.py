"""Throughput of the OCaml port against the reference executor, measured in
the same run:

    python ports/ocaml/bench.py [--steps 10000000] [--small 5000]

* a long loop program (countdown with a load/store and a call per
  iteration) run with trace none and digest by both, instructions/s and
  tokens/s and the ratio;
* batch throughput: many small programs through one batch process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from isowasm.backends.base import Case  # noqa: E402
from isowasm.backends.ocaml import OcamlBackend  # noqa: E402
from isowasm.spec.program import Program  # noqa: E402
from isowasm.spec.reference import run_reference  # noqa: E402

M32 = 0xFFFFFFFF


def loop_program(iters: int) -> Program:
    """18 steps per iteration: locals, add/sub with flags, store/load,
    compare, a call and its return, a taken br_if."""
    ops = [
        ("i32.const", iters), ("local.set", 0),                      # 0 1
        ("local.get", 0), ("i32.const", 1), ("i32.sub", 0),          # 2 3 4   loop:
        ("local.set", 0), ("i32.const", 64), ("local.get", 0),       # 5 6 7
        ("i32.store", 0), ("i32.const", 64), ("i32.load", 0),        # 8 9 10
        ("call", 5),                                                 # 11 -> 17
        ("i32.const", 3), ("i32.gt_u", 0), ("br_if", -13),           # 12 13 14 -> 2
        ("halt", 0), ("halt", 1),                                    # 15 16
        ("local.set", 0), ("local.get", 0), ("i32.const", 3),        # 17 18 19  f:
        ("i32.add", 0), ("return", -5 & M32),                        # 20 21
    ]
    return Program([o for o, _ in ops], [i & M32 for _, i in ops], b"")


def steps_per_iter() -> int:
    return 18


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_long(b: OcamlBackend, steps: int) -> None:
    prog = loop_program(steps // steps_per_iter())
    print(f"long loop: {len(prog)} instructions")
    b.run(Case("warm", loop_program(1)), max_steps=100)  # start the batch process
    for mode in ("none", "digest"):
        t0, c0 = time.perf_counter(), time.process_time()
        ref = run_reference(prog, max_steps=10**9, trace=mode)
        # CPU time on both sides (the reference in this process, the port in
        # its batch process), so other load on the machine does not count;
        # the port's is the best of 3 runs.
        tr = min(time.perf_counter() - t0, time.process_time() - c0)
        to = float("inf")
        pid = b._process().pid
        for _ in range(3):
            c0, t0 = cpu_seconds(pid), time.perf_counter()
            got = b.run(Case("loop", prog), max_steps=10**9, trace=mode)
            to = min(to, max(cpu_seconds(pid) - c0, 1e-3) if os.path.exists(f"/proc/{pid}/stat")
                     else time.perf_counter() - t0)
        assert (got.status, got.steps, got.tokens, got.digest, got.checkpoints) == \
               (ref.status, ref.steps, ref.tokens, ref.digest, ref.checkpoints), mode
        print(f"  trace={mode:6s} steps={got.steps} tokens={got.tokens}")
        print(f"    reference {tr:8.3f} s  {ref.steps / tr / 1e6:8.2f} M instr/s  {ref.tokens / tr / 1e6:8.2f} M tokens/s")
        print(f"    ocaml     {to:8.3f} s  {got.steps / to / 1e6:8.2f} M instr/s  {got.tokens / to / 1e6:8.2f} M tokens/s"
              f"   ratio {tr / to:6.1f}x")


def bench_small(b: OcamlBackend, n: int) -> None:
    progs = [loop_program(k % 7 + 1) for k in range(n)]
    for mode in ("none", "digest", "text"):
        b.run(Case("warm", progs[0]), max_steps=1000, trace=mode)
        dt = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for p in progs:
                b.run(Case("p", p), max_steps=1000, trace=mode)
            dt = min(dt, time.perf_counter() - t0)
        print(f"batch, trace={mode:6s}: {n / dt:8.0f} programs/s ({len(progs[0])} instructions, 21-129 steps each)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10_000_000)
    ap.add_argument("--small", type=int, default=5000)
    args = ap.parse_args()
    b = OcamlBackend()
    try:
        print(f"binary: {b.binary}  (ISOWASM_OCAML_PURE_SHA={os.environ.get('ISOWASM_OCAML_PURE_SHA', '')})")
        bench_long(b, args.steps)
        bench_small(b, args.small)
    finally:
        b.close()


if __name__ == "__main__":
    main()
