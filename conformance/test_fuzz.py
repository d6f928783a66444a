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

from isowasm.suites.compliance import load_file
from isowasm.backends.base import Case
from isowasm.backends.reference import ReferenceBackend
REPO = Path(__file__).resolve().parents[1]
from isowasm.spec.program import Program
from isowasm.spec.reference import run_reference

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


class LeakyBackend(ReferenceBackend):
    """A backend that carries state from one run to the next in its
    instance (as a memory pool re-zeroed only in part would): from its
    second run on, the first output byte is off by one. A new instance's
    first run is right."""

    name = "leaky"

    def __init__(self):
        super().__init__()
        self.runs = 0

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None):
        res = run_reference(case.program, max_steps=max_steps, trace=trace, progress=progress)
        res.backend = self.name
        self.runs += 1
        if self.runs > 1 and res.output:
            res.output = bytes([(res.output[0] + 1) & 0xFF]) + res.output[1:]
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

    # seed 0's generator meets `i32.le_u` on equal operands at program 4 (the
    # op probes, which would find it first, are off here): a fixed number of
    # programs keeps the test independent of the machine's speed
    rc = _campaign(tmp_path, "--time", "120s", "--programs", "128", "--workers", "1", "--seed", "0",
                   "--no-probes", "--backends", "reference,wasmtime,broken-le-u", env={"ISOWASM_PLUGINS": PLUGIN})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1
    sigs = [f["signature"] for f in doc["findings"]]
    assert sigs == ["trace:i32.le_u:broken-le-u"], sigs
    f = doc["findings"][0]
    assert doc["programs"] == 128 and f["index"] == 4
    assert f["shrunk"] and f["count"] >= 1
    assert f["wat"].count("\n") <= 25, f["wat"]
    # the wasm need not spell le_u (here the lowering of memory.grow uses it):
    # the report names the machine instruction where the traces part
    assert "diverge at token" in f["report"] and "i32.le_u" in f["report"], f["report"]
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


def test_state_carried_between_runs_is_named_as_such(tmp_path):
    """A backend whose reused instance computes a later program differently
    than a new instance: the campaign names the carried state (and the
    programs it followed), not a wrong op."""
    rc = _campaign(tmp_path, "--time", "60s", "--programs", "24", "--workers", "1", "--seed", "0",
                   "--no-probes", "--backends", "reference,wasmtime,leaky",
                   env={"ISOWASM_PLUGINS": "leaky=conformance.test_fuzz:LeakyBackend"})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1
    assert [f["signature"] for f in doc["findings"]] == ["carried-state:leaky"], doc["findings"]
    f = doc["findings"][0]
    assert f["kind"] == "carried-state" and f["backend"] == "leaky"
    assert "through the same instance" in f["report"] and "output: reused instance" in f["report"], f["report"]


def test_op_probes_open_the_campaign_and_shrink_to_the_op(tmp_path):
    """The first programs of a campaign are the op probes: the wrong le_u
    is found by its probe, whatever the generator draws, and shrinks to the
    op on two constants."""
    from isowasm.fuzz.probes import PROBES

    k = next(i for i, (op, _) in enumerate(PROBES) if op == "i32.le_u")
    rc = _campaign(tmp_path, "--time", "120s", "--programs", "32", "--workers", "1", "--seed", "0",
                   "--backends", "reference,wasmtime,broken-le-u", env={"ISOWASM_PLUGINS": PLUGIN})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1 and doc["programs"] == 32
    f = next(f for f in doc["findings"] if f["signature"] == "trace:i32.le_u:broken-le-u")
    assert f["index"] == k and f["shrunk"]
    body = f["wat"].split('(export "compute")', 1)[1]
    assert body.count("(i32.") == 3 and "(i32.le_u (i32.const" in body, f["wat"]


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
    from isowasm.fuzz.generators import direct_module, render
    from isowasm.fuzz import compile_wat

    return [compile_wat(render(direct_module(seed, k)), f"p{k}")[1] for k in range(n)]


def test_direct_generator_is_deterministic_and_shards_partition():
    import argparse

    from isowasm.fuzz.generators import direct_module, render
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
    import isowasm.fuzz.campaign as fz
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


# ---------------------------------------------------------------------------
# robustness of the command: bad state, two campaigns, SIGTERM, a hanging plug-in

def _fuzz_cmd(tmp_path, *args):
    return [sys.executable, "-m", "isowasm.cli", "fuzz", "--out", str(tmp_path / "state"),
            "--json", str(tmp_path / "fuzz.json"), "--regressions", str(tmp_path / "regressions"),
            "--status-every", "1000", "--workers", "1", *args]


def _one_line_error(p, *fragments):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("content, fragment", [
    ('{"version": 1, "seed": 0, "sh', "corrupt campaign state"),
    ("\xff\xfe garbage", "corrupt campaign state"),
    ('{"version": 1}', "not a version-1 campaign state"),
    ("[1, 2, 3]", "not a version-1 campaign state"),
])
def test_corrupt_state_is_one_line_error(tmp_path, content, fragment):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_bytes(content.encode("latin-1"))
    p = subprocess.run(_fuzz_cmd(tmp_path, "--time", "5s", "--backends", "reference,wasmtime"),
                       capture_output=True, text=True, timeout=120)
    _one_line_error(p, "state.json", fragment)


def test_second_campaign_on_one_state_directory_refuses(tmp_path):
    cmd = _fuzz_cmd(tmp_path, "--time", "60s", "--backends", "reference,wasmtime")
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (tmp_path / "state" / "state.json").exists():
            assert first.poll() is None and time.monotonic() - t0 < 60, "the first campaign did not start"
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        _one_line_error(second, "another campaign", "is running on this state directory")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)


def test_sigterm_ends_a_campaign_within_seconds_keeping_its_findings(tmp_path):
    env = {**os.environ, "ISOWASM_PLUGINS": PLUGIN,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = _fuzz_cmd(tmp_path, "--time", "10m", "--seed", "0",
                    "--backends", "reference,wasmtime,broken-le-u", "--workers", "2")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    findings = tmp_path / "state" / "findings"
    try:
        t0 = time.monotonic()
        while not (findings.is_dir() and list(findings.glob("*.json"))):
            assert proc.poll() is None and time.monotonic() - t0 < 60, "nothing found within 60 s"
            time.sleep(0.05)
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)       # possibly mid-shrink
        rc = proc.wait(timeout=30)
        took = time.monotonic() - t_term
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 15, f"SIGTERM took {took:.1f} s to end the campaign"
    assert rc == 1, proc.stderr.read()
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert "trace:i32.le_u:broken-le-u" in {f["signature"] for f in doc["findings"]}
    assert json.loads((tmp_path / "state" / "state.json").read_text())["programs"] > 0


def test_hanging_plugin_stalls_nothing(tmp_path):
    """A declared command backend that never answers: its timeout_s applies
    in a campaign as in verify, the hang is a finding, the campaign ends."""
    (tmp_path / "isowasm-backends.yaml").write_text(
        f"backends:\n  hangs:\n    command: [{sys.executable}, -c, 'import time; time.sleep(600)']\n"
        f"    timeout_s: 1\n")
    cmd = _fuzz_cmd(tmp_path, "--time", "8s", "--programs", "32", "--shrink-seconds", "3",
                    "--backends", "reference,wasmtime,hangs")
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    # at least 64 s: 32 programs, each waiting out the 1 s timeout twice (screen, confirm)
    assert time.monotonic() - t0 < 170, "the campaign was stalled by the hanging plug-in"
    assert p.returncode == 1, p.stderr
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    reports = " ".join(f["report"] for f in doc["findings"])
    assert "no answer within its timeout of 1 s" in reports, doc["findings"]


def test_three_shards_merged_equal_one_unsharded_campaign(tmp_path):
    """Three shards as separate processes on separate state directories,
    merged, count what one unsharded campaign over the same programs counts
    and keep the same findings."""
    env = {**os.environ, "ISOWASM_PLUGINS": PLUGIN,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["--seed", "0", "--workers", "1", "--backends", "reference,wasmtime,broken-le-u",
              "--time", "300s", "--shrink-seconds", "30", "--status-every", "1000"]

    def campaign(name, *args):
        d = tmp_path / name
        return subprocess.Popen([sys.executable, "-m", "isowasm.cli", "fuzz", "--out", str(d / "state"),
                                 "--json", str(d / "fuzz.json"), "--regressions", str(d / "reg"),
                                 *common, *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    shards = [campaign(f"shard{i}", "--shard", f"{i}/3", "--programs", "64") for i in range(3)]
    whole = campaign("whole", "--programs", "192")
    for p in [*shards, whole]:
        assert p.wait(timeout=600) in (0, 1), p.stderr.read()
    m = subprocess.run([sys.executable, "-m", "isowasm.cli", "fuzz", "merge",
                        *[str(tmp_path / f"shard{i}" / "state") for i in range(3)],
                        "--out", str(tmp_path / "merged"), "--json", str(tmp_path / "merged.json"),
                        "--regressions", str(tmp_path / "merged-reg")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    one = json.loads((tmp_path / "whole" / "fuzz.json").read_text())
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert m.returncode == (1 if one["findings"] else 0), m.stderr
    assert merged["programs"] == one["programs"] == 192
    assert merged["divergent_programs"] == one["divergent_programs"]
    assert merged["op_coverage"] == one["op_coverage"]
    key = lambda doc: sorted((f["signature"], f["count"], f["index"]) for f in doc["findings"])  # noqa: E731
    assert key(merged) == key(one) and key(one), (key(merged), key(one))
    for f in merged["findings"]:
        assert (REPO / f["regression"]).exists() or Path(f["regression"]).exists()
    assert merged["shard"] == "0/3+1/3+2/3"
    # one report of it
    from isowasm import report
    d = tmp_path / "rep"
    d.mkdir()
    (d / "fuzz.json").write_text((tmp_path / "merged.json").read_text())
    assert "trace:i32.le_u:broken-le-u" in report.render(d)


def test_merge_refuses_shards_of_different_campaigns(tmp_path):
    for i, seed in enumerate((1, 2)):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "state.json").write_text(json.dumps(
            {"version": 1, "seed": seed, "shard": [i, 2], "backends": ["reference"], "max_steps": 5,
             "chunk": 32, "sig_counts": {}, "programs": 0}))
    p = subprocess.run([sys.executable, "-m", "isowasm.cli", "fuzz", "merge", str(tmp_path / "s0"),
                        str(tmp_path / "s1"), "--out", str(tmp_path / "m")], capture_output=True, text=True,
                       timeout=60)
    _one_line_error(p, "seed 2 differs", "not shards of one campaign")
