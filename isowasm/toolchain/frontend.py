"""Source -> wasm (clang for C, wasmtime.wat2wasm for WAT), the content-hash
cache, and the public entry points."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import wasmtime

from isowasm.toolchain.compile import compile_bytes
from isowasm.toolchain.errors import CompileError
from isowasm.spec.errors import IsowasmError
from isowasm.atomic import atomic_write
from isowasm.spec.program import Program, check_input, format_instructions, parse_program

TOOLCHAIN_DIR = Path(__file__).parent
RUNTIME_DIR = TOOLCHAIN_DIR.parent / "runtime"
CLANG = os.environ.get("ISOWASM_CLANG", "clang")
CLANG_FLAGS = [
    "--target=wasm32", "-nostdlib", "-O2", "-fno-builtin",
    # Adjacent constant stores would otherwise be merged into i64.store,
    # which the machine (i32 only) cannot run.
    "-mllvm", "-combiner-store-merging=0",
    "-Wl,--no-entry", "-Wl,--export=compute", "-Wl,--export=__heap_base",
    "-Wl,-z,stack-size=65536", "-Wl,--initial-memory=10485760", "-Wl,--max-memory=10485760",
]
_engine = None


def _header_flags() -> list[str]:
    if (RUNTIME_DIR / "isowasm.h").exists():
        return [f"-I{RUNTIME_DIR}", "-include", "isowasm.h"]
    return []


@lru_cache(maxsize=1)
def _toolchain_hash() -> str:
    """Changes whenever the toolchain itself changes, so stale cache entries
    are never used."""
    from isowasm.spec.table import MACHINE_YAML

    h = hashlib.sha256()
    # the machine table too: the toolchain reads its limits and trap codes
    for p in sorted(TOOLCHAIN_DIR.glob("*.py")) + sorted(TOOLCHAIN_DIR.glob("*.wat")) + [MACHINE_YAML]:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("ISOWASM_CACHE") or Path.home() / ".cache" / "isowasm")


def _cache_key(text: str, lang: str) -> str:
    h = hashlib.sha256()
    h.update(_toolchain_hash().encode())
    h.update(lang.encode() + b"\0" + text.encode("utf-8", "surrogateescape"))
    if lang == "c":
        h.update(" ".join(CLANG_FLAGS + _header_flags()).encode())
        hdr = RUNTIME_DIR / "isowasm.h"
        if hdr.exists():
            h.update(hdr.read_bytes())
    return h.hexdigest()


def _cache_read(key: str) -> tuple[bytes, str] | None:
    d = cache_dir()
    try:
        return (d / f"{key}.wasm").read_bytes(), (d / f"{key}.prog").read_text()
    except OSError:
        return None


def _cache_write(key: str, wasm: bytes, prog: Program) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        # The program last: a reader that finds it also finds the wasm.
        atomic_write(d / f"{key}.wasm", wasm)
        atomic_write(d / f"{key}.prog", format_instructions(prog).encode())
    except OSError:
        pass  # a read-only or full cache only costs time


def wat_to_wasm(text: str, name: str = "<source>") -> bytes:
    try:
        return wasmtime.wat2wasm(text)
    except wasmtime.WasmtimeError as e:
        msg = str(e)
        first = msg.splitlines()[0] if msg else "syntax error"
        m = re.search(r"-->\s*\S*?:(\d+):(\d+)", msg)
        where = f"{name}:{m.group(1)}:{m.group(2)}" if m else name
        raise CompileError(f"{where}: {first}", construct="wat") from None


def c_to_wasm(text: str, name: str = "<source>") -> bytes:
    with tempfile.TemporaryDirectory(prefix="isowasm-cc-") as tmp:
        src = Path(tmp) / "prog.c"
        out = Path(tmp) / "prog.wasm"
        src.write_text(text)
        cmd = [CLANG, *CLANG_FLAGS, *_header_flags(), "-o", str(out), str(src)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            raise CompileError(f"{name}: clang not found ({CLANG}); install clang and lld 14") from None
        except subprocess.TimeoutExpired:
            raise CompileError(f"{name}: clang timed out") from None
        if r.returncode != 0:
            lines = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines() or ["failed"]
            raise CompileError(f"{name}: clang: {lines[0].replace(str(src), name)}", construct="c")
        return out.read_bytes()


def _wat_line(text: str, construct: str | None, func: int | None) -> int | None:
    """The WAT line of a rejected construct: the first mention of its
    mnemonic inside the text of function `func` (the func-th `(func`, imports
    included, type definitions not), else anywhere. Byte offsets cannot be
    mapped back through wat2wasm, so this is a search, not a source map."""
    if not construct:
        return None
    words = construct.split()
    word = words[0]
    if word == "import" and len(words) > 1:
        word = words[1].split(".")[-1]
    code = re.sub(r";;[^\n]*", lambda m: " " * len(m.group()), text)
    pat = re.compile(r"(?<![\w.$])" + re.escape(word) + r"(?![\w.])")
    starts = [m.start() for m in re.finditer(r"\(func\b", code)
              if not re.search(r"\(type(\s+\$\S+)?\s*$", code[:m.start()])]
    span = (0, len(code))
    if func is not None and func < len(starts):
        span = (starts[func], starts[func + 1] if func + 1 < len(starts) else len(code))
    m = pat.search(code, *span) or pat.search(code)
    return code.count("\n", 0, m.start()) + 1 if m else None


def _engine_() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        _engine = wasmtime.Engine()
    return _engine


def compile_wasm(wasm: bytes, name: str = "<wasm>", input: bytes = b"") -> Program:
    check_input(input, name)
    try:
        wasmtime.Module.validate(_engine_(), wasm)
    except wasmtime.WasmtimeError as e:
        # wasmtime spreads some messages over lines (the magic-number one
        # lists the bytes): fold it into one line rather than cut it
        text = " ".join(str(e).split()).replace("[ ", "[").replace(", ]", "]") or "invalid module"
        raise CompileError(f"{name}: invalid wasm module: {text}") from None
    try:
        return compile_bytes(wasm, input, name)
    except CompileError as e:
        raise CompileError(f"{name}: {e}", construct=e.construct, func=e.func, offset=e.offset) from None


def compile_source(text: str, lang: str, name: str = "<source>", input: bytes = b"") -> tuple[bytes, Program]:
    if lang not in ("wat", "c"):
        raise CompileError(f"{name}: unknown source language {lang!r} (expected 'wat' or 'c')")
    check_input(input, name)
    key = _cache_key(text, lang)
    hit = _cache_read(key)
    if hit is not None:
        wasm, prog_text = hit
        try:
            p = parse_program(prog_text + "00 commit(+0,sts=0,bt=0)\n", name)
            return wasm, Program(p.names, p.imms, input, name)
        except IsowasmError:
            pass  # a damaged entry is recompiled and overwritten
    wasm = wat_to_wasm(text, name) if lang == "wat" else c_to_wasm(text, name)
    try:
        prog = compile_wasm(wasm, name, input)
    except CompileError as e:
        line = _wat_line(text, e.construct, e.func) if lang == "wat" else None
        if line is None:
            raise
        raise CompileError(f"{e} (WAT line {line})", construct=e.construct, func=e.func,
                           offset=e.offset) from None
    _cache_write(key, wasm, prog)
    return wasm, prog


def compile_file(path: str, input: bytes = b"") -> tuple[bytes, Program]:
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".c", ".wat", ".wasm"):
        raise CompileError(f"{path}: unknown file type {ext or '(none)'} (expected .c, .wat or .wasm)")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CompileError(f"{path}: cannot read: {e.strerror}") from None
    if ext == ".wasm":
        return data, compile_wasm(data, str(path), input)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CompileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return compile_source(text, ext[1:], str(path), input)
