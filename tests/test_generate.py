"""`symmv generate`: a video in, an MP4 with generated music of the video's length out."""
import json
import subprocess
import sys

from models.config import STAGES, configs_for
from models.training.data import load_tables
from models.training.train import train_stage
from symmv.sources.local import discover


def _stream_durations(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return {s["codec_type"]: float(s["duration"]) for s in json.loads(out)["streams"]}


def test_generate_cli_writes_a_playable_mp4_with_music(tiny_build, tiny_source, tmp_path):
    root, _ = tiny_build
    tables = load_tables(root, splits=("train", "val", "test"))
    for stage in STAGES:  # one epoch on the tiny build: enough to prove the path, not to make music
        model_cfg, train_cfg = configs_for(stage, "tiny")
        train_cfg.epochs = 1
        train_stage(stage, tmp_path / "ckpt", tables=tables, model_cfg=model_cfg, train_cfg=train_cfg,
                    progress=False)
    video = next(v for v in discover(tiny_source / "videos")[0] if "Official" in v.title).media_path
    out = tmp_path / "out.mp4"
    proc = subprocess.run([sys.executable, "-m", "symmv.cli", "generate", video, "-o", str(out), "--ckpt",
                           str(tmp_path / "ckpt"), "--dataset", str(root), "--seed", "3"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["semantic_encoder"].startswith("efficientnet-lite0") and 90 <= result["tempo_bpm"] <= 130
    streams = _stream_durations(out)
    video_s = _stream_durations(video)["video"]
    assert set(streams) == {"video", "audio"}
    assert abs(streams["audio"] - video_s) < 0.1 and abs(streams["video"] - video_s) < 0.1
    assert result["notes"] > 0
    # the intermediate MIDI lives in a temporary folder: only -o is written beside it (issue 23.4)
    assert not (tmp_path / "out.mid").exists() and "midi" not in result
