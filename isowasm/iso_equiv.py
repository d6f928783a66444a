"""Equivalence of every implementation on every program we have: the example
programs (sudoku included), the compliance suite and a fixed-seed batch of
generated programs. Prints a program × implementation matrix ("match" or the
first divergence) and a last line ISO_EQUIV_OK, ISO_EQUIV_FAIL, or
ISO_EQUIV_INCOMPLETE (exit 3) when --max-tokens left programs out.

    isowasm iso-equiv [--backends reference,rust,ocaml,wasmtime] [--suites ...]

(also `python -m isowasm.iso_equiv`). The suites ship inside isowasm, so it
runs from any directory, against any backend a plug-in declares.

ci/iso_equiv.sh builds every port from scratch and then runs this.
"""

from __future__ import annotations

import os
import sys
import time

from isowasm.atomic import atomic_write_json
from isowasm.backends import available_backends, get_backend, required_backends
from isowasm.runner import compare_case
from isowasm.fuzz.oracles import compile_signature, describe_groups, group_by_cause, signature_of
from isowasm.fuzz.probes import blamed
from isowasm.spec.errors import IsowasmError

SUITES = ("examples", "compliance", "generated")


def _cases(suite: str, count: int, seed: int):
    """(name, case builder, budget, trace mode) for one suite."""
    if suite == "examples":
        from isowasm.suites.examples import load_examples

        for ex in load_examples():
            yield f"examples/{ex.name}", ex.case, ex.max_steps, "digest"
    elif suite == "compliance":
        from isowasm.suites.compliance import build_case, load_cases

        for cc in load_cases():
            yield f"compliance/{cc.category}/{cc.name}", (lambda cc=cc: build_case(cc)), cc.max_steps, "text"
    elif suite == "generated":
        from isowasm.fuzz.generators import examples, render
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


_BACKENDS: list = []   # this process's backends (set before a worker pool forks)
_ITEMS: list = []      # (program name, case builder, budget, trace mode)
_LIMIT = {"max_tokens": None}
_COMPILER: list = [None]  # a foreign compiler (isowasm.compilers), or None
_ORDER: dict = {}         # program name -> its place in the whole (unsharded) selection


def _compare(i: int) -> dict:
    """One program on every backend: its matrix cells and what the JSON keeps."""
    pname, build, budget, mode = _ITEMS[i]
    t0 = time.perf_counter()
    try:
        from isowasm.compilers import recompile

        case = recompile(build(), _COMPILER[0])
    except IsowasmError as e:
        return {"program": pname, "error": f"build error: {e}", "seconds": 0.0,
                "signature": {"signature": f"build:{compile_signature(e, (pname, pname.partition('/')[2]))}",
                              "kind": "build", "op": "?",
                              "backend": "toolchain"}}
    if _LIMIT["max_tokens"]:
        from isowasm.spec.reference import run_reference

        n = run_reference(case.program, max_steps=budget).tokens
        if n > _LIMIT["max_tokens"]:
            return {"program": pname, "tokens": n, "seconds": round(time.perf_counter() - t0, 3),
                    "skipped": f"not compared: {n} tokens > --max-tokens {_LIMIT['max_tokens']}"}
    cmp = compare_case(case, _BACKENDS, max_steps=budget, trace=mode)
    ref = next(iter(cmp.results.values()), None)
    return {
        "program": pname,
        "cells": {b.name: cell(cmp, b.name) for b in _BACKENDS},
        "ok": cmp.ok,
        "report": None if cmp.ok else cmp.report(),
        "tokens": ref.tokens if ref else None,
        "results": {n: {"status": r.status, "trap": r.trap, "tokens": r.tokens, "digest": r.digest,
                        "seconds": round(r.seconds, 3)} for n, r in cmp.results.items()},
        "seconds": round(time.perf_counter() - t0, 3),
        "signature": None if cmp.ok else blamed(signature_of(
            cmp, [b.name for b in _BACKENDS], {b.name: bool(b.traces) for b in _BACKENDS}),
            case.wasm, _COMPILER[0], next((b for b in _BACKENDS if b.name == "wasmtime"), None)),
    }


def merge_main(argv: list[str]) -> int:
    """`isowasm iso-equiv merge A.json B.json ... --json OUT`: the shards of
    one run (different machines, e.g. a GPU one for the torch backend) as one."""
    import json

    from isowasm.cli import ArgumentParser

    ap = ArgumentParser(prog="isowasm iso-equiv merge", description="join the --json files of iso-equiv shards")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", required=True, metavar="OUT")
    args = ap.parse_args(argv)
    docs = []
    for f in args.files:
        try:
            docs.append(json.loads(open(f, encoding="utf-8").read()))
        except (OSError, ValueError) as e:
            raise IsowasmError(f"{f}: cannot read an iso-equiv result: {e}") from None
    for f, d in zip(args.files[1:], docs[1:]):
        for key in ("backends", "suites", "compiler"):
            if d.get(key) != docs[0].get(key):
                raise IsowasmError(f"{f}: {key} {d.get(key)!r} differs from {args.files[0]}'s: not shards of one run")
    rows = sorted((r for d in docs for r in d["rows"]), key=lambda r: r.get("order", 0))
    failing = any("error" in r or ("cells" in r and not r["ok"]) for r in rows)
    skipped = any("skipped" in r for r in rows)
    groups = group_by_cause([{"program": r["program"], "signature": r["signature"], "tokens": r.get("tokens"),
                              "report": r.get("error") or r.get("report")} for r in rows if r.get("signature")])
    out = {**docs[0], "time": time.time(), "rows": rows, "ok": not failing and not skipped and bool(rows),
           "seconds": max(d["seconds"] for d in docs), "shard": f"merged from {len(docs)}", "groups": groups}
    atomic_write_json(args.json, out)
    verdict = "ISO_EQUIV_FAIL" if failing or not rows else "ISO_EQUIV_INCOMPLETE" if skipped else "ISO_EQUIV_OK"
    print(f"{len(rows)} programs from {len(docs)} shards; {verdict}")
    return 1 if verdict == "ISO_EQUIV_FAIL" else 3 if skipped else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "merge":
        try:
            return merge_main(argv[1:])
        except IsowasmError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    from isowasm.cli import ArgumentParser, backend_names

    ap = ArgumentParser(prog="isowasm iso-equiv", description=(
        "Equivalence matrix of all implementations over the shipped suites. Exit status: 0 all "
        "agree, 1 a divergence, 2 usage error, 3 programs left out (--max-tokens)."))
    ap.add_argument("--backends", nargs="*", help="space- or comma-separated (default: every "
                                                  "available non-heavy backend)")
    ap.add_argument("--suites", nargs="*", default=list(SUITES))
    ap.add_argument("--count", type=int, default=40, help="generated programs")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--match", nargs="*", help="only programs whose name contains one of these")
    ap.add_argument("--jobs", type=int, default=1, help="programs compared in parallel (processes)")
    ap.add_argument("--max-tokens", type=int, metavar="N",
                    help="skip programs whose reference trace is longer (reported, never a pass)")
    ap.add_argument("--json", metavar="OUT", help="also write the matrix, with tokens and times, as JSON")
    ap.add_argument("--compiler", help="run the program files this compiler makes (see isowasm verify --help)")
    ap.add_argument("--shard", default="0/1", metavar="i/N",
                    help="run the programs k (in suite order) with k mod N == i; `isowasm iso-equiv "
                         "merge` joins the shards' --json files")
    args = ap.parse_args(argv)
    try:
        args.backends = backend_names(args.backends)
        unknown = [s for s in args.suites if s not in SUITES]
        if unknown:
            raise IsowasmError(f"unknown suite(s) {', '.join(unknown)} (known: {', '.join(SUITES)})")
        if args.backends:
            backends = [get_backend(n) for n in args.backends]
        else:
            avail = available_backends()
            missing = [n for n in required_backends() if isinstance(avail.get(n, "unknown"), str)]
            if missing:
                raise IsowasmError(f"required backends unavailable: {', '.join(missing)}")
            backends = [b for b in avail.values() if not isinstance(b, str) and not b.heavy]
        from isowasm.compilers import get_compiler
        from isowasm.fuzz.campaign import parse_shard

        _COMPILER[0] = get_compiler(args.compiler)
        try:
            shard_i, shard_n = parse_shard(args.shard)
        except Exception as e:   # argparse's own type error, as one line
            raise IsowasmError(f"--shard {args.shard}: {e}") from None
        if args.jobs < 1:
            raise IsowasmError(f"--jobs {args.jobs}: must be at least 1")
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        print("ISO_EQUIV_FAIL")
        return 2
    _BACKENDS[:] = backends
    _LIMIT["max_tokens"] = args.max_tokens
    selected = [it for suite in args.suites for it in _cases(suite, args.count, args.seed)
                if not args.match or any(m in it[0] for m in args.match)]
    _ITEMS[:] = [it for k, it in enumerate(selected) if k % shard_n == shard_i]
    _ORDER.update({it[0]: k for k, it in enumerate(selected)})
    names = [b.name for b in backends]
    width = max(18, *(len(n) + 2 for n in names))
    print(f"{'program':<48}" + "".join(f"{n:>{width}}" for n in names))
    t0 = time.perf_counter()
    rows = []

    def show(row):
        rows.append(row)
        if "error" in row or "skipped" in row:
            print(f"{row['program']:<48}  {row.get('error') or row['skipped']}", flush=True)
        else:
            print(f"{row['program']:<48}" + "".join(f"{row['cells'][n]:>{width}}" for n in names), flush=True)

    if args.jobs == 1 or len(_ITEMS) <= 1:
        for i in range(len(_ITEMS)):
            show(_compare(i))
    else:
        import multiprocessing as mp

        # fork: the workers inherit the backends and the case builders
        with mp.get_context("fork").Pool(args.jobs) as pool:
            for row in pool.imap_unordered(_compare, range(len(_ITEMS))):
                show(row)
    rows.sort(key=lambda r: _ORDER[r["program"]])
    for r in rows:
        r["order"] = _ORDER[r["program"]]
    skipped = [r for r in rows if "skipped" in r]
    failures = [(r["program"], r.get("error") or r["report"]) for r in rows
                if "error" in r or ("skipped" not in r and not r["ok"])]
    for pname, rep in failures:
        print(f"\n== {pname}\n{rep}")
    groups = group_by_cause([{"program": r["program"], "signature": r["signature"], "tokens": r.get("tokens"),
                              "report": r.get("error") or r.get("report")}
                             for r in rows if r.get("signature")])
    if groups:
        print()
        print("\n".join(describe_groups(groups)))
    total = len(rows)
    elapsed = time.perf_counter() - t0
    print(f"\n{total} programs, {len(names)} implementations, {len(failures)} failing, "
          f"{len(skipped)} skipped, {elapsed:.1f} s")
    if total == 0:
        print("no programs selected")
        failures.append(("<none>", "nothing was compared"))
    if args.json:
        atomic_write_json(args.json, {
            "kind": "iso_equiv", "time": time.time(), "cpus": os.cpu_count(), "jobs": args.jobs,
            "backends": names, "suites": args.suites, "match": args.match, "seconds": round(elapsed, 1),
            "max_tokens": args.max_tokens, "ok": not failures and not skipped, "rows": rows,
            "compiler": args.compiler, "groups": groups, "shard": args.shard})
    if failures:
        print("ISO_EQUIV_FAIL")
        return 1
    if skipped:
        # agreement on what was compared, but not on everything asked for
        print("ISO_EQUIV_INCOMPLETE")
        return 3
    print("ISO_EQUIV_OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
