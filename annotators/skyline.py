"""Skyline split of quantized notes into melody and accompaniment (paper sec. 3.2, Skyline [47]).

The variant, exactly (all times are slots of the absolute 16th grid of annotators.quantize):

1. Duplicates: notes with the same onset slot and pitch are one note; the longest survives (ties: louder,
   then earlier onset_s), the others are dropped (a transcriber's double detections, not two voices).
2. Candidates: at each onset slot the highest pitch starting there is the melody candidate. Notes below
   `min_melody_pitch` never become melody (default 0 = the plain skyline; a value such as 48 keeps a lone
   left-hand bass out of the melody).
3. Sustain: a candidate becomes melody when the current melody note has ended (its end slot <= this slot) or
   when it is at least as high as the current melody note (an equal pitch is a re-attack). Then the current
   melody note is cut to end at this slot (duration_16th = slot difference, >= 1 because slots differ;
   offset_s is cut to the new note's onset_s). A candidate lower than a still-sounding melody note is
   accompaniment: the skyline is the top contour, a note under a held melody note does not interrupt it.
4. Everything not chosen is accompaniment, unchanged.

The melody is thus monophonic (no two melody notes overlap on the grid). Output order: by onset slot, then
pitch descending.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from annotators.quantize import note_slots
from symmv.core.records import Beat, Note

ANNOTATOR_VERSION = "skyline 1"
MELODY, ACCOMPANIMENT = "melody", "accompaniment"

# The split only sets `track` (and shortens cut melody notes) in the notes table (symmv.core.schema.NOTES).
TRACK_FIELD = pa.schema([("track", pa.string())])


def skyline(notes: Sequence[Note], beats: Sequence[Beat], min_melody_pitch: int = 0) -> list[Note]:
    """Quantized notes -> the same notes (minus same-slot duplicates) with track "melody"/"accompaniment"."""
    if not notes:
        return []
    if any(n.duration_16th is None for n in notes):
        raise ValueError("skyline needs quantized notes (run annotators.quantize.quantize first)")
    onset, end = note_slots(notes, beats)
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    velocity = np.array([n.velocity for n in notes], dtype=np.int64)
    onset_s = np.array([n.onset_s for n in notes], dtype=np.float64)
    dur = end - onset

    # sort by slot, pitch desc, then the duplicate preference (longest, loudest, earliest)
    order = np.lexsort((onset_s, -velocity, -dur, -pitch, onset))
    o_slot, o_pitch = onset[order], pitch[order]
    first_of_pair = np.ones(len(order), dtype=bool)
    first_of_pair[1:] = (o_slot[1:] != o_slot[:-1]) | (o_pitch[1:] != o_pitch[:-1])
    order = order[first_of_pair]  # duplicates dropped
    o_slot, o_pitch = onset[order], pitch[order]
    top = np.ones(len(order), dtype=bool)
    top[1:] = o_slot[1:] != o_slot[:-1]  # first row of each slot = highest pitch there

    is_melody = np.zeros(len(order), dtype=bool)
    cut_at = np.full(len(order), -1, dtype=np.int64)  # row index of the note that cuts a melody note
    cur, cur_end, cur_pitch = -1, -1, -1
    for row in np.flatnonzero(top & (o_pitch >= min_melody_pitch)).tolist():
        s, p = int(o_slot[row]), int(o_pitch[row])
        if s >= cur_end or p >= cur_pitch:
            if cur >= 0 and s < cur_end:
                cut_at[cur] = row
            is_melody[row] = True
            cur, cur_end, cur_pitch = row, int(end[order[row]]), p

    out = []
    for row, i, melody, cutter in zip(range(len(order)), order.tolist(), is_melody.tolist(), cut_at.tolist()):
        n = notes[i]
        if not melody:  # positional construction: dataclasses.replace costs ~5x more per note
            out.append(Note(n.onset_s, n.offset_s, n.pitch, n.velocity, ACCOMPANIMENT, n.bar, n.position,
                            n.duration_16th))
            continue
        duration, offset_s = n.duration_16th, n.offset_s
        if cutter >= 0:
            j = int(order[cutter])
            duration = int(onset[j] - onset[i])
            offset_s = min(n.offset_s, max(notes[j].onset_s, n.onset_s))
        out.append(Note(n.onset_s, offset_s, n.pitch, n.velocity, MELODY, n.bar, n.position, duration))
    return out
