#!/usr/bin/env python3
"""A stand-in for an engine of the public transformer-vm's kind: it speaks
that project's command conventions (the facts in spec/PLUGINS.md §1.1), so
the tests can check that such an engine plugs in by YAML alone.

    tvm_like_engine.py MODEL PROG.txt [--max-gen=N] [--regen] [--zero-global-get]

- its budget counts generated *tokens* (--max-gen), and it stops where the
  budget ends, in the middle of a step if need be;
- it writes the trace to PROG_ref.txt beside the program (the whole
  reference file: the instructions, then the trace), not to stdout;
- it echoes the program on stdout and then prints a PASS line of its own;
- the trace opens with the input section only when the program starts with
  input_base (the program file it is given may lack the input section), or
  always with --regen (which writes the whole sequence, as the original's
  engine does).

The machine itself is isowasm's reference executor (this is a stand-in for
the conventions, not a second implementation). --zero-global-get makes it
wrong as the original is: global.get reads 0.
"""

import sys
from pathlib import Path

from isowasm.spec.program import Program, format_instructions, parse_program
from isowasm.spec.reference import run_reference


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].partition("=")[::2] for a in sys.argv[1:] if a.startswith("--"))
    if len(args) != 2:
        print("usage: tvm_like_engine.py MODEL PROG.txt [--max-gen=N] [--zero-global-get]", file=sys.stderr)
        return 2
    path = Path(args[1])
    text = path.read_text(encoding="ascii")
    if "}" in text and not text.rstrip().endswith("}"):
        prog = parse_program(text)
    else:                                  # no input section: the input is empty
        prog = parse_program(text.rstrip() + "\n00 commit(+0,sts=0,bt=0)\n")
    run = prog
    if "zero-global-get" in opts:
        names = ["i32.const" if n == "global.get" else n for n in prog.names]
        imms = [0 if n == "global.get" else i for n, i in zip(prog.names, prog.imms)]
        run = Program(names, imms, prog.input, prog.source)
    budget = int(opts.get("max-gen", 10_000_000))
    r = run_reference(run, max_steps=budget, trace="text")
    lines = r.trace.split("\n")
    has_base = bool(prog.names) and prog.names[0] == "input_base"
    first, body = lines[0] + "\n", lines[1:]
    tokens = " ".join(body).split()        # generated tokens, in order
    kept, count = [], 0
    for ln in body:
        if not ln:
            continue
        toks = ln.split(" ")
        if count + len(toks) > budget:
            kept.append(" ".join(toks[: budget - count]))   # cut mid-step
            count = budget
            break
        kept.append(ln)
        count += len(toks)
    # --regen writes the whole sequence, the prompt's input section included
    trace = (first if has_base or "regen" in opts else "") + "".join(ln + "\n" for ln in kept if ln)
    ref = path.with_name(path.stem + "_ref.txt")
    ref.write_text(format_instructions(prog) + trace, encoding="ascii")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    print(f"PASS {count}/{len(tokens)} tok" + (" [truncated]" if count < len(tokens) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
