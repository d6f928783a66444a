"""The differential runner: one case on several backends, compared.

Order of comparison (as wasmtime's own differential oracle does): status and
trap, then output, against the ground truth (wasmtime on the original module)
and against the case's stated expectation; then the machine traces of all
trace-producing backends, byte for byte, against the first of them (the
reference executor when present). A resource trap or an exhausted budget on
either side of a ground-truth comparison is *inconclusive*, never a pass.
A trace mismatch is reported as its first divergent token with context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isowasm.backends.base import Backend, Case
from isowasm.spec import table
from isowasm.spec.program import Program
from isowasm.spec.errors import ResourceLimit
from isowasm.spec.result import BUDGET, TRAPPED, RunResult
from isowasm.spec.trace import annotate_lines

CONTEXT_LINES = 3


@dataclass
class Comparison:
    case: Case
    results: dict[str, RunResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    divergence: "Divergence | None" = None
    failed: set[str] = field(default_factory=set)   # backends named in a problem

    def fail(self, backend: str, msg: str) -> None:
        self.problems.append(msg)
        self.failed.add(backend)

    def verdict(self, backend: str) -> str:
        if backend not in self.results and any(i.startswith(backend + " ") for i in self.inconclusive):
            return "inconclusive"
        if backend not in self.results:
            return "error" if backend in self.failed else "n/a"
        if backend in self.failed:
            return "FAIL"
        if any(i.startswith(backend + " ") for i in self.inconclusive):
            return "inconclusive"
        return "ok"

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        head = f"{self.case.name}: " + ("ok" if self.ok else f"{len(self.problems)} problem(s)")
        lines = [head]
        for name, r in self.results.items():
            tok = f", {r.tokens} tokens" if r.tokens is not None else ""
            steps = f", {r.steps} steps" if r.steps is not None else ""
            lines.append(f"  {name:>18}: {r.status_line()}{steps}{tok}, output {show_bytes(r.output)}")
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        lines += [f"  inconclusive: {p}" for p in self.inconclusive]
        return "\n".join(lines)


@dataclass
class Divergence:
    a: str
    b: str
    token_index: int
    line: int
    step: int | None
    pc: int | None
    instruction: str | None
    token_a: str | None
    token_b: str | None
    context_a: list[str]
    context_b: list[str]
    trace_a: str | None = field(default=None, repr=False)   # a's whole trace, for Backend.explain

    def describe(self) -> str:
        where = f"token {self.token_index} (trace line {self.line + 1}"
        if self.step is not None:
            where += f", step {self.step}, pc {self.pc}: {self.instruction}"
        where += ")"
        out = [f"traces diverge at {where}: {self.a} has {self.token_a!r}, {self.b} has {self.token_b!r}"]
        out.append(f"    {self.a}:")
        out += [f"      {ln}" for ln in self.context_a]
        out.append(f"    {self.b}:")
        out += [f"      {ln}" for ln in self.context_b]
        return "\n".join(out)


def show_bytes(b: bytes, limit: int | None = 60) -> str:
    """Output bytes exactly, as a quoted string: printable ASCII as itself,
    everything else (newline included) as \\xNN, so no decoding hides a byte."""
    part = b if limit is None else b[:limit]
    s = "".join(chr(c) if 0x20 <= c < 0x7f and c not in (0x22, 0x5c) else f"\\x{c:02x}" for c in part)
    more = f"... ({len(b)} bytes)" if limit is not None and len(b) > limit else ""
    return f'"{s}"{more}'




def output_difference(prog: Program, r: RunResult, truth: bytes) -> str:
    """Where a machine's output first departs from the ground truth's: the
    byte index, both sides around it, and — when the machine's trace text is
    at hand — the step, pc and instruction that wrote the byte."""
    a = r.output
    k = next((i for i in range(min(len(a), len(truth))) if a[i] != truth[i]), min(len(a), len(truth)))
    lo = max(0, k - 8)
    mine = show_bytes(a[lo:k + 8], None) if k < len(a) else "<end of output>"
    theirs = show_bytes(truth[lo:k + 8], None) if k < len(truth) else "<end of output>"
    where = ""
    if r.trace is not None and k < len(a):
        lines = r.trace.split("\n")
        seen = -1
        for li, ln in enumerate(lines):
            if ln.startswith("out("):
                seen += 1
                if seen == k:
                    step, pc = annotate_lines(prog, r.trace)[li]
                    if pc is not None:
                        where = f", written at step {step}, pc {pc}: {prog.names[pc]} (trace line {li + 1})"
                    break
    kind = "longer" if k == len(truth) else "shorter" if k == len(a) else "differs"
    return f"first divergent output byte {k} ({kind}{where}): {mine} vs wasmtime {theirs} from byte {lo}"


def expected_status(r: RunResult) -> str:
    return f"trapped:{r.trap}" if r.status == TRAPPED else r.status


def _by_design(status: str | None) -> bool:
    """An expected status wasmtime cannot confirm: the budget, or a resource
    trap (machine.yaml `resource: true`)."""
    s = status or ""
    return s.startswith(BUDGET) or (s.startswith(TRAPPED + ":") and s.partition(":")[2] in table.resource_traps())


def _inconclusive_status(r: RunResult) -> bool:
    return r.status == BUDGET or (r.status == TRAPPED and r.trap in table.resource_traps())


def first_divergence(prog: Program, a_name: str, a_text: str, b_name: str, b_text: str) -> Divergence | None:
    """The first token where two canonical traces differ, with context."""
    a_lines = a_text.split("\n")
    b_lines = b_text.split("\n")
    tok = 0
    for li in range(max(len(a_lines), len(b_lines))):
        la = a_lines[li] if li < len(a_lines) else None
        lb = b_lines[li] if li < len(b_lines) else None
        if la == lb:
            tok += len(la.split(" ")) if la else 0
            continue
        ta = la.split(" ") if la else []
        tb = lb.split(" ") if lb else []
        k = 0
        while k < min(len(ta), len(tb)) and ta[k] == tb[k]:
            k += 1
        ann = annotate_lines(prog, a_text)
        step, pc = ann[li] if li < len(ann) else (None, None)
        instr = None
        if pc is not None and 0 <= pc < len(prog.names):
            instr = f"{prog.names[pc]} {prog.imms[pc]:#x}"
        lo = max(0, li - CONTEXT_LINES)
        mark = lambda lines: [("> " if j == li else "  ") + lines[j]  # noqa: E731
                              for j in range(lo, min(len(lines), li + CONTEXT_LINES + 1))]
        return Divergence(
            a=a_name, b=b_name, token_index=tok + k, line=li, step=step, pc=pc, instruction=instr,
            token_a=ta[k] if k < len(ta) else "<end of trace>",
            token_b=tb[k] if k < len(tb) else "<end of trace>",
            context_a=mark(a_lines), context_b=mark(b_lines), trace_a=a_text,
        )
    return None


def _run(backend: Backend, case: Case, max_steps: int, trace: str) -> RunResult:
    if not backend.traces:
        trace = "none"
    return backend.run(case, max_steps=max_steps, trace=trace)


def compare_case(case: Case, backends: list[Backend], *, max_steps: int | None = None,
                 trace: str = "text", explain: bool = True) -> Comparison:
    """Run `case` on every backend and compare (see module docstring).

    trace="text" compares canonical texts directly; trace="digest" compares
    SHA-256 digests and, when they differ, localises the divergence with the
    checkpoints and a traced re-run of both sides up to the first differing
    checkpoint — so million-token traces are never held unless they differ.
    explain=False leaves out the diverging backend's own account
    (Backend.explain), which the fuzzer's shrinking loop does not need.
    """
    if max_steps is None:
        max_steps = table.limits()["default_max_steps"]
    cmp = Comparison(case)
    seen = set()
    for b in backends:
        if b.name in seen:
            continue
        seen.add(b.name)
        try:
            cmp.results[b.name] = _run(b, case, max_steps, trace)
        except ResourceLimit as e:   # the implementation's own limit: not a verdict
            cmp.inconclusive.append(f"{b.name} stopped at a resource limit: {e}")
        except Exception as e:  # a crashing backend is a finding, not a harness crash
            cmp.fail(b.name, f"{b.name} raised {type(e).__name__}: {e}")
    by_name = {b.name: b for b in backends}

    truth = cmp.results.get("wasmtime")
    machines = [n for n in cmp.results if by_name[n].traces]

    # 1. The stated expectation.
    if case.expect_status is not None or case.expect_output is not None:
        for name, r in cmp.results.items():
            if _by_design(case.expect_status) and (name == "wasmtime" or (
                    by_name[name].needs_wasm and not by_name[name].traces)):
                continue  # an engine's resources (wasmtime's, wasmi's) differ from the machine's by design
            if case.expect_status is not None and expected_status(r) != case.expect_status:
                cmp.fail(name, f"{name}: status {expected_status(r)}, expected {case.expect_status}")
            if case.expect_output is not None and r.output != case.expect_output:
                cmp.fail(name, f"{name}: output {show_bytes(r.output)}, expected {show_bytes(case.expect_output)}")

    # 2. Ground truth.
    if truth is not None:
        for name in machines:
            r = cmp.results[name]
            if _inconclusive_status(r) or _inconclusive_status(truth):
                cmp.inconclusive.append(f"{name} {expected_status(r)} vs wasmtime {expected_status(truth)}")
                if r.output[:len(truth.output)] != truth.output[:len(r.output)]:
                    cmp.fail(name, f"{name}: output {show_bytes(r.output)} is not a prefix-match of wasmtime's "
                                   f"{show_bytes(truth.output)}; {output_difference(case.program, r, truth.output)}")
                continue
            if expected_status(r) != expected_status(truth):
                cmp.fail(name, f"{name}: status {expected_status(r)}, wasmtime {expected_status(truth)}")
            if r.output != truth.output:
                cmp.fail(name, f"{name}: output {show_bytes(r.output)}, wasmtime {show_bytes(truth.output)}; "
                               f"{output_difference(case.program, r, truth.output)}")

    # 3. Machine traces, byte for byte.
    if len(machines) >= 2:
        base = "reference" if "reference" in machines else machines[0]
        rb = cmp.results[base]
        for name in machines:
            if name == base:
                continue
            r = cmp.results[name]
            for what in ("status", "trap", "steps", "tokens"):
                va, vb = getattr(rb, what), getattr(r, what)
                if va is not None and vb is not None and va != vb:
                    cmp.fail(name, f"{name}: {what} {vb}, {base} {va}")
            div = _trace_divergence(case, by_name[base], rb, by_name[name], r, max_steps)
            if div is not None:
                cmp.divergence = cmp.divergence or div
                cmp.fail(name, div.describe() + (_explanation(by_name[name], case, div) if explain else ""))
    return cmp


def _explanation(b: Backend, case: Case, div: Divergence) -> str:
    """The diverging backend's own account of the divergent position, if it
    has one (the transformer backends show each head's winner and margin)."""
    if div.trace_a is None or div.token_index < 0:
        return ""
    try:
        text = b.explain(case, div)
    except Exception as e:  # a diagnostic must not hide the finding it explains
        text = f"no explanation: {type(e).__name__}: {e}"
    return "".join(f"\n    {ln}" for ln in text.splitlines()) if text else ""


def _trace_divergence(case: Case, ba: Backend, ra: RunResult, bb: Backend, rb: RunResult,
                      max_steps: int) -> Divergence | None:
    if ra.trace is not None and rb.trace is not None:
        if ra.trace == rb.trace:
            return None
        return first_divergence(case.program, ba.name, ra.trace, bb.name, rb.trace)
    if ra.digest is None or rb.digest is None or ra.digest == rb.digest:
        return None
    # Localise with checkpoints: re-run both with text up to the first
    # checkpoint whose digests differ (or to the end when all shared ones agree).
    limit = max_steps
    for (sa, da), (sb, db) in zip(ra.checkpoints or [], rb.checkpoints or []):
        if sa != sb or da != db:
            limit = max(sa, sb)
            break
    ta = ba.run(case, max_steps=limit, trace="text").trace or ""
    tb = bb.run(case, max_steps=limit, trace="text").trace or ""
    div = first_divergence(case.program, ba.name, ta, bb.name, tb)
    if div is None:  # digests differ but the texts agree: a digest bug, report it plainly
        return Divergence(ba.name, bb.name, -1, -1, None, None, None, ra.digest, rb.digest,
                          ["digests differ but re-run traces are identical"], [])
    return div
