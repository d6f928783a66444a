"""Property-based differential testing: random valid, terminating WAT programs
(conformance/strategies.py) are compiled by the toolchain and run on each
backend, the reference executor and wasmtime; all must agree (status, output,
and the machine traces token for token).

The number of programs per backend comes from the Hypothesis profile
(conformance/hypothesis_profiles.py, ISOWASM_HYPOTHESIS_PROFILE). A failure
is shrunk to a minimal module; the assertion message holds its WAT text and
the runner's report (first divergent token, instruction, both sides).
"""

from __future__ import annotations

import faulthandler

import pytest
import wasmtime
from hypothesis import HealthCheck, Phase, given, settings

from conformance import hypothesis_profiles as profiles
from conformance.conftest import backend_params
from isowasm.fuzz.generators import Module, modules, render
from isowasm.backends import available_backends
from isowasm.backends.base import Case
from isowasm.spec.result import BUDGET, TRAPPED

try:
    from isowasm.toolchain import compile_source
except ImportError as e:  # pragma: no cover - only while the toolchain is being written
    compile_source = None
    _NO_TOOLCHAIN = f"isowasm.toolchain.compile_source is unavailable: {e}"

try:
    from isowasm.runner import compare_case
except ImportError as e:  # pragma: no cover
    compare_case = None
    _NO_RUNNER = f"isowasm.runner.compare_case is unavailable: {e}"

MAX_STEPS = 5_000_000        # generated programs run far below this (see strategies.MAX_MULT)
WASMTIME_FUEL = 5_000_000    # wasm instructions; generated programs use a few thousand

_AVAILABLE = available_backends()

# wasmtime turns a divide fault (SIGFPE) in wasm code into a trap with its own
# signal handler; faulthandler's, installed after conftest created engines,
# would abort the process instead. pyproject's addopts has -p no:faulthandler;
# this keeps a plain `pytest -p faulthandler` run alive too.
if faulthandler.is_enabled():
    faulthandler.disable()


def _backend_params():
    return backend_params(exclude=("wasmtime",))


def _need(name: str):
    b = _AVAILABLE.get(name)
    if b is None or isinstance(b, str):
        pytest.fail(f"backend {name} is unavailable: {b}")
    return b


def _need_pipeline() -> None:
    if compile_source is None:
        pytest.skip(_NO_TOOLCHAIN)
    if compare_case is None:
        pytest.skip(_NO_RUNNER)


def differential(m: Module, backends) -> tuple[bool, str]:
    """Compile `m` and compare it on `backends`; (ok, message with the WAT
    text and the runner's report)."""
    wat = render(m)
    try:
        wasm, program = compile_source(wat, lang="wat", name="hypothesis", input=b"")
    except Exception as e:
        return False, f"toolchain rejected a generated program: {type(e).__name__}: {e}\n\n{wat}"
    case = Case("hypothesis", program, wasm=wasm)
    cmp = compare_case(case, backends, max_steps=MAX_STEPS)
    problems = []
    if not cmp.ok:
        problems.append("backends disagree")
    budget = [n for n, r in cmp.results.items() if r.status == BUDGET]
    if budget:
        # the generator promises termination well inside MAX_STEPS
        problems.append(f"step budget exhausted on {', '.join(budget)}")
    trapped = [n for n, r in cmp.results.items() if r.status == TRAPPED]
    if trapped and not m.may_trap:
        # only may_trap programs may trap: anything else is a generator or toolchain bug
        problems.append(f"a program that must not trap trapped on {', '.join(trapped)}")
    if not problems:
        return True, ""
    return False, ("; ".join(problems) + f"\n\n{cmp.report()}\n\nprogram ({len(program)} "
                   f"instructions) from this WAT:\n{wat}")


def _dedup(backends):
    seen, out = set(), []
    for b in backends:
        if b.name not in seen:
            seen.add(b.name)
            out.append(b)
    return out


@pytest.mark.parametrize("backend_name", _backend_params())
@given(m=modules())
def test_generated_programs(backend_name, m):
    _need_pipeline()
    backends = _dedup([_need(backend_name), _need("reference"), _need("wasmtime")])
    ok, msg = differential(m, backends)
    assert ok, msg


# ---------------------------------------------------------------------------
# The generator itself: valid and terminating without any of our code


@pytest.fixture(scope="module")
def fuel_engine():
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    return wasmtime.Engine(cfg)


def run_in_wasmtime(engine: wasmtime.Engine, wat: str, fuel: int = WASMTIME_FUEL):
    """(status, output, fuel used): status 'halted', 'trapped' or 'fuel'."""
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(wat))
    out = bytearray()
    out_fn = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []),
                           lambda v: out.append(v & 0xFF))
    inst = wasmtime.Instance(store, module, [out_fn])
    try:
        inst.exports(store)["compute"](store)
        status = "halted"
    except wasmtime.Trap as e:
        status = "fuel" if e.trap_code == wasmtime.TrapCode.OUT_OF_FUEL else "trapped"
    return status, bytes(out), fuel - store.get_fuel()


@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(m=modules())
def test_generator_programs_are_valid_and_terminate(fuel_engine, m):
    wat = render(m)
    status, _, used = run_in_wasmtime(fuel_engine, wat)
    assert status != "fuel", f"generated program did not finish within {WASMTIME_FUEL} fuel:\n{wat}"
    if not m.may_trap:
        assert status == "halted", f"generated program trapped but may_trap is False:\n{wat}"


def test_generator_covers_the_subset():
    """Every op and construct of the integer subset occurs in about a thousand
    programs. (The rarest, i64 divisions without a guard, come about once per
    hundred programs; Hypothesis' draws for one seed differ with its settings
    profile, so the margin must not rest on one seed's luck.)"""
    from isowasm.fuzz.generators import ALL_CONSTRUCTS, constructs, examples
    seen: set[str] = set()
    for seed in range(3):
        for m in examples(seed, 300) + examples(seed, 100, force_traps=True):
            seen |= constructs(m)
    assert not ALL_CONSTRUCTS - seen, f"never generated: {sorted(ALL_CONSTRUCTS - seen)}"


def test_generator_is_deterministic():
    from isowasm.fuzz.generators import examples
    a = [render(m) for m in examples(7, 5)]
    b = [render(m) for m in examples(7, 5)]
    assert a == b


def test_generator_examples_do_not_depend_on_the_modules_loaded():
    """One seed, the same programs here (pytest, the whole suite's modules
    loaded: Hypothesis would mine their constants) and in a bare process."""
    import subprocess
    import sys
    from isowasm.fuzz.generators import examples
    code = ("import sys; from isowasm.fuzz.generators import examples, render; "
            "sys.stdout.write('\\n;;\\n'.join(render(m) for m in examples(3, 40)))")
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert bare.stdout == "\n;;\n".join(render(m) for m in examples(3, 40))


# ---------------------------------------------------------------------------
# Power: a deliberately broken backend must be caught within the ci budget


def _broken_doubles():
    """(backend class, op names whose divergence the report must name), one
    per test double in conformance/broken_backends.py."""
    from conformance.broken_backends import DOUBLES
    return [pytest.param(cls, cls.broken_ops, id=cls.name) for cls in DOUBLES]


def _search(double, *, shrink: bool):
    """Run Hypothesis against [double, reference, wasmtime] with the ci
    budget; (number of programs tried, the failure message or None)."""
    _need_pipeline()
    broken = double() if isinstance(double, type) else double
    backends = [broken, _need("reference"), _need("wasmtime")]
    tried = [0]
    phases = [Phase.generate] + ([Phase.shrink] if shrink else [])

    @settings(max_examples=profiles.CI_EXAMPLES, derandomize=True, database=None,
              deadline=None, phases=phases, suppress_health_check=list(HealthCheck))
    @given(m=modules())
    def search(m):
        tried[0] += 1
        ok, msg = differential(m, backends)
        assert ok, msg

    try:
        search()
    except AssertionError as e:
        return tried[0], str(e)
    return tried[0], None


class _NoCarry:
    """Fallback test double: the reference executor, but `i32.add` writes its
    value bytes without the carry flags."""

    name = "broken-no-carry"
    traces = True
    needs_wasm = False

    def run(self, case, *, max_steps, trace="none", **kw):
        import hashlib

        from isowasm.spec.reference import run_reference
        from isowasm.spec.trace import annotate_lines
        r = run_reference(case.program, max_steps=max_steps, trace="text")
        names = case.program.names
        lines = r.trace.split("\n")
        for i, (_, pc) in enumerate(annotate_lines(case.program, r.trace)):
            if pc is not None and names[pc] == "i32.add":
                lines[i] = lines[i].replace("'", "")
        text = "\n".join(lines)
        r.backend = self.name
        r.trace = text if trace == "text" else None
        r.digest = hashlib.sha256(text.encode()).hexdigest() if trace == "digest" else None
        r.checkpoints = None
        return r

    def close(self):
        pass


@pytest.mark.parametrize("double, ops", _broken_doubles())
def test_power_broken_backend_is_caught(double, ops):
    """Within the ci budget (generation only; shrinking is the slow test
    below), a backend with one op subtly wrong is caught, and the report
    names the first divergent token and the instruction there."""
    tried, msg = _search(double, shrink=False)
    assert msg is not None, f"{double.__name__} survived {tried} generated programs"
    assert "diverge at token" in msg, msg
    assert any(op in msg for op in ops), f"report does not name {ops}:\n{msg}"


@pytest.mark.slow
@pytest.mark.parametrize("double, ops", _broken_doubles())
def test_power_shrinks_to_a_small_counterexample(double, ops):
    """With shrinking, the counterexample is a short, readable module."""
    tried, msg = _search(double, shrink=True)
    assert msg is not None
    assert "diverge at token" in msg and any(op in msg for op in ops), msg
    wat = msg[msg.index("(module"):]
    assert wat.count("\n") <= 40, f"shrunk counterexample is still long:\n{wat}"
