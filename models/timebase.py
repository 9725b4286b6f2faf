"""Music time -> video time, through the cover <-> official-video alignment the build stored.

The paper treats music second t and video second t as the same instant (sec. 3.1: the Timing Encoding and
VMCP's segment pairs assume it). A cover rarely starts with its video (an intro, another tempo), so where the
build wrote an `alignment` row for a song (annotators/alignment.py: a monotone path sampled every 0.5 s of
cover time), music times go through it; without one, time is the identity, as in the paper.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from annotators.alignment import Alignment
from symmv.core.records import Beat, Note


def alignment_by_song(table: pd.DataFrame | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """An ALIGNMENT table -> {song_id: (cover_time_s, video_time_s)}; empty when the build wrote none."""
    if table is None or not len(table):
        return {}
    return {r["song_id"]: (np.asarray(r["cover_time_s"], np.float64), np.asarray(r["video_time_s"], np.float64))
            for r in table.to_dict("records") if r["cover_time_s"] is not None and len(r["cover_time_s"]) >= 2}


def video_time(cover_time_s, path: tuple[np.ndarray, np.ndarray] | None):
    """Cover seconds -> video seconds: linear along the path, slope 1 beyond its ends; identity without one."""
    if path is None:
        return np.asarray(cover_time_s, np.float64)
    return Alignment("", path[0], path[1], confidence=1.0).video_time(cover_time_s)


def notes_in_video_time(notes: list[Note], path) -> list[Note]:
    """The notes with onset/offset moved onto the video's clock (bar/position grid untouched)."""
    if path is None or not notes:
        return notes
    on = video_time([n.onset_s for n in notes], path)
    off = np.maximum(video_time([n.offset_s for n in notes], path), on + 1e-3)
    return [replace(n, onset_s=float(a), offset_s=float(b)) for n, a, b in zip(notes, on, off)]


def beats_in_video_time(beats: list[Beat], path) -> list[Beat]:
    if path is None or not beats:
        return beats
    return [replace(b, time_s=float(t)) for b, t in zip(beats, video_time([b.time_s for b in beats], path))]


def bar_start_s(downbeat_bar: np.ndarray, downbeat_s: np.ndarray, n_bars: int) -> np.ndarray | None:
    """(n_bars + 1,) cover seconds at which bars 0..n_bars start, from the beats table's downbeats
    (interpolated over missing bars, extrapolated at the last bar's length); None with < 2 downbeats."""
    if len(downbeat_s) < 2:
        return None
    order = np.argsort(downbeat_bar)
    bars, times = np.asarray(downbeat_bar, np.float64)[order], np.asarray(downbeat_s, np.float64)[order]
    grid = np.arange(n_bars + 1, dtype=np.float64)
    inside = np.interp(grid, bars, times)
    first_len, last_len = (times[1] - times[0]) / (bars[1] - bars[0]), (times[-1] - times[-2]) / (bars[-1] - bars[-2])
    return np.where(grid < bars[0], times[0] + (grid - bars[0]) * first_len,
                    np.where(grid > bars[-1], times[-1] + (grid - bars[-1]) * last_len, inside))
