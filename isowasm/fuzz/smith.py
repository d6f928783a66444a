"""The second program generator: wasm-smith, the field's own (the generator
wasmtime's and wasmi's fuzzers use), configured to the machine's ABI.

The Rust half is the `isowasm_fuzz_native` extension (ports/fuzz-native/):
wasm-smith with every proposal the toolchain cannot take turned off, the one
import (`env.output_byte`), the `compute` export in one of the ABI's three
shapes, memory within the machine's 160 pages and wasm-smith's own
termination fuel; each candidate is checked with wasmparser against what
isowasm's toolchain accepts (spec/MACHINE.md §8), and candidates are drawn
until one passes (bounded tries). Program k of a campaign is a pure function
of (seed, k, options): wasm-smith's input bytes come from a generator seeded
with (seed, k, try), so shards, resumption and replay work as with the
Hypothesis generator.

wasm-smith has no switch for i64, so most candidates are rejected for it
(the filter's acceptance rate is reported per campaign); `allow=("i64",)`
relaxes the filter for when the toolchain lowers i64.

Both generators sit behind one small interface (`generator(name, seed)`):
`module(k)`, `render(m)` (the WAT text a regression case holds),
`constructs(m)` (the generator's own coverage vocabulary), `stats(m)`
(counters for the campaign state) and `shrink(...)`. The wasm-level
constructs of *any* compiled program (`wasm_constructs`) are the vocabulary
the two generators are compared in; the campaign records them with a
`wasm:` prefix beside the generator's own.

A wasm-smith finding is shrunk at the wasm level with a predicate that calls
back into the campaign — a candidate is kept when it is still inside the
toolchain's subset and shows the same divergence signature — first by our
own instruction-level delta debugging (`reduce`, ports/fuzz-native/src/
reduce.rs: delete a run of instructions, or put `i32.const 0` in its place,
constants towards 0), then by wasm-shrink (the field's reducer: whole
functions, globals, segments, expression rewrites), then by ours again. The shrunk module is written as WAT (wasmprinter), so the
regression case is the ordinary compliance-format YAML (`lang: wat`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from isowasm.spec.errors import IsowasmError

GENERATORS = ("hypothesis", "wasm-smith", "machine")
WASM_GENERATORS = ("hypothesis", "wasm-smith")   # the two compared in wasm-level constructs
MISSING = "wasm-smith generator needs isowasm_fuzz_native: pip install ./ports/fuzz-native"
WASMI_MISSING = "wasmi backend needs isowasm_fuzz_native: pip install ./ports/fuzz-native"
PREFIX = "wasm:"        # wasm-level constructs in a campaign's `ops`
STAT = "gen:"           # generator counters in a campaign's `ops`

# The wasm-level vocabulary both generators are measured in: every construct
# of the toolchain's subset that `constructs` can name (ports/fuzz-native/src/filter.rs).
I32_OPS = """i32.const i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u
i32.ge_s i32.ge_u i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s
i32.rem_u i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr i32.extend8_s
i32.extend16_s""".split()
MEM_OPS = """i32.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u i32.store i32.store8
i32.store16""".split()
CONTROL = """unreachable nop block loop if else br br_if br_table return call drop select local.get
local.set local.tee global.get global.set memory.size memory.grow""".split()
ASPECTS = ["call output_byte", "block result", "loop result", "if result", "memory", "memory max",
           "memory 0 pages", "memory full", "data", "globals", "global mutable", "start", "funcs 2+",
           "func params", "func result", "compute param", "compute result", "locals"]
WASM_CONSTRUCTS = frozenset(I32_OPS + MEM_OPS + [o + " offset" for o in MEM_OPS] + CONTROL + ASPECTS)


def native(missing: str = MISSING):
    """The extension module, or IsowasmError with the one-line fix."""
    try:
        import isowasm_fuzz_native
    except ImportError:
        raise IsowasmError(missing) from None
    return isowasm_fuzz_native


def have_native() -> bool:
    try:
        native()
        return True
    except IsowasmError:
        return False


def wasm_constructs(wasm: bytes) -> set[str]:
    """The wasm-level constructs of a module (empty without the extension
    or for a module it cannot read)."""
    try:
        return set(native().constructs(bytes(wasm)))
    except (IsowasmError, ValueError):
        return set()


# ---------------------------------------------------------------------------
# wasm-smith modules

@dataclass(frozen=True)
class SmithModule:
    """A wasm-smith program: the module's bytes; `index`/`tries`/`rejected`
    say how it was drawn (None for a shrinking candidate)."""
    wasm: bytes
    index: int | None = None
    tries: int = 0
    rejected: tuple = ()        # ((category, count), ...)
    gave_up: bool = False
    _wat: list = field(default_factory=list, compare=False, repr=False)

    @property
    def wat(self) -> str:
        if not self._wat:
            self._wat.append(native().to_wat(self.wasm))
        return self._wat[0]


# The module program k falls back to when no candidate passes within the
# tries: it computes nothing (counted as gen:gave-up; never a finding).
_EMPTY_COMPUTE = bytes.fromhex("0061736d0100000001040160000003020100070b0107636f6d7075"
                               "746500000a040102000b")   # (module (func (export "compute")))

DEFAULTS = {"max_tries": 5000, "allow": (), "min_bytes": 64, "max_bytes": 384, "max_funcs": 4,
            "max_instructions": 20, "max_globals": 6, "max_data_segments": 3, "fuel": 200,
            "shrink_attempts": 2000}


class SmithGenerator:
    name = "wasm-smith"

    def __init__(self, seed: int, options: dict | None = None):
        self.n = native()
        self.seed = seed
        self.opts = {**DEFAULTS, **(options or {})}
        self.allow = list(self.opts["allow"] or ())

    def module(self, k: int) -> SmithModule:
        o = self.opts
        g = self.n.generate(self.seed & (2**64 - 1), k, max_tries=o["max_tries"], allow=self.allow,
                            min_bytes=o["min_bytes"], max_bytes=o["max_bytes"],
                            max_funcs=o["max_funcs"], max_instructions=o["max_instructions"],
                            max_globals=o["max_globals"], max_data_segments=o["max_data_segments"],
                            fuel=o["fuel"])
        rej = tuple(sorted(g["rejected"].items()))
        if g["wasm"] is None:
            return SmithModule(_EMPTY_COMPUTE, k, g["tries"], rej, gave_up=True)
        return SmithModule(bytes(g["wasm"]), k, g["tries"], rej)

    def render(self, m) -> str:
        return m.wat

    def constructs(self, m) -> set[str]:
        return set(self.n.constructs(m.wasm))

    def stats(self, m) -> Counter:
        c = Counter()
        if m.index is None:
            return c
        c[STAT + "tries"] += m.tries
        c[STAT + "accepted"] += 0 if m.gave_up else 1
        c[STAT + "gave-up"] += 1 if m.gave_up else 0
        for cat, n in m.rejected:
            c[STAT + "reject:" + cat] += n
        return c

    def shrink(self, worker, m, signature: str, seconds: float, name: str):
        """wasm-shrink with worker.evaluate as the predicate: (smallest
        module with `signature`, its comparison, candidates tried)."""
        got, cmp = worker.evaluate(m, signature, name)
        if got != signature:     # not reproducible in isolation: keep the original
            return m, cmp, 0
        deadline = time.monotonic() + seconds
        best = [m, cmp]

        class Stop(Exception):
            pass

        def interesting(wasm: bytes) -> bool:
            if time.monotonic() > deadline or worker.stop:
                raise Stop("shrink time limit")
            if self.n.check(wasm, self.allow) is not None:
                return False      # outside the toolchain's subset: not this finding
            cand = SmithModule(bytes(wasm))
            got, c = worker.evaluate(cand, signature, name)
            if got != signature:
                return False
            if len(wasm) <= len(best[0].wasm):
                best[:] = [cand, c]
            return True

        # our instruction-level reducer, wasm-shrink (items, expressions),
        # then ours again on what wasm-shrink left
        seed = (self.seed * 1_000_003 + (m.index or 0)) & (2**64 - 1)
        tried = 0
        for step in ("reduce", "wasm-shrink", "reduce"):
            cur = best[0].wasm
            if step == "reduce":
                _small, n, stopped = self.n.reduce(cur, interesting, self.allow)
            else:
                _small, n, stopped = self.n.shrink(cur, interesting, self.opts["shrink_attempts"], seed)
            tried += n
            if stopped is not None and "time limit" in stopped:
                break
        return best[0], best[1], tried


# ---------------------------------------------------------------------------
# the Hypothesis generator behind the same interface

class HypothesisGenerator:
    name = "hypothesis"

    def __init__(self, seed: int, options: dict | None = None):
        self.seed = seed

    def module(self, k: int):
        from isowasm.fuzz.generators import direct_module
        return direct_module(self.seed, k)

    def render(self, m) -> str:
        from isowasm.fuzz.generators import render
        return render(m)

    def constructs(self, m) -> set[str]:
        from isowasm.fuzz.generators import constructs
        return constructs(m)

    def stats(self, m) -> Counter:
        return Counter()

    def shrink(self, worker, m, signature: str, seconds: float, name: str):
        from isowasm.fuzz.shrinking import shrink_module
        return shrink_module(m, lambda cand: worker.evaluate(cand, signature, name), signature,
                             seconds, lambda: worker.stop)


_HYP = HypothesisGenerator(0)


def generator(name: str | None, seed: int, options: dict | None = None):
    if name in (None, "hypothesis"):
        return HypothesisGenerator(seed, options)
    if name == "wasm-smith":
        return SmithGenerator(seed, options)
    if name == "machine":
        from isowasm.fuzz.machine_programs import MachineGenerator
        return MachineGenerator(seed, options)
    raise IsowasmError(f"unknown generator {name!r} (known: {', '.join(GENERATORS)})")


def of(gen, m):
    """The generator that renders/shrinks module `m`: a campaign of either
    generator opens with the op probes, which are Hypothesis ASTs."""
    if isinstance(m, SmithModule):
        return gen if isinstance(gen, SmithGenerator) else SmithGenerator(getattr(gen, "seed", 0))
    if getattr(m, "program", None) is not None:   # machine_programs.MachineProgram
        return gen
    return gen if isinstance(gen, HypothesisGenerator) else _HYP


# ---------------------------------------------------------------------------
# coverage: per generator, and the difference

def split_ops(ops: dict) -> tuple[dict, dict, dict]:
    """A campaign's `ops` counter -> (generator constructs, wasm-level
    constructs, generator statistics)."""
    own, wasm, stats = {}, {}, {}
    for k, v in ops.items():
        if k.startswith(PREFIX):
            wasm[k[len(PREFIX):]] = v
        elif k.startswith(STAT):
            stats[k[len(STAT):]] = v
        else:
            own[k] = v
    return own, wasm, stats


def filter_stats(stats: dict) -> dict | None:
    """The wasm-smith filter's acceptance, from a campaign's gen: counters."""
    tries = stats.get("tries", 0)
    if not tries:
        return None
    accepted = stats.get("accepted", 0)
    rejected = {k[len("reject:"):]: v for k, v in stats.items() if k.startswith("reject:")}
    return {"tries": tries, "accepted": accepted, "gave_up": stats.get("gave-up", 0),
            "acceptance_percent": round(100.0 * accepted / tries, 3),
            "tries_per_program": round(tries / max(accepted + stats.get("gave-up", 0), 1), 1),
            "rejected": dict(sorted(rejected.items(), key=lambda kv: -kv[1]))}


def coverage_doc(per_gen: dict[str, dict], programs: dict[str, int]) -> dict:
    """{generator: {construct: programs}} -> coverage per generator over the
    shared wasm-level vocabulary and what each covers that the other does not."""
    out = {"vocabulary": sorted(WASM_CONSTRUCTS), "generators": {}}
    seen = {}
    for g, cov in per_gen.items():
        s = {k for k, v in cov.items() if v}
        seen[g] = s
        out["generators"][g] = {
            "programs": programs.get(g, 0),
            "covered": sorted(s & WASM_CONSTRUCTS),
            "coverage_percent": round(100.0 * len(s & WASM_CONSTRUCTS) / len(WASM_CONSTRUCTS), 1),
            "never": sorted(WASM_CONSTRUCTS - s),
            "beyond_subset": sorted(s - WASM_CONSTRUCTS),
            "counts": {k: cov[k] for k in sorted(cov)},
        }
    names = list(seen)
    out["only"] = {}
    out["rarer"] = {}     # in both, but in at most a tenth as large a share of the programs
    for g in names:
        others = set().union(*(seen[h] for h in names if h != g)) if len(names) > 1 else set()
        out["only"][g] = sorted(seen[g] - others)
        share = lambda h, k: per_gen[h].get(k, 0) / max(programs.get(h, 0), 1)   # noqa: E731
        out["rarer"][g] = sorted(k for k in seen[g] & others
                                 if any(10 * share(g, k) <= share(h, k) for h in names if h != g))
    return out


def compare_generators(seed: int, programs: int, options: dict | None = None) -> dict:
    """`isowasm fuzz generators`: `programs` programs of each generator (the
    campaign's programs 0.. of that seed, probes left out), their wasm-level
    constructs counted, and the difference."""
    from isowasm.fuzz.oracles import compile_wat

    per, n, t = {}, {}, {}
    for name in WASM_GENERATORS:
        gen = generator(name, seed, options)
        c: Counter = Counter()
        stats: Counter = Counter()
        t0 = time.perf_counter()
        for k in range(programs):
            m = gen.module(k)
            stats.update(gen.stats(m))
            if isinstance(m, SmithModule):
                wasm = m.wasm
            else:
                wasm, _ = compile_wat(gen.render(m), f"cov-{k}")
            c.update(wasm_constructs(wasm))
        t[name] = time.perf_counter() - t0
        per[name], n[name] = dict(c), programs
        if stats:
            t[name + ":filter"] = filter_stats({k[len(STAT):]: v for k, v in stats.items()})
    doc = {"kind": "fuzz-generators", "time": time.time(), "seed": seed, **coverage_doc(per, n)}
    for name in WASM_GENERATORS:
        doc["generators"][name]["programs_per_second"] = round(programs / max(t[name], 1e-9), 1)
        if t.get(name + ":filter"):
            doc["generators"][name]["filter"] = t[name + ":filter"]
    return doc
