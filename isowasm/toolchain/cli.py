"""`isowasm compile FILE [-o OUT] [--input STR]`: write the program file."""

from __future__ import annotations

import argparse
import sys

from isowasm.spec.errors import IsowasmError
from isowasm.spec.program import format_program


def cli_compile(argv: list[str] | None = None) -> int:
    from isowasm.toolchain.frontend import compile_file

    ap = argparse.ArgumentParser(prog="isowasm compile",
                                 description="Compile C, WAT or wasm into an isowasm program file.")
    ap.add_argument("file", help=".c, .wat or .wasm")
    ap.add_argument("-o", "--output", help="program file to write (default: stdout)")
    ap.add_argument("--input", default="", help="the program's input (text)")
    args = ap.parse_args(argv)
    try:
        _, prog = compile_file(args.file, args.input.encode("utf-8"))
        text = format_program(prog)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {args.output}: {e.strerror}", file=sys.stderr)
        return 2
    return 0
