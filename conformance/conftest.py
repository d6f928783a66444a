"""Shared fixtures: the registered backends, parametrised so every test that
takes `machine_backend` runs on each implementation that produces traces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from isowasm.backends import available_backends, required_backends

try:  # the Hypothesis profiles (ci / nightly) are chosen by environment
    import conformance.hypothesis_profiles  # noqa: F401
except ImportError:  # pragma: no cover - during bring-up only
    pass

_AVAILABLE = available_backends()


def backend_params(traces_only: bool = True, exclude: tuple[str, ...] = ()):
    """pytest params over every known backend: unavailable ones are skipped
    with their reason, unless ISOWASM_REQUIRE_BACKENDS names them (CI), in
    which case the test fails."""
    out = []
    required = required_backends()
    for name, b in _AVAILABLE.items():
        if name in exclude:
            continue
        if isinstance(b, str):
            marks = () if name in required else pytest.mark.skip(reason=b)
            out.append(pytest.param(name, id=name, marks=marks))
            continue
        if traces_only and not b.traces:
            continue
        out.append(pytest.param(name, id=name, marks=_heavy_marks(b)))
    return out


def _heavy_marks(b) -> tuple:
    return (pytest.mark.slow, pytest.mark.heavy) if getattr(b, "heavy", False) else ()


def backend(name: str):
    b = _AVAILABLE[name]
    if isinstance(b, str):
        pytest.fail(f"required backend {name} is unavailable: {b}")
    return b


def assert_same_run(res, ref):
    """A backend's run is the reference's: status, trace (text, digest and
    checkpoints), counts, output and trap."""
    assert res.status == ref.status
    assert res.digest == ref.digest
    assert res.checkpoints == ref.checkpoints
    assert (res.steps, res.tokens, res.output, res.trap) == (ref.steps, ref.tokens, ref.output, ref.trap)
    if ref.trap is not None:
        assert res.trap_pc == ref.trap_pc
    if ref.trace is not None:
        assert res.trace == ref.trace


def ci_script(name: str):
    """The module of the project script ci/<name>.py (scripts are not a
    package: the product never imports them)."""
    path = Path(__file__).resolve().parents[1] / "ci" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
