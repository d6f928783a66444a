"""Every opcode of the 35, on every machine backend, against spec/machine.yaml.

For each op a tiny program pushes a sentinel, the op's operands, runs the op,
outputs whatever it left and then the sentinel. The op's own trace line is
compared with the line the YAML table prescribes (emission shape, width,
flags, commit), and the outputs prove the stack effect (pops, pushes) and the
value. Expected values are restated here independently of the executors.
"""

from __future__ import annotations

import pytest

from conformance.conftest import backend, backend_params
from isowasm.backends.base import Case
from isowasm.spec import table
from isowasm.spec.program import Program, imm_bytes
from isowasm.spec.trace import annotate_lines, commit_token, value_bytes

M = 0xFFFFFFFF
OPS = {o["name"]: o for o in table.ops()}
SENTINEL = 0xA1
A, B = 0x80FF_01F0, 0x7F01_FF20   # chosen so add carries and sub borrows in several bytes


def s32(v):
    return v - (1 << 32) if v >> 31 else v


def _flags(kind, a=0, b=0, v=0):
    f = c = 0
    for i in range(4):
        x, y = (a >> 8 * i) & 255, (b >> 8 * i) & 255
        if kind == "carry":
            c = (x + y + c) >> 8
        elif kind == "borrow":
            c = 1 if x - y - c < 0 else 0
        f |= c << i
    return f


CMP = {
    "i32.eq": lambda a, b: a == b, "i32.ne": lambda a, b: a != b,
    "i32.lt_s": lambda a, b: s32(a) < s32(b), "i32.lt_u": lambda a, b: a < b,
    "i32.gt_s": lambda a, b: s32(a) > s32(b), "i32.gt_u": lambda a, b: a > b,
    "i32.le_s": lambda a, b: s32(a) <= s32(b), "i32.le_u": lambda a, b: a <= b,
    "i32.ge_s": lambda a, b: s32(a) >= s32(b), "i32.ge_u": lambda a, b: a >= b,
}

MEM_WORD = 0x8081_F0FE   # stored at address 68 before loads; bytes fe f0 81 80


def scenario(name):
    """(instructions before the op, the op's immediate, results left on the
    stack, value, flags, extra instructions after) for one op."""
    pre = [("i32.const", SENTINEL)]
    if name in CMP:
        return pre + [("i32.const", A), ("i32.const", B)], 0, [int(CMP[name](A, B))], int(CMP[name](A, B)), 0
    if name == "i32.add":
        v = (A + B) & M
        return pre + [("i32.const", A), ("i32.const", B)], 0, [v], v, _flags("carry", A, B)
    if name == "i32.sub":
        v = (A - B) & M
        return pre + [("i32.const", A), ("i32.const", B)], 0, [v], v, _flags("borrow", A, B)
    if name == "i32.eqz":
        return pre + [("i32.const", 0)], 0, [1], 1, 0
    if name == "i32.const":
        return pre, 0xDEADBEEF, [0xDEADBEEF], 0xDEADBEEF, 0
    if name == "select":
        return pre + [("i32.const", A), ("i32.const", B), ("i32.const", 0)], 0, [B], B, 0
    if name == "drop":
        return pre + [("i32.const", A)], 0, [], 0, 0
    if name == "local.get":
        return pre + [("i32.const", A), ("local.set", 7)], 7, [A], A, 0
    if name == "local.set":
        return pre + [("i32.const", A)], 9, [], A, 0
    if name == "local.tee":
        return pre + [("i32.const", A)], 9, [A], A, 0
    if name == "global.get":
        return pre + [("i32.const", B), ("global.set", 3)], 3, [B], B, 0
    if name == "global.set":
        return pre + [("i32.const", B)], 3, [], 0, 0
    store_word = [("i32.const", 68), ("i32.const", MEM_WORD), ("i32.store", 0)]
    loads = {"i32.load": (MEM_WORD, 0), "i32.load8_u": (0xFE, 0), "i32.load8_s": (0xFFFFFFFE, 0b1111),
             "i32.load16_u": (0xF0FE, 0), "i32.load16_s": (0xFFFFF0FE, 0b1110)}
    if name in loads:
        v, f = loads[name]
        return pre + store_word + [("i32.const", 64)], 4, [v], v, f
    stores = {"i32.store": 4, "i32.store16": 2, "i32.store8": 1}
    if name in stores:
        return pre + [("i32.const", 64), ("i32.const", A)], 4, [], A, 0
    if name == "output":
        return pre + [("i32.const", 0x141)], 0, [], 0x41, 0
    raise KeyError(name)


SIMPLE = sorted(n for n in OPS if n not in ("halt", "return", "call", "br", "br_if"))


def _expected_line(name, imm, v, f):
    o = OPS[name]
    if o["emit"] == "value4":
        return value_bytes(v, f) + " " + commit_token(o["commit"])
    if o["emit"] == "value_n":
        return value_bytes(v, f, o["width"]) + " " + commit_token(o["commit"])
    if o["emit"] == "commit":
        return commit_token(o["commit"])
    if o["emit"] == "out":
        return f"out({chr(v)})" if 0x21 <= v <= 0x7E else f"out({v:02x})"
    raise KeyError(name)


def _run(name_b, instrs, data=b""):
    prog = Program([n for n, _ in instrs], [i & M for _, i in instrs], data, "spec-table")
    r = backend(name_b).run(Case("spec-table", prog), max_steps=1_000_000, trace="text")
    return prog, r


def _line_of_pc(prog, trace, pc):
    ann = annotate_lines(prog, trace)
    lines = trace.split("\n")
    return [lines[k] for k, (s, p) in enumerate(ann) if p == pc]


@pytest.mark.parametrize("op", SIMPLE)
@pytest.mark.parametrize("be", backend_params())
def test_op_matches_table(op, be):
    pre, imm, results, v, f = scenario(op)
    instrs = pre + [(op, imm)] + [("output", 0)] * len(results) + [("output", 0), ("halt", 0)]
    prog, r = _run(be, instrs)
    assert r.status == "halted", r.status_line()
    expect_out = bytes(x & 255 for x in reversed(results)) + bytes([SENTINEL])
    if op == "output":
        expect_out = bytes([v]) + expect_out
    assert r.output == expect_out, f"{op}: stack effect or value wrong: output {r.output!r}, expected {expect_out!r}"
    got = _line_of_pc(prog, r.trace, len(pre))
    assert got == [_expected_line(op, imm, v, f)], f"{op}: trace line {got} vs table"
    o = OPS[op]
    if o["commit"] is not None:
        assert got[-1].endswith(commit_token(o["commit"]))


@pytest.mark.parametrize("be", backend_params())
def test_control_ops_match_table(be):
    # br over a trap, br_if taken and not taken, call/return with the
    # toolchain's return-immediate convention, halt.
    instrs = [
        ("br", 1),                    # 0 -> 2
        ("halt", 1),                  # 1 skipped
        ("i32.const", 0), ("br_if", 5),   # 2,3 not taken
        ("i32.const", 1), ("br_if", 1),   # 4,5 taken -> 7
        ("halt", 1),                  # 6 skipped
        ("call", 1),                  # 7 -> 9
        ("halt", 0),                  # 8
        ("i32.const", 0x41), ("output", 0),  # 9,10 (function entry at 9)
        ("return", (9 - 12) & M),     # 11: entry offset from pc+1
    ]
    prog, r = _run(be, instrs)
    assert r.status == "halted" and r.output == b"A"
    assert _line_of_pc(prog, r.trace, 0) == ["branch_taken", imm_bytes(1) + " " + commit_token(OPS["br"]["commit"])]
    assert _line_of_pc(prog, r.trace, 3) == [commit_token(OPS["br_if"]["commit_not_taken"])]
    assert _line_of_pc(prog, r.trace, 5) == ["branch_taken", imm_bytes(1) + " " + commit_token(OPS["br_if"]["commit"])]
    assert _line_of_pc(prog, r.trace, 7) == ["branch_taken", imm_bytes(1) + " call_commit"]
    # return value = rpc - pc - 1 = 8 - 11 - 1 = -4; flags = borrows of (ret imm - call imm) = (-3) - 1
    assert _line_of_pc(prog, r.trace, 11) == ["branch_taken", value_bytes((8 - 12) & M, _flags("borrow", (9 - 12) & M, 1)) + " return_commit"]
    assert _line_of_pc(prog, r.trace, 8) == ["halt"]


@pytest.mark.parametrize("be", backend_params())
def test_call_gives_fresh_locals_and_return_restores(be):
    instrs = [
        ("i32.const", 0x42), ("local.set", 0),   # 0,1 caller local 0 = 'B'
        ("call", 3),                             # 2 -> 6
        ("local.get", 0), ("output", 0),         # 3,4 caller's local restored
        ("halt", 0),                             # 5
        ("local.get", 0), ("i32.const", 0x30), ("i32.add", 0), ("output", 0),  # 6-9: callee sees 0
        ("i32.const", 0x43), ("local.set", 0),  # 10,11 clobber callee's local 0
        ("return", (6 - 13) & M),                # 12
    ]
    _, r = _run(be, instrs)
    assert (r.status, r.output) == ("halted", b"0B")


TRAPS = {
    "unreachable": [("halt", 1)],
    "div_zero": [("halt", 2)],
    "int_overflow": [("halt", 3)],
    "oob": [("i32.const", table.limits()["memory_bytes"] - 3), ("i32.load", 0), ("halt", 0)],
    "stack_underflow": [("drop", 0), ("halt", 0)],
    "return_outside": [("return", 0)],
    "call_depth": [("call", (-1) & M), ("halt", 0)],
    "stack_overflow": [("i32.const", 1), ("br", (-2) & M)],
    "memory_limit": [("halt", 5)],
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
@pytest.mark.parametrize("be", backend_params())
def test_traps(trap, be):
    instrs = [("i32.const", 0x54), ("output", 0)] + TRAPS[trap]
    _, r = _run(be, instrs)
    assert r.status == "trapped" and r.trap == trap, r.status_line()
    assert r.output == b"T"
    assert r.trace.endswith(f"trap({trap})\n")
    assert r.trace.split("\n")[-2] == f"trap({trap})"


def test_table_lists_35_ops_and_the_pseudo_op():
    assert len(table.ops()) == 35
    assert [p["name"] for p in table.machine()["pseudo_ops"]] == ["input_base"]
    assert set(table.trap_by_code()) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("be", backend_params())
def test_effective_address_does_not_wrap(be):
    # 0xffffffff + offset 1 is 2^32: out of bounds (as in wasm), not address 0.
    _, r = _run(be, [("i32.const", 0xFFFFFFFF), ("i32.load8_u", 1), ("halt", 0)])
    assert (r.status, r.trap) == ("trapped", "oob")
    _, r = _run(be, [("i32.const", 0xFFFFFFF0), ("i32.const", 7), ("i32.store", 0x20), ("halt", 0)])
    assert (r.status, r.trap) == ("trapped", "oob")
