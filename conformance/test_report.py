"""FINDINGS.md is generated, never hand-written: the committed file must be
exactly what `isowasm report` renders from the committed results."""

from isowasm import report


def test_findings_match_recorded_results():
    assert report.FINDINGS.exists(), "FINDINGS.md missing: run `isowasm report`"
    assert report.FINDINGS.read_text(encoding="utf-8") == report.render(), (
        "FINDINGS.md is out of date with results/*.json: run `isowasm report`")
