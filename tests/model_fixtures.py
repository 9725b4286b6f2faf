"""A synthetic-but-musical SymMV fixture: pop progressions with chord-tone melodies and bass+triad
accompaniment, and video features whose semantic part encodes the key. Used by the model tests and
bench/bench_models.py (the tiny model must beat the unigram baseline on it); never mistaken for data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PROGRESSIONS = [[(0, "M"), (7, "M"), (9, "m"), (5, "M")],  # I V vi IV
                [(0, "M"), (5, "M"), (7, "M"), (0, "M")],  # I IV V I
                [(9, "m"), (5, "M"), (0, "M"), (7, "M")]]  # vi IV I V
TRIADS = {"M": (0, 4, 7), "m": (0, 3, 7)}
MELODY_RHYTHMS = [(0, 4, 8, 12), (0, 6, 8, 12, 14), (0, 2, 4, 8)]
KEYS = (0, 7, 2, 5)  # few keys, so that a small fixture shows each key several times


def synthetic_tables(n_songs: int = 24, seed: int = 0, semantic_dim: int = 16, color_dim: int = 6,
                     fps: float = 2.0, val_fraction: float = 0.25) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    songs, notes, chords, video = [], [], [], []
    for i in range(n_songs):
        sid = f"syn{i:03d}"
        key, tempo = int(rng.choice(KEYS)), float(rng.choice([80, 96, 110, 120, 132]))
        prog, rhythm = PROGRESSIONS[rng.integers(len(PROGRESSIONS))], MELODY_RHYTHMS[rng.integers(3)]
        n_bars, s16 = int(rng.integers(8, 17)), 60.0 / tempo / 4
        split = "val" if i < max(1, int(n_songs * val_fraction)) else "train"
        for bar in range(n_bars):
            degree, quality = prog[bar % len(prog)]
            root = (key + degree) % 12
            chords.append(dict(song_id=sid, start_s=bar * 16 * s16, end_s=(bar + 1) * 16 * s16, bar=bar,
                               position=0, root=root, quality=quality))
            tones = [root + t for t in TRIADS[quality]]
            events = [("melody", pos, 60 + tones[j % 3] + 12 * (j // 3 % 2), 2 if pos % 4 else 4)
                      for j, pos in enumerate(rhythm)]
            events += [("accompaniment", 0, 36 + root, 16)]
            events += [("accompaniment", 8, 48 + t, 8) for t in tones]
            for track, pos, pitch, dur in events:
                onset = (bar * 16 + pos) * s16
                notes.append(dict(song_id=sid, track=track, onset_s=onset, offset_s=onset + dur * s16,
                                  pitch=pitch, velocity=80, bar=bar, position=pos, duration_16th=dur))
        n_frames = int(np.ceil(n_bars * 16 * s16 * fps))
        semantic = rng.normal(0, 0.1, (n_frames, semantic_dim)).astype(np.float32)
        semantic[:, key % semantic_dim] += 1.0
        color = rng.random((n_frames, color_dim)).astype(np.float32)
        songs.append(dict(song_id=sid, tempo_bpm=tempo, video_tempo_bpm=tempo, split=split, n_notes=0,
                          cover_duration_s=n_bars * 16 * s16, video_duration_s=n_frames / fps))
        video.append(dict(song_id=sid, video_id=f"v{sid}", fps=fps, n_frames=n_frames,
                          semantic_encoder="synthetic 0", semantic_dim=semantic_dim, semantic=list(semantic),
                          color_bins=0, color=list(color), motion=[0.0], motion_mean=0.0, shot_boundaries_s=[]))
    return dict(songs=pd.DataFrame(songs), notes=pd.DataFrame(notes), chords=pd.DataFrame(chords),
                video_features=pd.DataFrame(video))


def write_synthetic_dataset(root: str | Path, **kw) -> Path:
    """The fixture as real Hive-partitioned Parquet shards, committed like a build's (what `models.training.train --data`
    reads)."""
    from symmv.core.shards import commit_shards, write_shard

    tables = synthetic_tables(**kw)
    split_of = dict(zip(tables["songs"]["song_id"], tables["songs"]["split"]))
    for name, df in tables.items():
        for split in ("train", "val"):
            part = df[df["song_id"].map(split_of) == split]
            rows = [{k: v for k, v in r.items() if k != "split"} for r in part.to_dict("records")]
            write_shard(root, name, split, rows, part="synthetic")
    commit_shards(root, generation="synthetic")
    return Path(root)
