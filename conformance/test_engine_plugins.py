"""An engine of the public transformer-vm's kind, declared in YAML alone
(spec/PLUGINS.md): a token budget, a trace written to a file, an echo of the
program on stdout, a program file and a trace without the input section.
The stand-in (conformance/external/tvm_like_engine.py) speaks exactly those
conventions; no wrapper script sits between it and isowasm."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from isowasm.backends import get_backend
from isowasm.backends.external import cut_to_steps, strip_echo
from isowasm.runner import compare_case
from isowasm.spec.program import parse_program
from isowasm.spec.reference import run_reference
from isowasm.suites.compliance import build_case, load_cases

ENGINE = Path(__file__).resolve().parent / "external" / "tvm_like_engine.py"

DECL = """backends:
  tvm:
    command: [{py}, {engine}, model.bin, "{{program}}", "--max-gen={{max_tokens}}"{extra}]
    trace_file: "{{dir}}/{{stem}}_ref.txt"
    prompt_input: with_input_base
    trace_input: with_input_base
    timeout_s: 60
"""


@pytest.fixture
def declare(tmp_path, monkeypatch):
    def make(extra: str = ""):
        f = tmp_path / "isowasm-backends.yaml"
        f.write_text(DECL.format(py=sys.executable, engine=ENGINE, extra=extra))
        monkeypatch.setenv("ISOWASM_BACKENDS_FILE", str(f))
        return get_backend("tvm")
    return make


CASES = {c.id: c for c in load_cases()}
PICK = ["memory/globals-init-get-set", "memory/globals-separate-from-locals", "io/input-echo",
        "io/input-non-ascii-bytes", "io-integration/sum-of-integers", "arithmetic/" + next(
            c.name for c in CASES.values() if c.category == "arithmetic"),
        "limits/budget-exhausted-loop"]


@pytest.mark.parametrize("cid", PICK)
def test_yaml_declared_engine_agrees(declare, cid):
    tvm = declare()
    cc = CASES[cid]
    cmp = compare_case(build_case(cc), [get_backend("reference"), get_backend("wasmtime"), tvm],
                       max_steps=cc.max_steps)
    assert cmp.ok, cmp.report()
    ref, got = cmp.results["reference"], cmp.results["tvm"]
    assert (got.status, got.steps, got.tokens, got.digest) == (ref.status, ref.steps, ref.tokens, ref.digest)


def test_token_budget_is_cut_back_to_the_step_budget(declare):
    """The engine runs on to its token budget (past the step budget, into
    the middle of a step); isowasm keeps exactly max_steps steps."""
    tvm = declare()
    case = dataclasses.replace(build_case(CASES["limits/budget-exhausted-loop"]),
                               expect_output=None, expect_status=None)   # only the traces
    for steps in (1, 7, 50, 1001):
        cmp = compare_case(case, [get_backend("reference"), tvm], max_steps=steps)
        assert cmp.ok, cmp.report()
        assert cmp.results["tvm"].steps == steps


def test_engine_whose_global_get_reads_zero_is_caught_at_its_first_divergent_token(declare):
    bad = declare(extra=", --zero-global-get")
    cc = CASES["memory/globals-init-get-set"]
    cmp = compare_case(build_case(cc), [get_backend("reference"), get_backend("wasmtime"), bad],
                       max_steps=cc.max_steps)
    assert not cmp.ok and "tvm" in cmp.failed
    d = cmp.divergence
    assert d is not None and d.b == "tvm" and d.instruction.startswith("global.get"), cmp.report()
    assert d.step is not None and d.pc is not None and d.token_index >= 0


def test_cut_and_echo_helpers():
    prog = parse_program("{\ni32.const 05 00 00 00\ndrop 00 00 00 00\nbr fe ff ff ff\n}\n00 commit(+0,sts=0,bt=0)\n")
    full = run_reference(prog, max_steps=10, trace="text").trace
    three = run_reference(prog, max_steps=3, trace="text").trace
    assert cut_to_steps(prog, full, 3) == three
    assert cut_to_steps(prog, three, 10) == three            # shorter: unchanged
    echoed = "{\ni32.const 05 00 00 00\n}\n" + three          # another program's echo...
    with pytest.raises(Exception, match="echoed a different program"):
        strip_echo("x", prog, echoed)
    from isowasm.spec.program import format_instructions
    assert strip_echo("x", prog, format_instructions(prog) + three) == three


def test_unknown_declaration_key_is_one_line_error(tmp_path, monkeypatch):
    from isowasm.spec.errors import IsowasmError

    f = tmp_path / "isowasm-backends.yaml"
    f.write_text("backends:\n  x:\n    command: [true]\n    trace_fille: t.txt\n")
    monkeypatch.setenv("ISOWASM_BACKENDS_FILE", str(f))
    with pytest.raises(IsowasmError, match="unknown key\\(s\\) trace_fille"):
        get_backend("x")


@pytest.mark.parametrize("payload, byte", [(b"00 \xff commit", "0xff"), ("\u00e9t\u00e9".encode(), "0xc3")])
def test_plugin_printing_non_ascii_is_its_error_not_a_traceback(tmp_path, monkeypatch, payload, byte):
    import subprocess

    (tmp_path / "emit.py").write_bytes(b"import sys\nsys.stdout.buffer.write(" + repr(payload).encode() + b")\n")
    f = tmp_path / "isowasm-backends.yaml"
    f.write_text(f"backends:\n  noisy:\n    command: [{sys.executable}, emit.py, '{{program}}']\n")
    monkeypatch.setenv("ISOWASM_BACKENDS_FILE", str(f))
    cc = CASES["io/input-echo"]
    cmp = compare_case(build_case(cc), [get_backend("reference"), get_backend("noisy")], max_steps=cc.max_steps)
    assert not cmp.ok and "noisy" in cmp.failed
    assert f"its trace is not ASCII text: byte {byte} at offset" in cmp.report()
    wat = tmp_path / "p.wat"
    wat.write_text('(module (import "env" "output_byte" (func $out (param i32))) (memory 1)\n'
                   '(func (export "compute") (call $out (i32.const 65))))\n')
    p = subprocess.run([sys.executable, "-m", "isowasm.cli", "run", str(wat), "-b", "noisy"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "not ASCII text" in p.stderr


def test_fuzz_default_backends_are_what_its_help_says():
    from isowasm.backends import available_backends
    from isowasm.fuzz.campaign import build_parser, resolve_backends

    text = " ".join(build_parser().format_help().split())
    assert "every available one that is not heavy" in text
    avail = available_backends()
    assert resolve_backends(None) == [n for n, b in avail.items() if not isinstance(b, str) and not b.heavy]
