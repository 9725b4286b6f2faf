"""Build time of two checkouts side by side (issue 21: the v3 core must build no slower than v2).

Runs `symmv build` from checkout A and checkout B in turn (A B A B ...), each run into a fresh --out with a
fresh stage cache (every stage computes), on the same source and flags; records wall seconds, the CPU
seconds of the build process and its children, and the songs / rejects each build reported. Quote the
medians and the pairwise ratio B/A: the machine's speed drifts between runs, a pair does not.

    git worktree add /tmp/symmv-v2 <old commit>
    .venv/bin/python bench/bench_build_ab.py --a /tmp/symmv-v2 --name demo --source-dir data/demo-source
    .venv/bin/python bench/bench_build_ab.py --a /tmp/symmv-v2 --name release300 --source symmv-release \\
        --source-dir ../shared/data/symmv-release --limit 300 --extra "--transcriber midi-file --beat-tracker notes"
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_result  # noqa: E402


def git_head(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def one_build(checkout: Path, args: argparse.Namespace, tmp: Path) -> dict:
    """One cold build from `checkout` (its own code first on the path), timed from outside."""
    out, cache = tmp / "out", tmp / "cache"
    cmd = [sys.executable, "-m", "symmv.cli", "build", "--source", args.source,
           "--source-dir", str(Path(args.source_dir).resolve()), "--out", str(out), "--cache-dir", str(cache),
           "--card-dir", str(tmp / "cards"), "--no-progress", *(["--limit", str(args.limit)] if args.limit else []),
           *shlex.split(args.extra)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((out / "build_report.json").read_text()) if (out / "build_report.json").is_file() else {}
    return {"rc": proc.returncode, "wall_s": round(wall, 2),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
            "songs": report.get("songs"), "rejects": report.get("rejects"), "flow_wall_s": report.get("wall_s"),
            "stderr_tail": proc.stderr[-400:] if proc.returncode else ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="the baseline checkout (e.g. a git worktree of the old commit)")
    p.add_argument("--b", default=str(REPO), help="the checkout under test (default: this one)")
    p.add_argument("--name", required=True, help="result name: bench/results/build_ab_<name>.json")
    p.add_argument("--source", default="local")
    p.add_argument("--source-dir", default="data/demo-source")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--extra", default="", help="more build flags, given to both")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    a, b = Path(args.a).resolve(), Path(args.b).resolve()
    runs: dict[str, list[dict]] = {"a": [], "b": []}
    for i in range(args.repeats):
        for side, checkout in (("a", a), ("b", b)):
            with tempfile.TemporaryDirectory(prefix=f"ab-{side}-") as tmp:
                run = one_build(checkout, args, Path(tmp))
            runs[side].append(run)
            print(f"run {i} {side}: {run}", flush=True)
    ok = all(r["rc"] == 0 for side in runs.values() for r in side)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s")} for side, rs in runs.items()}
    ratios = [rb["wall_s"] / ra["wall_s"] for ra, rb in zip(runs["a"], runs["b"])]
    write_result(f"build_ab_{args.name}", {
        "inputs": {"a": str(a), "a_commit": git_head(a), "b": str(b), "b_commit": git_head(b), "source": args.source,
                   "source_dir": args.source_dir, "limit": args.limit, "extra": args.extra, "repeats": args.repeats,
                   "cold": "fresh --out and stage cache per run"},
        "all_ok": ok, "median": med, "wall_ratio_b_over_a": {"pairs": [round(r, 3) for r in ratios],
                                                             "median": round(statistics.median(ratios), 3)},
        "same_output": all(ra["songs"] == rb["songs"] and ra["rejects"] == rb["rejects"]
                           for ra, rb in zip(runs["a"], runs["b"])),
        "runs": runs})
    print(json.dumps({"median": med, "ratio": statistics.median(ratios)}, indent=1))


if __name__ == "__main__":
    main()
