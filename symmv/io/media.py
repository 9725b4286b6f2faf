"""Thin, checked wrappers around the ffmpeg / ffprobe / fluidsynth command-line tools: the one ffprobe
(`probe`), the one soundfont lookup (`default_soundfont`), fluidsynth rendering and muxing.

Every call raises symmv.core.errors.MediaError with the tool's own stderr tail, so a bad file becomes a
readable reject reason instead of a stack trace.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from symmv.core import settings
from symmv.core.errors import ConfigError, MediaError


def require_tool(tool: str) -> str:
    """The tool's path; a missing tool is a broken installation, not a bad item (ConfigError)."""
    exe = shutil.which(tool)
    if exe is None:
        raise ConfigError(f"{tool} not found on PATH; run `make setup` (installs ffmpeg and fluidsynth)")
    return exe


def run_tool(args: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess:
    tool = args[0]
    require_tool(tool)
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{tool} timed out after {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError(f"{tool} failed ({proc.returncode}): {' | '.join(tail)}")
    return proc


def default_soundfont() -> Path:
    """The General MIDI soundfont of the dataset's own renders (symmv.core.settings)."""
    sf2 = settings.soundfont()
    if sf2 is None:
        raise MediaError("no General MIDI soundfont found; set SYMMV_SOUNDFONT or run `make setup`")
    return sf2


def music_soundfont() -> Path:
    """The soundfont generated music is rendered with: a full piano first (symmv.core.settings)."""
    return settings.soundfont(music=True) or default_soundfont()


def probe(path: str | Path) -> dict:
    """ffprobe's format + streams as a dict."""
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        raise MediaError(f"{path}: missing or empty file")
    out = run_tool(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                    str(path)], timeout_s=60).stdout
    return json.loads(out)


def duration_s(path: str | Path) -> float:
    info = probe(path)
    value = info.get("format", {}).get("duration")
    if value is None:
        raise MediaError(f"{path}: no duration (not a media file?)")
    return float(value)


def has_stream(path: str | Path, kind: str) -> bool:
    return any(s.get("codec_type") == kind for s in probe(path).get("streams", []))


def render_midi(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 22050,
                soundfont: str | Path | None = None, gain: float = 0.8) -> Path:
    """Render MIDI to WAV with fluidsynth (as the paper does for listening and VMCP)."""
    sf2 = Path(soundfont) if soundfont else default_soundfont()
    run_tool(["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-F", str(wav_path),
              str(sf2), str(midi_path)])
    if not Path(wav_path).is_file():
        raise MediaError(f"fluidsynth wrote no audio for {midi_path}")
    return Path(wav_path)


def encode_audio(wav_path: str | Path, out_path: str | Path, max_s: float | None = None) -> Path:
    """Encode to the container its suffix names (.m4a -> AAC, .opus, .mp3, .wav)."""
    codec = {".m4a": ["-c:a", "aac", "-b:a", "128k"], ".opus": ["-c:a", "libopus", "-b:a", "96k"],
             ".mp3": ["-c:a", "libmp3lame", "-q:a", "4"], ".wav": ["-c:a", "pcm_s16le"]}
    suffix = Path(out_path).suffix
    if suffix not in codec:
        raise MediaError(f"unsupported audio container {suffix}")
    limit = ["-t", f"{max_s:.3f}"] if max_s else []
    run_tool(["ffmpeg", "-y", "-v", "error", "-i", str(wav_path), *limit, "-vn", *codec[suffix],
              str(out_path)])
    return Path(out_path)


def mux(video_path: str | Path, audio_path: str | Path, out_path: str | Path) -> Path:
    """Put `audio_path` onto `video_path` (video stream copied); the audio is padded with silence to the
    video's length and cut at its end, so the result is exactly as long as the video."""
    run_tool(["ffmpeg", "-y", "-v", "error", "-i", str(video_path), "-i", str(audio_path),
              "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k",
              "-af", "apad", "-t", f"{duration_s(video_path):.3f}", str(out_path)])
    return Path(out_path)
