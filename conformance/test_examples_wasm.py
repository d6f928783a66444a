"""The example programs and the C runtime, against wasmtime alone.

Independent of the isowasm toolchain: each example in
isowasm/suites/data/examples/manifest.yaml is compiled by clang exactly as
isowasm.h documents, checked to be integer-only (the toolchain rejects
floats, SIMD, bulk memory and indirect calls; i64 it lowers onto i32
pairs), run in wasmtime with the
input placed at (__heap_base + 15) & ~15 (spec/MACHINE.md §8), and its
output compared with expect_output. wasmtime's fuel (one unit per wasm
instruction) must stay within max_steps, since each wasm instruction lowers
to at least one machine step. A second group of tests exercises the runtime
header itself (number printing, parsing, the mem* functions).

The machine-level runs of the same examples (reference executor and the
other backends) live with the toolchain's tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import wasmtime
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "isowasm" / "suites" / "data" / "examples"
RUNTIME = REPO / "isowasm" / "runtime"

CFLAGS = [
    "--target=wasm32", "-nostdlib", "-O2", "-fno-builtin",
    "-Wall", "-Wextra", "-Werror",
    f"-I{RUNTIME}", "-include", "isowasm.h",
]
LDFLAGS = [
    "-Wl,--no-entry", "-Wl,--export=compute", "-Wl,--export=__heap_base",
    "-Wl,-z,stack-size=65536",
    "-Wl,--initial-memory=10485760", "-Wl,--max-memory=10485760",
]
# Anything in the generated assembly the toolchain would reject.
NOT_I32 = re.compile(r"\b(f32\.|f64\.|v128|call_indirect|memory\.(fill|copy))")

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang (wasm32) is not installed")


def _manifest() -> list[dict]:
    with open(EXAMPLES / "manifest.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)["programs"]


def compile_c(src: Path, out: Path) -> bytes:
    """clang → .wasm; also checks the assembly for non-i32 constructs."""
    subprocess.run(["clang", *CFLAGS, *LDFLAGS, "-o", str(out), str(src)],
                   check=True, capture_output=True, text=True)
    asm = subprocess.run(["clang", *CFLAGS, "-S", "-o", "-", str(src)],
                         check=True, capture_output=True, text=True).stdout
    bad = [line.strip() for line in asm.splitlines() if NOT_I32.search(line)]
    assert not bad, f"{src.name}: clang emitted constructs outside the i32 subset: {bad[:5]}"
    return out.read_bytes()


def run_wasm(wasm: bytes, data: bytes, fuel: int = 10**9) -> tuple[bytes, int]:
    """Run `compute(input)` in wasmtime; returns (output, fuel consumed)."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    out = bytearray()
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "output_byte",
                  wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []),
                                lambda c: out.append(c & 0xFF)))
    inst = linker.instantiate(store, wasmtime.Module(engine, wasm))
    ex = inst.exports(store)
    addr = (ex["__heap_base"].value(store) + 15) & ~15
    ex["memory"].write(store, data + b"\x00", addr)
    ex["compute"](store, addr)
    return bytes(out), fuel - store.get_fuel()


# ------------------------------------------------------------- the examples

MANIFEST = _manifest()


def test_manifest_fields():
    names = [e["name"] for e in MANIFEST]
    assert names == ["hello", "addition", "fibonacci", "collatz", "matching", "sudoku", "hash64", "int64"]
    for e in MANIFEST:
        assert (EXAMPLES / e["file"]).is_file(), e["file"]
        assert isinstance(e["input"], str) and isinstance(e["expect_output"], str)
        assert isinstance(e["max_steps"], int) and e["max_steps"] > 0
        assert e["description"].strip()


@pytest.mark.parametrize("ex", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_example_on_wasmtime(ex, tmp_path):
    wasm = compile_c(EXAMPLES / ex["file"], tmp_path / f"{ex['name']}.wasm")
    imports = [(i.module, i.name) for i in wasmtime.Module(wasmtime.Engine(), wasm).imports]
    assert imports == [("env", "output_byte")]
    out, fuel = run_wasm(wasm, ex["input"].encode(), fuel=ex["max_steps"])
    assert out.decode() == ex["expect_output"]
    assert fuel <= ex["max_steps"]


def test_sudoku_output_is_a_solution():
    """Independent of the program: the grid solves the puzzle."""
    ex = next(e for e in MANIFEST if e["name"] == "sudoku")
    rows = ex["expect_output"].splitlines()[:9]
    cells = "".join(rows)
    assert len(cells) == 81 and set(cells) <= set("123456789")
    puzzle = ex["input"]
    assert all(p in ".0" or p == c for p, c in zip(puzzle, cells))
    units = ([[r * 9 + c for c in range(9)] for r in range(9)]
             + [[r * 9 + c for r in range(9)] for c in range(9)]
             + [[(br + r) * 9 + bc + c for r in range(3) for c in range(3)]
                for br in (0, 3, 6) for bc in (0, 3, 6)])
    for u in units:
        assert sorted(cells[i] for i in u) == list("123456789")


def test_hash64_output_is_fnv_splitmix_xorshift():
    """Independent of the program: FNV-1a 64, splitmix64 and xorshift64* in Python."""
    ex = next(e for e in MANIFEST if e["name"] == "hash64")
    m = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for c in ex["input"].encode():
        h = ((h ^ c) * 0x100000001B3) & m
    outs, st = [], h
    for _ in range(5):
        st = (st + 0x9E3779B97F4A7C15) & m
        z = ((st ^ (st >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        outs.append(z ^ (z >> 31))
    x = outs[0]
    for _ in range(5):
        x ^= x >> 12
        x ^= (x << 25) & m
        x ^= x >> 27
        outs.append((x * 0x2545F4914F6CDD1D) & m)
    xor = 0
    for r in outs:
        xor ^= r
    lines = ([f"fnv1a64: {h:016x}"] + [f"splitmix64: {r:016x}" for r in outs[:5]]
             + [f"xorshift64*: {r:016x}" for r in outs[5:]] + [f"sum: {sum(outs) & m:016x}", f"xor: {xor:016x}"])
    assert ex["expect_output"] == "\n".join(lines) + "\n"


def test_int64_output_is_exact():
    """Independent of the program: the factorial, binomials and signed
    64-bit quotients (rounded toward zero) in Python."""
    import math
    ex = next(e for e in MANIFEST if e["name"] == "int64")
    n = int(ex["input"])

    def div(a, b):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q

    lo, a, b = -(1 << 63), -1234567890123, 1000003
    m = 3 * n + 2
    want = [f"{n}! = {math.factorial(n)}", "divided back: 1"]
    want += [f"C({m}, {k}) = {math.comb(m, k)}" for k in (0, n, m // 2)]
    want += [f"INT64_MIN = {lo}", f"INT64_MAX = {(1 << 63) - 1}", f"a * b = {a * b}",
             f"a * b / -7 = {div(a * b, -7)}", f"a * b % -7 = {a * b - div(a * b, -7) * -7}",
             f"INT64_MIN / b = {div(lo, b)}", f"INT64_MIN % b = {lo - div(lo, b) * b}",
             "INT64_MIN % -1 = 0", f"(a << 20) >> 7 = {(a << 20) >> 7}"]
    assert ex["expect_output"] == "\n".join(want) + "\n"


def test_addition_output_is_the_sum():
    ex = next(e for e in MANIFEST if e["name"] == "addition")
    a, b = ex["input"].split()
    assert ex["expect_output"] == f"{int(a)} + {int(b)} = {int(a) + int(b)}\n"


# ----------------------------------------------------------- the runtime

RUNTIME_PROBE = r"""
void compute(const char *input) {
    const char *p = input;
    /* parse_int / parse_uint over the whole input, echoing each value */
    while (*p) {
        int v = parse_int(&p);
        out_int(v); out_byte(' ');
        out_uint((unsigned)v); out_byte(' ');
        out_hex((unsigned)v); out_nl();
        while (*p == ' ') p++;
    }
    out_int(-2147483647 - 1); out_nl();
    out_uint(0); out_byte(' '); out_uint(4294967295u); out_nl();
    out_uint(iso_udiv(4294967295u, 7)); out_byte(' ');
    out_uint(iso_umod(4294967295u, 7)); out_nl();
    out_int(is_digit('0') + is_digit('9') + is_digit('a') + is_digit('/')); out_nl();

    static char buf[32];
    memset(buf, '.', 20);
    memcpy(buf + 2, "abcdef", 6);
    memmove(buf + 4, buf + 2, 6);      /* overlapping, dst above src */
    out_str(buf); out_nl();
    memmove(buf, buf + 3, 6);          /* overlapping, dst below src */
    out_str(buf); out_byte(' '); out_uint(strlen(buf)); out_nl();
    const char *q = "  -17x";
    out_int(parse_int(&q)); out_byte(*q); out_nl();
}
"""


def test_runtime_functions(tmp_path):
    src = tmp_path / "probe.c"
    src.write_text(RUNTIME_PROBE)
    wasm = compile_c(src, tmp_path / "probe.wasm")
    out, _ = run_wasm(wasm, b"0 7 -1 2147483647 -2147483648 123456789")
    lines = out.decode().splitlines()
    assert lines[:6] == [
        "0 0 00000000",
        "7 7 00000007",
        "-1 4294967295 ffffffff",
        "2147483647 2147483647 7fffffff",
        "-2147483648 2147483648 80000000",
        "123456789 123456789 075bcd15",
    ]
    assert lines[6:] == [
        "-2147483648",
        "0 4294967295",
        "613566756 3",
        "2",
        "..ababcdef..........",
        "babcdecdef.......... 20",
        "-17x",
    ]


def test_printing_is_bounded(tmp_path):
    """out_uint's cost does not grow with the value: it subtracts powers of
    ten at most 9 times per digit (no loop runs value-many times)."""
    src = tmp_path / "p.c"
    src.write_text("void compute(const char *in) { const char *p = in; out_uint(parse_uint(&p)); }")
    wasm = compile_c(src, tmp_path / "p.wasm")
    costs = {}
    for v in (9, 999999999, 4294967295):
        out, fuel = run_wasm(wasm, str(v).encode())
        assert out == str(v).encode()
        costs[v] = fuel
    assert costs[4294967295] < 2000
