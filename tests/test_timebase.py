"""Music time -> video time through a stored alignment path (models/timebase.py) and its two users:
the chord stage's video window (models/training/data.py) and the evaluation's ground truth (models/evaluation/evaluate.py)."""
import numpy as np
import pandas as pd
import pytest

from models.training import data as D
from models import timebase as tb
from symmv.core.records import Beat, Note

# a cover whose video starts 3 s later and runs 10% slower: video_s = 3 + 1.1 * cover_s
COVER = np.arange(0.0, 20.5, 0.5)
PATH = (COVER, 3.0 + 1.1 * COVER)


def alignment_table(song_id="s1"):
    return pd.DataFrame([{"song_id": song_id, "cover_time_s": COVER.tolist(), "video_time_s": PATH[1].tolist(),
                          "confidence": 0.8, "method": "test"}])


def test_video_time_follows_the_path_and_is_the_identity_without_one():
    assert tb.video_time([0.0, 10.0, 20.0], PATH) == pytest.approx([3.0, 14.0, 25.0])
    assert tb.video_time(22.0, PATH) == pytest.approx(27.0)  # past the path: slope 1 from its end
    assert tb.video_time([1.0, 2.5], None) == pytest.approx([1.0, 2.5])
    paths = tb.alignment_by_song(alignment_table())
    assert set(paths) == {"s1"} and tb.video_time(4.0, paths["s1"]) == pytest.approx(7.4)
    assert tb.alignment_by_song(None) == {} and tb.alignment_by_song(alignment_table().iloc[:0]) == {}


def test_notes_and_beats_move_onto_the_video_clock_keeping_their_grid():
    notes = [Note(1.0, 2.0, 60, 80, "melody", bar=0, position=4, duration_16th=4)]
    moved = tb.notes_in_video_time(notes, PATH)[0]
    assert (moved.onset_s, moved.offset_s) == pytest.approx((4.1, 5.2))
    assert (moved.bar, moved.position, moved.duration_16th, moved.pitch) == (0, 4, 4, 60)
    assert tb.notes_in_video_time(notes, None) is notes
    assert tb.beats_in_video_time([Beat(10.0, 5, 1)], PATH)[0] == Beat(pytest.approx(14.0), 5, 1)


def test_bar_starts_interpolate_and_extrapolate_the_downbeats():
    starts = tb.bar_start_s(np.array([1, 2, 4]), np.array([2.0, 4.0, 8.0]), n_bars=6)
    assert starts == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0])
    assert tb.bar_start_s(np.array([0]), np.array([0.0]), 3) is None


def test_chord_stage_video_window_uses_the_aligned_bar_frames():
    fps, n_bars = 6.0, 10
    frames = np.arange(200, dtype=np.float32)[:, None]  # frame i holds the value i
    downbeats = pd.DataFrame({"bar": np.arange(n_bars), "time_s": 2.0 * np.arange(n_bars)})  # 2-s bars
    bar_frame = D.aligned_bar_frames(downbeats, PATH, {"fps": fps}, n_bars)
    assert bar_frame[2] == pytest.approx((3.0 + 1.1 * 4.0) * fps)  # bar 2 starts at cover 4 s = video 7.4 s
    window, _, bars = D.video_window(frames, 2, 4, n_bars, max_frames=1000, bar_frame=bar_frame)
    assert window[0, 0] == np.floor(7.4 * fps) and window[-1, 0] == np.ceil(11.8 * fps) - 1
    # the bar of each frame follows the aligned bar starts: frames before video 9.6 s (bar 3) are bar 2
    assert bars[0] == 1 and set(bars.tolist()) <= {1, 2, 3}  # frame 44 lies before bar 2's start (44.4)
    assert np.all(bars[window[:, 0] >= bar_frame[3]] == 3) and np.all(bars[(window[:, 0] >= bar_frame[2]) & (window[:, 0] < bar_frame[3])] == 2)
    proportional, _, _ = D.video_window(frames, 2, 4, n_bars, max_frames=1000)  # no alignment: as before
    assert proportional[0, 0] == 40 and proportional[-1, 0] == 79
    assert D.aligned_bar_frames(downbeats, None, {"fps": fps}, n_bars) is None
