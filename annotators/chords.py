"""Rule-based chords per beat, a vectorised re-implementation of chorder 0.1.4's Dechorder (paper sec. 3.2).

The paper extracts chords with chorder (github.com/joshuachang2311/chorder) and keeps 12 roots x 10
qualities. This module reproduces `Dechorder.dechord` exactly on a beat grid, with numpy instead of
chorder's per-window Python loops, and maps its 11 qualities to the release's 10:

    chorder  M  m  7  M7  m7  o  o7  +  sus2  sus4  /o7 (half-diminished)
    SymMV    M  m  7  M7  m7  o  o7  +  sus2  sus4  o   (chorder's own Chord.simplify maps /o7 -> o;
                                                        the root is kept)

What chorder does, and so what this does (units: integer ticks, `ticks_per_beat` per beat):
- windows of 1 beat and of 2 beats from tick 0 (the first beat of the grid); a note belongs to a window if it
  starts before the window ends and ends at or after it starts, weighted by its overlap in ticks. Quirk kept
  on purpose: chorder only looks back 10 distinct onset times before a window (`get_notes_at`), so a note
  held over more than 10 later onsets is forgotten in later windows.
- per window: a 12-bin duration chroma; for every root present and each of M, m, o, +, sus2, sus4 a
  template score (chorder's integer weights); the first strict maximum in root-then-quality order wins;
  below 10 * window_ticks there is no chord. The bass is the lowest pitch sounding >= 1/8 of the window;
  bass rules re-root o/M/m/sus chords to 7, o7, m7, M7, /o7, sus4, sus2; then M gets 7/M7 and m gets m7 from
  the chroma of the minor/major seventh.
- per pair of beats: the 2-beat chord (score halved) is used for both beats unless both 1-beat chords
  score at least as much.

No-chord values: quality "N" (root -1) when no note sounds in the chosen window; "X" (root -1) when notes
sound but no template reaches chorder's threshold (chorder returns an empty Chord for both).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotators.quantize import SUBDIVISIONS, BeatGrid
from symmv.core.constants import CHORD_QUALITIES, NO_CHORD, UNKNOWN_CHORD
from symmv.core.records import Beat, Note
from symmv.core import schema as _schema

ANNOTATOR_VERSION = "chords 1 (chorder 0.1.4 Dechorder.dechord, vectorised)"

QUALITIES = CHORD_QUALITIES  # the SymMV release's 10 (symmv.core.constants)
UNKNOWN = UNKNOWN_CHORD
ROOT_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")  # chorder's default scale
CHORDER_TO_SYMMV = {q: q for q in QUALITIES} | {"/o7": "o"}

CHORD_SCHEMA = _schema.CHORDS  # declared in symmv.core.schema (the one place every table is declared)


@dataclass(frozen=True, slots=True)
class Chord:
    start_s: float
    end_s: float
    bar: int
    position: int  # 16th slot in the bar where the chord starts
    root: int  # 0-11, -1 for no chord / unknown
    quality: str  # one of QUALITIES, NO_CHORD or UNKNOWN
    bass: int = -1  # bass pitch class, -1 when none

    @property
    def label(self) -> str:
        return chord_label(self.root, self.quality)


SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
C_MAJOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # bIII, bVI, bVII flat; #IV sharp
# Key signature of each major tonic in fifths (+ sharps, - flats); F#/Gb major is spelled with sharps.
MAJOR_FIFTHS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)


def root_names(key_tonic: int | None = None, key_mode: str | None = None) -> tuple[str, ...]:
    """Root names spelled in the key: flats in flat keys (E-flat major: Ab, not G#), sharps in sharp keys,
    the borrowed chords' usual names in C major / A minor (Ab, Bb, Eb, F#); chorder's own spelling with no
    key. A minor key takes its relative major's."""
    if key_tonic is None or key_tonic < 0:
        return ROOT_NAMES
    major = (int(key_tonic) + (3 if key_mode == "minor" else 0)) % 12
    fifths = MAJOR_FIFTHS[major]
    return SHARP_NAMES if fifths > 0 else FLAT_NAMES if fifths < 0 else C_MAJOR_NAMES


def chord_label(root: int, quality: str, key_tonic: int | None = None, key_mode: str | None = None) -> str:
    """'CM', 'Am7', 'N', 'X'; with the song's key, the root spelled in it ('AbM' in E-flat major). The stored
    root number is the same either way: this is only its name."""
    return quality if root < 0 else f"{root_names(key_tonic, key_mode)[root]}{quality}"


# chorder's internal quality codes: the 6 templates first (search order), then what the rules produce
_CHORDER_Q = ("M", "m", "o", "+", "sus2", "sus4", "7", "M7", "m7", "o7", "/o7")
_QM, _Qm, _Qo, _Qaug, _Qsus2, _Qsus4, _Q7, _QM7, _Qm7, _Qo7, _Qhd7 = range(11)
_TEMPLATES = np.array(
    [
        [10, -2, -1, -2, 10, -5, -2, 10, -2, -1, -2, 0],  # M
        [10, -2, -1, 10, -2, -5, -2, 10, -1, -2, 0, -2],  # m
        [10, -2, -1, 10, -2, -1, 10, -2, -2, 1, -1, -2],  # o
        [10, -2, -1, -2, 10, -1, -2, -2, 10, -1, -2, 0],  # +
        [10, -2, 5, -2, -1, -5, -2, 5, -2, -1, -2, 0],  # sus2
        [10, -2, -1, -2, -5, 5, -2, 5, -2, -1, -2, 0],  # sus4
    ],
    dtype=np.int64,
)
# (72, 12): row root*6+quality holds the template rotated to that root, so chroma @ _ROTATED.T scores all
_ROTATED = np.stack([np.roll(_TEMPLATES[q], r) for r in range(12) for q in range(6)])
_LOOKBACK_ONSETS = 10  # chorder.timepoints.get_notes_at: start_index = max(l_index - 10, 0)


def _window_chords(on, off, pitch, group, keys, window, n_windows):
    """chorder's get_chord_quality over all windows of `window` ticks.

    Returns (root, quality code, bass pc, score, any_note) arrays of length n_windows; score -1 = no chord."""
    w_first = on // window
    w_last = np.minimum(off // window, n_windows - 1)
    count = np.maximum(w_last - w_first + 1, 0)
    idx = np.repeat(np.arange(len(on)), count)
    w = np.repeat(w_first, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    lookback = np.maximum(np.searchsorted(keys, np.arange(n_windows) * window, side="left") - _LOOKBACK_ONSETS, 0)
    keep = group[idx] >= lookback[w]
    idx, w = idx[keep], w[keep]
    overlap = np.minimum((w + 1) * window, off[idx]) - np.maximum(w * window, on[idx])

    chroma = np.bincount(w * 12 + pitch[idx] % 12, weights=overlap, minlength=n_windows * 12)
    chroma = np.rint(chroma).astype(np.int64).reshape(n_windows, 12)
    span = np.bincount(w * 128 + pitch[idx], weights=overlap, minlength=n_windows * 128).reshape(n_windows, 128)
    long_enough = span * 8 >= window
    has_bass = long_enough.any(axis=1)
    bass = np.where(has_bass, np.argmax(long_enough, axis=1) % 12, -1)

    scores = chroma @ _ROTATED.T  # (n_windows, 72)
    scores = np.where(np.repeat(chroma > 0, 6, axis=1), scores, np.iinfo(np.int64).min)
    best = np.argmax(scores, axis=1)  # first maximum = chorder's strict '>' in root-then-quality order
    score = scores[np.arange(n_windows), best]
    root, quality = best // 6, best % 6
    found = score >= 10 * window  # (a best score <= 0 is below this too)

    d = np.where(has_bass, (root - bass) % 12, -1)
    rules = [  # (from quality, interval root-bass, to quality), chorder's order; all re-root to the bass
        (_Qo, 4, _Q7), (_Qo, 3, _Qo7), (_QM, 3, _Qm7), (_Qm, 4, _QM7), (_Qm, 3, _Qhd7),
        (_Qsus2, 5, _Qsus4), (_Qsus4, 7, _Qsus2),
    ]
    new_quality = quality.copy()
    for q_from, interval, q_to in rules:
        hit = (quality == q_from) & (d == interval)
        new_quality[hit] = q_to
        root = np.where(hit, bass, root)
    quality = new_quality
    rows = np.arange(n_windows)
    maj7, min7 = chroma[rows, (root + 11) % 12], chroma[rows, (root + 10) % 12]
    quality = np.where((quality == _QM) & (maj7 > 0) & (maj7 > min7), _QM7,
                       np.where((quality == _QM) & (min7 > 0) & (min7 > maj7), _Q7, quality))
    quality = np.where((quality == _Qm) & (min7 > 0), _Qm7, quality)

    any_note = chroma.sum(axis=1) > 0
    root = np.where(found, root, -1)
    quality = np.where(found, quality, -1)
    bass = np.where(found, bass, -1)
    return root, quality, bass, np.where(found, score, -1), any_note


def beat_chords_ticks(
    on: np.ndarray, off: np.ndarray, pitch: np.ndarray, ticks_per_beat: int, n_beats: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """chorder's Dechorder.dechord on integer ticks (tick 0 = first beat): per-beat arrays
    (root, chorder quality code or -1, bass, any_note). n_beats defaults to ceil(max offset / ticks_per_beat),
    chorder's range(0, max_tick, ticks_per_beat)."""
    on, off, pitch = (np.asarray(a, dtype=np.int64) for a in (on, off, pitch))
    if n_beats is None:
        n_beats = int(-(-off.max() // ticks_per_beat)) if len(off) else 0
    if n_beats <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty.astype(bool)
    keys, group = np.unique(on, return_inverse=True)
    one = _window_chords(on, off, pitch, group, keys, ticks_per_beat, n_beats)
    n_pairs = -(-n_beats // 2)
    two = _window_chords(on, off, pitch, group, keys, 2 * ticks_per_beat, n_pairs)

    beat = np.arange(n_beats)
    pair = beat // 2
    s_two = two[3][pair] / 2
    s_prev = one[3][2 * pair]
    s_next = np.where(2 * pair + 1 < n_beats, one[3][np.minimum(2 * pair + 1, n_beats - 1)], -np.inf)
    has_next = 2 * pair + 1 < n_beats
    use_single = np.where(has_next, (s_prev >= s_two) & (s_next >= s_two), s_prev > s_two)
    return tuple(np.where(use_single, a[beat], b[pair]) for a, b in zip(one[:3] + one[4:], two[:3] + two[4:]))


def chords(
    notes: Sequence[Note], beats: Sequence[Beat], merge: bool = True, ticks_per_beat: int = 480
) -> list[Chord]:
    """One chord per beat (chorder's 1- or 2-beat decision), consecutive equal beats merged when `merge`.

    Note times are mapped onto the beat grid (so windows follow tempo drift) and rounded to
    `ticks_per_beat` integer ticks, on which chorder's integer arithmetic is reproduced exactly. Windows start
    at the first tracked beat (pairs of beats from there), extended backwards by whole pairs when notes start
    before it."""
    if not notes:
        return []
    grid = BeatGrid(beats)
    onset = grid.beat_position(np.array([n.onset_s for n in notes], dtype=np.float64))
    offset = grid.beat_position(np.array([n.offset_s for n in notes], dtype=np.float64))
    if np.any(offset < onset):
        raise ValueError("note offset before onset")
    first_beat = min(0, 2 * int(np.floor(onset.min() / 2)))
    on = np.floor((onset - first_beat) * ticks_per_beat + 0.5).astype(np.int64)
    off = np.floor((offset - first_beat) * ticks_per_beat + 0.5).astype(np.int64)
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    root, quality, bass, any_note = beat_chords_ticks(on, off, pitch, ticks_per_beat)

    k = first_beat + np.arange(len(root))
    start_s, end_s = grid.beat_time(k), grid.beat_time(k + 1)
    bar, bib = grid.bar_and_beat(k)
    names = np.array([CHORDER_TO_SYMMV[q] for q in _CHORDER_Q] + [UNKNOWN, NO_CHORD])
    label = names[np.where(quality >= 0, quality, np.where(any_note, len(_CHORDER_Q), len(_CHORDER_Q) + 1))]
    out: list[Chord] = []
    for i in range(len(root)):
        c = Chord(float(start_s[i]), float(end_s[i]), int(bar[i]), int((bib[i] - 1) * SUBDIVISIONS),
                  int(root[i]), str(label[i]), int(bass[i]))
        if merge and out and (out[-1].root, out[-1].quality, out[-1].bass) == (c.root, c.quality, c.bass):
            prev = out[-1]
            out[-1] = Chord(prev.start_s, c.end_s, prev.bar, prev.position, prev.root, prev.quality, prev.bass)
        else:
            out.append(c)
    return out


def chorder_quality_name(code: int) -> str | None:
    """chorder's own quality string for a code returned by beat_chords_ticks (None for -1)."""
    return None if code < 0 else _CHORDER_Q[code]


def transpose_chords(chord_items: Sequence[Chord], semitones: int) -> list[Chord]:
    """Roots and basses shifted by `semitones` (mod 12); N / X and a missing bass (-1) stay as they are."""
    from dataclasses import replace

    shift = lambda pc: pc if pc < 0 else (pc + semitones) % 12  # noqa: E731
    return [replace(c, root=shift(c.root), bass=shift(c.bass)) for c in chord_items]
