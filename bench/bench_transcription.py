"""Speed beside accuracy of the transcription backends and the beat tracker (CPU).

Renders the evaluation clips of symmv.evaluation.transcription (music21 works + SymMV release MIDI through
fluidsynth), runs each backend configuration `--repeats` times per clip and writes medians of the
realtime factor (audio seconds / wall seconds; also per process-CPU second, steadier on a shared machine)
next to onset F1, with the machine description, to bench/results/transcription.json.

    python bench/bench_transcription.py --configs basic-pitch transkun transkun-wheel --clips 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from symmv.evaluation.transcription import audio_seconds, build_eval_set, note_scores, timed  # noqa: E402

CONFIGS = {  # name -> (backend, options)
    "basic-pitch": ("basic-pitch", {}),
    "transkun": ("transkun", {}),  # our defaults: 16 s segments every 14 s
    "transkun-wheel": ("transkun", {"segment_hop_s": 8.0}),  # the wheel's own: 16 s segments every 8 s
    "transkun-hop12": ("transkun", {"segment_hop_s": 12.0}),
    "transkun-int8": ("transkun", {"quantize": True}),
    "transkun-hop14": ("transkun", {"segment_hop_s": 14.0}),  # = "transkun", named for old result files
    "pti": ("pti", {}),
}


def machine_info() -> dict:
    import torch

    return {**machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]}


def bench_backend(clips, name: str, repeats: int) -> dict:
    from symmv.transcription.backends import get_backend

    backend, options = CONFIGS[name]
    model, load_wall, _ = timed(get_backend, backend, **options)
    per_clip = []
    for clip in clips:
        runs = [timed(model.transcribe, clip.wav_path) for _ in range(repeats)]
        notes = runs[0][0]
        audio_s = audio_seconds(clip.wav_path)
        scores = note_scores(clip.notes, notes)
        per_clip.append({
            "clip": clip.name, "audio_s": audio_s,
            "wall_s": float(np.median([r[1] for r in runs])), "cpu_s": float(np.median([r[2] for r in runs])),
            "onset_f1": scores["onset_f1"], "onset_offset_f1": scores["onset_offset_f1"]})
        print(name, per_clip[-1], flush=True)
    total_audio = sum(r["audio_s"] for r in per_clip)
    return {
        "backend": backend, "options": options, "version": model.version, "model_load_s": load_wall,
        "repeats": repeats,
        "median_realtime_factor": float(np.median([r["audio_s"] / r["wall_s"] for r in per_clip])),
        "median_audio_s_per_cpu_s": float(np.median([r["audio_s"] / r["cpu_s"] for r in per_clip])),
        "total_audio_s": total_audio,
        "median_onset_f1": float(np.median([r["onset_f1"] for r in per_clip])),
        "median_onset_offset_f1": float(np.median([r["onset_offset_f1"] for r in per_clip])),
        "per_clip": per_clip,
    }


def bench_beats(clips, repeats: int) -> dict:
    from annotators.beats import track_beats

    per_clip = []
    for clip in clips:
        runs = [timed(track_beats, clip.wav_path) for _ in range(repeats)]
        per_clip.append({"clip": clip.name, "audio_s": audio_seconds(clip.wav_path),
                         "wall_s": float(np.median([r[1] for r in runs])),
                         "cpu_s": float(np.median([r[2] for r in runs]))})
    return {"tracker": runs[0][0].tracker, "version": runs[0][0].version, "repeats": repeats,
            "median_realtime_factor": float(np.median([r["audio_s"] / r["wall_s"] for r in per_clip])),
            "median_audio_s_per_cpu_s": float(np.median([r["audio_s"] / r["cpu_s"] for r in per_clip])),
            "per_clip": per_clip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["basic-pitch", "transkun", "transkun-wheel"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clips", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--names", nargs="*", default=None, help="use only clips with these names")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "transcription.json"))
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clips = build_eval_set(args.workdir or tempfile.mkdtemp(prefix="symmv-bench-"), args.seconds)[: args.clips]
    clips = [c for c in clips if args.names is None or c.name in args.names]
    result = {"benchmark": "transcription", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine_info(), "inputs": {"clips": [c.name for c in clips], "seconds": args.seconds,
                                                    "sample_rate": 44100, "soundfont": "TimGM6mb"},
              "transcription": {}, "beats": None}
    for name in args.configs:
        try:
            result["transcription"][name] = bench_backend(clips, name, args.repeats)
        except (FileNotFoundError, ImportError) as err:
            result["transcription"][name] = {"error": str(err)}
    result["beats"] = bench_beats(clips, args.repeats)
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: {kk: v.get(kk) for kk in ("median_realtime_factor", "median_audio_s_per_cpu_s",
                                                   "median_onset_f1")} if isinstance(v, dict) else v
                      for k, v in result["transcription"].items()}, indent=1))


if __name__ == "__main__":
    main()
