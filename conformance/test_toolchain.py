"""The toolchain end to end: control flow flattening, calls, globals, data,
memory (bounds checks, memory.size/grow), the ABI, the cache, the CLI, and a
one-line CompileError for every construct outside the machine.

Semantics are checked against wasmtime: the lowered program on the reference
executor must print the same bytes and stop the same way (halt or the same
trap) as the original module in wasmtime.
"""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys

import pytest
import wasmtime

from isowasm.backends.base import Case
from isowasm.backends.wasmtime_backend import WasmtimeBackend
from isowasm.toolchain import CompileError, cli_compile, compile_file, compile_source, compile_wasm
from isowasm.spec.program import parse_program, format_program
from isowasm.spec.reference import run_reference

# See test_lowering.py: give wasmtime its trap handlers back.
if faulthandler.is_enabled():
    faulthandler.disable()

OUT = '(import "env" "output_byte" (func $out (param i32)))'
_WT = WasmtimeBackend()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOWASM_CACHE", str(tmp_path / "cache"))


def run_both(wat: str, input: bytes = b"", max_steps: int = 2_000_000):
    """Compile, run on the reference executor and in wasmtime; they must
    agree on output, status and trap. Returns the reference result."""
    wasm, prog = compile_source(wat, "wat", "test.wat", input)
    res = run_reference(prog, max_steps=max_steps)
    want = _WT.run(Case("test", prog, wasm), max_steps=max_steps)
    assert (res.output, res.status, res.trap) == (want.output, want.status, want.trap)
    return res


def module(body: str, extra: str = "", memory: str = "(memory 1)", params: str = "") -> str:
    return f"""(module {OUT} {memory} {extra}
  (func (export "compute") {params} {body}
  ))"""


# ---------------------------------------------------------------- control flow

def test_nested_blocks_and_branch_depths():
    res = run_both(module("""
      (block $a
        (block $b
          (block $c
            (call $out (i32.const 65))
            (br $b))
          (call $out (i32.const 66)))      ;; skipped
        (call $out (i32.const 67))
        (br_if $a (i32.const 1))
        (call $out (i32.const 68)))        ;; skipped
      (call $out (i32.const 69))"""))
    assert res.output == b"ACE"


def test_branch_out_of_blocks_drops_surplus_values():
    # Each br leaves values below its result; wasm unwinds them. If the
    # surplus stayed on the shared operand stack, the later adds would see
    # the wrong operands.
    res = run_both(module("""
      (call $out
        (i32.add (i32.const 10)
          (block $outer (result i32)
            (i32.const 1000) (i32.const 2000)
            (block $inner (result i32)
              (i32.const 7) (i32.const 8) (i32.const 9)
              (br $outer (i32.const 55)))     ;; drops 7 8 9 1000 2000
            (drop) (drop) (drop)
            (i32.const 0))))
      ;; br_if with surplus: taken and not taken
      (call $out (block $b (result i32)
        (i32.const 100) (i32.const 200)
        (drop (br_if $b (i32.const 33) (i32.const 1)))
        (drop) (drop) (i32.const 0)))
      (call $out (block $b (result i32)
        (i32.const 100) (i32.const 200)
        (drop (br_if $b (i32.const 33) (i32.const 0)))
        (i32.add)))
      ;; surplus under an empty-result branch
      (block $v (i32.const 1) (i32.const 2) (br $v))
      (call $out (i32.const 42))"""))
    assert res.output == bytes([65, 33, 44, 42])


def test_loops_count_and_continue():
    res = run_both(module("""
      (local $i i32) (local $s i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const 10)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $next (i32.eq (local.get $i) (i32.const 5)))   ;; continue: skip 5
          (local.set $s (i32.add (local.get $s) (local.get $i)))
          (br $next)))
      (call $out (local.get $s))"""))
    assert res.output == bytes([55 - 5])


def test_if_else_with_results_and_without_else():
    res = run_both(module("""
      (local $i i32)
      (loop $l
        (call $out (if (result i32) (i32.lt_u (local.get $i) (i32.const 2))
                      (then (i32.const 97)) (else (i32.add (i32.const 98) (local.get $i)))))
        (if (i32.eq (local.get $i) (i32.const 1)) (then (call $out (i32.const 33))))
        (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 4))))"""))
    assert res.output == b"aa!de"


def test_br_table_all_targets_default_and_surplus():
    res = run_both(module("""
      (local $i i32)
      (loop $l
        (call $out
          (block $d (result i32)
            (block $c (result i32)
              (block $b (result i32)
                (block $a (result i32)
                  (i32.const 5)                        ;; surplus, dropped by every branch
                  (i32.const 70) (local.get $i)
                  (br_table $a $b $b $c $d $a $c))     ;; default $c
                (i32.const 1) (i32.add))
              (i32.const 2) (i32.add))
            (i32.const 3) (i32.add)))
        (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 10))))
      ;; huge indices (unsigned) take the default too
      (block $x (block $y (br_table $x $y (i32.const -1))) (call $out (i32.const 89)))
      (call $out (i32.const 10))"""))
    assert res.output == bytes([76, 75, 75, 73, 70, 76, 73, 73, 73, 73, 89, 10])


def test_big_br_table_is_binary_searched():
    cases = 64
    labels = " ".join(f"$b{i}" for i in range(cases))
    inner = f"(br_table {labels} (local.get $i))"
    for i in range(cases):
        inner = f"(block $b{i} {inner}) (call $out (i32.const {i})) (br $done)"
    res = run_both(module(f"""
      (local $i i32)
      (loop $l
        (block $done {inner})
        (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {cases + 3}))))"""))
    assert res.output == bytes(list(range(cases)) + [cases - 1] * 3)
    # log2(64) compares per dispatch, not 64
    assert res.steps < 67 * 60


def test_dead_code_after_branches_is_skipped():
    res = run_both(module("""
      (block $a
        (br $a)
        (block $x (loop $y (if (i32.const 1) (then (unreachable)) (else (br $y)))))
        (i32.const 1) (drop))
      (block $b (result i32)
        (return)
        (i32.const 3))
      (drop)
      (call $out (i32.const 66))"""))
    assert res.output == b"" and res.status == "halted"


def test_return_from_nested_blocks_with_surplus():
    res = run_both(f"""(module {OUT} (memory 1)
      (func $f (param $x i32) (result i32)
        (i32.const 11) (i32.const 12)
        (block $a (result i32)
          (block $b
            (if (local.get $x) (then (return (i32.const 77)))))
          (i32.const 88))
        (return))
      (func (export "compute")
        (call $out (call $f (i32.const 1)))
        (call $out (call $f (i32.const 0)))
        (call $out (i32.const 1))))""")
    assert res.output == bytes([77, 88, 1])


def test_unreachable_traps():
    res = run_both(module("(call $out (i32.const 1)) (unreachable)"))
    assert res.trap == "unreachable" and res.output == b"\x01"


def test_select_nop_drop():
    res = run_both(module("""
      (nop)
      (call $out (select (i32.const 1) (i32.const 2) (i32.const 0)))
      (call $out (select (i32.const 1) (i32.const 2) (i32.const -5)))
      (drop (i32.const 9))"""))
    assert res.output == bytes([2, 1])


# ---------------------------------------------------------------- functions

def test_recursion_and_argument_order():
    res = run_both(f"""(module {OUT} (memory 1)
      (func $fib (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
          (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                         (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
      (func $sub3 (param $a i32) (param $b i32) (param $c i32) (result i32)
        (i32.sub (i32.sub (local.get $a) (local.get $b)) (local.get $c)))
      (func (export "compute")
        (call $out (call $fib (i32.const 12)))
        (call $out (call $sub3 (i32.const 100) (i32.const 30) (i32.const 7)))))""")
    assert res.output == bytes([144, 63])


def test_compute_param_is_input_address_and_result_is_ignored():
    wat = f"""(module {OUT} (memory 1)
      (func (export "compute") (param $p i32) (result i32)
        (block $e (loop $l
          (br_if $e (i32.eqz (i32.load8_u (local.get $p))))
          (call $out (i32.add (i32.load8_u (local.get $p)) (i32.const 1)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $l)))
        (i32.const 5)))"""
    res = run_both(wat, b"HAL")
    assert res.output == b"IBM" and res.status == "halted"
    _, prog = compile_source(wat, "wat", "t", b"HAL")
    assert prog.names[0] == "input_base" and prog.imms[0] % 16 == 0 and prog.imms[0] > 0
    assert prog.input == b"HAL"


def test_compute_called_recursively_returns_normally():
    res = run_both(f"""(module {OUT} (memory 1) (global $n (mut i32) (i32.const 3))
      (func $compute (export "compute")
        (call $out (global.get $n))
        (global.set $n (i32.sub (global.get $n) (i32.const 1)))
        (if (global.get $n) (then (call $compute)))
        (call $out (i32.const 46))))""")
    assert res.output == bytes([3, 2, 1, 46, 46, 46])


def test_start_function_runs_first():
    res = run_both(f"""(module {OUT} (memory 1) (global $g (mut i32) (i32.const 1))
      (func $init (global.set $g (i32.const 9)))
      (start $init)
      (func (export "compute") (call $out (global.get $g))))""")
    assert res.output == bytes([9])


# ---------------------------------------------------------------- data and memory

def test_globals_and_data_segments():
    res = run_both(f"""(module {OUT} (memory 1)
      (global $a (mut i32) (i32.const 1000))
      (global $b i32 (i32.const -1))
      (data (i32.const 3) "Hi!\\00\\00\\00\\00\\07xyz")
      (data (i32.const 200) "\\01\\00\\00\\02\\ff")
      (func (export "compute") (param $p i32)
        (local $i i32)
        (global.set $a (i32.add (global.get $a) (global.get $b)))
        (call $out (i32.sub (global.get $a) (i32.const 900)))
        (loop $l
          (call $out (i32.load8_u offset=3 (local.get $i)))
          (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 11))))
        (call $out (i32.load16_u (i32.const 202)))
        (call $out (i32.load8_s (i32.const 204)))
        (call $out (i32.load8_u (local.get $p)))))""", b"Q")
    assert res.output == bytes([99]) + b"Hi!\0\0\0\0\x07xyz" + bytes([0, 0xFF, ord("Q")])


def test_input_address_past_data_without_heap_base():
    _, prog = compile_source(f"""(module (memory 1) (data (i32.const 100) "abc")
      (func (export "compute") (param i32)))""", "wat")
    assert prog.imms[0] == 112


@pytest.mark.parametrize("addr,op,traps", [
    (65532, "i32.load", False), (65533, "i32.load", True), (65535, "i32.load8_u", False),
    (65536, "i32.load8_u", True), (65534, "i32.load16_s", False), (65535, "i32.load16_u", True),
    (-1, "i32.load8_u", True), (-4, "i32.load", True),
])
def test_bounds_checked_loads_trap_like_wasmtime(addr, op, traps):
    res = run_both(module(f"(call $out ({op} (i32.const {addr}))) (call $out (i32.const 1))"))
    assert res.trap == ("oob" if traps else None)


def test_bounds_checked_stores_and_offsets():
    res = run_both(module("""
      (i32.store offset=65530 (i32.const 2) (i32.const 0x41424344))
      (call $out (i32.load8_u (i32.const 65532)))
      (i32.store16 offset=65534 (i32.const 0) (i32.const 7))
      (call $out (i32.load8_u offset=1 (i32.const 65534)))
      (i32.store8 offset=0xffffffff (i32.const 1) (i32.const 7))     ;; ea = 2^32: traps
      (call $out (i32.const 1))"""))
    assert res.trap == "oob" and res.output == b"D\x00"


def test_offset_beyond_small_memory_traps():
    res = run_both(module("(call $out (i32.load offset=70000 (i32.const 0)))"))
    assert res.trap == "oob"


def test_memory_size_and_grow():
    res = run_both(module("""
      (call $out (memory.size))
      (call $out (memory.grow (i32.const 2)))              ;; 1 -> 3
      (call $out (memory.size))
      (i32.store8 (i32.const 196607) (i32.const 9))      ;; last byte of page 3
      (call $out (i32.load8_u (i32.const 196607)))
      (call $out (memory.grow (i32.const 2)))              ;; past max 4: -1
      (call $out (memory.grow (i32.const 1)))              ;; 3 -> 4
      (call $out (memory.grow (i32.const 0)))
      (call $out (memory.grow (i32.const -1)))
      (call $out (i32.load8_u (i32.const 262144)))       ;; just past 4 pages""",
               memory="(memory 1 4)"))
    assert res.output == bytes([1, 1, 3, 9, 255, 3, 4, 255]) and res.trap == "oob"


def test_grow_past_the_machine_memory_traps_memory_limit():
    # wasmtime grows past 160 pages when the module sets no maximum (or a
    # larger one); the machine has 10 MiB, so memory.grow cannot do what wasm
    # does there and the run ends with the resource trap memory_limit
    # instead of a silent -1.
    for memory in ("(memory 1)", "(memory 1 161)", "(memory 1 65536)"):
        wasm, prog = compile_source(module("""
          (call $out (memory.grow (i32.const 159)))
          (call $out (memory.size))
          (call $out (memory.grow (i32.const 1)))
          (call $out (i32.const 33))""", memory=memory), "wat")
        res = run_reference(prog)
        assert (res.status, res.trap, res.output) == ("trapped", "memory_limit", bytes([1, 160])), memory
        assert prog.names[res.trap_pc] == "halt" and prog.imms[res.trap_pc] == 5
        truth = _WT.run(Case("g", prog, wasm), max_steps=100_000)
        assert (truth.status, truth.output) == ("halted", bytes([1, 160, 160, 33])), memory


def test_grow_past_the_wasm_maximum_still_fails():
    # Where WebAssembly itself refuses (past the module's maximum, or past
    # 65536 pages without one), memory.grow returns -1 on the machine too,
    # even when that maximum is beyond the machine's 160 pages.
    res = run_both(module("""
      (call $out (memory.grow (i32.const 200)))            ;; 1 + 200 > max 200: -1
      (call $out (memory.grow (i32.const -1)))
      (call $out (memory.grow (i32.const 159)))            ;; 1 -> 160
      (call $out (memory.grow (i32.const 41)))             ;; 160 + 41 > 200: -1, no trap
      (call $out (memory.size))""", memory="(memory 1 200)"))
    assert res.status == "halted" and res.output == bytes([255, 255, 1, 255, 160])
    res = run_both(module("""
      (call $out (memory.grow (i32.const 65536)))          ;; 1 + 65536 > 65536 pages: -1
      (call $out (memory.grow (i32.const -1)))
      (call $out (memory.grow (i32.const 0)))
      (call $out (memory.size))""", memory="(memory 1)"))
    assert res.status == "halted" and res.output == bytes([255, 255, 1, 1])


def test_wasm_max_is_the_last_reserved_global():
    # compile.G_WASM_MAX names runtime.wat's last global, after $rem and $lz,
    # so adding it left every other reserved global's index as it was.
    from isowasm.toolchain import compile as comp
    assert len(comp.runtime_module().globals) == comp.G_WASM_MAX + 1


def test_full_memory_needs_no_checks():
    _, prog = compile_source(module("(call $out (i32.load8_u (i32.const 5)))", memory="(memory 160 160)"), "wat")
    assert "global.get" not in prog.names
    _, prog = compile_source(module("(call $out (i32.load8_u (i32.const 5)))", memory="(memory 2)"), "wat")
    assert "global.get" in prog.names


def test_data_segment_outside_memory_traps_at_start():
    # wasmtime fails instantiation; the program traps oob before compute.
    wasm, prog = compile_source(module("(call $out (i32.const 1))", memory='(memory 1) (data (i32.const 65535) "ab")'), "wat")
    res = run_reference(prog)
    assert res.trap == "oob" and res.output == b""
    truth = _WT.run(Case("d", prog, wasm), max_steps=1000)
    assert (truth.status, truth.trap, truth.output) == ("trapped", "oob", b"")


# ---------------------------------------------------------------- C

C_PROG = r"""
static int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }
static int table[5] = {3, 1, 4, 1, 5};
void compute(const char *in) {
    int n = parse_int(&in);
    out_int(fact(n)); out_nl();
    int s = 0;
    for (int i = 0; i < 5; i++) s += table[i] * (n - i) / 3 % 7 ^ (s << 2) >> 1;
    out_int(s); out_nl();
    switch (n) { case 1: out_str("one"); break; case 2: out_str("two"); break;
                 case 5: out_str("five"); break; case 7: out_str("seven"); break;
                 default: out_str("many"); }
    out_nl();
}
"""


@pytest.mark.parametrize("inp", [b"5", b"7", b"12", b"-3"])
def test_c_program_against_wasmtime(inp):
    wasm, prog = compile_source(C_PROG, "c", "prog.c", inp)
    res = run_reference(prog, max_steps=5_000_000)
    want = _WT.run(Case("c", prog, wasm), max_steps=5_000_000)
    assert (res.output, res.status, res.trap) == (want.output, want.status, want.trap)
    assert res.status == "halted"


def test_clang_division_by_constant_stays_i32():
    # clang 14 (wasm32, -O2) keeps x / 10 as i32.div_s, not an i64.mul
    # "magic number" sequence: the module compiles (any i64 op would be
    # rejected) and agrees with wasmtime.
    src = ("void compute(const char *in) { int x = parse_int(&in); out_int(x / 10); out_nl();"
           " out_int(x % 10); out_nl(); out_int((unsigned)x / 3); out_nl(); out_int(x / -7); }")
    for inp in (b"-12345", b"2147483647"):
        wasm, prog = compile_source(src, "c", "div.c", inp)
        res = run_reference(prog)
        assert res.output == _WT.run(Case("c", prog, wasm), max_steps=10**7).output


def test_cache_hit_gives_the_same_program(tmp_path):
    wasm1, p1 = compile_source(C_PROG, "c", "a.c", b"5")
    assert list((tmp_path / "cache").glob("*.prog"))
    wasm2, p2 = compile_source(C_PROG, "c", "a.c", b"7")
    assert wasm1 == wasm2 and p1.names == p2.names and p1.imms == p2.imms and p2.input == b"7"


# ---------------------------------------------------------------- errors

def _one_line_error(fn, *args, **kw) -> str:
    with pytest.raises(CompileError) as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and msg
    return msg


@pytest.mark.parametrize("body,words", [
    ("(drop (f32.add (f32.const 1) (f32.const 2)))", ["f32.const", "floating point", "function 1", "WAT line"]),
    ("(drop (f64.add (f64.const 1) (f64.const 2)))", ["f64.const", "floating point", "function 1", "byte offset"]),
    ("(drop (i64.trunc_f32_s (f32.const 1)))", ["floating point"]),
    ("(local f64)", ["f64 local", "function 1"]),
    ("(memory.fill (i32.const 0) (i32.const 0) (i32.const 1))", ["memory.fill", "bulk memory"]),
    ("(memory.copy (i32.const 0) (i32.const 0) (i32.const 1))", ["memory.copy", "bulk memory"]),
    ("(drop (v128.const i32x4 0 0 0 0))", ["SIMD"]),
])
def test_unsupported_instruction_errors(body, words):
    msg = _one_line_error(compile_source, module(body), "wat", "bad.wat")
    for w in words:
        assert w in msg, msg
    assert msg.startswith("bad.wat")


def test_call_indirect_rejected():
    msg = _one_line_error(compile_source, f"""(module {OUT} (memory 1) (type $t (func))
      (table 1 funcref) (func $f) (elem (i32.const 0) $f)
      (func (export "compute") (call_indirect (type $t) (i32.const 0))))""", "wat", "ci.wat")
    assert "call_indirect" in msg and "indirect" in msg and "line 3" in msg


def test_other_imports_rejected():
    msg = _one_line_error(compile_source, """(module (import "env" "print" (func $p (param i32)))
      (func (export "compute")))""", "wat")
    assert "env.print" in msg
    msg = _one_line_error(compile_source, """(module (import "env" "output_byte" (func $p (param i32 i32)))
      (func (export "compute")))""", "wat")
    assert "env.output_byte" in msg
    msg = _one_line_error(compile_source, """(module (import "env" "mem" (memory 1))
      (func (export "compute")))""", "wat")
    assert "memory" in msg


def test_multi_value_compiles():
    # several results and block parameters stay on the operand stack
    # (conformance/test_i64.py tests them against wasmtime)
    compile_source("""(module (func $f (result i32 i32) (i32.const 1) (i32.const 2))
      (func (export "compute") (call $f) (drop) (drop)))""", "wat")
    compile_source(module("(block (result i32 i32) (i32.const 1) (i32.const 2)) (drop) (drop)"), "wat")


def test_multiple_memories_rejected():
    msg = _one_line_error(compile_source, """(module (memory 1) (memory $b 1)
      (func (export "compute") (drop (i32.load $b (i32.const 0)))))""", "wat")
    assert "memor" in msg and "single memory" in msg


def test_too_many_locals_rejected():
    msg = _one_line_error(compile_source, module("(local " + "i32 " * 254 + ") (drop (i32.xor (local.get 0) (i32.const 5)))"), "wat")
    assert "locals" in msg and "256" in msg
    compile_source(module("(local " + "i32 " * 256 + ")"), "wat")  # no temporaries needed: fits


def test_program_size_limit():
    body = "(drop (i32.mul (local.get 0) (i32.const 0x7fffffff)))" * 12000
    msg = _one_line_error(compile_source, module("(local i32)" + body), "wat")
    assert "1048576" in msg


def test_malformed_inputs():
    assert "line" not in _one_line_error(compile_wasm, b"\0asm\1\0\0\0\1\5")  # truncated
    _one_line_error(compile_wasm, b"hello")
    msg = _one_line_error(compile_source, "(module\n  (func (export \"compute\")\n    i32.foo))", "wat", "s.wat")
    assert msg.startswith("s.wat:3:5:")
    msg = _one_line_error(compile_source, "(module (func (export \"main\")))", "wat")
    assert "compute" in msg
    msg = _one_line_error(compile_source, "(module (func (export \"compute\") (param i32 i32)))", "wat")
    assert "compute" in msg
    msg = _one_line_error(compile_source, "void compute(void) { undeclared(); }", "c", "x.c")
    assert msg.startswith("x.c")
    msg = _one_line_error(compile_source, "double g; void compute(const char *in) { g = g * parse_int(&in); out_int((int)g); }", "c", "x.c")
    assert "floating point" in msg


def test_cli(tmp_path, capsys):
    src = tmp_path / "p.wat"
    src.write_text(module("(call $out (i32.const 65))"))
    out = tmp_path / "p.txt"
    assert cli_compile([str(src), "-o", str(out), "--input", "hi"]) == 0
    prog = parse_program(out.read_text())
    assert prog.input == b"hi" and run_reference(prog).output == b"A"
    bad = tmp_path / "b.wat"
    bad.write_text("(module (func (export \"compute\") f64.const 1 drop))")
    assert cli_compile([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert cli_compile([str(tmp_path / "missing.c")]) == 2


def test_cli_module_entry_point(tmp_path):
    src = tmp_path / "p.wat"
    src.write_text(module("(call $out (i32.const 65))"))
    r = subprocess.run([sys.executable, "-m", "isowasm.toolchain", str(src)], capture_output=True, text=True,
                       env={**os.environ, "ISOWASM_CACHE": str(tmp_path / "c")})
    assert r.returncode == 0 and r.stdout.startswith("{\ninput_base")
    assert format_program(compile_file(str(src))[1]) == r.stdout


def test_call_and_return_immediates_follow_the_convention():
    # spec §4 "Calls": a return's immediate is the offset from its next
    # instruction to its own function's entry, the quantity the calls carry.
    _, prog = compile_source(C_PROG, "c", "prog.c", b"5")

    def target(pc):
        imm = prog.imms[pc]
        return pc + 1 + (imm - (1 << 32) if imm >> 31 else imm)

    calls = {target(pc) for pc, n in enumerate(prog.names) if n == "call"}
    # functions nobody calls (kept `used` ones) are known by their returns
    entries = calls | {target(pc) for pc, n in enumerate(prog.names) if n == "return"}
    assert len(calls) >= 3
    for pc, n in enumerate(prog.names):
        if n == "return":
            own = max(e for e in entries if e <= pc)
            assert target(pc) == own, f"return at pc {pc}"
    res = run_reference(prog, trace="text")
    assert res.status == "halted"
