"""Speed beside accuracy of the transcription backends and the beat tracker (CPU).

Renders the evaluation clips of symmv.evaluation.transcription (music21 works + SymMV release MIDI through
fluidsynth), runs each backend configuration `--repeats` times per clip and writes medians of the
realtime factor (audio seconds / wall seconds; also per process-CPU second, steadier on a shared machine)
next to onset F1 against the MIDI truth and against the notes of the first configuration given (the
reference, by default the unmodified Transkun), with the machine description, to
bench/results/transcription.json.

The Transkun speed-up steps, side by side in one run (each adds one change to the one before):

    python bench/bench_transcription.py --threads 2 --no-beats --names bach/bwv66.6 joplin/maple_leaf_rag \
        symmv/00001 symmv/00002 symmv/00003 --configs transkun-wheel transkun-hop14 transkun-batch4 \
        transkun-sdpa4d transkun-bf16 transkun basic-pitch --out bench/results/transcription_speedup.json
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

PER_SEGMENT = {"batch_segments": 0}  # transkun's own transcribeFrames, one segment at a time
BATCHED = {"batch_segments": 4, "flash_attention": False, "bf16": False, "skip_tail": False}
CONFIGS = {  # name -> (backend, options)
    "basic-pitch": ("basic-pitch", {}),
    "transkun": ("transkun", {}),  # our defaults (symmv.transcription.transkun): the final variant
    "transkun-wheel": ("transkun", {"segment_hop_s": 8.0, **PER_SEGMENT}),  # unmodified: 16 s every 8 s
    "transkun-hop12": ("transkun", {"segment_hop_s": 12.0, **PER_SEGMENT}),
    "transkun-int8": ("transkun", {"quantize": True, **PER_SEGMENT}),
    "transkun-hop14": ("transkun", {"segment_hop_s": 14.0, **PER_SEGMENT}),  # 16 s segments every 14 s
    # the speed-up steps, each on top of the one before
    "transkun-batch4": ("transkun", BATCHED),  # 4 segments per forward, batched Viterbi recursion
    "transkun-sdpa4d": ("transkun", {**BATCHED, "flash_attention": True}),  # torch's fused CPU attention
    "transkun-bf16": ("transkun", {**BATCHED, "flash_attention": True, "bf16": True}),  # bf16 transformer
    # + skip_tail (no segment of only zero padding) = "transkun" (bf16 only where the CPU has it natively)
    "transkun-fp32": ("transkun", {"bf16": False}),  # the default's two precisions side by side
    "transkun-bf16-on": ("transkun", {"bf16": True}),
    "pti": ("pti", {}),
}


def machine_info() -> dict:
    import torch

    from symmv.transcription.transkun import native_bf16

    return {**machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16(),
            "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]}


def bench_backend(clips, name: str, repeats: int, reference: dict | None = None) -> tuple[dict, dict]:
    """(result, {clip name: notes}); `reference` holds another configuration's notes per clip."""
    from symmv.transcription.backends import get_backend

    backend, options = CONFIGS[name]
    model, load_wall, _ = timed(get_backend, backend, **options)
    per_clip, notes_by_clip = [], {}
    for clip in clips:
        runs = [timed(model.transcribe, clip.wav_path) for _ in range(repeats)]
        notes = notes_by_clip[clip.name] = runs[0][0]
        audio_s = audio_seconds(clip.wav_path)
        scores = note_scores(clip.notes, notes)
        row = {"clip": clip.name, "audio_s": audio_s,
               "wall_s": float(np.median([r[1] for r in runs])), "cpu_s": float(np.median([r[2] for r in runs])),
               "onset_f1": scores["onset_f1"], "onset_offset_f1": scores["onset_offset_f1"],
               "n_notes": len(notes)}
        if reference is not None:
            row["onset_f1_vs_reference"] = note_scores(reference[clip.name], notes)["onset_f1"]
        row["realtime_factor"] = audio_s / row["wall_s"]
        row["cpu_s_per_audio_s"] = row["cpu_s"] / audio_s
        per_clip.append(row)
        print(name, per_clip[-1], flush=True)
    total_audio = sum(r["audio_s"] for r in per_clip)

    def median(key):
        return float(np.median([r[key] for r in per_clip]))

    result = {
        "backend": backend, "options": options, "version": model.version, "model_load_s": load_wall,
        "repeats": repeats,
        "median_realtime_factor": median("realtime_factor"),
        "median_audio_s_per_cpu_s": float(np.median([r["audio_s"] / r["cpu_s"] for r in per_clip])),
        "median_cpu_s_per_audio_s": median("cpu_s_per_audio_s"),
        "total_audio_s": total_audio,
        "total_realtime_factor": total_audio / sum(r["wall_s"] for r in per_clip),
        "total_cpu_s_per_audio_s": sum(r["cpu_s"] for r in per_clip) / total_audio,
        "median_onset_f1": median("onset_f1"),
        "median_onset_offset_f1": median("onset_offset_f1"),
        "per_clip": per_clip,
    }
    if reference is not None:
        result["median_onset_f1_vs_reference"] = median("onset_f1_vs_reference")
        result["min_onset_f1_vs_reference"] = float(min(r["onset_f1_vs_reference"] for r in per_clip))
    for source in ("music21", "symmv"):  # classical pieces vs rendered release covers
        rows = [r for r in per_clip if r["clip"].startswith("symmv/") == (source == "symmv")]
        if rows:
            result[f"mean_onset_f1_{source}"] = float(np.mean([r["onset_f1"] for r in rows]))
    return result, notes_by_clip


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
    parser.add_argument("--no-beats", action="store_true", help="skip the beat tracker")
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
    result["reference"] = args.configs[0]  # onset_f1_vs_reference compares with its notes
    reference = None
    for name in args.configs:
        try:
            result["transcription"][name], notes = bench_backend(clips, name, args.repeats, reference)
        except (FileNotFoundError, ImportError) as err:
            result["transcription"][name] = {"error": str(err)}
            continue
        reference = reference or notes
    if not args.no_beats:
        result["beats"] = bench_beats(clips, args.repeats)
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: {kk: v.get(kk) for kk in ("total_realtime_factor", "total_cpu_s_per_audio_s",
                                                   "median_onset_f1", "median_onset_f1_vs_reference")}
                      if isinstance(v, dict) else v
                      for k, v in result["transcription"].items()}, indent=1))


if __name__ == "__main__":
    main()
