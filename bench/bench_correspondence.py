"""The correspondence benchmark's own checks, without generating anything (issue 14, item 5).

1. Does VMCP, trained on the benchmark's train split, retrieve a real piece's own video among M candidates on
   the held-out split (real pairs vs the same pairs shuffled)? If not, no Table 2 row can be told apart.
2. Do the chord stages that read the video predict the held-out chords better than the one that does not?
   (validation cross-entropy per attribute, from the `models.evaluation.variants` run's variants.json: the colour carries
   the chord root by construction, so a stage that reads it should beat "w/o video" on `root`.)

    .venv/bin/python bench/bench_correspondence.py --data data/correspondence \
        --vmcp reports/correspondence/vmcp --variants checkpoints/table2

Writes bench/results/correspondence.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result  # noqa: E402
from models.evaluation import evaluate as E  # noqa: E402
from models.evaluation import vmcp as V  # noqa: E402

CHORD_FOLDERS = ("chord", "chord-no-semantic", "chord-no-color", "chord-unconditional")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/correspondence")
    p.add_argument("--vmcp", default="reports/correspondence/vmcp", help="a trained VMCP checkpoint folder")
    p.add_argument("--variants", default="checkpoints/table2", help="a models.evaluation.variants checkpoint directory")
    p.add_argument("--split", default="test")
    p.add_argument("--m", type=int, default=70)
    args = p.parse_args()
    t0 = time.time()
    cfg = E.eval_config(split=args.split, m=args.m)
    songs = E.load_eval_songs(args.data, args.split)
    model = V.load_vmcp(args.vmcp)
    videos = E.vmcp_videos(model, songs)
    musics = [V.music_clip_from_notes(s.notes) for s in songs]
    check = V.shuffled_pair_check(model, videos, musics, cfg.m, cfg.seed)
    runs = json.loads((Path(args.variants) / "variants.json").read_text())["summaries"]
    chord = {f: {"val": runs[f]["best_val"], "val_attributes": runs[f]["best_val_attributes"], "steps": runs[f]["steps"]}
             for f in CHORD_FOLDERS if f in runs}
    write_result("correspondence", {
        "inputs": {"data": args.data, "split": args.split, "n_videos": len(songs), "vmcp": args.vmcp,
                   "vmcp_config": json.loads((Path(args.vmcp) / "config.json").read_text())["config"],
                   "variants": args.variants},
        "vmcp_real_vs_shuffled": check,
        "chord_stage_validation": chord, "wall_s": time.time() - t0})
    real, shuffled = check["real"], check["shuffled"]
    print(f"VMCP on {len(songs)} {args.split} pairs, M = {real['M']}: real AR {real['AR']:.1f}, shuffled "
          f"{shuffled['AR']:.1f}, chance {real['AR_chance']:.1f}")


if __name__ == "__main__":
    main()
