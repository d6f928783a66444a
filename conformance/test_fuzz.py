"""The fuzzing campaign runner (isowasm/fuzz.py, `isowasm fuzz`).

(a) a short campaign on the reference executor and wasmtime finds nothing
    and records results/fuzz.json's keys;
(b) a bug injected through a plug-in backend (ISOWASM_PLUGINS) — `i32.le_u`
    wrong on equal operands — is found, shrunk to a small WAT program and
    written as a regression case that fails on the broken backend and passes
    on the reference executor;
(c) a campaign killed with SIGKILL right after it found something resumes
    with nothing lost;
plus the fast paths the campaign relies on (program formatting, the
reference digest, the direct generator) against their originals.

Every campaign here writes into a tmp directory, never into the repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.compliance import load_file
from isowasm.backends.base import Case
from isowasm.backends.reference import ReferenceBackend
from isowasm.examples import REPO
from spec.program import Program
from spec.reference import run_reference

PLUGIN = "broken-le-u=conformance.test_fuzz:LeUEqualBackend"


class LeUEqualBackend(ReferenceBackend):
    """The reference executor with `i32.le_u` wrong on equal operands: it
    computes `a < b` (u32), so it differs from the spec only when a == b."""

    name = "broken-le-u"
    broken_ops = ("i32.le_u",)

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None):
        p = case.program
        names = ["i32.lt_u" if n == "i32.le_u" else n for n in p.names]
        res = run_reference(Program(names, list(p.imms), p.input, p.source),
                            max_steps=max_steps, trace=trace, progress=progress)
        res.backend = self.name
        return res


def _campaign(tmp: Path, *args: str, env: dict | None = None) -> int:
    from isowasm.fuzz import cli_fuzz

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return cli_fuzz(["--out", str(tmp / "state"), "--json", str(tmp / "fuzz.json"),
                         "--regressions", str(tmp / "regressions"), "--status-every", "1000",
                         *args])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_short_campaign_finds_nothing_and_writes_fuzz_json(tmp_path):
    rc = _campaign(tmp_path, "--time", "12s", "--workers", "1", "--seed", "11",
                   "--backends", "reference,wasmtime")
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 0, doc["findings"]
    for key in ("kind", "time", "programs", "seconds", "rate", "backends", "findings",
                "op_coverage", "coverage_percent", "timings"):
        assert key in doc, key
    assert doc["kind"] == "fuzz" and doc["backends"] == ["reference", "wasmtime"]
    assert doc["programs"] >= 64 and doc["findings"] == []
    assert doc["op_coverage"]["i32.add"] > 0 and doc["coverage_percent"] > 80
    assert not (tmp_path / "regressions").exists() or not list((tmp_path / "regressions").iterdir())
    # `isowasm report` renders it
    from isowasm import report
    text = report.render(tmp_path)
    assert "## Fuzzing" in text and "No divergence found." in text


def test_injected_bug_is_found_shrunk_and_becomes_a_failing_regression(tmp_path):
    from conformance.test_regressions import run_regression

    # seed 0 meets `i32.le_u` on equal operands at program 83: a fixed number
    # of programs keeps the test independent of the machine's speed
    rc = _campaign(tmp_path, "--time", "120s", "--programs", "128", "--workers", "1", "--seed", "0",
                   "--backends", "reference,wasmtime,broken-le-u", env={"ISOWASM_PLUGINS": PLUGIN})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1
    sigs = [f["signature"] for f in doc["findings"]]
    assert sigs == ["trace:i32.le_u:broken-le-u"], sigs
    f = doc["findings"][0]
    assert doc["programs"] == 128 and f["index"] == 83
    assert f["shrunk"] and f["count"] >= 1
    assert f["wat"].count("\n") <= 25, f["wat"]
    assert "i32.le_u" in f["wat"] and "diverge at token" in f["report"]
    regs = list((tmp_path / "regressions").glob("*.yaml"))
    assert len(regs) == 1
    cc = load_file(regs[0])[0]
    assert cc.source == f["wat"] and cc.ground_truth == "wasmtime"

    broken, ref = LeUEqualBackend(), ReferenceBackend()
    get = {"reference": ref, "wasmtime": _wasmtime()}.__getitem__
    bad = run_regression(cc, broken, get=get)
    assert not bad.ok and bad.failed == {"broken-le-u"}, bad.report()
    assert bad.divergence is not None and bad.divergence.instruction.startswith("i32.le_u")
    good = run_regression(cc, ref, get=get)
    assert good.ok, good.report()


def _wasmtime():
    from isowasm.backends import get_backend
    return get_backend("wasmtime")


def test_kill_9_and_resume_lose_no_finding(tmp_path):
    env = {**os.environ, "ISOWASM_PLUGINS": PLUGIN,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-c", "import sys; from isowasm.fuzz import cli_fuzz; sys.exit(cli_fuzz(sys.argv[1:]))",
           "--out", str(tmp_path / "state"), "--json", str(tmp_path / "fuzz.json"),
           "--regressions", str(tmp_path / "regressions"), "--status-every", "1000",
           "--workers", "1", "--seed", "0", "--backends", "reference,wasmtime,broken-le-u"]
    findings = tmp_path / "state" / "findings"
    proc = subprocess.Popen(cmd + ["--time", "60s"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not (findings.is_dir() and list(findings.glob("*.json"))):
            assert proc.poll() is None, "the campaign ended before finding anything"
            assert time.monotonic() - t0 < 40, "nothing found within 40 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)       # possibly mid-shrink
    finally:
        proc.wait()
    before = {p.name: json.loads(p.read_text()) for p in findings.glob("*.json")}
    assert before
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    done_before = state["done_prefix"]

    r = subprocess.run(cmd + ["--time", "4s"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "resuming" in r.stderr or done_before == 0, r.stderr
    after = {p.name: json.loads(p.read_text()) for p in findings.glob("*.json")}
    assert set(before) <= set(after)
    for name, f in before.items():
        g = after[name]
        assert g["signature"] == f["signature"] and g["index"] == f["index"]
        assert g["shrunk"], "an unshrunk finding is shrunk on resume"
        assert Path(g["regression"]).exists()
        load_file(Path(g["regression"]))
    state2 = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state2["done_prefix"] >= done_before and state2["programs"] >= state["programs"]
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert {f["signature"] for f in before.values()} <= {f["signature"] for f in doc["findings"]}
    # no temporary files left behind by atomic writes
    assert not [p for p in (tmp_path / "state").rglob("*.tmp")]


# ---------------------------------------------------------------------------
# generated programs


def _programs(n: int, seed: int = 3):
    from conformance.strategies import direct_module, render
    from isowasm.fuzz import compile_wat

    return [compile_wat(render(direct_module(seed, k)), f"p{k}")[1] for k in range(n)]


def test_direct_generator_is_deterministic_and_shards_partition():
    import argparse

    from conformance.strategies import direct_module, render
    from isowasm.fuzz import Campaign, parse_duration, parse_shard

    assert render(direct_module(5, 17)) == render(direct_module(5, 17))
    assert render(direct_module(5, 17)) != render(direct_module(6, 17))
    assert parse_duration("8h") == 28800 and parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shard("3/3")

    class A:
        shard = (0, 1)
    c = Campaign.__new__(Campaign)
    seen = []
    for i in range(3):
        A.shard = (i, 3)
        c.args = A
        seen += c.indices(0) + c.indices(1)
    assert sorted(seen) == list(range(len(seen)))


def test_toolchain_rejection_is_a_finding_with_a_regression_case(tmp_path, monkeypatch):
    """A generated program the toolchain rejects is a finding too: shrunk
    with the same error, and written as a regression case whose expectation
    is wasmtime's run of the module."""
    import isowasm.fuzz as fz
    from isowasm.toolchain import CompileError

    real = fz.compile_wat

    def picky(wat, name):
        if "i32.rotl" in wat:
            raise CompileError(f"{name}: i32.rotl is not supported (a fake toolchain bug)")
        return real(wat, name)

    monkeypatch.setattr(fz, "compile_wat", picky)
    w = fz.Worker({"seed": 0, "backends": ["reference", "wasmtime"], "max_steps": 1_000_000,
                   "out": str(tmp_path / "state"), "regressions": str(tmp_path / "reg"),
                   "shrink_seconds": 20})
    try:
        r = w.run_chunk(list(range(16)))
    finally:
        w.close()
    new = [f["finding"] for f in r["found"] if f.get("new")]
    assert [f["signature"] for f in new] == ["compile:CompileError:fuzz: i32.rotl is not supported (a fake toolchain bug)"]
    f = new[0]
    assert f["shrunk"] and f["wat"].count("\n") <= 15 and "i32.rotl" in f["wat"], f["wat"]
    cc = load_file(Path(f["regression"]))[0]
    assert cc.source == f["wat"] and cc.expect_status == "halted"
