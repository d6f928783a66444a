"""Compilers as plug-ins: what turns a .wasm module into a program file.

isowasm's own toolchain is the compiler `isowasm`. One made elsewhere (the
public transformer-vm's `wasm-compile`, a fork's) is declared as a command
in the backends file (spec/PLUGINS.md §3):

    compilers:
      theirs:
        command: [wasm-compile, "{wasm}", -o, "{out}"]
        timeout_s: 120

With `--compiler theirs`, `verify`, `iso-equiv` and `fuzz` run *its*
program file on the machine backends and the *original module* on wasmtime:
a compiler bug then shows as output or status that differs from wasmtime's,
while the machines still agree with each other on the foreign program.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from isowasm.backends.base import Case
from isowasm.backends.external import DEFAULT_TIMEOUT_S, ascii_text, declarations, run_command
from isowasm.spec.errors import IsowasmError
from isowasm.spec.program import Program, parse_program

BUILTIN = "isowasm"
KEYS = {"command", "timeout_s", "cwd", "program_file"}


class Compiler:
    name = BUILTIN

    def compile(self, wasm: bytes, name: str) -> Program:
        from isowasm.toolchain.frontend import compile_wasm

        return compile_wasm(wasm, name, b"")


class CommandCompiler(Compiler):
    def __init__(self, name: str, decl: dict, path: Path):
        self.name = name
        self.command = [str(a) for a in decl["command"]]
        self.timeout = float(decl.get("timeout_s", DEFAULT_TIMEOUT_S))
        here = path.resolve().parent
        self.cwd = str(here / decl["cwd"]) if decl.get("cwd") else str(here)
        self.program_file = decl.get("program_file")   # where it writes, when not {out}

    def compile(self, wasm: bytes, name: str) -> Program:
        with tempfile.TemporaryDirectory(prefix="isowasm-cc-") as d:
            stem = name.replace("/", "_") or "module"
            src, out = Path(d) / f"{stem}.wasm", Path(d) / f"{stem}.txt"
            src.write_bytes(wasm)
            fill = lambda a: a.replace("{wasm}", str(src)).replace("{out}", str(out)).replace("{dir}", d)  # noqa: E731
            argv = [fill(a) for a in self.command]
            p = run_command(f"compiler {self.name}", argv, self.timeout, self.cwd)
            if p.returncode != 0:
                err = p.stderr.decode("utf-8", "backslashreplace").strip().splitlines()
                raise IsowasmError(f"compiler {self.name}: exit status {p.returncode} on {name}: "
                                   f"{err[-1] if err else ''}")
            target = Path(fill(self.program_file)) if self.program_file else (
                out if "{out}" in " ".join(self.command) else None)
            if target is None:
                raw = p.stdout
            elif target.exists():
                raw = target.read_bytes()
            else:
                raise IsowasmError(f"compiler {self.name}: wrote no program file {target.name} on {name}")
        text = ascii_text(f"compiler {self.name}", raw)
        if "}" in text and text.rstrip().endswith("}"):   # no input section: an empty input
            text = text.rstrip() + "\n00 commit(+0,sts=0,bt=0)\n"
        try:
            return parse_program(text, f"{name} (compiled by {self.name})")
        except IsowasmError as e:
            raise IsowasmError(f"compiler {self.name}: wrote a malformed program file: {e}") from None


def declared_compilers() -> dict[str, dict]:
    return declarations("compilers", KEYS)


def get_compiler(name: str | None) -> Compiler | None:
    """None for no --compiler (each case keeps the program it was built
    with), the built-in toolchain for `isowasm`, else a declared one."""
    if not name:
        return None
    if name == BUILTIN:
        return Compiler()
    decls = declared_compilers()
    if name not in decls:
        known = ", ".join([BUILTIN, *decls])
        raise IsowasmError(f"unknown compiler {name!r} (known: {known}; declare others under "
                           f"`compilers:` in isowasm-backends.yaml)")
    return CommandCompiler(name, decls[name], Path(decls[name]["_file"]))


def recompile(case: Case, compiler: Compiler | None) -> Case:
    """The case with its program made by `compiler` from the original module
    (the input kept); wasmtime goes on running that module."""
    if compiler is None:
        return case
    if case.wasm is None:
        raise IsowasmError(f"{case.name}: --compiler needs the original module (a .c, .wat or .wasm)")
    prog = compiler.compile(case.wasm, case.name).with_input(case.input)
    if isinstance(compiler, CommandCompiler):
        # A case's stated status and budget describe isowasm's own program;
        # a foreign program is judged against wasmtime on the original
        # module, so a slower lowering that stops at the budget on the way to
        # wasmtime's output is inconclusive, not a failure.
        return dataclasses.replace(case, program=prog, expect_status=None, expect_output=None)
    return dataclasses.replace(case, program=prog)
