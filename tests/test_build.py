"""End to end: the real demo source, a real Prefect run of build-symmv, real Parquet on disk."""
import json
from pathlib import Path

import mir_eval
import numpy as np
import pretty_midi
import pytest

import symmv
from symmv.sources.local import discover
from conftest import TINY  # noqa: E402

YTDLP_FIELDS = {"id", "title", "uploader", "channel", "channel_id", "duration", "upload_date", "webpage_url",
                "description", "tags"}


def test_demo_source_is_in_ytdlp_layout(tiny_source: Path):
    covers, rejects = discover(tiny_source / "covers")
    videos, _ = discover(tiny_source / "videos")
    assert len(covers) == 5 and not rejects
    for item in covers + videos:
        assert YTDLP_FIELDS <= set(item.info), YTDLP_FIELDS - set(item.info)
        assert Path(item.media_path).stem == item.id and item.info["duration"] > 0
    kinds = [v.info["tags"][0] for v in videos]
    assert kinds.count("official") == 3 and "lyric" in kinds  # song 4 has none, song 3 only a lyric video
    truth = json.loads((tiny_source / "ground_truth" / "labels.json").read_text())
    assert set(truth) == {c.id for c in covers}
    assert all((tiny_source / "ground_truth" / f"{c.id}.mid").is_file() for c in covers)


def test_build_writes_songs_notes_midi_and_rejects(tiny_build, tiny_source):
    root, summary = tiny_build
    songs, notes, rejects = (symmv.load(t, root=root) for t in ("songs", "notes", "rejects"))
    assert summary["songs"] == len(songs) >= 3
    assert set(songs["split"]) <= {"train", "val", "test"}
    labels = json.loads((tiny_source / "ground_truth" / "labels.json").read_text())
    covers = {c.id: c for c in discover(tiny_source / "covers")[0]}
    # The cover without any video is quarantined by the matcher with its reason; nothing else crashed.
    no_video = [cid for cid in covers if not any(
        labels[cid]["song"] in v.info["title"] for v in discover(tiny_source / "videos")[0])]
    assert len(no_video) == 1
    row = rejects[rejects.item_id == no_video[0]].iloc[0]
    assert (row.stage, row.reason) == ("match", "no_video_match") and "score" in row.detail
    for song in songs.itertuples():
        assert song.transcriber.startswith("basic-pitch ")
        assert json.loads(song.provenance)["notes"] == song.transcriber
        assert song.artist == labels[song.cover_id]["artist"] and song.song == labels[song.cover_id]["song"]
        assert "Official" in song.video_title
        assert (root / song.midi_path).is_file()
        assert song.n_notes == (notes.song_id == song.song_id).sum() > 0


def test_build_writes_a_data_card(tiny_build):
    root, summary = tiny_build
    card = Path(summary["card"]).read_text()
    assert card.startswith("---\n") and "basic-pitch" in card and "CC BY-NC-SA" in card
    assert "no_video_match" in card  # the rejects are reported, not hidden


def test_transcribed_notes_match_the_held_aside_score(tiny_build, tiny_source):
    """Onset F1 (50 ms) of the pipeline's notes against the ground-truth MIDI the demo kept aside."""
    root, _ = tiny_build
    notes = symmv.load("notes", root=root)
    f1s = []
    for song in symmv.load("songs", root=root).itertuples():
        ref = pretty_midi.PrettyMIDI(str(tiny_source / "ground_truth" / f"{song.cover_id}.mid")).instruments[0].notes
        est = notes[notes.song_id == song.song_id]
        ref_iv = np.array([[n.start, n.end] for n in ref])
        ref_hz = mir_eval.util.midi_to_hz(np.array([n.pitch for n in ref]))
        est_iv = est[["onset_s", "offset_s"]].to_numpy()
        est_hz = mir_eval.util.midi_to_hz(est["pitch"].to_numpy().astype(float))
        _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_iv, ref_hz, est_iv, est_hz, offset_ratio=None)
        f1s.append(f1)
    assert np.mean(f1s) > 0.6, f1s  # basic-pitch on rendered piano: ~0.75-0.8 measured


def test_same_source_into_a_new_out_or_copied_gives_byte_identical_shards_from_the_cache(
        tiny_build, tiny_source, build_cache, tmp_path):
    import shutil

    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    first, _ = tiny_build
    copied = tmp_path / "copied-source"
    shutil.copytree(tiny_source, copied)  # new paths and mtimes, same content
    out = tmp_path / "out"
    summary = build_symmv(config=BuildConfig(source_dir=copied, out=out, card_dir=tmp_path / "cards", progress=False, **TINY,
                                             cache_dir=build_cache))
    assert summary["cache_misses"] == {} and sum(summary["cache_hits"].values()) > 0, summary
    assert summary["stage_s"] == {}  # no stage ran again
    tmp_path = out
    files = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
    for rel in files:
        assert (first / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_every_song_has_rhythm_symbolic_and_video_annotations(tiny_build):
    root, _ = tiny_build
    songs = symmv.load("songs", root=root)
    notes, beats, chords, video = (symmv.load(t, root=root) for t in ("notes", "beats", "chords", "video_features"))
    for song in songs.itertuples():
        prov = json.loads(song.provenance)
        assert {"beats", "quantize", "skyline", "chords", "key", "semantic", "video_tempo"} <= set(prov)
        song_notes = notes[notes.song_id == song.song_id]
        assert set(song_notes.track) == {"melody", "accompaniment"}
        assert song_notes[["bar", "position", "duration_16th"]].notna().all().all()
        assert (song_notes.duration_16th >= 1).all()
        song_beats = beats[beats.song_id == song.song_id]
        assert len(song_beats) >= 4 and (song_beats.beat_in_bar == 1).any()
        assert 40 < song.tempo_bpm < 240
        assert 90 <= song.video_tempo_bpm <= 130  # paper sec. 4.1 mapping
        assert 0 <= song.key_tonic < 12 and song.key_mode in ("major", "minor")
        song_chords = chords[chords.song_id == song.song_id]
        assert len(song_chords) and song_chords["quality"].isin(
            ["M", "m", "7", "M7", "m7", "o", "o7", "+", "sus2", "sus4", "N", "X"]).all()
        feats = video[video.song_id == song.song_id].iloc[0]
        assert feats.fps == 6.0 and feats.n_frames == len(feats.color)
        assert feats.semantic_encoder.startswith("efficientnet-lite0") and feats.semantic_dim == 1280
        assert len(feats.semantic) == feats.n_frames and len(feats.semantic[0]) == 1280


@pytest.mark.slow
def test_the_report_of_a_small_dataset_counts_the_work_of_its_first_pass(tiny_source, tmp_path):
    """The splits pass re-reads every song from the cache; the report must still say what the build computed
    (a fresh cache: misses and stage times), not the re-reads (it said 100% cache hits and no stage time)."""
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    summary = build_symmv(config=BuildConfig(source_dir=tiny_source, out=tmp_path / "out", card_dir=tmp_path / "cards",
                                             progress=False, **TINY, cache_dir=tmp_path / "fresh-cache"))
    assert summary["split_overrides"], "the tiny source no longer needs the splits pass: pick another fixture"
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert report["cache_misses"].get("transcribe", 0) >= 1, report["cache_misses"]
    assert "transcribe" in report["stage_s"] and report["stage_s"]["transcribe"]["songs"] >= 1, report["stage_s"]


def test_the_joint_beat_tracker_runs_in_a_build_and_stores_its_meter(tiny_build, tiny_source, build_cache, tmp_path):
    """--beat-tracker joint through the pipeline: its beats, meter and provenance in the tables (transcription
    from a copy of the session's cache, so its own entries never reach the cache other tests tamper with; the
    rhythm stage and what follows it run again)."""
    import shutil

    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    out, cache = tmp_path / "joint", tmp_path / "cache"
    shutil.copytree(build_cache, cache)
    summary = build_symmv(config=BuildConfig(source_dir=tiny_source, out=out, card_dir=tmp_path / "cards",
                                             progress=False, **TINY, cache_dir=cache, beat_tracker="joint"))
    assert summary["songs"] == tiny_build[1]["songs"], summary["reject_reasons"]
    songs, beats = symmv.load("songs", root=out), symmv.load("beats", root=out)
    assert songs.meter.notna().all() and set(songs.meter) <= {2, 3, 4}
    assert all(json.loads(p)["beats"].startswith("joint-meter meter-joint") for p in songs.provenance)
    for song in songs.itertuples():  # each song's bars hold its meter's beats
        mine = beats[beats.song_id == song.song_id]
        assert len(mine) >= 2 and mine.beat_in_bar.max() <= song.meter
