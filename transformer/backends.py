"""Backends that run the analytic transformer: `GraphBackend` evaluates the
DSL graph exactly; `TorchBackend` runs the built weights in PyTorch (float64,
KV cache, greedy argmax). Both generate the trace token by token from the
program file as the prompt.

Registry strings: ``transformer.backends:GraphBackend`` ("transformer-graph")
and ``transformer.backends:TorchBackend`` ("transformer-torch").
"""

from __future__ import annotations

import time

from isowasm.backends.base import Backend, BackendUnavailable, Case
from spec.program import format_program, input_line
from spec.result import BUDGET, HALTED, TRAPPED, RunResult
from spec.trace import digest_text
from transformer import vocab

_MACHINE = None


def machine():
    """The machine graph (built once per process)."""
    global _MACHINE
    if _MACHINE is None:
        from transformer.machine import Machine
        _MACHINE = Machine()
    return _MACHINE


class Unsupported(ValueError):
    """The program lies outside the construction's documented horizon."""


def check_supported(prog) -> None:
    if prog.names and prog.names[0] == "input_base":
        for i, (n, imm) in enumerate(zip(prog.names, prog.imms)):
            if n in ("br", "br_if", "call"):
                off = imm - (1 << 32) if imm >= 1 << 31 else imm
                if i + 1 + off == 0:
                    raise Unsupported(f"pc {i}: {n} to pc 0, which is input_base (re-executing it emits no "
                                      "tokens; outside the transformer's horizon)")


def start(prog, max_steps: int) -> tuple[bool, int]:
    """Where every decoder of this model starts: the program is checked to
    lie inside the horizon, and when it opens with input_base that step is
    already done — its tokens (the input section) are part of the prompt.
    Returns (has input_base, steps executed)."""
    check_supported(prog)
    has_ib = bool(prog.names) and prog.names[0] == "input_base"
    return has_ib, 1 if (has_ib and max_steps >= 1) else 0


def prompt_tokens(prog) -> list[str]:
    return format_program(prog).split()


class GraphModel:
    """Next-token interface over the exact evaluator."""

    def __init__(self):
        import numpy as np

        from transformer.graph import Evaluator
        from transformer.machine import readout
        m = machine()
        self.m = m
        self.ev = Evaluator(m.g)
        rows = [([(n.id, c) for n, c in terms], const) for terms, const in readout(m)]
        self.rows = rows
        # the readout as an integer matrix over the nodes it reads: exact in
        # int64 while those values are integers of modest size (checked per
        # token; otherwise the rows are summed in Python)
        self.cols = sorted({j for terms, _ in rows for j, _ in terms})
        at = {j: k for k, j in enumerate(self.cols)}
        self.W = np.zeros((len(rows), len(self.cols)), dtype=np.int64)
        for i, (terms, _) in enumerate(rows):
            for j, c in terms:
                self.W[i, at[j]] = c
        self.b = np.array([const for _, const in rows], dtype=np.int64)
        self.pc_id = m.diag["pc_raw"].id

    def feed_prompt(self, toks):
        for t in toks:
            self.ev.feed(t)

    def feed(self, tok):
        self.ev.feed(tok)

    def next_token(self) -> str:
        v = self.ev.vals
        x = [v[j] for j in self.cols]
        if all(type(a) is int and -(1 << 24) < a < (1 << 24) for a in x):
            return vocab.TOKENS[int((self.W @ x + self.b).argmax())]   # first maximum, as below
        best, bi = None, -1
        for i, (terms, const) in enumerate(self.rows):
            s = const
            for j, c in terms:
                s += c * v[j]
            if best is None or s > best:
                best, bi = s, i
        return vocab.TOKENS[bi]

    def pc(self):
        return int(self.ev.vals[self.pc_id])

    def diag(self, name):
        return self.ev.vals[self.m.diag[name].id]


def generate(model, case: Case, *, max_steps: int, trace: str, progress=None, backend: str) -> RunResult:
    t0 = time.perf_counter()
    prog = case.program
    data = prog.input
    has_ib, steps = start(prog, max_steps)
    model.feed_prompt(prompt_tokens(prog))
    t1 = time.perf_counter()
    emitted: list[str] = []
    out = bytearray()
    status, trap, trap_pc = None, None, None
    out0 = vocab.INDEX["out(00)"]
    first = True
    while steps < max_steps or (first and steps == 1 and has_ib):
        t = model.next_token()
        if first and has_ib and t.startswith("trap(") and model.diag("input_trap") > 0.5:
            # input_base itself trapped (its copy overflows memory): step 1, pc 0
            emitted.append(t)
            status, trap, trap_pc = TRAPPED, t[5:-1], 0
            break
        first = False
        if steps >= max_steps:
            break
        emitted.append(t)
        if t in vocab.STEP_END:
            steps += 1
            if t.startswith("out("):
                out.append(vocab.INDEX[t] - out0)
        if t == "halt":
            status = HALTED
            break
        if t.startswith("trap("):
            status, trap = TRAPPED, t[5:-1]
            trap_pc = model.pc()
            break
        model.feed(t)
        if progress and t in vocab.STEP_END and steps % 4096 == 0:
            progress(steps, len(data) + 2 + len(emitted))
    res = RunResult(backend=backend, status=status or BUDGET, output=bytes(out), trap=trap, trap_pc=trap_pc,
                    steps=steps, tokens=len(data) + 2 + len(emitted))
    if trace != "none":
        parts = [input_line(data)]
        for t in emitted:
            parts.append(t + ("\n" if t in vocab.LINE_END else " "))
        text = "".join(parts)
        res.digest = digest_text(text)
        if trace == "text":
            res.trace = text
    t2 = time.perf_counter()
    res.seconds = t2 - t0
    res.extra["prompt_tokens"] = len(prompt_tokens(prog))
    res.extra["prompt_seconds"] = t1 - t0
    res.extra["tok_per_s"] = len(emitted) / (t2 - t1) if t2 > t1 else None  # generation only
    return res


class GraphBackend(Backend):
    """The DSL graph, evaluated exactly (Python integers and Fractions)."""

    name = "transformer-graph"
    heavy = True

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        return generate(GraphModel(), case, max_steps=max_steps, trace=trace, progress=progress, backend=self.name)


class TorchBackend(Backend):
    """The built weights (transformer/build/) in a standard PyTorch module.

    Decoding is speculative when the fast engine (backend ``transformer``)
    is installed: the engine's trace is the draft that the torch model checks
    a chunk at a time (`transformer.model.Session`). The tokens are still the
    torch model's own greedy choices; the draft saves the one-token-per-pass
    overhead, not the O(n) attention per token. ``draft=False`` decodes
    token by token."""

    name = "transformer-torch"
    heavy = True

    def __init__(self, path: str | None = None, draft: bool = True):
        try:
            import torch  # noqa: F401
            import safetensors  # noqa: F401
        except ImportError as e:
            raise BackendUnavailable(f"transformer-torch needs torch and safetensors: {e}") from None
        from transformer.model import load_model
        self.path = path
        self.model = load_model(path)
        self.drafter = None
        if draft:
            try:
                from transformer.engine_backend import EngineBackend
                self.drafter = EngineBackend(path)
            except BackendUnavailable:
                pass   # no engine: token-by-token decoding

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        draft = None
        if self.drafter is not None:
            text = self.drafter.run(case, max_steps=max_steps, trace="text").trace
            draft = text.partition("\n")[2].split()
        session = self.model.session(draft)
        res = generate(session, case, max_steps=max_steps, trace=trace, progress=progress, backend=self.name)
        if draft is not None:
            res.extra["draft_tokens"] = len(draft)
            res.extra["draft_accepted"] = session.accepted
        return res
