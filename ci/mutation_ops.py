"""Mutant generators for ci/mutation.py: one small mutation each, as a
(file, start, end, replacement) edit of the source text, so every mutant's
diff is exactly the one token or expression it changes.

* Python (spec/, isowasm/toolchain/, transformer/): our own AST mutator.
  Operators + - * // % & | ^ << >> (and their augmented forms), comparisons
  < <= == != > >= is in, and/or, `not`/unary minus/~ removed, integer
  constants n -> n+1 / n-1 (0 -> 1), True <-> False, `return x` ->
  `return None`, a statement deleted (replaced by `pass`). Docstrings,
  f-strings, annotations and code marked `pragma: no cover` / `no mutate`
  are left alone.
* OCaml (ports/ocaml/lib/*.ml): our own token mutator. Operators + - * /
  mod land lor lxor lsl lsr asr, comparisons < <= = <> > >= == !=, && ||,
  `not` removed, integer literals, Int32/Int64 arithmetic, and every
  `if c then` negated. Comments, strings, char literals, attributes and type
  declarations are skipped; a `=` that binds (let, and, for, record fields)
  is not a comparison.
* Rust: cargo-mutants (`cargo mutants --list --json`); see rust_mutants.

Every mutant is checked to change the text and (Python) to compile; two
mutants that give the same text are one.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Mutant:
    file: str            # relative to the repository root
    line: int            # 1-based, of the first changed character
    col: int             # 1-based
    operator: str        # the mutation operator's name
    original: str        # the replaced text (a token, an expression or a statement)
    replacement: str
    start: int = 0       # character offsets in the file's text (Python/OCaml)
    end: int = 0
    patch: str | None = None     # cargo-mutants: its unified diff, applied instead of start/end
    description: str = ""        # cargo-mutants' own name for the mutant
    original_line: str = ""      # the whole source line before and after (stripped)
    mutated_line: str = ""
    diff: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Unique within one version of the sources."""
        h = hashlib.sha256(f"{self.file}\0{self.start}\0{self.end}\0{self.replacement}\0{self.patch}".encode())
        return f"{self.file}:{self.line}:{self.col}:{self.operator}:{h.hexdigest()[:8]}"

    def apply(self, text: str) -> str:
        if self.patch is not None:
            return apply_unified_diff(text, self.patch)
        return text[:self.start] + self.replacement + text[self.end:]


def finish(mutants: list[Mutant], text: str, rel: str, check=None) -> list[Mutant]:
    """Fill in lines and diffs; drop no-ops, duplicates and invalid ones
    (`check(mutant, new_text)` false)."""
    out, seen = [], {hashlib.sha256(text.encode()).hexdigest()}
    old_lines = text.splitlines(keepends=True)
    for m in mutants:
        new = m.apply(text)
        digest = hashlib.sha256(new.encode()).hexdigest()
        if digest in seen or (check is not None and not check(m, new)):
            continue
        seen.add(digest)
        new_lines = new.splitlines(keepends=True)
        m.diff = _diff(old_lines, new_lines, rel, m)
        if not m.line:
            m.line = _first_changed_line(old_lines, new_lines)
        m.original_line = old_lines[m.line - 1].strip() if m.line <= len(old_lines) else ""
        m.mutated_line = new_lines[m.line - 1].strip() if m.line <= len(new_lines) else ""
        out.append(m)
    return out


def _diff(old: list[str], new: list[str], rel: str, m: Mutant, context: int = 2) -> str:
    """The unified diff of one contiguous edit, computed on a window around it."""
    if m.patch is not None:
        return "".join(difflib.unified_diff(old, new, f"a/{rel}", f"b/{rel}", n=context))
    first = _first_changed_line(old, new) - 1
    tail = 0
    while tail < min(len(old), len(new)) - first and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    lo = max(0, first - context - 1)
    a, b = old[lo:len(old) - max(0, tail - context - 1)], new[lo:len(new) - max(0, tail - context - 1)]
    text = "".join(difflib.unified_diff(a, b, f"a/{rel}", f"b/{rel}", n=context))

    def shift(mm):
        def one(x, y):
            return f"{int(x) + lo}" + (f",{y}" if y is not None else "")
        return f"@@ -{one(mm.group(1), mm.group(2))} +{one(mm.group(3), mm.group(4))} @@"

    return re.sub(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", shift, text, flags=re.M)


def _first_changed_line(a: list[str], b: list[str]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i + 1
    return min(len(a), len(b)) + 1


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _int_variants(value: int) -> list[int]:
    if value == 0:
        return [1]
    if value == 1:
        return [0, 2]
    return [value + 1, value - 1]


def _format_int(value: int, like: str) -> str:
    """`value` written the way the literal `like` is (hex, underscores, suffix)."""
    m = re.fullmatch(r"(0[xXoObB])?([0-9a-fA-F_]+)([lLn]?)", like)
    prefix, digits, suffix = (m.group(1) or "", m.group(2), m.group(3)) if m else ("", like, "")
    base = {"": 10, "0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}[prefix]
    body = {10: f"{value:d}", 16: f"{value:x}", 8: f"{value:o}", 2: f"{value:b}"}[base]
    if base == 16 and any(c in "ABCDEF" for c in digits):
        body = body.upper()
    if base != 10 and "_" not in digits:
        body = body.zfill(len(digits))       # 0x0c -> 0x0b, not 0xb
    if "_" in digits and base == 10:
        body = f"{value:_d}"
    return prefix + body + suffix


# ---- Python -----------------------------------------------------------------

_BINOP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "//"), ast.FloorDiv: ("//", "*"),
          ast.Div: ("/", "*"), ast.Mod: ("%", "//"), ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"),
          ast.BitXor: ("^", "|"), ast.LShift: ("<<", ">>"), ast.RShift: (">>", "<<"), ast.Pow: ("**", "*")}
_CMPOP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
          ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"),
          ast.IsNot: ("is not", "is"), ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
# Python's operator tokens, longest first (maximal munch in a gap between operands)
_PY_TOKENS = re.compile(r"\*\*=?|//=?|>>=?|<<=?|->|:=|[<>=!]=|[-+*/%&|^@<>~]=?|[()\[\]{},:.;]"
                        r"|\bnot\s+in\b|\bis\s+not\b|\b(?:and|or|not|in|is)\b")
_PRAGMA = re.compile(r"#.*pragma:\s*no (?:cover|mutate)")


class _PySource:
    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for ln in self.lines:
            self.starts.append(self.starts[-1] + len(ln))

    def off(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col_bytes].decode("utf-8", "replace"))

    def span(self, node) -> tuple[int, int]:
        return self.off(node.lineno, node.col_offset), self.off(node.end_lineno, node.end_col_offset)

    def find_op(self, a: int, b: int, op: str) -> tuple[int, int] | None:
        """The operator token `op` in text[a:b] (the gap between two operands:
        parentheses, whitespace, comments and one operator)."""
        gap = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), self.text[a:b])
        for m in _PY_TOKENS.finditer(gap):
            if re.sub(r"\s+", " ", m.group()) == op:
                return a + m.start(), a + m.end()
        return None


def _skipped_lines(tree: ast.AST, src: _PySource) -> set[int]:
    """Lines never mutated: docstring-free `pragma: no cover/no mutate`
    statements (with their bodies), `else:  # pragma: no cover` branches and
    `if __name__ == "__main__":` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            if _PRAGMA.search(src.lines[node.lineno - 1]):
                skip.update(range(node.lineno, node.end_lineno + 1))
            orelse = getattr(node, "orelse", None)
            if orelse and orelse[0].lineno >= 2 and _PRAGMA.search(src.lines[orelse[0].lineno - 2]) \
                    and src.lines[orelse[0].lineno - 2].lstrip().startswith("else"):
                skip.update(range(orelse[0].lineno, orelse[-1].end_lineno + 1))
            if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
                skip.update(range(node.lineno, node.end_lineno + 1))
    return skip


def _no_mutate_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes that are not code to mutate: docstrings, f-strings,
    annotations, and everything inside them."""
    out: set[int] = set()

    def mark(n):
        for x in ast.walk(n):
            out.add(id(x))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, ast.JoinedStr):
            mark(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            mark(node.returns)
        if isinstance(node, ast.arg) and node.annotation is not None:
            mark(node.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.ImportFrom) or isinstance(node, ast.Import):
            mark(node)
    return out


def python_mutants(path: Path, rel: str) -> list[Mutant]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    src = _PySource(text)
    skip_lines = _skipped_lines(tree, src)
    skip_nodes = _no_mutate_nodes(tree)
    raw: list[Mutant] = []

    def add(op: str, a: int, b: int, repl: str):
        line, col = _line_col(text, a)
        if line in skip_lines:
            return
        raw.append(Mutant(rel, line, col, op, text[a:b], repl, a, b))

    for node in ast.walk(tree):
        if id(node) in skip_nodes or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
            tok, repl = _BINOP[type(node.op)]
            at = src.find_op(src.span(node.left)[1], src.span(node.right)[0], tok)
            if at:
                add("binop", *at, repl)
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP:
            tok, repl = _BINOP[type(node.op)]
            at = src.find_op(src.span(node.target)[1], src.span(node.value)[0], tok + "=")
            if at:
                add("augassign", *at, repl + "=")
        elif isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                tok, repl = _CMPOP[type(op)]
                at = src.find_op(src.span(left)[1], src.span(right)[0], tok)
                if at:
                    add("compare", *at, repl)
                left = right
        elif isinstance(node, ast.BoolOp):
            tok, repl = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:]):
                at = src.find_op(src.span(left)[1], src.span(right)[0], tok)
                if at:
                    add("boolop", *at, repl)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not) or (isinstance(node.op, (ast.USub, ast.Invert))
                                                and not isinstance(node.operand, ast.Constant)):
                a, _ = src.span(node)
                b, _ = src.span(node.operand)
                if src.text[b - 1] == "(" and src.text[a:b].rstrip("( ").strip() in ("not", "-", "~"):
                    b = b - 1   # keep the operand's own parenthesis
                add("unary", a, b, "")
        elif isinstance(node, ast.Constant):
            a, b = src.span(node)
            if isinstance(node.value, bool):
                add("constant", a, b, str(not node.value))
            elif isinstance(node.value, int):
                lit = text[a:b]
                for v in _int_variants(node.value):
                    add("constant", a, b, _format_int(v, lit) if re.fullmatch(r"0[xXoObB]?[0-9a-fA-F_]*", lit)
                        else str(v))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            a, b = src.span(node.value)
            add("return", a, b, "None")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr, ast.Raise, ast.Break, ast.Continue,
                             ast.Delete)) and not (isinstance(node, ast.AnnAssign) and node.value is None):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue
            a, b = src.span(node)
            add("delete", a, b, "pass")

    def compiles(m: Mutant, new: str) -> bool:
        # Only removing a unary operator can break the syntax (a swapped
        # operator, a literal or `pass` for a statement cannot), and
        # compiling costs ~10 ms a mutant: check just those.
        if m.operator != "unary":
            return True
        try:
            compile(new, rel, "exec")
            return True
        except SyntaxError:
            return False

    raw.sort(key=lambda m: (m.start, m.end, m.operator, m.replacement))
    return finish(raw, text, rel, compiles)


# ---- OCaml ------------------------------------------------------------------

_ML_OPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">",
           "=": "<>", "<>": "=", "==": "!=", "!=": "==", "&&": "||", "||": "&&"}
_ML_WORDS = {"land": "lor", "lor": "land", "lxor": "lor", "lsl": "lsr", "lsr": "lsl", "asr": "lsr",
             "mod": "/"}
_ML_INTMOD = {"add": "sub", "sub": "add", "mul": "div", "div": "mul", "rem": "div", "logand": "logor",
              "logor": "logand", "logxor": "logor", "shift_left": "shift_right_logical",
              "shift_right_logical": "shift_left", "shift_right": "shift_right_logical"}
_ML_BINDERS = {"let", "and", "for", "val", "external", "method"}
_ML_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\(\*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<char>'(?:[^\\'\n]|\\(?:[\\'"ntbr ]|[0-9]{3}|x[0-9a-fA-F]{2}|o[0-7]{3}))')
  | (?P<attr>\[@@?@?)
  | (?P<arr>\[\||\|\])
  | (?P<float>[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))
  | (?P<int>0[xX][0-9a-fA-F_]+[lLn]?|0[oO][0-7_]+[lLn]?|0[bB][01_]+[lLn]?|[0-9][0-9_]*[lLn]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_']*)
  | (?P<op>[!$%&*+\-./:<=>?@^|~#]+)
  | (?P<punct>[()\[\]{};,`'])
""", re.X)


def ocaml_tokens(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of every token but whitespace and comments."""
    out, i, n = [], 0, len(text)
    while i < n:
        m = _ML_TOKEN.match(text, i)
        if m is None:
            i += 1
            continue
        kind = m.lastgroup
        if kind == "comment":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("(*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*)", j):
                    depth, j = depth - 1, j + 2
                elif text[j] == '"':
                    s = re.compile(r'"(?:[^"\\]|\\.)*"', re.S).match(text, j)
                    j = s.end() if s else j + 1
                else:
                    j += 1
            i = j
            continue
        if kind != "ws":
            out.append((kind, m.group(), m.start(), m.end()))
        i = m.end()
    return out


def ocaml_mutants(path: Path, rel: str) -> list[Mutant]:
    text = path.read_text(encoding="utf-8")
    toks = ocaml_tokens(text)
    raw: list[Mutant] = []

    def add(op, a, b, repl):
        line, col = _line_col(text, a)
        raw.append(Mutant(rel, line, col, op, text[a:b], repl, a, b))

    stack: list[str] = []          # open brackets: ( [ { [| and attributes
    binders: list[int] = []        # bracket depths at which a binding `=` is pending
    in_type = False                # inside a `type ... ` or `exception` declaration
    for k, (kind, tok, a, b) in enumerate(toks):
        prev = toks[k - 1][1] if k else ""
        prev2 = toks[k - 2][1] if k > 1 else ""
        in_attr = any(s.startswith("[@") for s in stack)
        if kind == "attr":
            stack.append(tok)
            continue
        if kind in ("punct", "arr"):
            if tok in ("(", "[", "{", "[|"):
                stack.append(tok)
            elif tok in (")", "]", "}", "|]") and stack:
                stack.pop()
                binders[:] = [d for d in binders if d <= len(stack)]
            continue
        if in_attr:
            continue
        if kind == "ident" and not stack and tok in ("let", "module", "open", "include"):
            in_type = False
        if kind == "ident" and not stack and tok in ("type", "exception"):
            in_type = True
        if in_type:
            continue
        depth = len(stack)
        if kind == "ident":
            if tok in _ML_BINDERS:
                binders.append(depth)
            elif tok in _ML_WORDS:
                add("operator", a, b, _ML_WORDS[tok])
            elif tok == "not":
                add("unary", a, toks[k + 1][2] if k + 1 < len(toks) else b, "")
            elif tok == "if":
                then = _matching_then(toks, k)
                if then is not None:
                    ca, cb = toks[k + 1][2], toks[then - 1][3]
                    add("if-condition", ca, cb, f"not ({text[ca:cb]})")
            elif tok in _ML_INTMOD and prev == "." and prev2 in ("Int32", "Int64"):
                add("operator", a, b, _ML_INTMOD[tok])
        elif kind == "op":
            if tok == "=":
                if binders and binders[-1] == depth:
                    binders.pop()
                    continue
                if stack and stack[-1] == "{" and toks[k - 1][0] == "ident" and prev2 in ("{", ";", "with"):
                    continue   # a record field
            if tok in _ML_OPS:
                add("operator", a, b, _ML_OPS[tok])
        elif kind == "int":
            digits = re.sub(r"[lLn_]", "", tok)
            value = int(digits, 0) if re.match(r"0[xXoObB]", digits) else int(digits)
            for v in _int_variants(value):
                add("constant", a, b, _format_int(v, tok))
    raw.sort(key=lambda m: (m.start, m.end, m.operator, m.replacement))
    return finish(raw, text, rel)


def _matching_then(toks, k: int) -> int | None:
    depth, ifs = 0, 0
    for j in range(k + 1, min(len(toks), k + 400)):
        t = toks[j][1]
        if t in ("(", "[", "{", "[|", "begin"):
            depth += 1
        elif t in (")", "]", "}", "|]", "end"):
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and t == "if":
            ifs += 1
        elif depth == 0 and t == "then":
            if ifs == 0:
                return j if j > k + 1 else None
            ifs -= 1
    return None


# ---- Rust (cargo-mutants) ---------------------------------------------------

def cargo_mutants_version() -> str | None:
    try:
        out = subprocess.run(["cargo", "mutants", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def rust_mutants(crate: Path, rel_crate: str, files: list[str] | None = None) -> list[Mutant]:
    """cargo-mutants' mutants of the crate at `crate`, as patches (its own
    diffs) on files named relative to the repository root."""
    if cargo_mutants_version() is None:
        raise RuntimeError("cargo-mutants is not installed: `cargo install cargo-mutants --locked` "
                           "(or `make mutation`, which installs it)")
    proc = subprocess.run(["cargo", "mutants", "--list", "--json", "--diff"], cwd=crate, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"cargo mutants --list failed in {crate}: {proc.stderr.strip()[-2000:]}")
    out = []
    by_file: dict[str, list[Mutant]] = {}
    for d in json.loads(proc.stdout):
        f = d["file"]
        if files is not None and f not in files:
            continue
        rel = f"{rel_crate}/{f}"
        span = d.get("span") or {}
        line = span.get("start", {}).get("line", 0)
        col = span.get("start", {}).get("column", 0)
        desc = d["name"].split(": ", 1)[-1]
        m = Mutant(rel, 0, col, d.get("genre", "cargo-mutants"), _rust_original(crate / f, span),
                   d.get("replacement", ""), patch=_own_paths(d["diff"], f), description=desc,
                   extra={"span_line": line})
        by_file.setdefault(f, []).append(m)
    for f, ms in sorted(by_file.items()):
        text = (crate / f).read_text(encoding="utf-8")
        good = []
        for m in ms:
            try:
                m.apply(text)
            except ValueError:
                continue
            good.append(m)
        out += finish(good, text, f"{rel_crate}/{f}")   # line: the first changed one
    return out


def _rust_original(path: Path, span: dict) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        s, e = span["start"], span["end"]
        if s["line"] == e["line"]:
            return lines[s["line"] - 1][s["column"] - 1:e["column"] - 1]
        return lines[s["line"] - 1][s["column"] - 1:].strip() + " ..."
    except (KeyError, IndexError, OSError):
        return ""


def _own_paths(diff: str, f: str) -> str:
    lines = diff.splitlines(keepends=True)
    return "".join(f"+++ b/{f}\n" if ln.startswith("+++ ") else f"--- a/{f}\n" if ln.startswith("--- ") else ln
                   for ln in lines)


def apply_unified_diff(text: str, diff: str) -> str:
    """Apply a one-file unified diff (exact context; ValueError if it does not fit)."""
    old = text.splitlines(keepends=True)
    out, pos = [], 0
    hunks = re.split(r"^@@ ", diff, flags=re.M)[1:]
    for h in hunks:
        head, _, body = h.partition("\n")
        m = re.match(r"-(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", head)
        if not m:
            raise ValueError("bad hunk header")
        start = int(m.group(1)) - 1 if m.group(2) != "0" else int(m.group(1))
        out += old[pos:start]
        i = start
        for ln in body.splitlines(keepends=True):
            if ln.startswith("\\"):
                continue
            tag, content = ln[:1], ln[1:]
            if tag in (" ", "-"):
                if i >= len(old) or old[i].rstrip("\r\n") != content.rstrip("\r\n"):
                    raise ValueError(f"context mismatch at line {i + 1}")
                if tag == " ":
                    out.append(old[i])
                i += 1
            elif tag == "+":
                out.append(content if content.endswith("\n") else content + "\n")
        pos = i
    out += old[pos:]
    return "".join(out)
