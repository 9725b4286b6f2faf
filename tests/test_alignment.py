"""Cover <-> video alignment on synthesized chord sequences with a known time map, and a pair it must refuse."""
import numpy as np
import pyarrow as pa
import pytest

from annotators import alignment as al

SR = 22050


def chord_sequence(seed, n=24):
    """(onset_s, duration_s, pitches) of n random triads with random lengths (a unique rhythm to align)."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    for _ in range(n):
        root = int(rng.integers(48, 60))
        third = 3 if rng.random() < 0.5 else 4
        dur = float(rng.uniform(0.35, 1.1))
        out.append((t, dur, (root, root + third, root + 7, root + 12)))
        t += dur
    return out


def synth(chords, time_map, total_s, sustained: bool, seed=0):
    """Harmonic tones: decaying ("piano") or flat with a slow attack and odd harmonics ("organ/strings")."""
    audio = np.zeros(int(total_s * SR), np.float32)
    for onset, dur, pitches in chords:
        a, b = time_map(onset), time_map(onset + dur)
        n = int((b - a) * SR)
        t = np.arange(n) / SR
        env = np.minimum(1.0, t / 0.08) if sustained else np.exp(-t / 0.35)
        for p in pitches:
            f0 = 440.0 * 2 ** ((p - 69) / 12)
            harmonics = (1, 3, 5) if sustained else (1, 2, 3, 4)
            tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in harmonics)
            i = int(a * SR)
            audio[i:i + n] += (0.1 * env * tone)[: len(audio) - i]
    return audio + np.random.default_rng(seed).normal(0, 1e-3, audio.size).astype(np.float32)


def warp(t):
    """Video = 2.5 s intro, then the cover 20% slower for 8 s, then 10% faster."""
    t = np.asarray(t, float)
    return np.where(t < 8.0, 2.5 + 1.2 * t, 2.5 + 9.6 + 0.9 * (t - 8.0))


def test_aligns_a_slower_later_differently_voiced_soundtrack():
    chords = chord_sequence(1)
    end = chords[-1][0] + chords[-1][1]
    cover = synth(chords, lambda t: t, end + 0.5, sustained=False)
    video = synth(chords, warp, float(warp(end)) + 1.5, sustained=True, seed=1)
    a = al.align(cover, video, SR, song_id="s1")
    onsets = np.array([c[0] for c in chords])
    err_ms = np.abs(a.video_time(onsets) - warp(onsets)) * 1000
    assert np.median(err_ms) < 80 and np.percentile(err_ms, 95) < 250, err_ms
    assert a.confidence >= al.LOW_CONFIDENCE and al.low_confidence(a) is None
    assert np.all(np.diff(a.video_time_s) >= 0) and np.allclose(np.diff(a.cover_time_s), al.PATH_STEP_S)
    # the intro: cover second 0 is video second 2.5 (the path's first frames are its least constrained)
    assert abs(float(a.video_time(0.0)) - 2.5) < 0.25


def test_refuses_an_unrelated_pair():
    cover_chords, other = chord_sequence(1), chord_sequence(7)
    cover = synth(cover_chords, lambda t: t, 20.0, sustained=False)
    video = synth(other, lambda t: t * 1.1 + 1.0, 25.0, sustained=True, seed=2)
    a = al.align(cover, video, SR)
    assert a.confidence < al.LOW_CONFIDENCE and al.low_confidence(a) == "low_confidence"


def test_mapping_outside_the_path_and_row():
    a = al.Alignment("x", np.array([1.0, 2.0, 3.0]), np.array([11.0, 13.0, 15.0]), 0.9)
    assert a.video_time(2.5) == pytest.approx(14.0)
    assert a.video_time(0.0) == pytest.approx(10.0)  # before the path: slope 1 from its first point
    assert a.video_time(4.0) == pytest.approx(16.0)
    assert a.cover_time(14.0) == pytest.approx(2.5) and a.cover_time(9.0) == pytest.approx(-1.0)
    assert a.cover_time(a.video_time(np.array([0.5, 1.7, 2.9, 5.0]))) == pytest.approx([0.5, 1.7, 2.9, 5.0])
    table = pa.Table.from_pylist([a.row()], schema=al.ALIGNMENT_SCHEMA)
    assert table.column("video_time_s").to_pylist() == [[11.0, 13.0, 15.0]]
    assert al.low_confidence(a) is None and al.low_confidence(a, threshold=0.95) == "low_confidence"


def test_silent_ends_of_the_cover_are_cut_before_dtw():
    chords = chord_sequence(3, n=18)
    end = chords[-1][0] + chords[-1][1]
    lead = 2.0  # the cover starts with 2 s of silence and ends with 8 s of it
    cover = synth(chords, lambda t: t + lead, end + lead + 8.0, sustained=False)
    video = synth(chords, warp, float(warp(end)) + 1.0, sustained=True, seed=4)
    a = al.align(cover, video, SR)
    onsets = np.array([c[0] for c in chords])
    err_ms = np.abs(a.video_time(onsets + lead) - warp(onsets)) * 1000
    assert np.median(err_ms) < 80 and np.percentile(err_ms, 95) < 250, err_ms
    assert al.active_range(np.zeros(SR), SR, 0.04) == (0, 25)  # all silent: the whole range


def test_aligns_a_faster_soundtrack_that_sounds_shorter_than_the_cover():
    """A video 15% faster than the cover: the cost matrix is taller than wide, where librosa returns the
    subsequence path transposed (the bug that refused the demo's faster soundtracks)."""
    chords = chord_sequence(5)
    end = chords[-1][0] + chords[-1][1]
    faster = lambda t: 0.8 + 0.85 * np.asarray(t, float)  # noqa: E731
    cover = synth(chords, lambda t: t, end + 0.5, sustained=False)
    video = synth(chords, faster, float(faster(end)) + 1.0, sustained=True, seed=5)
    a = al.align(cover, video, SR)
    onsets = np.array([c[0] for c in chords])
    err_ms = np.abs(a.video_time(onsets) - faster(onsets)) * 1000
    assert np.median(err_ms) < 80 and np.percentile(err_ms, 95) < 250, err_ms
    assert al.low_confidence(a) is None


def test_confidence_separates_the_same_piece_from_another_piece_over_several_seeds():
    """The same chords re-voiced and re-timed align above LOW_CONFIDENCE, other chord sequences stay below."""
    right, wrong = [], []
    for seed in (11, 12, 13):
        chords = chord_sequence(seed, n=16)
        end = chords[-1][0] + chords[-1][1]
        cover = synth(chords, lambda t: t, end + 0.5, sustained=False)
        video = synth(chords, lambda t: 1.0 + 1.1 * t, 1.0 + 1.1 * end + 1.0, sustained=True, seed=seed)
        other = synth(chord_sequence(seed + 50, n=16), lambda t: 1.0 + 1.1 * t, 1.0 + 1.1 * end + 1.0,
                      sustained=True, seed=seed)
        right.append(al.align(cover, video, SR).confidence)
        wrong.append(al.align(cover, other, SR).confidence)
    assert min(right) >= al.LOW_CONFIDENCE > max(wrong), (right, wrong)


def transposed(chords, semitones):
    return [(onset, dur, tuple(p + semitones for p in pitches)) for onset, dur, pitches in chords]


@pytest.mark.parametrize("semitones", [2, -5])
def test_aligns_a_transposed_cover_and_reports_its_shift(semitones):
    """A cover played 2 semitones up / 5 down from the soundtrack's key: same error bound as the untransposed
    pair of test_aligns_a_slower_later_differently_voiced_soundtrack, and the shift is reported."""
    chords = chord_sequence(1)
    end = chords[-1][0] + chords[-1][1]
    cover = synth(transposed(chords, semitones), lambda t: t, end + 0.5, sustained=False)
    video = synth(chords, warp, float(warp(end)) + 1.5, sustained=True, seed=1)
    a = al.align(cover, video, SR, song_id="s1")
    onsets = np.array([c[0] for c in chords])
    err_ms = np.abs(a.video_time(onsets) - warp(onsets)) * 1000
    assert a.transposition_semitones == semitones
    assert np.median(err_ms) < 80 and np.percentile(err_ms, 95) < 250, err_ms
    assert al.low_confidence(a) is None
    assert a.row()["transposition_semitones"] == semitones
    # the aligner that assumes one key refuses the same pair: the search is what makes it align
    assert al.low_confidence(al.align(cover, video, SR, key_invariant=False)) == "low_confidence"


def test_an_untransposed_pair_is_aligned_as_without_the_key_search():
    chords = chord_sequence(5, n=16)
    end = chords[-1][0] + chords[-1][1]
    cover = synth(chords, lambda t: t, end + 0.5, sustained=False)
    video = synth(chords, lambda t: 1.0 + 1.1 * t, 1.0 + 1.1 * end + 1.0, sustained=True, seed=5)
    searched, fixed = al.align(cover, video, SR), al.align(cover, video, SR, key_invariant=False)
    assert searched.transposition_semitones == 0 == fixed.transposition_semitones
    assert np.array_equal(searched.video_time_s, fixed.video_time_s) and searched.confidence == fixed.confidence


def test_another_piece_is_refused_in_every_transposition():
    other = synth(chord_sequence(7, n=16), lambda t: t * 1.1 + 1.0, 16.0, sustained=True, seed=2)
    chords = chord_sequence(1, n=16)
    confidences = [al.align(synth(transposed(chords, k), lambda t: t, 13.0, sustained=False), other, SR).confidence
                   for k in range(-5, 7)]
    assert max(confidences) < al.LOW_CONFIDENCE, confidences


def test_signed_shift_and_the_stricter_threshold_of_a_transposed_alignment():
    assert [al.signed_shift(k) for k in (0, 6, 7, 11, -1, 12)] == [0, 6, -5, -1, -1, 0]
    a = al.Alignment("x", np.array([0.0, 0.5]), np.array([1.0, 1.5]), al.LOW_CONFIDENCE + 0.05, transposition_semitones=3)
    assert al.low_confidence(a) == "low_confidence"  # the best of 12 keys must clear LOW_CONFIDENCE + the margin
    assert al.low_confidence(al.Alignment("x", a.cover_time_s, a.video_time_s, a.confidence)) is None  # key 0
