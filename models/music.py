"""What every role reads off quantized music: the scales, the chord qualities' tones, a note's 16th step,
the melody line and the chord sounding at a step.

Shared by generation (the sampler's corrections), training (fitting them) and evaluation (the metrics and
the realism statistics), so it lives below all three. Notes are `symmv.core.records.Note` with `bar`,
`position`, `duration_16th` filled; chords are `models.tokens.ChordEvent`; 4/4 bars of 16 sixteenths.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.tokens import STEPS_PER_BAR, ChordEvent
from symmv.core.records import Note

# Pitch-class masks rooted at C, as muspy's `_get_scale`.
MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)

# Chord qualities -> intervals above the root (symmv.core.constants.CHORD_QUALITIES).
CHORD_INTERVALS = {"M": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "M7": (0, 4, 7, 11), "m7": (0, 3, 7, 10),
                   "o": (0, 3, 6), "o7": (0, 3, 6, 9), "+": (0, 4, 8), "sus2": (0, 2, 7), "sus4": (0, 5, 7)}


def grid_step(n: Note) -> int:
    """The note's onset as a 16th step from the piece's start."""
    return int(n.bar) * STEPS_PER_BAR + int(n.position)


def sounding(chords: Sequence[ChordEvent]):
    """step -> the chord sounding at that 16th step (the latest one starting at or before it), or None."""
    timeline = sorted(((c.bar * STEPS_PER_BAR + c.position), c) for c in chords)
    starts = [s for s, _ in timeline]

    def at(step: int) -> ChordEvent | None:
        i = int(np.searchsorted(starts, step, side="right")) - 1
        return timeline[i][1] if i >= 0 else None
    return at


def melody_line(notes: Sequence[Note]) -> list[Note]:
    """The melody track's notes in time order, one per onset (the highest when several start together)."""
    top: dict[int, Note] = {}
    for n in notes:
        if n.track == "melody" and (grid_step(n) not in top or n.pitch > top[grid_step(n)].pitch):
            top[grid_step(n)] = n
    return [top[s] for s in sorted(top)]
