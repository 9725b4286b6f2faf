"""Fit the sampler's data-vs-model corrections (models/generation/contour.py) on the training songs.

Each correction is a log ratio of the data's distribution of a musical quantity to the trained model's own,
teacher-forced on training windows: `fit_model_marginal` (the melody's intervals, ContourModel), `fit_harmony`
(chord-relative pitch classes, HarmonyModel), `fit_key` (chord roots relative to the first chord, KeyModel).
models.training.train.fit_performance runs them after the stages are trained; the sampler only reads the result.
"""
from __future__ import annotations

import numpy as np
import torch

from models import tokens as tk
from models.config import TrainConfig
from models.generation.contour import (CLASSES, MAX_BELOW, MAX_INTERVAL, MINOR_LIKE, N_INTERVALS, ContourModel,
                                       HarmonyModel, KeyModel, chord_scale, interval_class, melody_top_steps)
from models.training import data as D


def teacher_forced(model, examples, attr: str, max_windows: int, batch_size: int = 16):
    """Yield (tokens (T, F), probs (T-1, V), condition tokens or None) per window: the model's distribution of
    `attr` at each step, teacher-forced on `max_windows` windows of 16 bars of `examples` (pitches restricted
    to the stage's pitch range, as the sampler does). probs[t - 1] is the prediction of tokens[t]."""
    items = D.windows(examples, model.cfg, TrainConfig(window_bars=16, max_val_windows=max_windows), rng=None)
    with torch.no_grad():
        for batch in D.batches(items, batch_size):
            tokens = batch["tokens"]
            logits = model.heads(model.decode(tokens[:, :-1], model.context(batch)), tokens[:, 1:, 0])[attr].float()
            if attr == "pitch":
                lo, hi = model.cfg.pitch_range
                mask = torch.full((logits.shape[-1],), float("-inf"))
                mask[1 + lo: 2 + hi] = 0
                logits = logits + mask
            probs = torch.softmax(logits, -1).numpy()  # (B, T-1, V)
            for b in range(len(tokens)):
                cond = batch["cond_tokens"][b].numpy() if "cond_tokens" in batch else None
                yield tokens[b].numpy(), probs[b], cond



def fit_model_marginal(contour: ContourModel, model, examples, max_windows: int = 256, batch_size: int = 16) -> ContourModel:
    """The melody model's mean interval distribution per class, teacher-forced on `max_windows` windows of
    `examples` (training songs), stored in `contour.model_log_probs` (returned)."""
    sums = np.full((len(CLASSES), N_INTERVALS), 1e-3)
    n = 0
    for tokens, probs, _ in teacher_forced(model, examples, "pitch", max_windows, batch_size):
        prev, prev_iv = None, None
        for t in np.flatnonzero(tokens[:, 0] == tk.NOTE):
            pitch = int(tokens[t, tk.F["pitch"]]) - 1
            if prev is not None and t > 0:
                window = np.arange(1 + prev - MAX_INTERVAL, 2 + prev + MAX_INTERVAL)
                ok = (window >= 0) & (window < probs.shape[-1])
                row = np.zeros(N_INTERVALS)
                row[ok] = probs[t - 1, window[ok]]
                sums[interval_class(prev_iv)] += row
                n += 1
                prev_iv = pitch - prev
            prev = pitch
    contour.model_log_probs = np.round(np.log(sums / sums.sum(1, keepdims=True)), 4).tolist()
    contour.n_model_notes = n
    return contour



def fit_harmony(model, examples, max_windows: int = 256, batch_size: int = 16) -> HarmonyModel:
    """Data and teacher-forced model distributions of the chord-relative pitch class of the stage's notes, on
    `max_windows` windows of `examples` (training songs) -> the log ratio per chord quality."""
    qualities = [q for q in tk.QUALITIES if q not in tk.NO_CHORD_QUALITIES] + ["none"]
    data = np.ones((len(qualities), 12))
    mass = np.full((len(qualities), 12), 1e-3)
    scale_data, scale_mass = np.ones(2), np.full(2, 1e-3)
    below_data, below_mass = np.ones(MAX_BELOW + 1), np.full(MAX_BELOW + 1, 1e-3)
    accompaniment = model.cfg.stage == "accompaniment"
    n = 0
    for rows, probs, cond in teacher_forced(model, examples, "pitch", max_windows, batch_size):
        pcs = (np.arange(probs.shape[-1]) - 1) % 12
        window_chords = [(int(r[tk.F["root"]]) - 1 if 1 <= r[tk.F["root"]] <= 12 else -1,
                          tk.QUALITIES[int(r[tk.F["quality"]]) - 1] if r[tk.F["quality"]] else "X")
                         for r in rows if r[0] == tk.CHORD]
        scale = chord_scale(window_chords)
        tops = melody_top_steps(tk.decode_notes(cond)) if accompaniment else {}
        chord = None  # (root, quality row) of the sounding chord; unknown before the window's first
        for t in range(1, len(rows)):
            row, p = rows[t], probs[t - 1]
            if row[0] == tk.CHORD:
                quality = tk.QUALITIES[int(row[tk.F["quality"]]) - 1] if row[tk.F["quality"]] else "X"
                rooted = row[tk.F["root"]] not in (0, tk.NO_ROOT) and quality in qualities
                chord = (int(row[tk.F["root"]]) - 1, qualities.index(quality)) if rooted else (0, len(qualities) - 1)
            elif row[0] == tk.NOTE and chord is not None:
                root, q = chord
                pitch = int(row[tk.F["pitch"]]) - 1
                data[q, (pitch - root) % 12] += 1
                mass[q] += np.bincount((pcs - root) % 12, weights=p, minlength=12)
                n += 1
                if scale is not None:
                    inside = scale[pcs]
                    scale_data[0 if scale[pitch % 12] else 1] += 1
                    scale_mass += [p[inside].sum(), p[~inside].sum()]
                top = tops.get(int(row[tk.F["bar"]]) * tk.STEPS_PER_BAR + int(row[tk.F["beat"]]) - 1)
                if top is not None:
                    below = np.clip(top - (np.arange(len(p)) - 1), 0, MAX_BELOW)
                    below_data[int(np.clip(top - pitch, 0, MAX_BELOW))] += 1
                    below_mass += np.bincount(below, weights=p, minlength=MAX_BELOW + 1)
    log_ratio = np.log(data / data.sum(1, keepdims=True)) - np.log(mass / mass.sum(1, keepdims=True))
    scale_ratio = np.log(scale_data / scale_data.sum()) - np.log(scale_mass / scale_mass.sum())
    below_ratio = np.log(below_data / below_data.sum()) - np.log(below_mass / below_mass.sum())
    return HarmonyModel(qualities=qualities, log_ratio=np.round(log_ratio, 4).tolist(), n_notes=n,
                        scale_log_ratio=np.round(scale_ratio, 4).tolist(),
                        below_log_ratio=np.round(below_ratio, 4).tolist() if accompaniment else None)



def fit_key(model, examples, max_windows: int = 512, batch_size: int = 16) -> KeyModel:
    """Data and teacher-forced chord-model distributions of chord roots relative to the window's first chord
    (windows of 16 bars, the length of a clip) -> the log ratio."""
    data, mass, n = np.ones((2, 13)), np.full((2, 13), 1e-3), 0
    for tokens, probs, _ in teacher_forced(model, examples, "root", max_windows, batch_size):
        first = None
        for t in np.flatnonzero(tokens[:, 0] == tk.CHORD):
            root = int(tokens[t, tk.F["root"]])
            quality = tk.QUALITIES[int(tokens[t, tk.F["quality"]]) - 1]
            if first is None:
                if 1 <= root <= 12:
                    first = (root - 1, quality in MINOR_LIKE)
                continue
            f_root, minor = first
            d = 12 if not 1 <= root <= 12 else (root - 1 - f_root) % 12
            data[int(minor), d] += 1
            p = probs[t - 1]
            mass[int(minor), :12] += np.roll(p[1:13], -f_root)
            mass[int(minor), 12] += p[tk.NO_ROOT]
            n += 1
    log_ratio = np.log(data / data.sum(1, keepdims=True)) - np.log(mass / mass.sum(1, keepdims=True))
    return KeyModel(log_ratio=np.round(log_ratio, 4).tolist(), n_chords=n)
