"""A dataset folder that never loses a user's file, and the error contract around it (issue 21, points 5-6):
someone else's folder is refused untouched; a rebuild removes only what a build owned; a root without a
committed manifest is refused by `symmv.load`; a read-only or full disk is one line and exit 1; a busy --out
is refused in a second without touching the other build's log; a kill -9 leaves no Prefect server behind;
and a build that accepts too few covers (or none) says so."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY, TINY_CLI  # noqa: E402

import symmv
from symmv.core.errors import BuildAborted, ConfigError, DatasetNotCommitted, write_failure, write_failure_line
from symmv.core.shards import MANIFEST, MARKER
from symmv.pipeline.config import BuildConfig
from symmv.pipeline.writer import BuildLock, owned

REPO = Path(__file__).resolve().parents[1]


def symmv_cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symmv.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})}, **kw)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def user_files(folder: Path) -> dict[str, bytes]:
    """A user's own files where a build writes its own: a MIDI file, a Parquet file, a README."""
    files = {"midi/mine.mid": b"MThd my own midi", "notes/split=train/mine.parquet": b"PAR1 my own table",
             "README.md": b"# my notes\n"}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return files


# ---------------------------------------------------------------- 1. someone else's folder, ownership

def test_a_folder_that_is_not_a_dataset_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    user_files(out)
    before = snapshot(out)
    started = time.monotonic()
    proc = symmv_cli("build", "--out", str(out), "--source-dir", str(tmp_path))
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert "is not empty and not a SymMV dataset" in one_line(proc.stderr)
    assert snapshot(out) == before  # nothing deleted, overwritten or added (no marker, lock or log)
    assert elapsed < 10, elapsed  # refused before any model or Prefect loads


def test_build_lock_accepts_new_empty_marked_and_killed_folders_only(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "new", tmp_path / "empty"):
        with BuildLock(folder):
            assert (folder / MARKER).is_file()
    killed = tmp_path / "killed"  # a first build killed before its first manifest: marker, batches, log
    (killed / ".batches" / "abc").mkdir(parents=True)
    (killed / MARKER).write_text("")
    (killed / "build.log").write_text("...")
    with BuildLock(killed):  # resumable, not refused
        pass
    with pytest.raises(DatasetNotCommitted, match="not complete.*rerun the build"):
        symmv.load("songs", root=killed)
    (tmp_path / "file").write_text("x")
    user_files(tmp_path / "foreign")
    for folder, why in ((tmp_path / "file", "is a file"), (tmp_path / "foreign", "not a SymMV dataset")):
        with pytest.raises(ConfigError, match=why):
            with BuildLock(folder):
                pass


def test_a_failed_validation_leaves_the_out_folder_as_it_was(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(ConfigError):
        with BuildLock(out):
            raise ConfigError("a typo found by validate")
    assert not out.exists()
    out.mkdir()
    with pytest.raises(ConfigError):
        with BuildLock(out):
            raise ConfigError("a typo found by validate")
    assert out.is_dir() and not list(out.iterdir())  # the user's empty folder stays, empty


def test_build_lock_is_reentrant_in_one_process(tmp_path):
    with BuildLock(tmp_path / "ds"):
        with BuildLock(tmp_path / "ds"):  # the CLI holds it, the flow takes it again
            pass
        assert (tmp_path / "ds" / ".build.lock").is_file()  # still held by the outer one


@pytest.fixture(scope="module")
def rebuilt(tiny_build, tiny_source, build_cache, tmp_path_factory):
    """The tiny build copied, a user's files put inside, then rebuilt from 3 of its 5 covers (every batch
    differs, so every part of the first generation becomes stale)."""
    from flows.build import build_symmv

    out = tmp_path_factory.mktemp("rebuilt") / "ds"
    shutil.copytree(tiny_build[0], out)
    first = json.loads((out / MANIFEST).read_text())
    mine = user_files(out)
    del mine["README.md"]  # a dataset's README.md is its card: the build's own
    summary = build_symmv(config=BuildConfig(source_dir=tiny_source, out=out, card_dir=out.parent / "cards",
                                             progress=False, limit=3, cache_dir=build_cache, **TINY))
    return out, first, mine, summary


def test_a_rebuild_removes_only_what_the_build_owned(rebuilt, tiny_build):
    out, first, mine, summary = rebuilt
    manifest = json.loads((out / MANIFEST).read_text())
    for rel, data in mine.items():
        assert (out / rel).read_bytes() == data, rel  # the user's files survived the stale-file removal
    stale = owned(first) - owned(manifest)
    assert any(rel.startswith("notes/") for rel in stale) and any(rel.startswith("midi/") for rel in stale)
    assert not [rel for rel in stale if (out / rel).exists()]  # the first generation's parts and MIDI are gone
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".batches" not in p.parts}
    assert on_disk - owned(manifest) == set(mine) | {MANIFEST}  # the manifest names every file the build owns
    assert {"build_report.json", "README.md", MARKER} <= set(manifest["files"])
    songs = symmv.load("songs", root=out)
    assert 0 < len(songs) == summary["songs"] < len(symmv.load("songs", root=tiny_build[0]))
    for table in ("notes", "chords", "beats"):  # the good songs are the ones the full build made
        ref = symmv.load(table, root=tiny_build[0])
        ref = ref[ref.song_id.isin(songs.song_id)].reset_index(drop=True)
        # a small dataset's splits follow its set of videos (symmv.core.split), so only the rows are compared
        assert symmv.load(table, root=out).drop(columns="split").equals(ref.drop(columns="split")), table


def test_a_publish_killed_half_way_is_cleaned_up_by_the_next(tmp_path, monkeypatch):
    """Parts a killed publish linked are not in any manifest: its journal tells the next publish they are the
    build's own (removed when unused), while a user's file beside them stays."""
    from symmv.core.shards import to_table
    from symmv.pipeline import writer as W

    out = tmp_path / "ds"

    def batch(key: str, song: str) -> str:
        w = W.BatchWriter(out, key)
        w.add("notes", "train", to_table("notes", [{"song_id": song, "track": "melody", "onset_s": 0.0,
                                                    "offset_s": 0.5, "pitch": 60, "velocity": 80}]))
        w.commit({"key": key})
        return key

    one, two = batch("a" * 64, "s1"), batch("b" * 64, "s2")
    (out / "notes" / "split=train").mkdir(parents=True)
    (out / "notes" / "split=train" / "mine.parquet").write_bytes(b"mine")
    real_link = W._link

    def link_then_die(src, dst):
        real_link(src, dst)
        raise KeyboardInterrupt  # the process is killed here: after its first part, before the manifest

    monkeypatch.setattr(W, "_link", link_then_die)
    with pytest.raises(KeyboardInterrupt):
        W.publish(out, [one], {}, [], "1" * 64)
    assert (out / "notes/split=train" / f"part-{one[:16]}.parquet").is_file() and not (out / MANIFEST).exists()
    monkeypatch.setattr(W, "_link", real_link)
    W.publish(out, [two], {}, [], "2" * 64)
    assert sorted(p.name for p in (out / "notes/split=train").iterdir()) == ["mine.parquet", f"part-{two[:16]}.parquet"]
    assert not (out / W.JOURNAL).exists() and sorted(p.name for p in (out / ".batches").iterdir()) == [two]


# ---------------------------------------------------------------- 2. no manifest, no dataset

def test_load_refuses_a_root_whose_build_never_committed(tiny_build, tmp_path):
    root = tmp_path / "killed-while-publishing"
    shutil.copytree(tiny_build[0], root)
    (root / MANIFEST).unlink()  # every part is there, the commit is not
    with pytest.raises(DatasetNotCommitted, match=r"not complete.*rerun the build with `--out") as caught:
        symmv.load("songs", root=root)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(DatasetNotCommitted, match="no SymMV dataset"):
        symmv.load("notes", root=tmp_path / "nothing-here")
    proc = symmv_cli("info", "--root", str(root))
    assert proc.returncode == 2 and "not complete" in one_line(proc.stderr)


# ---------------------------------------------------------------- 3. a disk that cannot take the dataset

@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount(options) -> a fresh tmpfs folder (root only; the test skips where mounting is not permitted)."""
    mounted = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_out_or_cache_is_one_line_and_exit_1(mount_tmpfs, tiny_source, tmp_path):
    read_only = mount_tmpfs("size=64k,ro")
    proc = symmv_cli("build", "--out", str(read_only / "ds"), "--source-dir", str(tiny_source))
    assert proc.returncode == 1
    assert one_line(proc.stderr) == f"symmv build: error: cannot write {read_only / 'ds'}: Read-only file system"
    out = tmp_path / "ds"
    proc = symmv_cli("build", "--out", str(out), "--cache-dir", str(read_only / "cache"), "--source-dir",
                     str(tiny_source))
    assert proc.returncode == 1
    assert one_line(proc.stderr) == f"symmv build: error: cannot write {read_only / 'cache'}: Read-only file system"
    assert not out.exists()  # the --out it made before the check is gone again


def test_write_failures_are_found_through_wrapping():
    full = OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("Finished in state Failed") from exc
    except RuntimeError as wrapped:
        outer = ExceptionGroup("task failures", [ValueError("other"), wrapped])
    assert write_failure(outer) is full
    assert write_failure(FileNotFoundError(errno.ENOENT, "nope")) is None  # a missing file is not a full disk
    assert write_failure(DatasetNotCommitted("no manifest")) is None
    named = OSError(errno.EACCES, "Permission denied", "/data/ds/x")
    assert write_failure_line(named, ["/data/ds"]) == "cannot write /data/ds/x: Permission denied"


FULL_DISK_BUILD = """
import errno, sys
from symmv.pipeline import writer
def full(self, *args):
    raise OSError(errno.ENOSPC, "No space left on device", str(self.tmp / "midi"))
writer.BatchWriter.write_midi = full  # the first song's MIDI, written inside a Prefect task
from symmv.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("disk", ["tmpfs", "injected"])
def test_a_disk_full_mid_build_is_one_line_and_exit_1(disk, mount_tmpfs, tiny_source, build_cache, tmp_path):
    """A real full tmpfs (pyarrow's error names no file: the full filesystem is found) and, where mounting is
    not permitted, an ENOSPC raised from the batch writer inside the Prefect task."""
    out = (mount_tmpfs("size=160k") if disk == "tmpfs" else tmp_path) / "ds"
    cmd = [sys.executable, "-m", "symmv.cli"] if disk == "tmpfs" else [sys.executable, "-c", FULL_DISK_BUILD]
    proc = subprocess.run([*cmd, "build", "--source-dir", str(tiny_source), "--out", str(out), "--card-dir",
                           str(tmp_path / "cards"), "--cache-dir", str(build_cache), "--no-progress", *TINY_CLI],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = one_line(proc.stderr)
    assert line.startswith(f"symmv build: error: cannot write {out}") and line.endswith(": No space left on device")
    assert not (out / MANIFEST).exists()


# ---------------------------------------------------------------- 4 + 5. a busy --out; kill -9

def test_a_busy_out_is_refused_at_once_without_touching_the_other_log(tmp_path):
    out = tmp_path / "ds"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from symmv.pipeline.writer import BuildLock\n"
                               f"with BuildLock({str(out)!r}):\n print('held', flush=True); sys.stdin.read()"],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    (out / "build.log").write_text("the running build's log\n")
    started = time.monotonic()
    proc = symmv_cli("build", "--out", str(out))
    elapsed = time.monotonic() - started
    holder.communicate("", timeout=60)
    assert proc.returncode == 2 and "another build is writing" in one_line(proc.stderr)
    assert (out / "build.log").read_text() == "the running build's log\n"
    assert elapsed < 5, elapsed  # ~1-2 s measured on the 2-core box: a Python start, no model, no Prefect


def _children_named(pid: int, word: str) -> list[int]:
    from symmv.watchdog import descendants

    return [p for p in descendants(pid) if word in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]


@pytest.mark.slow
def test_kill_minus_nine_leaves_no_prefect_server_and_a_second_build_is_refused_meanwhile(tiny_source, tmp_path):
    from symmv.watchdog import _alive, descendants

    out = tmp_path / "ds"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    cmd = [sys.executable, "-m", "symmv.cli", "build", "--source-dir", str(tiny_source), "--out", str(out),
           "--card-dir", str(tmp_path / "cards"), "--cache-dir", str(tmp_path / "cache"), "--batch-size", "1",
           "--no-progress", *TINY_CLI]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not _children_named(proc.pid, "uvicorn"):
        time.sleep(0.2)
    assert proc.poll() is None, "the build finished before its Prefect server was seen"
    started = time.monotonic()
    second = symmv_cli("build", "--source-dir", str(tiny_source), "--out", str(out), env=env)
    elapsed = time.monotonic() - started
    assert second.returncode == 2 and "another build is writing" in one_line(second.stderr)
    assert elapsed < 5, elapsed
    log = (out / "build.log").read_text()
    assert "another build" not in log and "Traceback" not in log  # nothing of the refused build in its log
    children = descendants(proc.pid)
    assert _children_named(proc.pid, "uvicorn") and _children_named(proc.pid, "symmv.watchdog")
    os.kill(proc.pid, signal.SIGKILL)  # the CLI alone, as `kill -9 <pid>` does: not its process group
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p, s) for p, s in children.items()):
        time.sleep(0.2)
    survivors = [p for p, s in children.items() if _alive(p, s)]
    for pid in survivors:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, survivors


# ---------------------------------------------------------------- 6. too few accepted, none accepted

def test_accept_fraction_counts_covers_only():
    from symmv.pipeline.build import check_accepted

    cfg = BuildConfig(min_accept_fraction=0.5)
    summary = {"songs": 2, "rejects": 5,
               "reject_reasons": {"match:no_video_match": 2, "discover_videos:bad_info_json": 3}}
    check_accepted(cfg, summary)  # 2 of 4 covers: the 3 broken candidate videos are no covers
    with pytest.raises(BuildAborted, match=r"only 2 of 4 covers were accepted \(50% < --min-accept-fraction 0.6\)"):
        check_accepted(replace(cfg, min_accept_fraction=0.6), summary)
    with pytest.raises(BuildAborted, match="only 0 of 0 covers"):
        check_accepted(cfg, {"songs": 0, "rejects": 0, "reject_reasons": {}})
    check_accepted(BuildConfig(), {"songs": 0, "rejects": 9, "reject_reasons": {}})  # 0 = off


def test_too_few_accepted_publishes_nothing_and_keeps_the_previous_build(tiny_build, tiny_source, build_cache,
                                                                        tmp_path):
    from flows.build import build_symmv

    out = tmp_path / "ds"
    shutil.copytree(tiny_build[0], out)
    before = snapshot(out)
    with pytest.raises(BuildAborted, match="covers were accepted.*nothing new was published"):
        build_symmv(config=BuildConfig(source_dir=tiny_source, out=out, card_dir=tmp_path / "cards", progress=False,
                                       limit=3, cache_dir=build_cache, min_accept_fraction=0.99, **TINY))
    def published(files: dict) -> dict:  # all but the finished batches (kept for a rerun) and the lock's pid
        return {k: v for k, v in files.items() if not k.startswith(".batches/") and k != ".build.lock"}

    assert published(snapshot(out)) == published(before)
    assert symmv.load("songs", root=out).equals(symmv.load("songs", root=tiny_build[0]))


@pytest.mark.slow
def test_a_build_that_accepts_no_cover_warns(tmp_path):
    source = tmp_path / "broken"
    (source / "covers").mkdir(parents=True)
    (source / "videos").mkdir()
    for i in range(3):
        (source / "covers" / f"broken{i:05d}.m4a").write_bytes(b"not audio")
        (source / "covers" / f"broken{i:05d}.info.json").write_text(json.dumps(
            {"id": f"broken{i:05d}", "title": "Someone - Something (Piano Cover)", "duration": 30.0}))
    proc = symmv_cli("build", "--source-dir", str(source), "--out", str(tmp_path / "ds"), "--card-dir",
                     str(tmp_path / "cards"), "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                     "--max-reject-fraction", "0.1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = one_line(proc.stderr)
    assert line.startswith("symmv build: warning: no cover was accepted (3 rejected)"), line
    assert len(symmv.load("songs", root=tmp_path / "ds")) == 0 and len(symmv.load("rejects", root=tmp_path / "ds")) == 3
