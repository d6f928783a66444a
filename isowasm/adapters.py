"""Adapters: the declarations (spec/PLUGINS.md) that plug a known project's
implementations into isowasm, written for the user's own checkout.

`isowasm adapter transformer-vm PATH` writes an `isowasm-backends.yaml` that
registers the public transformer-vm's reference executor and its C++ engine
as backends and its compiler as a compiler. The conventions it declares are
facts about that project, read from its source at the commit named in
TRANSFORMER_VM_CHECKED (no code of it is used or shipped):

- `python -m transformer_vm.wasm.reference PROG.txt` writes PROG_ref.txt
  beside the program (the instructions, then the trace; the input section
  only when the program starts with input_base); it takes no budget (its own
  limit is 10^8 tokens), so isowasm cuts the trace to the step budget;
- its engine `transformer MODEL.bin --regen --max-gen=N PROG.txt` counts its
  budget in generated tokens, writes PROG_ref.txt from the whole sequence
  (the prompt's input section included) and prints its own PASS lines;
- `python -m transformer_vm.compilation.compile_wasm X.wasm --args STR -o
  BASE` writes BASE.txt.
"""

from __future__ import annotations

import sys
from pathlib import Path

from isowasm.spec.errors import IsowasmError

# The upstream commit these conventions were read at (a fork's main; the
# original's layout is the same).
TRANSFORMER_VM_CHECKED = "oaustegard/transformer-vm 4c8c537301afefad69f6c338e6c7e567cd6b0eae (2026-04-26)"


def _quote(s: str) -> str:
    import json

    return json.dumps(s)   # a JSON string is a YAML double-quoted scalar


def transformer_vm(path: str, python: str | None = None, engine: str | None = None,
                   model: str | None = None) -> str:
    """The backends file for a transformer-vm checkout at `path`."""
    root = Path(path).expanduser().resolve()
    if not (root / "transformer_vm").is_dir():
        raise IsowasmError(f"{path}: not a transformer-vm checkout (no transformer_vm/ folder)")
    if python is None:
        venv = root / ".venv" / "bin" / "python"
        python = str(venv) if venv.exists() else sys.executable
    engine = engine or str(root / "transformer")
    model = model or str(root / "model.bin")
    notes = []
    if not Path(engine).exists():
        notes.append(f"# engine {engine} is not built yet: `uv run wasm-run` in {root} builds it")
    if not Path(model).exists():
        notes.append(f"# model {model} is not built yet: `uv run wasm-build` in {root} builds it")
    q = _quote
    lines = [
        f"# Written by `isowasm adapter transformer-vm {root}`;",
        f"# conventions checked against {TRANSFORMER_VM_CHECKED}.",
        *notes,
        "backends:",
        "  tvm-reference:",
        f"    command: [{q(python)}, -m, transformer_vm.wasm.reference, \"{{program}}\"]",
        f"    cwd: {q(str(root))}",
        "    trace_file: \"{dir}/{stem}_ref.txt\"",
        "    trace_input: with_input_base",
        "    timeout_s: 600",
        "  tvm-engine:",
        f"    command: [{q(engine)}, {q(model)}, --regen, \"--max-gen={{max_tokens}}\", \"{{program}}\"]",
        f"    cwd: {q(str(root))}",
        "    trace_file: \"{dir}/{stem}_ref.txt\"",
        "    timeout_s: 600",
        "compilers:",
        "  tvm-compile:",
        f"    command: [{q(python)}, -m, transformer_vm.compilation.compile_wasm, \"{{wasm}}\", --args, \"\", "
        "-o, \"{dir}/prog\"]",
        f"    cwd: {q(str(root))}",
        "    program_file: \"{dir}/prog.txt\"",
        "    timeout_s: 120",
    ]
    return "\n".join(lines) + "\n"


ADAPTERS = {"transformer-vm": transformer_vm}


def cli_adapter(argv: list[str]) -> int:
    from isowasm.cli import ArgumentParser

    ap = ArgumentParser(prog="isowasm adapter", description=(
        "Write the backends file that plugs a known project into isowasm. "
        "transformer-vm: its reference (tvm-reference), its C++ engine (tvm-engine) and its "
        "compiler (tvm-compile); then e.g. `isowasm verify prog.c --backends reference,wasmtime,"
        "tvm-engine` or `isowasm iso-equiv --suites compliance --compiler tvm-compile`."))
    ap.add_argument("project", choices=sorted(ADAPTERS))
    ap.add_argument("path", help="the project's checkout (built as its README says)")
    ap.add_argument("--python", help="the Python that has the project installed (default: PATH/.venv/bin/python)")
    ap.add_argument("--engine", help="the engine binary (default: PATH/transformer)")
    ap.add_argument("--model", help="the weights (default: PATH/model.bin)")
    ap.add_argument("-o", "--output", default="isowasm-backends.yaml",
                    help="where to write it (default ./isowasm-backends.yaml; - for stdout)")
    args = ap.parse_args(argv)
    text = ADAPTERS[args.project](args.path, args.python, args.engine, args.model)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists():
        raise IsowasmError(f"{out}: exists; remove it or name another file with -o")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: backends tvm-reference, tvm-engine; compiler tvm-compile")
    return 0
