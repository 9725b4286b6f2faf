"""Content-keyed caching of per-song stage results.

A stage's key is a hash of what its output depends on and nothing else (symmv.pipeline.registry): the
content of the media it reads (sha256 of the bytes, never name or mtime), the config fields and
code/model versions the stage declares, and the keys of the stages it consumes. It never contains
`--out` or the source folder's path, so building the same source into a second folder, or from a copied
source folder, finds every result. Results live under `cache_dir` (default `.cache/symmv-build`) as
`<stage>/<key[:2]>/<key>.pkl`, written atomically, so a kill -9 leaves either a whole entry or none.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import threading
import uuid
from pathlib import Path

from symmv.core.versions import file_sha256


def digest(payload) -> str:
    """sha256 of a JSON-able payload (keys sorted; non-JSON values by their str)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ContentHashes:
    """sha256 of files, memoized on (path, size, mtime_ns) in a small SQLite index under the cache.

    The memo only saves re-reading a file that did not change; the hash itself is of the content, so a
    copied or touched file gets the same identity after one read.
    """

    def __init__(self, cache_dir: str | Path):
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        self._db_path = str(Path(cache_dir) / "content-hashes.sqlite")
        self._local = threading.local()
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INT, mtime_ns INT, sha256 TEXT)")

    def _db(self) -> sqlite3.Connection:
        if getattr(self._local, "db", None) is None:
            self._local.db = sqlite3.connect(self._db_path, timeout=60)
        return self._local.db

    def of(self, path: str | Path | None) -> str:
        """Content hash of a file ("" for no file). Raises OSError for a file that cannot be read."""
        if not path:
            return ""
        real = os.path.realpath(path)
        st = os.stat(real)
        db = self._db()
        row = db.execute("SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (real,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        sha = file_sha256(real)
        with db:
            db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", (real, st.st_size, st.st_mtime_ns, sha))
        return sha


class StageCache:
    """Pickled stage results by key; `hits`/`misses` per stage for the build report."""

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir) / "stages"
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.pkl"

    def get(self, stage: str, key: str):
        """The stored result, or None (a missing or unreadable entry is a miss, never an error)."""
        path = self._path(stage, key)
        try:
            with open(path, "rb") as fh:
                value = pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            self.misses[stage] = self.misses.get(stage, 0) + 1
            return None
        self.hits[stage] = self.hits.get(stage, 0) + 1
        return value

    def put(self, stage: str, key: str, value) -> None:
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
