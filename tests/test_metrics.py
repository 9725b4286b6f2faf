import math
from pathlib import Path

import numpy as np
import pytest

from models.evaluation.metrics import (
    average_ioi_s,
    corpus_metrics,
    distance_to_real,
    empty_beat_rate,
    note_beats,
    pitch_class_entropy,
    pitch_entropy,
    quality_metrics,
    scale_consistency,
)
from symmv.core.records import Beat, Note

RELEASE = Path(__file__).resolve().parents[2] / "shared/data/symmv-release"


def n(onset, offset, pitch, **kw):
    return Note(onset_s=onset, offset_s=offset, pitch=pitch, velocity=80, **kw)


def test_known_answers_by_hand():
    # C E G F#: 3 of 4 fit C major, but G major (G A B C D E F#) holds all 4 -> SC = 1
    notes = [n(0, 0.5, 60), n(0, 0.5, 64), n(0, 0.5, 67), n(0.5, 1.0, 66)]
    assert scale_consistency(notes) == 1.0
    # C, C#, D, D#: no 7-note diatonic scale holds 4 adjacent semitones -> max 3/4
    assert scale_consistency([n(0, 1, p) for p in (60, 61, 62, 63)]) == 0.75
    # four distinct pitches, equally often -> 2 bits; all in two pitch classes -> 1 bit
    assert pitch_entropy([n(0, 1, p) for p in (60, 62, 72, 74)]) == pytest.approx(2.0)
    assert pitch_class_entropy([n(0, 1, p) for p in (60, 62, 72, 74)]) == pytest.approx(1.0)
    assert pitch_entropy([n(0, 1, 60)] * 3) == 0.0
    # IOI (mgeval): onsets 0, 0, 0.5, 1.5 -> diffs 0, 0.5, 1.0 -> mean 0.5 s; distinct onsets -> 0.75 s
    notes = [n(0, 1, 60), n(0, 1, 64), n(0.5, 1, 67), n(1.5, 2, 72)]
    assert average_ioi_s(notes) == pytest.approx(0.5)
    assert average_ioi_s(notes, unique_onsets=True) == pytest.approx(0.75)
    assert math.isnan(average_ioi_s([n(0, 1, 60)]))
    assert all(math.isnan(v) for v in quality_metrics([], tempo_bpm=120).values())


def test_empty_beat_rate_per_beat_with_muspy_end_quirk():
    # 120 BPM -> beat = 0.5 s. Note 0-0.5 s covers beat 0 AND beat 1 (ends exactly on its boundary,
    # muspy counts end // resolution inclusive); note 2.0-2.2 s covers beat 4. Beats 0..4 -> 5 beats,
    # occupied {0, 1, 4} -> EBR = 2/5.
    notes = [n(0.0, 0.5, 60), n(2.0, 2.2, 62)]
    assert quality_metrics(notes, tempo_bpm=120)["EBR"] == pytest.approx(2 / 5)
    # the same on the 16th grid (4 per beat): a 1-beat note at beat 0 and a 16th at beat 4 (bar 1)
    grid = [n(0, 0, 60, bar=0, position=0, duration_16th=4), n(0, 0, 62, bar=1, position=0, duration_16th=1)]
    assert quality_metrics(grid)["EBR"] == pytest.approx(2 / 5)
    # tracked beats every 0.6 s starting at 0.3 s: the grid is shifted so t = 0 lies in beat 0
    beats = [Beat(0.3 + 0.6 * k, k // 4, k % 4 + 1) for k in range(8)]
    nb = note_beats([n(0.3, 0.9, 60)], beats=beats)
    np.testing.assert_allclose(nb, [[1.0, 2.0]])
    assert empty_beat_rate(nb) == pytest.approx(1 / 3)  # beats 0..2, occupied 1..2
    assert math.isnan(quality_metrics([n(0, 1, 60)])["EBR"])  # no grid given -> NaN, others computed


muspy = pytest.importorskip("muspy")


def to_muspy(notes, resolution=220, tempo_bpm=120.0):
    """Build a muspy.Music note by note (avoids muspy 0.5.0's broken from_music21/write_midi paths)."""
    ticks = resolution * tempo_bpm / 60.0
    track = muspy.Track(program=0, notes=[
        muspy.Note(time=round(x.onset_s * ticks), pitch=x.pitch,
                   duration=max(1, round(x.offset_s * ticks) - round(x.onset_s * ticks)), velocity=x.velocity)
        for x in notes])
    return muspy.Music(resolution=resolution, tempos=[muspy.Tempo(time=0, qpm=tempo_bpm)], tracks=[track])


@pytest.mark.parametrize("seed", range(5))
def test_matches_muspy_on_random_pieces(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(5, 200))
    onsets = np.sort(rng.integers(0, 40 * 220, k)) / 440.0  # on the 220-tpq tick grid, 120 BPM
    durs = rng.integers(1, 3 * 220, k) / 440.0
    notes = [n(float(o), float(o + d), int(p)) for o, d, p in zip(onsets, durs, rng.integers(30, 100, k))]
    ours = quality_metrics(notes, tempo_bpm=120)
    music = to_muspy(notes)
    assert ours["SC"] == pytest.approx(muspy.scale_consistency(music))
    assert ours["PE"] == pytest.approx(muspy.pitch_entropy(music))
    assert ours["PCE"] == pytest.approx(muspy.pitch_class_entropy(music))
    assert ours["EBR"] == pytest.approx(muspy.empty_beat_rate(music))


@pytest.mark.skipif(not (RELEASE / "midi").is_dir(), reason="SymMV release not present")
def test_release_pieces_match_muspy_reader_and_paper_range():
    from models.evaluation.audio import notes_from_midi

    rows = []
    for path in sorted((RELEASE / "midi").glob("*.mid"))[:8]:
        notes = notes_from_midi(path)
        ours = quality_metrics(notes, tempo_bpm=120)  # release README: fixed 120 BPM grid
        music = muspy.read_midi(path)  # muspy's own MIDI reader (ticks, 220 tpq)
        assert ours["SC"] == pytest.approx(muspy.scale_consistency(music))
        assert ours["PCE"] == pytest.approx(muspy.pitch_class_entropy(music))
        assert ours["EBR"] == pytest.approx(muspy.empty_beat_rate(music))
        rows.append(ours)
    means = corpus_metrics(rows)
    assert means["n_pieces_quality"] == 8
    # Loose plausibility against the paper's Real row (0.986, 4.197, 2.633, 0.023, 0.184); the full
    # comparison is models/evaluation/eval_release.py.
    assert 0.9 < means["SC"] <= 1 and 3.5 < means["PE"] < 5 and 2.2 < means["PCE"] < 3.1
    assert 0.08 < means["IOI"] < 0.4 and means["EBR"] < 0.1


def test_corpus_mean_and_distance():
    rows = [{"SC": 1.0, "PE": 2.0, "PCE": 1.0, "EBR": math.nan, "IOI": 0.2},
            {"SC": 0.5, "PE": 4.0, "PCE": 3.0, "EBR": 0.1, "IOI": 0.4}]
    m = corpus_metrics(rows)
    assert m == pytest.approx({"SC": 0.75, "PE": 3.0, "PCE": 2.0, "EBR": 0.1, "IOI": 0.3, "n_pieces_quality": 2})
    d = distance_to_real(m, {"SC": 0.986, "PE": 4.197, "PCE": 2.633, "EBR": 0.023, "IOI": 0.184})
    assert d["PE"] == pytest.approx(1.197) and d["IOI"] == pytest.approx(0.116)
