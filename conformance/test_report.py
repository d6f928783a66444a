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
