"""The transformer's vocabulary: every token of a program file and a trace.

Order (fixed; token ids are indices): `{`, `}`, the 36 opcode names (spec
order, `input_base` last), byte tokens 00..ff, flagged bytes 00'..ff', input
characters `!`..`~` except `{` `}`, out(c) for c = 0..255, the 16 commit
variants commit(SD,sts=S,bt=B) for SD in +1,+0,-1,-2, branch_taken,
call_commit, return_commit, trap(NAME) for the 9 traps (`halt` is the
opcode token).
"""

from __future__ import annotations

from functools import lru_cache

from isowasm.spec import table
from isowasm.spec.program import OP_NAMES
from isowasm.spec.trace import out_token

SDS = (1, 0, -1, -2)
OPCODE_BITS = 6
TRAPS = table.trap_names()


def commit_str(sd: int, sts: int, bt: int) -> str:
    return f"commit({sd:+d},sts={sts},bt={bt})"


def _build():
    toks = ["{", "}"] + list(OP_NAMES)
    toks += [f"{b:02x}" for b in range(256)]
    toks += [f"{b:02x}'" for b in range(256)]
    toks += [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "{}"]
    toks += [out_token(b) for b in range(256)]
    toks += [commit_str(sd, s, b) for sd in SDS for s in (0, 1) for b in (0, 1)]
    # `halt` is both an opcode name and the trace token; it appears once, with
    # opcode features (nothing is generated after it, so it needs no others).
    toks += ["branch_taken", "call_commit", "return_commit"]
    toks += [f"trap({n})" for n in TRAPS]
    return toks


TOKENS: list[str] = _build()
INDEX: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
assert len(INDEX) == len(TOKENS)

# Tokens after which the canonical trace text breaks the line.
LINE_END = frozenset(t for t in TOKENS if t.startswith(("commit(", "out(", "trap(")) or t in (
    "halt", "branch_taken", "call_commit", "return_commit"))
# Tokens that end a step.
STEP_END = frozenset(t for t in LINE_END if t != "branch_taken")


@lru_cache(maxsize=None)
def features(tok: str) -> dict:
    """The token-embedding features of one token (names used by the machine)."""
    f: dict = {}
    if tok == "{":
        f["lb"] = 1
    elif tok == "}":
        f["rb"] = 1
    elif tok in OP_NAMES:
        f["is_op"] = 1
        f["op:" + tok] = 1
        code = OP_NAMES.index(tok) + 1   # 1..36 in 6 bits; 0 (no opcode) matches nothing
        for k in range(OPCODE_BITS):
            f[f"ob{k}"] = code >> k & 1
    elif len(tok) in (2, 3) and tok[:2].isalnum() and not tok.startswith("("):
        if len(tok) == 3 and tok[2] != "'":
            raise KeyError(tok)
        b = int(tok[:2], 16)
        f["is_byte"] = 1
        f["bval"] = b
        f["s8"] = b - 256 if b >= 128 else b
        f["flag"] = 1 if tok.endswith("'") else 0
    elif len(tok) == 1:
        f["is_char"] = 1
        f["bval"] = ord(tok)
    elif tok.startswith("out("):
        f["is_term"] = 1
        f["sd"] = -1
    elif tok.startswith("commit("):
        inner = tok[len("commit("):-1].split(",")
        f["is_term"] = 1
        f["is_commit"] = 1
        f["sd"] = int(inner[0])
        f["sts"] = int(inner[1].split("=")[1])
        f["bt"] = int(inner[2].split("=")[1])
        f["isbr"] = f["bt"]
    elif tok == "call_commit":
        f.update(is_term=1, is_callc=1, cdd=1, isbr=1)
    elif tok == "return_commit":
        f.update(is_term=1, is_retc=1, cdd=-1, isbr=1)
    elif tok.startswith("trap("):
        f["is_term"] = 1
    elif tok == "branch_taken":
        f["is_bt"] = 1
    else:
        raise KeyError(tok)
    return f
