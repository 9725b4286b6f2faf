"""The realism statistics and tests (models/evaluation/realism.py) on hand-made pieces with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.evaluation import realism
from models.tokens import ChordEvent
from symmv.core.records import Note


def note(bar, pos, pitch, dur=4, track="melody", velocity=80, tempo=120.0):
    s16 = 60.0 / tempo / 4
    onset = (bar * 16 + pos) * s16
    return Note(onset, onset + dur * s16, pitch, velocity, track, bar, pos, dur)


def test_constant_melody_has_no_spread_and_only_repeats():
    piece = [note(b, p, 72) for b in range(4) for p in (0, 4, 8, 12)]
    s = realism.piece_statistics(piece, n_bars=4)
    assert s["melody_pitch_std"] == 0 and s["melody_range"] == 0
    assert s["interval_repeat_share"] == 1.0 and s["interval_abs_mean"] == 0
    assert math.isnan(s["interval_up_share"])  # no moving interval
    assert s["melody_bar_repeat"] == 1.0 and s["rhythm_bar_repeat"] == 1.0  # every bar repeats bar 0
    assert s["velocity_std"] == 0 and math.isnan(s["accompaniment_pitch_mean"])
    assert s["melody_notes_per_bar"] == 4 and s["onset_on_beat_share"] == 1.0


def test_one_repeated_bar_among_distinct_ones():
    bars = {0: (60, 62, 64, 65), 1: (67, 65, 64, 62), 2: (60, 62, 64, 65), 3: (72, 71, 69, 67)}
    piece = [note(b, 4 * i, p) for b, ps in bars.items() for i, p in enumerate(ps)]
    s = realism.piece_statistics(piece, n_bars=4)
    assert s["melody_bar_repeat"] == pytest.approx(1 / 3)  # bar 2 repeats bar 0; bars 1, 3 are new
    assert s["rhythm_bar_repeat"] == 1.0  # all four bars share one onset pattern
    # best Jaccard with an earlier bar: bar 1 shares (8, 64) with bar 0 -> 1/7; bar 2 = bar 0 -> 1; bar 3 -> 0
    assert s["melody_bar_similarity"] == pytest.approx((1 / 7 + 1 + 0) / 3)


def test_known_interval_mix():
    pitches = [60, 60, 62, 67, 66, 60]  # 0, +2, +5, -1, -6
    piece = [note(0, 2 * i, p, dur=2) for i, p in enumerate(pitches)]
    s = realism.piece_statistics(piece)
    assert s["interval_abs_mean"] == pytest.approx(14 / 5)
    assert s["interval_repeat_share"] == pytest.approx(1 / 5)
    assert s["interval_step_share"] == pytest.approx(2 / 5)
    assert s["interval_leap_share"] == pytest.approx(2 / 5)
    assert s["interval_up_share"] == pytest.approx(2 / 4)
    assert s["melody_ioi_16th"] == 2 and s["melody_ioi_cv"] == 0
    assert s["melody_range"] == 7


def test_phrases_chord_tones_polyphony_and_dynamics():
    melody = [note(0, 0, 64, 4, velocity=100), note(0, 4, 67, 4, velocity=60),  # phrase 1: steps 0..8
              note(0, 12, 61, 4, velocity=100), note(1, 0, 62, 4, velocity=60)]  # rest of 4 -> phrase 2: 12..20
    acc = [note(0, 0, 48, 16, "accompaniment", velocity=100), note(0, 0, 52, 16, "accompaniment", velocity=100)]
    chords = [ChordEvent(0, 0, 0, "M"), ChordEvent(0, 8, 2, "m")]  # C major, then D minor
    s = realism.piece_statistics(melody + acc, chords, n_bars=2)
    assert s["phrase_length_16th"] == pytest.approx((8 + 8) / 2)
    # E, G in C major: tones; C# under D minor: no; D under D minor: yes
    assert s["chord_tone_share"] == pytest.approx(3 / 4)
    assert s["notes_per_onset"] == pytest.approx(6 / 4) and s["accompaniment_notes_per_onset"] == 2
    assert s["downbeat_accent"] == pytest.approx((100 * 3 + 60) / 4 - (60 + 100) / 2)
    assert s["melody_velocity_offset"] == pytest.approx(80 - 100)
    assert s["melody_over_accompaniment"] == pytest.approx(63 - 50)
    assert s["mean_polyphony"] == pytest.approx((16 + 32) / 20)


def test_every_statistic_is_reported_and_empty_piece_is_nan():
    s = realism.piece_statistics([])
    assert list(s) == list(realism.STATISTICS)
    assert math.isnan(s["melody_pitch_std"]) and math.isnan(s["velocity_mean"])


def test_overlapped_area():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 400), rng.normal(0, 1, 400)
    assert realism.overlapped_area(a, b) > 0.9
    assert realism.overlapped_area(a, b + 10) < 0.01
    assert 0.55 < realism.overlapped_area(a, b + 1) < 0.75  # two unit Gaussians 1 sd apart: 2 Phi(-0.5) = 0.617
    assert realism.overlapped_area([3.0] * 20, [3.0] * 20) > 0.99  # constant sets: no KDE, still defined
    assert realism.overlapped_area([0.0] * 20, [1.0] * 20) < 0.01
    assert math.isnan(realism.overlapped_area([], [1.0]))


def test_classifier_test_separates_different_sets_and_not_equal_ones():
    rng = np.random.default_rng(1)
    same = realism.classifier_test(rng.normal(size=(60, 5)), rng.normal(size=(60, 5)), repeats=2)
    shifted = rng.normal(size=(60, 5))
    shifted[:, 2] += 3
    shifted[::3, 4] = np.nan  # NaNs are imputed, not fatal
    apart = realism.classifier_test(rng.normal(size=(60, 5)), shifted, repeats=2)
    assert same["logistic"]["accuracy"] < 0.65 and same["random_forest"]["accuracy"] < 0.65
    assert apart["logistic"]["accuracy"] > 0.9 and apart["random_forest"]["accuracy"] > 0.9
    assert apart["random_forest"]["top_features"][0] == 2
