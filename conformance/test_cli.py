"""The command line as a new user meets it: each malformed input gives one
line `error: ...` (exit 2) or an explicit status — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "examples"


def isowasm(*args, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "isowasm.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def one_line_error(p, *fragments):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


WAT_HEAD = '(module (import "env" "output_byte" (func $out (param i32))) (memory 160)\n'


@pytest.mark.parametrize("name, content, fragments", [
    ("truncated.wasm", None, ("truncated.wasm",)),
    ("syntax.wat", WAT_HEAD + '(func (export "compute") (i32.add (i32.const 1)))', ("syntax.wat",)),
    ("typo.wat", WAT_HEAD + '(func (export "compute") (call $out (i32.cnst 1))))', ("typo.wat:2",)),
    ("float.wat", WAT_HEAD + '(func (export "compute") (call $out (i32.trunc_f32_s (f32.const 1.5)))))',
     ("f32",)),
    ("misspelled.txt", "{\ni32.const 01 00 00 00\ni32.ad 00 00 00 00\nhalt 00 00 00 00\n}\n",
     ("misspelled.txt:3", "did you mean 'i32.add'")),
    ("missing.txt", None, ("no such file",)),
])
def test_malformed_input_is_one_line(tmp_path, name, content, fragments):
    path = tmp_path / name
    if name == "truncated.wasm":
        from isowasm.toolchain import compile_file

        wasm, _ = compile_file(str(EXAMPLES / "hello.c"))
        path.write_bytes(wasm[: len(wasm) // 2])
    elif content is not None:
        path.write_text(content)
    one_line_error(isowasm("run", str(path)), *fragments)
    if path.suffix in (".wat", ".wasm"):
        one_line_error(isowasm("compile", str(path)), *fragments)


def test_program_that_never_halts_is_budget_exhausted(tmp_path):
    p = tmp_path / "forever.wat"
    p.write_text(WAT_HEAD + '(func (export "compute") (loop $l (br $l))))')
    r = isowasm("run", str(p), "--max-steps", "10000", "-b", "reference", "-b", "wasmtime")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.count("status: budget-exhausted") == 2


def test_trap_is_reported_as_status(tmp_path):
    p = tmp_path / "div.wat"
    p.write_text(WAT_HEAD + '(func (export "compute") (call $out (i32.div_u (i32.const 1) (i32.const 0)))))')
    r = isowasm("run", str(p), "-b", "reference", "-b", "wasmtime")
    assert r.returncode == 0
    assert r.stdout.count("trapped (div_zero") == 2


def test_run_sudoku_prints_grid_halted_and_million_tokens():
    import yaml

    ex = {e["name"]: e for e in yaml.safe_load((EXAMPLES / "manifest.yaml").read_text())["programs"]}["sudoku"]
    r = isowasm("run", str(EXAMPLES / "sudoku.c"), "--input", ex["input"], "--trace", "digest")
    assert r.returncode == 0, r.stderr
    assert ex["expect_output"] in r.stdout
    status = [ln for ln in r.stdout.splitlines() if ln.startswith("[reference] status: halted")]
    assert status, r.stdout
    tokens = int(status[0].split(" tokens")[0].rsplit(", ", 1)[1].replace(",", ""))
    assert tokens >= 1_000_000


def test_compile_writes_a_program_file_that_runs(tmp_path):
    out = tmp_path / "hello.txt"
    c = isowasm("compile", str(EXAMPLES / "hello.c"), "-o", str(out))
    assert c.returncode == 0, c.stderr
    r = isowasm("run", str(out), "--trace", "text", "--trace-out", str(tmp_path / "ref.txt"))
    assert r.returncode == 0 and "Hello, world!" in r.stdout
    assert (tmp_path / "ref.txt").read_text().endswith("halt\n")
