"""A finding as a regression case: the shrunk program in the compliance
suite's YAML format, its expectation from wasmtime (or from the reference
where wasmtime cannot judge), written atomically and checked to load back."""

from __future__ import annotations

import json
from pathlib import Path

from isowasm.atomic import atomic_write
from isowasm.fuzz.oracles import slug
from isowasm.runner import _by_design


def _yaml_str(s: str) -> str:
    # a JSON string is a valid YAML double-quoted scalar
    return json.dumps(s, ensure_ascii=True)


def regression_yaml(name: str, signature: str, wat: str, expect_output: bytes,
                    expect_status: str, ground_truth: str, max_steps: int, note: str,
                    lang: str = "wat", input: bytes = b"") -> str:
    src = "".join("      " + ln + "\n" if ln.strip() else "\n" for ln in wat.rstrip("\n").split("\n"))
    lines = [
        f"category: {name}",
        f"description: {_yaml_str('isowasm fuzz finding ' + signature)}",
        "cases:",
        f"  - name: {name}",
        f"    lang: {lang}",
        f"    input: {_yaml_str(input.decode('latin-1'))}",
        f"    expect_output: {_yaml_str(expect_output.decode('latin-1'))}",
        f"    expect_status: {expect_status}",
        f"    max_steps: {max_steps}",
        f"    ground_truth: {ground_truth}",
        f"    note: {_yaml_str(note)}",
        "    source: |",
    ]
    return "\n".join(lines) + "\n" + src


def expectation(cmp) -> tuple[bytes, str, str, str]:
    """(expect_output, expect_status, ground_truth, why) of a regression case:
    wasmtime's verdict, or the reference's where wasmtime cannot judge
    (resource traps, budget) or did not run."""
    from isowasm.runner import _inconclusive_status, expected_status
    from isowasm.spec import table

    truth = cmp.results.get("wasmtime")
    traps = set(table.trap_names())
    if truth is not None and not _inconclusive_status(truth) and (
            truth.status != "trapped" or truth.trap in traps):
        return truth.output, expected_status(truth), "wasmtime", "expectation from wasmtime"
    ref = cmp.results.get("reference")
    if ref is not None:
        return ref.output, expected_status(ref), "machine", (
            "expectation from the reference executor (wasmtime did not run or cannot judge it)")
    raise ValueError("no wasmtime or reference result to take an expectation from")


def write_regression(regressions: Path, finding: dict, cmp, max_steps: int) -> Path:
    from isowasm.suites.compliance import load_file

    name = slug(finding["signature"])
    out, status, truth, why = expectation(cmp)
    if truth == "wasmtime" and _by_design(status):   # wasmtime cannot confirm it
        truth = "machine"
    note = (f"found by isowasm fuzz (seed {finding['seed']}, program {finding['index']}); "
            f"signature {finding['signature']}; {why}")
    lang, data, source = "wat", b"", finding["wat"]
    if cmp.case.wasm is None:   # a machine program (machine_programs.py): its instructions
        lang, data = "program", cmp.case.program.input
        source = finding["wat"].split("}\n", 1)[0] + "}\n"
    text = regression_yaml(name, finding["signature"], source, out, status, truth,
                           max_steps, note, lang=lang, input=data)
    path = Path(regressions) / f"{name}.yaml"
    atomic_write(path, text)
    # the file must load as a compliance case and hold exactly this program
    cc = load_file(path)[0]
    assert cc.source == source.rstrip("\n") + "\n", "regression YAML does not round-trip"
    return path
