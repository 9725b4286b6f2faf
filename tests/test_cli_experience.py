"""What a user meets at the command line (issue 23): one-line errors that write nothing, `--version`, a piped
build that shows timestamped progress with ETA and a plain summary and writes nothing outside --out, and
per-song lines in Prefect's run log (what a deployment's UI and build.log show)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CLI  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def symmv(*args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symmv.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def repo_state() -> str:
    """What a build could leave in the checkout: ignored files included (.prefect/, data_cards/, stray .mid)."""
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "data_cards", ".prefect", "*.mid"],
                          cwd=REPO, capture_output=True, text=True).stdout


def test_version():
    import symmv as package

    proc = symmv("--version", cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == f"symmv {package.__version__}"


@pytest.fixture
def inputs(tmp_path) -> Path:
    """A folder with a text file named .mp4, a sub-folder and an ordinary file: what a user points -o at."""
    (tmp_path / "fake.mp4").write_text("not a video at all\n")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "afile").write_text("mine")
    return tmp_path


@pytest.mark.parametrize("args,expected", [
    (("build", "--out", "{tmp}/afile"), "is a file, not a folder"),
    (("build", "--out", "{tmp}/afile/sub"), "is a file, not a folder"),
    (("build", "--out", "{tmp}/ds", "--cache-dir", "{tmp}/afile"), "--cache-dir"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/out.mp4"), "is not a readable video"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/outdir"), "is a folder"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/nowhere/out.mp4"), "does not exist"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/x.mp4", "--midi-only"), "--midi-only writes MIDI"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/x.mid"), "the output is a video"),
    (("generate", "{tmp}/fake.mp4", "-o", "{tmp}/fake.mp4"), "is the input video"),
    (("card", "--root", "{tmp}/outdir"), "is not a built SymMV dataset"),
])
def test_user_errors_are_one_line_exit_2_and_write_nothing(args, expected, inputs):
    before_tmp, before_repo = listing(inputs), repo_state()
    proc = symmv(*(a.format(tmp=inputs) for a in args), cwd=inputs, XDG_CACHE_HOME=str(inputs / "cache"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert lines[0].startswith(f"symmv {args[0]}: error: ")
    after = listing(inputs) - before_tmp
    assert after <= {"cache", "cache/symmv", "cache/symmv/prefect"}, after  # Prefect's home: the user's cache dir
    assert (inputs / "afile").read_text() == "mine" and not list((inputs / "outdir").iterdir())
    assert repo_state() == before_repo


def test_generate_with_an_unbuilt_dataset_is_refused_before_any_model_loads(inputs):
    proc = symmv("generate", str(inputs / "fake.mp4"), "-o", str(inputs / "o.mp4"), "--dataset", str(inputs / "outdir"),
                 cwd=inputs)
    # the video is checked first (it is not one); with a real video the dataset's missing report is the error
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_generate_says_which_motion_range_it_uses(tmp_path, capsys):
    from annotators.video import DEFAULT_MOTION_RANGE
    from symmv.cli import generate_motion_range
    from symmv.core.errors import ConfigError

    os.chdir(tmp_path)  # outside the repository: no data/symmv-demo here
    try:
        assert generate_motion_range(None) is None
        notice = capsys.readouterr().err
        assert "default motion range" in notice and f"{DEFAULT_MOTION_RANGE[0]:g}" in notice
        with pytest.raises(ConfigError, match="has no build_report.json"):
            generate_motion_range(str(tmp_path))
        (tmp_path / "build_report.json").write_text("{}")
        assert generate_motion_range(str(tmp_path)) == str(tmp_path)
    finally:
        os.chdir(REPO)


def test_help_is_fast_to_build_and_names_no_internals():
    """The parser of every command without the heavy imports (torch, Prefect, pandas); help text for users.
    `build --help` lists the registries' names (symmv.pipeline.names) without importing the registries."""
    for argv in (["generate"], ["build", "--help"]):
        code = (f"import sys, symmv.cli as c; p = c.make_parser({argv!r}); "
                "print(sorted(m for m in ('torch', 'prefect', 'pandas', 'matplotlib') if m in sys.modules))")
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip() == "[]", (argv, proc.stdout + proc.stderr)
    for command in ("generate", "info", "card"):
        text = symmv(command, "--help", cwd=REPO, COLUMNS="400").stdout
        for option in re.findall(r"^  (--[a-z-]+|-o)", text, flags=re.M):
            block = text.split("\n  " + option, 1)[1].split("\n  -", 1)[0]
            assert len(block.split()) > 4, (command, option)
            assert option in ("--midi-only",) or "default" in block or option == "-o", (command, option)
    build = " ".join(symmv("build", "--help", cwd=REPO, COLUMNS="400").stdout.split())
    assert "(default: what the source implies)" in build and "(default: none)" not in build.split("--card-dir")[0]
    assert not re.search(r"symmv\.\w+\.\w+|annotators\.\w+", build), re.findall(r"symmv\.\w+\.\w+|annotators\.\w+", build)


@pytest.mark.slow
def test_a_piped_build_prints_timestamped_progress_and_a_plain_summary_and_nothing_outside_out(
        tiny_source, build_cache, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # the working folder: a user's, outside the repository
    elsewhere.mkdir()
    before_repo = repo_state()
    out = tmp_path / "ds"
    proc = symmv("build", "--source-dir", str(tiny_source), "--out", str(out), "--cache-dir", str(build_cache),
                 *TINY_CLI, cwd=elsewhere, timeout=900, XDG_CACHE_HOME=str(tmp_path / "user-cache"),
                 PREFECT_LOGGING_LEVEL="INFO")  # a user's default (the test session sets WARNING)
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [line for line in proc.stderr.splitlines() if re.match(rf"{STAMP} build-symmv ", line)]
    assert progress, proc.stderr[-3000:]
    assert all("ETA " in line and "songs/s" in line for line in progress)
    assert re.search(r"build-symmv done: 5/5 songs \(100%\), 2 rejected", progress[-1]), progress[-1]
    assert "\x1b[" not in proc.stderr + proc.stdout  # no terminal codes into a pipe
    summary = proc.stdout.splitlines()
    assert re.match(r"3 songs \(.* h\) in .*: splits train \d, val \d, test \d; 2 rejected; [\d.]+ s$", summary[0]), summary
    assert any(line.startswith("  rejected match:no_video_match: ") for line in summary)
    assert not set("┏┃│━─╇") & set(proc.stdout)  # no box table to wrap at 80 columns
    assert listing(elsewhere) == set()  # no .prefect/, no data_cards/ in the working folder
    assert repo_state() == before_repo  # nor in the checkout
    assert (out / "README.md").is_file()  # the card is inside --out
    log = (out / "build.log").read_text()
    # through the task's run logger (prefect.task_runs: its API handler is what a deployment's UI shows)
    assert re.search(r"prefect\.task_runs: batch \d song 1/\d+ \S+: (accepted|rejected)", log) and "batch ETA" in log
    assert re.search(r"prefect\.flow_runs: batch \d done: \d+ songs, \d+ rejected; 1/\d batches", log)


def test_every_split_of_a_tiny_build_is_filled_and_recorded(tiny_build):
    """The tiny build's 3 official videos: where the hash leaves a split empty, the rank rule fills each, and the
    report records the overrides (a rebuild into the same --out starts from them and writes the batches once)."""
    import json

    import symmv
    from symmv.core.split import assign_splits, split_overrides

    root, summary = tiny_build
    songs = symmv.load("songs", root=root)
    assert summary["splits"] == {"test": 1, "train": 1, "val": 1}
    assert dict(zip(songs["video_url"], songs["split"])) == assign_splits(songs["video_url"])
    report = json.loads((root / "build_report.json").read_text())
    assert report["split_overrides"] == split_overrides(songs["video_url"])


def test_progress_lines_prints_timestamped_eta_lines_into_a_pipe_and_one_redrawn_line_on_a_terminal():
    import io

    from symmv.pipeline.progress import progress_lines

    piped = io.StringIO()
    with progress_lines(total=50, label="train chord", unit="steps", interval_s=3600, stream=piped) as p:
        for step in range(50):
            p.advance(loss=f"{2.5 - step / 100:.2f}")
    lines = piped.getvalue().splitlines()
    assert len(lines) == 2  # the first step and the last (the interval is not reached in between)
    assert re.fullmatch(rf"{STAMP} train chord: 1/50 steps \(2%\), [\d.]+ steps/s, elapsed 00:00, ETA \d\d:\d\d, "
                        r"loss=2.50", lines[0]), lines[0]
    assert re.search(r": 50/50 steps \(100%\), .* ETA 00:00, loss=2.01$", lines[1]), lines[1]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with progress_lines(total=3, label="evaluate", stream=tty) as p:
        for _ in range(3):
            p.advance()
    assert tty.getvalue().count("\r") == 3 and tty.getvalue().endswith("ETA 00:00\n")
    reported: list[str] = []
    with progress_lines(total=2, label="songs", report=reported.append) as p:  # e.g. a Prefect run logger
        p.advance()
        p.advance()
    assert [line.split(":")[0] for line in reported] == ["songs", "songs"]


def test_a_second_pass_over_the_batches_counts_its_rate_and_eta_from_its_own_start():
    """The small-dataset splits pass re-reads cached songs in seconds: its ETA must not use the first pass's time."""
    import time

    from symmv.pipeline.progress import BuildProgress

    build = BuildProgress(total=20, started=time.monotonic() - 200.0)  # a first pass of 200 s
    build.restart_batches("splits")
    build.pass_started = time.monotonic() - 2.0  # 5 songs in the second pass's first 2 s
    for _ in range(5):
        build.song(0, True, {"symbolic": "cached"})
    snap = build.snapshot()
    assert snap["elapsed_s"] >= 200.0  # the build's elapsed time is the whole build's
    assert snap["songs_per_s"] > 2.0 and snap["eta_s"] < 10.0, snap  # 15 songs left at 2.5 songs/s: ~6 s
