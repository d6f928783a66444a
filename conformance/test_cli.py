"""The command line as a new user meets it: each malformed input gives one
line `error: ...` (exit 2) or an explicit status — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isowasm.suites.examples import EXAMPLES  # noqa: E402


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


# ---------------------------------------------------------------------------
# verify on the user's own programs; exit statuses; probes that once failed

OK_WAT = WAT_HEAD + '(func (export "compute") (call $out (i32.const 72)) (call $out (i32.const 200))))'
FOREVER_WAT = WAT_HEAD + '(func (export "compute") (loop $l (br $l))))'


def test_verify_a_user_program_agrees(tmp_path):
    p = tmp_path / "ok.wat"
    p.write_text(OK_WAT)
    r = isowasm("verify", str(p), "--backends", "reference,wasmtime,rust", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(str(p))][0]
    assert line.split()[1:4] == ["ok", "ok", "ok"] and line.endswith("agree")
    assert r.stdout.strip().endswith("VERIFY_OK")
    assert (tmp_path / "results" / "verify.json").exists()   # the user's directory


def test_verify_memory_limit_is_inconclusive_exit_3(tmp_path):
    # memory.grow past the machine's memory: wasmtime grows, the machine ends
    # with the resource trap memory_limit, so the verdict is inconclusive
    p = tmp_path / "grow.wat"
    p.write_text(WAT_HEAD.replace("(memory 160)", "(memory 1)")
                 + '(func (export "compute") (call $out (i32.add (i32.const 48) (memory.grow (i32.const 306))))))')
    r = isowasm("verify", str(p), "-b", "reference", "-b", "wasmtime", "--json", "", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "memory_limit" in r.stdout and r.stdout.strip().endswith("VERIFY_INCONCLUSIVE")
    assert not (tmp_path / "results").exists()   # --json '' records nothing


def test_verify_budget_is_inconclusive_exit_3(tmp_path):
    p = tmp_path / "forever.wat"
    p.write_text(FOREVER_WAT)
    r = isowasm("verify", str(p), "--backends", "reference,wasmtime,rust", "--max-steps", "20000",
                "--json", "")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "inconclusive" in r.stdout and r.stdout.strip().endswith("VERIFY_INCONCLUSIVE")


def test_default_budget_ends_an_infinite_loop(tmp_path):
    """No --max-steps: the budget is the slowest chosen backend's own default,
    so a program that never halts ends quickly and says budget-exhausted."""
    from isowasm.backends import default_budget, get_backend

    p = tmp_path / "forever.wat"
    p.write_text(FOREVER_WAT)
    r = isowasm("run", str(p), "-q")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "status: budget-exhausted" in r.stdout and "--max-steps" in r.stderr
    steps = default_budget([get_backend("reference")])
    assert f"{steps:,} steps" in r.stdout


def test_verify_program_file_against_its_module(tmp_path):
    """A program file made elsewhere, checked against its original module:
    equal output exits 0, a program file whose output differs exits 1."""
    src = tmp_path / "ok.wat"
    src.write_text(OK_WAT)
    from isowasm.toolchain import compile_file

    wasm, prog = compile_file(str(src))
    (tmp_path / "ok.wasm").write_bytes(wasm)
    c = isowasm("compile", str(src), "-o", str(tmp_path / "ok.txt"))
    assert c.returncode == 0, c.stderr
    good = isowasm("verify", str(tmp_path / "ok.txt"), "--module", str(tmp_path / "ok.wasm"),
                   "--backends", "reference,wasmtime", "--json", "")
    assert good.returncode == 0, good.stdout + good.stderr
    text = (tmp_path / "ok.txt").read_text()
    # a foreign compiler's mistake: the first constant 72 ('H') becomes 73 ('I')
    assert "i32.const 48 00 00 00" in text
    (tmp_path / "bad.txt").write_text(text.replace("i32.const 48 00 00 00", "i32.const 49 00 00 00", 1))
    bad = isowasm("verify", str(tmp_path / "bad.txt"), "--module", str(tmp_path / "ok.wasm"),
                  "--backends", "reference,wasmtime", "--json", "")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'output "I\\xc8"' in bad.stdout and 'wasmtime "H\\xc8"' in bad.stdout


def test_run_several_backends_compares_and_shows_bytes_exactly(tmp_path):
    p = tmp_path / "ok.wat"
    p.write_text(OK_WAT)
    r = isowasm("run", str(p), "-b", "reference,wasmtime")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('output: "H\\xc8"') == 2 and "all backends agree" in r.stdout


def test_run_several_backends_exits_1_on_disagreement(tmp_path):
    p = tmp_path / "grow.wat"
    p.write_text(WAT_HEAD.replace("(memory 160)", "(memory 1)")
                 + '(func (export "compute") (call $out (i32.add (i32.const 48) (memory.grow (i32.const 1))))'
                   ' (call $out (i32.const 10))))')
    # agreeing case first: growing within the machine's memory
    r = isowasm("run", str(p), "-b", "reference", "-b", "wasmtime")
    assert r.returncode == 0, r.stdout
    plugin = tmp_path / "liar.py"
    plugin.write_text(
        "import sys\n"
        "from isowasm.spec.program import load_program\n"
        "from isowasm.spec.reference import run_reference\n"
        "r = run_reference(load_program(sys.argv[1]), max_steps=int(sys.argv[2]), trace='text')\n"
        "sys.stdout.write(r.trace.replace('out(1)', 'out(2)'))\n")
    (tmp_path / "isowasm-backends.yaml").write_text(
        f"backends:\n  liar:\n    command: [{sys.executable}, {plugin}, '{{program}}', '{{max_steps}}']\n")
    r = isowasm("run", str(p), "-b", "reference,wasmtime,liar", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "traces diverge at token" in r.stdout and "liar" in r.stdout


def _fails_with(p, code, *fragments):
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["run", "{ok}", "--trace-out", "x.txt"], ("--trace-out", "--trace text")),
    (["run", "{ok}", "--max-steps", "0"], ("--max-steps 0", "positive")),
    (["verify", "{ok}", "--max-steps", "-5"], ("--max-steps -5", "positive")),
    (["run", "{ok}", "--input", "a", "--input-file", "{ok}"], ("--input", "not both")),
    (["run", "{ok}", "--bogus"], ("unrecognized arguments: --bogus",)),
    (["run", "{ok}", "-b", "nosuch"], ("unknown backend 'nosuch'",)),
    (["verify", "{ok}", "--module", "{ok}"], ("--module", "only for a program file")),
    (["fuzz", "--max-steps", "0", "--time", "1s"], ("--max-steps 0",)),
    (["fuzz", "--time", "forever"], ("bad duration",)),
    (["iso-equiv", "--suites", "nosuch"], ("unknown suite",)),
    (["report", "--results", "nowhere"], ("nowhere: no such results directory",)),
])
def test_usage_errors_are_one_line(tmp_path, args, fragments):
    ok = tmp_path / "ok.wat"
    ok.write_text(OK_WAT)
    _fails_with(isowasm(*[a.replace("{ok}", str(ok)) for a in args], cwd=tmp_path), 2, *fragments)


def test_garbage_wasm_error_is_whole(tmp_path):
    p = tmp_path / "garbage.wasm"
    p.write_bytes(b"\x00\x01asm" + bytes(range(40)))
    r = isowasm("run", str(p))
    _fails_with(r, 2, "garbage.wasm", "magic", "actual=")
    assert r.stderr.strip().endswith(")"), r.stderr   # the message is not cut at a newline


def test_broken_pipe_is_one_line(tmp_path):
    p = tmp_path / "many.wat"
    p.write_text(WAT_HEAD + '(func (export "compute") (local i32) (loop $l (call $out (i32.const 65)) '
                 '(local.set 0 (i32.add (local.get 0) (i32.const 1))) '
                 '(br_if $l (i32.lt_u (local.get 0) (i32.const 300000))))))')
    proc = subprocess.Popen([sys.executable, "-m", "isowasm.cli", "run", str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(5)
    proc.stdout.close()          # the reader goes away, as `| head -c 5` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["error: standard output was closed before the run finished (broken pipe)"]


def test_progress_off_a_terminal_when_asked(tmp_path):
    p = tmp_path / "forever.wat"
    p.write_text(FOREVER_WAT)
    r = isowasm("run", str(p), "-q", "--progress", "--max-steps", "10000000")
    assert r.returncode == 3
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[reference]")]
    assert lines and all("\r" not in ln and "steps" in ln for ln in lines), r.stderr
