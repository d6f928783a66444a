"""The mutation-testing job (ci/mutation.py, ci/mutation_ops.py): its
mutators (Python AST, OCaml tokens, cargo-mutants' diffs), its equivalence
judgements, one real run on a tiny slice of the reference executor (a
known-killable mutant must be killed; the JSON has the documented shape),
and the "Mutation testing" section `isowasm report` renders from it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CI = REPO / "ci"
if not (CI / "mutation.py").exists():  # an installed isowasm without its checkout
    pytest.skip("ci/mutation.py needs an isowasm checkout", allow_module_level=True)
sys.path.insert(0, str(CI))

import mutation  # noqa: E402
import mutation_ops as ops  # noqa: E402

from isowasm import report  # noqa: E402

PY_SNIPPET = '''\
"""Docstring: 1 + 2 < 3."""
LIMIT = 0x10


def f(a: int, b: int = 1) -> int:
    """Also untouched: a and b."""
    x = a + b * 2
    x += 1
    if x >= LIMIT and not a:
        return -x
    label = f"{a + 1}"
    if a > 3:  # pragma: no cover
        raise AssertionError(a - 1)
    return x ^ 0xFF if a in (1, 2) else False
'''


def test_python_mutator_operators_and_exclusions(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(PY_SNIPPET)
    ms = ops.python_mutants(p, "m.py")
    got = {(m.operator, m.original, m.replacement) for m in ms}
    for want in [("binop", "+", "-"), ("binop", "*", "//"), ("binop", "^", "|"), ("augassign", "+=", "-="),
                 ("compare", ">=", ">"), ("compare", "in", "not in"), ("boolop", "and", "or"),
                 ("constant", "0x10", "0x11"), ("constant", "0xFF", "0x100"), ("constant", "1", "0"),
                 ("constant", "False", "True"), ("unary", "not ", ""), ("unary", "-", ""),
                 ("return", "-x", "None"), ("delete", "x += 1", "pass")]:
        assert want in got, want
    text = PY_SNIPPET
    lines = text.splitlines()
    for m in ms:
        new = m.apply(text)
        compile(new, "m.py", "exec")                       # every mutant is valid Python
        assert m.diff.startswith("--- a/m.py\n+++ b/m.py\n@@ ")
        assert m.original_line == lines[m.line - 1].strip()
        # docstrings, f-strings, annotations and `pragma: no cover` lines are left alone
        assert m.line not in (1, 6, 12, 13), m
        assert m.line != 11 or m.operator == "delete", m          # the f-string's inside is not code
        assert m.line != 5 or m.operator == "constant", m         # the default value, not the annotations
    assert len({m.apply(text) for m in ms}) == len(ms)      # no two mutants give the same text
    assert ast.dump(ast.parse(text)) == ast.dump(ast.parse(PY_SNIPPET))


ML_SNIPPET = '''\
(* a comment: 1 + 2 = 3 && (* nested *) x land y *)
type t = { mutable sp : int; tbl : int * int }

let[@inline] wrap x = x land 0xFFFFFFFF

let step m =
  let s = "a + b = c" and c = 'x' in
  m.arr <- [||];
  let r = { m with sp = m.sp + 1 } in
  if m.sp >= 16 && c <> 'y' then r.sp lsl 2 else Int32.add 1l (Int32.of_int (String.length s))
'''


def test_ocaml_mutator_tokens_and_exclusions(tmp_path):
    p = tmp_path / "m.ml"
    p.write_text(ML_SNIPPET)
    ms = ops.ocaml_mutants(p, "m.ml")
    got = {(m.line, m.original, m.replacement) for m in ms}
    for want in [(4, "land", "lor"), (4, "0xFFFFFFFF", "0x100000000"), (9, "+", "-"), (9, "1", "0"),
                 (10, ">=", ">"), (10, "16", "17"), (10, "&&", "||"), (10, "<>", "="), (10, "lsl", "lsr"),
                 (10, "add", "sub"), (10, "1l", "0l")]:
        assert want in got, want
    assert any(m.operator == "if-condition" and m.replacement == "not (m.sp >= 16 && c <> 'y')" for m in ms)
    lines = {m.line for m in ms}
    assert not lines & {1, 2, 7}, sorted(lines)            # comments, type declarations, strings and chars
    assert not any(m.original == "=" for m in ms)          # let/and bindings and record fields bind
    assert not any(m.line == 8 for m in ms)                # [||] is an empty array, not ||


def test_unified_diff_round_trip():
    text = "a\nb\nc\nd\ne\n"
    diff = "--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n b\n-c\n+C /* ~ changed by cargo-mutants ~ */\n d\n"
    assert ops.apply_unified_diff(text, diff) == "a\nb\nC /* ~ changed by cargo-mutants ~ */\nd\ne\n"
    with pytest.raises(ValueError):
        ops.apply_unified_diff("a\nx\nc\nd\n", diff)


def test_equivalence_judgements_match_by_source_lines():
    entries = [{"file": "spec/x.py", "original": "if a  <  b:", "mutated": "if a <= b:", "reason": "r1"},
               {"file": "spec/x.py", "original": "y = 1", "mutated": "y = 2", "line": 7, "reason": "r2"}]
    m = {"file": "spec/x.py", "line": 40, "original_line": "if a < b:", "mutated_line": "if a <= b:"}
    assert mutation.judged_equivalent(m, entries)["reason"] == "r1"
    m2 = {"file": "spec/x.py", "line": 8, "original_line": "y = 1", "mutated_line": "y = 2"}
    assert mutation.judged_equivalent(m2, entries) is None            # the entry names line 7
    assert mutation.judged_equivalent({**m2, "line": 7}, entries)["reason"] == "r2"
    assert mutation.judged_equivalent({**m, "file": "spec/y.py"}, entries) is None
    anything = [{"file": "spec/x.py", "original": "if a < b:", "mutated": "*", "reason": "r3"}]
    assert mutation.judged_equivalent({**m, "mutated_line": "if a >= b:"}, anything)["reason"] == "r3"
    # the tracked judgements parse, and each says why
    for e in mutation.load_equivalent():
        assert e["reason"].strip() and e["file"] and (REPO / e["file"]).exists(), e


def test_sampling_and_shards_are_deterministic_and_partition():
    ms = [ops.Mutant(f"f{i % 3}.py", i, 1, "binop", "+", "-", i, i + 1) for i in range(50)]
    a = mutation.select(ms, "reference", 3, 20, (0, 1), None)
    assert [m.id for m in a] == [m.id for m in mutation.select(ms, "reference", 3, 20, (0, 1), None)]
    assert len(a) == 20 and len({m.id for m in a}) == 20
    shards = [mutation.select(ms, "reference", 3, 20, (i, 3), None) for i in range(3)]
    assert sorted(m.id for s in shards for m in s) == sorted(m.id for m in a)
    assert [m.id for m in mutation.select(ms, "reference", 4, 20, (0, 1), None)] != [m.id for m in a]


def _run_job(tmp_path, *args, timeout=240):
    proc = subprocess.run([sys.executable, str(CI / "mutation.py"), "--out", str(tmp_path / "out"),
                           "--scratch", str(tmp_path / "scratch"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    return proc


def test_a_tiny_run_kills_a_known_killable_mutant(tmp_path):
    """The mutants of the reference executor's add/sub lines (six), the quick
    stage only, time-boxed: `(a + b) & M32` -> `(a - b) & M32` must be killed (the
    Rust port's tests compare it with the reference), the JSON has its
    documented shape, and the scratch copy is gone afterwards."""
    proc = _run_job(tmp_path, "--component", "reference", "--match", r"spec/reference\.py:\d+: v = \(a [-+] b\)",
                    "--seed", "0", "--time-box", "60",
                    "--stages", "port tests (vs the reference)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = json.loads((tmp_path / "out" / "reference.json").read_text())
    assert d["kind"] == "mutation" and d["component"] == "reference" and d["error"] is None
    assert d["generated"] > 500 and 2 <= d["selected"] <= 8 and d["shard"] == "0/1" and d["seed"] == 0
    assert [s["name"] for s in d["stages"]] == ["port tests (vs the reference)"]
    imports = d["baseline"]["imports"]
    assert all(str(tmp_path / "scratch") in f for f in imports.values()), imports   # the copy, not the checkout
    c = d["counts"]
    assert c["killed"] + c["timeout"] + c["survived"] + c["unviable"] + c["not_run"] == d["selected"]
    for m in d["mutants"]:
        assert {"id", "file", "line", "operator", "original_line", "mutated_line", "diff", "status", "seconds"} <= set(m)
        assert m["status"] in ("killed", "timeout", "survived", "unviable") and m["file"] == "spec/reference.py"
        if m["status"] == "survived":
            assert isinstance(m["equivalent"], bool) and "equivalent_reason" in m
    add = [m for m in d["mutants"] if m["original_line"] == "v = (a + b) & M32" and m["replacement"] == "-"]
    assert add, [m["id"] for m in d["mutants"]]
    assert add[0]["status"] == "killed" and add[0]["by"].startswith("port tests"), add[0]
    assert d["score"] == mutation.score(c)
    assert not any((tmp_path / "scratch").iterdir())
    # the report renders it: score row and, for any survivor, its diff
    text = report.render(tmp_path / "out")
    assert "## Mutation testing" in text and "| reference |" in text


def test_list_and_usage_errors(tmp_path):
    proc = _run_job(tmp_path, "--component", "ocaml-port", "--list", "--max-mutants", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ports/ocaml/lib/") == 3 and " => " in proc.stdout
    assert not (tmp_path / "out").exists()
    bad = _run_job(tmp_path, "--component", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown component")
    bad = _run_job(tmp_path, "--shard", "3/3")
    assert bad.returncode == 2 and "not a shard" in bad.stderr


def _fake(component, shard, mutants, **kw):
    return {"kind": "mutation", "component": component, "summary": "s", "tool": "t", "time": 1.7e9,
            "seed": 0, "shard": shard, "max_mutants": None, "cpus": 2, "generated": 10,
            "selected": len(mutants) + kw.pop("not_run", 0), "seconds": 5.0, "error": None,
            "stopped_by_time_box": False, "mutants": mutants, **kw}


def _mut(i, status, **kw):
    return {"id": f"a.py:{i}:1:binop:{i:08x}", "file": "a.py", "line": i, "operator": "binop",
            "original_line": "x = a + b", "mutated_line": "x = a - b", "status": status,
            "diff": f"--- a/a.py\n+++ b/a.py\n@@ -{i},1 +{i},1 @@\n-x = a + b\n+x = a - b\n", **kw}


def test_report_section_merges_shards_and_lists_every_survivor(tmp_path):
    d = tmp_path / "results" / "mutation"
    d.mkdir(parents=True)
    (d / "reference.shard-0-of-2.json").write_text(json.dumps(_fake("reference", "0/2", [
        _mut(1, "killed"), _mut(2, "survived", equivalent=True, equivalent_reason="only reorders a sum"),
        _mut(3, "unviable")])))
    (d / "reference.shard-1-of-2.json").write_text(json.dumps(_fake("reference", "1/2", [
        _mut(4, "timeout"), _mut(5, "survived", equivalent=False, equivalent_reason=None)], not_run=2)))
    (d / "ocaml-port.json").write_text(json.dumps(_fake("ocaml-port", "0/1", [], error="baseline failed\nx")))
    text = report.render(tmp_path / "results")
    sec = text[text.index("## Mutation testing"):]
    row = next(ln for ln in sec.splitlines() if ln.startswith("| reference |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # mutants, sampled, run, killed (incl. timeout), timeout, survived, equivalent, unviable, not run, score
    assert cells[2:12] == ["10", "7", "5", "2", "1", "2", "1", "1", "2", "66.7 %"], cells
    assert "judged equivalent: only reorders a sum" in sec and "**not judged equivalent**" in sec
    assert sec.count("```diff") == 2 and "+x = a - b" in sec and "2 shard(s)" in sec
    assert "Error: baseline failed" in sec
    assert report.render(tmp_path / "results") == text          # deterministic
    # a later re-run of chosen mutants (--match) replaces their results, and is said
    (d / "reference.rerun.json").write_text(json.dumps(_fake("reference", "0/1", [
        _mut(5, "killed", by="new test")], match="a.py:5", time=1.8e9)))
    sec = report.render(tmp_path / "results")
    row = next(ln for ln in sec.splitlines() if ln.startswith("| reference |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:12] == ["10", "7", "5", "3", "1", "1", "1", "1", "2", "100.0 %"], cells
    assert "1 mutant(s) re-run later" in sec and "**not judged equivalent**" not in sec
    assert "## Mutation testing" not in report.render(tmp_path / "nothing")
