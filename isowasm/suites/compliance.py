"""The compliance suite's cases: one YAML file per category under
data/compliance/ (shipped in the package), loaded and validated here.

A case file is

    category: <the file's stem>
    description: <one line>
    cases:
      - name: kebab-case-name        # unique in the suite
        lang: wat | c
        input: ""                    # text; each character is one byte (U+0000..U+00FF)
        expect_output: ""            # same encoding; use YAML escapes ("\\n", "\\x80")
        expect_status: halted | trapped:NAME | budget-exhausted
        max_steps: 1000000           # optional (DEFAULT_MAX_STEPS)
        ground_truth: wasmtime       # optional; `machine` where wasmtime differs by design
        note: ...                    # optional
        source: |
          ...

Byte strings are written as YAML text whose characters are the bytes
(latin-1), so "\\xff" is the byte 0xff and a case stays readable and diffable.

`ground_truth: machine` marks the cases whose expectation is the machine's
own verdict and which wasmtime cannot confirm: resource traps (`call_depth`,
`stack_overflow`, `memory_limit`; machine.yaml `resource: true`) and budget
exhaustion.
Validation insists on it for those and forbids it elsewhere, so no
wasmtime-checkable expectation can slip out of the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from isowasm.spec import table
from isowasm.spec.result import BUDGET, HALTED, TRAPPED

ROOT = Path(__file__).resolve().parent / "data" / "compliance"

# category -> number of cases; the order is the suite's order.
CATEGORIES: dict[str, int] = {
    "arithmetic": 24,
    "comparisons": 16,
    "memory": 14,
    "io": 8,
    "io-integration": 3,
    "limits": 17,
    "loops": 7,
    "loop-arithmetic": 7,
    "loop-memory": 4,
    "loop-io": 6,
    "loop-edge": 4,
    "combined": 4,
    "calls": 3,
    "i64": 62,
}

DEFAULT_MAX_STEPS = 1_000_000
LANGS = ("wat", "c", "program")   # program: a machine program file written directly (no module)
GROUND_TRUTHS = ("wasmtime", "machine")
_REQUIRED = ("name", "lang", "source", "input", "expect_output", "expect_status")
_OPTIONAL = ("max_steps", "ground_truth", "note")
_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")


class CaseFileError(ValueError):
    """A malformed case file; the message is one line naming file and case."""


@dataclass(frozen=True)
class ComplianceCase:
    category: str
    name: str
    lang: str
    source: str
    input: bytes
    expect_output: bytes
    expect_status: str          # "halted", "trapped:NAME" or "budget-exhausted"
    max_steps: int
    ground_truth: str           # "wasmtime" or "machine"
    note: str = ""
    file: str = ""

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def status(self) -> str:
        """The RunResult.status part of expect_status."""
        return self.expect_status.partition(":")[0]

    @property
    def trap(self) -> str | None:
        return self.expect_status.partition(":")[2] or None

    def matches(self, res) -> bool:
        """Whether a RunResult has this case's expected output and status."""
        return (res.output == self.expect_output and res.status == self.status
                and (res.trap or None) == self.trap)

    def describe(self, res) -> str:
        got = res.status + (f":{res.trap}" if res.status == TRAPPED else "")
        return (f"{self.id} on {res.backend}: expected {self.expect_status} with output "
                f"{self.expect_output!r}, got {got} with output {res.output!r}")


def _bytes(text, where: str, field: str) -> bytes:
    if not isinstance(text, str):
        raise CaseFileError(f"{where}: {field} must be a string, not {type(text).__name__}")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as e:
        raise CaseFileError(f"{where}: {field} has character {text[e.start]!r} above U+00FF; "
                            f"write bytes as \\xNN escapes") from None


def _status(value, where: str) -> str:
    traps = table.trap_names()
    if value in (HALTED, BUDGET):
        return value
    if isinstance(value, str) and value.startswith(TRAPPED + ":") and value.partition(":")[2] in traps:
        return value
    raise CaseFileError(f"{where}: expect_status {value!r} is not halted, budget-exhausted "
                        f"or trapped:NAME with NAME one of {', '.join(traps)}")


def _case(raw, category: str, path: Path, index: int) -> ComplianceCase:
    where = f"{path.name}: case {index + 1}"
    if not isinstance(raw, dict):
        raise CaseFileError(f"{where}: a case is a mapping, not {type(raw).__name__}")
    if isinstance(raw.get("name"), str):
        where = f"{path.name}: case {raw['name']!r}"
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CaseFileError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise CaseFileError(f"{where}: unknown field(s) {', '.join(unknown)}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise CaseFileError(f"{where}: name must be kebab-case ([a-z0-9] words joined by '-')")
    if raw["lang"] not in LANGS:
        raise CaseFileError(f"{where}: lang {raw['lang']!r} is not one of {', '.join(LANGS)}")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        raise CaseFileError(f"{where}: source must be non-empty text")
    data = _bytes(raw["input"], where, "input")
    if b"\x00" in data:
        raise CaseFileError(f"{where}: input contains NUL (the input is NUL-terminated)")
    status = _status(raw["expect_status"], where)
    max_steps = raw.get("max_steps", DEFAULT_MAX_STEPS)
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps <= 0:
        raise CaseFileError(f"{where}: max_steps must be a positive integer")
    truth = raw.get("ground_truth", "wasmtime")
    if truth not in GROUND_TRUTHS:
        raise CaseFileError(f"{where}: ground_truth {truth!r} is not one of {', '.join(GROUND_TRUTHS)}")
    resource = {t["name"] for t in table.traps() if t["resource"]}
    by_design = status == BUDGET or status.partition(":")[2] in resource
    if raw["lang"] == "program":
        if truth != "machine":   # no module: the reference executor is the only judge
            raise CaseFileError(f"{where}: ground_truth must be machine for lang program (no wasm module)")
    elif by_design != (truth == "machine"):
        why = ("wasmtime cannot confirm a resource trap or a budget exhaustion" if by_design
               else "only resource traps and budget exhaustion differ from wasmtime by design")
        raise CaseFileError(f"{where}: ground_truth must be {'machine' if by_design else 'wasmtime'} "
                            f"for expect_status {status} ({why})")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise CaseFileError(f"{where}: note must be text")
    if truth == "machine" and not note.strip():
        raise CaseFileError(f"{where}: a ground_truth: machine case needs a note saying why")
    return ComplianceCase(
        category=category, name=name, lang=raw["lang"], source=raw["source"], input=data,
        expect_output=_bytes(raw["expect_output"], where, "expect_output"),
        expect_status=status, max_steps=max_steps, ground_truth=truth,
        note=" ".join(note.split()), file=str(path),
    )


def load_file(path: Path) -> list[ComplianceCase]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CaseFileError(f"{path.name}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise CaseFileError(f"{path.name}: expected a mapping with category and a list of cases")
    category = doc.get("category")
    if category != path.stem:
        raise CaseFileError(f"{path.name}: category {category!r} does not match the file name")
    unknown = sorted(set(doc) - {"category", "description", "cases"})
    if unknown:
        raise CaseFileError(f"{path.name}: unknown top-level field(s) {', '.join(unknown)}")
    return [_case(raw, category, path, i) for i, raw in enumerate(doc["cases"])]


def load_cases(root: Path | str = ROOT) -> list[ComplianceCase]:
    """Every case, in CATEGORIES order then file order. Raises CaseFileError
    on the first malformed file or case, and on a name used twice."""
    root = Path(root)
    files = sorted(root.glob("*.yaml"))
    unknown = [p.name for p in files if p.stem not in CATEGORIES]
    if unknown:
        raise CaseFileError(f"{', '.join(unknown)}: not a compliance category "
                            f"(known: {', '.join(CATEGORIES)})")
    cases: list[ComplianceCase] = []
    seen: dict[str, str] = {}
    for category in CATEGORIES:
        path = root / f"{category}.yaml"
        if not path.exists():
            continue
        for cc in load_file(path):
            if cc.name in seen:
                raise CaseFileError(f"{path.name}: case {cc.name!r}: name already used in {seen[cc.name]}")
            seen[cc.name] = path.name
            cases.append(cc)
    return cases


@lru_cache(maxsize=None)
def _compiled(source: str, lang: str, name: str, data: bytes):
    if lang == "program":   # the instructions of a program file; the input from the case
        from isowasm.spec.program import format_program, parse_program

        empty_input = format_program(_empty()).split("}\n", 1)[1]
        prog = parse_program(source.rstrip("\n") + "\n" + empty_input, name)
        return None, prog.with_input(data)
    from isowasm.toolchain import compile_source

    return compile_source(source, lang=lang, name=name, input=data)


def _empty():
    from isowasm.spec.program import Program

    return Program(["halt"], [0])


def build_case(cc: ComplianceCase):
    """The backend Case for a compliance case (compiled through the toolchain,
    which caches by content hash; this process memoises on top of it)."""
    from isowasm.backends.base import Case

    wasm, program = _compiled(cc.source, cc.lang, f"{cc.category}-{cc.name}", cc.input)
    return Case(name=cc.id, program=program, wasm=wasm, expect_output=cc.expect_output,
                expect_status=cc.expect_status)
