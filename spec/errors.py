"""Errors a user can cause. Each carries a one-line message that names the
problem and where it is; the CLI prints it as `error: ...` with no traceback."""


class IsowasmError(Exception):
    """Base of every user-facing error (bad input, unsupported construct)."""


class ResourceLimit(IsowasmError):
    """An implementation reached a limit of its own (a transformer engine's
    position horizon, say) before the run ended: the comparison is
    inconclusive for it, never a pass and never a divergence."""


class ProgramError(IsowasmError):
    """A malformed program file (spec/MACHINE.md §2)."""
