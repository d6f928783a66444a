"""The compliance suite: 179 small programs in 14 categories
(isowasm/suites/data/compliance/*.yaml, loaded by isowasm/suites/compliance.py), each
run on every available backend and compared with the reference executor,
wasmtime and the case's own expectation; the expectations themselves are
checked against wasmtime; and two deliberately broken backends
(conformance/broken_backends.py) must be caught by it.
"""

from __future__ import annotations

import collections

import pytest
import yaml

from conformance.broken_backends import DOUBLES
from isowasm.suites.compliance import CATEGORIES, CaseFileError, build_case, load_cases, load_file
from conformance.conftest import backend, backend_params
from isowasm.runner import compare_case
from isowasm.spec.result import BUDGET

CASES = load_cases()
_IDS = [cc.id for cc in CASES]


class _Memo:
    """A backend whose digest-mode results are kept for the worker's session,
    so that every backend's test of a case compares against the same
    reference and wasmtime runs, made once. A kept run that halted or trapped
    within a later call's budget is that call's result too (a budget it did
    not reach changes nothing). Text-mode runs (the runner's localising
    re-runs) are not kept."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.traces, self.needs_wasm = inner.name, inner.traces, inner.needs_wasm
        self.runs: dict = {}

    def run(self, case, *, max_steps, trace="none"):
        if trace == "text":
            return self.inner.run(case, max_steps=max_steps, trace=trace)
        kept = self.runs.get((case.name, trace))
        if kept is not None and (kept[0] == max_steps or (
                kept[1].status != BUDGET and (kept[1].steps or 0) <= max_steps)):
            return kept[1]
        res = self.inner.run(case, max_steps=max_steps, trace=trace)
        self.runs[(case.name, trace)] = (max_steps, res)
        return res


_MEMO: dict[str, _Memo] = {}


def _oracles() -> list[_Memo]:
    if not _MEMO:
        _MEMO.update((n, _Memo(backend(n))) for n in ("reference", "wasmtime"))
    return list(_MEMO.values())


def _compare(cc, b, max_steps=None):
    """`cc` on backend `b`, the reference executor and wasmtime, compared
    (digests, then a traced re-run to localise a divergence)."""
    oracles = _oracles()
    runs = [_MEMO.get(b.name, b)] + [o for o in oracles if o.name != b.name]
    return compare_case(build_case(cc), runs, max_steps=max_steps or cc.max_steps, trace="digest")


@pytest.mark.parametrize("backend_name", backend_params(traces_only=False))
@pytest.mark.parametrize("cc", CASES, ids=_IDS)
def test_compliance(cc, backend_name):
    b = backend(backend_name)
    limit = getattr(b, "max_tokens", None)
    if limit:
        n = _oracles()[0].run(build_case(cc), max_steps=cc.max_steps, trace="digest").tokens
        if n > limit:
            pytest.skip(f"{b.name}: {n} tokens > its limit of {limit} here ({b.max_tokens_why})")
    cmp = _compare(cc, b)
    assert cmp.ok, cmp.report()


@pytest.mark.parametrize("cc", CASES, ids=_IDS)
def test_expectations_match_wasmtime(cc):
    """Every expectation is wasmtime's verdict. Where wasmtime differs from
    the machine by design (ground_truth: machine), it is the reference
    executor's instead, and wasmtime's output must still begin with it (the
    machine stopped early, on a resource limit or the step budget)."""
    case = build_case(cc)
    truth = backend("wasmtime").run(case, max_steps=cc.max_steps)
    if cc.ground_truth == "machine":
        ref = backend("reference").run(case, max_steps=cc.max_steps)
        assert cc.matches(ref), cc.describe(ref)
        assert truth.output.startswith(cc.expect_output), cc.describe(truth)
    else:
        assert cc.matches(truth), cc.describe(truth)


def test_suite_shape():
    counts = collections.Counter(cc.category for cc in CASES)
    assert dict(counts) == CATEGORIES
    assert sum(CATEGORIES.values()) == 179 == len(CASES)
    names = [cc.name for cc in CASES]
    assert len(set(names)) == len(names)
    assert {cc.lang for cc in CASES} == {"wat", "c"}
    # every status class is exercised: halting, every reachable trap, the budget
    statuses = {cc.expect_status for cc in CASES}
    for s in ("halted", "budget-exhausted", "trapped:oob", "trapped:div_zero", "trapped:int_overflow",
              "trapped:unreachable", "trapped:call_depth", "trapped:stack_overflow", "trapped:memory_limit"):
        assert s in statuses, s


_GOOD = {
    "name": "tiny", "lang": "wat", "input": "", "expect_output": "", "expect_status": "halted",
    "source": "(module (func (export \"compute\")))\n",
}


_MALFORMED = [
    ({"name": "Not_Kebab"}, "kebab-case"),
    ({"lang": "rust"}, "lang 'rust'"),
    ({"expect_status": "trapped:bogus"}, "expect_status 'trapped:bogus'"),
    ({"expect_status": "trapped:call_depth"}, "ground_truth must be machine"),
    ({"ground_truth": "machine", "note": "x"}, "ground_truth must be wasmtime"),
    ({"expect_output": "\u20ac"}, "above U+00FF"),
    ({"input": "a\x00b"}, "contains NUL"),
    ({"max_steps": 0}, "max_steps"),
    ({"colour": "red"}, "unknown field(s) colour"),
    ({"source": None}, "source must be non-empty"),
]


@pytest.mark.parametrize("change, message", _MALFORMED, ids=[m for _, m in _MALFORMED])
def test_loader_rejects_malformed_cases(tmp_path, change, message):
    raw = {**_GOOD, **change}
    path = tmp_path / "loops.yaml"
    path.write_text(yaml.safe_dump({"category": "loops", "cases": [raw]}))
    with pytest.raises(CaseFileError) as e:
        load_file(path)
    text = str(e.value)
    assert "\n" not in text and text.startswith("loops.yaml: case ") and message in text, text


def test_loader_rejects_duplicates_and_strays(tmp_path):
    case = yaml.safe_dump({"category": "loops", "cases": [_GOOD, _GOOD]})
    (tmp_path / "loops.yaml").write_text(case)
    with pytest.raises(CaseFileError, match=r"loops.yaml: case 'tiny': name already used in loops.yaml"):
        load_cases(tmp_path)
    (tmp_path / "loops.yaml").write_text(yaml.safe_dump({"category": "calls", "cases": [_GOOD]}))
    with pytest.raises(CaseFileError, match="does not match the file name"):
        load_cases(tmp_path)
    (tmp_path / "loops.yaml").unlink()
    (tmp_path / "misc.yaml").write_text(case)
    with pytest.raises(CaseFileError, match="misc.yaml: not a compliance category"):
        load_cases(tmp_path)


@pytest.mark.parametrize("double", DOUBLES, ids=lambda d: d.name)
def test_broken_backend_is_caught(double):
    """The whole suite run on a backend with one broken op: some cases fail,
    and every failure's report points at the broken op and its first
    divergent token."""
    b = double()
    failures = []
    # the i64 cases lower to the same machine ops in long runs (up to ~500K
    # tokens each on a Python double): the other categories reach every op
    for cc in (c for c in CASES if c.category != "i64"):
        # The budget is the reference's own step count (+1): a trace equal to
        # the reference's up to there ends as the reference's does, so the
        # verdict is the same as at the case's full budget, and a double that
        # loops where the reference halts stops early.
        steps = _oracles()[0].run(build_case(cc), max_steps=cc.max_steps, trace="digest").steps
        cmp = _compare(cc, b, max_steps=min(cc.max_steps, steps + 1))
        if not cmp.ok:
            failures.append(cmp)
    assert failures, f"{b.name}: the compliance suite did not notice the broken {'/'.join(b.broken_ops)}"
    for cmp in failures:
        assert cmp.failed == {b.name}, cmp.report()   # the double is blamed, not an oracle
        div = cmp.divergence
        assert div is not None, cmp.report()
        assert div.instruction.split()[0] in b.broken_ops, cmp.report()
        report = cmp.report()
        assert div.instruction in report and repr(div.token_a) in report and repr(div.token_b) in report, report
