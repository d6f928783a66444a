"""ci/precision_2d.py (issue 16, item 1): the float64 horizon of a 2-D
hardmax key, per `latest` lookup of the construction, and its report
section."""

from __future__ import annotations

import json

import pytest

from conformance.conftest import ci_script
from isowasm import report


@pytest.fixture(scope="module")
def p2d():
    return ci_script("precision_2d")


def test_exact_while_the_bits_fit(p2d):
    # 2*log2(K) + log2(N) <= 53: K = 2**16 addresses fit N = 2**21, not 2**22
    assert p2d.keys_exact(2 ** 16, 21)
    assert not p2d.keys_exact(2 ** 16, 22)
    assert p2d.exact_horizon(2 ** 16) == 21
    assert p2d.exact_horizon(2 ** 20) == 13
    # one address: the key is (0, eps*j), exact at every horizon tried
    assert p2d.exact_horizon(1) == p2d.MAX_LOG2_POSITIONS


def test_records_every_latest_head(p2d, tmp_path):
    out = tmp_path / "precision_2d.json"
    assert p2d.main(["--json", str(out)]) == 0
    d = json.loads(out.read_text())
    heads = {r["head"]: r for r in d["rows"]}
    assert set(heads) == {name for name, _ in p2d.latest_heads()}
    assert heads["mem_store"]["addresses"] == 10 * 2 ** 20
    # memory cannot be a 2-D key at the module's horizon; the stack nearly can
    assert heads["mem_store"]["exact_log2_positions"] < 10
    assert heads["stack0"]["exact_log2_positions"] == 21
    text = "\n".join(report._precision_2d_section(tmp_path))
    assert "## 2-D keys at isowasm's horizon" in text
    assert "| mem_store | 3 | 10,485,760 | 2^6 | no |" in text


def test_unknown_latest_head_is_a_usage_error(p2d, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(p2d, "latest_heads", lambda: [("scratchpad", 2)])
    assert p2d.main(["--json", str(tmp_path / "x.json")]) == 2
    assert "scratchpad" in capsys.readouterr().err
