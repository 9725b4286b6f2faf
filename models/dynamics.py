"""Dynamics: MIDI velocities for generated notes, learned from the training songs' performances.

V-MusProd's tokens carry no velocity (paper sec. 4.2), so a generated piece used to be two constants (90 / 70).
Real covers are played: louder downbeats, a melody above its accompaniment, phrases that swell and fade,
a player's overall touch. This small performance model learns those four layers from the transcribed
velocities of the training split, in closed form (least squares and moments, no training loop):

    velocity = song level                        one draw per piece from the training songs' mean velocities
             + bar offset                        AR(1) over bars: phi, sigma fitted to per-bar means
             + w . features(note)                linear in track, metric position, pitch vs the track's median,
                                                 onset size, duration, melody contour (rising / leap / top)
             + e                                 per-note residual, its standard deviation fitted

`fit_dynamics(examples)` -> `DynamicsModel` (a JSON file in the checkpoint folder, `dynamics.json`);
`model.apply(notes, seed)` -> the notes with velocities. Everything is seeded; nothing reads the video.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from symmv.core.records import Note

FEATURES = ("melody", "downbeat", "beat", "eighth", "pitch_rel", "pitch_rel_sq", "onset_size", "log_duration",
            "melody_up", "melody_leap", "melody_top")
VELOCITY_RANGE = (1, 127)


def note_features(notes: Sequence[Note]) -> np.ndarray:
    """(n_notes, len(FEATURES)) features of each note in its piece (order of `notes`)."""
    by_track = defaultdict(list)
    for n in notes:
        by_track[n.track].append(n.pitch)
    median = {t: float(np.median(p)) for t, p in by_track.items()}
    onset_size = defaultdict(int)
    for n in notes:
        onset_size[(n.bar, n.position)] += 1
    line = sorted((n for n in notes if n.track == "melody"), key=lambda n: (n.bar, n.position, -n.pitch))
    contour, prev, top = {}, None, max((n.pitch for n in line), default=0)
    for n in line:
        key = (n.bar, n.position, n.pitch)
        step = 0 if prev is None else n.pitch - prev
        contour[key] = (float(step > 0), float(abs(step) >= 5), float(n.pitch >= top - 2))
        prev = n.pitch
    rows = []
    for n in notes:
        pos = int(n.position or 0)
        rel = (n.pitch - median[n.track]) / 12.0
        up, leap, high = contour.get((n.bar, n.position, n.pitch), (0.0, 0.0, 0.0)) if n.track == "melody" else (0, 0, 0)
        rows.append([float(n.track == "melody"), float(pos == 0), float(pos % 4 == 0 and pos != 0),
                     float(pos % 2 == 0 and pos % 4 != 0), rel, rel * rel,
                     float(np.log(onset_size[(n.bar, n.position)])), float(np.log(max(1, n.duration_16th or 1))),
                     up, leap, high])
    return np.asarray(rows, np.float64).reshape(len(notes), len(FEATURES))


@dataclass
class DynamicsModel:
    song_levels: list[float]  # mean velocity of each training song (the draw of a piece's touch)
    bar_phi: float  # AR(1) coefficient of per-bar offsets from one bar to the next
    bar_sigma: float  # innovation sd of the per-bar offsets
    weights: list[float]  # one per FEATURES, on the velocity left after song level and bar offset
    intercept: float
    residual_sd: float
    n_songs: int = 0
    n_notes: int = 0
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    def apply(self, notes: Sequence[Note], seed: int = 0) -> list[Note]:
        """The notes with velocities drawn from the model (same order)."""
        notes = list(notes)
        if not notes:
            return notes
        rng = np.random.default_rng(seed)
        level = float(rng.choice(self.song_levels))
        n_bars = max(int(n.bar or 0) for n in notes) + 1
        offsets = np.zeros(n_bars)
        stationary = self.bar_sigma / np.sqrt(max(1e-6, 1 - self.bar_phi ** 2))
        offsets[0] = rng.normal(0, stationary)
        for b in range(1, n_bars):
            offsets[b] = self.bar_phi * offsets[b - 1] + rng.normal(0, self.bar_sigma)
        mean = self.intercept + note_features(notes) @ np.asarray(self.weights)
        v = level + offsets[[int(n.bar or 0) for n in notes]] + mean + rng.normal(0, self.residual_sd, len(notes))
        v = np.clip(np.round(v), *VELOCITY_RANGE).astype(int)
        return [replace(n, velocity=int(x)) for n, x in zip(notes, v)]

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "DynamicsModel":
        return cls(**json.loads(Path(path).read_text()))


def fit_dynamics(pieces: Sequence[Sequence[Note]], window_bars: int = 16) -> DynamicsModel:
    """Fit the four layers to real pieces (each a song's quantized melody + accompaniment notes).

    Songs are cut into windows of `window_bars` bars, the length of a generated clip (30 s is ~15 bars):
    a window's mean velocity is a "song level" draw and its bars' offsets are taken from that mean, so the
    bar-to-bar swell is the one heard within a clip, not the drift between a song's quiet intro and its end."""
    levels, bar_pairs, X, y, n_songs = [], [], [], [], 0
    for notes in pieces:
        notes = [n for n in notes if n.bar is not None and n.position is not None]
        if len(notes) < 16:
            continue
        n_songs += 1
        windows = defaultdict(list)
        for n in notes:
            windows[int(n.bar) // window_bars].append(n)
        for part in windows.values():
            if len(part) < 8:
                continue
            v = np.array([n.velocity for n in part], np.float64)
            level = float(v.mean())
            levels.append(level)
            per_bar = defaultdict(list)
            for n, x in zip(part, v):
                per_bar[int(n.bar)].append(x - level)
            bar_mean = {b: float(np.mean(xs)) for b, xs in per_bar.items()}
            bars = sorted(bar_mean)
            bar_pairs.extend((bar_mean[a], bar_mean[b]) for a, b in zip(bars, bars[1:]) if b == a + 1)
            X.append(note_features(part))
            y.append(v - level - np.array([bar_mean[int(n.bar)] for n in part]))
    if not levels:
        raise ValueError("fit_dynamics: no piece with >= 16 quantized notes")
    pairs = np.asarray(bar_pairs) if bar_pairs else np.zeros((1, 2))
    denom = float((pairs[:, 0] ** 2).sum())
    phi = float(np.clip((pairs[:, 0] * pairs[:, 1]).sum() / denom, 0.0, 0.99)) if denom > 0 else 0.0
    sigma = float(np.std(pairs[:, 1] - phi * pairs[:, 0]))
    X, y = np.concatenate(X), np.concatenate(y)
    A = np.c_[np.ones(len(X)), X]
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    residual = y - A @ coef
    return DynamicsModel(song_levels=[round(x, 2) for x in levels], bar_phi=phi, bar_sigma=sigma,
                         weights=[float(w) for w in coef[1:]], intercept=float(coef[0]),
                         residual_sd=float(residual.std()), n_songs=n_songs, n_notes=len(y))
