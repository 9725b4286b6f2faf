"""Chords per beat: known progressions and agreement with chorder 0.1.4 (miditoolkit reference path)."""
from pathlib import Path

import pytest

from annotators.chords import NO_CHORD, QUALITIES, UNKNOWN, chord_label, chords, transpose_chords
from annotators.quantize import constant_tempo_beats
from symmv.evaluation.annotators import chorder_beat_labels, music21_notes, release_notes
from symmv.core.records import Note

RELEASE = Path(__file__).resolve().parents[2] / "shared/data/symmv-release"
BEATS = constant_tempo_beats(12.0, 120)  # 0.5 s beats, 4/4


def block(t0, t1, pitches):
    return [Note(t0, t1, p, 80) for p in pitches]


def progression():
    # I - vi - IV - V in C, one half bar (2 beats = 1 s) each, bass + close triad
    return (block(0, 1, (48, 60, 64, 67)) + block(1, 2, (45, 60, 64, 69))
            + block(2, 3, (41, 60, 65, 69)) + block(3, 4, (43, 59, 62, 67)))


def test_I_vi_IV_V():
    out = chords(progression(), BEATS)
    assert [c.label for c in out] == ["CM", "Am", "FM", "GM"]
    assert [(c.start_s, c.end_s, c.bar, c.position) for c in out] == [
        (0.0, 1.0, 0, 0), (1.0, 2.0, 0, 8), (2.0, 3.0, 1, 0), (3.0, 4.0, 1, 8)]
    assert [c.bass for c in out] == [0, 9, 5, 7]


def test_sevenths_and_slash_rules():
    notes = block(0, 1, (43, 59, 62, 65)) + block(1, 2, (48, 60, 64, 67, 71)) + block(2, 3, (45, 60, 64, 67))
    # G7; Cmaj7; C triad over A bass -> chorder re-roots to Am7
    assert [c.label for c in chords(notes, BEATS)] == ["G7", "CM7", "Am7"]


def test_melody_over_block_chords_keeps_the_harmony():
    notes = block(0, 2, (48, 52, 55)) + [Note(i * 0.25, (i + 1) * 0.25, p, 90)
                                         for i, p in enumerate((72, 74, 76, 77, 79, 77, 76, 74))]
    assert {c.label for c in chords(notes, BEATS)} == {"CM"}


def test_no_chord_and_unknown():
    notes = block(0, 1, (48, 52, 55)) + [Note(2.0, 2.125, 60, 80)]  # C, silence, a lone 16th note, silence
    labels = [c.label for c in chords(notes, BEATS, merge=False)]
    assert labels == ["CM", "CM", NO_CHORD, NO_CHORD, UNKNOWN]  # beats up to the last offset, like chorder
    assert chords([], BEATS) == []
    assert [(c.root, c.quality) for c in chords(block(0, 0.5, (60,)), BEATS)] == [(0, "M")]  # chorder's reading
    with pytest.raises(ValueError, match="offset before onset"):
        chords([Note(1.0, 0.5, 60, 80)], BEATS)


def test_overlapping_identical_notes_count_twice_like_chorder():
    notes = block(0, 1, (48, 52, 55)) + block(0, 1, (52,))
    assert [c.label for c in chords(notes, BEATS)] == ["CM"]
    _assert_same_as_chorder(notes, ticks_per_beat=220)


def test_transpose_and_vocabulary():
    out = transpose_chords(chords(progression(), BEATS), -3)
    assert [c.label for c in out] == ["AM", "F#m", "DM", "EM"] and [c.bass for c in out] == [9, 6, 2, 4]
    assert len(QUALITIES) == 10 and chord_label(-1, NO_CHORD) == "N"


def _assert_same_as_chorder(notes, ticks_per_beat, min_agreement=1.0):
    mine = chords(notes, constant_tempo_beats(max(n.offset_s for n in notes), 120), merge=False,
                  ticks_per_beat=ticks_per_beat)
    ref = chorder_beat_labels(notes, ticks_per_beat=ticks_per_beat)
    assert len(ref) > 0
    n = max(len(mine), len(ref))
    same = sum((c.root, c.quality if c.root >= 0 else "N/X", c.bass) == r for c, r in zip(mine, ref))
    assert same / n >= min_agreement, (same, n)
    return same, n


@pytest.mark.skipif(not RELEASE.exists(), reason="SymMV release not available")
def test_agrees_with_chorder_on_release_songs():
    same = total = 0
    for idx in ("00001", "00333", "00700"):
        s, n = _assert_same_as_chorder(release_notes(RELEASE / "midi" / f"{idx}.mid"), 220, 0.99)
        same, total = same + s, total + n
    assert same / total >= 0.99


def test_agrees_with_chorder_on_music21_corpus():
    from music21 import corpus

    for piece in ("bach/bwv66.6", "mozart/k545/movement1_exposition"):
        try:
            score = corpus.parse(piece)
        except Exception:  # corpus files can differ between music21 versions
            continue
        _assert_same_as_chorder(music21_notes(score), 480, 0.99)


def test_chord_names_are_spelled_in_the_key():
    from annotators.chords import chord_label

    assert chord_label(8, "M", 3, "major") == "AbM"  # E-flat major: A-flat, not G#
    assert chord_label(8, "M", 4, "major") == "G#M"  # E major: G-sharp
    assert chord_label(10, "m7", 7, "minor") == "Bbm7"  # G minor (B-flat major's signature)
    assert chord_label(6, "o", 9, "minor") == "F#o" and chord_label(8, "M", 0, "major") == "AbM"  # C / a: bVI
    assert chord_label(8, "M") == "G#M" and chord_label(-1, "N", 3, "major") == "N"
