"""`isowasm fuzz merge STATE_DIR... --out DIR`: one campaign from its shards.

Shards of one campaign (same seed, backends, budget, compiler; `--shard i/N`
with one N and distinct i) ran on separate machines with separate state
directories. Merging sums what they counted (programs, divergent programs,
op coverage, time per phase, occurrences of each signature) and keeps one
finding per signature: the one met at the lowest program index, as an
unsharded campaign over the same programs would have met it first. The kept
findings' regression cases are copied into --regressions.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from isowasm.atomic import atomic_write
from isowasm.spec.errors import IsowasmError

IDENTITY = ("version", "seed", "backends", "max_steps", "chunk", "compiler", "probes", "generator", "allow",
            "oracles")


def _state(d: Path) -> dict:
    p = d / "state.json"
    try:
        st = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IsowasmError(f"{d}: no campaign state (state.json) here") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise IsowasmError(f"{p}: corrupt campaign state ({type(e).__name__})") from None
    if not isinstance(st, dict) or "shard" not in st or "sig_counts" not in st:
        raise IsowasmError(f"{p}: not a campaign state")
    return st


def merge(dirs: list[str], out: str, regressions: str) -> tuple[dict, list[dict]]:
    """(merged state, kept findings), written to `out` (state.json and
    findings/) with regression cases in `regressions`."""
    from isowasm.fuzz.campaign import load_findings
    from isowasm.fuzz.oracles import sig_id

    if not dirs:
        raise IsowasmError("fuzz merge: name the shards' state directories")
    paths = [Path(d) for d in dirs]
    states = [_state(p) for p in paths]
    first = states[0]
    for p, st in zip(paths[1:], states[1:]):
        for key in IDENTITY:
            if st.get(key) != first.get(key):
                raise IsowasmError(f"{p}: {key} {st.get(key)!r} differs from {paths[0]}'s {first.get(key)!r}: "
                                   f"not shards of one campaign")
    shards = [tuple(st["shard"]) for st in states]
    if len({n for _, n in shards}) != 1 or len(set(shards)) != len(shards):
        raise IsowasmError(f"shards {', '.join(f'{i}/{n}' for i, n in shards)}: expected distinct i/N of one N")
    merged = {k: first.get(k) for k in IDENTITY}
    merged["shard"] = "+".join(f"{i}/{n}" for i, n in sorted(shards))
    for key in ("programs", "divergent", "screen_only", "sessions"):
        merged[key] = sum(st.get(key, 0) for st in states)
    # machines run side by side: the campaign took as long as its longest shard
    merged["seconds"] = max(st.get("seconds", 0.0) for st in states)
    for key in ("ops", "sig_counts", "timings", "machine_cov"):
        c: Counter = Counter()
        for st in states:
            c.update(st.get(key, {}))
        merged[key] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in sorted(c.items())}
    kept: dict[str, dict] = {}
    for p in paths:
        for f in load_findings(p):
            cur = kept.get(f["signature"])
            if cur is None or f.get("index", 1 << 62) < cur.get("index", 1 << 62):
                kept[f["signature"]] = f
    out_dir, reg_dir = Path(out), Path(regressions)
    found = []
    for f in sorted(kept.values(), key=lambda f: f.get("index", 0)):
        f = dict(f)
        src = f.get("regression")
        if src and Path(src).exists():
            dest = reg_dir / Path(src).name
            reg_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            f["regression"] = str(dest)
        atomic_write(out_dir / "findings" / f"{sig_id(f['signature'])}.json", json.dumps(f, indent=1) + "\n")
        found.append(f)
    atomic_write(out_dir / "merged.json", json.dumps(merged, indent=1) + "\n")
    return merged, found


def cli_merge(argv: list[str]) -> int:
    from isowasm.cli import ArgumentParser
    from isowasm.fuzz.campaign import _json_dump, summary

    ap = ArgumentParser(prog="isowasm fuzz merge", description=(
        "Merge the state directories of one campaign's shards into one report: counts summed, "
        "findings de-duplicated by signature, regression cases collected. Exit status: 0 no "
        "divergence, 1 divergences, 2 usage error."))
    ap.add_argument("dirs", nargs="+", metavar="STATE_DIR", help="the shards' --out directories")
    ap.add_argument("--out", default="results/fuzz-merged", help="merged findings (default results/fuzz-merged)")
    ap.add_argument("--json", default="results/fuzz.json", help="summary for `isowasm report` (default results/fuzz.json)")
    ap.add_argument("--regressions", default="results/regressions",
                    help="where the kept findings' regression cases go (default results/regressions)")
    args = ap.parse_args(argv)
    try:
        merged, found = merge(args.dirs, args.out, args.regressions)
    except IsowasmError as e:
        import sys

        print(f"error: {e}", file=sys.stderr)
        return 2
    doc = summary(merged, found, merged["seconds"], workers=None, reference_trace=None, stopped="merged")
    doc["shards"] = len(args.dirs)
    atomic_write(Path(args.json), _json_dump(doc))
    print(f"[fuzz merge] {len(args.dirs)} shards, {doc['programs']:,} programs, {len(found)} distinct "
          f"divergence(s); wrote {args.json}")
    return 1 if merged["sig_counts"] else 0
