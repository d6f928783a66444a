#!/usr/bin/env python3
"""A stand-alone external backend (spec/PLUGINS.md): it knows nothing of
isowasm but the text format. It runs the OCaml port's binary on the program
file and writes the canonical trace on stdout.

    ocaml_engine.py PROGRAM.txt MAX_STEPS [--flip-first-flag]

--flip-first-flag makes it deliberately wrong: the first flagged byte of the
trace loses its flag, as an implementation that forgot one carry would.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = os.environ.get("ISOWASM_OCAML_BIN",
                     str(HERE.parents[1] / "ports/ocaml/_build/default/bin/isowasm_ocaml.exe"))


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print("usage: ocaml_engine.py PROGRAM.txt MAX_STEPS [--flip-first-flag]", file=sys.stderr)
        return 2
    p = subprocess.run([BIN, "run", args[0], "--max-steps", args[1], "--trace", "text"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        return p.returncode
    out = p.stdout
    trace = out[out.index("\ntrace\n") + len("\ntrace\n"):] if "\ntrace\n" in out else ""
    if "--flip-first-flag" in sys.argv:
        i = trace.find("'")
        if i >= 0:
            trace = trace[:i] + trace[i + 1:]
    sys.stdout.write(trace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
