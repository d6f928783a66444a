#!/usr/bin/env python3
"""The PyTorch module (backend `transformer-torch`) on every long trace:
teacher-forced checks at sampled positions with full dense attention over
all earlier positions (transformer/torch_check.py; issue 16, item 3).

Decoding a long trace with the module's dense attention costs O(N^2) (the
recorded runs stop at 70K tokens). Here, per trace: the reference
executor's trace; >= --positions positions spread through it (stratified,
seeded) including its last --tail; at each, every layer's attention is the
module's dense softmax over all positions 0..p, with keys and values from
the Rust engine's residual streams (checked equal to the torch ones at the
sampled positions), and the module's argmax must be the reference's next
token. Cost: about |P| * N/2 * 26 (query, key, head) scores per trace.

    python ci/torch_long_traces.py [--cases all-over-70k|NAME,...] [--positions 2000]
        [--tail 500] [--seed 0] [--min-tokens 70000] [--max-tokens N]
        [--json results/transformer_torch_long.json]
        [--list] [--resume]

NAME: `examples/collatz`, `collatz`, `compliance/limits/call-depth-4096-ok`
or `call-depth-4096-ok`. Writes the JSON after every case ({"kind":
"transformer_torch_long", ..., "rows": [per case: program, tokens,
positions, first/last checked position, max residual error, min margin,
ok, seconds, first failure]}), rendered by `isowasm report`. Exit status:
0 every case ok, 1 a failure, 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_JSON = Path("results") / "transformer_torch_long.json"


def all_cases():
    """(program name, case builder, step budget) of the examples and the
    compliance suite, as `isowasm iso-equiv` names them."""
    from isowasm.suites.compliance import build_case, load_cases
    from isowasm.suites.examples import load_examples
    for ex in load_examples():
        yield f"examples/{ex.name}", ex.case, ex.max_steps
    for cc in load_cases():
        yield f"compliance/{cc.category}/{cc.name}", (lambda cc=cc: build_case(cc)), cc.max_steps


def select(spec: str):
    items = list(all_cases())
    if spec in ("all", "all-over-70k"):
        return items, True
    want = [s.strip() for s in spec.split(",") if s.strip()]
    out = []
    for w in want:
        hit = [it for it in items if it[0] == w or it[0].rsplit("/", 1)[-1] == w]
        if not hit:
            raise SystemExit(f"error: --cases: no case named {w!r}")
        out += hit
    return out, False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="all-over-70k",
                    help="all-over-70k (default: every example and compliance case whose reference trace "
                         "has more than --min-tokens tokens) or comma-separated names")
    ap.add_argument("--min-tokens", type=int, default=70_000)
    ap.add_argument("--max-tokens", type=int, default=None,
                    help="with the size selection: only traces of at most this many tokens")
    ap.add_argument("--positions", type=int, default=2000, help="checked positions per trace (default 2000)")
    ap.add_argument("--tail", type=int, default=500, help="of which the trace's last N (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", default=str(DEFAULT_JSON), help="'' for none")
    ap.add_argument("--list", action="store_true", help="only list the selected cases and their token counts")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows already in --json that were made with the same settings")
    a = ap.parse_args(argv)
    if a.positions < 1 or a.tail < 0 or a.tail > a.positions:
        print("error: need --positions >= 1 and 0 <= --tail <= --positions", file=sys.stderr)
        return 2

    import torch
    from isowasm.atomic import atomic_write_json
    from isowasm.spec.reference import run_reference
    from isowasm.transformer.engine_backend import load_engine
    from isowasm.transformer.model import load_model
    from isowasm.transformer.torch_check import check_trace, describe_failure

    items, by_size = select(a.cases)
    settings = {"positions_per_trace": a.positions, "tail": a.tail, "seed": a.seed}
    out = {"kind": "transformer_torch_long", "time": time.time(), "cpus": os.cpu_count(),
           "cases": a.cases, "min_tokens": a.min_tokens if by_size else None,
           "max_tokens": a.max_tokens if by_size else None, **settings,
           "rows": [], "ok": True, "seconds": 0.0}
    done: dict = {}
    if a.resume and a.json and Path(a.json).exists():
        import json
        old = json.loads(Path(a.json).read_text())
        if old.get("kind") == out["kind"] and all(old.get(k) == v for k, v in settings.items()):
            done = {r["program"]: r for r in old["rows"]}
    model = engine = None
    if not a.list:
        model = load_model()
        torch.set_num_threads(a.threads)
        engine = load_engine()[0]
    t_all = time.perf_counter()
    # a resumed run's time includes the kept rows' (their check and reference runs)
    kept_s = sum(r.get("seconds", 0) + r.get("reference_seconds", 0) for n, r in done.items()
                 if n in {name for name, _, _ in items})
    failed = False
    for name, build, budget in items:
        if name in done:
            out["rows"].append(done[name])
            failed |= not done[name]["ok"]
            continue
        case = build()
        t0 = time.perf_counter()
        ref = run_reference(case.program, trace="text", max_steps=budget)
        ref_s = time.perf_counter() - t0
        if by_size and (ref.tokens <= a.min_tokens or (a.max_tokens is not None and ref.tokens > a.max_tokens)):
            continue
        if a.list:
            print(f"{name}: {ref.tokens:,} tokens ({ref.status})")
            continue
        print(f"{name}: {ref.tokens:,} tokens ...", end="", flush=True)
        try:
            r = check_trace(case, ref.trace, model, engine, n_positions=a.positions, tail=a.tail, seed=a.seed)
        except Exception as e:   # a refused program, an unknown token: recorded, never a pass
            r = {"ok": False, "error": f"{type(e).__name__}: {e}", "seconds": round(time.perf_counter() - t0, 3)}
        row = {"program": name, "tokens": ref.tokens, "status": ref.status, "reference_seconds": round(ref_s, 3),
               **{k: v for k, v in r.items() if k != "final_residual"}}
        if r.get("first_failure") is not None:
            row["first_failure_text"] = describe_failure(r["first_failure"])
        out["rows"].append(row)
        failed |= not r["ok"]
        verdict = "ok" if r["ok"] else "FAIL: " + (row.get("first_failure_text") or r.get("error", ""))
        print(f" {r.get('positions', 0):,} positions, max residual error {r.get('max_residual_error', float('nan')):.3g}, "
              f"min margin {r.get('min_margin')}, {r['seconds']:.1f} s: {verdict}", flush=True)
        out["ok"] = not failed
        out["seconds"] = round(kept_s + time.perf_counter() - t_all, 3)
        if a.json:
            atomic_write_json(Path(a.json), out)
    out["ok"] = not failed
    out["seconds"] = round(kept_s + time.perf_counter() - t_all, 3)
    if a.json and not a.list:
        atomic_write_json(Path(a.json), out)
    if not a.list:
        n = len(out["rows"])
        print(f"{n} traces, {sum(r.get('positions', 0) for r in out['rows']):,} positions checked, "
              f"{out['seconds']:.0f} s: {'TORCH_LONG_OK' if not failed else 'TORCH_LONG_FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
