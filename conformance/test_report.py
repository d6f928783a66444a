"""FINDINGS.md is generated, never hand-written: the committed file must be
exactly what `isowasm report` renders from the committed results
(findings/results/, refreshed only by `make findings`)."""

import json
from pathlib import Path

from isowasm import report
from isowasm.cli import main

REPO = Path(__file__).resolve().parents[1]
RECORDED = Path("findings/results")   # as `make findings` names it, from the root


def test_findings_match_recorded_results(monkeypatch):
    monkeypatch.chdir(REPO)
    findings = REPO / "FINDINGS.md"
    assert findings.exists(), "FINDINGS.md missing: run `make findings`"
    assert findings.read_text(encoding="utf-8") == report.render(RECORDED), (
        "FINDINGS.md is out of date with findings/results/*.json: run `make findings`")


def test_report_reads_and_writes_the_current_directory(tmp_path, monkeypatch):
    before = (REPO / "FINDINGS.md").read_bytes()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    src = REPO / "findings" / "results" / "verify.json"
    (tmp_path / "results" / "verify.json").write_text(src.read_text())
    assert main(["report"]) == 0
    text = (tmp_path / "FINDINGS.md").read_text()
    assert "from the recorded results in `results/`" in text
    verify = json.loads(src.read_text())
    assert all(b in text for b in verify["backends"])
    assert (tmp_path / "findings").is_dir()
    assert (REPO / "FINDINGS.md").read_bytes() == before   # the checkout is not the target


def test_report_without_results_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: results: no such results directory")


def test_every_torch_long_trace_file_is_rendered(tmp_path):
    """Each results/*.json of kind transformer_torch_long gets its own table,
    with the selection it was made with (a size range, a lower bound, or
    named cases); a failing row shows its failure."""
    import json

    from isowasm import report
    row = {"program": "compliance/x/y", "tokens": 5000, "positions": 2000, "first_position": 90,
           "last_position": 5088, "max_residual_error": 0.0, "min_margin": 1.0, "seconds": 3.0, "ok": True,
           "scores": 10 ** 9}
    base = {"kind": "transformer_torch_long", "time": 0, "cpus": 2, "seconds": 3.0, "cases": "all-over-70k",
            "positions_per_trace": 2000, "tail": 500, "seed": 0, "ok": True}
    (tmp_path / "transformer_torch_long.json").write_text(json.dumps(
        {**base, "min_tokens": 70000, "max_tokens": None, "rows": [{**row, "tokens": 80000}]}))
    (tmp_path / "transformer_torch_sampled.json").write_text(json.dumps(
        {**base, "min_tokens": 3000, "max_tokens": 70000, "ok": False,
         "rows": [row, {**row, "program": "compliance/x/z", "ok": False, "first_failure_text": "at 7: 'a' vs 'b'"}]}))
    (tmp_path / "other.json").write_text(json.dumps({"kind": "iso_equiv", "rows": []}))
    text = "\n".join(report._torch_long_section(tmp_path))
    assert text.count("## The PyTorch module on the long traces") == 1
    assert "(`transformer_torch_long.json`)" in text and "every trace over 70,000 tokens" in text
    assert "(`transformer_torch_sampled.json`)" in text and "every trace of 3,001 to 70,000 tokens" in text
    assert "| compliance/x/z | 5,000 | 2,000 | 90–5,088 | 0 | 1.0 | 3 | FAIL: at 7: 'a' vs 'b' |" in text
    assert "1 of 2 traces ok" in text and "1 of 1 traces ok" in text
