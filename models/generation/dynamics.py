"""Dynamics: MIDI velocities for generated notes, learned from the training songs' performances.

V-MusProd's tokens carry no velocity (paper sec. 4.2), so a generated piece used to be two constants (90 / 70).
Real covers are played: louder downbeats, a melody above its accompaniment, phrases that swell and fade,
a player's overall touch. This small performance model learns those four layers from the transcribed
velocities of the training split, in closed form (least squares and moments, no training loop):

    velocity = level                             one draw per piece of a training window's profile (level,
                                                 spreads, melody emphasis)
             + bar offset                        AR(1) over bars: phi fitted, the profile's spread
             + w . features(note)                linear in track, metric position, pitch vs the track's median,
                                                 onset size, duration, melody contour (rising / leap / top)
             + e                                 per-note residual, the profile's standard deviation

`fit_dynamics(examples)` -> `DynamicsModel` (a JSON file in the checkpoint folder, `dynamics.json`);
`model.apply(notes, seed)` -> the notes with velocities. Everything is seeded; nothing reads the video.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from models.config import JsonFile

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
class DynamicsModel(JsonFile):
    # one row per training window (a clip's worth of bars): [mean velocity, sd of its bar offsets, sd of its
    # note residuals, its melody-minus-accompaniment mean]; a piece draws one row: a player's touch
    profiles: list[list[float]]
    bar_phi: float  # AR(1) coefficient of per-bar offsets from one bar to the next
    weights: list[float]  # one per FEATURES, on the velocity left after the window level and bar offset
    intercept: float
    n_songs: int = 0
    n_notes: int = 0
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    def apply(self, notes: Sequence[Note], seed: int = 0) -> list[Note]:
        """The notes with velocities drawn from the model (same order)."""
        notes = list(notes)
        if not notes:
            return notes
        rng = np.random.default_rng(seed)
        level, bar_sd, residual_sd, melody_offset = self.profiles[int(rng.integers(len(self.profiles)))]
        n_bars = max(int(n.bar or 0) for n in notes) + 1
        offsets = np.zeros(n_bars)
        offsets[0] = rng.normal(0, bar_sd)
        for b in range(1, n_bars):  # stationary sd = bar_sd
            offsets[b] = self.bar_phi * offsets[b - 1] + rng.normal(0, bar_sd * np.sqrt(1 - self.bar_phi ** 2))
        weights = np.asarray(self.weights, np.float64).copy()
        # the drawn player's melody emphasis instead of the average one
        weights[FEATURES.index("melody")] += melody_offset - float(np.mean([p[3] for p in self.profiles]))
        mean = self.intercept + note_features(notes) @ weights
        v = level + offsets[[int(n.bar or 0) for n in notes]] + mean + rng.normal(0, residual_sd, len(notes))
        v = np.clip(np.round(v), *VELOCITY_RANGE).astype(int)
        return [replace(n, velocity=int(x)) for n, x in zip(notes, v)]



def fit_dynamics(pieces: Sequence[Sequence[Note]], window_bars: int = 16) -> DynamicsModel:
    """Fit the layers to real pieces (each a song's quantized melody + accompaniment notes).

    Songs are cut into windows of `window_bars` bars, the length of a generated clip (30 s is ~15 bars):
    a window's mean velocity is a level and its bars' offsets are taken from that mean, so the bar-to-bar
    swell is the one heard within a clip, not the drift between a song's quiet intro and its end. Each
    window keeps its own spreads and melody emphasis (`profiles`): players differ in more than loudness."""
    windows_, bar_pairs, X, y, n_songs = [], [], [], [], 0
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
            per_bar = defaultdict(list)
            for n, x in zip(part, v):
                per_bar[int(n.bar)].append(x - level)
            bar_mean = {b: float(np.mean(xs)) for b, xs in per_bar.items()}
            bars = sorted(bar_mean)
            bar_pairs.extend((bar_mean[a], bar_mean[b]) for a, b in zip(bars, bars[1:]) if b == a + 1)
            mel = [x for n, x in zip(part, v) if n.track == "melody"]
            acc = [x for n, x in zip(part, v) if n.track != "melody"]
            offset = float(np.mean(mel) - np.mean(acc)) if mel and acc else 0.0
            windows_.append([level, float(np.std(list(bar_mean.values()))), offset, len(y)])
            X.append(note_features(part))
            y.append(v - level - np.array([bar_mean[int(n.bar)] for n in part]))
    if not windows_:
        raise ValueError("fit_dynamics: no piece with >= 16 quantized notes")
    pairs = np.asarray(bar_pairs) if bar_pairs else np.zeros((1, 2))
    denom = float((pairs[:, 0] ** 2).sum())
    phi = float(np.clip((pairs[:, 0] * pairs[:, 1]).sum() / denom, 0.0, 0.99)) if denom > 0 else 0.0
    A = np.c_[np.ones(sum(len(x) for x in X)), np.concatenate(X)]
    coef, *_ = np.linalg.lstsq(A, np.concatenate(y), rcond=None)
    profiles = []
    for (level, bar_sd, offset, i), Xi, yi in zip(windows_, X, y):
        residual = yi - np.c_[np.ones(len(Xi)), Xi] @ coef
        profiles.append([round(level, 2), round(bar_sd, 2), round(float(residual.std()), 2), round(offset, 2)])
    return DynamicsModel(profiles=profiles, bar_phi=phi, weights=[float(w) for w in coef[1:]],
                         intercept=float(coef[0]), n_songs=n_songs, n_notes=int(len(A)))


# --- Articulation: how long a melody note is held, given when the next one comes ---------------------------------
# In the release's clips 85% of melody notes are held until the next melody note starts or beyond (the melody is
# the top line of a played piano part, sustained) and only 2% leave a rest of a beat or more. The melody stage
# samples a note's duration before it has chosen the next onset, and its pieces have three times as many such
# rests (mean phrase 57 vs 151 sixteenths, bench/results/realism_*.json). So, as a performer would, the duration
# is drawn once the next onset is known: from the training melodies' durations given the inter-onset interval.
MAX_IOI_16TH = 32


@dataclass
class ArticulationModel(JsonFile):
    counts: list[list[int]]  # (MAX_IOI_16TH + 1, MAX_DURATION_16TH + 1): melody durations per IOI (16ths)
    n_notes: int = 0

    @classmethod
    def fit(cls, melodies: Sequence[Sequence[Note]]) -> "ArticulationModel":
        """melodies: melody lines (one note per onset, time order, quantized)."""
        from models.tokens import MAX_DURATION_16TH

        counts = np.zeros((MAX_IOI_16TH + 1, MAX_DURATION_16TH + 1), np.int64)
        for line in melodies:
            for a, b in zip(line, line[1:]):
                ioi = (b.bar - a.bar) * 16 + b.position - a.position
                if ioi > 0:
                    counts[min(ioi, MAX_IOI_16TH), min(max(1, int(a.duration_16th or 1)), MAX_DURATION_16TH)] += 1
        return cls(counts=counts.tolist(), n_notes=int(counts.sum()))

    def apply(self, notes: Sequence[Note], seed: int = 0, tempo_bpm: float | None = None) -> list[Note]:
        """Melody notes get a duration drawn given the gap to the next melody onset (the last keeps its own);
        other tracks are returned unchanged. Order is kept."""
        rng = np.random.default_rng(seed)
        counts = np.asarray(self.counts, np.float64)
        melody = sorted((i for i, n in enumerate(notes) if n.track == "melody"),
                        key=lambda i: (notes[i].bar, notes[i].position))
        out = list(notes)
        s16 = 60.0 / tempo_bpm / 4 if tempo_bpm else None
        for i, j in zip(melody, melody[1:]):
            a, b = notes[i], notes[j]
            ioi = (b.bar - a.bar) * 16 + b.position - a.position
            row = counts[min(ioi, MAX_IOI_16TH)] if ioi > 0 else None
            if row is None or row.sum() == 0:
                continue
            duration = int(rng.choice(len(row), p=row / row.sum()))
            offset = a.onset_s + duration * s16 if s16 else a.offset_s
            out[i] = replace(a, duration_16th=duration, offset_s=offset)
        return out

