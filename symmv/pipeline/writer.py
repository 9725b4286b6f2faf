"""Writing a dataset that a reader can trust at every moment of a week-long build.

- Each batch writes its own folder `<out>/.batches/<batch key>/` (first as `.tmp-*`, renamed when complete):
  `<table>/split=<s>/part.parquet` for every table, `midi/<song_id>.mid`, and `batch.json` (its summary).
  Rows are converted to their Arrow schema per song as they are made and streamed into a ParquetWriter,
  so a batch holds one song (plus a small row buffer) in memory, never the batch.
- `publish` is the light final pass: the songs table (with the dataset-level video tempo from the motion
  range) is written per split, every batch part is hard-linked into `<table>/split=<s>/part-<key>.parquet`,
  and `_manifest.json` -- written last, atomically -- names the files of this generation. `symmv.load`
  follows the manifest, so a reader sees the old dataset until the new one is complete, then all of it.
- The manifest also names every other file the build owns (MIDI, report, card, plots, log, marker). Parts
  and MIDI an earlier generation owned and this one does not use are deleted after the commit; a file the
  build never wrote is never deleted, so a user's file in the folder survives every rebuild.
- `BuildLock`: one build per `--out`, and only on a folder that is new, empty or a SymMV dataset (marked by
  `.symmv-dataset` from the moment a build takes it); a second build or someone else's folder is refused at
  once with a clear message.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from symmv.core.errors import BuildAborted, ConfigError
from symmv.core.schema import REJECTED_SPLIT, SCHEMA_VERSION, TABLES
from symmv.core.shards import (BATCHES, MANIFEST, MARKER, file_metadata, part_path, read_manifest, write_manifest,
                                write_shard)

FLUSH_ROWS = 65_536  # rows buffered per (table, split) before a row group is written
LOCK = ".build.lock"
# A publish's list of the files it is about to create, removed once the manifest is written.
JOURNAL = f"{BATCHES}/publishing.json"
# Names only a symmv build writes: a folder holding nothing else is a build's, even without a marker (one
# started before markers existed and killed before its first manifest).
OWN_NAMES = {MARKER, LOCK, BATCHES}
MARKER_TEXT = ("A SymMV dataset written by `symmv build`: its _manifest.json names every file the build owns.\n"
               "The build removes only files it wrote; anything else in this folder is left alone.\n")


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


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".tmp-{dst.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.link(src, tmp)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _batch_links(out: Path, batch_keys: list[str]) -> list[tuple[Path, str]]:
    """(file in a batch folder, its place in the dataset) for every part (but songs) and MIDI file."""
    links = []
    for key in batch_keys:
        folder = out / BATCHES / key
        for f in json.loads((folder / "batch.json").read_text())["files"]:
            parts = Path(f).parts
            if parts[0] == "midi":
                links.append((folder / f, f))
            elif parts[0] in TABLES and parts[0] != "songs":
                links.append((folder / f, f"{parts[0]}/{parts[1]}/part-{key[:16]}.parquet"))
    return links


def owned(manifest: dict | None) -> set[str]:
    """Every file a generation's build owns: its table parts, MIDI files and root files (report, card, log).
    A manifest written before ownership was recorded owns its parts only."""
    if manifest is None:
        return set()
    return {f for v in manifest["tables"].values() for f in v} | set(manifest.get("midi", [])) \
        | set(manifest.get("files", []))


def publish(out: str | Path, batch_keys: list[str], songs: dict[str, pa.Table], extra_rejects: list[dict],
            generation: str) -> dict:
    """Make one generation of the dataset visible at once (see the module docstring); returns the manifest.

    What it is about to create is journaled first, so a publish killed half-way leaves nothing that the next
    one does not know to be the build's own (and remove, if that generation does not use it)."""
    out = Path(out)
    previous = read_manifest(out)
    songs_parts = {split: part_path("songs", split, generation[:16]) for split in songs}
    rejects_part = part_path("rejects", REJECTED_SPLIT, f"discover-{generation[:16]}") if extra_rejects else None
    links = _batch_links(out, batch_keys)
    creating = {*songs_parts.values(), *([rejects_part] if rejects_part else []), *(dst for _, dst in links)}
    before = owned(previous) | _journaled(out)
    (out / BATCHES).mkdir(parents=True, exist_ok=True)
    _atomic_write(out / JOURNAL, json.dumps(sorted(before | creating)))
    for split, table in sorted(songs.items()):
        write_shard(out, "songs", split, table, generation[:16])
    if rejects_part:
        write_shard(out, "rejects", REJECTED_SPLIT, extra_rejects, f"discover-{generation[:16]}")
    for src, dst in links:
        _link(src, out / dst)
    files: dict[str, list[str]] = {t: [] for t in TABLES}
    for rel in creating:
        if not rel.startswith("midi/"):
            files[rel.split("/", 1)[0]].append(rel)
    manifest = {"schema_version": SCHEMA_VERSION, "generation": generation, "batches": batch_keys,
                "tables": {t: sorted(v) for t, v in files.items()},
                "midi": sorted(rel for rel in creating if rel.startswith("midi/")),
                "files": sorted(set((previous or {}).get("files", [])) | {MARKER, LOCK})}
    write_manifest(out, manifest)
    _remove_stale(out, before, manifest)
    (out / JOURNAL).unlink()
    return manifest


def own(out: str | Path, names: list[str]) -> None:
    """Add root files the build wrote after its commit (report, card, plots, log) to the manifest's `files`,
    so the manifest names every file the build owns."""
    manifest = read_manifest(out)
    manifest["files"] = sorted(set(manifest.get("files", [])) | set(names))
    write_manifest(out, manifest)


def _journaled(out: Path) -> set[str]:
    try:
        return set(json.loads((out / JOURNAL).read_text()))
    except FileNotFoundError:
        return set()


def _is_data_file(rel: str) -> bool:
    """A table part or a MIDI file, by a plain relative path: the only files publish ever removes."""
    parts = Path(rel).parts
    return ".." not in parts and not Path(rel).is_absolute() and len(parts) > 1 and parts[0] in {*TABLES, "midi"}


def _remove_stale(out: Path, before: set[str], manifest: dict) -> None:
    """What the build owned before (earlier generations, a killed publish) and this generation does not use:
    its parts and removed songs' MIDI; the build's own temp files and unused batch folders. A file the build
    never wrote -- a user's `midi/mine.mid`, `notes/split=train/mine.parquet` -- is never touched."""
    for rel in sorted(before - owned(manifest)):
        if _is_data_file(rel):
            (out / rel).unlink(missing_ok=True)
    folders = [out / "midi", *(f for t in TABLES for f in (out / t).glob("split=*"))]
    temps = [*(p for folder in folders for p in folder.glob(".tmp-*")), *out.glob(f".tmp-{MANIFEST}-*"),
             *out.glob(f".tmp-{MARKER}-*")]
    for path in temps:  # write_shard's, _link's and _atomic_write's names: a killed build's leftovers
        path.unlink(missing_ok=True)
    keep = {*manifest["batches"], Path(JOURNAL).name}
    for path in (out / BATCHES).glob("*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(data)
    os.replace(tmp, path)


def check_out(out: Path) -> None:
    """Refuse an --out that holds someone else's files (ConfigError), before anything is written there: a
    build writes its README.md (the card) over one that is there, and files it publishes replace namesakes."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if not out.is_dir() or (out / MANIFEST).is_file() or (out / MARKER).is_file():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_NAMES)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(f"--out {out} is not empty and not a SymMV dataset (no {MANIFEST}, no {MARKER}; it holds "
                          f"{shown}): choose a new or empty folder")


# lock file -> [open file, depth, made the folder, wrote the marker]. The CLI takes the lock before Prefect
# starts and the flow takes it again inside (a deployment run has no CLI); a second flock in one process fails.
_HELD: dict[Path, list] = {}
_HELD_GUARD = threading.Lock()


class BuildLock:
    """The build's hold on its --out: refuses a folder that is someone else's (check_out) or another build's
    (an exclusive flock on `<out>/.build.lock`, released by the OS on kill -9), then marks the folder as a
    dataset. Re-entrant within one process. A build that fails before writing anything but the marker and the
    lock (a typo found by validate) leaves the folder as it found it (absent, or empty)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.path = self.out / LOCK

    def __enter__(self) -> BuildLock:
        self._key = key = self.path.resolve()
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                return self
            check_out(self.out)
            created, marked = not self.out.exists(), not (self.out / MARKER).is_file()
            self.out.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                fh.close()
                raise BuildAborted(f"another build is writing to {self.out} (pid {holder}); "
                                   "wait for it or choose another --out") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            if marked:
                _atomic_write(self.out / MARKER, MARKER_TEXT)
            _HELD[key] = [fh, 1, created, marked]
        return self

    def __exit__(self, exc_type, *exc) -> None:
        with _HELD_GUARD:
            held = _HELD[self._key]
            held[1] -= 1
            if held[1]:
                return
            del _HELD[self._key]
            fh, _, created, marked = held
            if exc_type is not None and marked and {p.name for p in self.out.iterdir()} <= {MARKER, LOCK}:
                (self.out / MARKER).unlink()  # failed before writing anything: the folder as it was found
                self.path.unlink()
                if created:
                    self.out.rmdir()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
