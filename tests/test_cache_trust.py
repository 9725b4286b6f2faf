"""A cache that cannot lie (issue 21 point 4): a stage entry is served only for the stage, key and schema it
was stored under, anything else found at its path is a counted miss (never a wrong result, never a crash),
and the content-hash index survives corruption, concurrency and in-place rewrites of the files it memoizes."""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

import symmv
from symmv.pipeline import cache as cache_module
from symmv.pipeline.cache import ContentHashes, StageCache

REPO = Path(__file__).resolve().parents[1]
KEY_A, KEY_B = "a" * 64, "b" * 64


def _entry_path(root: Path, stage: str, key: str) -> Path:
    return root / "stages" / stage / key[:2] / f"{key}.pkl"


# ---------------------------------------------------------------- stage entries

def test_round_trip_and_counts(tmp_path):
    cache = StageCache(tmp_path)
    assert cache.get("transcribe", KEY_A) is None
    cache.put("transcribe", KEY_A, ("ok", {"notes": [1, 2]}))
    assert cache.get("transcribe", KEY_A) == ("ok", {"notes": [1, 2]})
    assert (cache.hits, cache.misses, cache.invalid) == ({"transcribe": 1}, {"transcribe": 1}, {})


def test_another_songs_entry_copied_over_this_key_is_a_miss(tmp_path):
    cache = StageCache(tmp_path)
    cache.put("transcribe", KEY_A, ("ok", "notes of A"))
    cache.put("transcribe", KEY_B, ("ok", "notes of B"))
    shutil.copy(_entry_path(tmp_path, "transcribe", KEY_B), _entry_path(tmp_path, "transcribe", KEY_A))
    assert cache.get("transcribe", KEY_A) is None
    assert cache.get("transcribe", KEY_B) == ("ok", "notes of B")
    assert cache.invalid == {"transcribe": 1} and cache.misses == {"transcribe": 1}


def test_an_entry_under_another_stage_is_a_miss(tmp_path):
    cache = StageCache(tmp_path)
    cache.put("rhythm", KEY_A, ("ok", "beats"))
    target = _entry_path(tmp_path, "symbolic", KEY_A)
    target.parent.mkdir(parents=True)
    shutil.copy(_entry_path(tmp_path, "rhythm", KEY_A), target)
    assert cache.get("symbolic", KEY_A) is None and cache.invalid == {"symbolic": 1}


@pytest.mark.parametrize("content", [
    pickle.dumps("hello"),  # a wrong-typed value (what crashed a whole run)
    pickle.dumps(("ok", {"video_features": None})),  # a bare value as stored before entries named their key
    b"",  # truncated to nothing
    b"\x80\x05garbage" * 10,  # not a pickle
    pickle.dumps(("ok", 1))[:-3],  # a torn write
    b"cbuiltins\nlen\n(S'abc'\ntR.",  # a pickle that calls something: yields 3, not an entry
    b"c" + b"no_such_module_xyz\nthing\n.",  # a pickle of a class that no longer exists
], ids=["str", "bare-value", "empty", "garbage", "torn", "callable", "missing-class"])
def test_anything_but_an_entry_is_a_counted_miss(tmp_path, content):
    cache = StageCache(tmp_path)
    path = _entry_path(tmp_path, "video", KEY_A)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert cache.get("video", KEY_A) is None
    assert cache.invalid == {"video": 1} and cache.misses == {"video": 1} and not cache.hits
    cache.put("video", KEY_A, ("ok", {"video_features": "recomputed"}))  # the stage's fresh result replaces it
    assert cache.get("video", KEY_A) == ("ok", {"video_features": "recomputed"})


def test_a_directory_at_the_entry_path_is_a_counted_miss(tmp_path):
    cache = StageCache(tmp_path)
    _entry_path(tmp_path, "video", KEY_A).mkdir(parents=True)
    assert cache.get("video", KEY_A) is None and cache.invalid == {"video": 1}


def test_schema_tag_must_match(tmp_path):
    cache = StageCache(tmp_path)
    cache.put("symbolic", KEY_A, ("ok", "v1 shape"), schema="notes-v1")
    assert cache.get("symbolic", KEY_A) is None  # no tag asked: not the entry stored
    assert cache.get("symbolic", KEY_A, schema="notes-v2") is None
    assert cache.get("symbolic", KEY_A, schema="notes-v1") == ("ok", "v1 shape")
    assert cache.invalid == {"symbolic": 2} and cache.hits == {"symbolic": 1}


def test_check_refusing_or_raising_is_a_counted_miss(tmp_path):
    cache = StageCache(tmp_path)
    cache.put("match", KEY_A, ("ok", {"video": "v1"}))

    def explodes(value):
        raise KeyError("video_sha256")

    assert cache.get("match", KEY_A, check=lambda v: False) is None
    assert cache.get("match", KEY_A, check=explodes) is None
    assert cache.get("match", KEY_A, check=lambda v: v[0] == "ok") == ("ok", {"video": "v1"})
    assert cache.invalid == {"match": 2} and cache.hits == {"match": 1}


# ---------------------------------------------------------------- content hashes

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settle() -> None:
    """Wait out the racy window: a file changed more recently is hashed but not memoized."""
    time.sleep(cache_module.RACY_WINDOW_NS / 1e9 + 0.1)


@pytest.fixture(scope="module")
def settled_pool(tmp_path_factory):
    """Files older than the racy window (one wait for the module), handed out one per test."""
    folder = tmp_path_factory.mktemp("settled")
    paths = [folder / f"song{i}.m4a" for i in range(20)]
    for path in paths:
        path.write_bytes(b"A" * 4096)
    _settle()
    return iter(paths)


@pytest.fixture
def settled(settled_pool):
    return next(settled_pool)


def test_memo_serves_an_unchanged_file_without_reading_it(tmp_path, settled, monkeypatch):
    hashes = ContentHashes(tmp_path / "cache")
    assert hashes.of(settled) == _sha(b"A" * 4096)
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: pytest.fail("re-read an unchanged file"))
    assert ContentHashes(tmp_path / "cache").of(settled) == _sha(b"A" * 4096)  # also from a new instance


def test_a_file_changed_just_before_hashing_is_not_memoized(tmp_path, monkeypatch):
    """Its ctime may not tick again if it is rewritten at once (coarse kernel clocks): read it next time too."""
    fresh = tmp_path / "fresh.m4a"
    fresh.write_bytes(b"F" * 100)
    hashes = ContentHashes(tmp_path / "cache")
    assert hashes.of(fresh) == _sha(b"F" * 100)
    reads = []
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: reads.append(p) or "read again")
    assert hashes.of(fresh) == "read again" and len(reads) == 1


def test_in_place_rewrite_with_mtime_restored_gets_a_new_hash(tmp_path, settled):
    hashes = ContentHashes(tmp_path / "cache")
    assert hashes.of(settled) == _sha(b"A" * 4096)
    before = os.stat(settled)
    with open(settled, "r+b") as fh:  # same inode, same size
        fh.write(b"B" * 4096)
    os.utime(settled, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(settled)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert hashes.of(settled) == _sha(b"B" * 4096)
    assert ContentHashes(tmp_path / "cache").of(settled) == _sha(b"B" * 4096)


def test_replaced_by_rename_with_mtime_restored_gets_a_new_hash(tmp_path, settled):
    hashes = ContentHashes(tmp_path / "cache")
    hashes.of(settled)
    before = os.stat(settled)
    fresh = settled.with_name("fresh.tmp")
    fresh.write_bytes(b"C" * 4096)
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(fresh, settled)
    assert hashes.of(settled) == _sha(b"C" * 4096)


@pytest.fixture
def warn_again(monkeypatch):
    """The rebuild warning is once per process: let this test see its own."""
    monkeypatch.setattr(cache_module, "_warned_rebuild", False)


@pytest.mark.parametrize("garbage", [
    b"this is not a database" * 100,
    b"SQLite format 3\x00" + bytes(range(256)) * 64,  # a valid magic, garbled pages
    b"",  # empty is a valid (empty) database: it must simply work
], ids=["not-sqlite", "garbled-pages", "empty"])
def test_corrupt_index_is_moved_aside_and_rebuilt(tmp_path, settled, garbage, warn_again, caplog):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "content-hashes.sqlite").write_bytes(garbage)
    caplog.set_level(logging.WARNING, logger="symmv.cache")
    hashes = ContentHashes(cache_dir)
    assert hashes.of(settled) == _sha(b"A" * 4096)
    assert hashes.of(settled) == _sha(b"A" * 4096)
    moved = sorted(p.name for p in cache_dir.glob("content-hashes.sqlite.bad-*"))
    expected = 0 if not garbage else 1
    assert hashes.rebuilt == expected and len(moved) == expected
    assert len([r for r in caplog.records if r.name == "symmv.cache"]) == expected
    with sqlite3.connect(cache_dir / "content-hashes.sqlite") as db:  # the new index holds the memo
        assert db.execute("SELECT sha256 FROM content_hashes").fetchall() == [(_sha(b"A" * 4096),)]


def test_index_corrupted_while_in_use_is_rebuilt_with_one_warning(tmp_path, settled, warn_again, caplog):
    cache_dir = tmp_path / "cache"
    hashes = ContentHashes(cache_dir)
    hashes.of(settled)
    index = cache_dir / "content-hashes.sqlite"
    index.write_bytes(b"\0garbage" * 2000)  # overwritten under an open connection
    caplog.set_level(logging.WARNING, logger="symmv.cache")
    assert hashes.of(settled) == _sha(b"A" * 4096)
    other = ContentHashes(tmp_path / "cache-2")
    (tmp_path / "cache-2" / "content-hashes.sqlite").write_bytes(b"more garbage" * 100)
    assert other.of(settled) == _sha(b"A" * 4096)
    assert hashes.rebuilt == 1 and other.rebuilt == 1
    assert len([r for r in caplog.records if r.name == "symmv.cache"]) == 1  # one per process


def test_unusable_index_falls_back_to_memory(tmp_path, settled, warn_again, monkeypatch):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "content-hashes.sqlite").write_bytes(b"garbage" * 100)

    def cannot_rename(*args):
        raise PermissionError("read-only cache folder")

    monkeypatch.setattr(cache_module.os, "rename", cannot_rename)
    hashes = ContentHashes(cache_dir)
    assert hashes.of(settled) == _sha(b"A" * 4096)
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: pytest.fail("the in-memory memo was not used"))
    assert hashes.of(settled) == _sha(b"A" * 4096)


def test_threads_on_a_corrupt_index_all_get_the_right_hashes(tmp_path, warn_again):
    files = _files(tmp_path / "media", 40)
    _settle()
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "content-hashes.sqlite").write_bytes(b"garbage" * 1000)
    hashes, results, errors = ContentHashes(cache_dir), {}, []

    def work(offset):
        try:
            for i in range(len(files)):
                path = files[(i + offset) % len(files)]
                results[(offset, path)] = hashes.of(path)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 7,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(sha == _sha(path.read_bytes()) for (_, path), sha in results.items()) and len(results) == 6 * 40
    assert hashes.rebuilt == 1


def _files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        out.append(folder / f"f{i}.bin")
        out[-1].write_bytes(os.urandom(2048))
    return out


def _hash_all(cache_dir: str, paths: list[str], start, queue) -> None:
    start.wait()
    try:
        hashes = ContentHashes(cache_dir)
        queue.put((os.getpid(), [hashes.of(p) for p in paths], hashes.rebuilt, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put((os.getpid(), [], 0, repr(exc)))


def test_processes_racing_on_a_corrupt_index_never_crash(tmp_path):
    files = [str(p) for p in _files(tmp_path / "media", 30)]
    _settle()
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "content-hashes.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(40_000))
    ctx = multiprocessing.get_context("spawn")
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_hash_all, args=(str(cache_dir), files[::-1] if k % 2 else files, start, queue))
             for k in range(4)]
    for p in procs:
        p.start()
    start.set()
    reports = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = [_sha(Path(f).read_bytes()) for f in files]
    for _, hashes, _, error in reports:
        assert error is None
        assert sorted(hashes) == sorted(expected)
    assert sum(r[2] for r in reports) == 1  # the first one rebuilt it; the others found it rebuilt
    assert len(list(cache_dir.glob("content-hashes.sqlite.bad-*"))) == 1


# ---------------------------------------------------------------- a build on a tampered cache

def _entries(cache_dir: Path, stage: str) -> list[Path]:
    return sorted((cache_dir / "stages" / stage).glob("*/*.pkl"))


def _load(path: Path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _note_signature(notes) -> list[tuple[float, int]]:
    return sorted((round(float(onset), 4), int(pitch)) for onset, pitch in notes)


@pytest.fixture(scope="module")
def tampered_build(tiny_build, tiny_source, build_cache, tmp_path_factory):
    """The tiny source built again on a copy of its cache where song A's symbolic entry (its final notes) is
    song B's valid entry, every video entry is a pickled str, and the content-hash index is garbage."""
    import sys

    from conftest import TINY_CLI  # noqa: E402

    reference = tiny_build[0]
    root = tmp_path_factory.mktemp("cache-trust")
    cache = root / "cache"
    shutil.copytree(build_cache, cache)
    notes = symmv.load("notes", root=reference)
    by_song = {sid: _note_signature(zip(g.onset_s, g.pitch)) for sid, g in notes.groupby("song_id")}
    entry_of = {}  # song id -> the symbolic entries holding its notes
    for path in _entries(cache, "symbolic"):
        result = _load(path).value
        if result[0] == "ok":
            signature = _note_signature((n.onset_s, n.pitch) for n in result[1]["notes"])
            for sid, sig in by_song.items():
                if sig == signature:
                    entry_of.setdefault(sid, []).append(path)
    song_a, song_b = sorted(entry_of)[:2]
    assert by_song[song_a] != by_song[song_b]
    for path in entry_of[song_a]:
        shutil.copy(entry_of[song_b][0], path)  # a valid entry, of another song, at A's key
    videos = _entries(cache, "video")
    assert videos
    for path in videos:
        path.write_bytes(pickle.dumps("hello"))
    (cache / "content-hashes.sqlite").write_bytes(b"\x00garbled index" * 500)
    out = root / "out"
    cmd = [sys.executable, "-m", "symmv.cli", "build", "--source-dir", str(tiny_source), "--out", str(out),
           "--card-dir", str(root / "cards"), "--cache-dir", str(cache), "--workers", "1", "--no-progress", *TINY_CLI]
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect-home")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    return proc, out, reference, cache, (song_a, song_b, entry_of[song_a]), videos


def test_tampered_cache_builds_with_rc_0_and_publishes_the_reference(tampered_build):
    proc, out, reference, *_ = tampered_build
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    songs, ref = symmv.load("songs", root=out), symmv.load("songs", root=reference)
    assert sorted(songs.cover_id) == sorted(ref.cover_id)
    rejects, ref_rejects = symmv.load("rejects", root=out), symmv.load("rejects", root=reference)
    assert sorted(zip(rejects.item_id, rejects.stage, rejects.reason)) == sorted(
        zip(ref_rejects.item_id, ref_rejects.stage, ref_rejects.reason))
    report = json.loads((out / "build_report.json").read_text())
    assert report["cache_invalid"].get("symbolic", 0) >= 1 and report["cache_invalid"].get("video", 0) >= 1


def test_another_songs_entry_at_a_songs_key_is_not_published_as_its_notes(tampered_build):
    _, out, reference, _, (song_a, song_b, paths), _ = tampered_build
    notes, ref = symmv.load("notes", root=out), symmv.load("notes", root=reference)

    def of(table, sid):
        return _note_signature(zip(table[table.song_id == sid].onset_s, table[table.song_id == sid].pitch))

    assert of(notes, song_a) == of(ref, song_a) != of(ref, song_b)
    assert of(notes, song_b) == of(ref, song_b)
    for path in paths:  # the recomputed result replaced the copied entry
        entry = _load(path)
        assert (entry.stage, entry.key) == ("symbolic", path.stem)


def test_wrong_typed_entries_are_recomputed_and_rewritten(tampered_build):
    _, out, reference, cache, _, videos = tampered_build
    features, ref = symmv.load("video_features", root=out), symmv.load("video_features", root=reference)
    assert sorted(features.song_id) == sorted(ref.song_id)
    read_again = [p for p in videos if p.read_bytes() != pickle.dumps("hello")]
    assert read_again  # the entries this build used hold envelopes again
    for path in read_again:
        entry = _load(path)
        assert (entry.stage, entry.key) == ("video", path.stem)


def test_garbled_hash_index_was_moved_aside_and_rebuilt(tampered_build):
    _, out, _, cache, _, _ = tampered_build
    assert len(list(cache.glob("content-hashes.sqlite.bad-*"))) == 1
    assert json.loads((out / "build_report.json").read_text())["hash_index_rebuilt"] == 1
    with sqlite3.connect(cache / "content-hashes.sqlite") as db:
        assert db.execute("SELECT count(*) FROM content_hashes").fetchone()[0] > 0
