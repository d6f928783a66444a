"""The example programs (data/examples/manifest.yaml, shipped in the
package): the long-run fixtures every backend is held to, and what
`isowasm verify` runs when no program is named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from isowasm.backends.base import Case
from isowasm.spec.errors import IsowasmError

EXAMPLES = Path(__file__).resolve().parent / "data" / "examples"
MANIFEST = EXAMPLES / "manifest.yaml"


@dataclass
class Example:
    name: str
    file: Path
    input: bytes
    expect_output: bytes
    max_steps: int
    description: str = ""

    def case(self) -> Case:
        from isowasm.toolchain import compile_file

        wasm, prog = compile_file(str(self.file), input=self.input)
        return Case(self.name, prog, wasm, expect_output=self.expect_output, expect_status="halted")


def load_examples() -> list[Example]:
    if not MANIFEST.exists():
        raise IsowasmError(f"{MANIFEST}: missing (the example programs ship with isowasm: reinstall it)")
    with open(MANIFEST, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    items = data["programs"] if isinstance(data, dict) else data
    out = []
    for i, e in enumerate(items):
        try:
            out.append(Example(
                name=e["name"], file=EXAMPLES / e["file"], input=str(e.get("input", "")).encode(),
                expect_output=str(e["expect_output"]).encode(), max_steps=int(e["max_steps"]),
                description=e.get("description", ""),
            ))
        except (KeyError, TypeError, ValueError) as err:
            raise IsowasmError(f"{MANIFEST}: entry {i}: bad or missing field {err}") from None
    return out
