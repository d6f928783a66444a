#!/usr/bin/env python3
"""A stand-in for a foreign compiler with the public transformer-vm's real
lowering defects (spec/PLUGINS.md §3): isowasm's own toolchain with one op
lowered as another, as a command that turns a .wasm into a program file.

    wrong_compiler.py IN.wasm -o OUT.txt [--rem-s-as-rem-u] [--shr-s-as-shr-u]

Without a flag it is isowasm's compiler, unchanged (the control).
"""

import sys

import isowasm.toolchain.lowering as lowering
from isowasm.spec.program import format_program
from isowasm.toolchain.frontend import compile_wasm

SWAPS = {"--rem-s-as-rem-u": ("i32.rem_s", "i32.rem_u"), "--shr-s-as-shr-u": ("i32.shr_s", "i32.shr_u")}


def main() -> int:
    args = sys.argv[1:]
    swaps = dict(SWAPS[a] for a in args if a in SWAPS)
    rest = [a for a in args if a not in SWAPS]
    if len(rest) != 3 or rest[1] != "-o":
        print("usage: wrong_compiler.py IN.wasm -o OUT.txt [--rem-s-as-rem-u] [--shr-s-as-shr-u]", file=sys.stderr)
        return 2
    real = lowering.lower
    lowering.lower = lambda op, *a, **k: real(swaps.get(op, op), *a, **k)
    with open(rest[0], "rb") as f:
        prog = compile_wasm(f.read(), rest[0], b"")
    with open(rest[2], "w", encoding="ascii") as f:
        f.write(format_program(prog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
