#!/usr/bin/env python3
"""What the toolchain's lowering costs in machine steps (issue 13).

1. Per op: the steps of every lowered wasm op, i32 and i64, on every pair
   of operand classes (zero, one, small, shift widths, byte, half-word and
   sign boundaries, 2^31 / 2^32 / 2^63 and their neighbours, -1,
   negatives, bit patterns), once with both operands computed at run time
   (loaded from memory) and once with the right operand a constant (the
   toolchain's inline expansions): best, median and worst over the pairs,
   and the operands of the worst. Each op runs in a module of 160 pages,
   as C programs do (the scratch bytes of lowering.py are then saved and
   put back: the dearer of their two modes).
2. Per example (isowasm/suites/data/examples/): the steps, tokens and
   instructions of its program on the reference executor, and of the
   sudoku example built with -fno-jump-tables (the module the public
   transformer-vm's compiler can take, since it rejects br_table).

An op's cost is the steps between two output markers around its
application, less those of the same markers around only loading (and
dropping) its operands: loads and drops are not the op's.

3. With --baseline REV, the examples' steps again with the toolchain of
   commit REV (its files in a temporary git worktree, measured by this
   script in a subprocess, on the same clang and so the same modules): the
   report shows them beside today's.

Usage: python ci/bench_lowering.py [--json results/bench_lowering.json]
           [--ops OP ...] [--examples NAME ...] [--no-examples] [--baseline REV]
`isowasm report` renders the JSON beside the public transformer-vm's
figures (the issue's measurements).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# --baseline runs this script over another commit's tree (_baseline)
TREE = os.environ.get("ISOWASM_BENCH_TREE")
if TREE:
    # that tree's isowasm, not the editable install's
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, TREE or str(REPO))

from isowasm.atomic import atomic_write_json  # noqa: E402

M32, M64 = (1 << 32) - 1, (1 << 64) - 1
A_BASE, B_BASE = 0x1000, 0x8000
PAGES = 160

I32_CLASSES = [0, 1, 2, 7, 31, 32, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0xFFFFFF, 0x7FFFFFFF,
               0x80000000, M32, (-7) & M32, 0x55555555, 0xDEADBEEF]
I64_CLASSES = [0, 1, 7, 63, 64, 0xFF, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, (1 << 63) - 1,
               1 << 63, M64, (-7) & M64, 0x5555555555555555, 0x123456789ABCDEF0]
SHIFT_COUNTS = [0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64]

_BIN = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
        "shl", "shr_s", "shr_u", "rotl", "rotr"]
_CMP = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
_SHIFT = {"shl", "shr_s", "shr_u", "rotl", "rotr"}


def op_table() -> dict[str, tuple[tuple[str, ...], str]]:
    """op -> (operand types, result type) for every op measured."""
    t: dict[str, tuple[tuple[str, ...], str]] = {}
    for w in ("i32", "i64"):
        for o in _BIN:
            t[f"{w}.{o}"] = ((w, w), w)
        for o in _CMP:
            t[f"{w}.{o}"] = ((w, w), "i32")
        t[f"{w}.eqz"] = ((w,), "i32")
        for o in ("clz", "ctz", "popcnt", "extend8_s", "extend16_s"):
            t[f"{w}.{o}"] = ((w,), w)
    t["i64.extend32_s"] = (("i64",), "i64")
    t["i64.extend_i32_s"] = (("i32",), "i64")
    t["i64.extend_i32_u"] = (("i32",), "i64")
    t["i32.wrap_i64"] = (("i64",), "i32")
    return t


OPS = op_table()
WORDS = {"i32": 1, "i64": 2}


def _signed(v: int, t: str) -> int:
    bits = 32 if t == "i32" else 64
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _data(addr: int, vals: list[int], t: str) -> str:
    n = 4 if t == "i32" else 8
    raw = b"".join((v & ((1 << (8 * n)) - 1)).to_bytes(n, "little") for v in vals)
    text = "".join("\\%02x" % b for b in raw)
    return f'(data (i32.const {addr}) "{text}")'


def _traps(op: str, a: int, b: int, t: str) -> bool:
    name = op.split(".", 1)[1]
    if name not in ("div_s", "div_u", "rem_s", "rem_u"):
        return False
    bits = 32 if t == "i32" else 64
    return b == 0 or (name == "div_s" and a == 1 << (bits - 1) and b == (1 << bits) - 1)


def _pairs(op: str) -> list[tuple[int, int | None]]:
    (types, _res) = OPS[op]
    t = types[0]
    left = I32_CLASSES if t == "i32" else I64_CLASSES
    if len(types) == 1:
        return [(a, None) for a in left]
    right = SHIFT_COUNTS if op.split(".")[1] in _SHIFT else left
    return [(a, b) for a in left for b in right if not _traps(op, a, b, t)]


def _module(op: str | None, pairs, types: tuple[str, ...], const: bool) -> str:
    """A marker output, then op(a, b) dropped, for each pair; with op None
    the operands alone, dropped."""
    ta = types[0]
    lefts = sorted({a for a, _ in pairs})
    rights = sorted({b for _, b in pairs if b is not None})
    ia = {v: i for i, v in enumerate(lefts)}
    ib = {v: i for i, v in enumerate(rights)}
    wa, wb = (4 if ta == "i32" else 8), (4 if types[-1] == "i32" else 8)
    body = []
    for a, b in pairs:
        x = f"({ta}.load (i32.const {A_BASE + wa * ia[a]}))"
        args = [x]
        if b is not None:
            tb = types[1]
            args.append(f"({tb}.const {_signed(b, tb)})" if const else
                        f"({tb}.load (i32.const {B_BASE + wb * ib[b]}))")
        body.append("(call $out (i32.const 0))")
        if op is None:
            body += [f"(drop {y})" for y in (args[:1] if const else args)]
        else:
            body.append(f"(drop ({op} {' '.join(args)}))")
    body.append("(call $out (i32.const 0))")
    data = _data(A_BASE, lefts, ta) + (" " + _data(B_BASE, rights, types[1]) if rights else "")
    return (f'(module (import "env" "output_byte" (func $out (param i32))) (memory {PAGES}) {data}\n'
            f'  (func (export "compute")\n    ' + "\n    ".join(body) + "))")


def _marker_gaps(wat: str) -> list[int]:
    """Steps between consecutive outputs of the module's run."""
    import wasmtime

    from isowasm.spec.reference import Machine, _run_slice
    from isowasm.toolchain import compile_wasm

    prog = compile_wasm(wasmtime.wat2wasm(wat), "bench")
    is_out = [n == "output" for n in prog.names]
    m = Machine(prog)
    at: list[int] = []
    ev: list = []
    while m.status is None:
        ev.clear()
        start = m.steps
        _run_slice(m, start + 200_000, ev.append)
        for i, e in enumerate(ev):
            if is_out[e[0]]:
                at.append(start + i)
        if m.steps < start + 200_000:
            break
    if m.status not in (None, "halted"):
        raise RuntimeError(f"benchmark module stopped: {m.status} {m.trap}")
    return [y - x for x, y in zip(at, at[1:])]


def measure_op(op: str) -> list[dict]:
    """The op's cost rows: one per form (runtime operands, constant right
    operand) that applies to it."""
    types, res = OPS[op]
    pairs = _pairs(op)
    rows = []
    forms = [False] + ([True] if len(types) == 2 else [])
    for const in forms:
        gaps = _marker_gaps(_module(op, pairs, types, const))
        base = _marker_gaps(_module(None, pairs, types, const))
        dropped = WORDS[types[0]] + (WORDS[types[1]] if len(types) == 2 and not const else 0)
        costs = [g - b - WORDS[res] + dropped for g, b in zip(gaps, base)]
        k = max(range(len(costs)), key=costs.__getitem__)
        rows.append({
            "op": op, "type": op.split(".")[0] if op != "i32.wrap_i64" else "i64",
            "form": "const" if const else "runtime", "pairs": len(costs),
            "best": min(costs), "median": statistics.median_low(costs), "worst": max(costs),
            "worst_operands": [_signed(pairs[k][0], types[0])] + (
                [] if pairs[k][1] is None else [_signed(pairs[k][1], types[1])]),
        })
    return rows


def measure_examples(names: list[str] | None = None) -> list[dict]:
    from isowasm.spec.reference import run_reference
    from isowasm.suites.examples import load_examples
    from isowasm.toolchain import compile_file

    out = []
    for ex in load_examples():
        if names is not None and ex.name not in names:
            continue
        _, prog = compile_file(str(ex.file), input=ex.input)
        r = run_reference(prog, max_steps=ex.max_steps * 4)
        out.append({"name": ex.name, "module": "default", "steps": r.steps, "tokens": r.tokens,
                    "instructions": len(prog.names), "status": r.status, "output_ok": r.output == ex.expect_output})
        if ex.name == "sudoku":
            row = _no_jump_tables(ex)
            if row is not None:
                out.append(row)
    return out


def _no_jump_tables(ex) -> dict | None:
    """The sudoku example built with -fno-jump-tables (no br_table: the
    module the public transformer-vm's compiler takes)."""
    import isowasm.toolchain.frontend as fe
    from isowasm.spec.reference import run_reference
    from isowasm.toolchain import compile_wasm

    saved = list(fe.CLANG_FLAGS)
    fe.CLANG_FLAGS.append("-fno-jump-tables")
    try:
        wasm = fe.c_to_wasm(ex.file.read_text(), ex.name)
    except Exception:   # noqa: BLE001 - no clang here: the row is left out
        return None
    finally:
        fe.CLANG_FLAGS[:] = saved
    prog = compile_wasm(wasm, ex.name, ex.input)
    r = run_reference(prog, max_steps=ex.max_steps * 4)
    return {"name": ex.name, "module": "-fno-jump-tables", "steps": r.steps, "tokens": r.tokens,
            "instructions": len(prog.names), "status": r.status, "output_ok": r.output == ex.expect_output}


def run(ops: list[str] | None = None, examples: list[str] | None = None, with_examples: bool = True) -> dict:
    ops = list(OPS) if not ops else ops
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise SystemExit(f"error: unknown op(s) {', '.join(unknown)} (known: {', '.join(OPS)})")
    t0 = time.perf_counter()
    rows = [r for op in ops for r in measure_op(op)]
    ex = measure_examples(examples) if with_examples else []
    return {"kind": "bench_lowering", "time": time.time(), "memory_pages": PAGES,
            "classes": {"i32": len(I32_CLASSES), "i64": len(I64_CLASSES), "shift_counts": SHIFT_COUNTS},
            "ops": rows, "examples": ex, "seconds": round(time.perf_counter() - t0, 1)}


def _baseline(rev: str, names: list[str] | None) -> dict:
    """The examples' steps with the toolchain of commit `rev`."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO, capture_output=True,
                         text=True)
    if sha.returncode != 0:
        raise SystemExit(f"error: --baseline {rev}: not a commit of {REPO}")
    sha = sha.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="isowasm-bench-baseline-") as tmp:
        tree, out = Path(tmp) / "tree", Path(tmp) / "out.json"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), sha], cwd=REPO, check=True)
        try:
            # the installed layout: spec/ and transformer/ are isowasm.spec and isowasm.transformer
            for sub in ("spec", "transformer"):
                if not (tree / "isowasm" / sub).exists():
                    (tree / "isowasm" / sub).symlink_to(Path("..") / sub)
            env = {**os.environ, "ISOWASM_BENCH_TREE": str(tree),
                   "ISOWASM_CACHE": str(Path(tmp) / "cache")}   # nothing from today's cache
            r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--ops-none", "--json", str(out)]
                               + (["--examples", *names] if names else []), env=env, capture_output=True,
                               text=True)
            if r.returncode != 0:
                raise SystemExit(f"error: --baseline {rev}: the run on that commit failed: "
                                 f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
            examples = json.loads(out.read_text())["examples"]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    return {"rev": rev, "commit": sha, "examples": examples}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", nargs="*", help="only these ops (default: every lowered op)")
    ap.add_argument("--examples", nargs="*", help="only these examples (default: all)")
    ap.add_argument("--no-examples", action="store_true")
    ap.add_argument("--json", default="results/bench_lowering.json", help="'' for none")
    ap.add_argument("--baseline", metavar="REV", help="also the examples' steps with commit REV's toolchain")
    ap.add_argument("--ops-none", action="store_true", help=argparse.SUPPRESS)   # --baseline's own run
    a = ap.parse_args(argv)
    if a.ops_none:
        doc = {"kind": "bench_lowering", "ops": [], "examples": measure_examples(a.examples)}
    else:
        doc = run(a.ops, a.examples, not a.no_examples)
    if a.baseline:
        doc["baseline"] = _baseline(a.baseline, a.examples)
    w = max(len(r["op"]) for r in doc["ops"]) if doc["ops"] else 8
    print(f"{'op':{w}}  {'form':7}  {'best':>6} {'median':>6} {'worst':>6}  worst on")
    for r in doc["ops"]:
        print(f"{r['op']:{w}}  {r['form']:7}  {r['best']:6d} {r['median']:6d} {r['worst']:6d}  "
              f"{', '.join(map(str, r['worst_operands']))}")
    before = {(e["name"], e["module"]): e["steps"] for e in doc.get("baseline", {}).get("examples", [])}
    for e in doc["examples"]:
        b = before.get((e["name"], e["module"]))
        print(f"{e['name']} ({e['module']}): {e['steps']:,} steps, {e['tokens']:,} tokens, "
              f"{e['instructions']:,} instructions, {e['status']}"
              + ("" if b is None else f"; {a.baseline}: {b:,} steps ({e['steps'] / b:.2f}x)"))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.json, doc)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
