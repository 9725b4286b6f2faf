"""Beat-synchronous 16th quantization on hand-made beat grids."""
import numpy as np
import pytest

from annotators.quantize import constant_tempo_beats, grid_times, quantize
from symmv.core.records import Beat, Note


def beats_at(times, beats_per_bar=4, first_beat_in_bar=1):
    return [Beat(t, (i + first_beat_in_bar - 1) // beats_per_bar, (i + first_beat_in_bar - 1) % beats_per_bar + 1)
            for i, t in enumerate(times)]


def test_constant_grid_positions_and_durations():
    beats = constant_tempo_beats(8.0, 120)  # 0.5 s beats, 4/4
    notes = [Note(0.0, 0.5, 60, 80), Note(0.13, 0.24, 62, 80), Note(2.26, 3.0, 64, 80), Note(1.99, 2.0, 65, 80)]
    q = quantize(notes, beats)
    assert [(n.bar, n.position, n.duration_16th) for n in q] == [(0, 0, 4), (0, 1, 1), (1, 2, 6), (1, 0, 1)]
    assert q[2].onset_s == 2.26 and q[2].track == "piano"  # performed timing and other fields kept


def test_three_beat_bars():
    beats = beats_at(np.arange(10) * 0.5, beats_per_bar=3)
    q = quantize([Note(1.25, 1.5, 60, 80), Note(1.5, 2.0, 62, 80)], beats)
    assert [(n.bar, n.position) for n in q] == [(0, 10), (1, 0)]


def test_tempo_change_is_followed():
    # 4 beats of 0.5 s then beats of 1 s: a note at 3.0 s is half-way through beat 4 (0-based) -> bar 1 pos 2
    beats = beats_at([0.0, 0.5, 1.0, 1.5, 2.5, 3.5, 4.5])
    q = quantize([Note(3.0, 3.5, 60, 80), Note(1.5, 2.5, 62, 80)], beats)
    assert (q[0].bar, q[0].position, q[0].duration_16th) == (1, 2, 2)
    assert (q[1].bar, q[1].position, q[1].duration_16th) == (0, 12, 4)
    g = grid_times(beats)
    assert len(g) == 4 * 6 + 1
    np.testing.assert_allclose(g[:5], [0, 0.125, 0.25, 0.375, 0.5])
    np.testing.assert_allclose(g[16:21], [2.5, 2.75, 3.0, 3.25, 3.5])


def test_extrapolation_before_and_after_tracked_beats():
    beats = beats_at([1.0, 1.5, 2.0, 2.5, 3.0, 4.0], first_beat_in_bar=3)  # pickup: beats 3, 4 of bar 0
    q = quantize([Note(0.75, 1.0, 60, 80), Note(0.25, 0.5, 62, 80), Note(5.5, 6.0, 64, 80)], beats)
    # 0.75 s = beat index -0.5 = slot -2 -> beat 2 of bar 0 (the first tracked beat is beat 3), 3rd 16th
    assert (q[0].bar, q[0].position) == (0, 6)
    # 0.25 s = beat index -1.5 = slot -6 -> beat 1 of bar 0, 3rd 16th
    assert (q[1].bar, q[1].position) == (0, 2)
    # after the last beat the last period (1 s) continues: 5.5 s = beat 6.5 -> bar 2 beat 1 + 2 sixteenths
    assert (q[2].bar, q[2].position) == (2, 2)


def test_before_first_bar_gives_negative_bar():
    beats = beats_at(1.0 + np.arange(8) * 0.5)
    q = quantize([Note(0.5, 0.75, 60, 80)], beats)  # one beat before bar 0 -> beat 4 of bar -1
    assert (q[0].bar, q[0].position) == (-1, 12)


def test_constant_tempo_beats_layout():
    beats = constant_tempo_beats(2.0, 120, beats_per_bar=3, offset_s=0.1)
    assert beats[0] == Beat(0.1, 0, 1) and beats[3] == Beat(0.1 + 1.5, 1, 1)
    assert beats[-1].time_s >= 2.0
    with pytest.raises(ValueError):
        constant_tempo_beats(2.0, 0)


def test_malformed_input():
    beats = constant_tempo_beats(4.0, 120)
    assert quantize([], beats) == []
    assert quantize([Note(1.0, 1.0, 60, 80)], beats)[0].duration_16th == 1  # zero-length note -> one 16th
    with pytest.raises(ValueError, match="at least 2 beats"):
        quantize([Note(0, 1, 60, 80)], beats[:1])
    with pytest.raises(ValueError, match="increasing"):
        quantize([Note(0, 1, 60, 80)], [Beat(1.0, 0, 1), Beat(1.0, 0, 2)])
    with pytest.raises(ValueError, match="offset before onset"):
        quantize([Note(1.0, 0.5, 60, 80)], beats)
