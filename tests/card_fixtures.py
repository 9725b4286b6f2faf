"""A tiny SymMV build written on the fly (real Parquet shards via symmv.core.shards.write_shard), with its known
numbers, for the data-card and notebook tests."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from symmv.core.shards import commit_shards, write_shard

ALL_TABLES = ("songs", "notes", "beats", "chords", "key_windows", "video_features", "matches", "rejects")

# (song_id, split, genre, tempo_bpm, key (tonic, mode), transcriber)
SONGS = [
    ("s0", "train", "Pop", 100.0, (7, "major"), "basic-pitch 0.4.0"),  # G major: G -> C, D -> G after transposing
    ("s1", "train", "Pop", 110.0, (0, "major"), "basic-pitch 0.4.0"),
    ("s2", "train", "Pop", 120.0, (9, "minor"), "basic-pitch 0.4.0"),
    ("s3", "train", "Pop", 128.0, (2, "major"), "basic-pitch 0.4.0"),
    ("s4", "train", "Rock", 140.0, (4, "minor"), "basic-pitch 0.4.0"),
    ("s5", "val", "Rock", 150.0, (0, "major"), "basic-pitch 0.4.0"),
    ("s6", "val", "Rock", 160.0, (5, "major"), "pti 1.0"),
    ("s7", "test", "Jazz", 90.0, (2, "minor"), "pti 1.0"),  # 1 song: the BPM plot falls back to a histogram
]
COVER_S, VIDEO_S = 90.0, 100.0
NOTES_PER_SONG, BEATS_PER_SONG, CHORDS_PER_SONG = 4, 8, 4
REJECTS = [("r0", "transcribe", "no_notes"), ("r1", "transcribe", "no_notes"), ("r2", "match", "no_video_match")]
SEMANTIC_DIM, SEMANTIC_FRAMES = 8, 3

EXPECTED = {
    "songs": len(SONGS), "music_hours": "0.20 h (12.0 min)", "video_hours": "0.22 h (13.3 min)",
    "splits": {"train": 5, "val": 2, "test": 1}, "notes": len(SONGS) * NOTES_PER_SONG,
    "transcribers": {"basic-pitch 0.4.0": 6, "pti 1.0": 2}, "rejects": {("transcribe", "no_notes"): 2,
                                                                          ("match", "no_video_match"): 1},
}


def _provenance(transcriber: str) -> str:
    return json.dumps({"beats": "madmom 0.16.1", "chords": "chords 1", "genre": "source info.json",
                       "key": "key-ks 1", "match": "matching-1 (local) threshold=0.55", "notes": transcriber},
                      sort_keys=True)


def song_rows():
    for i, (song_id, split, genre, bpm, (tonic, mode), transcriber) in enumerate(SONGS):
        yield split, {
            "song_id": song_id, "cover_title": f"Song {i} | Piano Tutorial", "song": f"Song {i}",
            "artist": f"Artist {i % 3}", "cover_id": song_id, "cover_url": f"demo://cover/{song_id}",
            "cover_channel": "Fixture Piano", "video_id": f"v{i}", "video_url": f"demo://video/v{i}",
            "video_title": f"Artist {i % 3} - Song {i} (Official Video)", "match_score": 0.9,
            "cover_duration_s": COVER_S, "video_duration_s": VIDEO_S, "n_notes": NOTES_PER_SONG,
            "tempo_bpm": bpm, "video_tempo_bpm": 110.0, "key_tonic": tonic, "key_mode": mode, "key_confidence": 0.8,
            "genre": genre, "midi_path": f"midi/{song_id}.mid", "transcriber": transcriber,
            "provenance": _provenance(transcriber),
        }


def note_rows(song_id: str, tonic: int) -> list[dict]:
    pitches = [60 + tonic, 64 + tonic, 67 + tonic, 72 + tonic]
    return [{"song_id": song_id, "track": "melody" if p == max(pitches) else "accompaniment",
             "onset_s": 0.5 * k, "offset_s": 0.5 * k + 0.45, "pitch": p, "velocity": 80, "bar": 0, "position": 2 * k,
             "duration_16th": 2} for k, p in enumerate(pitches)]


def beat_rows(song_id: str) -> list[dict]:
    return [{"song_id": song_id, "time_s": 0.25 * k, "bar": k // 4, "beat_in_bar": k % 4 + 1}
            for k in range(BEATS_PER_SONG)]


def chord_rows(song_id: str, tonic: int, mode: str) -> list[dict]:
    # I, V, IV, I (major) or i, v7, iv, i (minor) of the song's key, one beat each
    degrees = [(0, "M"), (7, "M"), (5, "M"), (0, "M")] if mode == "major" else \
        [(0, "m"), (7, "7"), (5, "m"), (0, "m")]
    return [{"song_id": song_id, "start_s": 0.25 * k, "end_s": 0.25 * (k + 1), "bar": 0, "position": 4 * k,
             "root": (tonic + d) % 12, "quality": q, "bass": (tonic + d) % 12} for k, (d, q) in enumerate(degrees)]


def video_row(song_id: str, i: int, genre: str) -> dict:
    rng = np.random.default_rng(i)
    center = {"Pop": 0.0, "Rock": 3.0, "Jazz": -3.0}[genre]
    semantic = (center + 0.1 * rng.standard_normal((SEMANTIC_FRAMES, SEMANTIC_DIM))).astype(np.float32)
    return {"song_id": song_id, "video_id": f"v{i}", "fps": 6.0, "n_frames": SEMANTIC_FRAMES, "duration_s": 0.5,
            "semantic_encoder": "fixture-encoder 1", "semantic_dim": SEMANTIC_DIM, "semantic": semantic.tolist(),
            "color_bins": 2, "color": np.full((SEMANTIC_FRAMES, 12), 1 / 12, np.float32).tolist(),
            "text_score": [0.0] * SEMANTIC_FRAMES, "motion": [0.05, 0.1], "motion_mean": 0.075,
            "shot_boundaries_s": [1.0], "annotator": "symmv.video 1 {}"}


def build_dataset(root: Path, tables=ALL_TABLES, write_midi: bool = False) -> Path:
    """Write the fixture build under root (only `tables`); returns root."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for i, (split, song) in enumerate(song_rows()):
        sid, tonic, mode = song["song_id"], song["key_tonic"], song["key_mode"]
        rows.setdefault(("songs", split), []).append(song)
        rows.setdefault(("notes", split), []).extend(note_rows(sid, tonic))
        rows.setdefault(("beats", split), []).extend(beat_rows(sid))
        rows.setdefault(("chords", split), []).extend(chord_rows(sid, tonic, mode))
        rows.setdefault(("key_windows", split), []).append(
            {"song_id": sid, "bar_start": 0, "bar_end": 1, "start_s": 0.0, "end_s": 2.0, "key_tonic": tonic,
             "key_mode": mode, "key_confidence": 0.8, "key_margin": 0.1})
        rows.setdefault(("video_features", split), []).append(video_row(sid, i, song["genre"]))
        rows.setdefault(("matches", split), []).append(
            {"cover_id": sid, "video_id": song["video_id"], "score": 0.9, "reason": "matched",
             "decision_json": "{}", "matcher_version": "matching-1"})
        if write_midi:
            _write_midi(root / song["midi_path"], note_rows(sid, tonic))
    rows[("rejects", "rejected")] = [{"item_id": i, "stage": s, "reason": r, "detail": f"{s} failed"}
                                     for i, s, r in REJECTS]
    rows[("matches", "rejected")] = [{"cover_id": "r2", "video_id": None, "score": 0.3, "reason": "no_eligible",
                                      "decision_json": "{}", "matcher_version": "matching-1"}]
    for (table, split), data in rows.items():
        if table in tables:
            write_shard(root, table, split, data, "fixture")
    commit_shards(root, generation="fixture")
    (root / "build_report.json").write_text(json.dumps({"songs": len(SONGS), "rejects": len(REJECTS),
                                                        "wall_s": 1.0}))
    return root


def _write_midi(path: Path, notes: list[dict]) -> None:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=n["velocity"], pitch=n["pitch"], start=n["onset_s"], end=n["offset_s"])
                   for n in notes]
    midi.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))


def write_video(path: Path, seconds: float = 2.0) -> Path:
    """A small test-pattern video made by ffmpeg's lavfi source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=duration={seconds}:size=160x90:rate=10", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path
