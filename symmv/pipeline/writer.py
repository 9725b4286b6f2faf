"""Writing a dataset that a reader can trust at every moment of a week-long build.

- Each batch writes its own folder `<out>/.batches/<batch key>/` (first as `.tmp-*`, renamed when complete):
  `<table>/split=<s>/part.parquet` for every table, `midi/<song_id>.mid`, and `batch.json` (its summary).
  Rows are converted to their Arrow schema per song as they are made and streamed into a ParquetWriter,
  so a batch holds one song (plus a small row buffer) in memory, never the batch.
- `publish` is the light final pass: the songs table (with the dataset-level video tempo from the motion
  range) is written per split, every batch part is hard-linked into `<table>/split=<s>/part-<key>.parquet`,
  and `_manifest.json` -- written last, atomically -- names the files of this generation. `symmv.load`
  follows the manifest, so a reader sees the old dataset until the new one is complete, then all of it.
  Files of earlier generations, MIDI of removed songs and batch folders no longer used are deleted after.
- `BuildLock`: one build per `--out`; a second one fails at once with a clear message.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from symmv.core.errors import BuildAborted
from symmv.core.schema import REJECTED_SPLIT, SCHEMA_VERSION, TABLES
from symmv.core.shards import MANIFEST, file_metadata, write_shard

BATCHES = ".batches"
FLUSH_ROWS = 65_536  # rows buffered per (table, split) before a row group is written


class BatchWriter:
    """One batch's parts, streamed; `commit` makes the batch folder appear whole, `abort` removes it."""

    def __init__(self, out: str | Path, batch_key: str):
        self.out, self.key = Path(out), batch_key
        self.final = self.out / BATCHES / batch_key
        self.tmp = self.out / BATCHES / f".tmp-{batch_key[:16]}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir(parents=True)
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._buffers: dict[tuple[str, str], list[pa.Table]] = {}

    def add(self, table: str, split: str, data: pa.Table) -> None:
        """Append one song's rows (already an Arrow table of the table's schema)."""
        if not data.num_rows:
            return
        buf = self._buffers.setdefault((table, split), [])
        buf.append(data)
        if sum(t.num_rows for t in buf) >= FLUSH_ROWS or table == "video_features":
            self._flush(table, split)

    def _flush(self, table: str, split: str) -> None:
        buf = self._buffers.get((table, split))
        if not buf:
            return
        writer = self._writers.get((table, split))
        if writer is None:
            path = self.tmp / table / f"split={split}" / "part.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            schema = TABLES[table].with_metadata(file_metadata(table))
            writer = self._writers[(table, split)] = pq.ParquetWriter(path, schema, compression="zstd")
        writer.write_table(pa.concat_tables(buf).replace_schema_metadata(file_metadata(table)))
        self._buffers[(table, split)] = []

    def write_midi(self, song_id: str, notes) -> str:
        from symmv.io.midi import write_notes

        write_notes(notes, self.tmp / "midi" / f"{song_id}.mid")
        return f"midi/{song_id}.mid"

    def commit(self, summary: dict) -> dict:
        for table, split in list(self._buffers):
            self._flush(table, split)
        for writer in self._writers.values():
            writer.close()
        summary = {**summary, "files": sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*") if p.is_file())}
        (self.tmp / "batch.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        if self.final.exists():  # an identical batch finished meanwhile (same key = same content)
            shutil.rmtree(self.tmp)
        else:
            os.replace(self.tmp, self.final)
        return summary

    def abort(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def finished_batch(out: str | Path, batch_key: str) -> dict | None:
    """The summary of a batch that is already on disk whole (resume), else None."""
    folder = Path(out) / BATCHES / batch_key
    try:
        summary = json.loads((folder / "batch.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summary if all((folder / f).is_file() for f in summary.get("files", [])) else None


def _atomic_write(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".tmp-{dst.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.link(src, tmp)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def publish(out: str | Path, batch_keys: list[str], songs: dict[str, pa.Table], extra_rejects: list[dict],
            generation: str) -> dict:
    """Make one generation of the dataset visible at once (see the module docstring); returns the manifest."""
    out = Path(out)
    files: dict[str, list[str]] = {t: [] for t in TABLES}
    parts = [("songs", split, table, generation[:16]) for split, table in sorted(songs.items())]
    if extra_rejects:
        parts.append(("rejects", REJECTED_SPLIT, extra_rejects, f"discover-{generation[:16]}"))
    for table, split, rows, part in parts:
        files[table].append(str(write_shard(out, table, split, rows, part).relative_to(out)))
    midi = set()
    for key in batch_keys:
        folder = out / BATCHES / key
        for f in json.loads((folder / "batch.json").read_text())["files"]:
            parts = Path(f).parts
            if parts[0] == "midi":
                _link(folder / f, out / f)
                midi.add(f)
            elif parts[0] in TABLES and parts[0] != "songs":
                rel = f"{parts[0]}/{parts[1]}/part-{key[:16]}.parquet"
                _link(folder / f, out / rel)
                files[parts[0]].append(rel)
    manifest = {"schema_version": SCHEMA_VERSION, "generation": generation, "batches": batch_keys,
                "tables": {t: sorted(v) for t, v in files.items()}}
    _atomic_write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    _remove_stale(out, manifest, midi)
    return manifest


def _remove_stale(out: Path, manifest: dict, midi: set[str]) -> None:
    """What no reader of this generation can see: earlier parts, removed songs' MIDI, unused batches."""
    listed = {f for v in manifest["tables"].values() for f in v}
    for table in TABLES:
        for path in (out / table).glob("split=*/*.parquet"):
            if str(path.relative_to(out)) not in listed:
                path.unlink()
        for path in (out / table).glob("split=*/.tmp-*"):
            path.unlink()
    for path in (out / "midi").glob("*"):
        if f"midi/{path.name}" not in midi:
            path.unlink()
    keep = set(manifest["batches"])
    for path in (out / BATCHES).glob("*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


class BuildLock:
    """An exclusive lock on `<out>/.build.lock` for the whole build (released by the OS on kill -9)."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / ".build.lock"

    def __enter__(self) -> BuildLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "?"
            self._fh.close()
            raise BuildAborted(f"another build is writing to {self.path.parent} (pid {holder}); "
                               "wait for it or choose another --out") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
