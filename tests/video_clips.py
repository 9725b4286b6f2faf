"""Tiny videos generated with ffmpeg's lavfi sources for the video tests (a few KB each, < 0.5 s to make)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def lavfi_clip(path: Path, graph: str) -> Path:
    """Encode a lavfi filter graph (video only) to H.264 / yuv420p, like a real download."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def solid(path: Path, color: str = "0xC86432", seconds: float = 2.0) -> Path:
    return lavfi_clip(path, f"color=c={color}:s=320x240:r=25:d={seconds}")


def still(path: Path, seconds: float = 6.0) -> Path:
    """A non-uniform but motionless picture (blurred colour bars)."""
    return lavfi_clip(path, f"smptebars=s=320x240:r=25:d={seconds},boxblur=10")


def moving(path: Path, seconds: float = 3.0) -> Path:
    return lavfi_clip(path, f"testsrc2=s=320x240:r=25:d={seconds}")


def cut(path: Path, first_s: float = 2.0, second_s: float = 2.0) -> Path:
    """Red then blue: one hard cut at `first_s`."""
    return lavfi_clip(path, f"color=c=red:s=320x240:r=25:d={first_s}[a];"
                            f"color=c=blue:s=320x240:r=25:d={second_s}[b];[a][b]concat=n=2:v=1:a=0")


def lyric(path: Path, seconds: float = 6.0) -> Path:
    """Two lines of text over a still background, the first line changing halfway (a lyric video)."""
    if not FONT.is_file():
        pytest.skip(f"no font for drawtext at {FONT}")
    text = f"drawtext=fontfile={FONT}:fontsize=28:fontcolor=white:x=(w-tw)/2"
    half = seconds / 2
    return lavfi_clip(path, f"smptebars=s=640x360:r=25:d={seconds},boxblur=20,"
                            f"{text}:y=h/2-40:text='And I will always love you':enable='lt(t,{half})',"
                            f"{text}:y=h/2-40:text='Every night in my dreams':enable='gte(t,{half})',"
                            f"{text}:y=h/2+10:text='I see you, I feel you'")
