"""Implementations outside isowasm, run as a command (spec/PLUGINS.md).

A command declared in the backends file takes a program file and a budget
and writes the canonical trace. Everything else — status, output bytes,
steps, tokens, digest — is read from that trace, so an external
implementation needs to know nothing of isowasm beyond the text format.

What real engines do differently is declared, not wrapped: a token budget
(`{max_tokens}`; the trace is cut back to the step budget), a trace written
to a file (`trace_file`), an echo of the program before the trace, a program
file or a trace without the input section (`prompt_input`, `trace_input`),
a working directory and a timeout.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.errors import IsowasmError
from isowasm.spec.program import format_instructions, format_program, input_line, input_tokens
from isowasm.spec.result import RunResult
from isowasm.spec.trace import annotate_lines, digest_text, summarize

DEFAULT_FILE = "isowasm-backends.yaml"
DEFAULT_TIMEOUT_S = 60.0   # per run, in every command (spec/PLUGINS.md)
MAX_TOKENS_PER_STEP = 6    # MACHINE.md: the most tokens one step writes
INPUT_MODES = ("always", "with_input_base", "never")
KEYS = {"command", "timeout_s", "cwd", "trace_file", "prompt_input", "trace_input"}


def backends_file() -> Path | None:
    p = Path(os.environ.get("ISOWASM_BACKENDS_FILE", DEFAULT_FILE))
    return p if p.exists() else None


def declarations(section: str, keys: set[str]) -> dict[str, dict]:
    """name -> declaration of one section (`backends`, `compilers`) of the
    backends file, each checked for a non-empty `command` list and known
    keys, with `_file` added; empty without a file."""
    path = backends_file()
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise IsowasmError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    items = data.get(section, {}) if isinstance(data, dict) else None
    what = section[:-1]
    if not isinstance(items, dict):
        raise IsowasmError(f"{path}: expected a mapping `{section}: {{name: {{command: [...]}}}}`")
    for name, d in items.items():
        if not isinstance(d, dict) or not isinstance(d.get("command"), list) or not d["command"]:
            raise IsowasmError(f"{path}: {what} {name!r}: `command` must be a non-empty list")
        unknown = sorted(set(d) - keys)
        if unknown:
            raise IsowasmError(f"{path}: {what} {name!r}: unknown key(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(keys))})")
    return {name: dict(d, _file=str(path)) for name, d in items.items()}


def declared() -> dict[str, dict]:
    """name -> backend declaration, from the backends file (empty without one)."""
    items = declarations("backends", KEYS)
    for name, d in items.items():
        path = d["_file"]
        for key in ("prompt_input", "trace_input"):
            if d.get(key, "always") not in INPUT_MODES:
                raise IsowasmError(f"{path}: backend {name!r}: {key} must be one of {', '.join(INPUT_MODES)}")
    return items


class CommandBackend(Backend):
    traces = True

    def __init__(self, name: str, decl: dict):
        self.name = name
        self.command = [str(a) for a in decl["command"]]
        try:
            self.timeout = float(decl.get("timeout_s", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            raise IsowasmError(f"{decl['_file']}: backend {name!r}: timeout_s must be a number of seconds") from None
        if not self.timeout > 0:
            raise IsowasmError(f"{decl['_file']}: backend {name!r}: timeout_s must be positive")
        here = Path(decl["_file"]).resolve().parent
        self.cwd = str(here / decl["cwd"]) if decl.get("cwd") else str(here)
        self.trace_file = decl.get("trace_file")
        self.prompt_input = decl.get("prompt_input", "always")
        self.trace_input = decl.get("trace_input", "always")
        exe = self.command[0]
        if os.sep not in exe and not any((Path(d) / exe).exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
            raise BackendUnavailable(f"backend {name!r}: command {exe!r} not found on PATH")

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        t0 = time.perf_counter()
        prog = case.program
        has_base = bool(prog.names) and prog.names[0] == "input_base"
        with tempfile.TemporaryDirectory(prefix="isowasm-ext-") as d:
            stem = case.name.replace("/", "_") or "program"
            prog_path = Path(d) / f"{stem}.txt"
            prog_text = format_program(prog)
            if not _wanted(self.prompt_input, has_base):
                prog_text = format_instructions(prog)
            prog_path.write_text(prog_text, encoding="ascii")
            fields = {"program": str(prog_path), "dir": d, "stem": stem, "max_steps": str(max_steps),
                      "max_tokens": str(max_tokens(prog, max_steps)),
                      "trace_out": str(Path(d) / "trace.txt")}
            argv = [_fill(a, fields) for a in self.command]
            p = run_command(self.name, argv, self.timeout, self.cwd)
            if p.returncode != 0:
                err = p.stderr.decode("utf-8", "backslashreplace").strip().splitlines()
                raise IsowasmError(f"backend {self.name}: exit status {p.returncode}: {err[-1] if err else ''}")
            raw = p.stdout
            if self.trace_file:
                tf = Path(_fill(self.trace_file, fields))
                if not tf.is_absolute():
                    tf = Path(self.cwd) / tf
                try:
                    raw = tf.read_bytes()
                except OSError:
                    raise IsowasmError(f"backend {self.name}: wrote no trace file {tf.name} "
                                       f"(trace_file in the backends file)") from None
        text = strip_echo(self.name, prog, ascii_text(self.name, raw).replace("\r\n", "\n"))
        if not _wanted(self.trace_input, has_base):
            text = input_line(prog.input) + text   # its trace opens with the first step
        text = cut_to_steps(prog, text, max_steps)
        try:
            s = summarize(case.program, text)
        except IsowasmError as e:
            raise IsowasmError(f"backend {self.name}: {e}") from None
        except (ValueError, IndexError, KeyError) as e:
            raise IsowasmError(f"backend {self.name}: its trace is malformed: {e}") from None
        return RunResult(backend=self.name, status=s["status"], output=s["output"], trap=s["trap"],
                         trap_pc=s["trap_pc"], steps=s["steps"], tokens=s["tokens"],
                         trace=text if trace == "text" else None, digest=digest_text(text),
                         seconds=time.perf_counter() - t0)


def run_command(name: str, argv: list[str], timeout: float, cwd: str | None) -> subprocess.CompletedProcess:
    """Run a plug-in's command; past its timeout the whole process group is
    killed (a wrapper's children too), so a hanging plug-in stalls nothing."""
    import signal

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    except OSError as e:
        raise IsowasmError(f"backend {name}: cannot start {argv[0]}: {e.strerror}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise IsowasmError(f"backend {name}: no answer within its timeout of {timeout:g} s "
                           f"(timeout_s in the backends file)") from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def ascii_text(name: str, data: bytes) -> str:
    """A trace is ASCII text (MACHINE.md §5); any other byte is the plug-in's
    error, named with its offset and line rather than replaced."""
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise IsowasmError(f"backend {name}: its trace is not ASCII text: byte 0x{data[e.start]:02x} "
                           f"at offset {e.start} (line {line})") from None


def _wanted(mode: str, has_base: bool) -> bool:
    return mode == "always" or (mode == "with_input_base" and has_base)


def _fill(template: str, fields: dict) -> str:
    for k, v in fields.items():
        template = template.replace("{" + k + "}", v)
    return template


def max_tokens(prog, max_steps: int) -> int:
    """A token budget that covers `max_steps` steps whatever they are: the
    input section plus the most tokens a step writes, times the steps."""
    return len(input_tokens(prog.input)) + 1 + MAX_TOKENS_PER_STEP * max_steps


def strip_echo(name: str, prog, text: str) -> str:
    """Drop what an engine prints before the trace: a whole reference file's
    instruction part (which must be the program it was given), or any echo
    that ends with the line `}`."""
    head = format_instructions(prog)
    if text.startswith(head):
        return text[len(head):]
    if text.startswith("{"):
        raise IsowasmError(f"backend {name}: echoed a different program than it was given")
    cut = text.find("\n}\n")
    if cut >= 0 and text[:cut + 1].lstrip().startswith("{"):
        return text[cut + 3:]
    return text


def cut_to_steps(prog, text: str, max_steps: int) -> str:
    """The trace of at most `max_steps` steps: an engine whose budget counts
    tokens runs on past the step budget, possibly to the middle of a step.
    Lines that fit no instruction are kept (they are that engine's finding)."""
    ann = annotate_lines(prog, text)
    for i, (step, _) in enumerate(ann):
        if step is not None and step >= max_steps:
            return "".join(ln + "\n" for ln in text.split("\n")[:i])
    return text
