"""Errors a user can cause. Each carries a one-line message that names the
problem and where it is; the CLI prints it as `error: ...` with no traceback."""


class IsowasmError(Exception):
    """Base of every user-facing error (bad input, unsupported construct)."""


class ProgramError(IsowasmError):
    """A malformed program file (spec/MACHINE.md §2)."""
