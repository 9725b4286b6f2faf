"""Music QC: note statistics and each filter on generated fixtures with known answers; the piano classifier
on rendered piano vs choir clips (fluidsynth, the project's soundfont)."""
import shutil
from dataclasses import replace

import numpy as np
import pytest

from annotators import music_qc as qc
from symmv.core.records import Note

SR = 22050


def features(notes, duration_s, timbre=()):
    return qc.MusicFeatures(**qc.note_statistics(notes, duration_s), segment_start_s=tuple(range(len(timbre))),
                            segment_timbre=tuple(timbre))


def arpeggios(duration_s, step_s=0.25):
    """A plausible accompaniment: C-G-E-G-... over two octaves, a melody note every beat above it."""
    pattern = [48, 55, 64, 55, 50, 57, 65, 57, 43, 50, 59, 50]
    notes = [Note(t, t + 2 * step_s, pattern[i % len(pattern)], 70) for i, t in enumerate(np.arange(0, duration_s - 0.5, step_s))]
    notes += [Note(t, t + 0.5, 72 + [0, 2, 4, 5, 7, 5, 4, 2][i % 8], 80) for i, t in enumerate(np.arange(0, duration_s - 0.5, 0.5))]
    return notes


def test_note_statistics_known_answers():
    stats = qc.note_statistics([Note(0.0, 1.0, 60, 80), Note(2.0, 3.0, 72, 80)], 4.0)
    assert stats["silence_share"] == pytest.approx(0.5)
    assert stats["longest_gap_s"] == pytest.approx(1.0)  # 1-2 s and 3-4 s (the trailing edge counts)
    assert stats["note_density_per_s"] == pytest.approx(0.5)
    assert stats["median_pitch"] == 66 and stats["pitch_span"] == pytest.approx(0.9 * 12)
    assert stats["polyphony_p95"] == 1.0
    chord = [Note(0.0, 2.0, p, 80) for p in (60, 64, 67, 72)]
    assert qc.note_statistics(chord, 2.0)["polyphony_p95"] == 4.0
    assert qc.note_statistics(chord, 2.0)["onsets_per_s_p95"] == 4.0
    empty = qc.note_statistics([], 3.0)
    assert empty["silence_share"] == 1.0 and empty["longest_gap_s"] == pytest.approx(3.0) and empty["n_notes"] == 0


def test_too_short():
    assert qc.too_short(features(arpeggios(10), 10)) == "too_short"
    assert qc.too_short(features(arpeggios(25), 25)) is None


def test_fragmented():
    notes = arpeggios(30)
    assert qc.fragmented(features(notes, 30)) is None
    islands = [n for n in notes if n.onset_s % 10 < 2]  # 2 s of music every 10 s
    assert qc.fragmented(features(islands, 30)) == "fragmented"
    scattered = notes[::25]  # one note in 25
    assert qc.fragmented(features(scattered, 30)) == "fragmented"
    long_song = arpeggios(120)
    one_hole = [n for n in long_song if not 50 <= n.onset_s < 67]  # a 17-s hole in 2 min of dense music
    f = features(one_hole, 120)
    assert f.silence_share < 0.2 and f.longest_gap_s > 16 and qc.fragmented(f) == "fragmented"
    pause = [n for n in long_song if not 50 <= n.onset_s < 56]  # a 6-s pause: real covers have those
    assert qc.fragmented(features(pause, 120)) is None


def test_implausible():
    assert qc.implausible(features(arpeggios(30), 30)) is None
    drone = [Note(t, t + 0.3, 69, 80) for t in np.arange(0, 29, 0.5)]
    assert qc.implausible(features(drone, 30)) == "implausible"
    top = [replace(n, pitch=n.pitch + 36) for n in arpeggios(30)]
    assert qc.implausible(features(top, 30)) == "implausible"
    rng = np.random.default_rng(0)
    clusters = [Note(t, t + 0.4, int(p), 90) for t in np.arange(0, 29, 0.2)
                for p in rng.choice(np.arange(30, 100), 14, replace=False)]
    assert qc.implausible(features(clusters, 30)) == "implausible"
    assert qc.implausible(features([], 30)) is None  # nothing to judge


def test_non_piano_share_with_a_known_classifier():
    # a one-feature classifier: p(piano) = sigmoid(-(decay + 10) / 5): decaying notes are piano
    n = len(qc.TIMBRE_FEATURES)
    coef = np.zeros(n)
    coef[qc.TIMBRE_FEATURES.index("decay_db_per_s")] = -1.0
    clf = qc.PianoClassifier(mean=tuple([-10.0] + [0.0] * (n - 1)), scale=tuple([5.0] + [1.0] * (n - 1)),
                             coef=tuple(coef), intercept=0.0)
    window = lambda decay: tuple([decay] + [0.0] * (n - 1))  # noqa: E731
    piano, organ = window(-30.0), window(0.0)
    f = features(arpeggios(30), 30, [organ, organ, organ] + [piano] * 3)  # a 15-s non-piano half
    assert qc.non_piano_share(f, classifier=clf) == pytest.approx(0.5)
    assert qc.non_piano(f, classifier=clf) == "non_piano"  # 0.5 > 0.4
    f = features(arpeggios(30), 30, [organ, organ] + [piano] * 4)  # a 10-s talking intro
    assert qc.non_piano_share(f, classifier=clf) == pytest.approx(2 / 6)
    assert qc.non_piano(f, classifier=clf) is None
    assert qc.non_piano(features([], 30), classifier=clf) is None  # no window with notes: not judged here


def test_music_qc_order_and_committed_classifier():
    assert qc.REASONS == ("too_short", "non_piano", "implausible", "fragmented")
    short_and_sparse = features(arpeggios(8)[::20], 8)
    assert qc.fragmented(short_and_sparse) == "fragmented" and qc.music_qc(short_and_sparse) == "too_short"
    assert qc.PIANO_CLASSIFIER is not None, "annotators/music_qc_piano.json must ship with the module"
    assert len(qc.PIANO_CLASSIFIER.coef) == len(qc.TIMBRE_FEATURES)
    assert set(qc.MUSIC_QC_SCHEMA.names) >= {"song_id", "silence_share", "non_piano_share", "qc_reason", "qc_version"}
    import pyarrow as pa

    row = qc.qc_row("s1", short_and_sparse)
    table = pa.Table.from_pylist([row], schema=qc.MUSIC_QC_SCHEMA)
    assert table.column("qc_reason").to_pylist() == ["too_short"] and table.num_rows == 1
    with pytest.raises(ValueError, match="22050"):
        qc.music_features(np.zeros(16000, np.float32), 16000, [])


def test_segments_skip_silence_and_shift_notes():
    audio = np.zeros(SR * 12, np.float32)
    notes = [Note(6.0 + 0.5 * i, 6.4 + 0.5 * i, 60 + i, 80) for i in range(6)]  # 6-9 s only
    segs = qc.segments(audio, SR, notes)
    assert [s[0] for s in segs] == [5.0]  # 0-5 s has no notes, 10-12 s is too short (and empty)
    start, clip, shifted = segs[0]
    assert len(clip) == 5 * SR and shifted[0].onset_s == pytest.approx(1.0) and len(shifted) == 6


def _render(tmp_path, program, notes, name):
    pretty_midi = pytest.importorskip("pretty_midi")
    from symmv.io.media import render_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.onset_s, end=n.offset_s) for n in notes]
    pm.instruments.append(inst)
    pm.write(str(tmp_path / f"{name}.mid"))
    return render_midi(tmp_path / f"{name}.mid", tmp_path / f"{name}.wav", sample_rate=SR, gain=0.5)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_classifier_tells_rendered_piano_from_choir(tmp_path):
    """The real path on rendered 10-s clips: decoded audio + basic-pitch notes, as the QC stage sees them."""
    pytest.importorskip("basic_pitch")
    from symmv.io.audio import decode_audio
    from symmv.transcription import transcribe

    verdicts = {}
    for program, name in ((0, "piano"), (52, "choir")):
        wav = _render(tmp_path, program, arpeggios(10), name)
        f = qc.music_features(decode_audio(wav, SR), SR, transcribe(wav, backend="basic-pitch").notes)
        assert len(f.segment_timbre) == 2
        verdicts[name] = (qc.non_piano_share(f), qc.non_piano(f))
    assert verdicts["piano"] == (0.0, None) and verdicts["choir"] == (1.0, "non_piano"), verdicts


def test_long_covers_keep_at_most_max_segments_evenly_spread():
    audio = np.zeros(SR * 300, np.float32)
    notes = [Note(t, t + 0.3, 60 + int(t) % 12, 80) for t in np.arange(0, 299, 0.5)]
    starts = [s[0] for s in qc.segments(audio, SR, notes)]
    assert len(starts) == qc.MAX_SEGMENTS and starts[0] == 0.0 and starts[-1] == 295.0
