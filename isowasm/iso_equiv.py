"""Equivalence of every implementation on every program we have: the example
programs (sudoku included), the compliance suite and a fixed-seed batch of
generated programs. Prints a program × implementation matrix ("match" or the
first divergence) and a last line ISO_EQUIV_OK or ISO_EQUIV_FAIL.

    python -m isowasm.iso_equiv [--backends reference rust ocaml wasmtime] [--suites ...]

ci/iso_equiv.sh builds every port from scratch and then runs this.
"""

from __future__ import annotations

import argparse
import sys
import time

from isowasm.backends import available_backends, get_backend, required_backends
from isowasm.runner import compare_case
from spec.errors import IsowasmError

SUITES = ("examples", "compliance", "generated")


def _cases(suite: str, count: int, seed: int):
    """(name, case builder, budget, trace mode) for one suite."""
    if suite == "examples":
        from isowasm.examples import load_examples

        for ex in load_examples():
            yield f"examples/{ex.name}", ex.case, ex.max_steps, "digest"
    elif suite == "compliance":
        from conformance.compliance import build_case, load_cases

        for cc in load_cases():
            yield f"compliance/{cc.category}/{cc.name}", (lambda cc=cc: build_case(cc)), cc.max_steps, "text"
    elif suite == "generated":
        from conformance.strategies import examples, render
        from isowasm.backends.base import Case
        from isowasm.toolchain import compile_source

        def build(wat: str, name: str) -> Case:
            wasm, prog = compile_source(wat, lang="wat", name=name)
            return Case(name, prog, wasm)

        for k, module in enumerate(examples(seed, count)):
            name = f"seed{seed}-{k}"
            yield f"generated/{name}", (lambda w=render(module), n=name: build(w, n)), 2_000_000, "text"
    else:
        raise IsowasmError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")


def cell(cmp, name: str) -> str:
    v = cmp.verdict(name)
    if v != "FAIL":
        return "match" if v == "ok" else v
    d = cmp.divergence
    if d is not None and d.b == name:
        return f"diverge@tok{d.token_index}"
    return "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="equivalence matrix of all implementations")
    ap.add_argument("--backends", nargs="*")
    ap.add_argument("--suites", nargs="*", default=list(SUITES))
    ap.add_argument("--count", type=int, default=40, help="generated programs")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--match", nargs="*", help="only programs whose name contains one of these")
    args = ap.parse_args(argv)
    try:
        if args.backends:
            backends = [get_backend(n) for n in args.backends]
        else:
            avail = available_backends()
            missing = [n for n in required_backends() if isinstance(avail.get(n, "unknown"), str)]
            if missing:
                raise IsowasmError(f"required backends unavailable: {', '.join(missing)}")
            backends = [b for b in avail.values() if not isinstance(b, str) and not b.heavy]
    except IsowasmError as e:
        print(f"error: {e}")
        print("ISO_EQUIV_FAIL")
        return 2
    names = [b.name for b in backends]
    width = max(18, *(len(n) + 2 for n in names))
    print(f"{'program':<48}" + "".join(f"{n:>{width}}" for n in names))
    failures = []
    total = 0
    t0 = time.perf_counter()
    for suite in args.suites:
        for pname, build, budget, mode in _cases(suite, args.count, args.seed):
            if args.match and not any(m in pname for m in args.match):
                continue
            total += 1
            try:
                case = build()
            except IsowasmError as e:
                print(f"{pname:<48}  build error: {e}")
                failures.append((pname, str(e)))
                continue
            cmp = compare_case(case, backends, max_steps=budget, trace=mode)
            print(f"{pname:<48}" + "".join(f"{cell(cmp, n):>{width}}" for n in names), flush=True)
            if not cmp.ok:
                failures.append((pname, cmp.report()))
    for pname, rep in failures:
        print(f"\n== {pname}\n{rep}")
    print(f"\n{total} programs, {len(names)} implementations, {len(failures)} failing, "
          f"{time.perf_counter() - t0:.1f} s")
    if total == 0:
        print("no programs selected")
        failures.append(("<none>", "nothing was compared"))
    print("ISO_EQUIV_FAIL" if failures else "ISO_EQUIV_OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
