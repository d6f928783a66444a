"""Writes the hand-written test programs of the transformer as program files
(`python3 -m transformer.programs.make`). Source: a tiny assembly with labels
(`name:`), branch targets as labels, immediates as signed ints."""

from __future__ import annotations

from pathlib import Path

from isowasm.spec.program import Program, format_program

HERE = Path(__file__).parent


def asm(src: str, data: bytes = b"") -> Program:
    lines = [ln.split("#")[0].strip() for ln in src.strip().splitlines()]
    lines = [ln for ln in lines if ln]
    labels, body = {}, []
    for ln in lines:
        if ln.endswith(":"):
            labels[ln[:-1]] = len(body)
        else:
            body.append(ln.split())
    names, imms = [], []
    for pc, parts in enumerate(body):
        op = parts[0]
        arg = parts[1] if len(parts) > 1 else "0"
        if op in ("br", "br_if", "call") or (op == "return" and arg in labels):
            v = labels[arg] - (pc + 1)
        else:
            v = int(arg, 0)
        names.append(op)
        imms.append(v & 0xFFFFFFFF)
    return Program(names, imms, data)


PROGRAMS = {
    # arithmetic, flags, comparisons (signed and unsigned), eqz, select, drop
    "arith": ("""
        i32.const 0x7fffffff
        i32.const 1
        i32.add
        i32.const -1
        i32.add
        i32.const 5
        i32.const 7
        i32.sub
        i32.const 0x100
        i32.const 0x1ff
        i32.sub
        drop
        i32.const -3
        i32.const 2
        i32.lt_s
        i32.const -3
        i32.const 2
        i32.lt_u
        i32.const -3
        i32.const 2
        i32.gt_s
        i32.const -3
        i32.const 2
        i32.gt_u
        i32.const 4
        i32.const 4
        i32.le_s
        i32.const 5
        i32.const 4
        i32.le_u
        i32.const -7
        i32.const -7
        i32.ge_s
        i32.const 3
        i32.const 9
        i32.ge_u
        i32.const 0x12345678
        i32.const 0x12345678
        i32.eq
        i32.const 0x12345678
        i32.const 0x12345679
        i32.ne
        i32.const 0
        i32.eqz
        i32.const 0x100
        i32.eqz
        i32.const 11
        i32.const 22
        i32.const 1
        select
        i32.const 11
        i32.const 22
        i32.const 0
        select
        drop
        drop
        halt
    """, b""),
    # a loop with br_if / br, locals, output
    "loop": ("""
        i32.const 0
        local.set 0
        top:
        local.get 0
        i32.const 0x30
        i32.add
        output
        local.get 0
        i32.const 1
        i32.add
        local.tee 0
        i32.const 5
        i32.lt_u
        br_if top
        i32.const 0x0a
        output
        br end
        i32.const 99
        end:
        halt
    """, b""),
    # calls, returns, fresh locals per frame, recursion, globals
    "calls": ("""
        i32.const 7
        local.set 1
        i32.const 3
        call fact
        global.set 2
        global.get 2
        local.get 1
        i32.add
        output
        i32.const 4
        call count
        global.get 2
        output
        halt
        fact:              # n -> n! (small), recursive; clobbers its own local 1
        local.set 0
        local.get 1
        drop
        i32.const 100
        local.set 1
        local.get 0
        i32.eqz
        br_if base
        local.get 0
        i32.const -1
        i32.add
        call fact
        local.set 2
        i32.const 0
        local.set 3
        mul:
        local.get 2
        local.get 3
        i32.add
        local.set 3
        local.get 0
        i32.const -1
        i32.add
        local.tee 0
        br_if mul
        local.get 3
        return fact
        base:
        i32.const 1
        return fact
        count:             # n -> outputs n letters; uses a global
        local.set 0
        again:
        global.get 5
        i32.const 0x61
        i32.add
        output
        global.get 5
        i32.const 1
        i32.add
        global.set 5
        local.get 0
        i32.const -1
        i32.add
        local.tee 0
        br_if again
        return count
    """, b""),
    # memory: every load and store width, signed loads, offsets, input_base
    "memory": ("""
        input_base 0x100
        i32.const 0x200
        i32.const 0x8180ff7f
        i32.store 0
        i32.const 0x200
        i32.load 0
        drop
        i32.const 0x1fc
        i32.load8_u 4
        i32.const 0x200
        i32.load8_s 2
        i32.const 0x201
        i32.load16_s 1
        i32.const 0x200
        i32.load16_u 2
        i32.const 0x200
        i32.load16_s 0
        i32.const 0x204
        i32.const 0xabcd
        i32.store16 0
        i32.const 0x205
        i32.const 0x12
        i32.store8 1
        i32.const 0x204
        i32.load 0
        i32.const 0x100
        i32.load 0
        i32.const 0x100
        i32.load8_u 3
        output
        i32.const 0x1ff
        i32.load 0
        i32.const 0x0
        i32.load 0xfff0
        i32.const 0x300
        i32.const 0xff
        i32.add
        i32.const 0x77
        i32.store8 0xff02
        i32.const 0x103fe
        i32.load16_u 1
        halt
    """, b"Hi!\x01"),
    # traps
    "trap_underflow": ("""
        i32.const 1
        i32.add
        halt
    """, b""),
    "trap_oob": ("""
        i32.const 0x9ffffe
        i32.load 0
        halt
    """, b""),
    "trap_oob_store": ("""
        i32.const 0xfffffff0
        i32.const 1
        i32.store8 0x10
        halt
    """, b""),
    "trap_oob_store16": ("""
        i32.const 0x9fffff
        i32.const 1
        i32.store16 0
        halt
    """, b""),
    "trap_input_base": ("""
        input_base 0x9ffffd
        halt
    """, b"abc"),
    "trap_input_base_high": ("""
        input_base 0x1000000
        halt
    """, b"a"),
    "input_base_fits": ("""
        input_base 0x9ffffb
        i32.const 0x9ffffb
        i32.load 0
        halt
    """, b"abcd"),
    "trap_return_outside": ("""
        i32.const 1
        return 0
    """, b""),
    "trap_halt_code": ("""
        i32.const 1
        halt 2
    """, b""),
    "trap_unreachable": ("""
        halt 1
    """, b""),
    "trap_memory_limit": ("""
        i32.const 7
        halt 5
    """, b""),
}


def program(name: str) -> Program:
    src, data = PROGRAMS[name]
    return asm(src, data)


def main() -> None:
    for name in PROGRAMS:
        p = program(name)
        (HERE / f"{name}.prog").write_text(format_program(p))


if __name__ == "__main__":
    main()
