"""`isowasm verify`: the example programs on every backend, as a matrix.

Traces are compared by digest (checkpointed), so a million-token run is never
held in memory unless two backends disagree. The results are written as JSON
for `isowasm report`.
"""

from __future__ import annotations

import os
import platform
import time

from isowasm.atomic import atomic_write_json
from isowasm.backends import available_backends, get_backend, required_backends
from isowasm.examples import load_examples
from isowasm.runner import compare_case
from spec.errors import IsowasmError


def verify(backends: list[str] | None = None, names: list[str] | None = None,
           out: str | None = "results/verify.json") -> int:
    avail = available_backends()
    if backends:
        chosen = {n: get_backend(n) for n in backends}
    else:
        # Heavy backends (the layer-by-layer transformer) take hours on the
        # long examples: they run here only when named.
        chosen = {n: b for n, b in avail.items() if not isinstance(b, str) and not b.heavy}
        for n, why in avail.items():
            if isinstance(why, str):
                print(f"(skipping {n}: {why})")
    missing = set() if backends else required_backends() - set(chosen)
    if missing:
        raise IsowasmError(f"required backends unavailable: {', '.join(sorted(missing))}")
    examples = load_examples()
    if names:
        unknown = set(names) - {e.name for e in examples}
        if unknown:
            raise IsowasmError(f"unknown example(s): {', '.join(sorted(unknown))}")
        examples = [e for e in examples if e.name in names]

    cols = list(chosen)
    rows = []
    details = []
    width = max(len(c) for c in cols) + 2
    print(f"{'program':<12}" + "".join(f"{c:>{width}}" for c in cols) + f"{'tokens':>12}{'seconds':>10}")
    failed = False
    for ex in examples:
        t0 = time.perf_counter()
        case = ex.case()
        cmp = compare_case(case, list(chosen.values()), max_steps=ex.max_steps, trace="digest")
        dt = time.perf_counter() - t0
        verdicts = {c: cmp.verdict(c) for c in cols}
        ref = cmp.results.get("reference")
        tokens = ref.tokens if ref else None
        print(f"{ex.name:<12}" + "".join(f"{verdicts[c]:>{width}}" for c in cols)
              + f"{tokens if tokens is not None else '-':>12}{dt:>10.2f}")
        if not cmp.ok:
            failed = True
            details.append(cmp.report())
        rows.append({
            "program": ex.name,
            "verdicts": verdicts,
            "results": {n: _result_json(r) for n, r in cmp.results.items()},
            "problems": cmp.problems,
            "inconclusive": cmp.inconclusive,
        })
    for d in details:
        print()
        print(d)
    if out:
        atomic_write_json(out, {"kind": "verify", "time": time.time(), "machine": platform.machine(),
                                "cpus": os.cpu_count(), "backends": cols, "rows": rows})
    print("VERIFY_FAIL" if failed else "VERIFY_OK")
    return 1 if failed else 0


def _result_json(r) -> dict:
    return {
        "status": r.status, "trap": r.trap, "steps": r.steps, "tokens": r.tokens,
        "digest": r.digest, "seconds": round(r.seconds, 4), "output_bytes": len(r.output),
    }
