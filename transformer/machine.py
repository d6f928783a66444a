"""The isowasm machine written in the graph DSL: one universal interpreter.

The prompt is the program file (`{`, 5 tokens per instruction, `}`, the input
section ending with `00 commit(+0,sts=0,bt=0)`); the model then emits the
trace of spec/MACHINE.md token by token. Nothing is stored: every quantity is
rebuilt from the token history at every position.

Per position i (the token just read; the model predicts token i+1):

* running sums (averaging heads, then one neuron times the position count,
  then *snapped* to an exact integer by a unique lookup on the position):
  SP = sum of commit SDs (out(c) counts -1) = depth before the step of
  token i+1; CD = calls - returns; PC = sum over step-ending tokens of
  1 + (taken branch ? s32 of the 4 bytes before it : 0)  -- a return emits
  rpc - pc - 1, so that sum is the pc; `{` counts -1 and an `input_base`
  opcode +1, so PC starts at 0, or 1 after input_base (which emits nothing).
* n = pos - (position of the latest step-ending token): how many tokens of
  the current step have been emitted.
* fetch: the instruction at PC (the opcode number in 6 bits, 4 immediate
  bytes), gathered at the last immediate byte of each instruction in the
  prompt; one neuron per opcode matches the bits.
* stack: each `commit(.., sts=1, ..)` writes the 4 bytes before it to slot
  SP - 1 (key: two bytes of the slot); reads of slots SP, SP-1, SP-2, SP-3.
* locals: the commit of local.set/local.tee writes key (CD, index); a read
  is valid only when its writer comes after the call_commit that opened the
  current frame (the latest call_commit reaching depth CD): a callee sees
  zeros, a caller gets its own values back after the return.
* globals: the commit of global.set writes the popped slot under its index.
* memory: store value bytes write their byte at ea + k (3 address bytes);
  with `input_base`, the input section's bytes are written at base + offset.
* the last FFN turns (op, n, trap conditions, values) into the output
  features (one-hot kind, byte value, flag) read by the unembedding.

Supported range (the horizon; beyond it the construction is undefined):
positions < 2**22, stack depth <= 65536, call depth <= 4096, memory addresses
< 2**24 (the machine's memory is 10 MiB), and a program whose pc 0 is
`input_base` must not branch back to pc 0 (re-executing input_base emits no
tokens). An `input_base` whose copy overflows memory traps at the input
commit: that case's kind neuron has weight 2, so it outweighs the first step.
"""

from __future__ import annotations

from isowasm.spec import table
from isowasm.spec.program import OP_NAMES
from isowasm.transformer import vocab
from isowasm.transformer.graph import Graph, Lin

LIM = table.limits()
MEM = LIM["memory_bytes"]
STACK = LIM["operand_stack"]
DEPTH = LIM["call_depth"]
TRAP_BY_CODE = table.trap_by_code()
assert all(0 < c < 256 for c in TRAP_BY_CODE), "halt codes are read from the immediate's low byte"
OPS = {o["name"]: o for o in table.ops()}

KINDS = ["byte", "out"] + [t for t in vocab.TOKENS if t.startswith(("commit(", "trap(")) or t in (
    "branch_taken", "call_commit", "return_commit", "halt")]


def _commit(op: str, key: str = "commit") -> str:
    sd, sts, bt = OPS[op][key]
    return vocab.commit_str(sd, sts, bt)


class Machine:
    """The graph plus the nodes the readout (unembedding) uses."""

    def __init__(self):
        self.g = Graph()
        self.kind: dict[str, object] = {}
        self.val = None
        self.flag = None
        self.diag: dict[str, object] = {}
        _construct(self)
        roots = list(self.kind.values()) + [self.val, self.flag] + list(self.diag.values())
        self.pruned = self.g.prune(roots)


def _construct(m: Machine) -> None:
    g = m.g
    one = g.one
    names = sorted({k for t in vocab.TOKENS for k in vocab.features(t)})
    F = {nm: g.tok(nm, (lambda nm: lambda t: vocab.features(t).get(nm, 0))(nm)) for nm in names}
    for op in OP_NAMES:
        F.setdefault("op:" + op, None)
    g.lb = F["lb"]
    pos = g.position()
    n1 = g.pos("n", "pos", 1)
    psq = g.pos("pos_sq", "sq")
    lo = [g.pos(f"lo{k}", "lo", k) for k in range(4)]
    hi = [g.pos(f"hi{k}", "hi", k) for k in range(4)]
    pb = [g.pos(f"pbyte{k}", "byte", k) for k in range(3)]

    # ---------------- layer 1: sums, relative tokens, markers ----------------
    avg = g.average("sum", {"sd": F["sd"], "cd": F["cdd"], "ends": F["is_term"]})
    rel = {}
    for k in range(1, 5):
        vals = {"b": F["bval"], "s8": F["s8"]}
        if k == 4:
            vals["is_op"] = F["is_op"]
            for b in range(vocab.OPCODE_BITS):
                vals[f"ob{b}"] = F[f"ob{b}"]
            vals["op:input_base"] = F["op:input_base"]
        outs = g.lookup(f"rel{k}", "unique", [pos], [pos - k], vals, key_sq=psq)
        rel[k] = dict(zip(vals, outs))
    LT = g.lookup("last_end", "latest", [], [], {"pos": pos}, write=F["is_term"])[0]
    RB = g.lookup("rbrace", "latest", [], [], {"pos": pos}, write=F["rb"])[0]

    # FFN 1
    sp_raw = g.mul("sp_raw", n1, avg[0])
    cd_raw = g.mul("cd_raw", n1, avg[1])
    ends_raw = g.mul("ends_raw", n1, avg[2])
    off = rel[4]["b"] + 256 * rel[3]["b"] + 65536 * rel[2]["b"] + (1 << 24) * rel[1]["s8"]
    cbr = g.mul("pc_branch", F["isbr"], off)
    c = F["is_term"] + cbr - F["lb"] + F["op:input_base"]
    nn = pos - LT
    nk = [g.eq(f"n=={k}", nn, k) for k in range(6)]
    has_rb = g.step("after_rbrace", RB, 1)
    lt_any = g.step("any_end", LT, 1)
    instr_end = g.all_of("instr_end", [rel[4]["is_op"], F["is_byte"]])
    fkey = pos - 5                       # = 5 * (instruction index) where instr_end
    fkey_sq = psq - 10 * pos + 25

    # ---------------- layer 2: snaps, pc sum, input_base -----------------
    spv = {"v": pos}
    for k in range(4):
        spv[f"lo{k}"] = lo[k]
        spv[f"hi{k}"] = hi[k]
    sp = dict(zip(spv, g.lookup("sp", "unique", [pos], [sp_raw], spv, key_sq=psq)))
    cdv = {"v": pos, "lo": lo[0], "hi": hi[0]}
    cd = dict(zip(cdv, g.lookup("cd", "unique", [pos], [cd_raw], cdv, key_sq=psq)))
    ends = g.lookup("ends", "unique", [pos], [ends_raw], {"v": pos}, key_sq=psq)[0]
    avgc = g.average("pcsum", {"c": c})[0]
    f0v = {"ib": rel[4]["op:input_base"], "i0": rel[3]["b"], "i1": rel[2]["b"], "i2": rel[1]["b"], "i3": F["bval"]}
    f0 = dict(zip(f0v, g.lookup("fetch0", "unique", [fkey], [Lin()], f0v, write=instr_end, key_sq=fkey_sq)))
    offb = g.lookup("in_off", "unique", [pos], [pos - RB - 1], {f"b{k}": pb[k] for k in range(3)}, key_sq=psq)

    # FFN 2
    pc_raw = g.mul("pc_raw", n1, avgc)
    SP = sp["v"]
    ge = {k: g.step(f"sp>={k}", SP, k) for k in (1, 2, 3)}
    full = g.step("sp_full", SP, STACK)
    CD = cd["v"]
    cd_ge1 = g.step("cd>=1", CD, 1)
    cd_max = g.step("cd_max", CD, DEPTH)
    # input_base whose copy (input + NUL at base) overflows memory: trap at the input commit
    ends1 = g.eq("ends==1", ends, 1)
    ib_over = g.step("input_overflow", f0["i0"] + 256 * f0["i1"] + 65536 * f0["i2"] + (1 << 24) * f0["i3"]
                     + pos - RB - 1, MEM + 1)

    # ---------------- layer 3: fetch, stack, pc bytes ---------------------
    pcprev = pc_raw - c
    pcb = g.lookup("pc", "unique", [pos], [pc_raw], {f"b{k}": pb[k] for k in range(3)}, key_sq=psq)
    ppb = g.lookup("pc_prev", "unique", [pos], [pcprev], {f"b{k}": pb[k] for k in range(3)}, key_sq=psq)
    NB = vocab.OPCODE_BITS
    fv = {f"ob{b}": rel[4][f"ob{b}"] for b in range(NB)}
    fv.update({"i0": rel[3]["b"], "i1": rel[2]["b"], "i2": rel[1]["b"], "i3": F["bval"]})
    fo = dict(zip(fv, g.lookup("fetch", "unique", [fkey], [5 * pc_raw], fv, write=instr_end, key_sq=fkey_sq)))
    I = [fo[f"i{k}"] for k in range(4)]
    pfv = {f"ob{b}": rel[4][f"ob{b}"] for b in range(NB)}
    pfv["i0"] = rel[3]["b"]
    pf = dict(zip(pfv, g.lookup("fetch_prev", "unique", [fkey], [5 * pcprev], pfv, write=instr_end, key_sq=fkey_sq)))

    def match(bits, op, conds=()):
        """Neuron: 1 iff the 6 opcode bits spell `op` and the 0/1 conds hold."""
        code = OP_NAMES.index(op) + 1
        s = sum(((Lin.of(bits[f"ob{b}"]) if code >> b & 1 else 1 - Lin.of(bits[f"ob{b}"])) for b in range(NB)),
                Lin()) + sum((Lin.of(c) for c in conds), Lin())
        return (1, s - (NB + len(conds) - 1), one)
    stv = {"b0": rel[4]["b"], "b1": rel[3]["b"], "b2": rel[2]["b"], "b3": rel[1]["b"], "s3": rel[1]["s8"]}
    ST = []
    for k in range(4):
        outs = g.lookup(f"stack{k}", "latest", [sp["lo1"], sp["hi1"]], [sp[f"lo{k}"], sp[f"hi{k}"]], stv,
                        write=F["sts"])
        ST.append(dict(zip(stv, outs)))
    P, B, A, C3 = ST  # slot SP (popped by global.set), top, second, third
    m.diag.update(pc_raw=pc_raw, sp=SP, cd=CD, last_end=LT)

    # FFN 3: opcode decoding, arithmetic, comparisons, addresses
    OP = {op: g.ffn(f"op={op}", [match(fo, op)]) for op in OP_NAMES if op != "input_base"}
    def U(v):
        return v["b0"] + 256 * v["b1"] + 65536 * v["b2"] + (1 << 24) * v["b3"]

    def S(v):
        return v["b0"] + 256 * v["b1"] + 65536 * v["b2"] + (1 << 24) * v["s3"]

    def by(v, k):
        return v[f"b{k}"]

    eqv = g.eq("eq", U(A) - U(B), 0)
    ltu = g.step("lt_u", U(B) - U(A), 1)
    gtu = g.step("gt_u", U(A) - U(B), 1)
    lts = g.step("lt_s", S(B) - S(A), 1)
    gts = g.step("gt_s", S(A) - S(B), 1)
    eqz = g.eq("eqz", U(B), 0)
    nz = 1 - Lin.of(eqz)
    cmp = {"i32.eq": Lin.of(eqv), "i32.ne": 1 - Lin.of(eqv), "i32.lt_u": Lin.of(ltu), "i32.gt_u": Lin.of(gtu),
           "i32.le_u": 1 - Lin.of(gtu), "i32.ge_u": 1 - Lin.of(ltu), "i32.lt_s": Lin.of(lts),
           "i32.gt_s": Lin.of(gts), "i32.le_s": 1 - Lin.of(gts), "i32.ge_s": 1 - Lin.of(lts)}
    ca, sb = [], []
    for k in range(4):
        ca.append(g.step(f"add_carry{k}", sum((256 ** j * (by(A, j) + by(B, j)) for j in range(k + 1)), Lin()),
                         256 ** (k + 1)))
        sb.append(g.step(f"sub_borrow{k}", sum((256 ** j * (by(B, j) - by(A, j)) for j in range(k + 1)), Lin()), 1))
    addr = [by(A, k) + by(B, k) + (ca[k - 1] if k else 0) - 256 * ca[k] for k in range(4)]
    subr = [by(A, k) - by(B, k) - (sb[k - 1] if k else 0) + 256 * sb[k] for k in range(4)]
    # halt immediates are 0 or a trap code (checked at load), all below 256
    hc = {cc: g.eq(f"halt_code{cc}", I[0], cc) for cc in [0] + sorted(TRAP_BY_CODE)}
    immv = {f"b{k}": I[k] for k in range(4)}

    def adder(name, x, y, small):
        """Bytes 0..2 of x + y + small (x, y as byte dicts, small >= 0 and < 256)."""
        cs = []
        for k in range(3):
            part = sum((256 ** j * (by(x, j) + by(y, j)) for j in range(k + 1)), Lin()) + small
            cs.append(g.step(f"{name}.carry{k}", part, 256 ** (k + 1)))
        return [by(x, k) + by(y, k) + (small if k == 0 else cs[k - 1]) - 256 * cs[k] for k in range(3)]

    def oob(name, x):
        s = U(x) + U(immv)
        out = {}
        for w in (1, 2, 4):
            # ea = address + offset exactly (no wrap, MACHINE.md section 4): oob iff ea + w > memory
            out[w] = g.step(f"{name}{w}", s, MEM - w + 1)
        return out

    eL = adder("load_addr", B, immv, nn)
    eS = adder("store_addr", A, immv, nn - 1)
    oobL = oob("load_oob", B)
    oobS = oob("store_oob", A)
    eI = adder("input_addr", {"b0": f0["i0"], "b1": f0["i1"], "b2": f0["i2"]},
               {"b0": offb[0], "b1": offb[1], "b2": offb[2]}, 0)
    wl = g.ffn("local_write", [match(pf, op, [F["is_commit"]]) for op in ("local.set", "local.tee")])
    wg = g.ffn("global_write", [match(pf, "global.set", [F["is_commit"]])])
    ws = g.ffn("store_write", [match(fo, op, [F["is_byte"]]) for op in ("i32.store", "i32.store8", "i32.store16")])
    wi = g.all_of("input_write", [has_rb, 1 - Lin.of(lt_any), F["is_byte"] + F["is_char"], f0["ib"]])

    # ---------------- layer 4: frames, locals, globals ---------------------
    frv = {"pos": pos, "q0": ppb[0], "q1": ppb[1], "q2": ppb[2],
           "k0": rel[4]["b"], "k1": rel[3]["b"], "k2": rel[2]["b"], "k3": rel[1]["b"]}
    fr = dict(zip(frv, g.lookup("frame", "latest", [cd["lo"], cd["hi"]], [cd["lo"], cd["hi"]], frv,
                                write=F["is_callc"])))
    lcv = {"b0": rel[4]["b"], "b1": rel[3]["b"], "b2": rel[2]["b"], "b3": rel[1]["b"], "pos": pos}
    lc = dict(zip(lcv, g.lookup("local", "latest", [cd["lo"], cd["hi"], pf["i0"]], [cd["lo"], cd["hi"], I[0]],
                                lcv, write=wl)))
    glv = {f"b{k}": P[f"b{k}"] for k in range(4)}
    gl = dict(zip(glv, g.lookup("global", "latest", [pf["i0"]], [I[0]], glv, write=wg)))

    # FFN 4: frame-validity gate of locals, the return's value and flags
    dF = lc["pos"] - fr["pos"]
    LV = [g.ffn(f"local_val{k}", [(1, dF, lc[f"b{k}"]), (-1, dF - 1, lc[f"b{k}"])]) for k in range(4)]
    q = [fr["q0"], fr["q1"], fr["q2"], Lin()]
    p = [pcb[0], pcb[1], pcb[2], Lin()]
    rbw = [g.step(f"ret_borrow{k}", sum((256 ** j * (Lin.of(p[j]) - q[j]) for j in range(k + 1)), Lin()), 1)
           for k in range(3)]
    rbw.append(rbw[2])
    retv = [Lin.of(q[k]) - p[k] - (rbw[k - 1] if k else 0) + 256 * rbw[k] for k in range(4)]
    kc = [fr[f"k{k}"] for k in range(4)]
    retf = [g.step(f"ret_flag{k}", sum((256 ** j * (kc[j] - I[j]) for j in range(k + 1)), Lin()), 1)
            for k in range(4)]

    # ---------------- layer 5: memory -------------------------------------
    ms = g.lookup("mem_store", "latest", eS, eL, {"v": F["bval"], "hit": one - F["lb"]}, write=ws)
    mi = g.lookup("mem_input", "latest", eI, eL, {"v": F["bval"]}, write=wi)
    m_st, m_hit, m_in = ms[0], ms[1], mi[0]

    # ---------------- output FFN -------------------------------------------
    kind_neurons: dict[str, list] = {k: [] for k in KINDS}
    val_neurons: list = []
    flag_neurons: list = []
    sgn = F["flag"]  # the previous token's flag (sign of a signed load)

    entries: list = []   # (op, n, extra conditions, kind, value, flag, value-only conditions)

    def case(conds, kind, val=None, flag=None, vconds=()):
        """At opcode conds[0] and n == conds[1], when conds[2:] hold: emit a token
        of `kind` (None: another entry says it) with byte value `val` and flag
        `flag`, these two gated also by `vconds`. Merged into neurons below."""
        entries.append((Lin.of(conds[0]), conds[1], [Lin.of(x) for x in conds[2:]], kind, val, flag,
                        [Lin.of(x) for x in vconds]))

    SU = "trap(stack_underflow)"
    under = {k: 1 - Lin.of(ge[k]) for k in (1, 2, 3)}

    def guard(o, npop):
        """n == 0 trap on a short stack; returns the extra conditions of the normal path at n == 0."""
        if npop:
            case([o, nk[0], under[npop]], SU)
            return [ge[npop]]
        return []

    def value4(op, npop, byte_of, commit, first=None):
        o = OP[op]
        extra0 = guard(o, npop) + (first or [])
        for k in range(4):
            for j, (conds, v, fl) in enumerate(byte_of(k)):
                case([o, nk[k]] + (extra0 if k == 0 else []), "byte" if j == 0 else None, v, fl, conds)
        case([o, nk[4]], commit)

    for op in OP_NAMES:
        if op == "input_base":
            continue  # only at pc 0, executed before the first generated token
        o = OP[op]
        spec = OPS.get(op)
        if op == "halt":
            case([o, nk[0], hc[0]], "halt")
            for cc in sorted(TRAP_BY_CODE):
                case([o, nk[0], hc[cc]], f"trap({TRAP_BY_CODE[cc]})")
        elif op in ("br", "br_if", "call", "return"):
            if op == "br":
                case([o, nk[0]], "branch_taken")
            elif op == "br_if":
                case([o, nk[0], under[1]], SU)
                case([o, nk[0], ge[1], nz], "branch_taken")
                case([o, nk[0], ge[1], eqz], _commit(op, "commit_not_taken"))
            elif op == "call":
                case([o, nk[0], cd_max], "trap(call_depth)")
                case([o, nk[0], 1 - Lin.of(cd_max)], "branch_taken")
            else:
                case([o, nk[0], 1 - Lin.of(cd_ge1)], "trap(return_outside)")
                case([o, nk[0], cd_ge1], "branch_taken")
            for k in range(4):
                if op == "return":
                    case([o, nk[k + 1]], "byte", retv[k], retf[k])
                else:
                    case([o, nk[k + 1]], "byte", I[k], None)
            end = {"call": "call_commit", "return": "return_commit"}.get(op) or _commit(op)
            case([o, nk[5]], end)
        elif op in ("drop", "global.set"):
            case([o, nk[0], under[1]], SU)
            case([o, nk[0], ge[1]], _commit(op))
        elif op == "output":
            case([o, nk[0], under[1]], SU)
            case([o, nk[0], ge[1]], "out", by(B, 0))
        elif op in ("i32.const", "local.get", "global.get"):
            src = {"i32.const": I, "local.get": LV, "global.get": [gl[f"b{k}"] for k in range(4)]}[op]
            case([o, nk[0], full], "trap(stack_overflow)")
            value4(op, 0, lambda k, src=src: [([], src[k], None)], _commit(op), first=[1 - Lin.of(full)])
        elif op in ("local.set", "local.tee"):
            value4(op, 1, lambda k: [([], by(B, k), None)], _commit(op))
        elif op == "select":
            value4(op, 3, lambda k: [([nz], by(C3, k), None), ([eqz], by(A, k), None)], _commit(op))
        elif op == "i32.add":
            value4(op, 2, lambda k: [([], addr[k], ca[k])], _commit(op))
        elif op == "i32.sub":
            value4(op, 2, lambda k: [([], subr[k], sb[k])], _commit(op))
        elif op == "i32.eqz":
            value4(op, 1, lambda k: [([], eqz if k == 0 else None, None)], _commit(op))
        elif op in cmp:
            value4(op, 2, lambda k, r=cmp[op]: [([], r if k == 0 else None, None)], _commit(op))
        elif spec.get("width") and op.startswith("i32.load"):
            w = spec["width"]
            signed = op.endswith("_s")
            case([o, nk[0], ge[1], oobL[w]], "trap(oob)")

            def lb(k, w=w, signed=signed):
                if k >= w:
                    return [([], 255 * Lin.of(sgn) if signed else None, sgn if signed else None)]
                fl = ("ge128", None) if signed and k == w - 1 else None
                out = []
                for hit, mv in ((m_hit, m_st), (1 - Lin.of(m_hit), m_in)):
                    out.append(([hit], mv, ("ge128", mv) if fl else None))
                return out
            value4(op, 1, lb, _commit(op), first=[1 - Lin.of(oobL[w])])
        elif spec.get("width"):  # stores
            w = spec["width"]
            o = OP[op]
            extra0 = guard(o, 2)
            case([o, nk[0], ge[2], oobS[w]], "trap(oob)")
            for k in range(w):
                case([o, nk[k]] + (extra0 + [1 - Lin.of(oobS[w])] if k == 0 else []), "byte", by(B, k), None)
            case([o, nk[w]], _commit(op))
        else:
            raise AssertionError(f"no output rule for {op}")

    # the input_base trap outweighs (2 vs 1) whatever the first step would emit
    kind_neurons["trap(oob)"].append((2, Lin.of(ends1) + F["is_term"] + ib_over + f0["ib"] - 3, one))
    m.diag["input_trap"] = g.all_of("input_trap", [ends1, F["is_term"], ib_over, f0["ib"]])
    # Merge entries into neurons: the opcode and n indicators are one-hot, so a
    # sum over a group of them is itself a 0/1 condition.
    def keys(lins):
        return tuple(Lin.of(x).key() for x in lins)

    def ssum(xs):
        return sum((Lin.of(x) for x in xs), Lin())

    def grouped(items):
        """items: (key, op) -> {key: [ops]}, checking no op repeats in a group."""
        out: dict = {}
        for key, op in items:
            lst = out.setdefault(key, [])
            assert op.key() not in [o.key() for o in lst], key
            lst.append(op)
        return out

    by_n = grouped(((kind, n.id, keys(ex)), op) for op, n, ex, kind, _, _, _ in entries if kind)
    info = {(kind, n.id, keys(ex)): (n, ex) for op, n, ex, kind, _, _, _ in entries if kind}
    by_ops: dict = {}
    for key, ops in by_n.items():
        kind, _, exk = key
        n, ex = info[key]
        by_ops.setdefault((kind, exk, keys(ops)), (ex, ops, []))[2].append(n)
    for (kind, _, _), (ex, ops, ns) in by_ops.items():
        conds = [ssum(ops), ssum(ns)] + ex
        kind_neurons[kind].append((1, ssum(conds) - (len(conds) - 1), one))
    for slot in ("val", "flag"):
        items, info = [], {}
        for op, n, ex, kind, val, flag, vc in entries:
            x = val if slot == "val" else flag
            if x is None:
                continue
            xk = ("ge128", Lin.of(x[1]).key()) if isinstance(x, tuple) else Lin.of(x).key()
            key = (xk, n.id, keys(ex + vc))
            items.append((key, op))
            info[key] = (x, n, ex + vc)
        for key, ops in grouped(items).items():
            x, n, conds = info[key]
            conds = [ssum(ops), n] + conds
            if slot == "val":
                val_neurons.extend(g.gate_neurons(x, conds, 255))
            elif isinstance(x, tuple):
                flag_neurons.extend(g.step_gate_neurons(x[1], 128, conds))
            else:
                flag_neurons.extend(g.gate_neurons(x, conds, 1))
    for kind in KINDS:
        if kind_neurons[kind]:
            m.kind[kind] = g.ffn(f"out.{kind}", kind_neurons[kind])
    m.val = g.ffn("out.val", val_neurons)
    m.flag = g.ffn("out.flag", flag_neurons)


# ---------------- readout (the unembedding) --------------------------------
KIND_W = 1 << 20
FLAG_W = 1 << 10


def readout(m: Machine):
    """For every vocabulary token: (list of (node, coef), const) whose value is
    its logit. The argmax is the token the machine emits."""
    rows = []
    for t in vocab.TOKENS:
        terms: list = []
        const = 0
        f = vocab.features(t)
        if f.get("is_byte"):
            b, fl = f["bval"], f["flag"]
            s = 2 * fl - 1
            terms = [(m.kind["byte"], KIND_W), (m.val, 2 * b), (m.flag, 2 * FLAG_W * s)]
            const = -b * b - FLAG_W * s
        elif t.startswith("out("):
            b = vocab.INDEX[t] - vocab.INDEX["out(00)"]
            terms = [(m.kind["out"], KIND_W), (m.val, 2 * b)]
            const = -b * b
        elif t in m.kind:
            terms = [(m.kind[t], KIND_W)]
        else:
            const = -KIND_W
        rows.append((terms, const))
    return rows
