"""Machine programs (isowasm/fuzz/machine_programs.py) and machine coverage
(isowasm/fuzz/coverage.py): program files written directly, aimed at every
(op, operand class) cell, trap and status of the machine, including those no
compiled program reaches (addresses at the sign boundary, an empty stack,
4096 frames); every machine backend must agree with the reference on them,
trace for trace."""

from __future__ import annotations

from collections import Counter

import pytest

from conformance.conftest import assert_same_run, backend, backend_params
from isowasm.backends.base import Case
from isowasm.fuzz import coverage
from isowasm.fuzz.machine_programs import CELLS, ENDINGS, MachineGenerator, cell_name, shrink_program
from isowasm.spec import table
from isowasm.spec.program import format_program, parse_program
from isowasm.spec.reference import run_reference

BUDGET = 1_000_000
ROTATION = 200    # programs in which every cell's turn comes (measured: 200 reach all of them)


def _programs(n: int, seed: int = 0):
    g = MachineGenerator(seed)
    return [g.module(k) for k in range(n)]


def test_coverage_layout_is_the_machine_table():
    classes, ops, traps, statuses = coverage.layout()
    assert [o for o, _ in ops] == table.op_names() + ["input_base"]
    assert [p for _, p in ops][:-1] == [o["pops"] for o in table.ops()]
    assert traps == table.trap_names()
    assert classes == ["zero", "one", "sign", "max", "other"] and len(statuses) == 3


def test_programs_are_well_formed_deterministic_and_end_every_way():
    progs = _programs(len(ENDINGS) * 3)
    again = _programs(len(ENDINGS) * 3)
    assert [format_program(m.program) for m in progs] == [format_program(m.program) for m in again]
    ends = Counter()
    for m in progs:
        parse_program(format_program(m.program), m.program.source)   # the port's own parser agrees below
        r = run_reference(m.program, max_steps=BUDGET)
        ends[r.trap or r.status] += 1
        assert all(c in {cell_name(x) for x in CELLS} for c in m.cells)
    # every trap of the table, and halted
    assert set(ends) == set(table.trap_names()) | {"halted"}, ends


def test_machine_programs_reach_every_cell_of_the_machine():
    """The rotation aims at each cell in turn: 200 programs reach every cell
    but the step budget's (no program here runs to its budget)."""
    rust = backend("rust")
    cases = [Case(m.program.source, m.program) for m in _programs(ROTATION)]
    total: Counter = Counter()
    for r in rust.run_batch(cases, BUDGET, "digest", coverage=True):
        coverage.add(total, r.extra["coverage"])
    s = coverage.summary(total)
    assert s["missing"] == ["status budget_exhausted"], s["missing"]
    assert s["cells"] > 400


@pytest.mark.parametrize("name", backend_params(exclude=("reference",)))
def test_machine_programs_agree_with_the_reference(name):
    b = backend(name)
    heavy = getattr(b, "heavy", False)
    # the engine takes the short ones (stack_overflow pushes 65536 values: ~400K tokens)
    progs = [m for m in _programs(len(ENDINGS) * 2 if heavy else ROTATION, seed=5)
             if not (heavy and m.ending == "stack_overflow")]
    for m in progs:
        case = Case(m.program.source, m.program)
        ref = run_reference(m.program, max_steps=BUDGET, trace="digest")
        res = b.run(case, max_steps=BUDGET, trace="digest")
        assert res.digest is not None
        try:
            assert_same_run(res, ref)
        except AssertionError:
            pytest.fail(f"{name} differs from the reference on {m.program.source} (ending {m.ending}):\n"
                        f"{format_program(m.program)}")


def test_shrinking_a_machine_program_keeps_branches_valid():
    """The machine-program shrinker deletes instructions, re-aims branches
    and calls, and keeps the failure: here 'a run that halts and executes
    op X', a stand-in signature the reference evaluates."""
    m = next(m for m in _programs(40) if m.ending == "halt" and "call" in m.program.names)
    op = m.cells[len(m.cells) // 2].split()[0]
    want = f"runs {op}"

    def evaluate(cand):
        try:
            parse_program(format_program(cand.program), "shrink")
            r = run_reference(cand.program, max_steps=BUDGET, trace="text")
        except Exception as e:   # noqa: BLE001 - an invalid candidate is simply not kept
            return None, e
        ran = op in cand.program.names and r.status == "halted"
        return (want if ran else None), r

    small, _, tried = shrink_program(m, evaluate, want, seconds=30)
    assert tried > 0 and len(small.program) <= 6 < len(m.program), format_program(small.program)
    assert op in small.program.names and small.program.names[-1] in ("halt", "return")
    assert run_reference(small.program, max_steps=BUDGET).status == "halted"


def test_machine_campaign_finds_shrinks_and_files_a_planted_port_bug(tmp_path):
    """`isowasm fuzz --generator machine` with a plug-in whose i32.add drops
    its carry: found on a machine program, shrunk to a few instructions,
    written as a `lang: program` regression case that the regression suite
    loads and that fails on the broken plug-in only."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conformance.broken_backends import DroppedCarryBackend
    from conformance.test_regressions import run_regression
    from isowasm.backends import get_backend
    from isowasm.backends.reference import ReferenceBackend
    from isowasm.suites.compliance import load_file

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "ISOWASM_PLUGINS": "broken-add-carry=conformance.broken_backends:DroppedCarryBackend",
           "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "isowasm.cli", "fuzz", "--generator", "machine", "--no-probes",
                        "--programs", "32", "--workers", "1", "--time", "120s", "--shrink-seconds", "30",
                        "--backends", "reference,rust,broken-add-carry", "--out", str(tmp_path / "state"),
                        "--json", str(tmp_path / "fuzz.json"), "--regressions", str(tmp_path / "regs")],
                       capture_output=True, text=True, env=env, cwd=repo, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    f = next(f for f in doc["findings"] if f["signature"] == "trace:i32.add:broken-add-carry")
    assert f["shrunk"] and f["wat"].count("\n") <= 12, f["wat"]
    assert doc["machine_coverage"]["reached"] > 0 and doc["coverage_percent"] > 0
    cc = load_file(Path(f["regression"]))[0]
    assert cc.lang == "program" and cc.ground_truth == "machine"
    bad = run_regression(cc, DroppedCarryBackend(), others=("reference",))
    assert not bad.ok and bad.divergence.instruction.startswith("i32.add"), bad.report()
    assert run_regression(cc, get_backend("rust"), others=("reference",)).ok
    assert run_regression(cc, ReferenceBackend(), others=("reference", "wasmtime")).ok
