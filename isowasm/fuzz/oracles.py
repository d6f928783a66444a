"""What the fuzzer makes of a program's runs: compilation without the disk
cache, and the *signature* of a failed comparison — what diverged (the op at
the first divergent trace token, or the mismatching aspect), the kind and the
backend — by which findings are de-duplicated and shrinking is steered."""

from __future__ import annotations

import hashlib
import re


def sig_id(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()[:10]


def slug(signature: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", signature.lower()).strip("-")[:60].strip("-")
    return f"fuzz-{s}-{sig_id(signature)}"


def compile_wat(wat: str, name: str):
    """(wasm, Program) without the toolchain's disk cache (a campaign's
    programs are all different; caching them would only fill the disk)."""
    from isowasm.toolchain.frontend import compile_wasm, wat_to_wasm

    wasm = wat_to_wasm(wat, name)
    return wasm, compile_wasm(wasm, name, b"")


def _op_at(program, pc) -> str | None:
    if pc is not None and 0 <= pc < len(program.names):
        return program.names[pc]
    return None


def signature_of(cmp, order: list[str], traces: dict[str, bool]) -> dict:
    """{signature, kind, op, backend} of a failed Comparison: the op at the
    first divergent trace token (kind trace), else the mismatching aspect."""
    from isowasm.runner import expected_status

    if cmp.divergence is not None:
        d = cmp.divergence
        op = d.instruction.split()[0] if d.instruction else "end-of-trace"
        return {"signature": f"trace:{op}:{d.b}", "kind": "trace", "op": op, "backend": d.b}
    for p in cmp.problems:
        m = re.match(r"(\S+) raised (\w+)", p)
        if m:
            return {"signature": f"crash:{m.group(2)}:{m.group(1)}", "kind": "crash",
                    "op": m.group(2), "backend": m.group(1)}
    truth = cmp.results.get("wasmtime")
    machines = [n for n in order if n in cmp.results and traces.get(n)]
    failed = [n for n in machines if n in cmp.failed]
    if not failed:
        failed = sorted(cmp.failed)
    who = "machines" if truth is not None and len(machines) > 1 and set(failed) == set(machines) \
        else ",".join(failed) or "?"
    name = failed[0] if failed else None
    r = cmp.results.get(name) if name else None
    if r is not None and truth is not None and expected_status(r) != expected_status(truth):
        op = _op_at(cmp.case.program, r.trap_pc) or expected_status(r)
        return {"signature": f"status:{expected_status(r)}-vs-{expected_status(truth)}:{op}:{who}",
                "kind": "status", "op": op, "backend": who}
    if r is not None and truth is not None and r.output != truth.output:
        # how the output departs: a different byte, or ends short / runs on
        k = next((i for i, (x, y) in enumerate(zip(r.output, truth.output)) if x != y), None)
        how = "value" if k is not None else "short" if len(r.output) < len(truth.output) else "long"
        return {"signature": f"output-{how}:{who}", "kind": f"output-{how}", "op": "output", "backend": who}
    for what in ("status", "trap", "steps", "tokens"):
        for p in cmp.problems:
            if re.match(rf"\S+: {what} ", p):
                return {"signature": f"{what}:{who}", "kind": what, "op": what, "backend": who}
    first = cmp.problems[0].split(":")[0] if cmp.problems else "?"
    return {"signature": f"other:{first}", "kind": "other", "op": "?", "backend": who}


def compile_signature(e: Exception) -> str:
    """The signature of a toolchain rejection: the error's first line with
    the program's name and free-standing numbers (line numbers, offsets)
    blotted out, so a shrunk program keeps it."""
    first = (str(e).splitlines() or [type(e).__name__])[0]
    first = re.sub(r"\b(fuzz-\d+|fuzz-shrink|shrink)\b", "fuzz", first)
    first = re.sub(r"(?<![\w.$])\d+(?![\w.])", "N", first)
    return f"compile:{type(e).__name__}:{first[:80]}"


def group_by_cause(items: list[dict]) -> list[dict]:
    """Failures grouped by signature, for people: one entry per cause with
    its count, the programs, and the smallest program (fewest reference
    tokens) as the reproduction. `items`: {program, signature (a signature_of
    dict), tokens, report}. Largest group first."""
    groups: dict[str, dict] = {}
    for it in items:
        sig = it["signature"]
        g = groups.setdefault(sig["signature"], {**sig, "count": 0, "programs": [], "repro": None})
        g["count"] += 1
        g["programs"].append(it["program"])
        best = g["repro"]
        if best is None or (it.get("tokens") or 0) < (best.get("tokens") or 0):
            g["repro"] = {"program": it["program"], "tokens": it.get("tokens"), "report": it.get("report")}
    return sorted(groups.values(), key=lambda g: (-g["count"], g["signature"]))


def describe_groups(groups: list[dict]) -> list[str]:
    lines = [f"divergences by cause ({len(groups)}):"] if groups else []
    for g in groups:
        r = g["repro"]
        toks = f", {r['tokens']:,} tokens" if r.get("tokens") else ""
        lines.append(f"  {g['signature']}: {g['count']} program(s); smallest reproduction "
                     f"{r['program']}{toks}" + (f"; op probe: {g['blame']}" if g.get("blame") else ""))
    return lines
