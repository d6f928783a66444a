"""Implementations outside isowasm (spec/PLUGINS.md): a stand-alone command
backend is verified like any other, and a deliberately wrong one is reported
at its first divergent token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.conftest import backend
from isowasm.backends import available_backends, get_backend
from isowasm.backends.external import CommandBackend
from isowasm.suites.examples import load_examples
from isowasm.runner import compare_case

HERE = Path(__file__).resolve().parent
ENGINE = HERE / "external" / "ocaml_engine.py"
OCAML_BIN = HERE.parent / "ports/ocaml/_build/default/bin/isowasm_ocaml.exe"
pytestmark = pytest.mark.skipif(not OCAML_BIN.exists() and "ocaml" not in os.environ.get("ISOWASM_REQUIRE_BACKENDS", ""),
                                reason="the example external engine wraps the OCaml binary: run `make ocaml`")


@pytest.fixture
def backends_file(tmp_path, monkeypatch):
    f = tmp_path / "isowasm-backends.yaml"
    f.write_text(
        "backends:\n"
        f"  ext-good:\n    command: [{sys.executable}, {ENGINE}, '{{program}}', '{{max_steps}}']\n"
        f"  ext-wrong:\n    command: [{sys.executable}, {ENGINE}, '{{program}}', '{{max_steps}}', --flip-first-flag]\n")
    monkeypatch.setenv("ISOWASM_BACKENDS_FILE", str(f))
    return f


def test_declared_commands_are_registered(backends_file):
    avail = available_backends()
    assert isinstance(avail["ext-good"], CommandBackend) and isinstance(avail["ext-wrong"], CommandBackend)


@pytest.mark.parametrize("name", ["hello", "fibonacci"])
def test_external_backend_agrees(backends_file, name):
    ex = {e.name: e for e in load_examples()}[name]
    cmp = compare_case(ex.case(), [backend("reference"), get_backend("ext-good"), backend("wasmtime")],
                       max_steps=ex.max_steps, trace="text")
    assert cmp.ok, cmp.report()
    assert cmp.results["ext-good"].steps == cmp.results["reference"].steps


def test_wrong_external_backend_reported_at_first_divergent_token(backends_file):
    ex = {e.name: e for e in load_examples()}["fibonacci"]
    cmp = compare_case(ex.case(), [backend("reference"), get_backend("ext-wrong"), backend("wasmtime")],
                       max_steps=ex.max_steps, trace="digest")
    assert not cmp.ok and cmp.failed == {"ext-wrong"}
    d = cmp.divergence
    assert d is not None and d.b == "ext-wrong"
    assert d.token_a.endswith("'") and d.token_b == d.token_a[:-1]
    assert d.instruction.startswith(("i32.add", "i32.sub", "i32.load8_s", "i32.load16_s", "return"))
    assert f"traces diverge at token {d.token_index}" in cmp.report()


def test_failing_command_is_reported_not_crashing(tmp_path, monkeypatch):
    f = tmp_path / "b.yaml"
    f.write_text(f"backends:\n  ext-broken:\n    command: [{sys.executable}, -c, 'import sys; sys.exit(7)']\n")
    monkeypatch.setenv("ISOWASM_BACKENDS_FILE", str(f))
    ex = {e.name: e for e in load_examples()}["hello"]
    cmp = compare_case(ex.case(), [backend("reference"), get_backend("ext-broken")], max_steps=ex.max_steps)
    assert not cmp.ok and "exit status 7" in cmp.report()


def test_cli_verifies_an_external_backend(backends_file):
    p = subprocess.run([sys.executable, "-m", "isowasm.cli", "verify", "--backends", "reference,ext-wrong",
                        "--examples", "hello,fibonacci", "--json", ""],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert p.returncode == 1 and "VERIFY_FAIL" in p.stdout and "traces diverge at token" in p.stdout
