"""The SymMV release as a source: MIDI read as notes, beats from the notes, no video files."""
import json

import numpy as np

import symmv
from annotators.beats import track_beats_from_notes
from symmv.core.records import Note
from symmv.sources.release import discover_release


def test_notes_beat_tracker_finds_tempo_and_downbeats_of_a_steady_pulse():
    # 100 BPM, 4/4, a pickup beat; bass note on every downbeat, chord tones on every beat.
    period, pickup = 0.6, 1
    notes = []
    for k in range(64):
        t = 1.0 + k * period
        notes.append(Note(t, t + 0.3, 72 + (k % 3), 80))
        if (k - pickup) % 4 == 0:
            notes.append(Note(t, t + 1.0, 40, 100))
    track = track_beats_from_notes(notes)
    assert abs(track.tempo_bpm - 100) < 2
    downbeats = np.array(track.downbeats_s)
    assert len(downbeats) >= 12
    bass_times = np.array([n.onset_s for n in notes if n.pitch == 40])
    assert all(np.min(np.abs(bass_times - d)) < 0.05 for d in downbeats)
    assert track.tracker == "notes-dp" and "librosa" in track.version


def test_discover_release_pairs_each_midi_with_its_video_url(symmv_release):
    items, rejects = discover_release(symmv_release, limit=5)
    assert len(items) == 5 and not rejects
    assert items[0].media_path.endswith("midi/00001.mid")
    assert "paired_video" not in items[0].info  # the pair is the source's, not a field a file could claim
    assert items[0].paired_video["webpage_url"].startswith("https://www.youtube.com/watch?v=")


def test_build_symmv_over_the_release(symmv_release, tmp_path):
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    summary = build_symmv(config=BuildConfig(source="symmv-release", source_dir=symmv_release, out=tmp_path / "ds",
                                             card_dir=tmp_path / "cards", limit=3, progress=False))
    songs = symmv.load("songs", root=tmp_path / "ds")
    assert summary["songs"] == len(songs) == 3 and summary["rejects"] == 0
    assert songs.video_url.str.startswith("https://www.youtube.com/").all()
    assert songs.transcriber.str.startswith("midi-file").all()
    assert songs.key_mode.isin(["major", "minor"]).all() and songs.tempo_bpm.between(40, 240).all()
    assert json.loads(songs.provenance[0])["beats"].startswith("notes-dp")
    assert len(symmv.load("video_features", root=tmp_path / "ds")) == 0  # the release ships no videos
    notes = symmv.load("notes", root=tmp_path / "ds")
    assert set(notes.track) == {"melody", "accompaniment"} and notes.bar.notna().all()
