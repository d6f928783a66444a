"""Shrinking a fuzz finding: one-step edits of the generator's AST (delete
functions, statements and locals, splice blocks, replace an expression by a
subexpression or 0, shrink constants) and the greedy loop that keeps the
smallest program with the same divergence signature."""

from __future__ import annotations

import dataclasses
import time


def _ast():
    from isowasm.fuzz import generators as S
    return S


def _kinds():
    S = _ast()
    exprs = (S.Const, S.LocalGet, S.GlobalGet, S.Unop, S.Binop, S.Div, S.Select, S.Load, S.Tee,
             S.Call, S.IfExpr, S.BlockExpr, S.Switch, S.BrIfExpr, S.LoopExpr, S.MemorySize,
             S.MemoryGrow)
    stmts = (S.SetLocal, S.SetGlobal, S.Store, S.Out, S.Drop, S.CallStmt, S.If, S.Block, S.Loop,
             S.Br, S.BrIf, S.BrTable, S.Return, S.Unreachable)
    return exprs, stmts


def _const_edits(v: int):
    out = [0, 1]
    if v not in (0, 1):
        half = int(v / 2)
        out += [half, -1 if v < 0 else v - 1]
    return [x for x in dict.fromkeys(out) if x != v]


def _sub_exprs(node, exprs):
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if type(v) in exprs:
            yield v
        elif isinstance(v, tuple):
            for x in v:
                if type(x) in exprs:
                    yield x
                elif isinstance(x, tuple):
                    for y in x:
                        if type(y) in exprs:
                            yield y


def _inner_stmts(s):
    """Statement lists that can stand in for statement `s`: the bodies of a
    compound statement, and the bodies nested in its expressions (a loop or
    block inside a `local.set`, say), outermost first."""
    S = _ast()
    t = type(s)
    out = []
    if t is S.If:
        out += [s.then + s.els, s.then, s.els]
    elif t in (S.Block, S.Loop):
        out.append(s.body)

    def walk(x):
        if isinstance(x, tuple):
            for y in x:
                walk(y)
            return
        tx = type(x)
        if tx is S.IfExpr:
            out.extend([x.then + x.els, x.then, x.els])
        elif tx in (S.BlockExpr, S.LoopExpr):
            out.append(x.body)
        if hasattr(x, "__dataclass_fields__"):
            for f in dataclasses.fields(x):
                v = getattr(x, f.name)
                if f.name not in ("then", "els", "body") or tx not in (
                        S.IfExpr, S.BlockExpr, S.LoopExpr, S.If, S.Block, S.Loop):
                    walk(v)

    for f in dataclasses.fields(s):
        if t in (S.If, S.Block, S.Loop) and f.name in ("then", "els", "body"):
            continue
        walk(getattr(s, f.name))
    return [b for b in out if b]


def _node_edits(node, exprs, stmts):
    """Smaller variants of one expression or statement node, simplest first."""
    S = _ast()
    if type(node) in exprs:
        if type(node) is S.Const:
            for v in _const_edits(node.value):
                yield S.Const(v)
            return
        yield S.Const(0)
        yield from _sub_exprs(node, exprs)
        if type(node) is S.Div and node.guard is not None:
            # the run-time divisor guard is scaffolding: without it the
            # reproduction shows the division alone (a zero divisor now traps)
            yield dataclasses.replace(node, guard=None)
    yield from _field_edits(node, exprs, stmts)


def _field_edits(node, exprs, stmts):
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            for nv in _tuple_edits(v, exprs, stmts):
                yield dataclasses.replace(node, **{f.name: nv})
        elif type(v) in exprs or type(v) in stmts:
            for nv in _node_edits(v, exprs, stmts):
                yield dataclasses.replace(node, **{f.name: nv})


def _tuple_edits(tup: tuple, exprs, stmts):
    if tup and all(type(x) in stmts for x in tup):
        # halves first, then single statements, then splicing bodies
        n = len(tup)
        if n >= 4:
            yield tup[n // 2:]
            yield tup[:n // 2]
        for i in range(n):
            yield tup[:i] + tup[i + 1:]
        for i, x in enumerate(tup):
            for inner in _inner_stmts(x):
                yield tup[:i] + inner + tup[i + 1:]
    for i, x in enumerate(tup):
        if type(x) in exprs or type(x) in stmts:
            for nx in _node_edits(x, exprs, stmts):
                yield tup[:i] + (nx,) + tup[i + 1:]
        elif isinstance(x, tuple):
            for nx in _tuple_edits(x, exprs, stmts):
                yield tup[:i] + (nx,) + tup[i + 1:]


def module_edits(m):
    """Every one-step smaller variant of a Module, coarse edits first. Many
    are invalid (a deleted function still called, a label gone): those fail
    to compile and are skipped by the shrinker."""
    exprs, stmts = _kinds()
    rep = dataclasses.replace
    funcs = m.funcs
    for i in range(len(funcs) - 1, 0, -1):              # whole helper functions
        yield rep(m, funcs=funcs[:i] + funcs[i + 1:])
    if m.dump:
        yield rep(m, dump=False)
    for i, f in enumerate(funcs):                        # bodies, coarse to fine
        for body in _tuple_edits(f.body, exprs, stmts):
            yield rep(m, funcs=funcs[:i] + (rep(f, body=body),) + funcs[i + 1:])
        if f.value is not None:
            for v in _node_edits(f.value, exprs, stmts):
                yield rep(m, funcs=funcs[:i] + (rep(f, value=v),) + funcs[i + 1:])
    if m.data:
        yield rep(m, data=b"")
    for i, f in enumerate(funcs):                        # unused locals
        for j in range(len(f.locals)):
            yield rep(m, funcs=funcs[:i] + (rep(f, locals=f.locals[:j] + f.locals[j + 1:]),)
                      + funcs[i + 1:])
    for j in range(len(m.globals)):
        yield rep(m, globals=m.globals[:j] + m.globals[j + 1:])
    if m.memory != (1, None):
        yield rep(m, memory=(1, None))


def shrink_module(m, evaluate, signature: str, seconds: float, should_stop=lambda: False):
    """Greedy AST shrinking: take the first one-step edit (module_edits) that
    keeps the signature, continue from the same position; repeat passes until
    a pass changes nothing, time runs out or should_stop() says so.
    evaluate(module) -> (signature or None, comparison). Returns (smallest
    module, its comparison, candidates tried)."""
    from isowasm.fuzz.generators import render

    deadline = time.monotonic() + seconds
    seen: set[str] = {render(m)}
    got, cmp = evaluate(m)
    if got != signature:     # not reproducible in isolation: keep the original
        return m, cmp, 0
    tried = 0
    changed = True
    while changed and time.monotonic() < deadline and not should_stop():
        changed = False
        skip = 0
        while time.monotonic() < deadline and not should_stop():
            progress = False
            cur_len = len(render(m))
            for pos, cand in enumerate(module_edits(m)):
                if pos < skip:
                    continue
                if time.monotonic() >= deadline or should_stop():
                    break
                wat = render(cand)
                if wat in seen or len(wat) >= cur_len + 40:
                    continue
                seen.add(wat)
                tried += 1
                got, c = evaluate(cand)
                if got == signature:
                    m, cmp, skip = cand, c, pos
                    changed = progress = True
                    break
            if not progress:
                break
    return m, cmp, tried
