"""The toolchain's one error type."""

from __future__ import annotations

from isowasm.spec.errors import IsowasmError


class CompileError(IsowasmError):
    """A module the toolchain cannot compile. The message is one line naming
    the construct and where it is (function index, byte offset in the .wasm,
    and the WAT line when the source was WAT and the line could be found).

    `construct` is the wasm mnemonic or section name, `func`/`offset` the
    location, kept so the WAT front end can add a source line."""

    def __init__(self, message: str, *, construct: str | None = None,
                 func: int | None = None, offset: int | None = None):
        super().__init__(message)
        self.construct = construct
        self.func = func
        self.offset = offset


def unsupported(construct: str, why: str, func: int | None, offset: int | None) -> CompileError:
    where = []
    if func is not None:
        where.append(f"function {func}")
    if offset is not None:
        where.append(f"byte offset 0x{offset:x}")
    loc = f" in {', '.join(where)}" if where else ""
    return CompileError(f"{construct}{loc}: {why}", construct=construct, func=func, offset=offset)
