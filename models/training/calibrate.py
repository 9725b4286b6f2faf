"""Calibrate the sampler's corrections on free-running pieces (the second half of models/generation/contour.py).

The corrections of models/generation/contour.py divide the data's distribution of a musical quantity by the model's,
teacher-forced. What teacher forcing cannot see is the drift of free running, where the model reads its own past:
after them the shipped pieces still left the key more (SC 0.960 vs 0.984) and sat their accompaniment 2-3 semitones
low although the teacher-forced ratio for its distance below the melody was ~1 (bench/results/realism.json). So the
same quantities are counted on pieces the sampler actually writes, and each correction moves by the remaining
log ratio, damped, a few rounds (iterative proportional fitting of the sampler to the data's marginals):

    correction += damping * [log p_data(x) - log p_generated(x)]

p_data: the training songs in 16-bar windows (a clip's length); p_generated: `n_pieces` 30 s pieces, null video, at
training songs' tempos, seeds 90000+ (never the benchmark's). Quantities: the melodic interval by previous interval
class, the chord-relative pitch class per quality, in / out of the progression's key and the register (per note
stage), the melody's inter-onset intervals, the accompaniment's distance below the melody, its note durations and how many of its notes start
together (a log-odds correction of "one more note at this onset" on the token type).

    python -m models.training.calibrate --ckpt checkpoints/train-shipped --data data/symmv-release [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from models.generation.contour import (CLASSES, MAX_BELOW, MAX_INTERVAL, N_INTERVALS, chord_scale, interval_class,
                            melody_top_steps)
from models.generation.dynamics import MAX_IOI_16TH
from models.music import grid_step, melody_line, sounding
from models.tokens import MAX_DURATION_16TH

MAX_ONSET = 4  # accompaniment notes starting together, counted up to this
QUALITY_ROWS = ("M", "m", "7", "M7", "m7", "o", "o7", "+", "sus2", "sus4", "none")  # HarmonyModel.qualities


def histograms(melody, accompaniment, chords) -> dict[str, np.ndarray]:
    """Counts of every calibrated quantity in one piece (quantized notes per track, ChordEvents)."""
    h = {"contour": np.zeros((len(CLASSES), N_INTERVALS)), "below": np.zeros(MAX_BELOW + 1),
         "onset_size": np.zeros(MAX_ONSET + 1)}
    per_onset: dict[int, int] = defaultdict(int)
    for n in accompaniment:
        per_onset[grid_step(n)] += 1
    for k in per_onset.values():
        h["onset_size"][min(k, MAX_ONSET)] += 1
    for stage in ("melody", "accompaniment"):
        h[f"harmony.{stage}"], h[f"scale.{stage}"] = np.zeros((len(QUALITY_ROWS), 12)), np.zeros(2)
        h[f"register.{stage}"] = np.zeros(128)
    h["ioi.melody"] = np.zeros(1 + MAX_IOI_16TH)
    h["duration.accompaniment"] = np.zeros(1 + MAX_DURATION_16TH)
    for n in accompaniment:
        h["duration.accompaniment"][min(max(1, int(n.duration_16th or 1)), MAX_DURATION_16TH)] += 1
    line = melody_line(melody)
    for a, b in zip(line, line[1:]):
        h["ioi.melody"][min(grid_step(b) - grid_step(a), MAX_IOI_16TH)] += 1
    prev_iv = None
    for a, b in zip(line, line[1:]):
        iv = b.pitch - a.pitch
        if abs(iv) <= MAX_INTERVAL:
            h["contour"][interval_class(prev_iv), iv + MAX_INTERVAL] += 1
        prev_iv = iv
    chord_at = sounding(chords)
    scale = chord_scale([(c.root, c.quality) for c in chords])
    top = melody_top_steps(melody)
    for stage, notes in (("melody", line), ("accompaniment", accompaniment)):
        for n in notes:
            h[f"register.{stage}"][n.pitch] += 1
            c = chord_at(grid_step(n))
            if c is None:
                continue
            rooted = c.root >= 0 and c.quality in QUALITY_ROWS
            h[f"harmony.{stage}"][QUALITY_ROWS.index(c.quality if rooted else "none"),
                                  (n.pitch - (c.root if rooted else 0)) % 12] += 1
            if scale is not None:
                h[f"scale.{stage}"][0 if scale[n.pitch % 12] else 1] += 1
            if stage == "accompaniment" and grid_step(n) in top:
                h["below"][int(np.clip(top[grid_step(n)] - n.pitch, 0, MAX_BELOW))] += 1
    return h


def total(hs) -> dict[str, np.ndarray]:
    out = defaultdict(float)
    for h in hs:
        for k, v in h.items():
            out[k] = out[k] + v
    return dict(out)


def data_histograms(examples, window_bars: int = 16) -> dict[str, np.ndarray]:
    """The training songs cut into clip-length windows (the chords' key is a window's, as in a clip)."""
    hs = []
    for ex in examples:
        for b0 in range(0, max(1, ex.n_bars), window_bars):
            inside = lambda e: b0 <= e.bar < b0 + window_bars  # noqa: E731
            hs.append(histograms([n for n in ex.melody if inside(n)], [n for n in ex.accompaniment if inside(n)],
                                 [c for c in ex.chords if inside(c)]))
    return total(hs)


def log_ratio(data: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """log p_data - log p_generated along the last axis, add-one smoothed."""
    p = (data + 1) / (data + 1).sum(-1, keepdims=True)
    q = (generated + 1) / (generated + 1).sum(-1, keepdims=True)
    return np.log(p) - np.log(q)


def continuation_log_odds(data: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """(MAX_ONSET,): at k notes (index k, 1..), logit P_data(more than k | at least k) - the same for generated."""
    out = np.zeros(MAX_ONSET)
    for k in range(1, MAX_ONSET):
        def logit(h):
            at_least, more = h[k:].sum() + 1, h[k + 1:].sum() + 0.5
            p = min(max(more / at_least, 1e-3), 1 - 1e-3)
            return np.log(p / (1 - p))
        out[k] = logit(data) - logit(generated)
    return out


def generated_histograms(models: dict, examples, n_pieces: int, seed: int = 90000) -> dict[str, np.ndarray]:
    from models.generation.generate import generate_music

    rng = np.random.default_rng(seed)
    tempos = [ex.tempo_bpm for ex in examples if ex.tempo_bpm]
    video = {}
    chord = models["chord"]
    if getattr(chord, "controller", None) is not None:
        c = chord.cfg.controller
        video = {"semantic": np.zeros((1, c.semantic_dim), np.float32), "color": np.zeros((1, c.color_dim), np.float32)}
    hs = []
    for i in range(n_pieces):
        feats = {"video_tempo_bpm": float(rng.choice(tempos)), "duration_s": 30.0, **video}
        notes, chords = generate_music(feats, None, seed=seed + 7 * i, models=models, return_chords=True)
        hs.append(histograms([n for n in notes if n.track == "melody"],
                             [n for n in notes if n.track == "accompaniment"], chords))
    return total(hs)


def calibrate(ckpt_dir: str | Path, examples, *, rounds: int = 4, n_pieces: int = 96, damping: float = 0.5,
              log=print, stage_models: dict | None = None) -> dict:
    """Update contour.json / harmony-<stage>.json in `ckpt_dir` in place (`rounds` rounds; `stage_models` the
    folder's stages if the caller has them loaded); returns the per-round gaps (total variation distance, data vs generated, per quantity)."""
    from models.networks.checkpoint import CALIBRATION_FILE, CONTOUR_FILE, HARMONY_FILE, load_model
    from models.generation.generate import performance_models

    ckpt_dir = Path(ckpt_dir)
    stage_models = stage_models or {s: load_model(ckpt_dir / s) for s in ("chord", "melody", "accompaniment")}
    data = data_histograms(examples)
    history = []
    for r in range(rounds + 1):
        models = {**stage_models, **performance_models(ckpt_dir)}
        gen = generated_histograms(models, examples, n_pieces)
        gap = {k: float(0.5 * np.abs(data[k] / data[k].sum() - gen[k] / gen[k].sum()).sum()) for k in data}
        history.append(gap)
        log(f"calibration round {r}: " + ", ".join(f"{k} {v:.3f}" for k, v in gap.items()))
        if r == rounds:
            break
        contour, step = models["contour"], {k: damping * log_ratio(data[k], gen[k]) for k in data}
        base = np.asarray(contour.model_log_probs if contour.model_log_probs is not None
                          else np.zeros_like(contour.log_probs))
        contour.model_log_probs = np.round(base - step["contour"], 4).tolist()
        contour.save(ckpt_dir / CONTOUR_FILE)
        for stage in ("melody", "accompaniment"):
            h = models[f"harmony.{stage}"]
            assert tuple(h.qualities) == QUALITY_ROWS
            h.log_ratio = np.round(np.asarray(h.log_ratio) + step[f"harmony.{stage}"], 4).tolist()
            h.scale_log_ratio = np.round(np.asarray(h.scale_log_ratio) + step[f"scale.{stage}"], 4).tolist()
            if stage == "melody":
                ioi = np.asarray(h.ioi_log_ratio) if h.ioi_log_ratio is not None else np.zeros(1 + MAX_IOI_16TH)
                h.ioi_log_ratio = np.round(ioi + step["ioi.melody"], 4).tolist()
            reg = np.asarray(h.register_log_ratio) if h.register_log_ratio is not None else np.zeros(128)
            h.register_log_ratio = np.round(reg + step[f"register.{stage}"], 4).tolist()
            if stage == "accompaniment" and h.below_log_ratio is not None:
                h.below_log_ratio = np.round(np.asarray(h.below_log_ratio) + step["below"], 4).tolist()
            if stage == "accompaniment":
                dur = np.asarray(h.duration_log_ratio) if h.duration_log_ratio is not None else np.zeros(1 + MAX_DURATION_16TH)
                h.duration_log_ratio = np.round(dur + step["duration.accompaniment"], 4).tolist()
                odds = np.asarray(h.onset_log_odds) if h.onset_log_odds is not None else np.zeros(MAX_ONSET)
                h.onset_log_odds = np.round(odds + damping * continuation_log_odds(data["onset_size"],
                                                                                   gen["onset_size"]), 4).tolist()
            h.save(ckpt_dir / HARMONY_FILE.format(stage=stage))
    summary = {"rounds": rounds, "n_pieces": n_pieces, "damping": damping, "gap_by_round": history}
    (ckpt_dir / CALIBRATION_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> None:
    from models.training import data as D

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="a run folder with the stages and the performance models")
    p.add_argument("--data", required=True, help="the dataset the run trained on (its train split is used)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--pieces", type=int, default=96)
    p.add_argument("--damping", type=float, default=0.5)
    a = p.parse_args(argv)
    examples = D.build_examples(D.load_tables(a.data, splits=("train",)), "train")
    calibrate(a.ckpt, examples, rounds=a.rounds, n_pieces=a.pieces, damping=a.damping)


if __name__ == "__main__":
    main()
