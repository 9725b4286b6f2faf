"""Resume: kill -9 a build mid-run, run it again: it completes, reuses the finished work, and its shards
are byte-identical to an uninterrupted build's (no lost, no duplicated rows, no partial shard)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _build(source, out, home, cards):
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "INFO"}
    cmd = [sys.executable, "-m", "symmv.cli", "build", "--source-dir", str(source), "--out", str(out),
           "--card-dir", str(cards), "--no-progress"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.slow
def test_kill_minus_nine_then_resume_gives_the_uninterrupted_result(tiny_build, tiny_source, tmp_path):
    reference, _ = tiny_build
    out, home = tmp_path / "ds", tmp_path / "prefect-home"
    proc = _build(tiny_source, out, home, tmp_path / "cards")
    deadline = time.monotonic() + 600
    storage = home / "storage"
    while time.monotonic() < deadline and proc.poll() is None:  # wait for some persisted per-song results
        if storage.is_dir() and len(list(storage.iterdir())) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(out.rglob("part-*.parquet"))  # killed before writing: nothing half-visible

    again = _build(tiny_source, out, home, tmp_path / "cards")
    log, _ = again.communicate(timeout=900)
    assert again.returncode == 0, log[-3000:]
    assert "Cached" in log  # the work finished before the kill was not redone
    files = sorted(p.relative_to(reference) for p in reference.rglob("*.parquet"))
    assert files == sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    for rel in files:
        assert (reference / rel).read_bytes() == (out / rel).read_bytes(), rel
    assert not list(out.rglob(".tmp-*"))
