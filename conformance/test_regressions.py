"""Regression cases written by `isowasm fuzz` (conformance/regressions/*.yaml,
or $ISOWASM_REGRESSIONS_DIR): each is a minimal program that once made a
backend diverge, in the compliance suite's YAML format (one file per
finding, its category the file's stem), with the expected output and status
from wasmtime. Every case runs on every available backend, compared with the
reference executor, wasmtime and its own expectation, exactly like a
compliance case (isowasm/suites/compliance.py's loader and builder).

The regressions are kept apart from the compliance suite: its 179 cases and
14 categories do not change when a campaign finds something.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isowasm.suites.compliance import ROOT as COMPLIANCE_ROOT
from isowasm.suites.compliance import CaseFileError, build_case, load_cases, load_file
from conformance.conftest import backend, backend_params
from isowasm.runner import compare_case

ROOT = Path(os.environ.get("ISOWASM_REGRESSIONS_DIR") or Path(__file__).with_name("regressions"))


def regression_files(root: Path = ROOT) -> list[Path]:
    return sorted(root.glob("*.yaml")) if root.is_dir() else []


def _collect():
    """(case or None, id, load error or None) per case; a file that does not
    load still becomes a (failing) test instead of breaking collection."""
    out = []
    for path in regression_files():
        try:
            for cc in load_file(path):
                out.append(pytest.param(cc, id=cc.name))
        except CaseFileError as e:
            out.append(pytest.param(str(e), id=path.stem))
    return out


CASES = _collect()


def run_regression(cc, b, others=("reference", "wasmtime"), get=None):
    """`cc` on backend `b`, compared with the reference executor and wasmtime
    and the case's expectation (trace digests; a divergence is localised by a
    traced re-run). Returns the runner's Comparison."""
    get = get or backend
    case = build_case(cc)
    runs = [b] + [get(n) for n in others if n != b.name]
    runs = [r for r in runs if not (r.needs_wasm and case.wasm is None)]   # a machine program: no module
    return compare_case(case, runs, max_steps=cc.max_steps, trace="digest")


@pytest.mark.parametrize("backend_name", backend_params(traces_only=False))
@pytest.mark.parametrize("cc", CASES)
def test_regression(cc, backend_name):
    if isinstance(cc, str):
        pytest.fail(cc)
    if cc.lang == "program" and backend(backend_name).needs_wasm:
        pytest.skip(f"{cc.name} is a machine program: no wasm module for {backend_name}")
    cmp = run_regression(cc, backend(backend_name))
    assert cmp.ok, cmp.report()


def test_regression_files_are_valid():
    """Every file in the directory loads as a compliance case file (the
    category is its stem, every case well-formed), names are unique and do
    not collide with the compliance suite's; nothing else lies there but a
    README. Runs (and means something) with no regression yet too."""
    assert ROOT.is_dir(), f"{ROOT} is missing"
    strays = [p.name for p in ROOT.iterdir()
              if p.is_file() and p.suffix != ".yaml" and p.name != "README.md"
              and not p.name.startswith(".")]
    assert not strays, f"unexpected files in {ROOT}: {strays}"
    names: dict[str, str] = {}
    suite = {cc.name for cc in load_cases()}
    for path in regression_files():
        for cc in load_file(path):
            assert cc.name not in names, f"{path.name}: {cc.name} also in {names[cc.name]}"
            assert cc.name not in suite, f"{path.name}: {cc.name} is a compliance case name"
            assert cc.lang in ("wat", "c") and cc.source.strip()
            names[cc.name] = path.name


def test_regressions_are_separate_from_the_compliance_suite():
    assert ROOT.resolve() != COMPLIANCE_ROOT.resolve()
    assert len(load_cases()) == 179
    assert not list(COMPLIANCE_ROOT.glob("fuzz-*.yaml"))
