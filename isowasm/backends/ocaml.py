"""The OCaml port (ports/ocaml/) as a backend, through its persistent batch
process: one `isowasm-ocaml batch` per backend instance, started on first use
and restarted if it dies. The protocol is in ports/ocaml/README.md."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from isowasm.backends.base import Backend, BackendUnavailable, Case
from isowasm.spec.errors import ProgramError
from isowasm.spec.program import format_program
from isowasm.spec.result import TRAPPED, RunResult

# In a checkout (editable install) the dune build output is found beside the
# package; an installed isowasm finds the binary on PATH or through the variable.
CHECKOUT_BIN = (Path(__file__).resolve().parents[2] / "ports" / "ocaml" / "_build" / "default"
                / "bin" / "isowasm_ocaml.exe")
PATH_NAME = "isowasm-ocaml"
NOT_BUILT = ("ocaml backend not built: in an isowasm checkout run `make ocaml` (dune build in "
             "ports/ocaml), then put _build/default/bin/isowasm_ocaml.exe on PATH as "
             "isowasm-ocaml or set ISOWASM_OCAML_BIN")
TRACE_MODES = ("none", "digest", "text")
DEFAULT_CHECKPOINT_INTERVAL = 16384


def ocaml_binary() -> Path | None:
    """The isowasm-ocaml executable: $ISOWASM_OCAML_BIN, else `isowasm-ocaml`
    on PATH, else the checkout's dune build output; None when none exists."""
    import shutil

    env = os.environ.get("ISOWASM_OCAML_BIN")
    if env:
        path = Path(env)
    else:
        found = shutil.which(PATH_NAME)
        path = Path(found) if found else CHECKOUT_BIN
    return path if path.is_file() and os.access(path, os.X_OK) else None


class OcamlBatchError(RuntimeError):
    """The batch process broke the protocol or died mid-answer."""


class OcamlBackend(Backend):
    name = "ocaml"
    traces = True

    def __init__(self, binary: str | os.PathLike | None = None,
                 checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL):
        path = Path(binary) if binary is not None else ocaml_binary()
        if path is None or not path.is_file():
            raise BackendUnavailable(NOT_BUILT)
        self.binary = path
        self.checkpoint_interval = checkpoint_interval
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    # -- process ---------------------------------------------------------

    def _process(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [str(self.binary), "batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, bufsize=1 << 16)
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- one request -------------------------------------------------------

    def _request(self, header: bytes, body: bytes) -> tuple[list[str], list[tuple[int, str]], bytes]:
        proc = self._process()
        try:
            proc.stdin.write(header + body)
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line.endswith(b"\n"):
                raise OcamlBatchError("isowasm-ocaml batch process ended without an answer")
            text = line[:-1].decode("utf-8", "replace")
            if text.startswith("error "):
                return ["error", text[len("error "):]], [], b""
            f = text.split(" ")
            if f[0] != "ok" or len(f) != 10:
                raise OcamlBatchError(f"isowasm-ocaml: unexpected answer {text[:200]!r}")
            cps = []
            for _ in range(int(f[8])):
                s, d = proc.stdout.readline().decode("ascii").split()
                cps.append((int(s), d))
            n = int(f[9])
            trace = proc.stdout.read(n) if n else b""
            if len(trace) != n:
                raise OcamlBatchError("isowasm-ocaml: trace cut short")
            return f, cps, trace
        except (OSError, ValueError, OcamlBatchError):
            # The process is in an unknown state: end it; the next call starts a fresh one.
            self._kill()
            raise

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.kill()
                proc.wait()
            except OSError:
                pass

    def run(self, case: Case, *, max_steps: int, trace: str = "none", progress=None) -> RunResult:
        if trace not in TRACE_MODES:
            raise ValueError(f"trace mode {trace!r}")
        if max_steps < 0:
            raise ValueError(f"max_steps {max_steps} < 0")
        body = format_program(case.program).encode("ascii")
        header = (f"run {max_steps} {trace} {self.checkpoint_interval} - {len(body)}\n").encode("ascii")
        t0 = time.perf_counter()
        with self._lock:
            try:
                f, cps, text = self._request(header, body)
            except (OSError, OcamlBatchError):
                # A died process (or a broken pipe) is restarted once.
                f, cps, text = self._request(header, body)
        seconds = time.perf_counter() - t0
        if f[0] == "error":
            raise ProgramError(f[1])
        _, status, trap, trap_pc, steps, tokens, out_hex, digest, _, _ = f
        res = RunResult(
            backend=self.name, status=status,
            output=b"" if out_hex == "-" else bytes.fromhex(out_hex),
            trap=None if trap == "-" else trap,
            trap_pc=None if trap_pc == "-" else int(trap_pc),
            steps=int(steps), tokens=int(tokens), seconds=seconds,
        )
        if status == TRAPPED and res.trap is None:  # pragma: no cover - protocol guard
            raise OcamlBatchError("trapped without a trap name")
        if trace != "none":
            res.digest = digest
            res.checkpoints = cps
            if trace == "text":
                res.trace = text.decode("ascii")
        if progress:
            progress(res.steps, res.tokens)
        return res
