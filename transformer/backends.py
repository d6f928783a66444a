"""Backends that run the analytic transformer: `GraphBackend` evaluates the
DSL graph exactly; `TorchBackend` runs the built weights in PyTorch (float64,
KV cache, greedy argmax). Both generate the trace token by token from the
program file as the prompt.

Registry strings: ``transformer.backends:GraphBackend`` ("transformer-graph")
and ``transformer.backends:TorchBackend`` ("transformer-torch").
"""

from __future__ import annotations

import os
import time

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.program import format_program, input_line
from isowasm.spec.result import BUDGET, HALTED, MALFORMED, MAX_STEP_TOKENS, TRAPPED, RunResult
from isowasm.transformer import vocab

_MACHINE = None


def machine():
    """The machine graph (built once per process)."""
    global _MACHINE
    if _MACHINE is None:
        from isowasm.transformer.machine import Machine
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


# token flags, one byte per vocabulary entry (the engine takes the same bytes)
STEP_END, HALT, TRAP, LINE_END = 1, 2, 4, 8
CHECKPOINT_INTERVAL = 16384
SLICE_TOKENS = 16384          # tokens per generate() call (progress granularity)
_FLAGS: bytes | None = None


def token_flags() -> bytes:
    global _FLAGS
    if _FLAGS is None:
        _FLAGS = bytes((STEP_END if t in vocab.STEP_END else 0) | (HALT if t == "halt" else 0)
                       | (TRAP if t.startswith("trap(") else 0) | (LINE_END if t in vocab.LINE_END else 0)
                       for t in vocab.TOKENS)
    return _FLAGS


class Decoder:
    """What `decode` needs of a model: the argmax after the last position
    (`next_id`), feeding tokens (`feed_ids`), a residual value by diagnostic
    name (`resid`), and `generate`, greedy decoding of a slice. This
    token-at-a-time `generate` is the contract the Rust engine implements
    natively (transformer/engine/src/engine.rs `generate`)."""

    def next_id(self) -> int:
        raise NotImplementedError

    def feed_ids(self, ids) -> None:
        raise NotImplementedError

    def resid(self, name: str):
        raise NotImplementedError

    def generate(self, max_tokens: int, steps_left: int, flags: bytes, text: bool):
        """Up to `max_tokens` tokens, stopping after a halt or trap token (not
        fed) or once `steps_left` step-ending tokens are out. Returns (ids,
        their trace text or None, stopped by halt/trap, steps)."""
        ids: list[int] = []
        steps = 0
        stopped = False
        run = 0
        while len(ids) < max_tokens and steps < steps_left:
            t = self.next_id()
            ids.append(t)
            f = flags[t]
            steps += f & STEP_END
            if f & (HALT | TRAP):
                stopped = True
                break
            run = 0 if f & STEP_END else run + 1
            if run > MAX_STEP_TOKENS:
                break   # a malformed step: `decode` reports it
            self.feed_ids([t])
        tx = None
        if text:
            tx = "".join(vocab.TOKENS[t] + ("\n" if flags[t] & LINE_END else " ") for t in ids)
        return ids, tx, stopped, steps


class GraphModel(Decoder):
    """The exact evaluator as a decoder."""

    def __init__(self):
        import numpy as np

        from isowasm.transformer.graph import Evaluator
        from isowasm.transformer.machine import readout
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

    def feed_ids(self, ids):
        for t in ids:
            self.ev.feed(vocab.TOKENS[t])

    def next_id(self) -> int:
        v = self.ev.vals
        x = [v[j] for j in self.cols]
        if all(type(a) is int and -(1 << 24) < a < (1 << 24) for a in x):
            return int((self.W @ x + self.b).argmax())   # the first maximum, as below
        best, bi = None, -1
        for i, (terms, const) in enumerate(self.rows):
            s = const
            for j, c in terms:
                s += c * v[j]
            if best is None or s > best:
                best, bi = s, i
        return bi

    def resid(self, name):
        return self.ev.vals[self.m.diag[name].id]


def decode(model: Decoder, case: Case, *, max_steps: int, trace: str, progress=None, backend: str) -> RunResult:
    """Greedy decoding from the program file as the prompt, with the
    machine's stopping rules (halt, trap, step budget): the one decoding loop
    of every transformer backend."""
    import hashlib

    import numpy as np
    flags = token_flags()
    t0 = time.perf_counter()
    prog = case.program
    data = prog.input
    has_ib, steps = start(prog, max_steps)
    prompt = prompt_tokens(prog)
    model.feed_ids([vocab.INDEX[t] for t in prompt])
    t1 = time.perf_counter()
    want_text = trace != "none"
    h = hashlib.sha256()
    parts: list[str] = []
    checkpoints: list[tuple[int, str]] = []

    def write(text: str):
        h.update(text.encode("ascii"))
        if trace == "text":
            parts.append(text)

    if want_text:
        write(input_line(data))
    n_emitted = 0
    out = bytearray()
    out0 = vocab.INDEX["out(00)"]
    status, trap, trap_pc = None, None, None
    steps_of_first = 1

    def pc() -> int:
        return int(round(float(model.resid("pc_raw"))))

    # The first token by hand: when the program opens with input_base, that
    # step is already done (its tokens are the prompt's input section), and
    # if its copy overflowed memory the model's first token is the trap of
    # input_base itself, at pc 0 and not counted as a further step.
    if steps < max_steps or (steps == 1 and has_ib):
        tid = model.next_id()
        t = vocab.TOKENS[tid]
        if has_ib and t.startswith("trap(") and model.resid("input_trap") > 0.5:
            n_emitted += 1
            if want_text:
                write(t + "\n")
            status, trap, trap_pc = TRAPPED, t[5:-1], 0
        elif steps < max_steps:
            n_emitted += 1
            if want_text:
                write(t + ("\n" if flags[tid] & LINE_END else " "))
            steps_of_first = flags[tid] & STEP_END
            steps += steps_of_first
            if t.startswith("out("):
                out.append(tid - out0)
            if t == "halt":
                status = HALTED
            elif t.startswith("trap("):
                status, trap, trap_pc = TRAPPED, t[5:-1], pc()
            else:
                model.feed_ids([tid])
    last_cp = 0
    # tokens since the last step end (MAX_STEP_TOKENS at most in a well-formed trace)
    run_len = 1 if n_emitted and not steps_of_first else 0
    while status is None and steps < max_steps:
        next_cp = (steps // CHECKPOINT_INTERVAL + 1) * CHECKPOINT_INTERVAL
        ids, text, stopped, nsteps = model.generate(SLICE_TOKENS, min(max_steps, next_cp) - steps, flags, want_text)
        ids = np.asarray(ids, dtype=np.int64)
        n_emitted += len(ids)
        steps += nsteps
        if text:
            write(text)
        o = ids[(ids >= out0) & (ids < out0 + 256)]
        if len(o):
            out.extend((o - out0).astype(np.uint8).tobytes())
        ends = np.flatnonzero(np.frombuffer(flags, dtype=np.uint8)[ids] & STEP_END)
        run_len = len(ids) - 1 - ends[-1] if len(ends) else run_len + len(ids)
        if run_len > MAX_STEP_TOKENS:
            # the model left the trace format; without this it could generate forever
            status = MALFORMED
            break
        if stopped:
            t = vocab.TOKENS[int(ids[-1])]
            if t == "halt":
                status = HALTED
            else:
                status, trap, trap_pc = TRAPPED, t[5:-1], pc()
            break
        if want_text and steps % CHECKPOINT_INTERVAL == 0 and steps != last_cp:
            checkpoints.append((steps, h.copy().hexdigest()))
            last_cp = steps
        if progress:
            progress(steps, len(data) + 2 + n_emitted)
    tokens = len(data) + 2 + n_emitted
    if progress:
        progress(steps, tokens)
    res = RunResult(backend=backend, status=status or BUDGET, output=bytes(out), trap=trap, trap_pc=trap_pc,
                    steps=steps, tokens=tokens)
    if want_text:
        res.digest = h.hexdigest()
        res.checkpoints = checkpoints
        if trace == "text":
            res.trace = "".join(parts)
    t2 = time.perf_counter()
    res.seconds = t2 - t0
    res.extra["prompt_tokens"] = len(prompt)
    res.extra["prompt_seconds"] = t1 - t0
    res.extra["generated_tokens"] = n_emitted
    res.extra["tok_per_s"] = n_emitted / (t2 - t1) if t2 > t1 else None  # generation only
    return res


def explain_divergence(model, case: Case, div) -> str:
    """Each head's winner and margin at the divergent position, in the
    float64 module of the weights (transformer.explain)."""
    from isowasm.transformer.explain import explain
    return explain(model, case.program, div.trace_a, div.token_index, div.token_b)


def weights_model(path: str | None = None):
    """The built weights as the PyTorch module (for explanations), or None
    without torch."""
    try:
        from isowasm.transformer.model import load_model
    except ImportError:
        return None
    return load_model(path)


class GraphBackend(Backend):
    """The DSL graph, evaluated exactly (Python integers and Fractions)."""

    name = "transformer-graph"
    heavy = True
    default_max_steps = 60_000         # ~1K steps/s, evaluated node by node

    def explain(self, case: Case, divergence) -> str | None:
        model = weights_model()
        return explain_divergence(model, case, divergence) if model is not None else None

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        return decode(GraphModel(), case, max_steps=max_steps, trace=trace, progress=progress, backend=self.name)


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
    default_max_steps = 10_000         # dense attention: O(n) per token

    def __init__(self, path: str | None = None, draft: bool = True, device: str | None = None):
        try:
            import torch
            import safetensors  # noqa: F401
        except ImportError as e:
            raise BackendUnavailable(f"transformer-torch needs torch and safetensors: {e}") from None
        from isowasm.transformer.model import load_model
        # the dense O(n) attention per token is what limits this backend: on
        # a GPU (ISOWASM_TORCH_DEVICE=cuda) the long programs come in reach
        device = device or os.environ.get("ISOWASM_TORCH_DEVICE", "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(f"ISOWASM_TORCH_DEVICE={device}: torch sees no CUDA device")
        self.path = path
        self.model = load_model(path, device=device)
        # the longest trace the shared test suites give this backend (longer
        # ones are skipped, with this reason): on a CPU a 100K-token trace
        # already takes tens of minutes
        self.max_tokens = int(os.environ.get("ISOWASM_TORCH_MAX_TOKENS", 0 if device.startswith("cuda") else 100_000))
        self.max_tokens_why = ("dense attention costs O(n) per token; ISOWASM_TORCH_MAX_TOKENS=0 lifts the limit, "
                               "ISOWASM_TORCH_DEVICE=cuda moves the model to a GPU")
        self.drafter = None
        if draft:
            try:
                from isowasm.transformer.engine_backend import EngineBackend
                self.drafter = EngineBackend(path)
            except BackendUnavailable:
                pass   # no engine: token-by-token decoding

    def explain(self, case: Case, divergence) -> str | None:
        return explain_divergence(self.model, case, divergence)

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        draft = None
        if self.drafter is not None:
            text = self.drafter.run(case, max_steps=max_steps, trace="text").trace
            draft = prompt_tokens(case.program) + text.partition("\n")[2].split()
        session = self.model.session(draft)
        res = decode(session, case, max_steps=max_steps, trace=trace, progress=progress, backend=self.name)
        if draft is not None:
            res.extra["draft_tokens"] = len(draft)
            res.extra["draft_accepted"] = session.accepted
        return res
