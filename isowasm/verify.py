"""`isowasm verify [PROGRAM ...]`: every backend on the user's programs (or,
when none is named, the shipped examples), one line per program.

Each program is compared by `isowasm.runner.compare_case`: every machine's
trace against the reference's byte for byte, output and status against
wasmtime. Traces are compared by digest (checkpointed), so a million-token
run is never held in memory unless two backends disagree. Exit status: 0 all
agree, 1 a divergence, 3 inconclusive (a budget or a resource limit on some
side), 2 a usage or input error (raised as IsowasmError). The results are
written as JSON for `isowasm report`.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from isowasm.atomic import atomic_write_json
from isowasm.backends import available_backends, default_budget, get_backend, required_backends
from isowasm.runner import compare_case
from isowasm.spec.errors import IsowasmError
from isowasm.spec.result import BUDGET

EXIT_OK, EXIT_DIVERGENCE, EXIT_INCONCLUSIVE = 0, 1, 3


def choose_backends(names: list[str] | None) -> dict:
    """name -> backend: those named (all of them must be available), else
    every available non-heavy one (and the required ones must be there)."""
    if names:
        return {n: get_backend(n) for n in dict.fromkeys(names)}
    avail = available_backends()
    # Heavy backends (the layer-by-layer transformer) take hours on long
    # programs: they run only when named.
    chosen = {n: b for n, b in avail.items() if not isinstance(b, str) and not b.heavy}
    for n, why in avail.items():
        if isinstance(why, str):
            print(f"(skipping {n}: {why})")
    missing = required_backends() - set(chosen)
    if missing:
        raise IsowasmError(f"required backends unavailable: {', '.join(sorted(missing))}")
    return chosen


def _items(programs, examples, data, module, max_steps, backends):
    """(name, build the Case, budget) per program to verify."""
    if programs:
        from isowasm.cli import load_case

        for p in programs:   # load every file first: a bad one fails before any run
            if not Path(p).exists():
                raise IsowasmError(f"{p}: no such file")
        if module is not None and len(programs) != 1:
            raise IsowasmError("--module names the original of one program file: give exactly one")
        budget = max_steps or default_budget(backends)
        return [(p, (lambda p=p: load_case(p, data, module)), budget) for p in programs]
    if data is not None or module is not None:
        raise IsowasmError("--input, --input-file and --module go with a named PROGRAM")
    from isowasm.suites.examples import load_examples

    exs = load_examples()
    if examples:
        unknown = set(examples) - {e.name for e in exs}
        if unknown:
            raise IsowasmError(f"unknown example(s): {', '.join(sorted(unknown))} "
                               f"(known: {', '.join(e.name for e in exs)})")
        exs = [e for e in exs if e.name in examples]
    return [(e.name, e.case, max_steps or e.max_steps) for e in exs]


def outcome(cmp) -> str:
    if not cmp.ok:
        return "diverge"
    if cmp.inconclusive or any(r.status == BUDGET for r in cmp.results.values()):
        return "inconclusive"
    return "agree"


def verify(backends: list[str] | None = None, programs: list[str] | None = None,
           examples: list[str] | None = None, data: bytes | None = None, module: str | None = None,
           max_steps: int | None = None, out: str | None = "results/verify.json",
           compiler: str | None = None) -> int:
    from isowasm.compilers import get_compiler, recompile

    cc = get_compiler(compiler)
    chosen = choose_backends(backends)
    items = _items(programs, examples, data, module, max_steps, list(chosen.values()))
    cols = list(chosen)
    width = max(len(c) for c in cols) + 2
    namew = max(12, *(len(n) + 2 for n, _, _ in items)) if items else 12
    print(f"{'program':<{namew}}" + "".join(f"{c:>{width}}" for c in cols)
          + f"{'tokens':>12}{'seconds':>10}  verdict")
    rows, details, outcomes = [], [], []
    try:
        for name, build, budget in items:
            t0 = time.perf_counter()
            case = recompile(build(), cc)
            runnable = [b for b in chosen.values() if not (b.needs_wasm and case.wasm is None)]
            cmp = compare_case(case, runnable, max_steps=budget, trace="digest")
            dt = time.perf_counter() - t0
            verdicts = {c: cmp.verdict(c) for c in cols}
            ref = cmp.results.get("reference") or next(iter(cmp.results.values()), None)
            tokens = ref.tokens if ref else None
            what = outcome(cmp)
            outcomes.append(what)
            print(f"{name:<{namew}}" + "".join(f"{verdicts[c]:>{width}}" for c in cols)
                  + f"{tokens if tokens is not None else '-':>12}{dt:>10.2f}  {what}", flush=True)
            cause = None
            if what == "diverge":
                cause = _cause(cmp, {n: b for n, b in chosen.items() if b in runnable}, case, cc,
                               probe=cc is not None or module is None)
            if what != "agree":
                details.append(_details(cmp, budget, max_steps is None and bool(programs))
                               + (f"\n  cause: {cause['signature']}" if cause else "")
                               + (f"; op probe: {cause['blame']}" if cause and cause.get("blame") else ""))
            if any(b.needs_wasm for b in chosen.values()) and case.wasm is None:
                details.append(f"{name}: wasmtime not run (a program file without --module "
                               f"has no original module)")
            rows.append({
                "program": name, "verdicts": verdicts, "outcome": what, "max_steps": budget,
                "results": {n: _result_json(r) for n, r in cmp.results.items()},
                "problems": cmp.problems, "inconclusive": cmp.inconclusive, "cause": cause,
            })
    finally:
        for b in chosen.values():
            b.close()
    for d in details:
        print()
        print(d)
    if out:
        atomic_write_json(out, {"kind": "verify", "time": time.time(), "machine": platform.machine(),
                                "cpus": os.cpu_count(), "backends": cols, "rows": rows,
                                "compiler": cc.name if cc else None})
    if "diverge" in outcomes:
        print("VERIFY_FAIL")
        return EXIT_DIVERGENCE
    if "inconclusive" in outcomes:
        print("VERIFY_INCONCLUSIVE")
        return EXIT_INCONCLUSIVE
    print("VERIFY_OK")
    return EXIT_OK


def _cause(cmp, backends, case, compiler, probe: bool) -> dict:
    """The divergence's signature (isowasm.fuzz.oracles), with the op the
    probes blame when every machine agrees against wasmtime. Probing needs
    the compiler that made the program: not done for a program file made
    elsewhere (`--module` without `--compiler`)."""
    from isowasm.fuzz.oracles import signature_of

    sig = signature_of(cmp, list(backends), {n: bool(b.traces) for n, b in backends.items()})
    if not probe:
        return sig
    from isowasm.fuzz.probes import blamed

    return blamed(sig, case.wasm, compiler, backends.get("wasmtime"))


def _details(cmp, budget: int, default_budget_used: bool) -> str:
    text = cmp.report()
    if any(r.status == BUDGET for r in cmp.results.values()):
        text += f"\n  budget: {budget:,} steps" + (
            " (the default for these backends; raise it with --max-steps)" if default_budget_used else "")
    return text


def _result_json(r) -> dict:
    return {
        "status": r.status, "trap": r.trap, "steps": r.steps, "tokens": r.tokens,
        "digest": r.digest, "seconds": round(r.seconds, 4), "output_bytes": len(r.output),
    }
