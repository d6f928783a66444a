"""The second program generator (issue 14): wasm-smith configured to the
machine's ABI (isowasm/fuzz/smith.py, ports/fuzz-native/).

(a) program k is a pure function of (seed, k): the same module every time,
    inside the toolchain's subset (the wasmparser filter), compiled by the
    toolchain, and its WAT (wasmprinter) compiles to the same program;
(b) the filter names what it rejects, and `allow=("i64",)` relaxes it;
(c) without the extension, `--generator wasm-smith` is a one-line error;
(d) a campaign records the generator, the filter's acceptance and the
    wasm-level coverage, and `isowasm report` renders them with the two
    generators compared (`isowasm fuzz generators`);
(e) a planted machine bug (a plug-in backend with one wrong op) is found by
    wasm-smith programs, shrunk at the wasm level to a small module with
    the same signature, and written as a regression case that
    `pytest conformance/test_regressions.py` runs (in a tmp directory);
(f) the wasm-level reducer on its own.

Every campaign writes into a tmp directory, never into the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

native = pytest.importorskip("isowasm_fuzz_native", reason="pip install ./ports/fuzz-native")

REPO = Path(__file__).resolve().parents[1]
PLANTED = "broken-add-carry=conformance.broken_backends:DroppedCarryBackend"


def _gen(seed=0, **kw):
    from isowasm.fuzz.smith import SmithGenerator
    return SmithGenerator(seed, kw or None)


def test_program_k_is_a_pure_function_of_seed_and_k_and_compiles():
    import wasmtime

    from isowasm.toolchain.frontend import compile_wasm

    a, b = _gen(5), _gen(5)
    ms = [a.module(k) for k in range(12)]
    assert [m.wasm for m in ms] == [b.module(k).wasm for k in range(12)]
    assert len({m.wasm for m in ms}) == 12
    assert _gen(6).module(3).wasm != ms[3].wasm
    for m in ms:
        assert not m.gave_up and m.tries >= 1
        assert native.check(m.wasm) is None
        prog = compile_wasm(m.wasm, "smith")
        # the regression case holds the WAT: it must compile to the same program
        again = compile_wasm(bytes(wasmtime.wat2wasm(m.wat)), "smith")
        assert (again.names, again.imms) == (prog.names, prog.imms)


def test_filter_names_the_construct_and_allow_i64_relaxes_it():
    import wasmtime

    def w(text):
        return bytes(wasmtime.wat2wasm(text))

    i64 = w('(module (func (export "compute") (drop (i64.add (i64.const 1) (i64.const 2)))))')
    assert native.check(i64) == "i64.const"
    assert native.category(native.check(i64)) == "i64"
    assert native.check(i64, ["i64"]) is None
    f32 = w('(module (func (export "compute") (drop (f32.const 1))))')
    assert native.category(native.check(f32)) == "float"
    tbl = w('(module (table 1 funcref) (func (export "compute")))')
    assert native.check(tbl) == "table"
    imp = w('(module (import "env" "other" (func)) (func (export "compute")))')
    assert native.check(imp) == "import env.other"
    assert native.check(w('(module (func (export "main")))')) == "no compute export"
    two = w('(module (func (export "compute") (param i32 i32)))')
    assert native.check(two) == "compute's signature"
    ok = w('(module (import "env" "output_byte" (func (param i32))) (memory 160)'
           ' (func (export "compute") (param i32) (call 0 (local.get 0))))')
    assert native.check(ok) is None
    with pytest.raises(ValueError, match="unknown construct"):
        native.check(ok, ["f32"])
    # relaxing the filter for i64 raises the acceptance rate of the generator
    strict = native.generate(0, 1, max_tries=5000)
    loose = native.generate(0, 1, max_tries=5000, allow=["i64"])
    assert loose["tries"] <= strict["tries"] and strict["rejected"].get("i64", 0) > 0


def test_without_the_extension_the_generator_is_a_one_line_error(tmp_path):
    code = ("import sys; sys.modules['isowasm_fuzz_native'] = None\n"
            "from isowasm.fuzz import cli_fuzz\n"
            f"sys.exit(cli_fuzz(['--generator', 'wasm-smith', '--out', {str(tmp_path / 's')!r}, "
            "'--backends', 'reference', '--time', '1s']))")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == ("error: wasm-smith generator needs isowasm_fuzz_native: "
                                "pip install ./ports/fuzz-native"), p.stderr
    # and the wasmi backend says the same of itself
    code = ("import sys; sys.modules['isowasm_fuzz_native'] = None\n"
            "from isowasm.backends import get_backend\n"
            "try:\n    get_backend('wasmi')\nexcept Exception as e:\n    print(e)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "wasmi backend needs isowasm_fuzz_native: pip install ./ports/fuzz-native" in p.stdout, p.stderr


def _campaign(tmp, *args, env=None):
    from isowasm.fuzz import cli_fuzz

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return cli_fuzz(["--out", str(tmp / "state"), "--json", str(tmp / "fuzz.json"),
                         "--regressions", str(tmp / "regressions"), "--status-every", "1000",
                         "--workers", "1", "--generator", "wasm-smith", *args])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_campaign_records_generator_filter_and_coverage_and_report_renders_them(tmp_path):
    rc = _campaign(tmp_path, "--time", "60s", "--programs", "64", "--no-probes", "--seed", "3",
                   "--backends", "reference,wasmtime,rust")
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 0, [f["signature"] for f in doc["findings"]]
    assert doc["generator"] == "wasm-smith" and doc["programs"] == 64
    assert doc["oracles"] == ["wasmtime", "wasmi"]
    flt = doc["filter"]
    assert flt["accepted"] == 64 and flt["tries"] >= 64 and 0 < flt["acceptance_percent"] <= 100
    assert "i64" not in flt["rejected"]   # the toolchain lowers i64: the default lets it through
    assert doc["op_coverage"]["i32.const"] > 0 and doc["coverage_percent"] > 50
    assert doc["wasm_coverage"] and doc["wasm_coverage_percent"] == doc["coverage_percent"]
    # resuming with the other generator is refused
    assert _campaign(tmp_path, "--time", "1s", "--no-probes", "--seed", "3",
                     "--backends", "reference,wasmtime,rust", "--generator", "hypothesis") == 2
    # the two generators compared: a recorded comparison, rendered by the report
    from isowasm.fuzz.campaign import cli_generators
    assert cli_generators(["--programs", "24", "--json", str(tmp_path / "fuzz-generators.json")]) == 0
    cmpd = json.loads((tmp_path / "fuzz-generators.json").read_text())
    assert set(cmpd["generators"]) == {"hypothesis", "wasm-smith"}
    assert set(cmpd["only"]) == {"hypothesis", "wasm-smith"}
    assert cmpd["generators"]["wasm-smith"]["filter"]["accepted"] == 24
    from isowasm import report
    text = report.render(tmp_path)
    assert "generator wasm-smith" in text and "filter acceptance" in text
    assert "## The two program generators" in text and "Only wasm-smith covers" in text


def test_planted_bug_is_found_shrunk_and_becomes_a_regression_that_pytest_runs(tmp_path):
    from isowasm.suites.compliance import load_file

    rc = _campaign(tmp_path, "--time", "120s", "--programs", "32", "--no-probes", "--seed", "0",
                   "--shrink-seconds", "20", "--backends", "reference,wasmtime,broken-add-carry",
                   env={"ISOWASM_PLUGINS": PLANTED})
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert rc == 1
    sigs = [f["signature"] for f in doc["findings"]]
    assert sigs == ["trace:i32.add:broken-add-carry"], sigs
    f = doc["findings"][0]
    assert f["shrunk"] and f["wat"].count("\n") <= 20 < f["lines_before"], (f["lines_before"], f["wat"])
    assert f["wat"].startswith("(module") and "diverge at token" in f["report"]
    regs = list((tmp_path / "regressions").glob("*.yaml"))
    assert len(regs) == 1
    cc = load_file(regs[0])[0]
    assert cc.source == f["wat"] and cc.lang == "wat" and cc.ground_truth == "wasmtime"

    # the case fails on the planted backend and passes on the reference...
    from conformance.broken_backends import DroppedCarryBackend
    from conformance.test_regressions import run_regression
    from isowasm.backends import get_backend
    from isowasm.backends.reference import ReferenceBackend

    get = {"reference": ReferenceBackend(), "wasmtime": get_backend("wasmtime")}.__getitem__
    bad = run_regression(cc, DroppedCarryBackend(), get=get)
    assert not bad.ok and bad.failed == {"broken-add-carry"}, bad.report()
    assert run_regression(cc, ReferenceBackend(), get=get).ok
    # ...and `pytest conformance/test_regressions.py` runs it on every available backend
    env = {**os.environ, "ISOWASM_REGRESSIONS_DIR": str(tmp_path / "regressions")}
    env.pop("ISOWASM_PLUGINS", None)
    p = subprocess.run([sys.executable, "-m", "pytest", "conformance/test_regressions.py", "-q",
                        "-p", "no:randomly", "-k", cc.name], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:]
    assert " passed" in p.stdout and "failed" not in p.stdout


def test_wasm_level_reducer_keeps_the_property_and_deletes_the_rest():
    import wasmtime

    wat = ('(module (import "env" "output_byte" (func $o (param i32))) (global $g (mut i32) (i32.const 0))'
           ' (func (export "compute") (local i32)'
           '  (local.set 0 (i32.mul (i32.const 3) (i32.const 5)))'
           '  (global.set $g (i32.add (global.get $g) (i32.const 9)))'
           '  (if (i32.eqz (local.get 0)) (then (call $o (i32.const 1))))'
           '  (call $o (i32.rem_u (i32.const 17) (i32.const 5)))'
           '  (drop (i32.xor (i32.const 1) (i32.const 2)))))')
    wasm = bytes(wasmtime.wat2wasm(wat))
    calls = []

    def keeps_rem_u(w):
        calls.append(1)
        return "i32.rem_u" in native.constructs(w)

    small, n, stopped = native.reduce(wasm, keeps_rem_u)
    assert stopped is None and n == len(calls) > 0
    assert len(small) < len(wasm) and native.check(small) is None
    left = set(native.constructs(small))
    assert "i32.rem_u" in left and not left & {"i32.mul", "i32.add", "i32.xor", "if"}, left

    # a predicate that raises stops it, keeping the best so far
    def stop_after_3(w):
        if len(calls) > 3:
            raise RuntimeError("deadline")
        calls.append(1)
        return keeps_rem_u(w)
    calls.clear()
    small2, _, stopped = native.reduce(wasm, stop_after_3)
    assert stopped == "RuntimeError: deadline" and len(small2) <= len(wasm)
