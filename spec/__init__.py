"""The isowasm machine: its written form (MACHINE.md, machine.yaml) and the
Python reference executor, the executable specification."""

from spec.errors import IsowasmError, ProgramError
from spec.program import Program, parse_program, format_program
from spec.result import RunResult
from spec.reference import run_reference

__all__ = [
    "IsowasmError",
    "ProgramError",
    "Program",
    "parse_program",
    "format_program",
    "RunResult",
    "run_reference",
]
