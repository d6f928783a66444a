"""The isowasm toolchain: C or WAT -> wasm -> machine program (spec/MACHINE.md §8).

    wasm, program = compile_source(text, "c" | "wat", name="<source>", input=b"")
    wasm, program = compile_file(path, input=b"")       # .c, .wat or .wasm
    program = compile_wasm(wasm, name="<wasm>", input=b"")

Modules: frontend (clang, wat2wasm, cache), decode (wasm binary), compile
(control flow flattening, calls, memory), lowering (every i32 op the machine
lacks) with runtime.wat (its helper functions).
"""

from isowasm.toolchain.cli import cli_compile
from isowasm.toolchain.errors import CompileError
from isowasm.toolchain.frontend import compile_file, compile_source, compile_wasm

__all__ = ["compile_source", "compile_file", "compile_wasm", "CompileError", "cli_compile"]
