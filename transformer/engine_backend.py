"""The analytic transformer on the fast engine (transformer/engine/, the Rust
module `isowasm_engine`): the same weights (transformer/build/) and the same
greedy decoding as `transformer.backends.TorchBackend`, with per-head caches
that answer each attention query exactly in O(1) instead of O(n)
(transformer/ENGINE.md).

Registry string: ``transformer.engine_backend:EngineBackend`` ("transformer").
Build: ``pip install ./transformer/engine`` (``make engine``).

`verify_trace(case, trace_text)` checks a trace teacher-forced: at every
position the model's argmax must be the next reference token.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from isowasm.backends.base import Backend, BackendUnavailable, Case
from spec.program import input_line
from spec.result import BUDGET, HALTED, TRAPPED, RunResult
from transformer import vocab
from transformer.backends import check_supported, prompt_tokens, start

CHECKPOINT_INTERVAL = 16384
SLICE_TOKENS = 16384          # tokens per call into the engine (progress granularity)
NOT_BUILT = "transformer engine not built: run `make engine`"

_ENGINES: dict = {}


def _module():
    try:
        import isowasm_engine
    except ImportError:
        raise BackendUnavailable(NOT_BUILT) from None
    return isowasm_engine


def load_engine(path: str | Path | None = None):
    """The loaded model (one per build directory and process); builds the
    weights first when they are missing."""
    mod = _module()
    from transformer.build import BUILD_DIR, CONFIG, WEIGHTS, build
    d = Path(path) if path else BUILD_DIR
    key = str(d.resolve())
    if key not in _ENGINES:
        if not (d / WEIGHTS).exists() or not (d / CONFIG).exists():
            build(d)
        import json
        cfg = json.loads((d / CONFIG).read_text())
        eng = mod.Engine(str(d))
        if eng.vocab() != list(vocab.TOKENS):
            raise BackendUnavailable(f"{d}: the build's vocabulary is not transformer.vocab's; rebuild it")
        _ENGINES[key] = (eng, cfg)
    return _ENGINES[key]


def _flags() -> bytes:
    f = bytearray(len(vocab.TOKENS))
    for i, t in enumerate(vocab.TOKENS):
        f[i] = ((1 if t in vocab.STEP_END else 0) | (2 if t == "halt" else 0) | (4 if t.startswith("trap(") else 0)
                | (8 if t in vocab.LINE_END else 0))
    return bytes(f)


_FLAGS = None


def generate(engine, cfg, case: Case, *, max_steps: int, trace: str, progress=None, backend: str) -> RunResult:
    """Greedy decoding with the stopping rules of transformer.backends.generate."""
    import numpy as np
    global _FLAGS
    if _FLAGS is None:
        _FLAGS = _flags()
    flags = _FLAGS
    t0 = time.perf_counter()
    prog = case.program
    data = prog.input
    has_ib, steps = start(prog, max_steps)
    prompt = prompt_tokens(prog)
    s = engine.session()
    s.feed([vocab.INDEX[t] for t in prompt])
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
    pc_dim = cfg["diag_dims"]["pc_raw"]
    last_cp = 0

    def take(tok_id: int):
        nonlocal steps, n_emitted
        t = vocab.TOKENS[tok_id]
        n_emitted += 1
        if want_text:
            write(t + ("\n" if t in vocab.LINE_END else " "))
        if t in vocab.STEP_END:
            steps += 1
            if t.startswith("out("):
                out.append(tok_id - out0)
        return t

    # the first token by hand (input_base's own trap, see transformer.backends.generate)
    if steps < max_steps or (steps == 1 and has_ib):
        tid = s.next_token()
        t = vocab.TOKENS[tid]
        if has_ib and t.startswith("trap(") and s.resid(cfg["diag_dims"]["input_trap"]) > 0.5:
            n_emitted += 1      # emitted, but not counted as a step (as in transformer.backends.generate)
            if want_text:
                write(t + "\n")
            status, trap, trap_pc = TRAPPED, t[5:-1], 0
        elif steps < max_steps:
            take(tid)
            if t == "halt":
                status = HALTED
            elif t.startswith("trap("):
                status, trap = TRAPPED, t[5:-1]
                trap_pc = int(round(s.resid(pc_dim)))
            else:
                s.feed([tid])
        else:
            max_steps = steps  # budget spent by input_base itself
    else:
        max_steps = steps
    while status is None and steps < max_steps:
        next_cp = (steps // CHECKPOINT_INTERVAL + 1) * CHECKPOINT_INTERVAL
        ids_b, text_b, stopped, nsteps = s.generate(SLICE_TOKENS, min(max_steps, next_cp) - steps, flags, want_text)
        ids = np.frombuffer(ids_b, dtype="<u2")
        n_emitted += len(ids)
        steps += nsteps
        if want_text and text_b:
            write(text_b.decode("ascii"))
        o = ids[(ids >= out0) & (ids < out0 + 256)]
        if len(o):
            out.extend((o - out0).astype(np.uint8).tobytes())
        if stopped:
            t = vocab.TOKENS[int(ids[-1])]
            if t == "halt":
                status = HALTED
            else:
                status, trap = TRAPPED, t[5:-1]
                trap_pc = int(round(s.resid(pc_dim)))
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


class EngineBackend(Backend):
    """The built weights (transformer/build/) on the Rust engine."""

    name = "transformer"
    heavy = False

    def __init__(self, path: str | None = None):
        self.engine, self.cfg = load_engine(path)

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        return generate(self.engine, self.cfg, case, max_steps=max_steps, trace=trace, progress=progress,
                        backend=self.name)


def verify_trace(case: Case, trace_text: str, path: str | None = None, threads: int = 2) -> dict:
    """Teacher-forced check of `trace_text` (canonical trace text: the input
    line, then the steps) as the continuation of `case`'s program file.
    Returns {"ok", "checked", "seconds", "first_mismatch": None or {"index"
    (token index in the generated part), "position" (sequence position whose
    prediction failed), "expected", "predicted", "margin", ...}}. `threads`:
    0 checks token by token (the generation path); n >= 1 runs layer-major
    batches over n threads."""
    engine, _ = load_engine(path)
    prog = case.program
    check_supported(prog)
    first, _, rest = trace_text.partition("\n")
    if first + "\n" != input_line(prog.input):
        raise ValueError("the trace's first line is not the program's input section")
    try:
        ref = [vocab.INDEX[t] for t in rest.split()]
    except KeyError as e:
        raise ValueError(f"unknown token {e.args[0]!r} in the trace") from None
    prompt = [vocab.INDEX[t] for t in prompt_tokens(prog)]
    return engine.verify_ids(prompt, ref, threads)
