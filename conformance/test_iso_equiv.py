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
