"""The joint meter tracker (annotators.meter) on pieces with known beats, and its parts on known answers.

The pieces are clear prototypes built here (a waltz, a march, a 4/4 chorale-like texture with a pickup or a
ritardando, a 6/8 jig, a slow 4/4), rendered with fluidsynth: bass on the downbeat, chords on the other
beats, a melody over them. Their beats are exact (the notes are placed on them). A known failure is an
xfail that fails once the tracker gets it right (a 60 BPM 4/4, doubled), so the list stays true. The rendered benchmark (bench/bench_beats.py, bench/fit_meter.py) holds the rest.
"""
from __future__ import annotations

import numpy as np
import pytest

from annotators import beats as B
from annotators import meter as M
from symmv.core.records import Note
from symmv.evaluation import rhythm

C, F, G = (48, 60, 64, 67), (53, 60, 65, 69), (43, 59, 62, 67)
PROGRESSION = (C, F, G, C)


def bar_pattern(kind: str, chord: tuple, i: int) -> tuple[int, list]:
    """(beats per bar, [(beat offset, pitches, duration in beats)]) of one bar of a prototype."""
    bass, upper = chord[0], list(chord[1:])
    if kind == "waltz":  # 3/4: bass on 1, chord on 2 and 3, a quarter-note melody
        return 3, [(0, [bass], 1), (1, upper, 0.9), (2, upper, 0.9), (0, [72 + i % 3], 1), (1, [74], 1),
                   (2, [76 - i % 2], 1)]
    if kind == "march":  # 2/4: bass on 1, chord on 2, eighths on top
        return 2, [(0, [bass], 0.9), (1, upper, 0.9)] + [(k / 2, [72 + (k + i) % 4], 0.5) for k in range(4)]
    if kind == "four":  # 4/4: bass on 1 and 3, chords on 2 and 4, eighths on top
        return 4, [(0, [bass], 1.8), (2, [bass + 7], 1.8), (1, upper, 0.9), (3, upper, 0.9)] + \
            [(k / 2, [72 + (3 * k + i) % 5], 0.5) for k in range(8)]
    if kind == "jig":  # 6/8: two dotted-quarter beats of three eighths, bass on each beat
        return 2, [(0, [bass], 1.4), (1, [bass + 7], 1.4)] + [(k / 3, [72 + (k + i) % 5], 1 / 3) for k in range(6)]
    raise ValueError(kind)


def prototype(kind: str, bpm: float = 100.0, bars: int = 14, pickup: int = 0, slow_down: float = 0.0):
    """(notes, truth): a rendered-to-be prototype and its exact beats; `slow_down` = 0.2 ends at 0.8x tempo."""
    per_bar, _ = bar_pattern(kind, C, 0)
    total = bars * per_bar + pickup

    def seconds(beat: float) -> float:  # through a tempo that falls linearly in beats
        xs = np.linspace(0.0, beat, 400)
        return 0.5 + float(np.trapezoid(60.0 / (bpm * (1 - slow_down * xs / total)), xs))

    events = [(k - pickup, [67 + k], 1) for k in range(pickup)]  # the pickup: melody alone
    for i in range(bars):
        events += [(i * per_bar + off, p, d) for off, p, d in bar_pattern(kind, PROGRESSION[i % 4], i)[1]]
    notes = sorted((Note(seconds(off + pickup), seconds(off + pickup + d), pitch, 100 if off % per_bar == 0 else 80)
                    for off, pitches, d in events for pitch in pitches), key=lambda n: n.onset_s)
    beat_s = [seconds(b) for b in range(total)]
    truth = rhythm.RhythmTruth(beats_s=beat_s, beat_in_bar=[(b - pickup) % per_bar + 1 for b in range(total)],
                               downbeats_s=beat_s[pickup::per_bar], time_signature=kind, beats_per_bar=per_bar,
                               beat_ql=1.0, tempo_bpm=float(60 / np.median(np.diff(beat_s))),
                               pickup_beats=pickup, curve="ritardando" if slow_down else "constant",
                               start_bpm=bpm, duration_s=beat_s[-1] + 1.0)
    return notes, truth


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    from symmv.io.audio import decode_audio
    from symmv.io.media import render_midi
    from symmv.io.midi import write_notes

    folder = tmp_path_factory.mktemp("meter")

    def make(name: str, notes: list[Note]) -> np.ndarray:
        midi = write_notes(notes, folder / f"{name}.mid")
        return decode_audio(render_midi(midi, folder / f"{name}.wav", sample_rate=B.SAMPLE_RATE), B.SAMPLE_RATE)

    return make


CASES = {  # name -> prototype arguments
    "waltz-3/4": dict(kind="waltz"),
    "march-2/4": dict(kind="march"),
    "4/4": dict(kind="four"),
    "4/4-pickup": dict(kind="four", pickup=1),
    "4/4-ritardando": dict(kind="four", slow_down=0.2),
    "waltz-3/4-60bpm": dict(kind="waltz", bpm=60.0),
    "jig-6/8": dict(kind="jig", bpm=70.0),  # two dotted-quarter beats per bar (madmom alone: 3 quarters, 105 BPM)
}
KNOWN_FAILURES = {
    "4/4-60bpm": (dict(kind="four", bpm=60.0), "both trackers double a 60 BPM 4/4 (the eighths read as beats)"),
}


def check(track, truth) -> dict:
    scores = rhythm.score_track(truth, track)
    assert scores["beat_f"] >= 0.9, scores
    assert scores["downbeat_f"] >= 0.85, scores
    assert scores["tempo_ok"], scores
    assert track.beats_per_bar == truth.beats_per_bar, scores
    return scores


@pytest.mark.parametrize("case", sorted(CASES))
def test_joint_tracker_gets_known_pieces_right(case, render):
    notes, truth = prototype(**CASES[case])
    check(M.track_meter(render(case.replace("/", "-"), notes), notes), truth)


@pytest.mark.parametrize("case", sorted(KNOWN_FAILURES))
def test_known_failures_stay_known(case, render):
    args, reason = KNOWN_FAILURES[case]
    notes, truth = prototype(**args)
    track = M.track_meter(render(case.replace("/", "-"), notes), notes)
    pytest.xfail(reason) if not _right(track, truth) else pytest.fail(f"{case} is now right: move it to CASES")


def _right(track, truth) -> bool:
    try:
        check(track, truth)
        return True
    except AssertionError:
        return False


def test_where_madmom_alone_fails(render):
    """madmom's DBN can only say 3 or 4 beats per bar and has no compound beat: the 2/4 march is 4 to it and
    the 6/8 jig 3 quarters a bar; the joint tracker reads 2 beats in both."""
    for kind, bpm in (("march", 100.0), ("jig", 70.0)):
        notes, truth = prototype(kind=kind, bpm=bpm)
        samples = render(f"{kind}-madmom", notes)
        assert B.track_beats(samples).beats_per_bar != truth.beats_per_bar
        assert M.track_meter(samples, notes).beats_per_bar == truth.beats_per_bar == 2


def test_subdivision_reads_halves_and_thirds():
    pulse = np.arange(0, 10, 0.6)
    halves = np.concatenate([pulse, pulse[:-1] + 0.3])
    thirds = np.concatenate([pulse, pulse[:-1] + 0.2, pulse[:-1] + 0.4])
    assert M.subdivision(pulse, np.sort(halves)) == 2
    assert M.subdivision(pulse, np.sort(thirds)) == 3
    assert M.subdivision(pulse, np.array([])) == 2


def test_tatum_grid_splits_pulses_and_covers_the_music():
    pulse = np.array([1.0, 1.5, 2.0, 2.6])
    grid = M.tatum_grid(pulse, 2, start_s=0.45, end_s=3.2)
    assert np.allclose(grid[:3], [0.5, 0.75, 1.0])  # extended back with the first interval's tatum
    assert np.allclose(grid[grid >= 2.0][:3], [2.0, 2.3, 2.6])  # the last interval split in two
    assert grid[-1] == pytest.approx(3.2, abs=0.16) and np.all(np.diff(grid) > 0)


def test_beats_of_numbers_a_pickup_as_bar_zero():
    tatums = np.arange(24) * 0.25
    beats = M.beats_of(tatums, M.Hypothesis(beat_tatums=2, meter=4, phase=2))  # bar opens on the 2nd beat
    assert [b.beat_in_bar for b in beats[:6]] == [4, 1, 2, 3, 4, 1]
    assert [b.bar for b in beats[:6]] == [0, 1, 1, 1, 1, 2]
    assert beats[1].time_s == pytest.approx(0.5)


def test_hypotheses_hold_the_truth_of_a_known_piece(render):
    """On the 4/4 prototype the right (beat level, meter, phase) is among the hypotheses and scores best."""
    notes, truth = prototype(kind="four")
    analysis = M.analyse(B.beat_activations(render("four-hyp", notes)), notes, truth.duration_s)
    chosen = M.choose(analysis.options, analysis.rows, M.model_weights())
    got = M.beats_of(analysis.tatums, chosen)
    assert chosen.meter == 4
    assert rhythm.downbeat_f(truth.downbeats_s, [b.time_s for b in got if b.is_downbeat]) >= 0.85


def test_weights_match_the_features():
    assert len(M.model_weights()) == len(M.FEATURE_NAMES)
    fit_id = M._weights_file(M.WEIGHTS_PATH)["fit_id"]
    assert fit_id in M.meter_tracker_version()  # provenance names the weights a row was chosen with


def test_notes_beyond_the_audio_are_ignored_not_a_crash(render):
    """A transcription that runs past the audio (a note after the last tatum) once raised IndexError in the
    harmony evidence; such notes carry no evidence: the same beats as without them."""
    notes, _ = prototype("waltz")
    samples = render("waltz-beyond", notes)
    end_s = len(samples) / B.SAMPLE_RATE
    beyond = notes + [Note(end_s + 30.0, end_s + 31.0, 60, 90), Note(end_s + 40.0, end_s + 40.0, 64, 90)]
    assert M.track_meter(samples, beyond, B.SAMPLE_RATE).beats == M.track_meter(samples, notes, B.SAMPLE_RATE).beats


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_an_error_for_both_trackers(bad):
    samples = np.zeros(B.SAMPLE_RATE * 3, dtype=np.float32)
    samples[1000] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        B.track_beats(samples, B.SAMPLE_RATE)
    with pytest.raises(ValueError, match="NaN or infinite"):
        M.track_meter(samples, [], B.SAMPLE_RATE)


def test_too_few_notes_fall_back_to_madmom_and_say_so(render):
    """One note is no evidence of bars: a 120 BPM click track with a single transcribed note was once read at
    40 BPM. Under MIN_ONSETS distinct onsets the joint tracker returns madmom's own track, named as madmom's."""
    clicks = [Note(0.5 + 0.5 * k, 0.5 + 0.5 * k + 0.05, 76 if k % 4 else 84, 110) for k in range(48)]
    samples = render("clicks-120", clicks)
    track = M.track_meter(samples, clicks[:1], B.SAMPLE_RATE)
    alone = B.track_beats(samples, B.SAMPLE_RATE)
    assert track.tracker == alone.tracker and "fallback: 1 note onsets" in track.version
    assert [b.time_s for b in track.beats] == [b.time_s for b in alone.beats]
    assert abs(track.tempo_bpm / 120.0 - 1) < 0.04
    enough = M.track_meter(samples, clicks, B.SAMPLE_RATE)
    assert enough.tracker == "joint-meter"


def test_music_end_follows_notes_past_the_pulse_but_not_ghosts_after_a_silence():
    pulse = np.array([0.0, 0.5, 1.0, 1.5])
    assert M.music_end(pulse, np.array([0.2, 1.4, 1.8, 2.2, 4.0, 4.3])) == 2.2  # 4.0: 1.8 s after, ghosts
    assert M.music_end(pulse, np.array([0.2, 1.0])) == 1.5  # the notes end first: the pulse's end


def test_ghost_notes_in_the_reverb_tail_add_no_beats(render):
    """Basic Pitch re-detects the decaying sound after the last note at its window starts; those notes once
    stretched the grid over the tail (3-4 beats after the music on the demo covers checked, beat F 1.00 -> 0.97)."""
    notes, truth = prototype("four")
    samples = render("four-ghosts", notes)
    last = max(n.offset_s for n in notes)
    ghosts = [Note(last + 1.0, last + 1.3, 57, 70), Note(last + 1.6, last + 1.8, 60, 60)]
    assert ghosts[-1].offset_s < len(samples) / B.SAMPLE_RATE  # inside the audio: the tail, not past the end
    track = M.track_meter(samples, notes + ghosts, B.SAMPLE_RATE)
    assert track.beats[-1].time_s < truth.beats_s[-1] + 0.07
    assert [b.time_s for b in track.beats] == [b.time_s for b in M.track_meter(samples, notes, B.SAMPLE_RATE).beats]
