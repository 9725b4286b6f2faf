"""Event-based compound tokens of V-MusProd (paper sec. 4.2, "Music Representation", after CP Transformer [21]).

One token is a row of integer fields. The first six are *attributes* the model predicts (one embedding and
one output head each); the last four are *conditions* computed from the sequence (Bar / Beat embeddings),
from the tempo (Tempo embedding) and from the piece length (Timing Encoding, CMT [9]):

    type      PAD / BOS / EOS / RHYTHM / NOTE / CHORD
    barbeat   RHYTHM only: 1 = new bar, 2 + p = 16th position p in the bar
    pitch     NOTE only:   1 + MIDI pitch
    duration  NOTE only:   duration in 16ths (1..MAX_DURATION_16TH)
    root      CHORD only:  1 + pitch class, NO_ROOT for "N"/"X" chords
    quality   CHORD only:  1 + index in QUALITIES
    bar       absolute bar index of the token (BOS: first bar, EOS: last bar)
    beat      1 + 16th position of the token in its bar, 0 for Bar/special tokens
    tempo     tempo bucket (0 = unknown)
    timing    bar / total_bars bucketed into N_TIMING bins: where the token lies in the whole video

Value 0 of every attribute means "not used by this token type"; the loss masks it (`ATTRIBUTES_USED`).
A song is: BOS, then for every bar b = 0..n_bars-1: Bar, and for each 16th position holding events:
Position, [Chord], Note, Note, ...; then EOS. Empty bars keep their Bar token, so bars advance by one.
Bars are read as written: the quantizer gives a bar of m beats 4m 16th positions (songs.meter; 12 in 3/4),
so a bar never holds more than STEPS_PER_BAR = 16 positions (4/4) and decoding needs the bar length
(`decode_notes(steps_per_bar=...)`). The models have no meter token: generated music is 4/4.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from symmv.core.constants import CHORD_QUALITIES, NO_CHORD, UNKNOWN_CHORD
from symmv.core.records import Note

STEPS_PER_BAR = 16
MAX_DURATION_16TH = 64  # longer notes are clipped to 4 bars (the only lossy step)
QUALITIES = (*CHORD_QUALITIES, NO_CHORD, UNKNOWN_CHORD)
NO_CHORD_QUALITIES = ("N", "X")  # carry root -1

# type values
PAD, BOS, EOS, RHYTHM, NOTE, CHORD = range(6)
TYPE_NAMES = ("PAD", "BOS", "EOS", "RHYTHM", "NOTE", "CHORD")
BAR = 1  # barbeat value of a new-bar Rhythm token; positions are 2 + p
NO_ROOT = 13

FIELDS = ("type", "barbeat", "pitch", "duration", "root", "quality", "bar", "beat", "tempo", "timing")
ATTRIBUTES = FIELDS[:6]  # predicted, one head each
F = {name: i for i, name in enumerate(FIELDS)}
N_TIMING = 64
TEMPO_MIN_BPM, TEMPO_MAX_BPM, TEMPO_STEP_BPM = 40.0, 200.0, 5.0
N_TEMPO = 1 + int((TEMPO_MAX_BPM - TEMPO_MIN_BPM) / TEMPO_STEP_BPM) + 1

VOCAB = {  # attribute -> number of classes
    "type": 6,
    "barbeat": 2 + STEPS_PER_BAR,
    "pitch": 1 + 128,
    "duration": 1 + MAX_DURATION_16TH,
    "root": 1 + 12 + 1,
    "quality": 1 + len(QUALITIES),
}

# Which attributes each token type uses (rows = type value, cols = ATTRIBUTES); loss masks the rest.
ATTRIBUTES_USED = np.zeros((6, len(ATTRIBUTES)), dtype=bool)
ATTRIBUTES_USED[[BOS, EOS, RHYTHM, NOTE, CHORD], 0] = True
ATTRIBUTES_USED[RHYTHM, F["barbeat"]] = True
ATTRIBUTES_USED[NOTE, [F["pitch"], F["duration"]]] = True
ATTRIBUTES_USED[CHORD, [F["root"], F["quality"]]] = True


@dataclass(frozen=True, slots=True)
class ChordEvent:
    """A chord on the 16th grid (the `chords` table without times). root -1 for "N"/"X"."""

    bar: int
    position: int
    root: int
    quality: str


def tempo_bucket(tempo_bpm: float | None) -> int:
    if tempo_bpm is None or not np.isfinite(tempo_bpm) or tempo_bpm <= 0:
        return 0
    t = min(max(float(tempo_bpm), TEMPO_MIN_BPM), TEMPO_MAX_BPM)
    return 1 + int(round((t - TEMPO_MIN_BPM) / TEMPO_STEP_BPM))


def timing_bucket(bar: int, n_bars: int) -> int:
    return min(N_TIMING - 1, max(0, bar) * N_TIMING // max(1, n_bars))


def make_token(type_: int, bar: int, n_bars: int, tempo: int, *, barbeat: int = 0, pitch: int = 0,
               duration: int = 0, root: int = 0, quality: int = 0, beat: int = 0) -> np.ndarray:
    """One token row; conditions (bar/beat/tempo/timing) filled from the position in the piece."""
    return np.array([type_, barbeat, pitch, duration, root, quality, bar, beat, tempo,
                     timing_bucket(bar, n_bars)], dtype=np.int64)


def chord_token(c: ChordEvent, n_bars: int, tempo: int) -> np.ndarray:
    root = NO_ROOT if c.root < 0 or c.quality in NO_CHORD_QUALITIES else 1 + c.root % 12
    quality = 1 + QUALITIES.index(c.quality if c.quality in QUALITIES else "X")
    return make_token(CHORD, c.bar, n_bars, tempo, root=root, quality=quality, beat=1 + c.position)


def note_token(n: Note, n_bars: int, tempo: int) -> np.ndarray:
    duration = min(max(int(n.duration_16th or 1), 1), MAX_DURATION_16TH)
    return make_token(NOTE, int(n.bar), n_bars, tempo, pitch=1 + int(n.pitch), duration=duration,
                      beat=1 + int(n.position))


def count_bars(notes: Iterable[Note] = (), chords: Iterable[ChordEvent] = ()) -> int:
    bars = [int(n.bar) for n in notes] + [int(c.bar) for c in chords]
    return max(bars) + 1 if bars else 0


def encode(notes: Sequence[Note] = (), chords: Sequence[ChordEvent] = (), *, n_bars: int | None = None,
           tempo_bpm: float | None = None, bos_eos: bool = True) -> np.ndarray:
    """Notes and chords on the 16th grid -> (T, len(FIELDS)) int64 tokens.

    Every note needs bar/position/duration_16th (from the quantizer); events at position >= 16 or
    bar >= n_bars are dropped. Within a position: the chord (at most one, the last wins) then the notes
    by pitch. `n_bars` defaults to the last event's bar + 1 (it is the Timing Encoding's denominator).
    """
    n_bars = count_bars(notes, chords) if n_bars is None else n_bars
    tempo = tempo_bucket(tempo_bpm)
    events: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    chord_at: dict[tuple[int, int], ChordEvent] = {}
    for c in chords:
        if 0 <= c.bar < n_bars and 0 <= c.position < STEPS_PER_BAR:
            chord_at[(c.bar, c.position)] = c
            events[c.bar][c.position]  # touch: a chord alone still makes a Position token
    for n in sorted(notes, key=lambda n: (n.bar, n.position, n.pitch)):
        if 0 <= n.bar < n_bars and 0 <= n.position < STEPS_PER_BAR:
            events[n.bar][n.position].append(n)
    rows = [make_token(BOS, 0, n_bars, tempo)] if bos_eos else []
    for bar in range(n_bars):
        rows.append(make_token(RHYTHM, bar, n_bars, tempo, barbeat=BAR))
        for pos in sorted(events[bar]):
            rows.append(make_token(RHYTHM, bar, n_bars, tempo, barbeat=2 + pos, beat=1 + pos))
            if (bar, pos) in chord_at:
                rows.append(chord_token(chord_at[(bar, pos)], n_bars, tempo))
            rows.extend(note_token(n, n_bars, tempo) for n in events[bar][pos])
    if bos_eos:
        rows.append(make_token(EOS, max(n_bars - 1, 0), n_bars, tempo))
    return np.stack(rows) if rows else np.zeros((0, len(FIELDS)), dtype=np.int64)


def decode_notes(tokens: np.ndarray, *, track: str = "piano", tempo_bpm: float | None = None,
                 velocity: int = 80, steps_per_bar: int = STEPS_PER_BAR) -> list[Note]:
    """Note tokens -> Notes on the grid; onset_s/offset_s from `tempo_bpm` (0.0 when it is None) and the bar
    length in 16ths (`steps_per_bar`: 4 x the song's meter, 16 for the generated 4/4)."""
    if not 1 <= steps_per_bar <= STEPS_PER_BAR:
        raise ValueError(f"steps_per_bar must be 1..{STEPS_PER_BAR}, got {steps_per_bar}")
    s16 = 60.0 / tempo_bpm / 4 if tempo_bpm else 0.0
    notes = []
    for t in np.asarray(tokens):
        if t[F["type"]] != NOTE or t[F["pitch"]] == 0 or t[F["beat"]] == 0:
            continue
        bar, pos, dur = int(t[F["bar"]]), int(t[F["beat"]]) - 1, max(1, int(t[F["duration"]]))
        onset = (bar * steps_per_bar + pos) * s16
        notes.append(Note(onset_s=onset, offset_s=onset + dur * s16, pitch=int(t[F["pitch"]]) - 1,
                          velocity=velocity, track=track, bar=bar, position=pos, duration_16th=dur))
    return notes


def decode_chords(tokens: np.ndarray) -> list[ChordEvent]:
    chords = []
    for t in np.asarray(tokens):
        if t[F["type"]] != CHORD or t[F["quality"]] == 0 or t[F["beat"]] == 0:
            continue
        quality = QUALITIES[int(t[F["quality"]]) - 1]
        root = -1 if t[F["root"]] in (0, NO_ROOT) or quality in NO_CHORD_QUALITIES else int(t[F["root"]]) - 1
        chords.append(ChordEvent(bar=int(t[F["bar"]]), position=int(t[F["beat"]]) - 1, root=root, quality=quality))
    return chords


def describe(token: np.ndarray) -> str:
    """Human-readable token, for debugging and test failure messages."""
    t = [int(v) for v in token]
    name = TYPE_NAMES[t[0]]
    if t[0] == RHYTHM:
        name += " Bar" if t[1] == BAR else f" Pos{t[1] - 2}"
    elif t[0] == NOTE:
        name += f" p{t[2] - 1} d{t[3]}"
    elif t[0] == CHORD:
        root = "-1" if t[4] == NO_ROOT else str(t[4] - 1)
        name += f" r{root} {QUALITIES[t[5] - 1] if t[5] else '?'}"
    return f"{name} @bar{t[6]} beat{t[7]}"
