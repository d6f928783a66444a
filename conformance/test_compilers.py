"""Compilers made elsewhere, checked through the compiler protocol
(spec/PLUGINS.md §3): a stand-in with the public transformer-vm's real
lowering defects (signed remainder as unsigned, shr_s as shr_u) is flagged by
the compliance suite and by verify; isowasm's own compiler through the same
protocol passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMPILER = HERE / "external" / "wrong_compiler.py"


@pytest.fixture
def decl(tmp_path):
    f = tmp_path / "isowasm-backends.yaml"
    cmd = f"[{sys.executable}, {COMPILER}, '{{wasm}}', -o, '{{out}}'"
    f.write_text("compilers:\n"
                 f"  ours-by-protocol:\n    command: {cmd}]\n"
                 f"  rem-wrong:\n    command: {cmd}, --rem-s-as-rem-u]\n"
                 f"  shr-wrong:\n    command: {cmd}, --shr-s-as-shr-u]\n")
    return f


def isowasm(decl, *args, timeout=600):
    env = dict(os.environ, ISOWASM_BACKENDS_FILE=str(decl),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "isowasm.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=decl.parent)


OPS = {"rem-wrong": "i32.rem_s", "shr-wrong": "i32.shr_s"}


@pytest.mark.parametrize("compiler, case", [("rem-wrong", "arithmetic/rem-s-signs"),
                                            ("shr-wrong", "arithmetic/shr-s-mod-32")])
def test_compliance_suite_flags_a_wrong_lowering(decl, compiler, case):
    p = isowasm(decl, "iso-equiv", "--suites", "compliance", "--match", "arithmetic/",
                "--backends", "reference,wasmtime,rust", "--compiler", compiler, "--jobs", "2",
                "--json", "results/ie.json")
    assert p.returncode == 1 and "ISO_EQUIV_FAIL" in p.stdout, p.stdout[-2000:] + p.stderr
    failing = [ln.split()[0] for ln in p.stdout.splitlines() if ln.startswith("compliance/") and "FAIL" in ln]
    assert f"compliance/{case}" in failing, p.stdout
    # the machines agree with each other on the foreign program; wasmtime does not
    report = p.stdout.split(f"== compliance/{case}", 1)[1]
    assert "wasmtime" in report and "first divergent output byte" in report
    # grouped by cause, with the smallest failing program as its reproduction
    doc = json.loads((decl.parent / "results" / "ie.json").read_text())
    groups = doc["groups"]
    assert groups and sum(g["count"] for g in groups) == len(failing)
    assert all(g["signature"].startswith("output-") and g["backend"] == "machines" for g in groups), groups
    # the op probes name the wrongly lowered op, with its smallest operands
    op = OPS[compiler]
    assert all(g["op"] == op and g["blame"].startswith(f"{op}: {op}(") for g in groups), groups
    assert f"op probe: {op}: {op}(" in p.stdout
    assert any(g["repro"]["program"] == f"compliance/{case}" or f"compliance/{case}" in g["programs"]
               for g in groups)
    rep = isowasm(decl, "report")
    assert rep.returncode == 0, rep.stderr
    text = (decl.parent / "FINDINGS.md").read_text()
    assert "by cause" in text and groups[0]["signature"] in text and f"compiler `{compiler}`" in text


def test_own_compiler_through_the_protocol_passes_the_suite(decl):
    p = isowasm(decl, "iso-equiv", "--suites", "compliance", "--backends", "reference,wasmtime,rust",
                "--compiler", "ours-by-protocol", "--jobs", "2")
    assert p.returncode == 0 and "ISO_EQUIV_OK" in p.stdout, p.stdout[-3000:] + p.stderr


def test_verify_names_the_wrong_shift(decl, tmp_path):
    src = tmp_path / "shift.wat"
    src.write_text('(module (import "env" "output_byte" (func $out (param i32))) (memory 1)\n'
                   '(func (export "compute") (local $k i32) (local.set $k (i32.const 25))\n'
                   '  (call $out (i32.add (i32.const 48) (i32.shr_s (i32.const -512) (local.get $k))))))\n')
    good = isowasm(decl, "verify", str(src), "--backends", "reference,wasmtime", "--compiler",
                   "ours-by-protocol", "--json", "")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = isowasm(decl, "verify", str(src), "--backends", "reference,wasmtime", "--compiler",
                  "shr-wrong", "--json", "")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    # -512 >> 25 is -1 ('/'); as shr_u it is 127 (0xaf after the + 48)
    assert 'reference: output "\\xaf", wasmtime "/"' in bad.stdout, bad.stdout
    assert "cause: output-value:i32.shr_s:reference; op probe: i32.shr_s: i32.shr_s(" in bad.stdout, bad.stdout


@pytest.mark.parametrize("compiler", ["rem-wrong", "shr-wrong", "ours-by-protocol"])
def test_fuzz_campaign_flags_a_wrong_lowering(decl, compiler):
    """30 seconds of `isowasm fuzz --compiler`: the op probes that open the
    campaign catch the wrong op, the finding names it and is shrunk to the
    op alone, and its regression case is one `pytest conformance/` runs;
    isowasm's own compiler through the same protocol gives no finding."""
    p = isowasm(decl, "fuzz", "--compiler", compiler, "--time", "30s", "--workers", "2",
                "--backends", "reference,wasmtime,rust", "--shrink-seconds", "30")
    assert p.returncode == (0 if compiler == "ours-by-protocol" else 1), p.stdout[-2000:] + p.stderr
    doc = json.loads((decl.parent / "results" / "fuzz.json").read_text())
    assert doc["programs"] >= 32, doc["programs"]   # at least one chunk, whatever the load
    if compiler == "ours-by-protocol":
        assert doc["findings"] == [], [f["signature"] for f in doc["findings"]]
        return
    op = OPS[compiler]
    mine = [f for f in doc["findings"] if f["op"] == op]
    assert mine and all(f["op"] == op for f in doc["findings"]), [f["signature"] for f in doc["findings"]]
    f = min(mine, key=lambda f: f["wat"].count("\n"))
    assert f["signature"] == f"output-value:{op}:machines" and f["blame"].startswith(f"{op}: {op}(")
    assert f"new divergence: output-value:{op}:machines" in p.stderr + p.stdout
    # minimal: the output helper and one call of the op on two constants
    body = f["wat"].split('(export "compute")', 1)[1]
    assert body.count("(i32.") <= 3 and f"({op} (i32.const" in body, f["wat"]
    reg = decl.parent / f["regression"]
    assert reg.is_file() and f"({op} (i32.const" in reg.read_text()
    # the regression case runs in the conformance suite (and passes there:
    # isowasm's own compiler lowers the op correctly)
    env = dict(os.environ, ISOWASM_REGRESSIONS_DIR=str(reg.parent))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(REPO / "conformance" / "test_regressions.py"), "-k", "not valid and not separate"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout[-2000:]


def test_unknown_compiler_is_one_line_error(decl):
    p = isowasm(decl, "verify", "--compiler", "nosuch")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "unknown compiler 'nosuch'" in p.stderr and "rem-wrong" in p.stderr
