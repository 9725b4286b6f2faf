"""The ffmpeg frame decoder on generated clips: timeline, sizes, multi-stream decode, clear errors."""
from __future__ import annotations

import inspect
import subprocess
import time

import numpy as np
import pytest

from symmv.io.video import EmptyVideoError, VideoReadError, iter_frames, iter_streams, probe, read_frames
from video_clips import lavfi_clip, moving, needs_ffmpeg, solid

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return moving(tmp_path_factory.mktemp("vio") / "moving.mp4", seconds=2.0)


def test_probe(clip):
    info = probe(clip)
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)


def test_frames_on_target_timeline(clip):
    times, frames = read_frames(clip, fps=6.0, size=64)
    assert len(times) == 12  # 2 s at 6 fps
    np.testing.assert_allclose(times, np.arange(12) / 6.0)
    assert frames.shape == (12, 64, 64, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[6])  # testsrc2 moves


def test_iter_frames_is_lazy(clip):
    frames = iter_frames(clip, fps=6.0, size=32)
    assert inspect.isgenerator(frames)
    t, first = next(frames)
    assert t == 0.0 and first.shape == (32, 32, 3)
    frames.close()  # kills ffmpeg instead of decoding the rest


def test_early_break_stops_decoding(tmp_path):
    long_clip = lavfi_clip(tmp_path / "long.mp4", "testsrc2=s=160x120:r=25:d=30")
    start = time.perf_counter()
    for _, _ in iter_frames(long_clip, fps=25.0, size=32):
        break
    assert time.perf_counter() - start < 5.0


def test_non_square_source_is_centre_cropped(tmp_path):
    # left half red, right half blue at 16:9; the 1:1 crop keeps the centre, so both colors remain
    path = lavfi_clip(tmp_path / "wide.mp4", "color=c=red:s=320x180:r=25:d=1[a];color=c=blue:s=320x180:r=25:d=1[b];"
                                             "[a][b]hstack,crop=320:180:160:0")
    _, frames = read_frames(path, fps=2.0, size=32)
    frame = frames[0].astype(int)
    assert frame[:, :4, 0].mean() > 200 and frame[:, -4:, 2].mean() > 200


def test_two_streams_from_one_decode(clip):
    counts, times = [0, 0], [[], []]
    for stream, t, frame in iter_streams(clip, [(6.0, 48), (5.0, 16)]):
        assert frame.shape == ((48, 48, 3) if stream == 0 else (16, 16, 3))
        counts[stream] += 1
        times[stream].append(t)
    assert counts == [12, 10]
    np.testing.assert_allclose(times[1], np.arange(10) * 0.2)


def test_solid_color_pixels(tmp_path):
    _, frames = read_frames(solid(tmp_path / "solid.mp4", "0xC86432", 1.0), fps=2.0, size=16)
    np.testing.assert_allclose(frames.reshape(-1, 3).mean(axis=0), [200, 100, 50], atol=3)


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 100])
def test_unreadable_files_raise_value_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoReadError) as err:
        list(iter_frames(path))
    assert isinstance(err.value, ValueError) and str(path) in str(err.value)
    with pytest.raises(VideoReadError):
        probe(path)


def test_missing_file(tmp_path):
    with pytest.raises(VideoReadError, match="no such file"):
        next(iter_frames(tmp_path / "nope.mp4"))


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "audio.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(path)], check=True)
    with pytest.raises(VideoReadError, match="no video stream"):
        list(iter_frames(path))


def test_video_stream_without_decodable_frames(tmp_path):
    # keep the container (moov first) but zero the coded frames: ffprobe sees a stream, nothing decodes
    good = lavfi_clip(tmp_path / "good.mp4", "testsrc2=s=160x120:r=25:d=1")
    faststart = tmp_path / "faststart.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(good), "-c", "copy", "-movflags", "+faststart",
                    str(faststart)], check=True)
    data = bytearray(faststart.read_bytes())
    mdat = data.index(b"mdat") + 4
    data[mdat:] = bytes(len(data) - mdat)
    path = tmp_path / "garbled.mp4"
    path.write_bytes(bytes(data))
    assert probe(path).codec == "h264"
    with pytest.raises(EmptyVideoError, match="no frame decoded"):
        list(iter_frames(path))
