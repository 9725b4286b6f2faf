"""Content-keyed caching of per-song stage results.

A stage's key is a hash of what its output depends on and nothing else (symmv.pipeline.registry): the
content of the media it reads (sha256 of the bytes, never name or mtime), the config fields and
code/model versions the stage declares, and the keys of the stages it consumes. It never contains
`--out` or the source folder's path, so building the same source into a second folder, or from a copied
source folder, finds every result. Results live under `cache_dir` (default `~/.cache/symmv/build`:
`symmv.core.settings.user_cache`) as `stages/<stage>/<key[:2]>/<key>.pkl`, written atomically, so a kill -9 leaves either a whole entry or none.

The cache cannot lie (issue 21): an entry names the stage, key and schema it was stored under, so a file
copied over another song's path, left by an older format or garbled is a miss, never a wrong result or a
crash; a corrupt content-hash index is moved aside and rebuilt instead of failing every build on it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from symmv.core.versions import file_sha256

log = logging.getLogger("symmv.cache")


def digest(payload) -> str:
    """sha256 of a JSON-able payload (keys sorted; non-JSON values by their str)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- content hashes

# A file hashed within this time of its last change could change again within the same ctime tick
# (kernel timestamps are coarse: 1-10 ms clock ticks, whole seconds on ext3, 2 s on FAT), so its hash is
# not memoized -- git's "racily clean" index entries, same fix.
RACY_WINDOW_NS = 2_000_000_000
INDEX_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS content_hashes "
    "(path TEXT PRIMARY KEY, size INT, mtime_ns INT, ino INT, ctime_ns INT, sha256 TEXT);"
    "DROP TABLE IF EXISTS hashes"  # the memo before ino/ctime: it served stale hashes for in-place rewrites
)
BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds the index; the file is fine
_warned_rebuild = False  # one warning per process, however many batches open the index


def _transient(error: sqlite3.DatabaseError) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in BUSY_CODES


def _open_index(db_path: str) -> sqlite3.Connection:
    db = sqlite3.connect(db_path, timeout=60)
    try:
        db.executescript(INDEX_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _healthy(db_path: str) -> bool:
    """Whether the index opens and passes SQLite's quick check now: another thread or process may have
    rebuilt it since our connection failed, and a rebuilt index must not be moved aside again."""
    try:
        db = _open_index(db_path)
    except sqlite3.DatabaseError as exc:
        return _transient(exc)
    try:
        return db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    except sqlite3.DatabaseError as exc:
        return _transient(exc)
    finally:
        db.close()


def _move_aside(db_path: str) -> str:
    """Rename the index and its journals (the cache's own files): a stale journal left beside a new
    index would be rolled back into it."""
    aside = f"{db_path}.bad-{uuid.uuid4().hex[:8]}"
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.rename(db_path + suffix, aside + suffix)
        except FileNotFoundError:
            pass  # no such journal, or another process got there first
    return aside


def _warn_once(message: str) -> None:
    global _warned_rebuild
    if not _warned_rebuild:
        _warned_rebuild = True
        log.warning(message)


class ContentHashes:
    """sha256 of files, memoized in a small SQLite index under the cache.

    The memo only saves re-reading a file that did not change; the hash itself is of the content, so a
    copied or touched file gets the same identity after one read. "Did not change" is the same path,
    size, mtime, inode and ctime: a file rewritten in place with its mtime put back (os.utime) still has
    a new ctime, and a file replaced by rename a new inode. The index is only a memo: when it is corrupt
    or unreadable it is moved aside and rebuilt (`rebuilt` counts it, for the build report), and when
    it cannot answer at all a hash is computed without it.
    """

    def __init__(self, cache_dir: str | Path):
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        self._db_path = str(Path(cache_dir) / "content-hashes.sqlite")
        self._local = threading.local()  # one connection per thread (sqlite3 connections are not shared)
        self.rebuilt = 0  # times this instance found the index corrupt and started a new one

    def of(self, path: str | Path | None) -> str:
        """Content hash of a file ("" for no file). Raises OSError for a file that cannot be read."""
        if not path:
            return ""
        real = os.path.realpath(path)
        st = os.stat(real)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        row = self._memo("SELECT size, mtime_ns, ino, ctime_ns, sha256 FROM content_hashes WHERE path = ?", (real,))
        if row is not None and tuple(row[:4]) == stamp:
            return row[4]
        sha = file_sha256(real)
        if time.time_ns() - st.st_ctime_ns > RACY_WINDOW_NS:
            self._memo("INSERT OR REPLACE INTO content_hashes VALUES (?, ?, ?, ?, ?, ?)", (real, *stamp, sha))
        return sha

    def _db(self) -> sqlite3.Connection:
        if getattr(self._local, "db", None) is None:
            self._local.db = _open_index(self._db_path)
        return self._local.db

    def _memo(self, sql: str, args: tuple) -> tuple | None:
        """One statement on the index; None when it cannot answer (a memo miss, never an error)."""
        for attempt in range(2):
            try:
                with self._db() as db:
                    return db.execute(sql, args).fetchone()
            except sqlite3.DatabaseError as exc:
                if _transient(exc) or attempt:
                    return None
                self._recover(exc)
        return None

    def _recover(self, error: sqlite3.DatabaseError) -> None:
        """Give this thread a working connection after `error`: the file again if another thread or process
        has rebuilt it meanwhile, else a new index with the bad one moved aside; in memory if even that fails."""
        old = getattr(self._local, "db", None)
        self._local.db = None
        if old is not None:
            old.close()
        try:
            with open(f"{self._db_path}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one rebuild at a time, across threads and processes
                if not _healthy(self._db_path):
                    aside = _move_aside(self._db_path)
                    self.rebuilt += 1
                    _warn_once(f"content-hash index {self._db_path} is unreadable ({error}); moved it to {aside} "
                               "and started a new one (file hashes are recomputed once)")
                self._local.db = _open_index(self._db_path)
        except (OSError, sqlite3.DatabaseError) as exc:
            _warn_once(f"content-hash index {self._db_path} is unusable ({error}; {exc}); this process "
                       "memoizes file hashes in memory only")
            self._local.db = _open_index(":memory:")


# ---------------------------------------------------------------- stage results

@dataclass(frozen=True)
class Entry:
    """What one cache file holds: a value with the stage, key and schema it was stored under, so a file
    found at a path can be told apart from the entry that path stands for."""

    stage: str
    key: str
    schema: str
    value: object


def _entry_problem(entry: object, stage: str, key: str, schema: str, check: Callable | None) -> str | None:
    """Why `entry` is not the result stored for (stage, key, schema), or None when it is."""
    if not isinstance(entry, Entry):
        return f"not an entry but a {type(entry).__name__} (another format)"
    if entry.stage != stage or entry.key != key:
        return f"holds {entry.stage!s:.40}/{entry.key!s:.16} (copied or renamed)"
    if entry.schema != schema:
        return f"schema {entry.schema!s:.40}, expected {schema}"
    if check is not None and not check(entry.value):
        return "refused by its check"
    return None


def _count(counts: dict[str, int], stage: str) -> None:
    counts[stage] = counts.get(stage, 0) + 1


class StageCache:
    """Pickled stage results by key; `hits`/`misses`/`invalid` per stage for the build report.

    A read returns only what `put` stored under the same stage, key and schema tag (and what the caller's
    `check` accepts). Anything else at the path -- an unpicklable or garbled file, a bare value from before
    entries named their key, another song's entry copied over this one, an older schema -- is a miss,
    counted in `misses` and in `invalid`; the stage then recomputes and `put` overwrites it.
    """

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir) / "stages"
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self.invalid: dict[str, int] = {}  # entries found but not trusted (a subset of misses)

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.pkl"

    def get(self, stage: str, key: str, schema: str = "", check: Callable[[object], bool] | None = None):
        """The stored result, or None (a miss); never raises.

        `schema` must equal the tag the entry was put with (bump it when the value's shape changes);
        `check(value)` must return True for the entry to be served (False or an exception: invalid).
        """
        path = self._path(stage, key)
        try:
            with open(path, "rb") as fh:
                entry = pickle.load(fh)
            problem = _entry_problem(entry, stage, key, schema, check)
        except FileNotFoundError:
            _count(self.misses, stage)
            return None
        except Exception as exc:  # noqa: BLE001 - unpickling garbage (or a check) can raise anything
            problem = f"unreadable: {type(exc).__name__}: {str(exc)[:200]}"
        if problem is not None:
            log.debug("cache entry %s is not trusted: %s", path, problem)
            _count(self.misses, stage)
            _count(self.invalid, stage)
            return None
        _count(self.hits, stage)
        return entry.value

    def put(self, stage: str, key: str, value, schema: str = "") -> None:
        """Store `value` as the result of `stage` for `key` (atomically: a kill leaves the old entry or the new)."""
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
        with open(tmp, "wb") as fh:
            pickle.dump(Entry(stage, key, schema, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
