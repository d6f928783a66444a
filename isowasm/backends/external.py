"""Implementations outside isowasm, run as a command (spec/PLUGINS.md).

A command declared in the backends file takes a program file (with its
input section) and the step budget and writes the canonical trace on its
standard output. Everything else — status, output bytes, steps, tokens,
digest — is read from that trace, so an external implementation needs to
know nothing of isowasm beyond the text format.
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
from isowasm.spec.program import format_instructions, format_program
from isowasm.spec.result import RunResult
from isowasm.spec.trace import digest_text, summarize

DEFAULT_FILE = "isowasm-backends.yaml"
DEFAULT_TIMEOUT_S = 60.0   # per run, in every command (spec/PLUGINS.md)


def backends_file() -> Path | None:
    p = Path(os.environ.get("ISOWASM_BACKENDS_FILE", DEFAULT_FILE))
    return p if p.exists() else None


def declared() -> dict[str, dict]:
    """name -> declaration, from the backends file (empty without one)."""
    path = backends_file()
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise IsowasmError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    items = data.get("backends", {}) if isinstance(data, dict) else None
    if not isinstance(items, dict):
        raise IsowasmError(f"{path}: expected a mapping `backends: {{name: {{command: [...]}}}}`")
    for name, d in items.items():
        if not isinstance(d, dict) or not isinstance(d.get("command"), list) or not d["command"]:
            raise IsowasmError(f"{path}: backend {name!r}: `command` must be a non-empty list")
    return {name: dict(d, _file=str(path)) for name, d in items.items()}


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
        self.cwd = decl.get("cwd") or str(Path(decl["_file"]).resolve().parent)
        exe = self.command[0]
        if os.sep not in exe and not any((Path(d) / exe).exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
            raise BackendUnavailable(f"backend {name!r}: command {exe!r} not found on PATH")

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="isowasm-ext-") as d:
            prog_path = Path(d) / f"{case.name.replace('/', '_') or 'program'}.txt"
            prog_path.write_text(format_program(case.program), encoding="ascii")
            argv = [a.replace("{program}", str(prog_path)).replace("{max_steps}", str(max_steps))
                    for a in self.command]
            p = run_command(self.name, argv, self.timeout, self.cwd)
        if p.returncode != 0:
            err = p.stderr.decode("utf-8", "backslashreplace").strip().splitlines()
            raise IsowasmError(f"backend {self.name}: exit status {p.returncode}: {err[-1] if err else ''}")
        text = ascii_text(self.name, p.stdout).replace("\r\n", "\n")
        head = format_instructions(case.program)
        if text.startswith("{"):  # a whole reference file: its program must be ours
            if not text.startswith(head):
                raise IsowasmError(f"backend {self.name}: echoed a different program than it was given")
            text = text[len(head):]
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
