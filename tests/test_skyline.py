"""Skyline melody/accompaniment split on tiny quantized note lists (120 BPM: a 16th = 0.125 s)."""
import pytest

from annotators.quantize import constant_tempo_beats, quantize
from annotators.skyline import skyline
from symmv.evaluation.annotators import naive_skyline
from symmv.core.records import Note

BEATS = constant_tempo_beats(8.0, 120)
S = 0.125  # one 16th


def split(notes, **kw):
    out = skyline(quantize(notes, BEATS), BEATS, **kw)
    mel = sorted((n.onset_s, n.pitch, n.duration_16th) for n in out if n.track == "melody")
    acc = sorted((n.onset_s, n.pitch) for n in out if n.track == "accompaniment")
    return mel, acc


def test_melody_over_block_chords():
    chord = [Note(0, 2.0, p, 70) for p in (48, 52, 55)]  # C major block held for a bar
    melody = [Note(i * 0.5, (i + 1) * 0.5, p, 90) for i, p in enumerate((72, 74, 76, 77))]
    mel, acc = split(chord + melody)
    assert mel == [(0.0, 72, 4), (0.5, 74, 4), (1.0, 76, 4), (1.5, 77, 4)]
    assert acc == [(0, 48), (0, 52), (0, 55)]


def test_sustained_lower_melody_note_is_cut_by_higher_note():
    out = skyline(quantize([Note(0, 2.0, 67, 80), Note(4 * S, 6 * S, 72, 80)], BEATS), BEATS)
    held = next(n for n in out if n.pitch == 67)
    assert held.track == "melody" and held.duration_16th == 4 and held.offset_s == 4 * S


def test_lower_note_under_held_melody_is_accompaniment():
    mel, acc = split([Note(0, 2.0, 72, 80), Note(4 * S, 6 * S, 60, 80), Note(16 * S, 17 * S, 55, 80)])
    assert mel == [(0.0, 72, 16), (16 * S, 55, 1)]  # after the held note ends the lower note is melody again
    assert acc == [(4 * S, 60)]


def test_equal_pitch_reattack_is_melody():
    mel, _ = split([Note(0, 1.0, 72, 80), Note(0.5, 1.0, 72, 80)])
    assert mel == [(0.0, 72, 4), (0.5, 72, 4)]


def test_overlapping_identical_notes_collapse_to_one():
    mel, acc = split([Note(0, 0.5, 72, 80), Note(0.01, 0.4, 72, 60), Note(0, 0.5, 60, 80), Note(0.0, 0.5, 60, 80)])
    assert mel == [(0.0, 72, 4)] and acc == [(0, 60)]


def test_min_melody_pitch_keeps_bass_out():
    mel, acc = split([Note(0, 0.5, 40, 80), Note(0.5, 1.0, 72, 80)], min_melody_pitch=48)
    assert mel == [(0.5, 72, 4)] and acc == [(0, 40)]


def test_malformed_input():
    assert skyline([], BEATS) == []
    one = skyline(quantize([Note(0.3, 0.4, 60, 80)], BEATS), BEATS)
    assert [(n.track, n.duration_16th) for n in one] == [("melody", 1)]
    with pytest.raises(ValueError, match="quantized"):
        skyline([Note(0, 1, 60, 80)], BEATS)


def test_matches_naive_reference_on_random_notes():
    import random

    rng = random.Random(0)
    notes = []
    for _ in range(300):
        on = rng.randrange(0, 60) * S + rng.uniform(-0.05, 0.05)
        notes.append(Note(max(0.0, on), max(0.0, on) + rng.uniform(0.05, 1.0), rng.randrange(40, 90), 80))
    key = lambda n: (n.onset_s, n.pitch, n.track, n.duration_16th, n.offset_s)  # noqa: E731
    assert sorted(map(key, skyline(quantize(notes, BEATS), BEATS))) == sorted(map(key, naive_skyline(notes)))
