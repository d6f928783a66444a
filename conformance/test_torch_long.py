"""The PyTorch module's dense-attention check at sampled positions
(transformer/torch_check.py, ci/torch_long_traces.py; issue 16, item 3), on
a short trace: the engine's per-layer residual streams (`Session.feed_layers`)
are the ones its forward pass computes; the check passes on a reference
trace with every residual equal to the engine's; its arithmetic is the
module's own forward pass (dense prefill) at the checked positions; and a
deliberately broken weight and a corrupted reference token are caught, with
the position, layer and head named.

Skipped when the engine is not built (`make engine`), unless
ISOWASM_REQUIRE_BACKENDS names `transformer`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from isowasm.backends import required_backends
from isowasm.backends.base import BackendUnavailable

torch = pytest.importorskip("torch")

CASE = "reverse-input"     # compliance/loop-io: ~2.9K trace tokens after a ~200-token prompt
N_POS, TAIL = 300, 100


@pytest.fixture(scope="module")
def setup():
    from isowasm.spec.reference import run_reference
    from isowasm.suites.compliance import build_case, load_cases
    from isowasm.transformer import vocab
    from isowasm.transformer.backends import prompt_tokens
    from isowasm.transformer.model import load_model
    try:
        from isowasm.transformer.engine_backend import load_engine
        engine = load_engine()[0]
    except BackendUnavailable as e:
        if "transformer" in required_backends():
            pytest.fail(f"required backend transformer is unavailable: {e}")
        pytest.skip(str(e))
    if not hasattr(engine.session(), "feed_layers"):
        msg = "the installed engine predates Session.feed_layers: `pip install ./transformer/engine`"
        if "transformer" in required_backends():
            pytest.fail(msg)
        pytest.skip(msg)
    cc = next(c for c in load_cases() if c.name == CASE)
    case = build_case(cc)
    ref = run_reference(case.program, trace="text", max_steps=cc.max_steps)
    prompt = [vocab.INDEX[t] for t in prompt_tokens(case.program)]
    seq = prompt + [vocab.INDEX[t] for t in ref.trace.partition("\n")[2].split()]
    return {"model": load_model(), "engine": engine, "case": case, "ref": ref, "seq": seq,
            "base": len(prompt) - 1}


def _check(s, model=None, seq=None, **kw):
    from isowasm.transformer.torch_check import check_sequence
    kw.setdefault("n_positions", N_POS)
    kw.setdefault("tail", TAIL)
    return check_sequence(model or s["model"], s["engine"], seq or s["seq"], s["base"], **kw)


def test_choose_positions_spread_and_tail():
    from isowasm.transformer.torch_check import choose_positions
    for first, last, n, tail in ((10, 100_000, 2000, 500), (0, 5000, 300, 100), (7, 2100, 2000, 500)):
        p = choose_positions(first, last, n, tail, seed=3)
        assert p == sorted(set(p)) and len(p) == n
        assert p[0] == first and p[-tail:] == list(range(last - tail + 1, last + 1))
        gaps = np.diff(p[:-tail])
        assert gaps.max() <= 2 * (last - tail - first) / (n - tail) + 1     # one per stratum
    assert choose_positions(5, 50, 2000) == list(range(5, 51))


def test_exp_underflow_is_exactly_zero():
    """The check sets exp(t) to 0.0 for t < -750 instead of calling exp:
    the same bits (float64's smallest subnormal is e^-744.4)."""
    t = torch.tensor([-750.0, -751.0, -1e4, -2.0 ** 60, -1e300, -math.inf], dtype=torch.float64)
    assert torch.equal(torch.exp(t), torch.zeros_like(t))
    assert float(torch.exp(torch.tensor(-745.0, dtype=torch.float64))) > 0.0   # the cut is on the safe side


def test_feed_layers_is_the_forward_pass(setup):
    eng, seq = setup["engine"], setup["seq"]
    n = 600
    s = eng.session()
    raw = np.frombuffer(s.feed_layers(seq[:n]), dtype="<f8").reshape(n, -1, 174)
    L = raw.shape[1] - 1
    plain = eng.session()
    plain.feed(seq[:n - 1])
    plain.feed([seq[n - 1]])
    assert np.array_equal(raw[-1, L], np.array(plain.residual()))          # the final residual
    assert s.position == n and s.next_token() == plain.next_token()
    # layer selection and kept positions, fed in pieces
    s2 = eng.session()
    keep = [3, 250, 251, 599]
    got = s2.feed_layers(seq[:300], [1, L], keep) + s2.feed_layers(seq[300:n], [1, L], keep)
    got = np.frombuffer(got, dtype="<f8").reshape(len(keep), 2, 174)
    assert np.array_equal(got, raw[keep][:, [1, L]])
    with pytest.raises(ValueError):
        eng.session().feed_layers(seq[:3], [2, 1])


def test_reference_trace_passes_exactly(setup):
    r = _check(setup, keep_final=True)
    assert r["ok"], r["first_failure"]
    assert r["positions"] == N_POS and r["first_position"] == setup["base"]
    assert r["last_position"] == len(setup["seq"]) - 2 and r["tail_covered"]
    assert r["max_residual_error"] == 0.0        # every layer's residual equals the engine's, bit for bit
    assert r["min_margin"] >= 0.5


def test_same_as_the_modules_own_forward_pass(setup):
    """The check's arithmetic at the checked positions is the module's:
    its dense prefill (AnalyticTransformer.forward, chunked with its KV
    cache) gives the same argmax and the same final residual, up to the
    softmax's normalisation order (a few ulps)."""
    from isowasm.transformer.torch_check import TOL
    model, seq = setup["model"], setup["seq"]
    r = _check(setup, keep_final=True)
    P = r["checked_positions"]
    ids = torch.tensor(seq[:P[-1] + 1], dtype=torch.int64)
    cache, rows = None, []
    for i in range(0, ids.shape[0], 256):
        _, x, cache = model(ids[i:i + 256], i, cache)
        rows.append(x)
    full = torch.cat(rows)[P]
    mine = torch.from_numpy(r["final_residual"])
    err = ((full - mine).abs() / full.abs().clamp(min=1.0)).max()
    assert float(err) < 1e-12 < TOL
    pred = torch.argmax(full @ model.unembed, dim=-1).tolist()
    assert pred == [seq[p + 1] for p in P]


def test_broken_weight_is_caught_and_named(setup):
    """The keys of head stack0 (layer 2) zeroed in a copy of the module:
    its dense softmax averages instead of finding the slot; the first
    failure names the position, layer 2 and the head."""
    from isowasm.transformer.torch_check import describe_failure
    m = copy.deepcopy(setup["model"])
    l = 2
    h = [m.cfg["head_names"][l][i] for i in m.head_index[l]].index("stack0")
    H, dk = m.heads[l], m.dk
    getattr(m, f"w_in{l}")[:, H * dk + h * dk:H * dk + (h + 1) * dk] = 0.0
    r = _check(setup, model=m)
    assert not r["ok"]
    f = r["first_failure"]
    assert f["kind"] == "residual" and f["layer"] == l and "stack0" in f["writers"]
    assert any(x["head"] == "stack0" for x in f["heads"])
    text = describe_failure(f)
    assert f"position {f['position']}, layer 2" in text and "stack0" in text


def test_corrupted_reference_token_is_caught(setup):
    from isowasm.transformer import vocab
    from isowasm.transformer.torch_check import choose_positions, describe_failure
    seq, base = setup["seq"], setup["base"]
    P = choose_positions(base, len(seq) - 2, N_POS, TAIL)
    for c in (P[len(P) // 3] + 1, len(seq) - 1):      # mid-trace, and the trace's last token
        bad = list(seq)
        bad[c] = vocab.INDEX["drop"] if vocab.TOKENS[seq[c]] != "drop" else vocab.INDEX["halt"]
        r = _check(setup, seq=bad)
        assert not r["ok"]
        f = r["first_failure"]
        assert f["kind"] == "argmax" and f["position"] == c - 1
        assert f["expected"] == vocab.TOKENS[bad[c]] and f["predicted"] == vocab.TOKENS[seq[c]]
        assert f["margin"] > 0
        assert describe_failure(f).startswith(f"position {c - 1}: the module predicts")


def _short_cases():
    """The hand-written programs and every compliance case whose trace is
    under 3,000 tokens (every op, trap and limit case of the suite that is
    short enough for dense attention at every position)."""
    from pathlib import Path

    from isowasm.backends.base import Case
    from isowasm.spec.program import load_program
    from isowasm.spec.reference import run_reference
    from isowasm.suites.compliance import build_case, load_cases
    progs = Path(__file__).resolve().parent.parent / "transformer" / "programs"
    for p in sorted(progs.glob("*.prog")):
        case = Case(p.stem, load_program(str(p)))
        yield case, run_reference(case.program, trace="text", max_steps=20_000).trace
    for cc in load_cases():
        case = build_case(cc)
        ref = run_reference(case.program, trace="text", max_steps=cc.max_steps)
        if ref.tokens < 3000:
            yield case, ref.trace


def test_engine_answers_as_dense_attention_at_every_position(setup):
    """The engine's caches (fast paths for the construction's head shapes,
    transformer/ENGINE.md) give, query by query, what dense softmax
    attention over all earlier positions gives: at every position of every
    short trace, every layer's residual computed with the module's dense
    attention equals the engine's exactly, and the argmax is the
    reference's next token."""
    from isowasm.transformer.engine_backend import trace_ids
    from isowasm.transformer.torch_check import check_sequence
    n_cases = n_positions = 0
    for case, trace in _short_cases():
        prompt, ref = trace_ids(case, trace)
        seq = prompt + ref
        if len(seq) - 2 < len(prompt) - 1:
            continue
        every = list(range(len(prompt) - 1, len(seq) - 1))
        r = check_sequence(setup["model"], setup["engine"], seq, len(prompt) - 1, positions=every)
        assert r["ok"] and r["max_residual_error"] == 0, (case.name, r.get("first_failure"))
        assert r["positions"] == len(every)
        n_cases += 1
        n_positions += len(every)
    assert n_cases >= 40 and n_positions > 20_000, (n_cases, n_positions)
