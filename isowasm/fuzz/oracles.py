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
    dis = getattr(cmp, "oracle_disagreement", None)   # issue 14: before any verdict against wasmtime
    if dis is not None:
        return {k: dis[k] for k in ("signature", "kind", "op", "backend")}
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


def compile_signature(e: Exception, names: tuple[str, ...] = ()) -> str:
    """The signature of a toolchain rejection: the error's first line with
    the program's name (a fuzz program's, or any of `names`) and
    free-standing numbers (line numbers, offsets) blotted out, so a shrunk
    program keeps it and one cause over many programs is one group."""
    first = (str(e).splitlines() or [type(e).__name__])[0]
    for n in sorted((n for n in names if n), key=len, reverse=True):
        first = first.replace(n, "PROGRAM")
    first = re.sub(r"\b(fuzz-\d+|fuzz-shrink|shrink)\b", "fuzz", first)
    first = re.sub(r"(?<![\w.$])\d+(?![\w.])", "N", first)
    return f"compile:{type(e).__name__}:{first[:160]}"


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


# ---------------------------------------------------------------------------
# Two oracles (issue 14): wasmtime, the ground truth, and a second engine
# isowasm does not build (wasmi). When they disagree, the case is filed as an
# *oracle disagreement* — its own signature kind — and the machines are not
# blamed for differing from an oracle that another oracle contradicts.

def _verdict_difference(a, b) -> str | None:
    """How two runs' verdicts (status and output) differ: None, `status`,
    `output-value`, `output-short`, `output-long`, or `output-prefix` where
    either side is inconclusive (budget, resource trap) and only the common
    prefix of the outputs can be compared."""
    from isowasm.runner import _inconclusive_status, expected_status

    if _inconclusive_status(a) or _inconclusive_status(b):
        n = min(len(a.output), len(b.output))
        return "output-prefix" if a.output[:n] != b.output[:n] else None
    if expected_status(a) != expected_status(b):
        return "status"
    if a.output != b.output:
        k = next((i for i, (x, y) in enumerate(zip(a.output, b.output)) if x != y), None)
        return "output-value" if k is not None else "output-short" if len(b.output) < len(a.output) \
            else "output-long"
    return None


def oracle_disagreement(results: dict, oracles: list[str], order: list[str],
                        traces: dict[str, bool]) -> dict | None:
    """{signature, kind, op, backend, detail} when the oracles' verdicts
    differ, else None. Each oracle is compared with the ground truth
    (`wasmtime` when among them, else the first); the *suspect* is the
    oracle the machines' verdict (the reference executor's, else the first
    machine's) does not agree with — or `A-vs-B` when that does not single
    one out. Signature: `oracle-disagreement:<aspect>:<suspect>`, the
    aspect `status:<a>-vs-<b>` or how the outputs differ."""
    from isowasm.runner import expected_status
    from isowasm.spec.result import RunResult

    rs = {o: results[o] for o in oracles if isinstance(results.get(o), RunResult)}
    if len(rs) < 2:
        return None
    truth = "wasmtime" if "wasmtime" in rs else next(iter(rs))
    bad = [(o, d) for o in rs if o != truth for d in [_verdict_difference(rs[truth], rs[o])] if d]
    if not bad:
        return None
    other, aspect = bad[0]
    if aspect == "status":
        aspect = f"status:{expected_status(rs[truth])}-vs-{expected_status(rs[other])}"
    machines = [n for n in order if traces.get(n) and isinstance(results.get(n), RunResult)]
    ref = "reference" if "reference" in machines else (machines[0] if machines else None)
    suspects = [o for o in (truth, other) if ref and _verdict_difference(results[ref], rs[o])]
    who = suspects[0] if len(suspects) == 1 else f"{truth}-vs-{other}"
    from isowasm.runner import show_bytes

    def verdict(n):
        r = results[n]
        return f"{n} {expected_status(r)}, output {show_bytes(r.output)}"

    detail = "; ".join(verdict(n) for n in [truth, other] + ([ref] if ref else []))
    return {"signature": f"oracle-disagreement:{aspect}:{who}", "kind": "oracle-disagreement",
            "op": aspect, "backend": who, "suspects": suspects, "detail": detail}


_VS_WASMTIME = re.compile(r"^(\S+): (status \S+, wasmtime |output .*, wasmtime |output .* is not a "
                          r"prefix-match of wasmtime's)")


def mark_oracle_disagreement(cmp, oracles: list[str], order: list[str], traces: dict[str, bool]):
    """Make a disagreement of the oracles the Comparison's finding: its
    first problem, `cmp.oracle_disagreement` (which signature_of files), and
    — when wasmtime is the suspect — the machines' verdicts against wasmtime
    withdrawn (another oracle agrees with them). Returns the disagreement."""
    dis = oracle_disagreement(cmp.results, oracles, order, traces)
    if dis is None:
        return None
    cmp.oracle_disagreement = dis
    if "wasmtime" in dis["suspects"] and len(dis["suspects"]) == 1:
        cmp.problems = [p for p in cmp.problems if not _VS_WASMTIME.match(p)]
        cmp.inconclusive = [p for p in cmp.inconclusive if not re.search(r" vs wasmtime ", p)]
        keep = {n for n in cmp.failed
                if any(p.startswith(n + ":") or p.startswith(n + " ") for p in cmp.problems)}
        cmp.failed = keep
    cmp.problems.insert(0, f"oracle disagreement ({dis['op']}; suspect {dis['backend']}): {dis['detail']}")
    cmp.failed |= set(dis["suspects"] or [o for o in oracles if o in cmp.results])
    return dis


# ---- state carried between runs (issue 15) ----
#
# A campaign's workers keep one instance of each backend for all their
# programs (and the ports run whole chunks in one batch), so a backend that
# leaves state to the next run (memory a pool re-zeroes only in part, a
# frame or stack not reset) computes a later program differently than a
# fresh instance would. The campaign runs programs again on new instances
# and compares each backend with itself.

_INSTANCE_ASPECTS = ("status", "trap", "steps", "tokens", "output", "digest")


def instance_difference(reused, fresh) -> str | None:
    """How a reused instance's run differs from a fresh instance's run of
    the same program (`aspect: reused X, fresh Y`), or None."""
    from isowasm.runner import show_bytes

    for what in _INSTANCE_ASPECTS:
        a, b = getattr(reused, what, None), getattr(fresh, what, None)
        if a is not None and b is not None and a != b:
            if what == "output":
                a, b = show_bytes(a), show_bytes(b)
            return f"{what}: reused instance {a}, fresh instance {b}"
    return None


def carried_state_finding(name: str, k: int, first: int, difference: str) -> dict:
    """The signature fields of a backend that computes program k
    differently after programs first..k-1 than a new instance does."""
    after = f"after programs {first}..{k - 1} through the same instance" if k > first else \
        "as the first program of its instance"
    return {"signature": f"carried-state:{name}", "kind": "carried-state", "op": "state", "backend": name,
            "detail": f"program {k}, run {after}, and on a new instance: {difference}"}
