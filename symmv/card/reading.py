"""Reading a built SymMV dataset for its card: row counts from the Parquet footers, the small tables as pandas,
one mean semantic vector per video (streamed), and the genre helpers every section and plot shares."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from symmv.core.schema import TABLES
from symmv.core.shards import load, manifest_paths as shard_paths

SPLIT_ORDER = ("train", "val", "test", "rejected")


@dataclass
class Build:
    """What the card needs from a dataset root; absent tables are empty frames."""

    root: Path
    row_counts: dict[str, dict[str, int]]  # table -> split -> rows, from the Parquet footers
    songs: pd.DataFrame
    chords: pd.DataFrame
    rejects: pd.DataFrame
    matches: pd.DataFrame
    video: pd.DataFrame  # song_id, semantic_encoder, annotator, mean_semantic (one vector per video)
    report: dict = field(default_factory=dict)
    alignment: pd.DataFrame = field(default_factory=pd.DataFrame)  # the `alignment` table (empty: none)

    def rows(self, table: str, split: str | None = None) -> int:
        counts = self.row_counts.get(table, {})
        return sum(counts.values()) if split is None else counts.get(split, 0)

    def has(self, table: str) -> bool:
        return self.rows(table) > 0


def table_names(root: Path) -> list[str]:
    """Declared tables first (schema order), then any other table folder the build wrote."""
    on_disk = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("split=*/part-*.parquet"))) \
        if root.is_dir() else []
    return list(TABLES) + [t for t in on_disk if t not in TABLES]


def row_counts(root: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for table in table_names(root):
        paths = shard_paths(root, table) if table in TABLES else sorted((root / table).glob("split=*/part-*.parquet"))
        for path in paths:
            split = path.parent.name.split("=", 1)[1]
            per_split = counts.setdefault(table, {})
            per_split[split] = per_split.get(split, 0) + pq.ParquetFile(path).metadata.num_rows
    return counts


def _load(root: Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    if table not in TABLES:
        return pd.DataFrame(columns=columns or [])
    if columns is not None:
        columns = [c for c in columns if c in TABLES[table].names] + ["split"]
    return load(table, root=root, columns=columns)


def mean_semantic_features(root: Path, batch_rows: int = 16) -> pd.DataFrame:
    """One time-averaged semantic vector per video (paper sec. 3.3), streamed so the (frames x dim) lists of
    a full build never sit in memory at once."""
    wanted = ["song_id", "semantic_encoder", "annotator", "semantic"]
    rows = []
    for path in shard_paths(root, "video_features") if "video_features" in TABLES else []:
        parquet = pq.ParquetFile(path)
        columns = [c for c in wanted if c in parquet.schema_arrow.names]
        if "semantic" not in columns:
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            semantic = batch.column("semantic")
            for i in range(batch.num_rows):
                frames = semantic[i].values  # list<float32> per frame, kept in Arrow (no Python floats)
                if frames is None or len(frames) == 0:
                    continue
                flat = frames.flatten().to_numpy(zero_copy_only=False)
                vectors = flat.reshape(len(frames), -1).astype(np.float64)  # (n_frames, dim)
                rows.append({"song_id": batch.column("song_id")[i].as_py(),
                             "semantic_encoder": _cell(batch, "semantic_encoder", i),
                             "annotator": _cell(batch, "annotator", i),
                             "mean_semantic": vectors.mean(axis=0)})
    frame = pd.DataFrame(rows, columns=["song_id", "semantic_encoder", "annotator", "mean_semantic"])
    return frame.sort_values("song_id", kind="stable").reset_index(drop=True)


def _cell(batch, column: str, i: int):
    return batch.column(column)[i].as_py() if column in batch.schema.names else None


def read_build(root: Path) -> Build:
    root = Path(root)
    report_path = root / "build_report.json"
    return Build(
        root=root,
        row_counts=row_counts(root),
        songs=_load(root, "songs"),
        chords=_load(root, "chords", ["song_id", "start_s", "end_s", "root", "quality"]),
        rejects=_load(root, "rejects"),
        matches=_load(root, "matches", ["cover_id", "reason", "matcher_version"]),
        video=mean_semantic_features(root),
        report=json.loads(report_path.read_text()) if report_path.is_file() else {},
        alignment=_load(root, "alignment"),
    )



def ordered_splits(splits) -> list[str]:
    return sorted(splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))


def _known(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.dropna(subset=[column]) if column in frame.columns else frame.iloc[0:0]


def genre_of(songs: pd.DataFrame) -> pd.Series:
    """song_id -> genre, "(unknown)" where the build has none."""
    genre = songs["genre"] if "genre" in songs.columns else pd.Series([None] * len(songs))
    return pd.Series(genre.fillna("(unknown)").to_numpy(), index=songs["song_id"].to_numpy())


def genre_order(songs: pd.DataFrame) -> list[str]:
    """Genres by number of songs (then name), "(unknown)" last: the order of every genre table and legend."""
    counts = genre_of(songs).value_counts() if len(songs) else pd.Series(dtype=int)
    return sorted(counts.index, key=lambda g: (g == "(unknown)", -counts[g], g))
