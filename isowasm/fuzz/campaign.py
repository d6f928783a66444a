"""`isowasm fuzz`: the nightly differential fuzzing campaign.

(Issue 14: `--generator wasm-smith` draws the programs from wasm-smith
configured to the machine's ABI instead — isowasm/fuzz/smith.py — under the
same (seed, k) discipline; `--oracles` runs wasmi beside wasmtime, and a
disagreement of the two is filed as `oracle-disagreement:...`, not against
the machines. The description below is the Hypothesis generator's.)

Programs come from the Hypothesis WAT generator (isowasm/fuzz/generators.py)
through its direct path (`direct_module(seed, k)`: the same generator
functions and AST, driven by a seeded random.Random), so program k of a
campaign is a pure function of (seed, k): campaigns can be split across
machines (`--shard i/N`: program k belongs to shard k mod N), resumed, and a
finding replayed.

Per program: generate → render WAT → wat2wasm → toolchain → run on every
selected backend → compare. The comparison is tiered for throughput:

1. *screen*: every backend runs once, machine backends in digest mode (the
   Rust port through `run_batch`, a chunk at a time; the OCaml port through
   its persistent batch process; the program file is formatted once and
   shared); statuses, outputs, step and token counts and trace digests must
   all agree, and outputs/statuses must match wasmtime (the ground truth).
   The Python reference is the slowest backend by far when it traces, so
   with `--reference-trace K` (K > 1) it traces one program in K and runs
   untraced on the others (status, output, steps and tokens still compared);
   its trace is always compared when fewer than two other backends trace.
   With `--reference-every K` it runs on one program in K at all (the
   others are judged by the two fast ports' agreement and wasmtime): the
   reference then samples, and confirm still runs it on every suspect.
   Workers keep their backend instances for the whole campaign, so each
   chunk's last program (within ~3 % of the run time) and every program
   that fails the screen run again on *new* instances of the machine
   backends: a backend whose two runs differ carries state from one run to
   the next, filed as `carried-state:<backend>` (with the programs it
   followed); a divergence the new instances do not repeat goes no further.
2. *confirm*: a program that fails the screen is run again through
   `isowasm.runner.compare_case(..., trace="text")` with every backend, the
   reference tracing; its verdict and report are authoritative.

A confirmed divergence gets a *signature* (what diverged — the op at the
first divergent trace token, or the mismatching aspect — the kind and the
backend); a new signature is saved at once (unshrunk), then shrunk on the
AST (delete functions/statements/locals, splice blocks, replace expressions
by a subexpression or 0, shrink constants) keeping the signature, and
written as a finding plus a regression case in the compliance-suite YAML
format (expected output/status from wasmtime). Every file is written
atomically (tmp + os.replace); campaign state (which chunks of program
indices are done) lives in --out, so a killed campaign resumes where it was.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from isowasm.atomic import atomic_write
from isowasm.fuzz.coverage import add as add_coverage, summary as machine_coverage
from isowasm.fuzz.oracles import compile_signature, compile_wat, sig_id, signature_of
from isowasm.fuzz.regressions import write_regression
from isowasm.fuzz.shrinking import shrink_module  # noqa: F401 - the Hypothesis shrinker (smith.py calls it)
from isowasm.spec.reference import run_reference

# Relative paths: a campaign writes into the current directory, never into
# wherever isowasm is installed.
DEFAULT_OUT = Path("results") / "fuzz"
DEFAULT_REGRESSIONS = Path("results") / "regressions"
DEFAULT_MAX_STEPS = 5_000_000      # generated programs run a few thousand steps
CHUNK = 32                         # programs per unit of work (and of resumption)
STATE_VERSION = 1


# ---------------------------------------------------------------------------
# small utilities

def parse_duration(text: str) -> float:
    """'8h', '30m', '90s', '1h30m', '45' (seconds) -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (expected e.g. 8h, 30m, 90s, 1h30m)")
    mult = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(a) * mult[b] for a, b in parts)


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"bad shard {text!r} (expected i/N with 0 <= i < N)")
    return int(m.group(1)), int(m.group(2))


def _json_dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------
# the worker: generate, compile, run, compare, shrink

class Worker:
    def __init__(self, cfg: dict):
        from isowasm.backends import get_backend

        self.cfg = cfg
        self.seed = cfg["seed"]
        self.max_steps = cfg["max_steps"]
        self.names: list[str] = list(cfg["backends"])
        # -- generator and oracles (issue 14): the oracles beyond --backends
        # run beside them; when they disagree among themselves the case is an
        # oracle disagreement (oracles.oracle_disagreement), not a divergence
        from isowasm.fuzz.smith import generator

        self.gen = generator(cfg.get("generator"), self.seed, cfg.get("generator_options"))
        self.oracles: list[str] = list(cfg.get("oracles") or [])
        self.names += [o for o in self.oracles if o not in self.names]
        # --
        self.backends = [get_backend(n) for n in self.names]
        for b, n in zip(self.backends, self.names):
            b.name = n   # plug-ins are known by their registered name
        self.by_name = dict(zip(self.names, self.backends))
        self.traces = {n: bool(b.traces) for n, b in self.by_name.items()}
        self.out = Path(cfg["out"])
        self.regressions = Path(cfg["regressions"])
        self.stop = False
        others = [n for n in self.names if self.traces[n] and n != "reference"]
        # the reference's trace can be sampled only when two others cross-check
        self.ref_every = cfg.get("reference_trace", 1) if len(others) >= 2 else 1
        # --sample NAME=K: a slow machine backend runs on one program in K,
        # where two other tracing backends cross-check the rest
        sample = dict(cfg.get("sample") or {})
        if cfg.get("reference_every", 1) > 1:
            sample.setdefault("reference", cfg["reference_every"])
        self.sample = {n: k for n, k in sample.items() if k > 1 and n in self.by_name and self.traces.get(n)
                       and sum(1 for m in self.names if self.traces[m] and m != n) >= 2}
        self.ref_run_every = self.sample.get("reference", 1)
        # machine coverage (isowasm/fuzz/coverage.py) is counted by the Rust port
        self.coverage_backend = "rust" if "rust" in self.by_name and hasattr(
            self.by_name["rust"], "coverage_layout") else None
        self.machine_cov: Counter = Counter()
        self.timings: Counter = Counter()
        self.fast_reference = cfg.get("fast_reference", True)
        from isowasm.compilers import get_compiler

        self.compiler = get_compiler(cfg.get("compiler"))
        self._sequential_wasmtime()
        # long-lived objects out of the collector's way: a run allocates one
        # tuple per step, and full collections would rescan the imports
        gc.collect()
        gc.freeze()

    def compile(self, wat: str, name: str, m=None):
        """(wasm, Program): the program from --compiler when one is named
        (a foreign compiler's program, the original module for wasmtime).
        A wasm-smith module compiles from its own bytes (its WAT is
        wasmprinter's text of them)."""
        if getattr(m, "program", None) is not None:   # a machine program: no module, no compiler
            return None, m.program
        wasm = getattr(m, "wasm", None)
        if wasm is not None:
            from isowasm.toolchain.frontend import compile_wasm

            prog = compile_wasm(wasm, name, b"")
        else:
            wasm, prog = compile_wat(wat, name)
        if self.compiler is not None:
            prog = self.compiler.compile(wasm, name)
        return wasm, prog

    def _helper_cpu(self) -> float:
        """CPU seconds used since the last call by backends' own processes
        (the OCaml port's batch process), read from /proc where there is one."""
        total = 0.0
        seen = getattr(self, "_helper_seen", {})
        self._helper_seen = seen
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for b in self.backends:
            proc = getattr(b, "_proc", None)
            pid = getattr(proc, "pid", None)
            if not pid:
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, ValueError, IndexError):
                continue
            total += max(0.0, used - seen.get(pid, 0.0))
            seen[pid] = used
        return total

    def _sequential_wasmtime(self) -> None:
        """wasmtime compiles each module on a thread pool by default; with a
        worker process per core that only adds contention (about 25 % more
        CPU per module), so the built-in wasmtime backend gets an engine with
        the same configuration and sequential compilation."""
        try:
            import wasmtime

            from isowasm.backends.wasmtime_backend import WasmtimeBackend
        except ImportError:
            return
        for b in self.backends:
            if type(b) is WasmtimeBackend:
                c = wasmtime.Config()
                c.consume_fuel = True
                c.parallel_compilation = False
                b.engine = wasmtime.Engine(c)
                b._modules.clear()

    def close(self):
        for b in self.backends:
            try:
                b.close()
            except Exception:
                pass

    # -- generation --------------------------------------------------------

    def module(self, k: int):
        """Program k: the op probes first (isowasm/fuzz/probes.py; every op
        on every operand class), then the generator's program k."""
        from isowasm.fuzz.probes import PROBES

        if self.cfg.get("probes", True) and k < len(PROBES):
            return PROBES[k][1]
        return self.gen.module(k)

    def is_probe(self, k: int) -> bool:
        from isowasm.fuzz.probes import PROBES
        return bool(self.cfg.get("probes", True)) and k < len(PROBES)

    def render(self, m) -> str:
        """The WAT text of module `m` (either generator's; the probes are
        Hypothesis ASTs in a campaign of either)."""
        from isowasm.fuzz.smith import of
        return of(self.gen, m).render(m)

    def gen_coverage(self, m, wasm: bytes | None = None) -> Counter:
        """What module `m` covers: the generator's own constructs and its
        counters (`gen:`), and with `wasm` the wasm-level constructs
        (prefixed `wasm:`, the vocabulary both generators are compared in)."""
        from isowasm.fuzz.smith import PREFIX, of, wasm_constructs

        c: Counter = Counter()
        if m is not None:
            g = of(self.gen, m)
            c.update(g.constructs(m))
            c.update(g.stats(m))
        if wasm is not None and self._wasm_cov:
            c.update(PREFIX + x for x in wasm_constructs(wasm))
        return c

    @property
    def _wasm_cov(self) -> bool:
        v = getattr(self, "_wasm_cov_v", None)
        if v is None:
            from isowasm.fuzz.smith import have_native
            v = self._wasm_cov_v = have_native()
        return v

    def signature(self, cmp, wasm: bytes | None) -> dict:
        """signature_of, with the op the probes blame when every machine
        agrees against wasmtime (a wrong program file: the compiler's op)."""
        from isowasm.fuzz.probes import blamed

        return blamed(signature_of(cmp, self.names, self.traces), wasm, self.compiler,
                      self.by_name.get("wasmtime"))

    # -- running -----------------------------------------------------------

    def _run_all(self, cases: list, ks: list[int]) -> list[dict]:
        from isowasm.backends.reference import ReferenceBackend

        """{backend: RunResult | Exception} per case (screen mode)."""
        per = [dict() for _ in cases]
        for name, b in zip(self.names, self.backends):
            t0 = time.perf_counter()
            if name == "reference":
                fast = self.fast_reference and type(b) is ReferenceBackend
                for i, c in enumerate(cases):
                    if ks[i] % self.ref_run_every and c.wasm is not None:
                        continue   # sampled out (--reference-every): the ports cross-check
                    mode = "digest" if ks[i] % self.ref_every == 0 else "none"
                    try:
                        if fast and mode == "digest":
                            per[i][name] = run_reference(c.program, max_steps=self.max_steps, trace="digest")
                        else:
                            per[i][name] = b.run(c, max_steps=self.max_steps, trace=mode)
                    except Exception as e:   # noqa: BLE001 - a crash is a finding
                        per[i][name] = e
            elif hasattr(b, "run_batch") and len(cases) > 1:
                try:
                    cov = name == self.coverage_backend
                    batch = (b.run_batch(cases, self.max_steps, "digest", coverage=True) if cov
                             else b.run_batch(cases, self.max_steps, "digest"))
                    for i, r in enumerate(batch):
                        per[i][name] = r
                        if cov:
                            add_coverage(self.machine_cov, r.extra.get("coverage", {}))
                except Exception:
                    for i, c in enumerate(cases):
                        per[i][name] = self._run1(b, c)
            else:
                every = self.sample.get(name, 1)
                for i, c in enumerate(cases):
                    if ks[i] % every == 0:   # sampled out otherwise (--sample)
                        per[i][name] = self._run1(b, c)
            self.timings["run:" + name] += time.perf_counter() - t0
        return [{n: r for n, r in p.items() if r is not None} for p in per]

    def _run1(self, b, c):
        if b.needs_wasm and c.wasm is None:
            return None   # a machine program: no module for the oracles (see screen)
        try:
            return b.run(c, max_steps=self.max_steps, trace="digest" if b.traces else "none")
        except Exception as e:   # noqa: BLE001
            return e

    def screen(self, res: dict) -> bool:
        """True when every result agrees (see the module docstring)."""
        from isowasm.runner import _inconclusive_status, expected_status

        if any(isinstance(r, Exception) for r in res.values()):
            return False
        if len(self.oracles) > 1:   # issue 14: the oracles must agree among themselves
            from isowasm.fuzz.oracles import oracle_disagreement
            if oracle_disagreement(res, self.oracles, self.names, self.traces) is not None:
                return False
        truth = res.get("wasmtime")
        machines = [n for n in self.names if self.traces[n] and n in res]
        for n in machines:
            r = res[n]
            if truth is not None:
                if _inconclusive_status(r) or _inconclusive_status(truth):
                    if r.output[:len(truth.output)] != truth.output[:len(r.output)]:
                        return False
                    continue
                if expected_status(r) != expected_status(truth) or r.output != truth.output:
                    return False
        if machines:
            base = res[machines[0]]
            for n in machines[1:]:
                r = res[n]
                for what in ("status", "trap", "steps", "tokens", "output"):
                    va, vb = getattr(base, what), getattr(r, what)
                    if va is not None and vb is not None and va != vb:
                        return False
            digests = {res[n].digest for n in machines if res[n].digest is not None}
            if len(digests) > 1:
                return False
            if any(res[n].digest is None and n != "reference" for n in machines):
                return False   # a backend without digests: compare its text trace instead
        return True

    def confirm(self, case, explain: bool = False):
        from isowasm.fuzz.oracles import mark_oracle_disagreement
        from isowasm.runner import compare_case
        runnable = [b for b in self.backends if not (b.needs_wasm and case.wasm is None)]
        cmp = compare_case(case, runnable, max_steps=self.max_steps, trace="text", explain=explain)
        if len(self.oracles) > 1:   # issue 14: oracles that disagree are the finding, not the machines
            mark_oracle_disagreement(cmp, self.oracles, self.names, self.traces)
        return cmp

    # -- one chunk -----------------------------------------------------------

    def run_chunk(self, ks: list[int]) -> dict:
        from isowasm.backends.base import Case

        T = self.timings
        cpu0 = time.process_time()
        ops: Counter = Counter()
        items = []
        found: list[dict] = []
        rejected = 0
        for k in ks:
            t0 = time.perf_counter()
            m = self.module(k)
            wat = self.render(m)
            t1 = time.perf_counter()
            ops.update(self.gen_coverage(m))
            t2 = time.perf_counter()
            try:
                wasm, prog = self.compile(wat, f"fuzz-{k}", m)
            except Exception as e:   # noqa: BLE001 - the toolchain rejecting a generated program
                rejected += 1
                T["generate"] += t1 - t0
                T["coverage"] += t2 - t1
                T["compile"] += time.perf_counter() - t2
                found.append(self._compile_finding(k, m, wat, e))
                continue
            t3 = time.perf_counter()
            if not self.is_probe(k):   # the generator's coverage, not the probes'
                ops.update(self.gen_coverage(None, wasm))
            T["generate"] += t1 - t0
            T["coverage"] += t2 - t1 + time.perf_counter() - t3
            T["compile"] += t3 - t2
            items.append((k, m, wat, Case(f"fuzz-{k}", prog, wasm=wasm)))
        per = self._run_all([it[3] for it in items], [it[0] for it in items])
        divergent = 0
        confirmed_ok = 0
        complete = True
        if items and T["fresh"] <= self.FRESH_SHARE * sum(v for n, v in T.items() if n.startswith("run:")):
            # the chunk's last program, which ran after all the others
            k, _, wat, case = items[-1]
            recs, _ = self._fresh_check(k, ks[0], wat, case, per[-1])
            found += recs
            divergent += len(recs)
        for (k, m, wat, case), res in zip(items, per):
            t0 = time.perf_counter()
            ok = self.screen(res)
            T["screen"] += time.perf_counter() - t0
            if ok:
                continue
            # a divergence that a fresh instance does not repeat is state
            # carried from the chunk's earlier programs, not the program's
            recs, fresh = self._fresh_check(k, ks[0], wat, case, res)
            if recs:
                found += recs
                divergent += 1
                if self.screen(fresh):
                    continue
            t0 = time.perf_counter()
            try:
                cmp = self.confirm(case)
            except Exception as e:   # noqa: BLE001 - the harness itself failed: keep the program
                T["confirm"] += time.perf_counter() - t0
                divergent += 1
                found.append(self._harness_finding(k, wat, e))
                continue
            T["confirm"] += time.perf_counter() - t0
            if cmp.ok:
                confirmed_ok += 1
                continue
            divergent += 1
            found.append(self._finding(k, m, wat, cmp, case.wasm))
            if self.stop:
                complete = False
                break
        T["cpu"] += time.process_time() - cpu0
        T["cpu"] += self._helper_cpu()
        mc, self.machine_cov = dict(self.machine_cov), Counter()
        return {"programs": len(ks), "ops": dict(ops), "divergent": divergent + rejected,
                "screen_only": confirmed_ok, "found": found, "complete": complete, "machine_cov": mc}

    # -- state carried between runs ------------------------------------------

    FRESH_SHARE = 0.03   # the periodic fresh-instance runs' share of the run time

    def _fresh_check(self, k: int, first: int, wat: str, case, res: dict) -> tuple[list[dict], dict]:
        """Program k again on a new instance of every machine backend that
        ran it (the worker's instances ran programs first..k-1 before it):
        (a carried-state finding per backend whose runs differ, `res` with
        the fresh runs in place of those)."""
        from isowasm.backends import get_backend
        from isowasm.backends.reference import ReferenceBackend
        from isowasm.fuzz.oracles import carried_state_finding, instance_difference
        from isowasm.spec.result import RunResult

        t0 = time.perf_counter()
        recs, fixed = [], dict(res)
        for name, b in self.by_name.items():
            # the built-in reference executor makes a new machine for every run
            if not self.traces[name] or type(b) is ReferenceBackend or not isinstance(res.get(name), RunResult):
                continue
            fresh = get_backend(name)
            fresh.name = name
            try:
                r = self._run1(fresh, case)
            finally:
                try:
                    fresh.close()
                except Exception:   # noqa: BLE001
                    pass
            if not isinstance(r, RunResult):
                continue
            diff = instance_difference(res[name], r)
            if diff is not None:
                fixed[name] = r
                s = carried_state_finding(name, k, first, diff)
                f = {**s, "seed": self.seed, "index": k, "first_index": first, "wat": wat,
                     "report": s["detail"], "shrunk": True, "lines_before": wat.count("\n")}
                recs.append(self._record(f, None, None))
        self.timings["fresh"] += time.perf_counter() - t0
        return recs, fixed

    # -- findings ------------------------------------------------------------

    def _compile_finding(self, k, m, wat, e) -> dict:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        sig = compile_signature(e)
        f = {"signature": sig, "kind": "compile", "op": "compile", "backend": "toolchain",
             "seed": self.seed, "index": k, "wat": wat, "report": f"{type(e).__name__}: {first}",
             "shrunk": False, "lines_before": wat.count("\n")}
        return self._record(f, None, m)

    def _harness_finding(self, k, wat, e) -> dict:
        f = {"signature": f"harness:{type(e).__name__}", "kind": "harness", "op": "?",
             "backend": "harness", "seed": self.seed, "index": k, "wat": wat,
             "report": traceback.format_exc(), "shrunk": True, "lines_before": wat.count("\n")}
        return self._record(f, None, None)

    def _finding(self, k, m, wat, cmp, wasm) -> dict:
        s = self.signature(cmp, wasm)
        f = {**s, "seed": self.seed, "index": k, "wat": wat, "report": cmp.report(),
             "shrunk": False, "lines_before": wat.count("\n")}
        return self._record(f, cmp, m)

    def _record(self, f: dict, cmp, m) -> dict:
        """Save a finding: at once unshrunk (a kill loses nothing), then shrunk.
        A signature already on disk is only counted."""
        path = self.out / "findings" / f"{sig_id(f['signature'])}.json"
        if path.exists():
            return {"signature": f["signature"], "new": False}
        f["first_seen"] = time.time()
        atomic_write(path, _json_dump(f))
        if f["kind"] == "compile":
            self._compile_regression(f)
            atomic_write(path, _json_dump(f))
        elif cmp is not None and f["kind"] != "oracle-disagreement":   # an engine's bug: no machine case
            try:
                f["regression"] = str(write_regression(self.regressions, f, cmp, self.max_steps))
            except Exception as e:   # noqa: BLE001
                f["regression_error"] = f"{type(e).__name__}: {e}"
            atomic_write(path, _json_dump(f))
        if m is not None:
            f = self.shrink_finding(f, m)
        return {"signature": f["signature"], "new": True, "finding": f}

    def evaluate(self, m, want: str | None = None, name: str = "fuzz-shrink",
                 explain: bool = False) -> tuple[str | None, object]:
        """(signature or None, Comparison/exception) of module `m`."""
        from isowasm.backends.base import Case

        wat = self.render(m)
        try:
            wasm, prog = self.compile(wat, "shrink", m)
        except Exception as e:   # noqa: BLE001
            if want is not None and want.startswith("compile:"):
                return compile_signature(e), e
            return None, e
        case = Case(name, prog, wasm=wasm)
        per = self._run_all_traced(case)
        if self.screen(per):
            return None, None
        cmp = self.confirm(case, explain)
        if cmp.ok:
            return None, cmp
        return self.signature(cmp, wasm)["signature"], cmp

    def _run_all_traced(self, case) -> dict:
        from isowasm.backends.reference import ReferenceBackend

        res = {}
        for n, b in zip(self.names, self.backends):
            if self.fast_reference and type(b) is ReferenceBackend:
                try:
                    res[n] = run_reference(case.program, max_steps=self.max_steps, trace="digest")
                except Exception as e:   # noqa: BLE001
                    res[n] = e
            else:
                res[n] = self._run1(b, case)
        return {n: r for n, r in res.items() if r is not None}

    def shrink_finding(self, f: dict, m) -> dict:
        path = self.out / "findings" / f"{sig_id(f['signature'])}.json"
        t0 = time.perf_counter()
        best, cmp, tried = self.shrink(m, f["signature"], self.cfg.get("shrink_seconds", 60),
                                       name=f"fuzz-{f['index']}")
        self.timings["shrink"] += time.perf_counter() - t0
        f["wat"] = self.render(best)
        f["shrunk"] = True
        f["shrink_candidates"] = tried
        if cmp is not None and not isinstance(cmp, Exception) and not cmp.ok:
            # the kept counterexample once more, with the diverging backend's
            # own account of the divergence (left out while shrinking)
            got, full = self.evaluate(best, f["signature"], f"fuzz-{f['index']}", explain=True)
            if got == f["signature"]:
                cmp = full
        if cmp is not None and not isinstance(cmp, Exception):
            f["report"] = cmp.report()
            if f["kind"] == "oracle-disagreement":   # an engine's bug: no machine case (issue 14)
                atomic_write(path, _json_dump(f))
                return f
            try:
                f["regression"] = str(write_regression(self.regressions, f, cmp, self.max_steps))
            except Exception as e:   # noqa: BLE001
                f["regression_error"] = f"{type(e).__name__}: {e}"
        elif isinstance(cmp, Exception):
            f["report"] = f"{type(cmp).__name__}: {(str(cmp).splitlines() or [''])[0]}"
            if f["kind"] == "compile":
                self._compile_regression(f)
        atomic_write(path, _json_dump(f))
        return f

    def _compile_regression(self, f: dict) -> None:
        """A program the toolchain rejects becomes a regression case too when
        wat2wasm accepts it: its expectation is wasmtime's run of the module
        (the case fails until the toolchain compiles it)."""
        from isowasm.backends.base import Case
        from isowasm.runner import Comparison
        from isowasm.toolchain.frontend import wat_to_wasm
        from isowasm.spec.program import Program

        wt = self.by_name.get("wasmtime")
        if wt is None:
            return
        try:
            wasm = wat_to_wasm(f["wat"], "fuzz")
        except Exception:   # noqa: BLE001 - invalid WAT: a generator bug, no case to write
            return
        case = Case(f"fuzz-{f['index']}", Program(["halt"], [0]), wasm=wasm)
        cmp = Comparison(case)
        try:
            cmp.results["wasmtime"] = wt.run(case, max_steps=self.max_steps)
            f["regression"] = str(write_regression(self.regressions, f, cmp, self.max_steps))
        except Exception as e:   # noqa: BLE001
            f["regression_error"] = f"{type(e).__name__}: {e}"

    def shrink(self, m, signature: str, seconds: float, name: str = "fuzz-shrink"):
        """The module's own generator shrinks it, keeping the signature: AST
        edits (Hypothesis, the probes) or wasm-level reduction (wasm-smith:
        smith.SmithGenerator.shrink, our reducer and wasm-shrink)."""
        from isowasm.fuzz.smith import of
        return of(self.gen, m).shrink(self, m, signature, seconds, name)


# ---------------------------------------------------------------------------
# worker processes

def _worker_main(cfg: dict, tasks, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when to stop
    try:
        w = Worker(cfg)
    except Exception as e:   # noqa: BLE001
        results.put(("error", None, f"{type(e).__name__}: {e}"))
        return

    def on_term(*_):
        w.stop = True
    signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            task = tasks.get()
            if task is None:
                break
            chunk, ks = task
            t0 = time.perf_counter()
            try:
                r = w.run_chunk(ks)
            except Exception:   # noqa: BLE001
                results.put(("error", chunk, traceback.format_exc()))
                continue
            r["seconds"] = time.perf_counter() - t0
            r["timings"] = dict(w.timings)
            w.timings.clear()
            results.put(("done", chunk, r))
    finally:
        w.close()


# ---------------------------------------------------------------------------
# the campaign (the parent process)

class Campaign:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.state_path = self.out / "state.json"
        self.json_path = Path(args.json)
        self.started = time.time()
        self.t0 = time.monotonic()
        self.stop_reason: str | None = None
        self._lock = self._take_lock()
        self.state = self._load_state()
        self.session_programs = 0
        self.tty = sys.stderr.isatty() if args.progress is None else args.progress
        self.last_line = 0.0
        self.last_save = time.monotonic()

    # -- state -----------------------------------------------------------------

    def _take_lock(self):
        """An exclusive lock on the state directory, held while the campaign
        runs (the OS drops it when the process dies, SIGKILL included): a
        second campaign on the same --out refuses instead of redoing chunks."""
        import fcntl

        from isowasm.spec.errors import IsowasmError

        self.out.mkdir(parents=True, exist_ok=True)
        f = open(self.out / "lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise IsowasmError(f"{self.out}: another campaign (pid {holder}) is running on this state "
                               f"directory; wait for it or use another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        # Half-written files of a campaign that was killed (SIGKILL mid
        # atomic_write): no writer can be alive now that we hold the lock.
        for tmp in self.out.rglob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass
        return f

    def _load_state(self) -> dict:
        a = self.args
        fresh = {"version": STATE_VERSION, "seed": a.seed, "shard": list(a.shard),
                 "backends": a.backends, "max_steps": a.max_steps, "chunk": CHUNK,
                 "compiler": getattr(a, "compiler", None), "probes": getattr(a, "probes", True),
                 "generator": getattr(a, "generator", "hypothesis"), "allow": getattr(a, "allow", []),
                 "oracles": getattr(a, "oracles", []),
                 "done_prefix": 0, "done_extra": [], "programs": 0, "seconds": 0.0,
                 "divergent": 0, "screen_only": 0, "ops": {}, "sig_counts": {}, "timings": {},
                 "sessions": 0}
        if not self.state_path.exists():
            return fresh
        from isowasm.spec.errors import IsowasmError

        try:
            st = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise IsowasmError(f"{self.state_path}: corrupt campaign state ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else e}); remove the directory "
                               f"or use another --out") from None
        needed = {"version", "seed", "shard", "backends", "max_steps", "chunk", "done_prefix",
                  "done_extra", "programs", "seconds", "sig_counts"}
        if not isinstance(st, dict) or needed - set(st) or st.get("version") != STATE_VERSION:
            raise IsowasmError(f"{self.state_path}: not a version-{STATE_VERSION} campaign state "
                               f"(missing fields or another version); remove the directory or use "
                               f"another --out")
        # a state from before issue 14 has no generator/allow/oracles: its defaults
        st.setdefault("generator", "hypothesis")
        st.setdefault("allow", [])
        st.setdefault("oracles", fresh["oracles"])
        for key in ("seed", "shard", "backends", "max_steps", "chunk", "compiler", "probes",
                    "generator", "allow", "oracles"):
            if st.get(key) != fresh[key]:
                raise IsowasmError(f"{self.out} holds a campaign with {key} {st.get(key)!r}, "
                                   f"not {fresh[key]!r}: resume with the same options or use another --out")
        return st

    def save_state(self) -> None:
        st = self.state
        done = set(st["done_extra"])
        while st["done_prefix"] in done:
            done.discard(st["done_prefix"])
            st["done_prefix"] += 1
        st["done_extra"] = sorted(done)
        atomic_write(self.state_path, _json_dump(st))
        self.last_save = time.monotonic()

    def chunks(self):
        """Chunk numbers not yet done, in order."""
        st = self.state
        done = set(st["done_extra"])
        c = st["done_prefix"]
        while True:
            if c not in done:
                yield c
            c += 1

    def indices(self, chunk: int) -> list[int]:
        i, n = self.args.shard
        return [j * n + i for j in range(chunk * CHUNK, (chunk + 1) * CHUNK)]

    # -- accounting ------------------------------------------------------------

    def absorb(self, chunk: int, r: dict) -> None:
        st = self.state
        st["done_extra"].append(chunk)
        st["programs"] += r["programs"]
        self.session_programs += r["programs"]
        st["divergent"] += r["divergent"]
        st["screen_only"] += r.get("screen_only", 0)
        ops = Counter(st["ops"])
        ops.update(r["ops"])
        st["ops"] = dict(ops)
        mc = Counter(st.get("machine_cov", {}))
        mc.update(r.get("machine_cov", {}))
        st["machine_cov"] = dict(mc)
        tm = Counter(st["timings"])
        tm.update(r.get("timings", {}))
        st["timings"] = {k: round(v, 3) for k, v in tm.items()}
        sc = Counter(st["sig_counts"])
        for f in r["found"]:
            sc[f["signature"]] += 1
            if f.get("new"):
                blame = f["finding"].get("blame")
                self.say(f"new divergence: {f['signature']} "
                         f"(shrunk to {f['finding']['wat'].count(chr(10))} lines)"
                         + (f"; op probe: {blame}" if blame else ""))
        st["sig_counts"] = dict(sc)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def coverage(self) -> float:
        return coverage_percent(self.state["ops"], self.state.get("generator"))

    def status_line(self) -> str:
        el = self.elapsed()
        rate = self.session_programs / max(el, 1e-9)
        st = self.state
        return (f"[fuzz] {el:6.0f}s  {st['programs']:,} programs  {rate:,.1f} programs/s  "
                f"{st['divergent']} divergent ({len(st['sig_counts'])} signatures)  "
                f"coverage {self.coverage():.0f}%")

    def say(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self.last_line >= 0.5:
                sys.stderr.write("\r\x1b[K" + self.status_line())
                sys.stderr.flush()
                self.last_line = now
        elif force or now - self.last_line >= self.args.status_every:
            sys.stderr.write(self.status_line() + "\n")
            sys.stderr.flush()
            self.last_line = now
        if now - self.last_save >= 2.0:
            self.save_state()

    # -- results ---------------------------------------------------------------

    def findings(self) -> list[dict]:
        return load_findings(self.out)

    def write_json(self) -> dict:
        doc = summary(self.state, self.findings(), self.state["seconds"] + self.elapsed(),
                      workers=self.args.workers, reference_trace=self.args.reference_trace,
                      reference_every=self.args.reference_every, sample=self.args.sample,
                      stopped=self.stop_reason or "time")
        atomic_write(self.json_path, _json_dump(doc))
        return doc

    # -- the loop --------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        cfg = {"seed": a.seed, "backends": a.backends, "max_steps": a.max_steps,
               "out": str(self.out), "regressions": str(a.regressions),
               "reference_trace": a.reference_trace, "reference_every": a.reference_every,
               "sample": a.sample,
               "shrink_seconds": a.shrink_seconds,
               "compiler": a.compiler, "probes": a.probes,
               "generator": a.generator, "generator_options": {"allow": a.allow}, "oracles": a.oracles}
        self.out.mkdir(parents=True, exist_ok=True)
        self.state["sessions"] = self.state.get("sessions", 0) + 1
        self.save_state()
        prev = {"int": signal.getsignal(signal.SIGINT), "term": signal.getsignal(signal.SIGTERM)}

        def on_signal(signum, _frame):
            self.stop_reason = signal.Signals(signum).name
            if self.worker is not None:
                self.worker.stop = True
        self.worker = None
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        self.say(f"[fuzz] seed {a.seed}, shard {a.shard[0]}/{a.shard[1]}, {a.workers} worker(s), "
                 f"generator {a.generator}, backends {', '.join(a.backends)}"
                 + (f", oracles {', '.join(a.oracles)}" if a.oracles else "")
                 + f", {a.time:.0f} s; state in {self.out}"
                 + (f" (resuming after {self.state['programs']:,} programs)" if self.state["programs"] else ""))
        try:
            self.finish_unshrunk(cfg)
            if a.workers <= 1:
                self._run_inline(cfg)
            else:
                self._run_pool(cfg)
        finally:
            signal.signal(signal.SIGINT, prev["int"])
            signal.signal(signal.SIGTERM, prev["term"])
            if self.tty:
                sys.stderr.write("\n")
            self.state["seconds"] = self.state["seconds"] + self.elapsed()
            self.t0 = time.monotonic()
            self.save_state()
            doc = self.write_json()
            self.say(f"[fuzz] {doc['programs']:,} programs in {doc['seconds']:.0f} s "
                     f"({doc['rate']:.1f} programs/s over the campaign), {len(doc['findings'])} distinct "
                     f"divergence(s), coverage {doc['coverage_percent']:.0f}%; wrote {self.json_path}")
        # a finding a worker saved before the stop counts even when its chunk
        # never reported back
        return 1 if self.state["sig_counts"] or self.findings() else 0

    def finish_unshrunk(self, cfg: dict) -> None:
        """Findings saved but not shrunk (the last session was killed while
        shrinking) are shrunk now: their program is regenerated from (seed,
        index)."""
        todo = [f for f in self.findings() if not f.get("shrunk")]
        if not todo:
            return
        w = self.worker = Worker(cfg)
        try:
            for f in todo:
                if self.stop_reason is not None:
                    break
                self.say(f"[fuzz] shrinking {f['signature']} (saved unshrunk by an interrupted session)")
                f = w.shrink_finding(f, w.module(f["index"]))
        finally:
            w.close()
            self.worker = None

    def _time_left(self) -> bool:
        if self.args.programs is not None and self.state["programs"] >= self.args.programs:
            return False
        return self.stop_reason is None and self.elapsed() < self.args.time

    def _run_inline(self, cfg: dict) -> None:
        w = self.worker = Worker(cfg)
        try:
            for chunk in self.chunks():
                if not self._time_left():
                    break
                t0 = time.perf_counter()
                r = w.run_chunk(self.indices(chunk))
                r["seconds"] = time.perf_counter() - t0
                r["timings"] = dict(w.timings)
                w.timings.clear()
                if not r["complete"]:
                    break   # interrupted mid-chunk: its findings are saved; the chunk is redone on resume
                self.absorb(chunk, r)
                self.tick()
        finally:
            w.close()

    def _run_pool(self, cfg: dict) -> None:
        import multiprocessing as mp
        import queue

        ctx = mp.get_context("spawn")
        tasks, results = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_worker_main, args=(cfg, tasks, results), daemon=True)
                 for _ in range(self.args.workers)]
        for p in procs:
            p.start()
        gen = self.chunks()
        pending: set[int] = set()
        try:
            for _ in range(2 * len(procs)):
                c = next(gen)
                tasks.put((c, self.indices(c)))
                pending.add(c)
            while pending:
                try:
                    kind, chunk, r = results.get(timeout=0.25)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        self.say("[fuzz] all workers died")
                        break
                    if self.stop_reason is not None:
                        break
                    self.tick()
                    continue
                if kind == "error":
                    self.say(f"[fuzz] worker error{' in chunk %s' % chunk if chunk is not None else ''}:\n{r}")
                    if chunk is None:
                        break
                    pending.discard(chunk)
                    continue
                pending.discard(chunk)
                if r["complete"]:
                    self.absorb(chunk, r)
                if self._time_left():
                    c = next(gen)
                    while c in pending:
                        c = next(gen)
                    tasks.put((c, self.indices(c)))
                    pending.add(c)
                self.tick()
        finally:
            for _ in procs:
                tasks.put(None)
            deadline = time.monotonic() + (2.0 if self.stop_reason else 10.0)
            # take what finished meanwhile, then end the workers
            while pending and time.monotonic() < deadline:
                try:
                    kind, chunk, r = results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "done" and chunk in pending:
                    pending.discard(chunk)
                    if r["complete"]:
                        self.absorb(chunk, r)
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()


def load_findings(out: Path) -> list[dict]:
    """The findings of a campaign's state directory, oldest first."""
    found = []
    d = Path(out) / "findings"
    for p in sorted(d.glob("*.json")) if d.exists() else []:
        try:
            found.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    found.sort(key=lambda f: f.get("first_seen", 0))
    return found


def coverage_percent(ops: dict, generator: str | None = None) -> float:
    """Share of the generator's constructs a campaign has run at least once
    (wasm-smith's: the wasm-level constructs of the toolchain's subset)."""
    from isowasm.fuzz.generators import ALL_CONSTRUCTS

    if generator == "wasm-smith":
        from isowasm.fuzz.smith import WASM_CONSTRUCTS, split_ops

        wasm = split_ops(ops)[1]
        return 100.0 * len({k for k, v in wasm.items() if v} & WASM_CONSTRUCTS) / len(WASM_CONSTRUCTS)
    if generator == "machine":
        from isowasm.fuzz.machine_programs import ALL_CONSTRUCTS as MACHINE_CONSTRUCTS

        return 100.0 * len(set(ops) & MACHINE_CONSTRUCTS) / len(MACHINE_CONSTRUCTS)
    return 100.0 * len(set(ops) & ALL_CONSTRUCTS) / len(ALL_CONSTRUCTS)


def summary(st: dict, found: list[dict], seconds: float, *, workers, reference_trace, stopped: str,
            reference_every: int = 1, sample: dict | None = None) -> dict:
    """The campaign's summary for `isowasm report` (results/fuzz.json)."""
    from isowasm.fuzz.generators import ALL_CONSTRUCTS

    ops = st["ops"]
    findings = [{
        "signature": f["signature"], "kind": f.get("kind"), "op": f.get("op"),
        "backend": f.get("backend"), "count": st["sig_counts"].get(f["signature"], 1),
        "seed": f.get("seed"), "index": f.get("index"), "shrunk": f.get("shrunk", False),
        "lines_before": f.get("lines_before"), "wat": f["wat"], "report": f["report"],
        "regression": _rel(f.get("regression")), "blame": f.get("blame"),
    } for f in found]
    shard = st["shard"]
    return {
        "kind": "fuzz", "time": time.time(), "seed": st["seed"],
        "shard": shard if isinstance(shard, str) else "/".join(map(str, shard)),
        "workers": workers, "programs": st["programs"], "seconds": round(seconds, 3),
        "rate": round(st["programs"] / max(seconds, 1e-9), 2), "backends": st["backends"],
        "max_steps": st["max_steps"], "reference_trace_every": reference_trace,
        "reference_run_every": reference_every, "sampled": sample or {},
        "divergent_programs": st["divergent"], "screen_only_mismatches": st["screen_only"],
        "op_coverage": {k: ops.get(k, 0) for k in sorted(ALL_CONSTRUCTS)},
        "coverage_percent": round(coverage_percent(ops), 1),
        "machine_coverage": machine_coverage(st.get("machine_cov", {})),
        **_generator_summary(st),
        "timings": {k: v for k, v in st["timings"].items() if k != "cpu"},
        "cpu_seconds": st["timings"].get("cpu", 0.0),
        "stopped": stopped,
        "findings": findings,
    }


def _generator_summary(st: dict) -> dict:
    """The generator and oracles of a campaign, its wasm-level coverage (the
    vocabulary both generators are compared in) and, for wasm-smith, the
    filter's acceptance (issue 14)."""
    from isowasm.fuzz.smith import WASM_CONSTRUCTS, filter_stats, split_ops

    gen = st.get("generator") or "hypothesis"
    own, wasm, stats = split_ops(st["ops"])
    out = {"generator": gen, "oracles": st.get("oracles") or []}
    if wasm:
        out["wasm_coverage"] = {k: wasm.get(k, 0) for k in sorted(WASM_CONSTRUCTS | set(wasm))}
        out["wasm_coverage_percent"] = round(coverage_percent(st["ops"], "wasm-smith"), 1)
    if gen == "wasm-smith":
        # the generator's own constructs are the wasm-level ones
        out["op_coverage"] = {k: wasm.get(k, 0) for k in sorted(WASM_CONSTRUCTS)}
        out["coverage_percent"] = out.get("wasm_coverage_percent", 0.0)
    if gen == "machine":
        from isowasm.fuzz.machine_programs import ALL_CONSTRUCTS as MACHINE_CONSTRUCTS

        out["op_coverage"] = {k: own.get(k, 0) for k in sorted(MACHINE_CONSTRUCTS)}
        out["coverage_percent"] = round(coverage_percent(st["ops"], "machine"), 1)
    f = filter_stats(stats)
    if f:
        out["filter"] = f
    return out


def _rel(p: str | None) -> str | None:
    if not p:
        return p
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------
# the command

def build_parser() -> argparse.ArgumentParser:
    from isowasm.cli import ArgumentParser

    ap = ArgumentParser(prog="isowasm fuzz", description=(
        "Differential fuzzing campaign: generated WAT programs on every backend, divergences "
        "shrunk, de-duplicated and written as regression cases."))
    ap.add_argument("--time", type=parse_duration, default=parse_duration("1h"),
                    help="how long to run: 8h, 30m, 90s, 1h30m (default 1h)")
    ap.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    ap.add_argument("--programs", type=int, default=None, metavar="N",
                    help="also stop once the campaign has run N programs (whole chunks of "
                         f"{CHUNK}; resumed sessions count what earlier ones ran)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="worker processes on this machine (default: the CPU count)")
    ap.add_argument("--shard", type=parse_shard, default=(0, 1),
                    help="i/N: this machine runs the programs k with k mod N == i (default 0/1)")
    ap.add_argument("--backends", default=None,
                    help="comma-separated backends (default: every available one that is not "
                         "heavy; heavy ones, like the transformer, only when named)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="campaign state directory (default results/fuzz/)")
    ap.add_argument("--json", default=None,
                    help="summary for `isowasm report` (default results/fuzz.json)")
    ap.add_argument("--regressions", default=None,
                    help="where regression cases go (default results/regressions/, "
                         "or $ISOWASM_REGRESSIONS_DIR; the repository's own suite runs "
                         "conformance/regressions/)")
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="step budget per run")
    ap.add_argument("--sample", type=_samples, default={}, metavar="NAME=K,...",
                    help="run a slow machine backend on one program in K (e.g. transformer=16), "
                         "where two other tracing backends cross-check the rest; suspects are "
                         "always confirmed on every backend")
    ap.add_argument("--reference-every", type=int, default=1, metavar="K",
                    help="run the reference at all on one program in K (default 1: every program); "
                         "only when two other backends cross-check the traces; suspects are "
                         "always confirmed with it")
    ap.add_argument("--reference-trace", type=int, default=1, metavar="K",
                    help="trace the reference on one program in K (default 1: every program); only "
                         "applies when two other backends cross-check the traces")
    ap.add_argument("--compiler", default=None,
                    help="run the program files this compiler makes from each module (`isowasm` or "
                         "one declared under `compilers:` in isowasm-backends.yaml)")
    ap.add_argument("--no-probes", dest="probes", action="store_false",
                    help="skip the op probes that open every campaign (isowasm/fuzz/probes.py: "
                         "each op on every operand class, the first programs of the campaign)")
    ap.add_argument("--generator", choices=["hypothesis", "wasm-smith", "machine"], default="hypothesis",
                    help="the program generator: isowasm's Hypothesis WAT generator (default), "
                         "wasm-smith configured to the machine's ABI (needs `pip install "
                         "./ports/fuzz-native`), or machine programs written directly (no wasm: "
                         "the machine backends against the reference, aimed at every machine "
                         "coverage cell; isowasm/fuzz/machine_programs.py)")
    ap.add_argument("--allow", type=_names, default=None, metavar="CONSTRUCTS",
                    help="wasm-smith: constructs beyond the i32 subset the filter lets through, "
                         "comma-separated (default i64, which the toolchain lowers; '' for the i32 "
                         "subset only)")
    ap.add_argument("--oracles", type=_names, default=None, metavar="LIST",
                    help="engines that run the original module and must agree with each other, "
                         "comma-separated; wasmtime is the ground truth (default: wasmtime,wasmi when "
                         "wasmi is installed and wasmtime is among the backends; `none`: no second "
                         "oracle). A disagreement is filed as oracle-disagreement:..., not as a "
                         "divergence of the machines")
    ap.add_argument("--shrink-seconds", type=float, default=60.0, help="time limit per shrink (default 60)")
    ap.add_argument("--status-every", type=float, default=30.0,
                    help="seconds between status lines when not on a terminal (default 30)")
    ap.add_argument("--progress", action="store_true", default=None, help="live line even off a terminal")
    return ap


def _samples(text: str) -> dict[str, int]:
    out = {}
    for part in _names(text):
        name, _, k = part.partition("=")
        if not k.isdigit() or int(k) < 1:
            raise argparse.ArgumentTypeError(f"--sample {part!r}: expected NAME=K with K >= 1")
        out[name.strip()] = int(k)
    return out


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def resolve_oracles(spec: list[str] | None, backends: list[str]) -> list[str]:
    """The oracle set (issue 14): engines that run the original module and
    produce no machine trace. Default: those among the backends, plus wasmi
    beside wasmtime when it is installed. `none`: only wasmtime (if named),
    no cross-check."""
    from isowasm.backends import get_backend
    from isowasm.backends.base import BackendUnavailable
    from isowasm.spec.errors import IsowasmError

    def is_oracle(name: str) -> bool:
        b = get_backend(name)   # raises BackendUnavailable with the reason
        try:
            return bool(b.needs_wasm and not b.traces)
        finally:
            b.close()

    if spec == ["none"]:
        return []
    if spec is None:
        names = [n for n in backends if is_oracle(n)]
        if "wasmtime" in names and "wasmi" not in names:
            try:
                if is_oracle("wasmi"):
                    names.append("wasmi")
            except BackendUnavailable:
                pass
        return names if len(names) > 1 else []
    for n in spec:
        if not is_oracle(n):
            raise IsowasmError(f"--oracles: {n} produces a machine trace; an oracle runs the original module")
    return list(dict.fromkeys(spec))


def resolve_backends(spec: str | None) -> list[str]:
    from isowasm.backends import available_backends, get_backend

    if spec:
        names = [s.strip() for s in spec.split(",") if s.strip()]
        for n in names:
            b = get_backend(n)   # raises BackendUnavailable with the reason
            b.close()
        return list(dict.fromkeys(names))
    avail = available_backends()
    # heavy backends (the transformer, thousands of tokens/s) only when named
    names = [n for n, b in avail.items() if not isinstance(b, str) and not getattr(b, "heavy", False)]
    for b in avail.values():
        if not isinstance(b, str):
            b.close()
    return names


def cli_fuzz(argv: list[str] | None = None) -> int:
    """`isowasm fuzz [options]`: 0 when no divergence was found, 1 when one
    was (the campaign's findings, old ones included), 2 on a usage error."""
    from isowasm.spec.errors import IsowasmError

    if argv and argv[0] == "merge":
        from isowasm.fuzz.merge import cli_merge

        return cli_merge(argv[1:])
    if argv and argv[0] == "generators":
        return cli_generators(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.backends = resolve_backends(args.backends)
        args.oracles = resolve_oracles(args.oracles, args.backends)
        if args.allow is None:     # the toolchain lowers i64 (MACHINE.md §8)
            args.allow = ["i64"] if args.generator == "wasm-smith" else []
        if args.generator == "wasm-smith":
            from isowasm.fuzz.smith import native

            n = native()           # the one-line error when the extension is missing
            n.check(b"", args.allow)   # an unknown --allow is a usage error
        elif args.allow:
            raise IsowasmError("--allow applies to --generator wasm-smith only")
    except ValueError as e:
        print(f"error: --allow: {e}", file=sys.stderr)
        return 2
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.backends:
        print("error: no backend available", file=sys.stderr)
        return 2
    if args.json is None:   # results/fuzz/ -> results/fuzz.json
        args.json = str(Path(args.out).parent / "fuzz.json")
    if args.regressions is None:
        args.regressions = os.environ.get("ISOWASM_REGRESSIONS_DIR") or str(DEFAULT_REGRESSIONS)
    if args.max_steps <= 0:
        print(f"error: --max-steps {args.max_steps}: the step budget must be a positive number",
              file=sys.stderr)
        return 2
    args.workers = max(1, args.workers)
    args.reference_trace = max(1, args.reference_trace)
    args.reference_every = max(1, args.reference_every)
    unknown = sorted(set(args.sample) - set(args.backends or []))
    if unknown:
        print(f"error: --sample {', '.join(unknown)}: not among the campaign's backends", file=sys.stderr)
        return 2
    try:
        return Campaign(args).run()
    except IsowasmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def cli_generators(argv: list[str]) -> int:
    """`isowasm fuzz generators`: which wasm-level constructs each generator
    covers that the other does not, over the same number of programs."""
    from isowasm.cli import ArgumentParser
    from isowasm.spec.errors import IsowasmError

    ap = ArgumentParser(prog="isowasm fuzz generators", description=(
        "Generate N programs with each generator (hypothesis, wasm-smith), count the wasm-level "
        "constructs of each and report what each covers that the other does not."))
    ap.add_argument("--programs", type=int, default=500, metavar="N", help="programs per generator (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow", type=_names, default=[], metavar="CONSTRUCTS",
                    help="wasm-smith filter relaxations (i64)")
    ap.add_argument("--json", default="results/fuzz-generators.json",
                    help="where the comparison goes (default results/fuzz-generators.json; '' for none)")
    args = ap.parse_args(argv)
    from isowasm.fuzz.smith import compare_generators

    try:
        doc = compare_generators(args.seed, max(1, args.programs), {"allow": args.allow})
    except (IsowasmError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, g in doc["generators"].items():
        extra = ""
        if g.get("filter"):
            extra = f"; filter acceptance {g['filter']['acceptance_percent']:.2f} %"
        print(f"{name}: {g['coverage_percent']:.0f} % of {len(doc['vocabulary'])} wasm constructs, "
              f"{g['programs_per_second']:.0f} programs/s{extra}")
        print(f"  never: {', '.join(g['never']) or '-'}")
    for name, only in doc["only"].items():
        print(f"only {name}: {', '.join(only) or '-'}")
    if args.json:
        atomic_write(Path(args.json), _json_dump(doc))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_fuzz())
