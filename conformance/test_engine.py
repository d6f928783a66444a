"""The fast inference engine (transformer/engine/, module `isowasm_engine`;
transformer/ENGINE.md): traces byte-identical to the reference executor's on
the hand-written programs and the examples, a >= 10M-token run (slow), the
teacher-forced verifier (passes a correct trace, names the first wrong token
of a corrupted one), and the load-time refusal of weights whose heads lack the
structure the caches rely on.

Skipped when the engine is not built (`make engine`), unless
ISOWASM_REQUIRE_BACKENDS names `transformer`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance.conftest import assert_same_run

from isowasm.backends import required_backends
from isowasm.backends.base import BackendUnavailable, Case
from isowasm.spec.program import load_program
from isowasm.spec.reference import run_reference

PROG_DIR = Path(__file__).resolve().parent.parent / "transformer" / "programs"
PROGRAMS = sorted(p.stem for p in PROG_DIR.glob("*.prog"))
BUDGET = 20000


def _engine_backend():
    from isowasm.transformer.engine_backend import EngineBackend
    try:
        return EngineBackend()
    except BackendUnavailable as e:
        if "transformer" in required_backends():
            pytest.fail(f"required backend transformer is unavailable: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def eng():
    return _engine_backend()




def _examples():
    from isowasm.suites.examples import load_examples
    return {e.name: e for e in load_examples()}


_EXAMPLE_CASES: dict = {}


def _example(name):
    if name not in _EXAMPLE_CASES:
        ex = _examples()[name]
        _EXAMPLE_CASES[name] = (ex, ex.case())
    return _EXAMPLE_CASES[name]


def test_heads_are_recognised(eng):
    kinds = {name: kind for _, name, kind, _, _ in eng.engine.heads()}
    assert kinds["sum"] == kinds["pcsum"] == "Avg"
    assert kinds["last_end"] == kinds["rbrace"] == "Latest0"
    for h in ("stack0", "stack1", "stack2", "stack3", "frame", "local", "global", "mem_store", "mem_input"):
        assert kinds[h] == "Latest", h
    for h in ("rel1", "rel4", "sp", "cd", "ends", "in_off", "pc", "pc_prev"):
        assert kinds[h] == "UniquePos", h
    for h in ("fetch0", "fetch", "fetch_prev"):
        assert kinds[h] == "UniqueKeyed", h


@pytest.mark.parametrize("name", PROGRAMS)
def test_programs_byte_identical(eng, name):
    prog = load_program(str(PROG_DIR / f"{name}.prog"))
    ref = run_reference(prog, trace="text", max_steps=BUDGET)
    res = eng.run(Case(name, prog), max_steps=BUDGET, trace="text")
    assert_same_run(res, ref)


@pytest.mark.parametrize("budget", [0, 1, 2, 7, 40])
def test_budget_exhaustion(eng, budget):
    ex, case = _example("fibonacci")
    ref = run_reference(case.program, trace="text", max_steps=budget)
    res = eng.run(case, max_steps=budget, trace="text")
    assert_same_run(res, ref)


@pytest.mark.parametrize("name", ["hello", "addition", "fibonacci", "collatz", "matching", "sudoku"])
def test_examples_digest_identical(eng, name):
    ex, case = _example(name)
    ref = run_reference(case.program, trace="digest", max_steps=ex.max_steps)
    res = eng.run(case, max_steps=ex.max_steps, trace="digest")
    assert_same_run(res, ref)
    assert res.output == ex.expect_output


def test_trace_text_and_progress(eng):
    ex, case = _example("collatz")
    ref = run_reference(case.program, trace="text", max_steps=ex.max_steps)
    seen = []
    res = eng.run(case, max_steps=ex.max_steps, trace="text", progress=lambda s, t: seen.append((s, t)))
    assert_same_run(res, ref)
    assert len(seen) > 5 and seen[-1] == (ref.steps, ref.tokens)
    assert all(a <= b for a, b in zip(seen, seen[1:]))


def _corrupt(trace: str, line: int) -> tuple[str, int, str]:
    """Replace the last token of trace line `line` (>= 1); returns the text,
    the token's index among the generated tokens, and the new token."""
    lines = trace.split("\n")
    parts = lines[line].split(" ")
    new = "halt" if parts[-1] != "halt" else "drop"
    parts[-1] = new
    idx = sum(len(x.split()) for x in lines[1:line]) + len(parts) - 1
    return "\n".join(lines[:line] + [" ".join(parts)] + lines[line + 1:]), idx, new


@pytest.mark.parametrize("threads", [0, 1, 2, 3])
def test_verify_passes_and_flags(eng, threads):
    from isowasm.transformer.engine_backend import verify_trace
    ex, case = _example("collatz")
    ref = run_reference(case.program, trace="text", max_steps=ex.max_steps)
    ok = verify_trace(case, ref.trace, threads=threads)
    assert ok["ok"] and ok["first_mismatch"] is None
    assert ok["checked"] == ref.tokens - len(case.program.input) - 2
    for line in (1, 2, len(ref.trace.split("\n")) // 3, len(ref.trace.split("\n")) - 2):
        bad, idx, new = _corrupt(ref.trace, line)
        v = verify_trace(case, bad, threads=threads)
        assert not v["ok"]
        mm = v["first_mismatch"]
        assert mm["index"] == idx and mm["expected"] == new
        assert mm["predicted"] == ref.trace.split("\n")[line].split(" ")[-1]
        assert v["checked"] == idx + 1
        assert mm["margin"] > 0.5


def test_verify_module_function(eng):
    import isowasm_engine
    from isowasm.spec.program import format_program
    from isowasm.transformer.build import BUILD_DIR
    ex, case = _example("hello")
    ref = run_reference(case.program, trace="text", max_steps=ex.max_steps)
    v = isowasm_engine.verify(format_program(case.program), ref.trace, build_dir=str(BUILD_DIR))
    assert v["ok"] and v["checked"] == ref.tokens - len(case.program.input) - 2


def test_refuses_weights_without_the_structure(eng, tmp_path):
    """A latest head whose sum-of-squares query column is not the constant -1,
    and one whose position tie-break is not 2**-26: both refused at load."""
    import isowasm_engine
    from safetensors.numpy import load_file, save_file
    from isowasm.transformer.build import BUILD_DIR
    for tweak, msg in ((lambda t: t["layers.2.attn.wq"].__setitem__((3, 0, 2), -2.0), "stack0"),
                       (lambda t: t["layers.4.attn.wk"].__setitem__((1, 23, 5), 2.0 ** -25), "mem_store")):
        d = tmp_path / msg
        d.mkdir()
        shutil.copy(BUILD_DIR / "config.json", d / "config.json")
        t = {k: v.copy() for k, v in load_file(str(BUILD_DIR / "model.safetensors")).items()}
        tweak(t)
        save_file(t, str(d / "model.safetensors"))
        with pytest.raises(ValueError, match=msg):
            isowasm_engine.Engine(str(d))


def _weights():
    from safetensors.numpy import load_file
    from isowasm.transformer.build import BUILD_DIR
    return BUILD_DIR, load_file(str(BUILD_DIR / "model.safetensors"))


def test_rescaled_values_give_the_same_trace(eng, tmp_path):
    """Every head's value weights doubled and its output weights halved: the
    same function (exact in float64), weights of another scale. The engine
    must apply the value weights as weights (not assume they are 1): the
    traces stay byte-identical on every verify path."""
    import isowasm_engine
    from safetensors.numpy import save_file
    from isowasm.spec.program import format_program
    build, w = _weights()
    t = {k: v.copy() for k, v in w.items()}
    scaled = 0
    for name in t:
        if name.endswith(".attn.wv"):
            wo = t[name[:-2] + "wo"]
            for h in range(t[name].shape[0]):
                if t[name][h].any() and wo[h].any():
                    t[name][h] *= 2.0
                    wo[h] *= 0.5
                    scaled += 1
    assert scaled == len(eng.engine.heads())
    shutil.copy(build / "config.json", tmp_path / "config.json")
    save_file(t, str(tmp_path / "model.safetensors"))
    e2 = isowasm_engine.Engine(str(tmp_path))
    assert [k for _, _, k, _, _ in e2.heads()] == [k for _, _, k, _, _ in eng.engine.heads()]
    for name in ("hello", "matching"):
        ex, case = _example(name)
        ref = run_reference(case.program, trace="text", max_steps=ex.max_steps)
        for threads in (0, 1, 2):
            v = e2.verify(format_program(case.program), ref.trace, threads=threads)
            assert v["ok"], (name, threads, v["first_mismatch"])
            assert v["checked"] == ref.tokens - len(case.program.input) - 2


def test_nonzero_counts_are_the_weights(eng):
    """Engine.nnz() (model info's sparsity figures) counts exactly the
    nonzero entries of each matrix family in the safetensors file."""
    import numpy as np
    _, w = _weights()
    want = {"attn": 0, "ffn": 0, "unembed": int(np.count_nonzero(w["unembed"]))}
    for name, v in w.items():
        fam = "attn" if ".attn." in name else "ffn" if ".ffn." in name else None
        if fam:
            want[fam] += int(np.count_nonzero(v))
    assert eng.engine.nnz() == want


def test_session_stats_name_every_head(eng):
    """Session.stats(): one row per head, in the model's order, with the
    cache entries a run left."""
    from isowasm.spec.program import format_program
    ex, case = _example("fibonacci")
    s = eng.engine.session()
    vocab = {t: i for i, t in enumerate(eng.engine.vocab())}
    ref = run_reference(case.program, trace="text", max_steps=400)
    text = format_program(case.program) + " " + ref.trace.split("\n", 1)[1]
    s.feed([vocab[t] for t in text.split()])
    rows = s.stats()
    heads = eng.engine.heads()
    assert [r[0] for r in rows] == [h[1] for h in heads]
    st = {name: entries for name, entries, _ in rows}
    # fibonacci's run writes its stack, frame, locals and memory; the three
    # fetch heads key the same program tokens
    for name in ("stack0", "stack1", "stack2", "stack3", "frame", "local", "mem_store", "fetch0"):
        assert st[name] > 0, (name, rows)
    assert st["fetch0"] == st["fetch"] == st["fetch_prev"]


def test_averaging_heads_keep_their_margin_over_a_long_stack_loop(eng):
    """The averaging heads (sum: stack, call-depth and end deltas; pcsum: pc
    deltas) give running means that the next FFN multiplies back by the
    position count and a position lookup snaps to an integer, with a margin
    of 1/2 that hides small errors (an averaging divisor off by one passes
    every short program). A loop of ten pushes, ten drops and ten push/drop
    pairs for 2,000 steps keeps the sums moving: the trace must be
    byte-identical, and every pre-snap value (sp_raw, cd_raw and ends_raw at
    layer 1's input, pc_raw at layer 2's; 0-based) within 1e-6 of an integer
    at every position."""
    import json
    import numpy as np
    from isowasm.transformer import vocab
    from isowasm.transformer.backends import prompt_tokens
    from isowasm.transformer.build import BUILD_DIR
    from isowasm.transformer.programs.make import asm
    body = "i32.const 7\n" * 10 + "drop\n" * 10 + "i32.const 1\ndrop\n" * 10
    prog = asm(f"top:\n{body}br top\n")
    ref = run_reference(prog, trace="text", max_steps=2000)
    assert_same_run(eng.run(Case("stack-loop", prog), max_steps=2000, trace="text"), ref)
    names = json.loads((BUILD_DIR / "config.json").read_text())["dim_names"]
    dim = {n: i for i, ns in enumerate(names) for n in ns}
    toks = prompt_tokens(prog) + ref.trace.split()[len(prog.input) + 2:]
    ids = [vocab.INDEX[t] for t in toks]
    d = len(names)
    x = np.frombuffer(eng.engine.session().feed_layers(ids, [1, 2]), dtype="<f8").reshape(len(ids), 2, d)
    raws = {"sp_raw": x[:, 0, dim["sp_raw"]], "cd_raw": x[:, 0, dim["cd_raw"]],
            "ends_raw": x[:, 0, dim["ends_raw"]], "pc_raw": x[:, 1, dim["pc_raw"]]}
    for name, v in raws.items():
        err = np.abs(v - np.round(v))
        assert err.max() < 1e-6, (name, int(err.argmax()), float(err.max()))
    assert raws["sp_raw"].max() == 10 and raws["ends_raw"].max() > 1000   # the sums really moved


def test_unbuilt_engine_is_unavailable(monkeypatch):
    import sys
    import isowasm.transformer.engine_backend as eb
    monkeypatch.setitem(sys.modules, "isowasm_engine", None)
    monkeypatch.setattr(eb, "_ENGINES", {})
    with pytest.raises(BackendUnavailable, match="make engine"):
        eb.EngineBackend()


LONG_C = (Path(__file__).resolve().parents[1] / "transformer/programs/long_hash.c").read_text()


@pytest.mark.slow
def test_ten_million_tokens(eng):
    """11.3M tokens (positions up to 0.67 * 2**24): digest and checkpoints
    identical to the reference executor's."""
    from isowasm.toolchain import compile_source
    _, prog = compile_source(LONG_C, "c", "long")
    ref = run_reference(prog, trace="digest")
    assert ref.tokens >= 10_000_000
    res = eng.run(Case("long", prog), max_steps=10 ** 8, trace="digest")
    assert_same_run(res, ref)
