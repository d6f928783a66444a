"""The `isowasm` command: compile, run, verify, fuzz, iso-equiv, report.

Exit statuses (the same for every subcommand; README "Exit statuses"):

  0  success: every backend agrees (verify, run with several backends)
  1  a divergence: some implementation disagrees (verify, run, fuzz, iso-equiv)
  2  a usage or input error: one line `error: ...` naming the problem
  3  inconclusive: a run hit its step budget or a resource limit of the
     machine, or programs were left out (never reported as a pass)
  4  malformed trace: a transformer's model left the trace format
  141  standard output was closed early (a broken pipe, e.g. `| head`)

Every user error ends as one line `error: ...` — never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from isowasm.runner import show_bytes
from isowasm.spec.errors import IsowasmError

EXIT_OK, EXIT_DIVERGENCE, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_MALFORMED = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE = 141


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: isowasm run: ...` (exit 2)
    instead of a usage block plus a message."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _fmt_rate(n: float) -> str:
    for unit, div in (("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


class Progress:
    """Progress of a long run on stderr: on a terminal one line redrawn at
    most 10 times a second; elsewhere (when asked with --progress) a full
    line every 2 seconds, so a log shows it too."""

    def __init__(self, label: str, enabled: bool, tty: bool | None = None):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = 0.1 if self.tty else 2.0
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.shown = False

    def __call__(self, steps: int, tokens: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < self.every:
            return
        self.last = now
        rate = tokens / max(now - self.t0, 1e-9)
        line = f"[{self.label}] {steps:,} steps  {tokens:,} tokens  {_fmt_rate(rate)} tok/s"
        sys.stderr.write(f"\r{line} " if self.tty else line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\n")


def read_input(input_text: str | None, input_file: str | None) -> bytes | None:
    if input_text is not None and input_file is not None:
        raise IsowasmError("give the input with --input or with --input-file, not both")
    if input_file is not None:
        try:
            return Path(input_file).read_bytes()
        except OSError as e:
            raise IsowasmError(f"{input_file}: cannot read input: {e.strerror}") from None
    return input_text.encode() if input_text is not None else None


def load_case(path: str, data: bytes | None, module: str | None = None):
    """A Case from a .c/.wat/.wasm source (compiled by isowasm's toolchain)
    or a program file made by any compiler; `module` names the original .wasm
    of a program file, for wasmtime (the ground truth)."""
    from isowasm.backends.base import Case
    from isowasm.spec.program import load_program

    p = Path(path)
    if not p.exists():
        raise IsowasmError(f"{path}: no such file")
    if p.suffix in (".c", ".wat", ".wasm"):
        if module is not None:
            raise IsowasmError(f"--module {module}: only for a program file ({path} is compiled here)")
        from isowasm.toolchain import compile_file

        wasm, prog = compile_file(path, input=data or b"")
        return Case(p.stem, prog, wasm)
    prog = load_program(path)
    if data is not None:
        prog = prog.with_input(data)
    wasm = None
    if module is not None:
        try:
            wasm = Path(module).read_bytes()
        except OSError as e:
            raise IsowasmError(f"--module {module}: cannot read: {e.strerror}") from None
        if wasm[:4] != b"\0asm":
            raise IsowasmError(f"--module {module}: not a wasm binary (no \\0asm header)")
    return Case(p.stem, prog, wasm)


def check_budget(max_steps: int | None) -> None:
    if max_steps is not None and max_steps <= 0:
        raise IsowasmError(f"--max-steps {max_steps}: the step budget must be a positive number")


def backend_names(values: list[str] | None) -> list[str]:
    """`-b a -b b`, `--backends a,b` and `--backends a b` alike."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def cmd_run(args) -> int:
    from isowasm.backends import default_budget, get_backend
    from isowasm.runner import compare_case

    check_budget(args.max_steps)
    if args.trace_out and args.trace != "text":
        raise IsowasmError("--trace-out writes the trace text: it needs --trace text")
    case = load_case(args.file, read_input(args.input, args.input_file), args.module)
    names = backend_names(args.backend) or ["reference"]
    backends = [get_backend(n) for n in names]
    for b in backends:
        if b.needs_wasm and case.wasm is None:
            raise IsowasmError(f"backend {b.name} runs the original module: give a .c, .wat or .wasm "
                               f"file, or the program file's module with --module")
    max_steps = args.max_steps or default_budget(backends)
    try:
        if len(backends) == 1:
            return _run_one(backends[0], case, max_steps, args)
        cmp = compare_case(case, backends, max_steps=max_steps,
                           trace="text" if args.trace == "text" else "digest")
        for name, r in cmp.results.items():
            if not args.quiet:
                print(f"[{name}] output: {show_bytes(r.output, 400)}")
            print(_status_line(name, r, r.seconds))
        if args.trace_out:
            _write_trace(args.trace_out, case, next((r for r in cmp.results.values() if r.trace), None))
        return _exit_status(cmp)
    finally:
        for b in backends:
            b.close()


def _run_one(backend, case, max_steps: int, args) -> int:
    prog = Progress(backend.name, args.progress or sys.stderr.isatty())
    kwargs = {"progress": prog} if _accepts_progress(backend) else {}
    t0 = time.perf_counter()
    r = backend.run(case, max_steps=max_steps, trace=args.trace if backend.traces else "none", **kwargs)
    prog.done()
    if not args.quiet:
        sys.stdout.flush()
        sys.stdout.buffer.write(r.output)   # the program's bytes exactly
        if r.output and not r.output.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    print(_status_line(backend.name, r, time.perf_counter() - t0))
    if args.trace_out:
        _write_trace(args.trace_out, case, r)
    if r.status == "budget-exhausted":
        _budget_note(max_steps, args.max_steps)
        return EXIT_INCONCLUSIVE   # a run that hit its budget is not a success
    if r.status == "malformed-trace":
        return EXIT_MALFORMED      # a decoder whose model broke the trace format
    from isowasm.runner import _inconclusive_status

    return EXIT_INCONCLUSIVE if _inconclusive_status(r) else EXIT_OK


def _budget_note(max_steps: int, asked: int | None) -> None:
    if asked is None:
        print(f"(stopped at the default budget of {max_steps:,} steps; raise it with --max-steps)",
              file=sys.stderr)


def _status_line(name: str, r, seconds: float) -> str:
    line = f"[{name}] status: {r.status_line()}"
    if r.steps is not None:
        line += f", {r.steps:,} steps"
    if r.tokens is not None:
        line += f", {r.tokens:,} tokens, {_fmt_rate(r.tokens / max(seconds, 1e-9))} tok/s"
    line += f", {seconds:.2f} s"
    if r.digest:
        line += f", sha256 {r.digest[:16]}…"
    return line


def _write_trace(path: str, case, r) -> None:
    from isowasm.spec.trace import canonical_file

    if r is None or r.trace is None:
        raise IsowasmError(f"--trace-out {path}: no backend of this run produced a trace")
    try:
        Path(path).write_text(canonical_file(case.program, r.trace), encoding="ascii")
    except OSError as e:
        raise IsowasmError(f"--trace-out {path}: cannot write: {e.strerror}") from None


def _exit_status(cmp) -> int:
    """The exit status of one comparison: divergence, inconclusive or agree."""
    from isowasm.spec.result import BUDGET

    if not cmp.ok:
        print(cmp.report())
        return EXIT_DIVERGENCE
    if cmp.inconclusive or any(r.status == BUDGET for r in cmp.results.values()):
        for i in cmp.inconclusive:
            print(f"inconclusive: {i}")
        return EXIT_INCONCLUSIVE
    print("all backends agree")
    return EXIT_OK


def _accepts_progress(backend) -> bool:
    import inspect

    return "progress" in inspect.signature(backend.run).parameters


def cmd_verify(args) -> int:
    from isowasm.verify import verify

    check_budget(args.max_steps)
    return verify(backends=backend_names(args.backends) or None, programs=args.programs,
                  examples=backend_names(args.examples) or None,
                  data=read_input(args.input, args.input_file), module=args.module,
                  max_steps=args.max_steps, out=args.json or None, compiler=args.compiler)


def cmd_backends(args) -> int:
    from isowasm.backends import available_backends

    for name, b in available_backends().items():
        print(f"{name:>20}: {'available' if not isinstance(b, str) else 'unavailable — ' + b}")
    return 0


def cmd_model_info(args) -> int:
    from isowasm.transformer.info import print_info

    info = print_info()
    if args.json:
        from isowasm.atomic import atomic_write_json

        s = info["schedule"]
        summary = {
            "d_model": info["d_model"], "layers": info["n_layers"],
            "heads per layer (max)": info["n_heads"], "head q/k dim": info["d_head_qk"],
            "head v dim": info["d_head_v"], "d_ffn": info["d_ffn"], "vocabulary": info["vocab_size"],
            "parameters": f"{info['parameters']:,}",
            "layer lower bound": s["layers_lower_bound"], "d_ffn lower bound": s["d_ffn_lower_bound"],
            "precision horizon": info["horizon"],
        }
        if info.get("weights_digest"):
            summary["weights digest"] = info["weights_digest"]
        atomic_write_json(args.json, {"kind": "model_info", "time": time.time(), "summary": summary,
                                      "info": info})
    return 0


def cmd_report(args) -> int:
    from isowasm import report

    results = Path(args.results) if args.results else report.RESULTS
    out = report.write(results, Path(args.out) if args.out else report.FINDINGS)
    print(f"wrote {out}")
    return 0


def build_parser() -> ArgumentParser:
    ap = ArgumentParser(prog="isowasm", description=(
        "Differential verification of transformer-executable WebAssembly machines. "
        "Exit status: 0 agree, 1 divergence, 2 usage or input error, 3 inconclusive "
        "(budget or resource limit), 4 malformed trace, 141 broken pipe."))
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=ArgumentParser)

    sub.add_parser("compile", help="C/WAT/wasm -> program file (see `isowasm compile --help`)", add_help=False)

    def inputs(p):
        p.add_argument("--input", help="input text (default: the program file's input section)")
        p.add_argument("--input-file", help="read the input bytes from this file")
        p.add_argument("--max-steps", type=int, default=None,
                       help="step budget (default: about a minute of the slowest chosen backend)")
        p.add_argument("--module", help="for a program file made elsewhere: its original .wasm, "
                                        "which wasmtime runs as the ground truth")

    r = sub.add_parser("run", help="run a program on one backend, or compare several")
    r.add_argument("file", help=".c, .wat, .wasm (compiled first) or a program file")
    inputs(r)
    r.add_argument("--backend", "-b", action="append",
                   help="backend name (repeatable or comma-separated; default reference); with "
                        "several, their runs are compared as by verify")
    r.add_argument("--trace", choices=["none", "digest", "text"], default="digest")
    r.add_argument("--trace-out", help="write the canonical reference file here (needs --trace text)")
    r.add_argument("--progress", action="store_true",
                   help="show progress on stderr even when it is not a terminal")
    r.add_argument("--quiet", "-q", action="store_true", help="do not print the program's output")

    v = sub.add_parser("verify", help="compare every backend on your programs (default: the examples)",
                       description="Compare every backend with the reference byte for byte and with "
                                   "wasmtime on output and status. Exit status: 0 all agree, "
                                   "1 a divergence, 2 usage or input error, 3 inconclusive "
                                   "(a budget or a resource limit).")
    v.add_argument("programs", nargs="*", metavar="PROGRAM",
                   help=".c, .wat, .wasm or program files (default: the shipped examples)")
    inputs(v)
    v.add_argument("--backends", "-b", action="append",
                   help="backends, comma-separated or repeated (default: every available "
                        "non-heavy one)")
    v.add_argument("--examples", action="append", help="only these example programs (by name)")
    v.add_argument("--compiler", help="run the program files this compiler makes from each module "
                                      "(`isowasm`, or one declared under `compilers:` in "
                                      "isowasm-backends.yaml); wasmtime runs the module itself")
    v.add_argument("--json", default="results/verify.json",
                   help="where to record the results (default results/verify.json; '' for none)")

    sub.add_parser("backends", help="list backends and whether they can run here")

    mp = sub.add_parser("model", help="the analytic transformer")
    msub = mp.add_subparsers(dest="model_cmd", required=True, parser_class=ArgumentParser)
    mi = msub.add_parser("info", help="dims, layers, heads, parameters, per-layer use")
    mi.add_argument("--json", nargs="?", const="results/model_info.json", default=None,
                    help="also record the figures for `isowasm report` (default path results/model_info.json)")

    rp = sub.add_parser("report", help="FINDINGS.md (and plots in findings/) from results/*.json")
    rp.add_argument("--results", default=None, help="results directory (default: ./results)")
    rp.add_argument("--out", default=None, help="output file (default: ./FINDINGS.md)")

    sub.add_parser("fuzz", help="a fuzzing campaign (see `isowasm fuzz --help`)", add_help=False)
    sub.add_parser("adapter", help="write the backends file for a known project (transformer-vm; see "
                                   "`isowasm adapter --help`)", add_help=False)
    sub.add_parser("iso-equiv", help="every backend on the shipped suites: examples, compliance, "
                                     "generated (see `isowasm iso-equiv --help`)", add_help=False)
    return ap


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "fuzz":
        from isowasm.fuzz import cli_fuzz

        return cli_fuzz(argv[1:])
    if argv and argv[0] == "iso-equiv":
        from isowasm.iso_equiv import main as iso_equiv

        return iso_equiv(argv[1:])
    if argv and argv[0] == "adapter":
        from isowasm.adapters import cli_adapter

        return cli_adapter(argv[1:])
    if argv and argv[0] == "compile":
        from isowasm.toolchain import cli_compile

        return cli_compile(argv[1:])
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "verify": cmd_verify, "backends": cmd_backends,
               "report": cmd_report, "model": cmd_model_info}[args.cmd]
    return handler(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(argv)
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (`| head`): say so once, on stderr, and make
        # sure the interpreter's own flush at exit does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        print("error: standard output was closed before the run finished (broken pipe)", file=sys.stderr)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
