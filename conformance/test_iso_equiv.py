"""ci/iso_equiv.sh's verdict: OK when every implementation agrees, and a
failure naming the program and the first divergent token when one port is
deliberately broken (injected as a plug-in, no isowasm change needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isowasm.backends import available_backends

REPO = Path(__file__).resolve().parents[1]
MACHINES = [n for n, b in available_backends().items()
            if n in ("reference", "wasmtime", "rust", "ocaml") and not isinstance(b, str)]
PICK = ["--suites", "examples", "compliance", "--match", "examples/fibonacci", "loops/count-to-ten",
        "comparisons/"]


def iso_equiv(*args, plugins=""):
    env = dict(os.environ, ISOWASM_PLUGINS=plugins)
    return subprocess.run([sys.executable, "-m", "isowasm.iso_equiv", *args], capture_output=True,
                          text=True, timeout=600, cwd=REPO, env=env)


def test_all_implementations_agree():
    p = iso_equiv("--backends", *MACHINES, *PICK)
    assert p.returncode == 0, p.stdout[-3000:]
    assert p.stdout.rstrip().splitlines()[-1] == "ISO_EQUIV_OK"


def test_a_broken_port_fails_naming_program_and_token():
    p = iso_equiv("--backends", *MACHINES, "broken", *PICK,
                  plugins="broken=conformance.broken_backends:SwappedLtBackend")
    assert p.returncode == 1
    out = p.stdout
    assert out.rstrip().splitlines()[-1] == "ISO_EQUIV_FAIL"
    row = next(ln for ln in out.splitlines() if ln.startswith("examples/fibonacci"))
    assert "diverge@tok" in row.split()[-1]
    assert all(c == "match" for c in row.split()[1:-1])   # only the broken port is blamed
    assert "== examples/fibonacci" in out and "traces diverge at token" in out
    assert "i32.lt_" in out


@pytest.mark.slow
def test_iso_equiv_script_from_scratch():
    p = subprocess.run(["bash", "ci/iso_equiv.sh"], capture_output=True, text=True, timeout=3000, cwd=REPO)
    assert p.stdout.rstrip().splitlines()[-1] == "ISO_EQUIV_OK", p.stdout[-5000:] + p.stderr[-2000:]


def test_parallel_run_writes_the_matrix_as_json(tmp_path):
    import json
    out = tmp_path / "m.json"
    p = iso_equiv("--backends", *MACHINES, "--suites", "compliance", "--match", "comparisons/",
                  "--jobs", "2", "--json", str(out))
    assert p.returncode == 0, p.stdout[-3000:]
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert doc["ok"] and doc["backends"] == MACHINES and doc["jobs"] == 2
    assert len(rows) == 16   # in suite order, whatever order the workers finished in
    assert [r["program"] for r in rows][:2] == ["compliance/comparisons/eq-boundaries", "compliance/comparisons/ne-boundaries"]
    assert all(set(r["cells"].values()) == {"match"} and r["tokens"] > 0 for r in rows)
    digests = {n: {r["results"][n]["digest"] for r in rows} for n in MACHINES if n != "wasmtime"}
    assert len({frozenset(d) for d in digests.values()}) == 1   # same traces on every machine


def test_a_token_limit_is_incomplete_never_ok(tmp_path):
    p = iso_equiv("--backends", *MACHINES, "--suites", "compliance", "--match", "comparisons/",
                  "--max-tokens", "30000")
    assert p.returncode == 3, p.stdout[-3000:]
    lines = p.stdout.rstrip().splitlines()
    assert lines[-1] == "ISO_EQUIV_INCOMPLETE"
    assert any("not compared:" in ln and "> --max-tokens 30000" in ln for ln in lines)
    assert " 0 failing, " in p.stdout and " 0 skipped" not in p.stdout


def test_shards_merge_into_the_unsharded_run(tmp_path):
    import json

    sel = ["--backends", "reference,wasmtime", "--suites", "compliance", "--match", "comparisons/", "loops/"]
    whole = iso_equiv(*sel, "--json", str(tmp_path / "whole.json"))
    parts = [iso_equiv(*sel, "--shard", f"{i}/3", "--json", str(tmp_path / f"s{i}.json")) for i in range(3)]
    assert whole.returncode == 0 and all(p.returncode == 0 for p in parts), whole.stdout[-2000:]
    m = iso_equiv("merge", *[str(tmp_path / f"s{i}.json") for i in range(3)], "--json", str(tmp_path / "m.json"))
    assert m.returncode == 0 and "ISO_EQUIV_OK" in m.stdout, m.stdout + m.stderr
    a = json.loads((tmp_path / "whole.json").read_text())
    b = json.loads((tmp_path / "m.json").read_text())
    cells = lambda d: [(r["program"], r.get("cells"), r.get("tokens")) for r in d["rows"]]  # noqa: E731
    assert cells(a) == cells(b) and len(cells(a)) > 10
    assert b["ok"] is True


def test_merge_refuses_runs_of_other_backends(tmp_path):
    for name, bk in (("a", "reference"), ("b", "reference,wasmtime")):
        p = iso_equiv("--backends", bk, "--suites", "compliance", "--match", "loops/count-to-ten",
                      "--json", str(tmp_path / f"{name}.json"))
        assert p.returncode == 0, p.stdout
    m = iso_equiv("merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json", str(tmp_path / "m.json"))
    assert m.returncode == 2 and "not shards of one run" in m.stderr
