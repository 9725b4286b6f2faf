"""Parquet shard I/O: atomic writes into Hive partitions, and the notebook-facing reader.

Layout: `<root>/<table>/split=<split>/part-<name>.parquet`. A shard is written to a temporary file in
the same directory and renamed into place, so a crash never leaves a half-written shard visible
(readers skip the `.tmp-*` names). Rows are sorted by a stable key and no timestamps are written, so
the same inputs give byte-identical files.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from symmv.core import settings
from symmv.core.errors import DatasetNotCommitted
from symmv.core.schema import SCHEMA_VERSION, SORT_KEYS, TABLES

# A build commits a generation of the dataset by writing this file last (symmv.pipeline.writer.publish);
# `load` reads exactly the files it names, so a reader never sees a half-built or mixed dataset.
MANIFEST = "_manifest.json"
# A build writes this when it first takes its --out, before anything else: a folder holding it is a dataset
# being built (maybe killed before its first manifest), never someone else's folder (symmv.pipeline.writer).
MARKER = ".symmv-dataset"
BATCHES = ".batches"  # the build's per-batch parts, before publishing links them into the tables


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


def part_path(table: str, split: str, part: str) -> str:
    """Where part `part` of one table's split lives, relative to the dataset root."""
    return f"{table}/split={split}/part-{part}.parquet"


def write_shard(root: str | Path, table: str, split: str, rows, part: str) -> Path:
    """Atomically write one shard part; returns its final path. `part` must be unique per writer."""
    data = to_table(table, rows).replace_schema_metadata(file_metadata(table))
    final = Path(root) / part_path(table, split, part)
    out_dir = final.parent
    out_dir.mkdir(parents=True, exist_ok=True)
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
    """The committed generation of a dataset root, or None (none committed yet)."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except FileNotFoundError:
        return None


def committed_manifest(root: str | Path) -> dict:
    """The committed generation, or DatasetNotCommitted saying why there is none and what to do.

    A build interrupted before publishing leaves finished parts (songs of some batches, notes of none):
    globbing them would hand out a silently partial dataset, so nothing is read without a manifest.
    """
    manifest = read_manifest(root)
    if manifest is not None:
        return manifest
    root = Path(root)
    if (root / MARKER).is_file() or (root / BATCHES).is_dir():
        raise DatasetNotCommitted(
            f"the SymMV dataset at {root} is not complete: its build stopped before committing it ({MANIFEST} "
            f"is written last, when every file is in place); rerun the build with `--out {root}` to finish it "
            "(it resumes)")
    raise DatasetNotCommitted(f"no SymMV dataset at {root} (no {MANIFEST}); build one with `symmv build --out {root}`")


def commit_shards(root: str | Path, generation: str = "direct") -> dict:
    """Commit every part now under `root` as one generation: for tables written directly with `write_shard`
    (test fixtures, tests/model_fixtures.py). A build commits its own generation (symmv.pipeline.writer.publish)."""
    root = Path(root)
    manifest = {"schema_version": SCHEMA_VERSION, "generation": generation, "batches": [],
                "tables": {t: [str(p.relative_to(root)) for p in shard_paths(root, t)] for t in TABLES}}
    write_manifest(root, manifest)
    return manifest


def write_manifest(root: str | Path, manifest: dict) -> None:
    """Replace the manifest atomically: a reader sees the previous generation or this one, never half of one."""
    path = Path(root) / MANIFEST
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)


def manifest_paths(root: str | Path, table: str, split: str | None = None) -> list[Path]:
    """The part files of `table` (one split or all) that the committed generation holds."""
    rels = committed_manifest(root)["tables"].get(table, [])
    return sorted(Path(root) / r for r in rels if split is None or f"/split={split}/" in f"/{r}")


def load(table: str, split: str | Iterable[str] | None = None, root: str | Path | None = None,
         columns: list[str] | None = None) -> pd.DataFrame:
    """Read a SymMV table as pandas, optionally one split or several (`split="train"`, `["val", "test"]`).

    The `split` partition column is added back. A table the committed build did not write gives an empty
    frame with its columns; a root with no committed build raises DatasetNotCommitted (committed_manifest).
    """
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; tables: {sorted(TABLES)}")
    root = Path(root) if root is not None else settings.dataset_root()
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


