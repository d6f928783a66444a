"""The analytic transformer (transformer/): its traces must be byte-identical
to the reference executor's, from the exact graph evaluator and from the
built weights in PyTorch; the weights must rebuild from safetensors with
standard ops alone, and the build must be deterministic."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conformance.conftest import assert_same_run

from isowasm.backends.base import Case
from isowasm.spec import table
from isowasm.spec.program import Program, format_program, load_program, parse_program
from isowasm.spec.reference import run_reference

PROG_DIR = Path(__file__).resolve().parent.parent / "transformer" / "programs"
PROGRAMS = sorted(p.stem for p in PROG_DIR.glob("*.prog"))
BUDGET = 20000




def _check(backend, prog: Program, budget: int = BUDGET):
    ref = run_reference(prog, trace="text", max_steps=budget)
    res = backend.run(Case("t", prog), max_steps=budget, trace="text")
    assert_same_run(res, ref)
    return res


@pytest.fixture(scope="module")
def graph_backend():
    from isowasm.transformer.backends import GraphBackend
    return GraphBackend()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from isowasm.transformer.build import build
    return build(tmp_path_factory.mktemp("tf"))


@pytest.fixture(scope="module")
def torch_backend(built):
    from isowasm.transformer.backends import TorchBackend
    return TorchBackend(str(built))


def test_programs_cover_every_op():
    ops = set()
    for name in PROGRAMS:
        ops |= set(load_program(str(PROG_DIR / f"{name}.prog")).names)
    assert ops >= set(table.op_names()) | {"input_base"}


@pytest.mark.parametrize("name", PROGRAMS)
def test_graph_trace_identical(graph_backend, name):
    _check(graph_backend, load_program(str(PROG_DIR / f"{name}.prog")))


@pytest.mark.parametrize("name", PROGRAMS)
def test_torch_trace_identical(torch_backend, name):
    _check(torch_backend, load_program(str(PROG_DIR / f"{name}.prog")))


def test_torch_speculative_decoding_is_greedy_whatever_the_draft(built):
    """The torch backend checks a draft a chunk at a time; the tokens must be
    the model's own greedy choices for any draft: right, wrong from some
    token on, too short, or empty."""
    from isowasm.transformer.backends import decode, prompt_tokens
    from isowasm.transformer.model import load_model
    model = load_model(str(built))
    prog = load_program(str(PROG_DIR / "calls.prog"))
    ref = run_reference(prog, trace="text", max_steps=BUDGET)
    p = len(prompt_tokens(prog))
    toks = prompt_tokens(prog) + ref.trace.partition("\n")[2].split()   # the draft covers the prompt too
    wrong = toks[:p + 300] + ["halt"] + toks[p + 301:]
    for draft, most in [(toks, len(toks) - p), (wrong, 300), (toks[:p + 50], 50), ([], 0)]:
        session = model.session(draft)
        res = decode(session, Case("t", prog), max_steps=BUDGET, trace="text", backend="transformer-torch")
        assert_same_run(res, ref)
        assert session.accepted <= most
        assert session.accepted >= most - most // 8   # the draft was used while it was right


@pytest.mark.parametrize("budget", [0, 1, 7, 40])
def test_budget_exhausted(graph_backend, budget):
    res = _check(graph_backend, load_program(str(PROG_DIR / "calls.prog")), budget)
    assert res.status == "budget-exhausted"


@pytest.mark.parametrize("name", ["memory", "trap_input_base", "input_base_fits"])
@pytest.mark.parametrize("budget", [0, 1, 2])
def test_small_budgets_with_input_base(graph_backend, name, budget):
    _check(graph_backend, load_program(str(PROG_DIR / f"{name}.prog")), budget)


# ---- random programs (seeded; mostly well-formed stack discipline) ----------
_OPS = {o["name"]: o for o in table.ops()}


def random_program(rng: random.Random) -> Program:
    n = rng.randint(3, 40)
    names, imms = [], []
    ib = rng.random() < 0.3
    if ib:
        names.append("input_base")
        imms.append(rng.choice([0, 16, 250, 0x1000, 0xFFF0]))
    depth = 0
    for i in range(len(names), n - 1):
        while True:
            op = rng.choice(list(_OPS))
            if _OPS[op]["pops"] <= depth or rng.random() < 0.03:
                break
        if rng.random() < 0.3 or (depth < 1 and rng.random() < 0.8):
            op = "i32.const"
            imm = rng.choice([0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0xFFFFFFFE, 0xFFFFFFFF, 0x80000000,
                              0x7FFFFFFF, rng.getrandbits(32), rng.randint(0, 300), 0x9FFFFC, 0x1234])
        elif op in ("br", "br_if", "call"):
            t = rng.randint(1 if ib else 0, n - 1)
            imm = (t - (i + 1)) & 0xFFFFFFFF
        elif op.startswith(("local.", "global.")):
            imm = rng.randint(0, 3)
        elif op == "halt":
            imm = rng.choice([0, 0, 1, 2, 3, 4])
        elif op == "return":
            imm = rng.getrandbits(32) if rng.random() < 0.5 else rng.randint(0, 10)
        elif "load" in op or "store" in op:
            imm = rng.choice([0, 1, 2, 3, 0x100, 0xFFFF, rng.getrandbits(32), 0x9FFFF0])
        else:
            imm = 0
        names.append(op)
        imms.append(imm)
        depth = max(0, depth - _OPS[op]["pops"] + _OPS[op]["pushes"] - (op == "call"))
    last = len(names)
    end = rng.choice(["halt", "br", "return"])
    names.append(end)
    imms.append({"halt": 0, "return": rng.randint(0, 5)}.get(end, (rng.randint(1 if ib else 0, last) - (last + 1))
                                                            & 0xFFFFFFFF))
    data = bytes(rng.randint(1, 255) for _ in range(rng.randint(0, 6)))
    return parse_program(format_program(Program(names, imms, data)))


@pytest.mark.parametrize("seed", range(12))
def test_graph_random_programs(graph_backend, seed):
    for s in range(seed * 10, seed * 10 + 10):
        _check(graph_backend, random_program(random.Random(s)), 150)


@pytest.mark.parametrize("seed", range(3))
def test_torch_random_programs(torch_backend, seed):
    for s in range(seed * 5, seed * 5 + 5):
        _check(torch_backend, random_program(random.Random(s)), 80)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12, 60))
def test_graph_random_programs_more(graph_backend, seed):
    for s in range(seed * 10, seed * 10 + 10):
        _check(graph_backend, random_program(random.Random(s)), 300)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 20))
def test_torch_random_programs_more(torch_backend, seed):
    for s in range(seed * 5, seed * 5 + 5):
        _check(torch_backend, random_program(random.Random(s)), 150)


@pytest.mark.slow
def test_graph_call_depth_trap(graph_backend):
    from isowasm.transformer.programs.make import asm
    prog = asm("""
        call f
        halt
        f:
        call f
        return f
    """)
    res = _check(graph_backend, prog, 10000)
    assert res.trap == "call_depth"


@pytest.mark.slow
def test_graph_stack_overflow_trap(graph_backend):
    """65536 pushes (334k tokens): the resource trap, and slot keys up to 2**16."""
    from isowasm.transformer.programs.make import asm
    res = _check(graph_backend, asm("top:\n" + "i32.const 7\n" * 64 + "br top\n"), 10 ** 6)
    assert res.trap == "stack_overflow"


# ---- programs from the toolchain (C examples) ---------------------------------
from isowasm.suites.examples import EXAMPLES  # noqa: E402


def _example(name: str, data: bytes):
    try:
        from isowasm.toolchain.frontend import compile_file
        return compile_file(str(EXAMPLES / f"{name}.c"), input=data)[1]
    except Exception as e:  # no clang / toolchain here
        pytest.skip(f"toolchain unavailable: {e}")


def test_graph_hello_c(graph_backend):
    res = _check(graph_backend, _example("hello", b""), 1000)
    assert res.output == b"Hello, world!\n"


@pytest.mark.slow
def test_torch_hello_c(torch_backend):
    _check(torch_backend, _example("hello", b""), 1000)


@pytest.mark.slow
def test_graph_addition_c(graph_backend):
    _check(graph_backend, _example("addition", b"12345678901234567890 98765432109876543210"), 100000)


@pytest.mark.slow
def test_torch_addition_c(torch_backend):
    _check(torch_backend, _example("addition", b"12345678901234567890 98765432109876543210"), 100000)


# ---- weights --------------------------------------------------------------
def _plain_forward(weights_dir: Path, ids):
    """The forward pass rebuilt from the safetensors with standard torch ops
    only (embedding, matmul, softmax, relu) and the config's positional
    formulas."""
    import json

    import torch
    from safetensors.torch import load_file
    cfg = json.loads((weights_dir / "config.json").read_text())
    w = load_file(str(weights_dir / "model.safetensors"))
    n = len(ids)
    pos = torch.arange(n)
    x = torch.nn.functional.embedding(torch.tensor(ids), w["embed"])
    pf = torch.zeros(n, cfg["d_model"], dtype=torch.float64)
    for dim, kind, k in cfg["pos_features"]:
        col = {"pos": lambda: pos + k, "sq": lambda: pos * pos,
               "lo": lambda: torch.where(pos >= k, (pos - k) % 256, 0),
               "hi": lambda: torch.where(pos >= k, torch.div(pos - k, 256, rounding_mode="floor"), 0),
               "byte": lambda: torch.div(pos, 256 ** k, rounding_mode="floor") % 256}[kind]()
        pf[:, dim] = col.to(torch.float64)
    x = x + pf
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    for l in range(cfg["n_layers"]):
        p = f"layers.{l}."
        att = torch.zeros_like(x)
        for h in range(cfg["n_heads"]):
            q = x @ w[p + "attn.wq"][h]
            k = x @ w[p + "attn.wk"][h]
            v = x @ w[p + "attn.wv"][h]
            s = (q @ k.T) * cfg["attn_scale"]
            s = s.masked_fill(causal, float("-inf"))
            att = att + torch.softmax(s, dim=-1) @ v @ w[p + "attn.wo"][h]
        x = x + att
        x = x + (torch.relu(x @ w[p + "ffn.wu"]) * (x @ w[p + "ffn.wv"])) @ w[p + "ffn.wo"]
    return x @ w["unembed"]


def test_rebuilt_forward_matches_module(built):
    import torch

    from isowasm.transformer import vocab
    from isowasm.transformer.backends import prompt_tokens
    from isowasm.transformer.model import load_model
    prog = load_program(str(PROG_DIR / "loop.prog"))
    ref = run_reference(prog, trace="text", max_steps=12)
    toks = prompt_tokens(prog) + ref.trace.split()[len(prog.input) + 2:]
    ids = [vocab.INDEX[t] for t in toks]
    plain = _plain_forward(built, ids)
    model = load_model(built)
    logits, _, _ = model(torch.tensor(ids), 0, None)
    assert torch.equal(plain.argmax(-1), logits.argmax(-1))
    assert torch.allclose(plain, logits, rtol=0, atol=1e-6)
    start = len(prompt_tokens(prog)) - 1
    assert torch.equal(plain[start:], logits[start:])  # identical where the trace is generated
    # the logits at the trace positions predict the reference's next tokens
    for i in range(start, len(toks) - 1):
        assert vocab.TOKENS[int(plain[i].argmax())] == toks[i + 1]


# The built weights' identity (`isowasm model info` prints it). A change to
# the construction, its schedule or its lowering changes it: check the
# suites, then record the new digest here.
WEIGHTS_DIGEST = "e02eae15bdad8c14ccbb393dc8a3df23e39713330b5368881f09c41ff9936b05"


def test_weights_digest_is_pinned(built):
    from isowasm.transformer.build import weights_digest
    assert weights_digest(built) == WEIGHTS_DIGEST, "the weights changed; if that is meant, update WEIGHTS_DIGEST"


def test_info_shows_the_digest(built):
    from isowasm.transformer.info import format_info, model_info
    assert f"weights digest (sha256 of tensors and config): {WEIGHTS_DIGEST}" in format_info(model_info(built))


def test_pos_features_match_the_graphs_formulas(built):
    """The module's positional features (model.pos_features) are the
    graph's (graph.posfeat), feature by feature, from position 0 (where
    lo_k and hi_k start at 0 below k) to the horizon."""
    import json

    import torch

    from isowasm.transformer.graph import posfeat
    from isowasm.transformer.model import pos_features
    cfg = json.loads((built / "config.json").read_text())
    kinds = {(kind, k) for _, kind, k in cfg["pos_features"]}
    assert {"pos", "sq", "lo", "hi", "byte"} <= {kind for kind, _ in kinds}
    assert ("pos", 1) in kinds and ("lo", 3) in kinds
    ps = list(range(0, 700)) + [65535, 65536, 65537, 2 ** 22 - 1, 2 ** 24 - 1]
    got = pos_features(cfg, torch.tensor(ps), cfg["d_model"])
    for dim, kind, k in cfg["pos_features"]:
        want = [float(posfeat(kind, k, p)) for p in ps]
        assert got[:, dim].tolist() == want, (kind, k)


def test_kv_cache_doubles_and_is_reused(built):
    """The module's KV cache grows by doubling and is written in place while
    it has room (one copy per doubling, not per call), and a grown cache
    gives the same logits as one pass over the whole sequence."""
    import torch

    from isowasm.transformer import vocab
    from isowasm.transformer.model import load_model
    model = load_model(built)
    rng = random.Random(5)
    ids = torch.tensor([vocab.INDEX["{"]] + [rng.randrange(256) for _ in range(2046)])
    _, _, cache = model(ids[:1023], 0, None)
    cap = cache[0][0].shape[1]
    assert cap == 2046
    ptrs = [c[0].data_ptr() for c in cache]
    _, _, cache = model(ids[1023:2046], 1023, cache)        # fills the cache exactly
    assert [c[0].data_ptr() for c in cache] == ptrs and cache[0][0].shape[1] == cap
    logits, _, cache = model(ids[2046:], 2046, cache)       # one more position: doubled
    assert cache[0][0].shape[1] == 2 * 2047
    whole, _, _ = model(ids, 0, None)
    assert torch.equal(logits[-1], whole[-1])


def test_draft_chunk_keeps_one_layer_of_scores_near_256_mib(built):
    from isowasm.transformer.model import load_model
    model = load_model(built)
    s = model.session()
    for n in (0, 100, 10_000, 1_000_000, 50_000_000):
        s.n = n
        c = s._chunk()
        assert 1 <= c <= 1024
        assert c == 1 or max(model.heads) * c * (n + 1) * 8 <= 1 << 28, n
    s.n = 0
    assert s._chunk() == 1024


def test_fresh_session_says_nothing_was_fed(built):
    from isowasm.transformer.model import load_model
    s = load_model(built).session()
    with pytest.raises(RuntimeError, match="no position has been fed yet"):
        s.next_id()
    with pytest.raises(RuntimeError, match=r"resid\('sp'\): no position has been fed yet"):
        s.resid("sp")


def test_schedule_moves_a_head_into_an_empty_attention_sublayer():
    """A head with slack moves to a later attention sub-layer that has no
    head yet when that lowers the peak head count (here to the lower
    bound, one head per layer)."""
    from isowasm.transformer.graph import Graph
    from isowasm.transformer.schedule import schedule
    g = Graph()
    x = g.tok("x", lambda t: 1)
    a = g.average("a", {"v": x})[0]
    b = g.average("b", {"v": x})[0]          # read only in the last FFN: slack to time 5
    c = g.average("c", {"v": g.mul("f2", a, x)})[0]
    g.ffn("out", [(1, g.mul("f4", c, x), b)])
    assert schedule(g, balance=False).heads_per_layer == [2, 1, 0]
    s = schedule(g)
    assert s.heads_per_layer == [1, 1, 1] and s.head_time == {0: 1, 1: 5, 2: 3}
    assert s.report["heads"] == s.report["heads_lower_bound"] == 1


def test_evaluator_keeps_fractional_coefficients_exact():
    from fractions import Fraction

    from isowasm.transformer.graph import Evaluator, Graph, Lin
    g = Graph()
    x = g.tok("x", lambda t: int(t, 16))
    y = g.ffn("y", [(Fraction(1, 2), g.one, x), (1, x - 1, g.one)])
    z = g.ffn("z", [(1, g.one, Fraction(3, 4) * x + Fraction(1, 3))])
    # whole values come back as ints (a lookup key must be one)
    w = g.ffn("w", [(Fraction(1, 2), g.one, x + 1)])
    x2 = g.tok("x2", lambda t: 2 * int(t, 16))
    h = g.ffn("h", [(1, g.one, Lin.of(x2) * Fraction(1, 2) + 1)])
    v = Evaluator(g).feed("05")
    assert v[y.id] == Fraction(13, 2) and v[z.id] == Fraction(49, 12)
    assert v[w.id] == 3 and type(v[w.id]) is int
    assert v[h.id] == 6 and type(v[h.id]) is int


def test_build_is_deterministic(built, tmp_path):
    from isowasm.transformer.build import build, sha256
    again = build(tmp_path / "again")
    assert sha256(again / "model.safetensors") == sha256(built / "model.safetensors")
    assert (again / "config.json").read_text() == (built / "config.json").read_text()


def test_build_is_deterministic_across_processes(built, tmp_path):
    import os
    import subprocess
    import sys

    from isowasm.transformer.build import sha256
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-m", "isowasm.transformer.build", str(tmp_path / "p")], cwd=root, env=env,
                   check=True, capture_output=True)
    assert sha256(tmp_path / "p" / "model.safetensors") == sha256(built / "model.safetensors")


def test_info(built):
    from isowasm.transformer.info import format_info, model_info
    info = model_info(built)
    assert info["n_layers"] == info["schedule"]["layers_lower_bound"]
    assert info["parameters"] > 0 and "layer 1" in format_info(info)


def test_branch_to_input_base_is_outside_the_horizon(graph_backend):
    from isowasm.transformer.backends import Unsupported
    from isowasm.transformer.programs.make import asm
    prog = asm("""
        top:
        input_base 0
        br top
    """)
    with pytest.raises(Unsupported):
        graph_backend.run(Case("t", prog), max_steps=10, trace="text")


@pytest.mark.slow
def test_running_sums_stay_within_the_snap_margin():
    """The averaging heads are the torch path's only inexact step: over a long
    real trace, n * mean (as softmax-weighted sums compute it) must stay far
    within the 0.5 margin of the snap (and of the pc fetch)."""
    torch = pytest.importorskip("torch")
    from isowasm.transformer import vocab
    from isowasm.transformer.backends import prompt_tokens
    prog = _example("fibonacci", b"50")
    ref = run_reference(prog, trace="text", max_steps=10 ** 6)
    toks = prompt_tokens(prog) + ref.trace.split()[len(prog.input) + 2:]
    f = [vocab.features(t) for t in toks]
    sd = [x.get("sd", 0) for x in f]
    pc = []
    for i, x in enumerate(f):
        v = x.get("is_term", 0) - x.get("lb", 0) + x.get("op:input_base", 0)
        if x.get("isbr"):
            b = [f[i - 4 + k].get("bval", 0) for k in range(4)]
            v += b[0] + 256 * b[1] + 65536 * b[2] + (1 << 24) * f[i - 1]["s8"]
        pc.append(v)
    for vals in (sd, pc):
        v = torch.tensor(vals, dtype=torch.float64)
        exact = torch.cumsum(v, 0)
        for i in list(range(1000, len(toks), 4999)) + [len(toks) - 1]:
            mean = torch.softmax(torch.zeros(1, i + 1, dtype=torch.float64), -1) @ v[:i + 1]
            assert abs(float(mean[0]) * (i + 1) - float(exact[i])) < 1e-3


def test_torch_device_without_cuda_is_a_clear_unavailability(built, monkeypatch):
    import torch

    from isowasm.backends.base import BackendUnavailable
    from isowasm.transformer.backends import TorchBackend
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("ISOWASM_TORCH_DEVICE", "cuda")
    with pytest.raises(BackendUnavailable, match="ISOWASM_TORCH_DEVICE=cuda: torch sees no CUDA device"):
        TorchBackend(str(built))


class _Babbler:
    """A model that never ends a step (a broken construction's worst case)."""

    def __init__(self):
        from isowasm.transformer.backends import Decoder
        self.__class__ = type("Babbler", (_Babbler, Decoder), {})

    def next_id(self):
        from isowasm.transformer import vocab
        return vocab.INDEX["00"]

    def feed_ids(self, ids):
        pass

    def resid(self, name):
        return 0.0


def test_a_model_that_leaves_the_trace_format_stops_malformed():
    from isowasm.spec.result import MALFORMED, MAX_STEP_TOKENS
    from isowasm.transformer.backends import decode
    prog = load_program(str(PROG_DIR / "arith.prog"))
    res = decode(_Babbler(), Case("t", prog), max_steps=10 ** 9, trace="text", backend="babbler")
    assert res.status == MALFORMED
    step = res.trace.split("\n")[1].split()
    assert set(step) == {"00"} and MAX_STEP_TOKENS < len(step) <= 2 * MAX_STEP_TOKENS + 1


def test_divergence_report_shows_each_heads_winner_and_margin(built, tmp_path):
    """A head broken in the weights (its query zeroed: uniform attention):
    the runner's report names the divergent token, and the explanation shows
    that head attending uniformly while the others each won one position."""
    import json
    import shutil

    from safetensors.numpy import load_file, save_file

    from isowasm.backends import get_backend
    from isowasm.runner import compare_case
    from isowasm.transformer.backends import TorchBackend
    broken = tmp_path / "broken"
    shutil.copytree(built, broken)
    cfg = json.loads((broken / "config.json").read_text())
    layer = next(i for i, names in enumerate(cfg["head_names"]) if "sp" in names)
    w = load_file(str(broken / "model.safetensors"))
    w[f"layers.{layer}.attn.wq"][cfg["head_names"][layer].index("sp")] = 0
    save_file(w, str(broken / "model.safetensors"))
    prog = load_program(str(PROG_DIR / "arith.prog"))
    cmp = compare_case(Case("arith", prog), [get_backend("reference"), TorchBackend(str(broken), draft=False)],
                       max_steps=80, trace="text")
    assert not cmp.ok
    rep = cmp.report()
    assert "traces diverge at token 12" in rep
    assert f"layer {layer + 1} sp: uniform over" in rep
    assert "layer 1 rel1: position" in rep and "won, weight 1, margin" in rep
    assert "logits: model predicts '02'" in rep
