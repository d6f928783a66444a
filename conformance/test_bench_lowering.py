"""ci/bench_lowering.py (issue 13): the JSON it records, on a small subset of
ops and examples, and the report section `isowasm report` renders from it
beside the public transformer-vm's figures."""

from __future__ import annotations

import json

import pytest

from conformance.conftest import ci_script


@pytest.fixture(scope="module")
def bench():
    return ci_script("bench_lowering")


@pytest.fixture(scope="module")
def doc(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench_lowering.json"
    assert bench.main(["--ops", "i32.mul", "i32.shr_u", "i64.add", "i64.clz", "i32.wrap_i64",
                       "--examples", "hello", "addition", "--json", str(out)]) == 0
    return json.loads(out.read_text()), out


def test_json_shape(doc):
    d, _ = doc
    assert d["kind"] == "bench_lowering" and d["memory_pages"] == 160 and d["time"] > 0
    forms = {(r["op"], r["form"]) for r in d["ops"]}
    # binary ops have both forms, unary ones only run-time operands
    assert forms == {("i32.mul", "runtime"), ("i32.mul", "const"), ("i32.shr_u", "runtime"),
                     ("i32.shr_u", "const"), ("i64.add", "runtime"), ("i64.add", "const"),
                     ("i64.clz", "runtime"), ("i32.wrap_i64", "runtime")}
    for r in d["ops"]:
        assert set(r) >= {"op", "type", "form", "pairs", "best", "median", "worst", "worst_operands"}
        assert 0 <= r["best"] <= r["median"] <= r["worst"] and r["pairs"] > 0
    row = {(r["op"], r["form"]): r for r in d["ops"]}
    assert row[("i64.add", "runtime")]["best"] == row[("i64.add", "runtime")]["worst"]   # branch-free
    assert row[("i32.wrap_i64", "runtime")]["worst"] == 1                                # a drop
    assert row[("i32.shr_u", "const")]["worst"] < row[("i32.shr_u", "runtime")]["worst"]
    names = [(e["name"], e["module"]) for e in d["examples"]]
    assert names == [("hello", "default"), ("addition", "default")]
    for e in d["examples"]:
        assert e["status"] == "halted" and e["output_ok"] and e["steps"] > 0 and e["tokens"] > e["steps"]


def test_costs_are_the_ops_own(bench):
    """The accounting: an i32.add costs 1 step with run-time operands, 2
    with a constant (the i32.const the op absorbs is still a step)."""
    rows = {r["form"]: r for r in bench.measure_op("i32.add")}
    assert (rows["runtime"]["best"], rows["runtime"]["worst"]) == (1, 1)
    assert (rows["const"]["best"], rows["const"]["worst"]) == (2, 2)


def test_report_renders_the_section(doc):
    from isowasm import report
    _, path = doc
    text = report.render(path.parent)
    assert "## What the lowering costs" in text
    sec = text[text.index("## What the lowering costs"):]
    for fig in ("214,617", "243,756", "1,210,207", "1,602,421", "199,817", "210,732", "465,388"):
        assert fig in sec
    assert "| i32.mul |" in sec and "| hello | default |" in sec


def test_report_without_the_json_has_no_section(tmp_path):
    from isowasm import report
    assert "What the lowering costs" not in report.render(tmp_path)


def test_baseline_is_measured_on_that_commit_and_rendered(bench, tmp_path):
    """--baseline REV measures the examples with that commit's toolchain in a
    worktree of its own (here HEAD: the committed toolchain) and the report
    shows both; an unknown revision is a one-line error."""
    from isowasm import report
    out = tmp_path / "bench_lowering.json"
    assert bench.main(["--ops", "i32.add", "--examples", "hello", "--baseline", "HEAD", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    b = d["baseline"]
    assert b["rev"] == "HEAD" and len(b["commit"]) == 40
    assert [(e["name"], e["module"]) for e in b["examples"]] == [("hello", "default")]
    assert b["examples"][0]["status"] == "halted" and b["examples"][0]["output_ok"]
    sec = report.render(tmp_path)
    assert f"steps at {b['commit'][:7]}" in sec and f"`--baseline HEAD`" in sec
    with pytest.raises(SystemExit, match="not a commit"):
        bench.main(["--ops", "i32.add", "--examples", "hello", "--baseline", "no-such-rev", "--json", ""])
