"""Music-quality metrics of Table 2 (paper sec. 6.2): SC, PE, PCE, EBR, IOI.

The paper takes these "from [11, 53]": MusPy (Dong et al., ISMIR 2020) for SC, PE, PCE and EBR, and
Yang & Lerch (2020, the `mgeval` toolbox) for the average inter-onset interval. We implement the
definitions ourselves over `symmv.core.records.Note` (muspy wants its own `Music` object, and muspy 0.5.0's
`from_music21` / `write_midi` break on some key signatures), and tests/test_metrics.py cross-checks every
figure against muspy 0.5.0's own functions on `muspy.Music` objects built note by note.

Conventions shared by all five (as in muspy / mgeval):
- Every note counts once, whatever its duration or velocity; all tracks are pooled (melody and
  accompaniment together, as the merged piece the paper evaluates); there are no drum tracks in SymMV.
- A piece with no notes gives NaN for every metric; corpus figures are means over pieces, NaN skipped.
- Figures are reported as the value and as |value - real| ("closer to Real is better", Table 2).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from models.music import MAJOR_SCALE, MINOR_SCALE
from symmv.core.records import Beat, Note

METRIC_NAMES = ("SC", "PE", "PCE", "EBR", "IOI")

# Beat positions computed from seconds are floats; a note ending exactly on a beat must floor to that
# beat, not to the one before it (2.9999999 -> 3).
_FLOOR_EPS = 1e-6


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total < 1:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def scale_consistency(notes: Sequence[Note]) -> float:
    """SC: the largest fraction of notes whose pitch class lies in one major or natural-minor scale.

    max over the 24 (root, mode) scales of #(notes in scale) / #(notes); unitless in [0, 1]; muspy's
    `scale_consistency` (after Mogren 2016). Harmonic/melodic minor are not scales here.
    """
    if not notes:
        return math.nan
    pc_counts = np.bincount([n.pitch % 12 for n in notes], minlength=12)
    best = 0
    for mask in (MAJOR_SCALE, MINOR_SCALE):
        for root in range(12):
            best = max(best, int(pc_counts[np.roll(mask, root)].sum()))
    return best / len(notes)


def pitch_entropy(notes: Sequence[Note]) -> float:
    """PE: Shannon entropy, in bits (log base 2), of the 128-bin histogram of note pitches.

    -sum_i P(pitch = i) log2 P(pitch = i), P counted per note; muspy's `pitch_entropy`. Range [0, 7].
    """
    return _entropy_bits(np.bincount([n.pitch for n in notes], minlength=128))


def pitch_class_entropy(notes: Sequence[Note]) -> float:
    """PCE: Shannon entropy, in bits (log2), of the 12-bin pitch-class histogram counted per note.

    muspy's `pitch_class_entropy` (after Wu & Yang 2020). Range [0, log2 12 = 3.585].
    """
    return _entropy_bits(np.bincount([n.pitch % 12 for n in notes], minlength=12))


def empty_beat_rate(note_beats: np.ndarray) -> float:
    """EBR: fraction of beats, per BEAT (not per bar), in which no note sounds.

    `note_beats` is (n_notes, 2): start and end of each note in beats from the piece's time origin
    (beat 0 starts at time 0, so leading silence counts). Exactly muspy's `empty_beat_rate`:
    n_beats = floor(last note end) + 1, and a note occupies beats floor(start) .. floor(end) INCLUSIVE,
    so a note ending exactly on a beat boundary also marks the beat that starts there (a muspy quirk we
    keep so figures stay comparable). Unitless in [0, 1].
    """
    if len(note_beats) == 0:
        return math.nan
    first = np.floor(note_beats[:, 0] + _FLOOR_EPS).astype(np.int64)
    last = np.floor(note_beats[:, 1] + _FLOOR_EPS).astype(np.int64)
    n_beats = int(last.max()) + 1
    if note_beats[:, 1].max() <= 0:
        return math.nan
    # Difference array: +1 at each note's first beat, -1 after its last one.
    cover = np.zeros(n_beats + 1, np.int64)
    np.add.at(cover, first, 1)
    np.add.at(cover, last + 1, -1)
    occupied = np.cumsum(cover[:-1]) > 0
    return 1.0 - occupied.sum() / n_beats


def average_ioi_s(notes: Sequence[Note], unique_onsets: bool = False) -> float:
    """IOI: mean inter-onset interval in SECONDS, Yang & Lerch's `avg_IOI` (mgeval).

    mgeval takes pretty_midi's `get_onsets()`, i.e. the sorted onsets of ALL notes with duplicates, and
    averages `np.diff` of them, so the notes of a chord contribute zero intervals and the figure equals
    (last onset - first onset) / (n_notes - 1). `unique_onsets=True` gives the variant over distinct onset
    times (the time between successive note events), which is NOT what mgeval computes. NaN with < 2 notes.
    """
    onsets = np.sort(np.array([n.onset_s for n in notes], dtype=np.float64))
    if unique_onsets:
        onsets = np.unique(np.round(onsets, 6))
    if len(onsets) < 2:
        return math.nan
    return float(np.diff(onsets).mean())


def note_beats(
    notes: Sequence[Note],
    *,
    tempo_bpm: float | None = None,
    beats: Sequence[Beat] | None = None,
    steps_per_beat: int = 4,
    beats_per_bar: int = 4,
) -> np.ndarray:
    """(n_notes, 2) start/end of each note in beats, from the best time base available.

    Preference order: the 16th grid fields (`bar`, `position`, `duration_16th`, all set) -> tracked
    `beats` (time -> beat by linear interpolation between beat times, extrapolated with the first/last
    inter-beat interval) -> a constant `tempo_bpm` (beat = seconds * bpm / 60).
    """
    if notes and all(n.bar is not None and n.position is not None and n.duration_16th for n in notes):
        steps_per_bar = steps_per_beat * beats_per_bar
        start = np.array([n.bar * steps_per_bar + n.position for n in notes], np.float64)
        dur = np.array([n.duration_16th for n in notes], np.float64)
        return np.stack([start, start + dur], axis=1) / steps_per_beat
    times = np.array([[n.onset_s, n.offset_s] for n in notes], np.float64).reshape(-1, 2)
    if beats is not None and len(beats) >= 2:
        return _seconds_to_beats(times, np.array([b.time_s for b in beats], np.float64))
    if tempo_bpm is not None:
        return times * tempo_bpm / 60.0
    raise ValueError("EBR needs a beat grid: quantized notes, `beats`, or `tempo_bpm`")


def _seconds_to_beats(times_s: np.ndarray, beat_times_s: np.ndarray) -> np.ndarray:
    # Beat k sits at beat_times_s[k]; outside the tracked range the nearest inter-beat interval extends
    # the grid. muspy's grid starts at time 0, so the (extrapolated) beat holding t = 0 becomes beat 0:
    # an integer shift keeps beat boundaries where the tracker put them.
    def to_beats(t: np.ndarray) -> np.ndarray:
        k = np.arange(len(beat_times_s), dtype=np.float64)
        first_ibi = beat_times_s[1] - beat_times_s[0]
        last_ibi = beat_times_s[-1] - beat_times_s[-2]
        out = np.interp(t, beat_times_s, k)
        out = np.where(t < beat_times_s[0], (t - beat_times_s[0]) / first_ibi, out)
        return np.where(t > beat_times_s[-1], k[-1] + (t - beat_times_s[-1]) / last_ibi, out)

    shift = -math.floor(float(to_beats(np.zeros(1))[0]) + _FLOOR_EPS)
    return to_beats(times_s) + shift


def quality_metrics(
    notes: Sequence[Note],
    *,
    tempo_bpm: float | None = None,
    beats: Sequence[Beat] | None = None,
    steps_per_beat: int = 4,
    beats_per_bar: int = 4,
) -> dict[str, float]:
    """All five Table-2 metrics of one piece: {"SC", "PE", "PCE", "EBR", "IOI"} (IOI in seconds).

    EBR needs a beat grid (see `note_beats`); without one it is NaN and the rest is still computed.
    """
    notes = list(notes)
    try:
        ebr = empty_beat_rate(
            note_beats(notes, tempo_bpm=tempo_bpm, beats=beats, steps_per_beat=steps_per_beat,
                       beats_per_bar=beats_per_bar)
        )
    except ValueError:
        ebr = math.nan
    return {
        "SC": scale_consistency(notes),
        "PE": pitch_entropy(notes),
        "PCE": pitch_class_entropy(notes),
        "EBR": ebr,
        "IOI": average_ioi_s(notes),
    }


def corpus_metrics(per_piece: Iterable[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over pieces (NaN skipped), plus `n_pieces_quality`; Table 2 reports such means."""
    rows = list(per_piece)
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        vals = np.array([r[name] for r in rows], np.float64)
        out[name] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
    out["n_pieces_quality"] = len(rows)
    return out


def distance_to_real(metrics: dict[str, float], real: dict[str, float]) -> dict[str, float]:
    """|value - real| per metric: Table 2's music-quality columns read "closer to Real is better"."""
    return {k: abs(metrics[k] - real[k]) for k in METRIC_NAMES if k in metrics and k in real}
