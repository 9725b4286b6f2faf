"""Beat-synchronous 16th-note quantization (paper sec. 3.2: "we first quantize their duration to the 16th note").

The grid follows the tracked beats: every interval between two consecutive beats is split into 4 equal
16th notes, so tempo drift and tempo changes are followed. Before the first and after the last beat the grid
is extrapolated with the period of the first / last beat interval.

Bars come from the beats' own `bar` / `beat_in_bar` numbering, so a 3-beat bar has 12 sixteenth slots and a
4-beat bar 16. Outside the tracked beats the bar numbering is continued with the length of the nearest bar,
which means notes before the first tracked bar may land in bar -1 (the tracker's numbering is kept rather than
renumbered).

Rounding: an onset goes to the nearest grid line (half rounds up); the offset likewise, and
`duration_16th = max(1, offset_slot - onset_slot)`. `onset_s` / `offset_s` keep the performed timing.
"""
from __future__ import annotations

from collections.abc import Sequence
import numpy as np
import pyarrow as pa

from symmv.core.constants import SUBDIVISIONS  # 16th notes per beat
from symmv.core.records import Beat, Note

ANNOTATOR_VERSION = "quantize16 1"

# The quantizer fills bar/position/duration_16th of the notes table (symmv.core.schema.NOTES); no new table.
QUANTIZED_FIELDS = pa.schema(
    [("bar", pa.int32()), ("position", pa.int16()), ("duration_16th", pa.int32())]
)


class BeatGrid:
    """Beats as arrays plus the two bar lengths used to extend the grid past its ends."""

    def __init__(self, beats: Sequence[Beat]):
        if len(beats) < 2:
            raise ValueError(f"need at least 2 beats to build a 16th grid, got {len(beats)}")
        self.times = np.array([b.time_s for b in beats], dtype=np.float64)
        if not np.all(np.diff(self.times) > 0):
            raise ValueError("beat times must be strictly increasing")
        self.bars = np.array([b.bar for b in beats], dtype=np.int64)
        self.beat_in_bar = np.array([b.beat_in_bar for b in beats], dtype=np.int64)
        if self.beat_in_bar.min() < 1:
            raise ValueError("beat_in_bar is 1-based")
        # length of a bar = largest beat_in_bar seen in it (a pickup bar 3,4 still reads 4)
        first, last = self.bars[0], self.bars[-1]
        self.beats_per_bar_head = int(self.beat_in_bar[self.bars == first].max())
        # the last bar may be cut short by the end of the audio: take the bar before it when there is one
        tail_bar = self.bars[self.bars < last][-1] if np.any(self.bars < last) else last
        self.beats_per_bar_tail = int(self.beat_in_bar[self.bars == tail_bar].max())

    def beat_position(self, times_s: np.ndarray) -> np.ndarray:
        """Fractional beat index of each time (0 = first tracked beat), linear inside each beat interval."""
        t = np.asarray(times_s, dtype=np.float64)
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        return i + (t - t0) / (t1 - t0)

    def beat_time(self, beat_index: np.ndarray) -> np.ndarray:
        """Inverse of beat_position for (possibly fractional, possibly out-of-range) beat indices."""
        b = np.asarray(beat_index, dtype=np.float64)
        i = np.clip(np.floor(b).astype(np.int64), 0, len(self.times) - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        return t0 + (b - i) * (t1 - t0)

    def bar_and_beat(self, beat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bar, beat_in_bar) of integer beat indices, continuing the numbering outside the tracked beats."""
        k = np.asarray(beat_index, dtype=np.int64)
        n = len(self.times)
        bar = np.empty_like(k)
        bib = np.empty_like(k)
        inside = (k >= 0) & (k < n)
        bar[inside], bib[inside] = self.bars[k[inside]], self.beat_in_bar[k[inside]]
        after = k >= n
        pos0 = self.beat_in_bar[-1] - 1 + (k[after] - (n - 1))
        bar[after] = self.bars[-1] + pos0 // self.beats_per_bar_tail
        bib[after] = pos0 % self.beats_per_bar_tail + 1
        before = k < 0
        pos0 = self.beat_in_bar[0] - 1 + k[before]
        bar[before] = self.bars[0] + np.floor_divide(pos0, self.beats_per_bar_head)
        bib[before] = np.mod(pos0, self.beats_per_bar_head) + 1
        return bar, bib


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def grid_slots(onsets_s: np.ndarray, grid: BeatGrid) -> np.ndarray:
    """Absolute 16th slot (0 = first tracked beat) nearest to each time."""
    return _round_half_up(grid.beat_position(onsets_s) * SUBDIVISIONS)


def note_slots(notes: Sequence[Note], beats: Sequence[Beat]) -> tuple[np.ndarray, np.ndarray]:
    """(onset_slot, end_slot) on the absolute 16th grid; end_slot = onset_slot + duration_16th.

    Works on quantized notes (uses their duration_16th) or raw ones (quantizes the offset)."""
    grid = BeatGrid(beats)
    onset = grid_slots(np.array([n.onset_s for n in notes], dtype=np.float64), grid)
    if notes and all(n.duration_16th is not None for n in notes):
        dur = np.array([n.duration_16th for n in notes], dtype=np.int64)
    else:
        off = grid_slots(np.array([n.offset_s for n in notes], dtype=np.float64), grid)
        dur = np.maximum(off - onset, 1)
    return onset, onset + dur


def grid_times(beats: Sequence[Beat]) -> np.ndarray:
    """Times of the 16th grid lines from the first to the last tracked beat (4*(len(beats)-1)+1 values)."""
    grid = BeatGrid(beats)
    k = np.arange(SUBDIVISIONS * (len(beats) - 1) + 1) / SUBDIVISIONS
    return grid.beat_time(k)


def quantize(notes: Sequence[Note], beats: Sequence[Beat]) -> list[Note]:
    """Notes with bar, position (16th slot in the bar) and duration_16th filled; order and timing kept."""
    if not notes:
        return []
    grid = BeatGrid(beats)
    onset = np.array([n.onset_s for n in notes], dtype=np.float64)
    offset = np.array([n.offset_s for n in notes], dtype=np.float64)
    if np.any(offset < onset):
        raise ValueError("note offset before onset")
    on_slot = grid_slots(onset, grid)
    off_slot = grid_slots(offset, grid)
    duration = np.maximum(off_slot - on_slot, 1)
    beat = np.floor_divide(on_slot, SUBDIVISIONS)
    bar, bib = grid.bar_and_beat(beat)
    position = (bib - 1) * SUBDIVISIONS + np.mod(on_slot, SUBDIVISIONS)
    # positional construction: dataclasses.replace costs ~5x more per note
    return [
        Note(n.onset_s, n.offset_s, n.pitch, n.velocity, n.track, b, p, d)
        for n, b, p, d in zip(notes, bar.tolist(), position.tolist(), duration.tolist())
    ]


def constant_tempo_beats(
    duration_s: float, tempo_bpm: float, beats_per_bar: int = 4, offset_s: float = 0.0
) -> list[Beat]:
    """Beats of a fixed tempo from offset_s until past duration_s (one beat beyond, so the grid covers it).

    Used where no beat tracker ran, e.g. the SymMV release MIDI, which sits on a fixed 120 BPM grid."""
    if tempo_bpm <= 0 or beats_per_bar < 1 or duration_s < 0:
        raise ValueError("tempo_bpm and beats_per_bar must be positive, duration_s >= 0")
    period = 60.0 / tempo_bpm
    n = max(2, int(np.floor((duration_s - offset_s) / period)) + 2)
    return [
        Beat(time_s=offset_s + i * period, bar=i // beats_per_bar, beat_in_bar=i % beats_per_bar + 1)
        for i in range(n)
    ]
