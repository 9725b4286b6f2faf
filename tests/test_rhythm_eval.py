"""The rhythm benchmark's scores, tempo curves and corpus truth on hand-made answers (no rendering)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("mir_eval")

from symmv.core.records import Beat  # noqa: E402
from symmv.evaluation import rhythm  # noqa: E402

PERIOD = 0.5  # 120 BPM
BEATS = np.arange(0.0, 30.0, PERIOD)


def test_perfect_beats_score_one():
    s = rhythm.beat_scores(BEATS, BEATS)
    assert s == {"beat_f": 1.0, "cmlt": 1.0, "amlt": 1.0}
    assert rhythm.downbeat_f(BEATS[::4], BEATS[::4]) == 1.0


def test_off_beat_scores_zero_f_but_full_amlt():
    s = rhythm.beat_scores(BEATS, BEATS + PERIOD / 2)
    assert s["beat_f"] == 0.0 and s["cmlt"] == 0.0
    assert s["amlt"] == pytest.approx(1.0, abs=0.05)  # AMLt accepts the off-beat
    assert rhythm.beat_phase(BEATS, BEATS[:-1] + PERIOD / 2) == pytest.approx(-0.5)
    assert rhythm.beat_phase(BEATS, BEATS + 0.01) == pytest.approx(0.02, abs=1e-6)


def test_doubled_tempo_is_wrong():
    doubled = np.arange(0.0, 30.0, PERIOD / 2)
    s = rhythm.beat_scores(BEATS, doubled)
    assert s["beat_f"] == pytest.approx(2 / 3, abs=0.01)  # every reference hit, half the estimates extra
    assert s["cmlt"] == 0.0 and s["amlt"] > 0.9
    assert rhythm.tempo_error(120.0, 240.0) == pytest.approx(1.0)
    assert rhythm.tempo_error(120.0, 60.0) == pytest.approx(0.5)
    assert rhythm.metrical_level(120.0, 240.0) == "x2"
    assert rhythm.metrical_level(80.0, 240.0) == "x3"  # a 6/8 tracker on the eighths
    assert rhythm.metrical_level(120.0, 123.0) == "x1"
    assert math.isnan(rhythm.tempo_error(120.0, None))


def test_empty_estimate_and_reference():
    assert rhythm.beat_scores(BEATS, [])["beat_f"] == 0.0
    assert math.isnan(rhythm.beat_scores([], BEATS)["beat_f"])
    assert math.isnan(rhythm.downbeat_f([], BEATS))


def test_score_track_meter_and_downbeat_shift():
    from annotators.beats import BeatTrack, number_bars

    truth = rhythm.RhythmTruth(beats_s=list(BEATS), beat_in_bar=[i % 3 + 1 for i in range(len(BEATS))],
                               downbeats_s=list(BEATS[::3]), time_signature="3/4", beats_per_bar=3, beat_ql=1.0,
                               tempo_bpm=120.0, pickup_beats=0.0, curve="constant", start_bpm=120.0, duration_s=30.0)
    # right beats, 4/4 bars starting on the truth's beat 2
    in_bar = (np.arange(len(BEATS)) - 1) % 4 + 1
    track = BeatTrack(number_bars(BEATS, in_bar), 120.0, "test", "0")
    scores = rhythm.score_track(truth, track)
    assert scores["beat_f"] == 1.0 and scores["tempo_ok"] and not scores["meter_ok"] and scores["meter_est"] == 4
    assert scores["downbeat_f"] < 0.5
    shifted = BeatTrack([Beat(b.time_s, b.bar, (b.beat_in_bar % 3) + 1) for b in
                         number_bars(BEATS, np.arange(len(BEATS)) % 3 + 1)], 120.0, "test", "0")
    assert rhythm.downbeat_shift(truth, shifted.downbeats_s) == 3  # its "1" sits on the truth's beat 3


def test_beat_unit_conventions():
    assert rhythm.beat_unit(6, 8) == (2, 1.5)
    assert rhythm.beat_unit(3, 4) == (3, 1.0)
    assert rhythm.beat_unit(2, 4) == (2, 1.0)
    assert rhythm.beat_unit(12, 8) == (4, 1.5)
    assert rhythm.beat_unit(3, 8) == (3, 0.5)


def test_ritardando_beat_times_follow_the_integral():
    # 3/4 at 120 BPM slowing linearly (in score position) to 0.85 x over 24 quarters:
    # t(q) = 0.5 s * L / a * ln(1 + a q / L), a = -0.15
    curve = rhythm.TempoCurve("ritardando", 120.0, 1.0, 24.0)
    q = np.arange(25)
    expected = 0.5 * 24 / -0.15 * np.log(1 - 0.15 * q / 24)
    assert np.allclose(curve.seconds(q), expected, atol=1e-9)
    assert curve.bpm(24.0) == pytest.approx(102.0)
    # the rubato integral (a 1/64-quarter trapezoid) agrees with a far finer one to < 0.1 ms
    rubato = rhythm.TempoCurve("rubato", 120.0, 1.0, 24.0, seed=3)
    f = rubato.factor(np.linspace(0, 1, 1001))
    assert f.max() == pytest.approx(1.06, abs=1e-3) or f.min() == pytest.approx(0.94, abs=1e-3)
    fine = np.linspace(0, 24, 200001)
    reference = np.concatenate([[0], np.cumsum(np.diff(fine) * 0.5 / rubato.factor(fine[1:] / 24))])
    assert np.allclose(rubato.seconds(q), np.interp(q, fine, reference), atol=1e-4)
    # past the end the last tempo holds
    assert curve.seconds(25.0) - curve.seconds(24.0) == pytest.approx(60 / 102.0)


def _tiny_waltz():
    """3/4 with a one-beat pickup, then 8 bars of quarter notes (bass on the downbeat)."""
    from music21 import meter, note, stream

    part = stream.Part()
    pickup = stream.Measure(number=0)
    pickup.append(meter.TimeSignature("3/4"))
    pickup.append(note.Note("G4", quarterLength=1.0))
    pickup.paddingLeft = 2.0
    part.append(pickup)
    for bar in range(1, 9):
        m = stream.Measure(number=bar)
        for k in range(3):
            m.append(note.Note("C3" if k == 0 else "E4", quarterLength=1.0))
        part.append(m)
    score = stream.Score()
    score.insert(0, part)
    return score


def test_corpus_entry_truth_for_a_tiny_piece():
    notes, truth = rhythm.score_excerpt(_tiny_waltz(), 90.0, "ritardando", seed=1, target_s=(1.0, 100.0, 100.0))
    assert truth.time_signature == "3/4" and truth.beats_per_bar == 3 and truth.pickup_beats == 1.0
    assert len(truth.beats_s) == 25 and truth.beat_in_bar[:4] == [3, 1, 2, 3]
    assert len(truth.downbeats_s) == 8 and truth.downbeats_s[0] == truth.beats_s[1]
    # beats are the score positions through the curve (0 = the pickup note), after the lead-in
    curve = rhythm.TempoCurve("ritardando", 90.0, 1.0, 25.0)
    assert np.allclose(truth.beats_s, rhythm.LEAD_IN_S + curve.seconds(np.arange(25)), atol=1e-5)
    assert notes[0].onset_s == pytest.approx(rhythm.LEAD_IN_S)
    assert sorted({n.onset_s for n in notes}) == pytest.approx(truth.beats_s, abs=1e-5)
    assert truth.tempo_bpm == pytest.approx(60 / np.median(np.diff(truth.beats_s)))
    assert 90 * 0.85 < truth.tempo_bpm < 90


def test_excerpt_stops_at_a_bar_line_near_the_target():
    notes, truth = rhythm.score_excerpt(_tiny_waltz(), 90.0, "constant", target_s=(5.0, 7.0, 6.0))
    # music from the pickup note: bar lines after 2.67, 4.67, 6.67 s; only 6.67 s is inside [5, 7]
    assert truth.duration_s == pytest.approx(rhythm.LEAD_IN_S + 2 / 3 + 3 * 2.0, abs=1e-4)
    assert all(n.onset_s < truth.duration_s for n in notes)
    assert truth.beats_s[-1] < truth.duration_s


def test_plan_is_deterministic_and_spread():
    a, b = rhythm.corpus_plan(0), rhythm.corpus_plan(0)
    assert a == b and len({p.name for p in a}) == len(a)
    assert {p.spec.meter for p in a} == {"2/4", "3/4", "4/4", "6/8"}
    assert min(p.start_bpm for p in a) < 60 and max(p.start_bpm for p in a) > 160
    assert {p.curve for p in a} == {"constant", "ritardando", "accelerando", "rubato"}
    assert rhythm.corpus_plan(1) != a
    limited = rhythm._spread(a, 4)
    assert {p.spec.meter for p in limited} == {"2/4", "3/4", "4/4", "6/8"}


def test_grid_stops_before_an_overfull_bar():
    from music21 import note

    score = _tiny_waltz()
    bar5 = score.parts[0].getElementsByClass("Measure")[5]
    bar5.insert(3.0, note.Note("D4", quarterLength=0.5))  # a 3/4 bar holding 3.5 quarters
    grid = rhythm.bar_grid(score)
    assert grid.anchor_ql == 1.0 and grid.end_ql == 1.0 + 4 * 3.0  # bars 1-4, not the broken bar 5


def test_training_pieces_are_disjoint_from_the_benchmark_and_balanced(tmp_path):
    from symmv.sources.demo import MUSIC21_PIECES

    specs = rhythm.training_specs()
    assert len(specs) >= 60 and len({s.path for s in specs}) == len(specs)
    assert not {s.path for s in specs} & ({p.path for p in rhythm.PIECES} | {p[0] for p in MUSIC21_PIECES})
    by_meter = {m: sum(s.meter == m for s in specs) for m in ("2/4", "3/4", "4/4", "6/8")}
    assert min(by_meter.values()) >= 10, by_meter
    data = json.loads(rhythm.TRAINING_PIECES_PATH.read_text())
    data["pieces"].append({"path": rhythm.PIECES[0].path, "meter": rhythm.PIECES[0].meter, "bpm_range": [60, 90]})
    leaky = tmp_path / "leaky.json"
    leaky.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="the benchmark or the demo uses"):
        rhythm.training_specs(leaky)


def test_beats_past_where_the_truth_ends_are_not_scored():
    """A truth that stops at 20 s (its score's grid broke) says nothing of the beats after it."""
    upto = BEATS[BEATS < 20.0]
    truth = dict(beats_s=list(upto), beat_in_bar=[i % 4 + 1 for i in range(len(upto))], downbeats_s=list(upto[::4]),
                 time_signature="4/4", beats_per_bar=4, beat_ql=1.0, tempo_bpm=120.0, pickup_beats=0.0,
                 curve="constant", start_bpm=120.0, duration_s=30.0)
    from annotators.beats import BeatTrack, number_bars

    track = BeatTrack(number_bars(BEATS, np.arange(len(BEATS)) % 4 + 1), 120.0, "test", "0")  # on to 30 s
    cut = rhythm.score_track(rhythm.RhythmTruth(**truth, scored_until_s=float(upto[-1]) + PERIOD / 2), track)
    assert cut["beat_f"] == 1.0 and cut["downbeat_f"] == 1.0
    whole = rhythm.score_track(rhythm.RhythmTruth(**truth), track)  # None: the truth covers the whole audio
    assert whole["beat_f"] < 0.8 and whole["downbeat_f"] < 0.8


@pytest.mark.parametrize("path, broken", [("handel/rinaldo/Lascia_chio_pianga.mxl", True), ("bach/bwv10.7.mxl", False)])
def test_demo_truth_stops_scoring_where_the_score_grid_breaks(path, broken, tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi")
    from music21 import corpus

    from symmv.core.records import Note

    corpus.parse(path).write("midi", fp=str(tmp_path / "score.mid"))  # as symmv.sources.demo renders it
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "score.mid"))
    kept = [Note(n.start, n.end, n.pitch, n.velocity) for i in midi.instruments for n in i.notes if n.start < 29.0]
    truth = rhythm._demo_truth(path, kept)
    if broken:  # its grid breaks at 24 s while the music goes on to 29 s
        assert truth.beats_s[-1] < 25.0 < max(n.onset_s for n in kept)
        assert truth.scored_until_s == pytest.approx(truth.beats_s[-1] + np.median(np.diff(truth.beats_s)) / 2)
    else:
        assert truth.scored_until_s is None
