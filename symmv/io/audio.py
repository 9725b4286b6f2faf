"""Audio decoding: any container ffmpeg reads (m4a/opus/webm/wav/mp4) -> mono float32, streamed in blocks.

Every failure raises `AudioError` (a symmv.core.errors.MediaError) with a reason code for the rejects table:
"undecodable", "empty_audio", "truncated_audio", "silent_audio".
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from symmv.core.errors import MediaError
from symmv.io.media import probe, require_tool


class AudioError(MediaError):
    """The audio cannot be decoded (or is empty / truncated / silent); `reason` says which."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail, reason=reason)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this everywhere the item is silence, not music
_BLOCK_S = 30.0  # seconds read from ffmpeg per block when streaming


def _probe(audio_path: Path) -> tuple[int, float | None]:
    """(channels of the first audio stream, container duration in s) -- (0, None) when unreadable."""
    try:
        info = probe(audio_path)
    except MediaError:
        return 0, None
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    try:
        channels = int(streams[0]["channels"])
    except (ValueError, KeyError, IndexError, TypeError):
        return 0, None
    try:
        duration_s = float(info["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        duration_s = None
    return channels, duration_s


def _ffmpeg_command(audio_path: Path, sample_rate: int) -> list[str]:
    ffmpeg = require_tool("ffmpeg")
    # -xerror: a corrupt packet (truncated download) fails the decode instead of yielding a silent gap.
    # Channels stay interleaved: ffmpeg's own -ac 1 downmix scales stereo by ~1/sqrt(2) per channel, while the
    # models were trained on librosa's plain channel mean, which we take in numpy.
    return [ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", str(audio_path), "-map", "0:a:0",
            "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]


def stream_audio(audio_path: str | Path, sample_rate: int, block_s: float = _BLOCK_S) -> Iterator[np.ndarray]:
    """Yield the audio as consecutive mono float32 blocks at `sample_rate`, decoded by an ffmpeg subprocess.

    Raises AudioError ("undecodable") when the file is missing or ffmpeg fails, ("empty_audio") when
    it holds no audio samples and ("truncated_audio") when it decodes to clearly less than its container
    declares -- after the last block, so a consumer may have seen blocks first. Only one block is held in
    memory at a time.
    """
    audio_path = Path(audio_path)
    if not audio_path.is_file():
        raise AudioError("undecodable", f"{audio_path} is not a file")
    n_channels, declared_s = _probe(audio_path)
    if n_channels == 0:
        raise AudioError("undecodable", f"{audio_path.name} has no readable audio stream")
    frame_bytes = 4 * n_channels
    block_bytes = int(block_s * sample_rate) * frame_bytes
    proc = subprocess.Popen(_ffmpeg_command(audio_path, sample_rate), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    n_samples = 0
    try:
        pending = b""
        while True:
            chunk = proc.stdout.read(block_bytes - len(pending))
            if not chunk:
                break
            pending += chunk
            if len(pending) >= block_bytes:
                n_samples += len(pending) // frame_bytes
                yield _to_mono(pending, n_channels)
                pending = b""
        if len(pending) >= frame_bytes:
            n_samples += len(pending) // frame_bytes
            yield _to_mono(pending[: len(pending) // frame_bytes * frame_bytes], n_channels)
    finally:
        if proc.stdout:
            proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise AudioError("undecodable", f"ffmpeg exit {rc} on {audio_path.name}: {stderr.strip()[-400:]}")
    if n_samples == 0:
        raise AudioError("empty_audio", f"{audio_path.name} decodes to no audio samples")
    decoded_s = n_samples / sample_rate
    # A partial download often still decodes cleanly (webm: "File ended prematurely", exit 0) but the
    # container header still declares the full length.
    if declared_s is not None and decoded_s < declared_s - max(1.0, 0.05 * declared_s):
        raise AudioError("truncated_audio",
                                 f"{audio_path.name} decodes to {decoded_s:.1f} s of a declared {declared_s:.1f} s")


def _to_mono(raw: bytes, n_channels: int) -> np.ndarray:
    frames = np.frombuffer(raw, dtype="<f4").reshape(-1, n_channels)
    return frames.mean(axis=1, dtype=np.float32) if n_channels > 1 else frames[:, 0].copy()


def decode_audio(audio_path: str | Path, sample_rate: int) -> np.ndarray:
    """The whole file as one mono float32 array (for short clips and annotators; models use `stream_windows`)."""
    audio = np.concatenate(list(stream_audio(audio_path, sample_rate)))
    check_not_silent(audio, str(audio_path))
    return audio


def check_not_silent(audio: np.ndarray, name: str = "audio") -> None:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if audio.size == 0:
        raise AudioError("empty_audio", f"{name} has no samples")
    if not np.isfinite(peak) or peak < SILENCE_PEAK:
        raise AudioError("silent_audio", f"{name} peak {peak:.2e} is below -60 dBFS")


def stream_windows(
    audio_path: str | Path, sample_rate: int, window: int, hop: int, pad_left: int = 0, pad_right: int = 0,
    stats: dict | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(start_sample, samples)` windows of length `window` every `hop` samples of the decoded audio.

    The audio is conceptually framed by `pad_left` and `pad_right` zeros (start_sample counts in that padded
    signal) and the last windows are zero-padded; windows start at every multiple of `hop` below the padded
    length, as Basic Pitch's `window_audio_file` and Transkun's `transcribe` loop do. `stats`, when given,
    receives `n_samples` (decoded, unpadded) and `peak`. Raises AudioError("silent_audio") after
    the stream if no sample reached -60 dBFS.
    """
    buffer = np.zeros(pad_left, dtype=np.float32)
    start = 0  # padded-signal index of buffer[0]
    peak, n_samples = 0.0, 0
    for block in stream_audio(audio_path, sample_rate):
        peak = max(peak, float(np.max(np.abs(block))))
        n_samples += len(block)
        buffer = np.concatenate([buffer, block])
        while len(buffer) >= window:
            yield start, buffer[:window]
            buffer = buffer[hop:]
            start += hop
    buffer = np.concatenate([buffer, np.zeros(pad_right, dtype=np.float32)])
    while len(buffer) > 0:
        yield start, np.pad(buffer[:window], (0, max(0, window - len(buffer))))
        buffer = buffer[hop:]
        start += hop
    if stats is not None:
        stats.update(n_samples=n_samples, peak=peak)
    if not np.isfinite(peak) or peak < SILENCE_PEAK:
        raise AudioError("silent_audio", f"{Path(audio_path).name} peak {peak:.2e} is below -60 dBFS")
