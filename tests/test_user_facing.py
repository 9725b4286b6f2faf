"""What a user sees (issue 13): the live progress display in a real pseudo-terminal, one-line errors,
Prefect artifacts of a real run, and the dataset root loading with Hugging Face `datasets`."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_CLI  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(args: list[str], timeout_s: float = 600) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as stdout/stderr (as a user's shell would); return (rc, text)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color", "PREFECT_LOGGING_LEVEL": "INFO"}
    proc = subprocess.Popen(args, cwd=REPO, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    rc = proc.wait(timeout=60)
    return rc, ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def symmv(*args: str) -> list[str]:
    return [sys.executable, "-m", "symmv.cli", *args]


@pytest.mark.slow
def test_build_in_a_terminal_shows_progress_and_a_reject_summary(tiny_source, build_cache, tmp_path):
    rc, text = run_in_pty(symmv("build", "--source-dir", str(tiny_source), "--out", str(tmp_path / "ds"),
                                "--card-dir", str(tmp_path / "cards"), "--cache-dir", str(build_cache), *TINY_CLI))
    assert rc == 0, text[-3000:]
    # the bar is drawn (rich does not eat `[###...]` as markup) and stays for every song, and the line of totals
    # fits the 120 columns unwrapped: bar, counts, rate and ETA on one line
    heads = re.findall(r"build-symmv (\w+)  \[([#.]{30})\] (\d+)/(\d+) songs  \d+ rejected  [\d.]+ songs/s  "
                       r"elapsed [\d:]+  ETA [-\d:]+", text)
    assert heads, text[-3000:]
    assert any(int(done) >= 3 and "#" in bar for _, bar, done, _ in heads), heads[-5:]
    assert heads[-1][2] == heads[-1][3] and heads[-1][1] == "#" * 30  # the last frame: every song, a full bar
    assert re.search(r"\b5/5 songs\b", text) and "2 rejected" in text
    assert re.search(r"measure\s+\d+\s+\d+", text)  # the per-stage table: ran / cached / refused / errors
    assert "match:no_video_match" in text  # the closing table of reject reasons
    for noise in ("Finished in state", "Traceback", "Coremltools", "Prefect collects", "INFO"):
        assert noise not in text, noise
    log = (tmp_path / "ds" / "build.log").read_text()
    assert "Finished in state" in log  # Prefect's lines are kept, in the log file


@pytest.mark.parametrize("args,expected", [
    (("build", "--source-dir", "/no/such/source"), "does not exist"),
    (("build", "--transcriber", "basicpitch"), "unknown transcriber 'basicpitch'"),
    (("info", "--root", "/no/such/dataset"), "is not a SymMV dataset"),
    (("generate", "/no/such/video.mp4", "-o", "/tmp/x.mp4"), "no video file"),
])
def test_user_errors_are_one_line_with_a_hint(args, expected, tmp_path):
    proc = subprocess.run(symmv(*args, *(["--out", str(tmp_path / "o")] if args[0] == "build" else [])),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]


def test_generate_without_checkpoints_is_one_line(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not really a video")
    proc = subprocess.run(symmv("generate", str(video), "-o", str(tmp_path / "o.mp4"), "--ckpt", str(tmp_path / "none")),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_info_refuses_an_empty_folder(tmp_path):
    proc = subprocess.run(symmv("info", "--root", str(tmp_path)), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "not a SymMV dataset" in proc.stderr


def test_build_help_explains_every_option():
    proc = subprocess.run(symmv("build", "--help"), cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})
    text = " ".join(proc.stdout.split())
    assert "{basic-pitch, midi-file, pti, transkun}" in text and "{joint, madmom, notes}" in text
    options = re.findall(r"^  (--[a-z-]+)", proc.stdout, flags=re.M)
    assert len(options) >= 20
    for option in options:  # every option has a sentence of its own, not only a default
        block = proc.stdout.split(option, 1)[1].split("\n  --", 1)[0]
        assert len(block.replace("(default:", "").split()) > 3, option


def test_help_names_are_the_registries():
    """symmv.pipeline.names lets --help list the registries without importing them: it must equal them."""
    from symmv.features.encoders import ENCODERS
    from symmv.pipeline import names
    from symmv.pipeline.runners import RUNNERS
    from symmv.pipeline.sources import SOURCES
    from symmv.pipeline.stages import BEAT_TRACKERS
    from symmv.transcription.backends import BACKENDS

    assert names.SOURCES == tuple(SOURCES)
    assert sorted(names.TRANSCRIBERS) == sorted(BACKENDS) and sorted(names.BEAT_TRACKERS) == sorted(BEAT_TRACKERS)
    assert sorted(names.SEMANTIC_ENCODERS) == sorted(ENCODERS) and sorted(names.TASK_RUNNERS) == sorted(RUNNERS)


def test_a_real_run_publishes_its_report_and_rejects_as_artifacts(tiny_build):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    root, summary = tiny_build
    key = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")
    with get_client(sync_client=True) as client:
        report = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"build-report-{key}"])))
        rejects = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"rejects-{key}"])))
    assert report and f"**{summary['songs']} songs**" in report[0].data and "no_video_match" in report[0].data
    assert rejects and rejects[0].type == "table" and "no_video_match" in str(rejects[0].data)


def test_the_dataset_root_loads_with_hugging_face_datasets(tiny_build, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import symmv
    from symmv.core.schema import TABLES

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, _ = tiny_build
    assert (root / "README.md").read_text().startswith("---\n")
    for table in TABLES:
        frame = symmv.load(table, root=root)
        for split in sorted(set(frame["split"])):
            ds = datasets.load_dataset(str(root), table, split=split)
            assert len(ds) == (frame["split"] == split).sum(), (table, split)
    video = datasets.load_dataset(str(root), "video_features", split="train")
    assert str(video.features["color"]) == "List(List(Value('float32')))"  # nested features keep their types
    songs = datasets.load_dataset(str(root))  # the default config: songs, every split
    assert set(songs) == set(symmv.load("songs", root=root)["split"])


def test_the_stage_cache_defaults_to_the_users_cache_not_the_working_folder(monkeypatch, tmp_path):
    from symmv.pipeline.config import BuildConfig

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert BuildConfig().cache_dir == tmp_path / "xdg" / "symmv" / "build"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert BuildConfig().cache_dir == tmp_path / "home" / ".cache" / "symmv" / "build"
    assert BuildConfig().cache_dir.is_absolute()
