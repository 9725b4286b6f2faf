"""Video quality filters: thresholds on hand-made features, then the real decoder on lavfi clips."""
from __future__ import annotations

import numpy as np
import pytest

from annotators.quality import (
    STAGE,
    duration_mismatch,
    lyric_video,
    static_video,
    video_quality,
)
from annotators.video import VideoFeatures
from symmv.features.video import unreadable_video, video_features
from video_clips import lavfi_clip, lyric, moving, needs_ffmpeg, still


def features(motion, text=0.0, fps=1.0) -> VideoFeatures:
    motion = np.asarray(motion, np.float32)
    n = len(motion)
    return VideoFeatures(fps=fps, n_frames=n, duration_s=n / fps, semantic_encoder=None,
                         semantic=np.zeros((n, 0), np.float32), color=np.zeros((n, 3072), np.float32),
                         text_score=np.full(n, text, np.float32), motion=motion,
                         motion_mean=float(motion.mean()), shot_boundaries_s=np.zeros(0))


def test_static_threshold():
    assert static_video("a", features([0.0] * 9 + [0.2])).reason == "static_video"  # 90 % still
    assert static_video("a", features([0.0] * 8 + [0.2] * 2)) is None
    reject = static_video("a", features([0.001] * 10))
    assert (reject.item_id, reject.stage) == ("a", STAGE)


def test_lyric_needs_stillness_and_text():
    assert lyric_video("a", features([0.0] * 7 + [0.05] * 3, text=0.02)).reason == "lyric_video"
    assert lyric_video("a", features([0.0] * 7 + [0.05] * 3, text=0.0)) is None  # still but no text
    assert lyric_video("a", features([0.05] * 10, text=0.02)) is None  # text but moving (e.g. subtitles)


def test_duration_mismatch():
    assert duration_mismatch("a", 200.0, 215.0) is None  # within 20 s
    assert duration_mismatch("a", 300.0, 340.0) is None  # within 15 % of 340 s
    reject = duration_mismatch("a", 100.0, 240.0)
    assert reject.reason == "duration_mismatch" and "gap 140.0 s" in reject.detail


def test_video_quality_order():
    lyric_like = features([0.0] * 10, text=0.02)
    assert video_quality("a", lyric_like).reason == "lyric_video"  # more specific than static
    assert video_quality("a", lyric_like, cover_duration_s=100.0).reason == "duration_mismatch"
    assert video_quality("a", features([0.05] * 10), cover_duration_s=10.0) is None


@needs_ffmpeg
class TestOnClips:
    def test_static_clip_rejected(self, tmp_path):
        feats = video_features(still(tmp_path / "still.mp4", seconds=4.0), None, fps=2.0, size=112)
        assert video_quality("s", feats, cover_duration_s=4.0).reason == "static_video"

    def test_lyric_clip_rejected(self, tmp_path):
        feats = video_features(lyric(tmp_path / "lyric.mp4", seconds=6.0), None, fps=2.0, size=224)
        reject = video_quality("l", feats, cover_duration_s=6.0)
        assert reject is not None and reject.reason == "lyric_video", reject

    def test_moving_clip_kept(self, tmp_path):
        feats = video_features(moving(tmp_path / "m.mp4", seconds=3.0), None, fps=2.0, size=224)
        assert video_quality("m", feats, cover_duration_s=3.0) is None

    def test_unreadable_and_readable(self, tmp_path):
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"\x00not a video" * 50)
        empty = tmp_path / "empty.mp4"
        empty.write_bytes(b"")
        assert unreadable_video("j", junk).reason == "unreadable_video"
        assert unreadable_video("e", empty).reason == "unreadable_video"
        assert unreadable_video("missing", tmp_path / "missing.mp4").reason == "unreadable_video"
        assert unreadable_video("ok", lavfi_clip(tmp_path / "ok.mp4", "testsrc2=s=64x48:r=25:d=0.5")) is None

    def test_zero_decodable_frames(self, tmp_path):
        import subprocess

        src = lavfi_clip(tmp_path / "src.mp4", "testsrc2=s=64x48:r=25:d=0.5")
        fs = tmp_path / "fs.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-movflags", "+faststart", str(fs)],
                       check=True)
        data = bytearray(fs.read_bytes())
        mdat = data.index(b"mdat") + 4
        data[mdat:] = bytes(len(data) - mdat)
        garbled = tmp_path / "garbled.mp4"
        garbled.write_bytes(bytes(data))
        assert unreadable_video("g", garbled).reason == "zero_frames"
