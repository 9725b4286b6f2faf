"""Musical constants that several layers share, each defined once (annotators, models, card read them here).

- the 16th-note grid: SUBDIVISIONS 16th slots per (quarter-note) beat (paper sec. 3.2);
- the chord vocabulary: 12 roots x the SymMV release's 10 qualities, plus "N" (no chord) and "X" (unknown);
- the video tempo range: motion maps linearly onto 90-130 BPM (paper sec. 4.1).
"""
from __future__ import annotations

SUBDIVISIONS = 4  # 16th notes per beat (the beat being a quarter note)

CHORD_QUALITIES = ("M", "m", "7", "M7", "m7", "o", "o7", "+", "sus2", "sus4")  # the SymMV release's 10
NO_CHORD = "N"  # silence / no harmony
UNKNOWN_CHORD = "X"  # notes, but no template fits

TEMPO_RANGE_BPM = (90.0, 130.0)
