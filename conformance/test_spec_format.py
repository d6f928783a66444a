"""Program-file parsing (located one-line errors), the input section, the
step budget, and the digest/checkpoint definition of spec/MACHINE.md §5."""

from __future__ import annotations

import hashlib

import pytest

from isowasm.spec.errors import ProgramError
from isowasm.spec.program import Program, format_program, input_line, parse_program
from isowasm.spec.reference import run_reference
from isowasm.spec.trace import annotate_lines, count_tokens

LOOP = """{
i32.const 00 00 00 00
br fe ff ff ff
}
00 commit(+0,sts=0,bt=0)
"""


def prog_text(*lines, inp="00 commit(+0,sts=0,bt=0)"):
    return "{\n" + "\n".join(lines) + "\n}\n" + inp + "\n"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty program file"),
    ("i32.const 00 00 00 00", "starts with '{'"),
    ("{\nhalt 00 00 00 00\n", "no closing '}'"),
    (prog_text("i32.cnst 01 00 00 00", "halt 00 00 00 00"), "did you mean 'i32.const'"),
    (prog_text("i32.const 01 00 00", "halt 00 00 00 00"), "two hex digits"),
    (prog_text("i32.const 01 00 0g 00", "halt 00 00 00 00"), "not two hex digits"),
    (prog_text("halt 00 00 00 00", "input_base 00 00 00 00", "halt 00 00 00 00"), "only be the first"),
    (prog_text("local.get 00 01 00 00", "halt 00 00 00 00"), "local index 256"),
    (prog_text("global.set 00 01 00 00", "halt 00 00 00 00"), "global index 256"),
    (prog_text("br 05 00 00 00", "halt 00 00 00 00"), "outside the program"),
    (prog_text("halt 09 00 00 00"), "halt code 9"),
    (prog_text("i32.const 00 00 00 00"), "fall off the end"),
    (prog_text("halt 00 00 00 00", inp="a b"), "no terminating 00"),
    (prog_text("halt 00 00 00 00", inp="a 00"), "expected commit(+0,sts=0,bt=0)"),
    (prog_text("halt 00 00 00 00", inp="abc 00 commit(+0,sts=0,bt=0)"), "neither a printable"),
    ("{\n}\n", "no instructions"),
])
def test_malformed_program_is_one_located_line(text, fragment):
    with pytest.raises(ProgramError) as e:
        parse_program(text, "p.txt")
    msg = str(e.value)
    assert fragment in msg
    assert "\n" not in msg and msg.startswith("p.txt")


def test_error_names_line_and_token():
    text = prog_text("i32.const 01 00 00 00", "i32.ad 00 00 00 00", "halt 00 00 00 00")
    with pytest.raises(ProgramError, match=r"p.txt:3: token 6 'i32.ad'"):
        parse_program(text, "p.txt")


def test_round_trip_and_input_escapes():
    data = bytes([0x41, 0x20, 0x7B, 0x7D, 0x7E, 0x0A, 0xFF, 0x21])
    p = Program(["input_base", "halt"], [0x100, 0], data)
    text = format_program(p)
    assert input_line(data) == "A 20 7b 7d ~ 0a ff ! 00 commit(+0,sts=0,bt=0)\n"
    q = parse_program(text)
    assert (q.names, q.imms, q.input) == (p.names, p.imms, p.input)


def test_input_with_nul_is_rejected():
    with pytest.raises(ProgramError, match="cannot contain it"):
        Program(["halt"], [0]).with_input(b"a\x00b")


def test_budget_exhausted_is_reported_not_passed():
    p = parse_program(LOOP)
    r = run_reference(p, max_steps=1001, trace="text")
    assert r.status == "budget-exhausted"
    assert r.steps == 1001
    assert r.tokens == count_tokens(r.trace)
    # 1 const + 500 x (br, const): the trace ends with the last executed step, whole.
    assert r.trace.endswith("00 00 00 00 commit(+1,sts=1,bt=0)\n")


def test_digest_and_checkpoints_follow_the_definition():
    p = parse_program(LOOP)
    r = run_reference(p, max_steps=5000, trace="text", checkpoint_interval=1000)
    assert r.digest == hashlib.sha256(r.trace.encode()).hexdigest()
    lines = r.trace.split("\n")[:-1]
    ann = annotate_lines(p, r.trace)
    assert [s for s, _ in r.checkpoints] == [1000, 2000, 3000, 4000, 5000]
    for steps, digest in r.checkpoints:
        upto = [ln for ln, (s, _) in zip(lines, ann) if s is None or s < steps]
        assert hashlib.sha256(("\n".join(upto) + "\n").encode()).hexdigest() == digest
    d = run_reference(p, max_steps=5000, trace="digest", checkpoint_interval=1000)
    assert (d.digest, d.checkpoints, d.tokens) == (r.digest, r.checkpoints, r.tokens)


def test_token_counts_agree_untraced():
    p = parse_program(LOOP)
    assert run_reference(p, max_steps=777).tokens == run_reference(p, max_steps=777, trace="text").tokens


def test_memoised_formatting_and_rendering_are_exact():
    # format_program memoises instruction lines and the trace sink memoises
    # renderers across programs: neither may change a byte.
    from isowasm.spec.program import imm_bytes
    from isowasm.spec.trace import value_bytes

    names = ["i32.const", "i32.const", "i32.add", "local.tee", "drop", "halt"]
    for k in range(3):
        imms = [0xFFFFFF00 + k, 0x100 + k, 0, k, 0, 0]
        p = Program(names, imms, b"x" * k)
        naive = "{\n" + "".join(f"{n} {imm_bytes(i)}\n" for n, i in zip(names, imms)) + "}\n" + input_line(p.input)
        assert format_program(p) == naive
        r = run_reference(p, trace="text")
        lines = r.trace.split("\n")
        assert lines[1] == value_bytes(imms[0], 0) + " commit(+1,sts=1,bt=0)"
        s = (imms[0] + imms[1]) & 0xFFFFFFFF
        assert lines[3].startswith(value_bytes(s, 0b1110))  # carries out of bytes 1-3
        assert r.digest == hashlib.sha256(r.trace.encode()).hexdigest()
