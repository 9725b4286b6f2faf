"""Melodic contour: the interval from one melody note to the next, learned from the training melodies, fused
into the Melody Transformer's pitch distribution at sampling time (shallow fusion with a bigram interval model).

Why (bench/results/melody_diagnosis.json, issue 20): teacher-forced on the release's test songs, the CPU-size
Melody Transformer gives the real next note's "same pitch as before" 16% (the real melodies: 38%) and a leap of
5+ semitones 51% (real: 28%); its expected |interval| is 7.9 semitones (real: 4.8). It has learned the piece's
register and key, not the line: each note is drawn from one broad bump around the register, nearly independent
of the note before it. Sampled raw, that is a melody that jumps about (range 47 semitones in 30 s); sampled at
the issue-14 pitch temperature 0.8 and top-p 0.9, the bump is cut to its top few pitches and every note comes
from the same few: the flat melody (spread 3.7 semitones vs 7.0 in Real).

The fix keeps what the model knows (harmony, register) and corrects what it lacks (the line): the sampler draws
the pitch from

    log p(pitch) = log p_model(pitch) + weight * [log p_data(d | c) - log p_model(d | c)],   d = pitch - previous,

where c is the class of the interval into the previous note (none, repeat, step / skip / leap up or down),
p_data(d | c) counts the intervals (-24..24) of the training melodies and p_model(d | c) is the model's own
average interval distribution, teacher-forced on training windows (`fit_model_marginal`, models/training/
corrections.py, as the other corrections' fits). The ratio moves the
model's interval marginal onto the data's and leaves its choice among equal intervals (which pitch fits the
chord) alone. (A plain product with p_data, no ratio, double-counts: the melody then repeats one note, mean
|interval| 0.3, bench/results/sweep_cw1.0_*.json.) The correction belongs to one melody checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models import tokens as tk
from models.config import JsonFile
from models.music import CHORD_INTERVALS, MAJOR_SCALE, MINOR_SCALE

MAX_INTERVAL = 24
N_INTERVALS = 2 * MAX_INTERVAL + 1
CLASSES = ("start", "repeat", "step_up", "step_down", "skip_up", "skip_down", "leap_up", "leap_down")


def interval_class(interval: int | None) -> int:
    """Index in CLASSES of the interval that led to the current note (None: the melody's first note)."""
    if interval is None:
        return 0
    if interval == 0:
        return 1
    a, up = abs(interval), interval > 0
    kind = 2 if a <= 2 else 4 if a <= 4 else 6
    return kind + (0 if up else 1)


@dataclass
class ContourModel(JsonFile):
    log_probs: list[list[float]]  # (len(CLASSES), N_INTERVALS): log P_data(interval | class), add-one smoothed
    n_intervals: int = 0
    # (len(CLASSES), N_INTERVALS): log of the melody model's mean P(interval | class), teacher-forced; None = 0
    model_log_probs: list[list[float]] | None = None
    n_model_notes: int = 0

    @classmethod
    def fit(cls, melodies: Sequence[Sequence[int]]) -> "ContourModel":
        """melodies: pitch sequences of melody lines (one note per onset, in time order)."""
        counts = np.ones((len(CLASSES), N_INTERVALS))
        n = 0
        for line in melodies:
            prev_interval = None
            for a, b in zip(line, line[1:]):
                iv = int(b) - int(a)
                if abs(iv) <= MAX_INTERVAL:
                    counts[interval_class(prev_interval), iv + MAX_INTERVAL] += 1
                    n += 1
                prev_interval = iv
        log_probs = np.log(counts / counts.sum(1, keepdims=True))
        return cls(log_probs=np.round(log_probs, 4).tolist(), n_intervals=n)

    def pitch_log_prior(self, prev_pitch: int | None, prev_interval: int | None, vocab: int) -> np.ndarray | None:
        """(vocab,) log prior over pitch-token values (1 + MIDI pitch) given the previous melody note, or None
        for the first note. Pitches further than MAX_INTERVAL away get the smallest learned log-probability."""
        if prev_pitch is None:
            return None
        c = interval_class(prev_interval)
        row = np.asarray(self.log_probs[c])
        if self.model_log_probs is not None:
            row = row - np.asarray(self.model_log_probs[c])
        out = np.full(vocab, row.min())
        for iv in range(-MAX_INTERVAL, MAX_INTERVAL + 1):
            token = 1 + prev_pitch + iv
            if 1 <= token < vocab:
                out[token] = row[iv + MAX_INTERVAL]
        out[0] = row.min()
        return out


# --- Harmony: the pitch class relative to the sounding chord's root --------------------------------------------
# The same diagnosis for harmony (bench/results/realism_*.json): generated melodies put 61-67% of their notes on
# a tone of the sounding chord, real ones 80%, and the pieces leave the key more often (SC 0.92-0.95 vs 0.98).
# The correction has the same form, over d = (pitch - chord root) mod 12 given the chord quality:
#     log p(pitch) += weight * [log p_data(d | quality) - log p_model(d | quality)]


MAX_BELOW = 48


def melody_top_steps(melody) -> dict[int, int]:
    """16th step -> highest pitch of the quantized `melody` notes sounding there (what the accompaniment stays
    under: models.generation.sample.Grammar, the calibration, the teacher-forced fit)."""
    top: dict[int, int] = {}
    for n in melody:
        start = int(n.bar) * tk.STEPS_PER_BAR + int(n.position)
        for step in range(start, start + max(1, int(n.duration_16th or 1))):
            top[step] = max(top.get(step, 0), n.pitch)
    return top


def chord_scale(chords) -> np.ndarray | None:
    """(12,) bool: the major / natural-minor scale holding the most chord tones of `chords` ((root, quality)
    pairs, root -1 = none) - the key the progression implies; None without a rooted chord."""
    counts = np.zeros(12)
    for root, quality in chords:
        if root >= 0 and quality in CHORD_INTERVALS:
            for iv in CHORD_INTERVALS[quality]:
                counts[(root + iv) % 12] += 1
    if not counts.any():
        return None
    scales = [np.roll(m, k) for m in (MAJOR_SCALE, MINOR_SCALE) for k in range(12)]
    return scales[int(np.argmax([counts[sc].sum() for sc in scales]))]


@dataclass
class HarmonyModel(JsonFile):
    qualities: list[str]  # row order: the chord qualities, then "none" (no chord sounding / N / X)
    log_ratio: list[list[float]]  # (len(qualities), 12): log p_data(d | q) - log p_model(d | q)
    n_notes: int = 0
    # [in, out of] the scale the piece's chords imply (`chord_scale`): log p_data - log p_model. The chord-relative
    # ratio cannot tell F from F# over a C chord; the key can (SC 0.94 vs 0.985 in Real without it).
    scale_log_ratio: list[float] | None = None
    # accompaniment: the distance below the sounding melody note, 1..MAX_BELOW semitones (log p_data - log p_model);
    # the free-running accompaniment sat 5 semitones lower than Real's under the same melodies
    below_log_ratio: list[float] | None = None
    # (128,): the register, log p_data(pitch) - log p_generated(pitch) of the stage's notes; set only by the
    # free-running calibration (models/training/calibrate.py), None before it
    register_log_ratio: list[float] | None = None
    # accompaniment: added to the NOTE logit of the token type when k notes already start at this onset (index k):
    # the log-odds correction of "one more note here"; set by the calibration, None before it
    onset_log_odds: list[float] | None = None
    # (1 + MAX_DURATION_16TH,): note durations, log p_data - log p_generated; set by the calibration (the accompaniment
    # held its notes 5.7 sixteenths vs 7.7 in Real: thinner texture, lower polyphony)
    duration_log_ratio: list[float] | None = None
    # (1 + MAX_IOI_16TH,): melody inter-onset intervals in 16ths (capped), log p_data - log p_generated, applied to
    # the onset position (barbeat) logits; set by the calibration (melodies had 4.7 notes a bar vs 3.6 in Real)
    ioi_log_ratio: list[float] | None = None

    def register_prior(self, vocab: int) -> np.ndarray | None:
        """(vocab,) log correction by absolute pitch (pitch token 1 + p), or None."""
        if self.register_log_ratio is None:
            return None
        out = np.zeros(vocab)
        out[1: 1 + len(self.register_log_ratio)] = self.register_log_ratio[: vocab - 1]
        return out

    def below_prior(self, melody_top: int | None, vocab: int) -> np.ndarray | None:
        """(vocab,) log correction by distance below the sounding melody note, or None."""
        if melody_top is None or self.below_log_ratio is None:
            return None
        ratio = np.asarray(self.below_log_ratio)
        d = np.clip(melody_top - (np.arange(vocab) - 1), 0, MAX_BELOW)
        return ratio[d]

    def scale_prior(self, scale: np.ndarray | None, vocab: int) -> np.ndarray | None:
        """(vocab,) log correction for in-scale / out-of-scale pitches, or None."""
        if scale is None or self.scale_log_ratio is None:
            return None
        inside = scale[(np.arange(vocab) - 1) % 12]
        return np.where(inside, self.scale_log_ratio[0], self.scale_log_ratio[1])

    def row(self, chord) -> np.ndarray:
        q = chord.quality if chord is not None and chord.root >= 0 and chord.quality in self.qualities else "none"
        return np.asarray(self.log_ratio[self.qualities.index(q)])

    def pitch_log_prior(self, chord, vocab: int) -> np.ndarray:
        """(vocab,) log correction over pitch-token values (1 + MIDI pitch) under `chord` (a ChordEvent or None)."""
        row = self.row(chord)
        root = chord.root if chord is not None and chord.root >= 0 else 0
        pitches = np.arange(vocab) - 1
        out = row[(pitches - root) % 12]
        out[0] = row.min()
        return out


# --- Key: chord roots relative to the clip's first chord ---------------------------------------------------------
# Progressions of the CPU-size Chord Transformer wander between keys (SC 0.94 vs 0.985 in Real once the notes fit
# their chords). The same correction over the chord root: d = (root - first chord's root) mod 12 (12 = no root),
# given whether the first chord is minor-like (m, m7, o, o7) - in a clip the first chord mostly is, or is near,
# the key's tonic.
MINOR_LIKE = ("m", "m7", "o", "o7")


@dataclass
class KeyModel(JsonFile):
    log_ratio: list[list[float]]  # (2, 13): [first chord major-like, minor-like] x [d = 0..11, no root]
    n_chords: int = 0

    def root_log_prior(self, first_root: int | None, first_minor: bool, vocab: int) -> np.ndarray | None:
        """(vocab,) log correction over root-token values (1 + pitch class, 13 = no root), or None before the
        first chord."""
        if first_root is None:
            return None
        row = np.asarray(self.log_ratio[int(first_minor)])
        out = np.zeros(vocab)
        for pc in range(12):
            out[1 + pc] = row[(pc - first_root) % 12]
        out[tk.NO_ROOT] = row[12]
        return out


