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

from pathlib import Path

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.errors import ResourceLimit
from isowasm.spec.program import input_line
from isowasm.spec.result import RunResult
from isowasm.transformer import vocab
from isowasm.transformer.backends import Decoder, check_supported, decode, prompt_tokens

NOT_BUILT = ("transformer engine not built: `pip install ./transformer/engine` from an "
             "isowasm checkout (`make engine`)")

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
    from isowasm.transformer.build import BUILD_DIR, CONFIG, WEIGHTS, build
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


class EngineSession(Decoder):
    """An engine session as a `transformer.backends.Decoder`; `generate`
    runs in Rust, slice by slice."""

    def __init__(self, engine, cfg):
        self.s = engine.session()
        self.dims = cfg["diag_dims"]

    def next_id(self) -> int:
        return self.s.next_token()

    def feed_ids(self, ids) -> None:
        self.s.feed(list(ids))

    def resid(self, name: str) -> float:
        return self.s.resid(self.dims[name])

    def generate(self, max_tokens: int, steps_left: int, flags: bytes, text: bool):
        import numpy as np
        ids, tx, stopped, steps = self.s.generate(max_tokens, steps_left, flags, text)
        return np.frombuffer(ids, dtype="<u2"), tx.decode("ascii") if tx is not None else None, stopped, steps


class EngineBackend(Backend):
    """The built weights (transformer/build/) on the Rust engine."""

    name = "transformer"
    heavy = False
    # ~40K steps/s (200K tokens/s) sequential; at most 6 tokens a step keeps
    # 2M steps inside the engine's 2**24-position horizon
    default_max_steps = 2_000_000

    def __init__(self, path: str | None = None):
        self.path = path
        self.engine, self.cfg = load_engine(path)

    def explain(self, case: Case, divergence) -> str | None:
        from isowasm.transformer.backends import explain_divergence, weights_model
        model = weights_model(self.path)
        return explain_divergence(model, case, divergence) if model is not None else None

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        try:
            return decode(EngineSession(self.engine, self.cfg), case, max_steps=max_steps, trace=trace,
                          progress=progress, backend=self.name)
        except RuntimeError as e:
            if "horizon" in str(e):
                raise ResourceLimit(f"{self.name}: {e}") from None
            raise


def verify_trace(case: Case, trace_text: str, path: str | None = None, threads: int = 2) -> dict:
    """Teacher-forced check of `trace_text` (canonical trace text: the input
    line, then the steps) as the continuation of `case`'s program file.
    Returns {"ok", "checked", "seconds", "first_mismatch": None or {"index"
    (token index in the generated part), "position" (sequence position whose
    prediction failed), "expected", "predicted", "margin", ...}}. `threads`:
    0 checks token by token (the generation path); n >= 1 runs layer-major
    batches over n threads."""
    engine, _ = load_engine(path)
    prompt, ref = trace_ids(case, trace_text)
    return engine.verify_ids(prompt, ref, threads)


def trace_ids(case, trace_text: str) -> tuple[list[int], list[int]]:
    """(the prompt's token ids, the reference trace's generated ids) of
    `case` and its canonical trace text (the input line, then the steps)."""
    prog = case.program
    check_supported(prog)
    first, _, rest = trace_text.partition("\n")
    if first + "\n" != input_line(prog.input):
        raise ValueError("the trace's first line is not the program's input section")
    try:
        ref = [vocab.INDEX[t] for t in rest.split()]
    except KeyError as e:
        raise ValueError(f"unknown token {e.args[0]!r} in the trace") from None
    return [vocab.INDEX[t] for t in prompt_tokens(prog)], ref
