"""`isowasm adapter transformer-vm PATH`: the backends file for a user's
checkout of the public transformer-vm. Tested on a stand-in checkout whose
commands speak the original's conventions (spec/PLUGINS.md §1.1, §3): its
reference, engine and compiler run through the written file alone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENGINE = HERE / "external" / "tvm_like_engine.py"
COMPILER = HERE / "external" / "wrong_compiler.py"

REFERENCE = '''import sys
from isowasm.spec.program import format_instructions, load_program
from isowasm.spec.reference import run_reference
path = sys.argv[1]
prog = load_program(path)
first, _, rest = run_reference(prog, max_steps=10**8, trace="text").trace.partition("\\n")
base = prog.names and prog.names[0] == "input_base"
with open(path.replace(".txt", "_ref.txt"), "w") as f:
    f.write(format_instructions(prog) + (first + "\\n" if base else "") + rest)
'''

COMPILE = f'''import sys, subprocess
args = sys.argv[1:]
base = args[args.index("-o") + 1]
sys.exit(subprocess.call([sys.executable, {str(COMPILER)!r}, args[0], "-o", base + ".txt"]))
'''


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "transformer-vm"
    for pkg in ("transformer_vm", "transformer_vm/wasm", "transformer_vm/compilation"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "transformer_vm/wasm/reference.py").write_text(REFERENCE)
    (root / "transformer_vm/compilation/compile_wasm.py").write_text(COMPILE)
    eng = root / "transformer"
    eng.write_text(f"#!/bin/sh\nexec {sys.executable} {ENGINE} \"$@\"\n")
    eng.chmod(eng.stat().st_mode | stat.S_IEXEC)
    (root / "model.bin").write_bytes(b"")
    return root


def isowasm(cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ISOWASM_BACKENDS_FILE", None)
    return subprocess.run([sys.executable, "-m", "isowasm.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_adapter_writes_a_file_that_runs_the_checkouts_tools(checkout, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    w = isowasm(work, "adapter", "transformer-vm", str(checkout), "--python", sys.executable)
    assert w.returncode == 0, w.stderr
    decl = yaml.safe_load((work / "isowasm-backends.yaml").read_text())
    assert set(decl["backends"]) == {"tvm-reference", "tvm-engine"} and set(decl["compilers"]) == {"tvm-compile"}
    assert "4c8c537" in (work / "isowasm-backends.yaml").read_text()   # the upstream commit checked
    prog = work / "p.wat"
    prog.write_text('(module (import "env" "output_byte" (func $out (param i32))) (memory 1)\n'
                    '(global $g (mut i32) (i32.const 7))\n'
                    '(func (export "compute") (call $out (i32.add (i32.const 48) (global.get $g)))))\n')
    r = isowasm(work, "verify", "p.wat", "--backends", "reference,wasmtime,tvm-reference,tvm-engine",
                "--compiler", "tvm-compile", "--json", "")
    assert r.returncode == 0, r.stdout + r.stderr
    # a second run does not overwrite the file silently
    again = isowasm(work, "adapter", "transformer-vm", str(checkout))
    assert again.returncode == 2 and "exists" in again.stderr


def test_adapter_refuses_what_is_not_a_checkout(tmp_path):
    r = isowasm(tmp_path, "adapter", "transformer-vm", str(tmp_path))
    assert r.returncode == 2 and "not a transformer-vm checkout" in r.stderr
    assert r.stderr.strip().count("\n") == 0
