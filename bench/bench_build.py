"""Demo build wall time per song and per stage (issue: the spine's first benchmark).

Runs the real `build-symmv` flow over the offline demo source (built first if missing) into a fresh
folder, `--repeats` times, and writes bench/results/build.json: wall time of the flow (median), per song,
and per stage (medians of the per-song stage times, from the flow's own build report).

    .venv/bin/python bench/bench_build.py [--songs 20] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result  # noqa: E402
from symmv.pipeline.config import BuildConfig, prefect_defaults  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default="data/demo-source")
    parser.add_argument("--songs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    prefect_defaults()
    from flows.build import build_symmv
    from symmv.sources.demo import DemoCorpusConfig, build_demo_corpus
    from symmv.transcription.backends import default_backend

    source = Path(args.source)
    build_demo_corpus(DemoCorpusConfig(out=source, n_songs=args.songs), progress=False)
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = BuildConfig(source_dir=source, out=Path(tmp) / "ds", card_dir=Path(tmp) / "cards",
                              limit=args.songs, workers=args.workers, progress=False)
            started = time.perf_counter()
            summary = build_symmv(config=cfg)
            total = time.perf_counter() - started
            runs.append({"process_wall_s": total, "flow_wall_s": summary["wall_s"], "songs": summary["songs"],
                         "rejects": summary["rejects"], "stage_s": summary["stage_s"],
                         "reject_reasons": summary["reject_reasons"], "splits": summary["splits"],
                         "split_overrides": summary.get("split_overrides", {}),
                         "part_files": sorted(str(f.relative_to(cfg.out)) for f in cfg.out.glob("*/split=*/part-*.parquet")
                                              if f.parts[-3] in ("songs", "notes", "rejects"))})
    covers = args.songs
    flow_wall = statistics.median(r["flow_wall_s"] for r in runs)
    write_result("build", {
        "inputs": {"source": str(source), "covers": covers, "workers": args.workers, "repeats": args.repeats,
                   "transcriber": BuildConfig.transcriber or default_backend(), "semantic_encoder": BuildConfig.semantic_encoder},
        "median_flow_wall_s": flow_wall,
        "median_process_wall_s": statistics.median(r["process_wall_s"] for r in runs),
        "flow_wall_s_per_cover": flow_wall / covers,
        "median_stage_s_per_song": {k: v["median_s"] for k, v in runs[-1]["stage_s"].items()},
        "runs": runs,
    })
    print(json.dumps(runs[-1]["stage_s"], indent=1))


if __name__ == "__main__":
    main()
