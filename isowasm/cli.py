"""The `isowasm` command: compile, run, verify.

Every user error (a bad file, an unsupported construct, a malformed program)
ends as one line `error: ...` and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spec.errors import IsowasmError


def _fmt_rate(n: float) -> str:
    for unit, div in (("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


class Progress:
    """A one-line progress display on stderr for long runs (only on a TTY, or
    when forced), updated at most 10 times a second."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, steps: int, tokens: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        rate = tokens / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\r[{self.label}] {steps:,} steps  {tokens:,} tokens  {_fmt_rate(rate)} tok/s ")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def load_case(path: str, input_text: str | None, input_file: str | None):
    """A Case from a .c/.wat/.wasm source (compiled) or a program file (.txt)."""
    from isowasm.backends.base import Case
    from spec.program import load_program

    data = None
    if input_file is not None:
        try:
            data = Path(input_file).read_bytes()
        except OSError as e:
            raise IsowasmError(f"{input_file}: cannot read input: {e.strerror}") from None
    elif input_text is not None:
        data = input_text.encode()
    p = Path(path)
    if not p.exists():
        raise IsowasmError(f"{path}: no such file")
    if p.suffix in (".c", ".wat", ".wasm"):
        from isowasm.toolchain import compile_file

        wasm, prog = compile_file(path, input=data or b"")
        return Case(p.stem, prog, wasm)
    prog = load_program(path)
    if data is not None:
        prog = prog.with_input(data)
    return Case(p.stem, prog, None)


def cmd_run(args) -> int:
    from isowasm.backends import get_backend

    case = load_case(args.file, args.input, args.input_file)
    status = 0
    for name in args.backend or ["reference"]:
        backend = get_backend(name)
        if backend.needs_wasm and case.wasm is None:
            raise IsowasmError(f"backend {name} runs the original module; give a .c, .wat or .wasm file")
        prog = Progress(name, args.progress or sys.stderr.isatty())
        kwargs = {"progress": prog} if _accepts_progress(backend) else {}
        t0 = time.perf_counter()
        r = backend.run(case, max_steps=args.max_steps, trace=args.trace, **kwargs)
        dt = time.perf_counter() - t0
        prog.done()
        if not args.quiet:
            sys.stdout.write(r.output.decode("utf-8", "replace"))
            if r.output and not r.output.endswith(b"\n"):
                sys.stdout.write("\n")
        line = f"[{name}] status: {r.status_line()}"
        if r.steps is not None:
            line += f", {r.steps:,} steps"
        if r.tokens is not None:
            line += f", {r.tokens:,} tokens, {_fmt_rate(r.tokens / max(dt, 1e-9))} tok/s"
        line += f", {dt:.2f} s"
        if r.digest:
            line += f", sha256 {r.digest[:16]}…"
        print(line)
        if args.trace_out and r.trace is not None:
            from spec.trace import canonical_file

            Path(args.trace_out).write_text(canonical_file(case.program, r.trace), encoding="ascii")
        if r.status == "budget-exhausted":
            status = max(status, 3)  # a run that hit its budget is not a success
        elif r.status == "malformed-trace":
            status = max(status, 4)  # a decoder whose model broke the trace format
        backend.close()
    return status


def _accepts_progress(backend) -> bool:
    import inspect

    return "progress" in inspect.signature(backend.run).parameters


def cmd_verify(args) -> int:
    from isowasm.verify import verify

    return verify(backends=args.backends, names=args.programs, out=args.json)


def cmd_compile(args, rest) -> int:
    from isowasm.toolchain import cli_compile

    return cli_compile(rest)


def cmd_backends(args) -> int:
    from isowasm.backends import available_backends

    for name, b in available_backends().items():
        print(f"{name:>20}: {'available' if not isinstance(b, str) else 'unavailable — ' + b}")
    return 0


def cmd_model_info(args) -> int:
    from transformer.info import print_info

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
        atomic_write_json(args.json, {"kind": "model_info", "time": time.time(), "summary": summary,
                                      "info": info})
    return 0


def cmd_report(args) -> int:
    from isowasm import report

    results = Path(args.results) if args.results else report.RESULTS
    out = report.write(results, Path(args.out) if args.out else report.FINDINGS)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="isowasm", description="Differential verification of transformer-executable WebAssembly machines.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    sub.add_parser("compile", help="C/WAT/wasm -> program file (see `isowasm compile --help`)", add_help=False)

    r = sub.add_parser("run", help="run a program on one or more backends")
    r.add_argument("file", help=".c, .wat, .wasm (compiled first) or a program file")
    r.add_argument("--input", help="input string (default: the program file's input section)")
    r.add_argument("--input-file", help="read the input bytes from this file")
    r.add_argument("--backend", "-b", action="append", help="backend name (repeatable; default reference)")
    r.add_argument("--max-steps", type=int, default=None, help="step budget")
    r.add_argument("--trace", choices=["none", "digest", "text"], default="digest")
    r.add_argument("--trace-out", help="write the canonical reference file here (needs --trace text)")
    r.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    r.add_argument("--quiet", "-q", action="store_true", help="do not print the program's output")

    v = sub.add_parser("verify", help="run the example programs on every backend; print the matrix")
    v.add_argument("--backends", nargs="*", help="backends (default: all available)")
    v.add_argument("--programs", nargs="*", help="example names (default: all)")
    v.add_argument("--json", default="results/verify.json", help="where to record the results")

    sub.add_parser("backends", help="list backends and whether they can run here")

    mp = sub.add_parser("model", help="the analytic transformer")
    msub = mp.add_subparsers(dest="model_cmd", required=True)
    mi = msub.add_parser("info", help="dims, layers, heads, parameters, per-layer use")
    mi.add_argument("--json", nargs="?", const="results/model_info.json", default=None,
                    help="also record the figures for `isowasm report` (default path results/model_info.json)")

    rp = sub.add_parser("report", help="regenerate FINDINGS.md from results/*.json")
    rp.add_argument("--results", default=None, help="results directory (default: results/)")
    rp.add_argument("--out", default=None, help="output file (default: FINDINGS.md)")

    sub.add_parser("fuzz", help="a fuzzing campaign (see `isowasm fuzz --help`)", add_help=False)

    if argv and argv[0] == "fuzz":
        from isowasm.fuzz import cli_fuzz

        return cli_fuzz(argv[1:])
    if argv and argv[0] == "compile":
        try:
            return cmd_compile(None, argv[1:])
        except IsowasmError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    args = ap.parse_args(argv)
    if getattr(args, "max_steps", 0) is None:
        from spec import table

        args.max_steps = table.limits()["default_max_steps"]
    try:
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "verify":
            return cmd_verify(args)
        if args.cmd == "backends":
            return cmd_backends(args)
        if args.cmd == "report":
            return cmd_report(args)
        if args.cmd == "model":
            return cmd_model_info(args)
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
