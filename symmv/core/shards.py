"""Parquet shard I/O: atomic writes into Hive partitions, and the notebook-facing reader.

Layout: `<root>/<table>/split=<split>/part-<name>.parquet`. A shard is written to a temporary file in
the same directory and renamed into place, so a crash never leaves a half-written shard visible
(readers skip the `.tmp-*` names). Rows are sorted by a stable key and no timestamps are written, so
the same inputs give byte-identical files.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from symmv.core.schema import SCHEMA_VERSION, TABLES

DEFAULT_ROOT = Path(os.environ.get("SYMMV_DATA", "data/symmv-demo"))
# A build commits a generation of the dataset by writing this file last (symmv.pipeline.writer.publish);
# `load` reads exactly the files it names, so a reader never sees a half-built or mixed dataset.
MANIFEST = "_manifest.json"

# Stable sort keys per table (determinism: same inputs -> same bytes).
SORT_KEYS: dict[str, list[str]] = {
    "songs": ["song_id"],
    "notes": ["song_id", "onset_s", "pitch", "track"],
    "beats": ["song_id", "time_s"],
    "chords": ["song_id", "start_s"],
    "key_windows": ["song_id", "bar_start"],
    "video_features": ["song_id"],
    "matches": ["cover_id"],
    "metadata": ["song_id"],
    "music_qc": ["song_id"],
    "alignment": ["song_id"],
    "rejects": ["item_id", "stage"],
}


def to_table(table: str, rows: Sequence[Mapping] | pa.Table) -> pa.Table:
    """Rows (dicts) -> an Arrow table of the declared schema, sorted by the table's stable key."""
    schema = TABLES[table]
    if not isinstance(rows, pa.Table):
        rows = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
    else:
        rows = rows.select(schema.names).cast(schema)
    keys = [(k, "ascending") for k in SORT_KEYS[table] if k in rows.column_names]
    return rows.sort_by(keys) if rows.num_rows else rows


def file_metadata(table: str) -> dict[str, str]:
    """The key-value metadata every part file of `table` carries (the reader checks the version)."""
    return {"symmv_schema_version": SCHEMA_VERSION, "symmv_table": table}


def write_shard(root: str | Path, table: str, split: str, rows, part: str) -> Path:
    """Atomically write one shard part; returns its final path. `part` must be unique per writer."""
    data = to_table(table, rows).replace_schema_metadata(file_metadata(table))
    out_dir = Path(root) / table / f"split={split}"
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"part-{part}.parquet"
    tmp = out_dir / f".tmp-{part}-{uuid.uuid4().hex}.parquet"
    try:
        pq.write_table(data, tmp, compression="zstd", write_statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def shard_paths(root: str | Path, table: str, split: str | None = None) -> list[Path]:
    base = Path(root) / table
    pattern = f"split={split}/part-*.parquet" if split else "split=*/part-*.parquet"
    return sorted(base.glob(pattern))


def read_manifest(root: str | Path) -> dict | None:
    """The committed generation of a dataset root, or None (a root written before manifests existed)."""
    import json

    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except FileNotFoundError:
        return None


def manifest_paths(root: str | Path, table: str, split: str | None = None) -> list[Path]:
    """The part files of `table` (one split or all) that the committed generation holds."""
    manifest = read_manifest(root)
    if manifest is None:
        return shard_paths(root, table, split)
    rels = manifest["tables"].get(table, [])
    return sorted(Path(root) / r for r in rels if split is None or f"/split={split}/" in f"/{r}")


def load(table: str, split: str | Iterable[str] | None = None, root: str | Path | None = None,
         columns: list[str] | None = None) -> pd.DataFrame:
    """Read a SymMV table as pandas, optionally one split or several (`split="train"`, `["val", "test"]`).

    The `split` partition column is added back. An absent table gives an empty frame with its columns.
    """
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; tables: {sorted(TABLES)}")
    root = Path(root) if root is not None else DEFAULT_ROOT
    splits = [split] if isinstance(split, str) else (list(split) if split is not None else None)
    files = [p for s in (splits or [None]) for p in manifest_paths(root, table, s)]
    schema = TABLES[table].append(pa.field("split", pa.string()))
    if not files:
        return schema.empty_table().to_pandas()
    for f in files:
        version = (pq.read_schema(f).metadata or {}).get(b"symmv_schema_version", b"?").decode()
        if version != SCHEMA_VERSION:
            raise ValueError(f"{f}: schema version {version}, this symmv reads {SCHEMA_VERSION}")
    dataset = ds.dataset([str(f) for f in files], schema=schema,
                         partitioning=ds.partitioning(pa.schema([("split", pa.string())]), flavor="hive"),
                         partition_base_dir=str(root / table))
    frame = dataset.to_table(columns=columns).to_pandas()
    keys = [k for k in SORT_KEYS[table] if k in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame


