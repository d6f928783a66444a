"""isowasm as a user installs it: the wheel, in a fresh virtual environment,
used from an empty directory with no checkout anywhere on its path.

System site packages are allowed (torch, wasmtime and the separately built
Rust extensions come from there); isowasm itself must come from the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

WAT = """(module (import "env" "output_byte" (func $out (param i32))) (memory 1)
  (func (export "compute") (local $i i32)
    (loop $l
      (call $out (i32.add (i32.const 65) (i32.rem_u (i32.mul (local.get $i) (i32.const 7)) (i32.const 26))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20))))
    (call $out (i32.const 10))))
"""

# A command backend made by "someone else": it runs the installed reference
# executor and, with --flip, changes the first pushed value's commit token.
PLUGIN = """import sys
from isowasm.spec.program import load_program
from isowasm.spec.reference import run_reference
r = run_reference(load_program(sys.argv[1]), max_steps=int(sys.argv[2]), trace="text")
text = r.trace
if "--flip" in sys.argv:
    text = text.replace("commit(+1,sts=1,bt=0)", "commit(+0,sts=1,bt=0)", 1)
sys.stdout.write(text)
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("isowasm-*.whl"))
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True,
                   timeout=300)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    work = root / "work"
    work.mkdir()
    return {"wheel": wheel, "bin": env_dir / "bin", "py": py, "work": work}


def run(venv, *args, timeout=600):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ISOWASM_REQUIRE_BACKENDS", "ISOWASM_PLUGINS", "ISOWASM_BACKENDS_FILE")}
    env["PATH"] = f"{venv['bin']}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(venv["bin"] / "isowasm"), *args], cwd=venv["work"], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_one_import_package(venv):
    names = zipfile.ZipFile(venv["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"isowasm"}, tops
    for shipped in ("isowasm/suites/data/examples/manifest.yaml", "isowasm/suites/data/compliance/limits.yaml",
                    "isowasm/fuzz/generators.py", "isowasm/spec/machine.yaml", "isowasm/runtime/isowasm.h"):
        assert shipped in names, shipped


def test_installed_isowasm_is_the_wheels(venv):
    p = subprocess.run([str(venv["py"]), "-c", "import isowasm, isowasm.spec; print(isowasm.__file__); "
                        "print(isowasm.spec.__file__)"], cwd=venv["work"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert p.returncode == 0, p.stderr
    for line in p.stdout.split():
        assert line.startswith(str(venv["bin"].parent)), p.stdout   # not the checkout


def test_verify_a_user_program_from_an_empty_directory(venv):
    (venv["work"] / "prog.wat").write_text(WAT)
    r = run(venv, "verify", "prog.wat")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VERIFY_OK" in r.stdout and (venv["work"] / "results" / "verify.json").exists()


def test_verify_against_a_plugin_that_flips_one_token(venv):
    w = venv["work"]
    (w / "prog.wat").write_text(WAT)
    (w / "plugin.py").write_text(PLUGIN)
    (w / "isowasm-backends.yaml").write_text(
        "backends:\n"
        f"  theirs:\n    command: [{venv['py']}, plugin.py, '{{program}}', '{{max_steps}}']\n"
        f"  theirs-wrong:\n    command: [{venv['py']}, plugin.py, '{{program}}', '{{max_steps}}', --flip]\n")
    good = run(venv, "verify", "prog.wat", "--backends", "reference,wasmtime,theirs", "--json", "")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run(venv, "verify", "prog.wat", "--backends", "reference,wasmtime,theirs-wrong", "--json", "")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "traces diverge at token" in bad.stdout and "theirs-wrong has 'commit(+0,sts=1,bt=0)'" in bad.stdout
    # the shipped compliance suite against the plug-in, from here
    suite = run(venv, "iso-equiv", "--suites", "compliance", "--backends", "reference,wasmtime,theirs",
                "--jobs", "2")
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr
    from isowasm.suites.compliance import load_cases
    assert "ISO_EQUIV_OK" in suite.stdout and f"{len(load_cases())} programs" in suite.stdout


def test_fuzz_and_report_from_an_empty_directory(venv):
    r = run(venv, "fuzz", "--time", "10s", "--workers", "1", "--backends", "reference,wasmtime,rust")
    assert r.returncode == 0, r.stderr
    doc = json.loads((venv["work"] / "results" / "fuzz.json").read_text())
    assert doc["programs"] > 0 and doc["findings"] == []
    rep = run(venv, "report")
    assert rep.returncode == 0, rep.stderr
    text = (venv["work"] / "FINDINGS.md").read_text()
    assert "## Fuzzing" in text
