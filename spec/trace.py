"""The trace as text (spec/MACHINE.md §5): how each op's step is written as
tokens, the canonical form, the SHA-256 digest and its checkpoints.

The token layout of every op is derived from isowasm.spec/machine.yaml (`emit`,
`commit`, `width`), so the table and the Python implementation cannot drift.
"""

from __future__ import annotations

import hashlib

from isowasm.spec import table
from isowasm.spec.program import INPUT_BASE, Program, imm_bytes, input_line

TRAP_EVENT = -1  # value slot of an event that records a trap; flags = trap index
TERMINALS = ("commit(", "out(", "halt", "trap(", "branch_taken", "call_commit", "return_commit")

_B = [f"{b:02x}" for b in range(256)]
_BF = [f"{b:02x}'" for b in range(256)]
_TRAP_TOKENS = [f"trap({n})\n" for n in table.trap_names()]


def value_bytes(v: int, f: int, n: int = 4) -> str:
    """`n` value bytes, lowest first, byte i flagged when bit i of f is set."""
    return " ".join((_BF if f >> i & 1 else _B)[(v >> 8 * i) & 255] for i in range(n))


def commit_token(c: list[int]) -> str:
    sd, sts, bt = c
    return f"commit({sd:+d},sts={sts},bt={bt})"


def out_token(b: int) -> str:
    return f"out({chr(b)})" if 0x21 <= b <= 0x7E else f"out({b:02x})"


def _renderer(name: str, imm: int):
    """A function (value, flags) -> the step's canonical lines, for one
    instruction. Built once per pc so the per-step work is minimal."""
    if name == "input_base":
        return lambda v, f: ""  # its tokens are the input section, written first
    spec = _OPS[name]
    emit = spec["emit"]
    if emit == "value4":
        tail = " " + commit_token(spec["commit"]) + "\n"
        return lambda v, f: value_bytes(v, f) + tail
    if emit == "value_n":
        tail = " " + commit_token(spec["commit"]) + "\n"
        w = spec["width"]
        return lambda v, f: value_bytes(v, f, w) + tail
    if emit == "commit":
        line = commit_token(spec["commit"]) + "\n"
        return lambda v, f: line
    if emit == "branch":
        taken = "branch_taken\n" + imm_bytes(imm) + " " + commit_token(spec["commit"]) + "\n"
        not_taken = commit_token(spec.get("commit_not_taken") or spec["commit"]) + "\n"
        return lambda v, f: taken if v else not_taken
    if emit == "call":
        line = "branch_taken\n" + imm_bytes(imm) + " call_commit\n"
        return lambda v, f: line
    if emit == "return":
        return lambda v, f: "branch_taken\n" + value_bytes(v, f) + " return_commit\n"
    if emit == "out":
        outs = [out_token(b) + "\n" for b in range(256)]
        return lambda v, f: outs[v & 255]
    if emit == "halt":
        return lambda v, f: "halt\n"
    raise AssertionError(f"no emission rule {emit!r} for {name}")  # pragma: no cover


_OPS = {o["name"]: o for o in table.ops()}


def step_text(name: str, imm: int, v: int, f: int) -> str:
    """The canonical lines of one step (trap events included)."""
    if v == TRAP_EVENT:
        return _TRAP_TOKENS[f]
    return _renderer(name, imm)(v, f)


def count_tokens(text: str) -> int:
    # Every token is followed by exactly one separator, a space or a newline.
    return text.count(" ") + text.count("\n")


_RENDERERS: dict[tuple[str, int], tuple] = {}   # (name, imm) -> (renderer, value4 tail)
_PLAIN_VALUES: dict[int, str] = {}                # v -> value_bytes(v, 0), the common case


def _cached_renderer(name: str, imm: int) -> tuple:
    """The step renderer of one instruction, shared across programs, with the
    fixed tail that follows the value bytes of value4 ops (None otherwise)."""
    hit = _RENDERERS.get((name, imm))
    if hit is None:
        if len(_RENDERERS) > 200_000:
            _RENDERERS.clear()
        spec = _OPS.get(name)
        tail = " " + commit_token(spec["commit"]) + "\n" if spec and spec["emit"] == "value4" else None
        hit = _RENDERERS[(name, imm)] = (_renderer(name, imm), tail)
    return hit


class TraceSink:
    """Receives the reference executor's events, writes canonical text, and
    keeps a running SHA-256 with checkpoints."""

    def __init__(self, prog: Program, data: bytes, keep_text: bool = False):
        self.prog = prog
        hits = [_cached_renderer(n, i) for n, i in zip(prog.names, prog.imms)]
        self._render = [r for r, _ in hits]
        self._tails = [t for _, t in hits]
        self._hash = hashlib.sha256()
        self._parts: list[str] | None = [] if keep_text else None
        self.tokens = 0
        self.checkpoints: list[tuple[int, str]] = []
        self._write(input_line(data))

    def _write(self, text: str) -> None:
        self._hash.update(text.encode("ascii"))
        self.tokens += count_tokens(text)
        if self._parts is not None:
            self._parts.append(text)

    def feed(self, events) -> None:
        r, tails, plain, trap = self._render, self._tails, _PLAIN_VALUES, _TRAP_TOKENS
        if len(plain) > 200_000:
            plain.clear()
        parts: list[str] = []
        app = parts.append
        for pc, v, f in events:
            if v == TRAP_EVENT:
                app(trap[f])
                continue
            tail = tails[pc]
            if tail is not None and not f:
                # Most steps are flag-free value4 steps: memoised value text + fixed tail.
                text = plain.get(v)
                if text is None:
                    text = plain[v] = value_bytes(v, 0)
                app(text)
                app(tail)
            else:
                app(r[pc](v, f))
        self._write("".join(parts))

    def checkpoint(self, steps: int) -> None:
        self.checkpoints.append((steps, self._hash.copy().hexdigest()))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def text(self) -> str:
        return "".join(self._parts or [])


def canonical_file(prog: Program, trace_text: str) -> str:
    """The canonical reference file: instructions, then the trace."""
    from isowasm.spec.program import format_instructions

    return format_instructions(prog) + trace_text


def split_steps(trace_text: str) -> list[list[str]]:
    """Split canonical trace text into groups of tokens, one per line."""
    return [line.split(" ") for line in trace_text.split("\n") if line]


def digest_text(trace_text: str) -> str:
    return hashlib.sha256(trace_text.encode("ascii")).hexdigest()


__all__ = [
    "TRAP_EVENT", "TERMINALS", "TraceSink", "step_text", "value_bytes", "commit_token",
    "out_token", "count_tokens", "canonical_file", "split_steps", "digest_text", "INPUT_BASE",
]


def annotate_lines(prog: Program, trace_text: str) -> list[tuple[int | None, int | None]]:
    """For each line of a canonical trace, the (step, pc) it belongs to.

    The trace alone fixes control flow: a `branch_taken` line means the jump
    was taken, and a return's value bytes are (return pc − pc − 1). So the pc
    of every line can be recovered from the program and the trace, whichever
    implementation wrote it. Lines past the first one that does not fit the
    program get (None, None). The input line is step 0 when the program
    starts with input_base, else (None, None) — it belongs to no instruction.
    """
    lines = trace_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[tuple[int | None, int | None]] = []
    n = len(prog.names)
    has_base = n and prog.names[0] == "input_base"
    out.append((0, 0) if has_base else (None, None))
    step, pc = (1, 1) if has_base else (0, 0)
    i = 1
    while i < len(lines) and 0 <= pc < n:
        name, imm = prog.names[pc], prog.imms[pc]
        line = lines[i]
        if line == "branch_taken" and i + 1 < len(lines):
            out += [(step, pc), (step, pc)]
            if name == "return":
                toks = lines[i + 1].split(" ")
                try:
                    v = sum(int(t[:2], 16) << 8 * k for k, t in enumerate(toks[:4]))
                except ValueError:
                    break
                pc = (pc + 1 + v) & 0xFFFFFFFF
            else:
                off = imm - (1 << 32) if imm >> 31 else imm
                pc = pc + 1 + off
            i += 2
        else:
            out.append((step, pc))
            if line.startswith(("halt", "trap(")):
                i += 1
                break
            pc += 1
            i += 1
        step += 1
    out += [(None, None)] * (len(lines) - len(out))
    return out


def summarize(prog: Program, trace_text: str) -> dict:
    """What a canonical trace says about its run, read from the trace alone:
    status (halted / trapped / budget-exhausted — a trace that ends without
    halt or trap stopped on its budget), trap name and pc, output bytes, steps
    and tokens. Used for implementations that only hand back a trace."""
    lines = trace_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    ann = annotate_lines(prog, trace_text)
    output = bytearray()
    for ln in lines:
        if ln.startswith("out("):
            c = ln[4:-1]
            output.append(ord(c) if len(c) == 1 else int(c, 16))
    last = lines[-1] if lines else ""
    status, trap, trap_pc = "budget-exhausted", None, None
    if last == "halt":
        status = "halted"
    elif last.startswith("trap(") and last.endswith(")"):
        status, trap, trap_pc = "trapped", last[5:-1], ann[-1][1]
    steps = max((s for s, _ in ann if s is not None), default=-1) + 1
    return {"status": status, "trap": trap, "trap_pc": trap_pc, "output": bytes(output),
            "steps": steps, "tokens": count_tokens(trace_text)}
