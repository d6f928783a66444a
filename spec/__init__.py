"""The isowasm machine: its written form (MACHINE.md, machine.yaml) and the
Python reference executor, the executable specification."""

from isowasm.spec.errors import IsowasmError, ProgramError
from isowasm.spec.program import Program, parse_program, format_program
from isowasm.spec.result import RunResult
from isowasm.spec.reference import run_reference

__all__ = [
    "IsowasmError",
    "ProgramError",
    "Program",
    "parse_program",
    "format_program",
    "RunResult",
    "run_reference",
]
