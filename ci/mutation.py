#!/usr/bin/env python3
"""Mutation testing of every implementation: how many injected bugs the
tests notice.

    python ci/mutation.py                                # every component, 20 min each
    python ci/mutation.py --component reference,ocaml-port --time-box 30m
    python ci/mutation.py --component rust-port --max-mutants 120 --seed 7 --shard 1/4
    python ci/mutation.py --component reference --list   # the mutants, nothing run

Per component (COMPONENTS below) it copies the checkout into a scratch
directory (never touching the checkout: other processes import it live),
generates mutants (ci/mutation_ops.py: cargo-mutants for Rust, our own AST
mutator for Python, our own token mutator for OCaml), and for each mutant
edits the copy, runs the component's stages in order — builds, then the
fastest killing tests first, each stopping at its first failure — and
restores the file. A mutant is

  killed     a test stage failed (a Python mutant that crashes counts too),
  timeout    a stage ran past its limit (4x its baseline + 30 s): counted as killed,
  unviable   a build stage failed (Rust, OCaml): excluded from the score,
  survived   every stage passed.

Score = (killed + timeout) / (killed + timeout + non-equivalent survivors).
Survivors judged equivalent are listed in ci/mutation_equivalent.yaml (file,
the source line before and after, the reason) and reported as such.

Python in the copy: the checkout is pip-installed in editable mode, so the
stages run with PYTHONPATH=<copy>/.mutation/shim, whose sitecustomize.py
replaces the editable finder by one that maps `isowasm`, `isowasm.spec`
and `isowasm.transformer` onto the copy; the baseline asserts that the
copy is what gets imported. The shim also holds snapshots of the built
ports (isowasm_rust, isowasm_engine, the OCaml binary) taken when the run
starts, or the mutant's own build for the component under test.

Deterministic: mutants are enumerated in source order; with --max-mutants
a seeded sample is drawn (--seed), shards take every N-th of it, and the
mutants run in a seeded shuffled order so that a run cut short by the time
box is still a uniform sample. Results: <out>/<component>.json (with
--shard i/N: <component>.shard-i-of-N.json), rewritten after every mutant;
`isowasm report` renders results/mutation/*.json.

Exit status: 0 when every component ran (whatever its score, unless
--fail-under), 1 when a score is under --fail-under, 2 on a usage error or a
failed baseline (the unmutated copy must pass every stage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutation_ops as ops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = REPO / "ci" / "mutation_equivalent.yaml"
PY = sys.executable

PYTEST = [PY, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-p", "no:cacheprovider", "--no-header"]
# The shared suites import conformance/conftest.py, which makes every backend
# (torch: ~5 s a start); files that need none of it run with --noconftest first.
PYTEST_BARE = PYTEST + ["--noconftest"]
SUITES = ["conformance/test_compliance.py", "conformance/test_sequences.py", "conformance/test_limits.py"]

# cargo build of a port's Python module for a mutant: no LTO, parallel
# codegen, incremental (seconds instead of the release build's minute).
FAST_RELEASE = {"CARGO_PROFILE_RELEASE_LTO": "false", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
                "CARGO_PROFILE_RELEASE_INCREMENTAL": "true", "CARGO_PROFILE_RELEASE_OPT_LEVEL": "2"}


@dataclass
class Stage:
    name: str
    argv: list[str]
    cwd: str = "."              # relative to the copy
    kind: str = "test"          # "build": failure = unviable; "test": failure = killed
    env: dict = field(default_factory=dict)


@dataclass
class Component:
    name: str
    lang: str                    # python | rust | ocaml
    files: list[str]             # globs relative to the repository root
    stages: list[Stage]
    backends: str = "reference,wasmtime"   # ISOWASM_REQUIRE_BACKENDS for the stages
    crate: str | None = None     # rust: the crate's directory
    module: str | None = None    # rust: the Python module it builds
    env: dict = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)   # directories emptied before each mutant
    summary: str = ""


def _rust_stages(crate: str, module: str, tests: list[Stage]) -> list[Stage]:
    lib = f"target/release/lib{module}.so"
    return [
        Stage("cargo build (tests)", ["cargo", "test", "--no-run", "-q", "-j1"], crate, "build"),
        Stage("cargo test", ["cargo", "test", "-q", "-j1"], crate),
        Stage("build python module",
              ["sh", "-c", f"cargo build -q -j1 --release --lib --features python && "
                           f"cp {lib} \"$ISOWASM_MUTATION_ROOT/.mutation/shim/{module}.abi3.so\""],
              crate, "build", FAST_RELEASE),
    ] + tests


COMPONENTS: dict[str, Component] = {c.name: c for c in [
    Component(
        "reference", "python", ["spec/reference.py", "spec/trace.py", "spec/program.py", "spec/table.py"],
        [Stage("port tests (vs the reference)", PYTEST_BARE + [
            "conformance/test_rust_port.py", "conformance/test_ocaml_port.py", "conformance/test_spec_format.py",
            "conformance/test_mutation_kills.py"]),
         Stage("suites on the reference", PYTEST + ["-k", "reference or test_spec_table"]
               + SUITES + ["conformance/test_spec_table.py"])],
        backends="reference,wasmtime,rust,ocaml",
        summary="the Python reference executor: its run loop, the trace renderer, the program parser, the table"),
    Component(
        "toolchain", "python", ["isowasm/toolchain/*.py"],
        [Stage("toolchain tests", PYTEST_BARE + ["conformance/test_toolchain.py", "conformance/test_mutation_kills.py",
                                                 "-k", "test_toolchain or toolchain_ops"]),
         Stage("lowering and the compliance suite", PYTEST + ["-k", "test_lowering or reference"]
               + ["conformance/test_lowering.py", "conformance/test_compliance.py"])],
        env={"ISOWASM_CACHE": "{copy}/.mutation/cache"},
        summary="C/WAT -> wasm -> program files: frontend, decoder, lowering, compiler"),
    Component(
        "construction", "python", ["transformer/graph.py", "transformer/machine.py", "transformer/schedule.py",
                                   "transformer/build.py", "transformer/vocab.py", "transformer/model.py"],
        [Stage("engine on the hand-written programs", PYTEST + ["conformance/test_engine.py", "-k",
                                                               "programs_byte_identical or budget or heads"]),
         Stage("transformer tests", PYTEST + ["conformance/test_transformer.py"]),
         Stage("compliance suite on the engine", PYTEST + ["conformance/test_compliance.py", "-k",
                                                          "test_compliance and transformer"])],
        backends="reference,wasmtime,transformer",
        env={"ISOWASM_MODEL_DIR": "{copy}/.mutation/model"}, fresh=[".mutation/model"],
        summary="the analytic transformer's construction: graph, machine, schedule, weights"),
    Component(
        "rust-port", "rust", ["ports/rust/src/**/*.rs"],
        _rust_stages("ports/rust", "isowasm_rust", [
            Stage("port tests", PYTEST_BARE + ["conformance/test_rust_port.py", "conformance/test_mutation_kills.py"]),
            Stage("suites on the port", PYTEST + ["-k", "rust"] + SUITES)]),
        backends="reference,wasmtime,rust", crate="ports/rust", module="isowasm_rust",
        summary="ports/rust/src (cargo-mutants)"),
    Component(
        "engine", "rust", ["transformer/engine/src/*.rs"],
        _rust_stages("transformer/engine", "isowasm_engine", [
            Stage("engine tests", PYTEST + ["conformance/test_engine.py", "conformance/test_hull_engine.py",
                                                   "conformance/test_torch_long.py"]),
            Stage("compliance suite on the engine", PYTEST + ["conformance/test_compliance.py", "-k",
                                                             "test_compliance and transformer"])]),
        backends="reference,wasmtime,transformer", crate="transformer/engine", module="isowasm_engine",
        summary="the transformer's Rust inference engine (cargo-mutants)"),
    Component(
        "ocaml-port", "ocaml", ["ports/ocaml/lib/*.ml"],
        [Stage("dune build", ["dune", "build", "-j1", "--root", ".", "--display", "quiet"], "ports/ocaml", "build"),
         Stage("dune test", ["dune", "test", "--force", "-j1", "--root", ".", "--display", "quiet"], "ports/ocaml"),
         Stage("port tests", PYTEST_BARE + ["conformance/test_ocaml_port.py", "conformance/test_mutation_kills.py"]),
         Stage("suites on the port", PYTEST + ["-k", "ocaml"] + SUITES)],
        backends="reference,wasmtime,ocaml",
        env={"ISOWASM_OCAML_BIN": "{copy}/ports/ocaml/_build/default/bin/isowasm_ocaml.exe"},
        summary="ports/ocaml/lib (our token mutator)"),
]}

SITECUSTOMIZE = '''\
"""Written by ci/mutation.py: imports of isowasm come from the mutation copy."""
import importlib.util
import os
import sys

_ROOT = os.environ.get("ISOWASM_MUTATION_ROOT")
if _ROOT:
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not getattr(f, "__module__", "").startswith("__editable__")]
    _MAP = {"isowasm": os.path.join(_ROOT, "isowasm"), "isowasm.spec": os.path.join(_ROOT, "spec"),
            "isowasm.transformer": os.path.join(_ROOT, "transformer")}

    class _MutationCopy:
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            d = _MAP.get(name)
            if d is None:
                return None
            return importlib.util.spec_from_file_location(name, os.path.join(d, "__init__.py"),
                                                          submodule_search_locations=[d])

        @classmethod
        def invalidate_caches(cls):
            pass

    sys.meta_path.insert(0, _MutationCopy)
'''

IMPORT_CHECK = r'''
import json, os, sys
import isowasm, isowasm.spec.reference, isowasm.transformer.build, isowasm.toolchain.compile
root = os.environ["ISOWASM_MUTATION_ROOT"]
mods = {m.__name__: m.__file__ for m in (isowasm, isowasm.spec.reference, isowasm.transformer.build,
                                         isowasm.toolchain.compile)}
for name in sys.argv[1:]:
    mods[name] = __import__(name).__file__
bad = {k: v for k, v in mods.items() if not os.path.realpath(v).startswith(os.path.realpath(root) + os.sep)}
print(json.dumps(mods))
sys.exit(1 if bad else 0)
'''


# ---- the scratch copy -------------------------------------------------------

def make_copy(dest: Path, rev: str | None = None) -> None:
    """The checkout's files (tracked and untracked, not ignored) or, with
    `rev`, the files of that commit, copied to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if rev:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                             capture_output=True, check=True).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but build output
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()
                 and not any(part in ("target", "_build", ".git", "__pycache__", "results") for part in p.parts)]
    for n in names:
        src = REPO / n
        if not src.exists() and not src.is_symlink():
            continue
        d = dest / n
        d.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), d)
        elif src.is_file():
            shutil.copy2(src, d)


def _commit(rev: str | None) -> str | None:
    """The commit mutated (with --rev) or the working tree's HEAD."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", rev or "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def make_shim(copy: Path, comp: Component) -> Path:
    """<copy>/.mutation/shim: sitecustomize.py plus snapshots of the built
    ports the component does not build itself."""
    shim = copy / ".mutation" / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
    import importlib.util
    for mod in ("isowasm_rust", "isowasm_engine"):
        if mod == comp.module:
            continue
        spec = importlib.util.find_spec(mod)
        if spec and spec.submodule_search_locations:
            shutil.copytree(list(spec.submodule_search_locations)[0], shim / mod,
                            ignore=shutil.ignore_patterns("__pycache__"))
        elif spec and spec.origin:
            shutil.copy2(spec.origin, shim / Path(spec.origin).name)
    if comp.lang != "ocaml":
        from_checkout = REPO / "ports" / "ocaml" / "_build" / "default" / "bin" / "isowasm_ocaml.exe"
        binary = os.environ.get("ISOWASM_OCAML_BIN") or shutil.which("isowasm-ocaml") or from_checkout
        if Path(binary).is_file():
            (shim / "bin").mkdir(exist_ok=True)
            shutil.copy2(binary, shim / "bin" / "isowasm-ocaml")
    return shim


def stage_env(copy: Path, comp: Component) -> dict:
    env = dict(os.environ)
    shim = copy / ".mutation" / "shim"
    env.update({
        "PYTHONPATH": str(shim), "ISOWASM_MUTATION_ROOT": str(copy), "PYTHONDONTWRITEBYTECODE": "1",
        "ISOWASM_REQUIRE_BACKENDS": comp.backends, "CARGO_TERM_COLOR": "never", "PYTHONHASHSEED": "0",
    })
    env.pop("CARGO_TARGET_DIR", None)   # each copy builds in its own target/
    if (shim / "bin" / "isowasm-ocaml").exists():
        env["ISOWASM_OCAML_BIN"] = str(shim / "bin" / "isowasm-ocaml")
    for k, v in comp.env.items():
        env[k] = v.format(copy=copy)
    return env


# ---- running one stage --------------------------------------------------------

@dataclass
class Outcome:
    ok: bool
    timed_out: bool
    seconds: float
    tail: str


def run_stage(stage: Stage, copy: Path, env: dict, timeout: float) -> Outcome:
    e = dict(env)
    e.update(stage.env)
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(stage.argv, cwd=copy / stage.cwd, env=e, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # the stage's whole process group (pytest, the ports' processes, cargo's rustc)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Outcome(proc.returncode == 0 and not timed_out, timed_out, time.monotonic() - t0, text[-4000:])


def first_failure(tail: str) -> str:
    """The failing test's name, from pytest's, cargo test's or dune test's output."""
    for pat in (r"^(?:FAILED|ERROR) (\S+)", r"^test (\S+) \.\.\. FAILED", r"^---- (\S+) stdout ----", r"^FAIL (.+)$",
                r"^(error(?:\[\w+\])?: .+)$", r"^E +(.+)$"):
        m = re.search(pat, tail, re.M)
        if m:
            return m.group(1).strip()[:200]
    lines = [ln for ln in tail.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# ---- equivalence judgements ---------------------------------------------------

def load_equivalent(path: Path = EQUIVALENT_FILE) -> list[dict]:
    if not path.exists():
        return []
    import yaml
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    for e in data:
        for k in ("file", "original", "mutated", "reason"):
            if k not in e:
                raise SystemExit(f"error: {path}: an entry lacks {k!r}: {e}")
    return data


def judged_equivalent(m: dict, entries: list[dict]) -> dict | None:
    """The entry that judges mutant `m` equivalent: same file, same source
    line before and after (whitespace-insensitive; after = "*": any mutant
    of that line), and the same line number when the entry names one."""
    def norm(s):   # cargo-mutants marks its edits with a comment: not part of the key
        return re.sub(r"\s+", " ", (s or "").replace("/* ~ changed by cargo-mutants ~ */", "")).strip()
    for e in entries:
        if e["file"] == m["file"] and norm(e["original"]) == norm(m["original_line"]) \
                and norm(e["mutated"]) in ("*", norm(m["mutated_line"])) and e.get("line") in (None, m["line"]):
            return e
    return None


def rejudge(path: Path) -> str:
    """Re-apply the judgements to a recorded run (after adding entries)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kind") != "mutation":
        return "not a mutation run"
    entries = load_equivalent()
    for m in data["mutants"]:
        if m["status"] == "survived":
            e = judged_equivalent(m, entries)
            m["equivalent"], m["equivalent_reason"] = e is not None, e["reason"] if e else None
    c = data["counts"]
    c["equivalent"] = sum(1 for m in data["mutants"] if m["status"] == "survived" and m.get("equivalent"))
    data["score"] = score(c)
    write_json(path, data)
    return f"{c['equivalent']} of {c['survived']} survivor(s) judged equivalent; score " + (
        "-" if data["score"] is None else f"{100 * data['score']:.1f} %")


# ---- one component ---------------------------------------------------------------

def generate(comp: Component, copy: Path) -> list[ops.Mutant]:
    files = sorted({str(p.relative_to(copy)) for g in comp.files for p in copy.glob(g) if p.is_file()})
    if comp.lang == "python":
        return [m for f in files for m in ops.python_mutants(copy / f, f)]
    if comp.lang == "ocaml":
        return [m for f in files for m in ops.ocaml_mutants(copy / f, f)]
    if ops.cargo_mutants_version() is None:
        raise RuntimeError("cargo-mutants is not installed: `cargo install cargo-mutants --locked`")
    crate = copy / comp.crate
    rel = [str(Path(f).relative_to(comp.crate)) for f in files]
    return ops.rust_mutants(crate, comp.crate, rel)


def select(mutants: list[ops.Mutant], comp: str, seed: int, max_mutants: int | None, shard: tuple[int, int],
           match: str | None) -> list[ops.Mutant]:
    if match:
        rx = re.compile(match)
        mutants = [m for m in mutants if rx.search(f"{m.file}:{m.line}: {m.original_line} -> {m.mutated_line}")
                   or rx.search(m.id)]
    rng = random.Random(f"{seed}:{comp}")
    idx = list(range(len(mutants)))
    if max_mutants is not None and max_mutants < len(idx):
        idx = sorted(rng.sample(idx, max_mutants))
    i, n = shard
    idx = idx[i::n]
    rng.shuffle(idx)
    return [mutants[k] for k in idx]


def record(m: ops.Mutant) -> dict:
    return {"id": m.id, "file": m.file, "line": m.line, "col": m.col, "operator": m.operator,
            "original": m.original[:300], "replacement": m.replacement[:300], "description": m.description,
            "original_line": m.original_line, "mutated_line": m.mutated_line, "diff": m.diff}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def score(counts: dict) -> float | None:
    caught = counts["killed"] + counts["timeout"]
    denom = caught + counts["survived"] - counts["equivalent"]
    return None if denom <= 0 else caught / denom


def run_component(comp: Component, args, out: Path, deadline_box: float, log) -> dict:
    t_start = time.time()
    t0 = time.monotonic()
    shard_i, shard_n = args.shard
    name = f"{comp.name}.json" if shard_n == 1 else f"{comp.name}.shard-{shard_i}-of-{shard_n}.json"
    path = out / name
    scratch_parent = Path(args.scratch) if args.scratch else None
    if scratch_parent:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"isowasm-mutation-{comp.name}-", dir=scratch_parent))
    copy = scratch / "tree"
    stages = [s for s in comp.stages if not args.stages or s.name in args.stages or s.kind == "build"]
    data = {
        "kind": "mutation", "component": comp.name, "summary": comp.summary, "lang": comp.lang,
        "time": t_start, "seed": args.seed, "shard": f"{shard_i}/{shard_n}", "max_mutants": args.max_mutants,
        "time_box": deadline_box, "cpus": os.cpu_count(), "rev": args.rev or "worktree",
        "commit": _commit(args.rev), "overlay": args.overlay, "match": args.match,
        "tool": {"python": "ci/mutation_ops.py AST mutator", "ocaml": "ci/mutation_ops.py token mutator",
                 "rust": ops.cargo_mutants_version() or "cargo-mutants"}[comp.lang],
        "stages": [{"name": s.name, "kind": s.kind, "command": " ".join(s.argv), "cwd": s.cwd} for s in stages],
        "files": [], "generated": 0, "selected": 0, "baseline": None, "error": None,
        "counts": {}, "score": None, "seconds": 0.0, "stopped_by_time_box": False, "mutants": [],
    }
    entries = load_equivalent()

    def finish_data():
        ms = data["mutants"]
        c = {k: sum(1 for m in ms if m["status"] == k) for k in ("killed", "timeout", "survived", "unviable")}
        c["equivalent"] = sum(1 for m in ms if m["status"] == "survived" and m.get("equivalent"))
        c["not_run"] = data["selected"] - len(ms)
        data["counts"] = c
        data["score"] = score(c)
        data["seconds"] = round(time.monotonic() - t0, 1)
        write_json(path, data)

    try:
        log(f"[{comp.name}] copying the checkout to {copy}")
        make_copy(copy, args.rev)
        for rel in args.overlay:
            src, dst = REPO / rel, copy / rel
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            else:
                raise RuntimeError(f"--overlay {rel}: no such file or folder in the working tree")
        make_shim(copy, comp)
        env = stage_env(copy, comp)
        mutants = generate(comp, copy)
        data["files"] = sorted({m.file for m in mutants})
        data["generated"] = len(mutants)
        chosen = select(mutants, comp.name, args.seed, args.max_mutants, args.shard, args.match)
        data["selected"] = len(chosen)
        log(f"[{comp.name}] {len(mutants)} mutants generated, {len(chosen)} selected")
        if args.list:
            for m in chosen:
                print(f"{m.id}\n    {m.original_line}\n => {m.mutated_line}")
            return data
        # the baseline: the unmutated copy passes every stage, importing from itself
        baseline = {}
        for d in comp.fresh:
            shutil.rmtree(copy / d, ignore_errors=True)
        for s in stages:
            o = run_stage(s, copy, env, max(1800.0, deadline_box))
            baseline[s.name] = round(o.seconds, 1)
            log(f"[{comp.name}] baseline {s.name}: {'ok' if o.ok else 'FAILED'} in {o.seconds:.1f} s")
            if not o.ok:
                why = re.findall(r"^E +(.+)$", o.tail, re.M)
                raise RuntimeError(f"baseline stage {s.name!r} failed on the unmutated copy: {first_failure(o.tail)}"
                                   + (f": {why[0][:300]}" if why else "")
                                   + " (are the ports built? `make setup`)\n" + o.tail[-2500:])
        check = subprocess.run([PY, "-c", IMPORT_CHECK] + ([comp.module] if comp.module else []), cwd=copy,
                               env=env, capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"the copy does not import from itself: {check.stdout}{check.stderr}"[-2000:])
        imported = json.loads(check.stdout)
        data["baseline"] = {"seconds": baseline, "imports": imported}
        write_json(path, data)

        texts: dict[str, str] = {}
        for n, m in enumerate(chosen):
            if time.monotonic() - t0 > deadline_box:
                data["stopped_by_time_box"] = True
                log(f"[{comp.name}] time box reached after {n} mutants")
                break
            f = copy / m.file
            original = texts.setdefault(m.file, f.read_text(encoding="utf-8"))
            rec = record(m)
            t1 = time.monotonic()
            try:
                f.write_text(m.apply(original), encoding="utf-8")
                for d in comp.fresh:
                    shutil.rmtree(copy / d, ignore_errors=True)
                status, by = "survived", None
                for s in stages:
                    # generous: the machines these run on are shared, and a false timeout counts as a kill
                    limit = (2 if s.kind == "build" else 4) * baseline[s.name] + (60 if s.kind == "build" else 30)
                    o = run_stage(s, copy, env, limit)
                    if o.timed_out:
                        status, by = "timeout", f"{s.name}: over {limit:.0f} s"
                        break
                    if not o.ok:
                        status = "unviable" if s.kind == "build" else "killed"
                        by = f"{s.name}: {first_failure(o.tail)}"
                        break
            finally:
                f.write_text(original, encoding="utf-8")
            rec.update(status=status, by=by, seconds=round(time.monotonic() - t1, 1))
            if status == "survived":
                e = judged_equivalent(rec, entries)
                rec["equivalent"] = e is not None
                rec["equivalent_reason"] = e["reason"] if e else None
            data["mutants"].append(rec)
            log(f"[{comp.name}] {n + 1}/{len(chosen)} {status:9s} {rec['seconds']:6.1f} s  {m.id}"
                + (f"  ({by})" if by and status != "survived" else ""))
            finish_data()
    except RuntimeError as e:
        data["error"] = str(e)
        log(f"[{comp.name}] error: {str(e).splitlines()[0]}")
    finally:
        if not args.list:
            finish_data()
        if args.keep:
            log(f"[{comp.name}] kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return data


def parse_duration(s: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {s!r} (e.g. 90s, 20m, 1h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_shard(s: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", s)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise argparse.ArgumentTypeError(f"not a shard: {s!r} (i/N with 0 <= i < N)")
    return int(m.group(1)), int(m.group(2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog="components: "
                                 + ", ".join(COMPONENTS))
    ap.add_argument("--component", default=",".join(COMPONENTS),
                    help="comma-separated components (default: all)")
    ap.add_argument("--out", default="results/mutation", help="directory for <component>.json")
    ap.add_argument("--time-box", type=parse_duration, default=parse_duration("20m"),
                    help="per component: no mutant is started after this (default 20m)")
    ap.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/N: this job's share of the mutants")
    ap.add_argument("--max-mutants", type=int, default=None, help="a seeded sample of this many per component")
    ap.add_argument("--seed", type=int, default=0, help="sampling and order seed (default 0)")
    ap.add_argument("--match", default=None, help="only mutants whose 'file:line: before -> after' or id matches")
    ap.add_argument("--stages", default=None, help="comma-separated test stage names to run (builds always run)")
    ap.add_argument("--rev", default=None, help="mutate this commit's files instead of the working tree")
    ap.add_argument("--overlay", action="append", default=[], metavar="PATH",
                    help="with --rev: also copy this working-tree file or folder over the commit's (repeatable)")
    ap.add_argument("--scratch", default=None, help="parent directory of the scratch copies (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--list", action="store_true", help="list the selected mutants; run nothing")
    ap.add_argument("--fail-under", type=float, default=None, metavar="PERCENT",
                    help="exit 1 when a component's score is below this")
    ap.add_argument("--rejudge", action="store_true",
                    help="run nothing: re-apply ci/mutation_equivalent.yaml to the JSON files in --out")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.component.split(",") if c.strip()]
    unknown = [c for c in names if c not in COMPONENTS]
    if unknown:
        print(f"error: unknown component(s) {', '.join(unknown)} (known: {', '.join(COMPONENTS)})", file=sys.stderr)
        return 2
    if args.stages:
        args.stages = {s.strip() for s in args.stages.split(",")}
    try:
        load_equivalent()
    except Exception as e:  # a malformed judgement file is a usage error, before any work
        print(f"error: {EQUIVALENT_FILE}: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.rejudge:
        for p in sorted(out.glob("*.json")):
            print(f"{p}: {rejudge(p)}")
        return 0

    def log(msg):
        if not args.quiet:
            print(f"{dt.datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)

    def terminate(signum, frame):  # a cancelled CI job: restore, write the JSON, remove the copy
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    failed, low = [], []
    for c in names:
        try:
            d = run_component(COMPONENTS[c], args, out, args.time_box, log)
        except KeyboardInterrupt:
            print(f"MUTATION_INTERRUPTED in {c} (its JSON holds the mutants run so far)")
            return 130
        if d.get("error"):
            failed.append(c)
        elif not args.list:
            k = d["counts"]
            s = d["score"]
            log(f"[{c}] score {'-' if s is None else f'{100 * s:.1f} %'}: killed {k['killed']}, "
                f"timeout {k['timeout']}, survived {k['survived']} ({k['equivalent']} equivalent), "
                f"unviable {k['unviable']}, not run {k['not_run']}; {d['seconds']:.0f} s")
            if args.fail_under is not None and s is not None and 100 * s < args.fail_under:
                low.append(f"{c} {100 * s:.1f} %")
    if failed:
        print(f"MUTATION_ERROR: {', '.join(failed)}")
        return 2
    if low:
        print(f"MUTATION_LOW_SCORE (under {args.fail_under} %): {', '.join(low)}")
        return 1
    print("MUTATION_DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
