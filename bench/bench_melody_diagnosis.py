"""Why does the generated melody collapse? The melody stage's pitch distribution, teacher-forced on the
release's test songs, before and after the sampler's transform, and free-running pieces per sampling setting.

    .venv/bin/python bench/bench_melody_diagnosis.py [--ckpt models/checkpoints/cpu] [--name melody_diagnosis]

Teacher-forced (the model sees the real past, so nothing compounds): per melody note, the model's probability
of repeating the previous melody pitch, of a leap (>= 5 semitones) and its expected |interval|, under the raw
distribution (temperature 1, top-p 1) and under the sampler's settings (temperature x scale, nucleus) -
against what the real next note did. Free-running (the model sees its own past): melody spread, range,
repeats and intervals of pieces sampled with each setting. Writes bench/results/<name>.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_music import real_clips  # noqa: E402
from bench.bench_realism import generate_pieces, mean_of, statistics_of  # noqa: E402
from bench.common import write_result  # noqa: E402
from models.training.corrections import teacher_forced as teacher_forced_probs  # noqa: E402
from models.training import data as D  # noqa: E402
from models import tokens as tk  # noqa: E402
from models.networks.checkpoint import load_model  # noqa: E402
from models.generation.sample import SamplingConfig  # noqa: E402

KEYS = ("melody_pitch_std", "melody_range", "interval_repeat_share", "interval_abs_mean", "interval_leap_share",
        "melody_notes_per_bar", "short_note_share", "melody_bar_repeat", "SC", "PE")


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(N, V) probabilities -> the nucleus-truncated, renormalised ones (as models.generation.sample.sample_logits)."""
    sorted_p, order = probs.sort(-1, descending=True)
    keep = (sorted_p.cumsum(-1) - sorted_p) < top_p
    out = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
    return out / out.sum(-1, keepdim=True)


def teacher_forced(model, examples, temperature: float, top_p: float, max_windows: int = 256) -> dict:
    stats = {k: [] for k in ("raw_repeat", "sampled_repeat", "raw_leap", "sampled_leap", "raw_abs", "sampled_abs",
                             "real_repeat", "real_leap", "real_abs", "raw_entropy", "sampled_entropy")}
    pitches = torch.arange(tk.VOCAB["pitch"]) - 1
    for tokens, probs, _ in teacher_forced_probs(model, examples, "pitch", max_windows):
        prev = None
        for t in np.flatnonzero(tokens[:, 0] == tk.NOTE):
            pitch = int(tokens[t, tk.F["pitch"]]) - 1
            if prev is not None:
                raw = torch.as_tensor(probs[t - 1])  # over the stage's pitch range, as the sampler draws
                tempered = raw ** (1.0 / temperature)  # = softmax(logits / temperature)
                samp = nucleus((tempered / tempered.sum())[None], top_p)[0]
                dist = (pitches - prev).abs().float()
                for name, p in (("raw", raw), ("sampled", samp)):
                    stats[f"{name}_repeat"].append(float(p[1 + prev]))
                    stats[f"{name}_leap"].append(float(p[dist >= 5].sum()))
                    stats[f"{name}_abs"].append(float((p * dist).sum()))
                    nz = p[p > 0]
                    stats[f"{name}_entropy"].append(float(-(nz * nz.log()).sum()))
                stats["real_repeat"].append(float(pitch == prev))
                stats["real_leap"].append(float(abs(pitch - prev) >= 5))
                stats["real_abs"].append(float(abs(pitch - prev)))
            prev = pitch
    return {k: float(np.mean(v)) for k, v in stats.items()} | {"n_notes": len(stats["real_abs"])}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="models/checkpoints/cpu")
    p.add_argument("--release", default="data/symmv-release")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--name", default="melody_diagnosis")
    args = p.parse_args(argv)
    tables = D.load_tables(args.release, splits=("test",))
    test_ex = D.build_examples(tables, "test")
    model = load_model(Path(args.ckpt) / "melody")
    default = SamplingConfig()
    t_pitch = default.temperature_scale.get("pitch", 1.0)
    tf = {"raw (T 1, top-p 1)": teacher_forced(model, test_ex, 1.0, 1.0),
          f"sampler (T {t_pitch}, top-p {default.top_p})": teacher_forced(model, test_ex, t_pitch, default.top_p)}
    real = real_clips(args.release, 30.0, 0, where="random")
    out = {"teacher_forced": tf, "real": {k: mean_of(statistics_of(real, 30.0), k) for k in KEYS}, "free_running": {}}
    no_perf = dict(form=False, dynamics=False)
    variants = {
        "pitch T 0.8, top-p 0.9 (issue-14 default)": SamplingConfig(**no_perf),
        "pitch T 1.0, top-p 0.9": SamplingConfig(temperature_scale={"root": 0.85, "quality": 0.85}, **no_perf),
        "pitch T 1.0, top-p 1.0": SamplingConfig(temperature_scale={"root": 0.85, "quality": 0.85},
                                                 top_p_override={**default.top_p_override, "pitch": 1.0}, **no_perf),
    }
    for name, cfg in variants.items():
        pieces, _ = generate_pieces(args.ckpt, real, args.n, 30.0, 3000, cfg)
        rows = statistics_of(pieces, 30.0)
        out["free_running"][name] = {k: mean_of(rows, k) for k in KEYS}
    write_result(args.name, {"inputs": {"ckpt": args.ckpt, "release": args.release, "n": args.n}, **out})
    for k, v in out.items():
        print(k, v)
    return out


if __name__ == "__main__":
    main()
