"""Program files (spec/MACHINE.md §2): parsing with located errors, the
canonical form, and the input section's encoding."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from isowasm.spec import table
from isowasm.spec.errors import ProgramError

OP_NAMES: list[str] = table.op_names() + ["input_base"]
OPCODE: dict[str, int] = {n: i for i, n in enumerate(OP_NAMES)}
INPUT_BASE = OPCODE["input_base"]
INPUT_COMMIT = "commit(+0,sts=0,bt=0)"

_HEX2 = re.compile(r"[0-9a-fA-F]{2}\Z")
_BRANCHES = ("br", "br_if", "call")
_FALL_THROUGH_ENDS = ("halt", "br", "return")


@dataclass
class Program:
    names: list[str]                 # opcode name per instruction
    imms: list[int]                  # u32 immediate per instruction
    input: bytes = b""               # without the terminating NUL
    source: str = "<program>"
    codes: list[int] = field(init=False, repr=False)
    _text: str | None = field(init=False, repr=False, default=None, compare=False)

    def __post_init__(self) -> None:
        self.codes = [OPCODE[n] for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def with_input(self, data: bytes) -> "Program":
        check_input(data, self.source)
        return Program(list(self.names), list(self.imms), data, self.source)


def check_input(data: bytes, where: str = "input") -> None:
    if b"\x00" in data:
        raise ProgramError(f"{where}: input byte {data.index(0)} is 00; the input is NUL-terminated and cannot contain it")
    lim = table.limits()["input_bytes"]
    if len(data) > lim:
        raise ProgramError(f"{where}: input is {len(data)} bytes, over the limit of {lim}")


def input_tokens(data: bytes) -> list[str]:
    """The input section's tokens, without the closing commit."""
    out = []
    for b in data + b"\x00":
        if 0x21 <= b <= 0x7E and b not in (0x7B, 0x7D):
            out.append(chr(b))
        else:
            out.append(f"{b:02x}")
    return out


def input_line(data: bytes) -> str:
    return " ".join(input_tokens(data) + [INPUT_COMMIT]) + "\n"


def imm_bytes(imm: int) -> str:
    imm &= 0xFFFFFFFF
    return f"{imm & 255:02x} {(imm >> 8) & 255:02x} {(imm >> 16) & 255:02x} {imm >> 24:02x}"


_LINES: dict[tuple[str, int], str] = {}   # instruction line memo: programs repeat most lines


def format_instructions(prog: Program) -> str:
    """The `{ ... }` part of the canonical file."""
    memo = _LINES
    if len(memo) > 200_000:
        memo.clear()
    lines = ["{"]
    for key in zip(prog.names, prog.imms):
        line = memo.get(key)
        if line is None:
            line = memo[key] = f"{key[0]} {imm_bytes(key[1])}"
        lines.append(line)
    lines.append("}")
    return "\n".join(lines) + "\n"


def format_program(prog: Program) -> str:
    """The program file: instructions, then the input section. Cached on the
    Program (programs are not changed once built), so backends that take
    text share one rendering."""
    if prog._text is None:
        prog._text = format_instructions(prog) + input_line(prog.input)
    return prog._text


def _line_of(text: str, offsets: list[int], k: int) -> int:
    return text.count("\n", 0, offsets[k]) + 1


def parse_program(text: str, source: str = "<program>") -> Program:
    """Parse and validate a program file; raise ProgramError naming the token
    and line of the first problem."""
    toks: list[str] = []
    offs: list[int] = []
    for m in re.finditer(r"\S+", text):
        toks.append(m.group())
        offs.append(m.start())

    def err(k: int, msg: str) -> ProgramError:
        if k >= len(toks):
            return ProgramError(f"{source}: at end of file: {msg}")
        return ProgramError(f"{source}:{_line_of(text, offs, k)}: token {k} {toks[k]!r}: {msg}")

    if not toks:
        raise ProgramError(f"{source}: empty program file (expected '{{')")
    if toks[0] != "{":
        raise err(0, "a program file starts with '{'")
    try:
        close = toks.index("}", 1)
    except ValueError:
        raise err(len(toks), "no closing '}' after the instructions") from None
    body = close - 1
    if body % 5:
        # Point at the first group that does not look like `op b b b b`.
        for k in range(1, close, 5):
            if toks[k] not in OPCODE:
                raise err(k, f"unknown opcode (known: {', '.join(OP_NAMES[:4])}, ...)")
            for j in range(1, 5):
                if k + j >= close or not _HEX2.match(toks[k + j]):
                    raise err(min(k + j, close), "expected an immediate byte (two hex digits); each instruction is an opcode and 4 bytes")
        raise err(close, "instruction section is not a multiple of 5 tokens")
    n = body // 5
    lim = table.limits()
    if n == 0:
        raise err(close, "the program has no instructions")
    if n > lim["max_instructions"]:
        raise err(close, f"{n} instructions, over the limit of {lim['max_instructions']}")

    names: list[str] = []
    imms: list[int] = []
    for i in range(n):
        k = 1 + 5 * i
        name = toks[k]
        if name not in OPCODE:
            hint = _closest(name)
            raise err(k, f"unknown opcode at pc {i}" + (f" (did you mean {hint!r}?)" if hint else ""))
        imm = 0
        for j in range(4):
            b = toks[k + 1 + j]
            if not _HEX2.match(b):
                raise err(k + 1 + j, f"immediate byte {j} of pc {i} is not two hex digits")
            imm |= int(b, 16) << (8 * j)
        names.append(name)
        imms.append(imm)
    _validate(names, imms, lambda i, msg: err(1 + 5 * i, msg))
    data = _parse_input(toks, close + 1, err)
    return Program(names, imms, data, source)


def _closest(name: str) -> str | None:
    import difflib

    m = difflib.get_close_matches(name, OP_NAMES, n=1, cutoff=0.75)
    return m[0] if m else None


def _validate(names: list[str], imms: list[int], err) -> None:
    lim = table.limits()
    n = len(names)
    codes = table.trap_by_code()
    for i, (name, imm) in enumerate(zip(names, imms)):
        if name == "input_base" and i != 0:
            raise err(i, f"input_base at pc {i}; it may only be the first instruction")
        elif name.startswith("local.") and imm >= lim["locals_per_frame"]:
            raise err(i, f"local index {imm} at pc {i}, limit is {lim['locals_per_frame']} locals per frame")
        elif name.startswith("global.") and imm >= lim["globals"]:
            raise err(i, f"global index {imm} at pc {i}, limit is {lim['globals']} globals")
        elif name == "halt" and imm != 0 and imm not in codes:
            raise err(i, f"halt code {imm} at pc {i} is neither 0 nor a trap code {sorted(codes)}")
        elif name in _BRANCHES:
            off = imm - (1 << 32) if imm >= 1 << 31 else imm
            target = i + 1 + off
            if not 0 <= target < n:
                raise err(i, f"{name} at pc {i} targets pc {target}, outside the program (0..{n - 1})")
    if names[-1] not in _FALL_THROUGH_ENDS:
        raise err(n - 1, f"the last instruction ({names[-1]}) can fall off the end; it must be halt, br or return")


def _parse_input(toks: list[str], k: int, err) -> bytes:
    if k == len(toks):
        return b""
    out = bytearray()
    start = k
    while k < len(toks):
        t = toks[k]
        if t == INPUT_COMMIT:
            raise err(k, "input section has no terminating 00 before its commit")
        if len(t) == 1 and 0x21 <= ord(t) <= 0x7E and t not in "{}":
            out.append(ord(t))
        elif _HEX2.match(t):
            b = int(t, 16)
            if b == 0:
                break
            out.append(b)
        else:
            raise err(k, f"input byte {k - start} is neither a printable character nor two hex digits")
        k += 1
    else:
        raise err(k, "input section has no terminating 00")
    if k + 1 >= len(toks) or toks[k + 1] != INPUT_COMMIT:
        raise err(k + 1, f"expected {INPUT_COMMIT} after the input's terminating 00")
    if k + 2 != len(toks):
        raise err(k + 2, "unexpected token after the input section")
    check_input(bytes(out), "input section")
    return bytes(out)


def load_program(path: str) -> Program:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ProgramError(f"{path}: not a text program file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ProgramError(f"{path}: cannot read: {e.strerror}") from None
    return parse_program(text, path)
