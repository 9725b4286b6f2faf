"""Build scale (issue 12): peak RSS and wall time against the number of songs, Prefect vs a plain loop over
the same stage functions, and a second build of the same source into a new --out (cache hits).

The source is synthetic and in the SymMV release's layout (SymMV.csv + midi/<index>.mid): N tiny generated
piano pieces (8 bars of chords and a melody, seeded, each a little different), built with
`--source symmv-release --transcriber midi-file --beat-tracker notes`, so every stage after discovery runs
for real without audio models. The release source has no video files, so no video features are computed.
Each build runs in its own process; peak RSS is that process's ru_maxrss.

    .venv/bin/python bench/bench_build_scale.py --songs 100 300 1000 --out bench/results/build_scale.json
    .venv/bin/python bench/bench_build_scale.py --release ../shared/data/symmv-release --songs 100 300
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine  # noqa: E402


def synthetic_release(root: Path, n: int) -> Path:
    """N small generated pieces in the release layout (deterministic)."""
    import numpy as np

    from symmv.core.records import Note
    from symmv.io.midi import write_notes

    (root / "midi").mkdir(parents=True, exist_ok=True)
    rows = ["index\tyoutube_url\ttonality\tshazam_id"]
    for i in range(n):
        rng = np.random.default_rng(i)
        beat = 60 / rng.uniform(80, 140)
        tonic = int(rng.integers(0, 12))
        notes = []
        for b in range(32):  # 8 bars of 4 beats: a triad per bar, a melody note per beat
            t = b * beat
            if b % 4 == 0:
                root_pc = tonic + [0, 5, 7, 9][(b // 4) % 4]
                notes += [Note(t, t + 4 * beat, 48 + (root_pc + k) % 12, 70) for k in (0, 4, 7)]
            notes.append(Note(t, t + 0.9 * beat, 72 + (tonic + [0, 2, 4, 5, 7, 9, 11][int(rng.integers(0, 7))]) % 12, 90))
        write_notes(notes, root / "midi" / f"{i:06d}.mid")
        rows.append(f"{i:06d}\thttps://www.youtube.com/watch?v={i:011d}\tC major\t")
    (root / "SymMV.csv").write_text("\n".join(rows) + "\n")
    return root


RUN = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from symmv.pipeline.config import BuildConfig, prefect_defaults
prefect_defaults(PREFECT_HOME={home!r}, PREFECT_LOGGING_LEVEL="WARNING")
cfg = BuildConfig(source="symmv-release", source_dir=Path({src!r}), out=Path({out!r}), card_dir=Path({out!r}) / "card",
                  cache_dir=Path({cache!r}), transcriber="midi-file", beat_tracker="notes", batch_size={batch},
                  workers={workers}, progress=False)
started = time.perf_counter()
if {plain}:
    from symmv.pipeline import build as B
    from symmv.pipeline.batch import merge_summaries, run_batch
    B.validate(cfg)
    covers, rejects = B.discover_covers(cfg)
    summaries = [run_batch(i, b, cfg) for i, b in enumerate(B.make_batches(covers, cfg))]
    B.finalize(cfg, [s["key"] for s in summaries], rejects)
    summary = merge_summaries(summaries)
    from symmv.card.writer import write_card
    write_card(cfg.out, cfg.card_dir)  # the flow writes its card too: compare like with like
else:
    from flows.build import build_symmv
    summary = build_symmv(config=cfg)
wall = time.perf_counter() - started
print(json.dumps({{"wall_s": wall, "songs": summary["songs"], "rejects": summary["rejects"],
                  "cache_misses": sum(summary["cache_misses"].values()), "cache_hits": sum(summary["cache_hits"].values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def one_build(src: Path, out: Path, cache: Path, home: Path, batch: int, workers: int, plain: bool) -> dict:
    code = RUN.format(repo=str(REPO), home=str(home), src=str(src), out=str(out), cache=str(cache), batch=batch,
                      workers=workers, plain=plain)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--release", type=Path, default=None, help="build the real SymMV release instead of synthetic songs")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["prefect", "plain_loop", "second_build_new_out"],
                    help="which builds to run per N (a 10k-song run may take only 'prefect')")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "build_scale.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.songs:
            if args.release:
                src = tmp / f"release-{n}"
                (src / "midi").mkdir(parents=True)
                lines = (args.release / "SymMV.csv").read_text().splitlines()
                (src / "SymMV.csv").write_text("\n".join(lines[: n + 1]) + "\n")
                for line in lines[1: n + 1]:
                    index = line.split("\t")[0].strip()
                    if (args.release / "midi" / f"{index}.mid").is_file():
                        os.symlink(args.release / "midi" / f"{index}.mid", src / "midi" / f"{index}.mid")
            else:
                src = synthetic_release(tmp / f"synthetic-{n}", n)
            row = {"n": n, "source": "symmv-release" if args.release else "synthetic"}
            for mode, plain in (("prefect", False), ("plain_loop", True)):  # side by side, each with a cold cache
                if mode in args.modes:
                    row[mode] = one_build(src, tmp / f"out-{mode}-{n}", tmp / f"cache-{mode}-{n}", tmp / "prefect",
                                          args.batch_size, args.workers, plain)
            if "second_build_new_out" in args.modes:  # same source, same cache, a new --out
                row["second_build_new_out"] = one_build(src, tmp / f"out-again-{n}", tmp / f"cache-prefect-{n}",
                                                        tmp / "prefect", args.batch_size, args.workers, False)
            if "prefect" in row and "plain_loop" in row:
                row["prefect_overhead_share"] = round(1 - row["plain_loop"]["wall_s"] / row["prefect"]["wall_s"], 4)
            if "prefect" in row and "second_build_new_out" in row:
                row["second_build_time_ratio"] = round(row["second_build_new_out"]["wall_s"] / row["prefect"]["wall_s"], 4)
            print(json.dumps(row), flush=True)
            results.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "batch_size": args.batch_size, "workers": args.workers,
                                    "note": "plain_loop runs batches one after another in one process; prefect maps "
                                            "them on the threads runner with `workers` threads (1: the same sequence, so the gap is Prefect)",
                                    "results": results, "load_avg_at_end": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
