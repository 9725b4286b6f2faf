"""Audio -> piano notes (paper sec. 3.1): one registry of transcription backends.

`transcribe(path, backend=...)` decodes any container ffmpeg can read (m4a/opus/webm/wav) to mono float32
itself, streams fixed windows of it through the backend's model (a 10-minute cover is never handed to a
model whole) and returns a `Transcription`: the notes plus the backend's name and version, which the flow
writes into provenance (`songs.transcriber`).

Backends (name -> constructor in `BACKENDS`; each instance knows `name` and `version`):
- "basic-pitch": Spotify's Basic Pitch ICASSP 2022 ONNX model (ships in the wheel, Apache-2.0).
- "transkun":    Transkun V2 (Yan & Duan), weights in the wheel; see `symmv.transcription_transkun`.
- "pti":         ByteDance piano_transcription_inference (Kong et al.), the paper's transcriber family;
                 needs a checkpoint on disk (see `symmv.transcription_pti`).

Every failure that should quarantine the item (undecodable, empty, silent audio, nothing transcribed)
raises `TranscriptionError`, a ValueError with a machine-readable `reason` for the rejects table.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symmv.records import Note
from symmv.schema import NOTES

# -- result ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcription:
    notes: list[Note]
    backend: str
    version: str

    @property
    def transcriber(self) -> str:
        """`"<backend> <version>"`, the value of `songs.transcriber`."""
        return f"{self.backend} {self.version}"


class TranscriptionError(ValueError):
    """The audio cannot be transcribed; the flow writes a `rejects` row with `reason` and the message."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# The notes table's schema (symmv.schema.NOTES): a Transcription's notes before quantization fill it.
TRANSCRIBED_NOTE_SCHEMA = NOTES
# -- audio decoding --------------------------------------------------------------------------------

SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this everywhere the item is silence, not music
_BLOCK_S = 30.0  # seconds read from ffmpeg per block when streaming


def _probe(audio_path: Path) -> tuple[int, float | None]:
    """(channels of the first audio stream, container duration in s) -- (0, None) when unreadable."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise RuntimeError("ffprobe is not on PATH (apt-get install ffmpeg)")
    out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=channels:format=duration", "-of", "json", str(audio_path)],
                         capture_output=True, text=True)
    try:
        info = json.loads(out.stdout or "{}")
        channels = int(info["streams"][0]["channels"])
    except (ValueError, KeyError, IndexError, TypeError):
        return 0, None
    try:
        duration_s = float(info["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        duration_s = None
    return channels, duration_s


def _ffmpeg_command(audio_path: Path, sample_rate: int) -> list[str]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not on PATH (apt-get install ffmpeg)")
    # -xerror: a corrupt packet (truncated download) fails the decode instead of yielding a silent gap.
    # Channels stay interleaved: ffmpeg's own -ac 1 downmix scales stereo by ~1/sqrt(2) per channel, while the
    # models were trained on librosa's plain channel mean, which we take in numpy.
    return [ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", str(audio_path), "-map", "0:a:0",
            "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]


def stream_audio(audio_path: str | Path, sample_rate: int, block_s: float = _BLOCK_S) -> Iterator[np.ndarray]:
    """Yield the audio as consecutive mono float32 blocks at `sample_rate`, decoded by an ffmpeg subprocess.

    Raises TranscriptionError ("undecodable") when the file is missing or ffmpeg fails, ("empty_audio") when
    it holds no audio samples and ("truncated_audio") when it decodes to clearly less than its container
    declares -- after the last block, so a consumer may have seen blocks first. Only one block is held in
    memory at a time.
    """
    audio_path = Path(audio_path)
    if not audio_path.is_file():
        raise TranscriptionError("undecodable", f"{audio_path} is not a file")
    n_channels, declared_s = _probe(audio_path)
    if n_channels == 0:
        raise TranscriptionError("undecodable", f"{audio_path.name} has no readable audio stream")
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
        raise TranscriptionError("undecodable", f"ffmpeg exit {rc} on {audio_path.name}: {stderr.strip()[-400:]}")
    if n_samples == 0:
        raise TranscriptionError("empty_audio", f"{audio_path.name} decodes to no audio samples")
    decoded_s = n_samples / sample_rate
    # A partial download often still decodes cleanly (webm: "File ended prematurely", exit 0) but the
    # container header still declares the full length.
    if declared_s is not None and decoded_s < declared_s - max(1.0, 0.05 * declared_s):
        raise TranscriptionError("truncated_audio",
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
        raise TranscriptionError("empty_audio", f"{name} has no samples")
    if not np.isfinite(peak) or peak < SILENCE_PEAK:
        raise TranscriptionError("silent_audio", f"{name} peak {peak:.2e} is below -60 dBFS")


def stream_windows(
    audio_path: str | Path, sample_rate: int, window: int, hop: int, pad_left: int = 0, pad_right: int = 0,
    stats: dict | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(start_sample, samples)` windows of length `window` every `hop` samples of the decoded audio.

    The audio is conceptually framed by `pad_left` and `pad_right` zeros (start_sample counts in that padded
    signal) and the last windows are zero-padded; windows start at every multiple of `hop` below the padded
    length, as Basic Pitch's `window_audio_file` and Transkun's `transcribe` loop do. `stats`, when given,
    receives `n_samples` (decoded, unpadded) and `peak`. Raises TranscriptionError("silent_audio") after
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
        raise TranscriptionError("silent_audio", f"{Path(audio_path).name} peak {peak:.2e} is below -60 dBFS")


def batched(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def notes_from_events(events, name: str) -> list[Note]:
    """(onset_s, offset_s, pitch, velocity) tuples -> sorted Notes; no notes at all is a reject."""
    notes = sorted(
        (Note(onset_s=round(float(on), 6), offset_s=round(float(max(off, on + 1e-3)), 6),
              pitch=int(p), velocity=int(np.clip(round(v), 1, 127)))
         for on, off, p, v in events if 0 <= int(p) <= 127),
        key=lambda n: (n.onset_s, n.pitch),
    )
    if not notes:
        raise TranscriptionError("no_notes", f"{name}: the transcriber found no notes")
    return notes


# -- Basic Pitch -----------------------------------------------------------------------------------


class BasicPitch:
    """Basic Pitch (Bittner et al., ICASSP 2022) through onnxruntime, windows batched.

    Windows, unwrapping and note creation follow basic_pitch.inference.run_inference/predict exactly
    (its `model_frames_to_time` corrects times per 172-frame window, so the layout must match), but audio
    comes from our ffmpeg stream instead of librosa.load, which reads the whole file through audioread.
    """

    name = "basic-pitch"

    def __init__(self, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                 minimum_note_length_ms: float = 127.70, melodia_trick: bool = True,
                 batch_size: int = 8, threads: int | None = None):
        import onnxruntime as ort
        from basic_pitch import ICASSP_2022_MODEL_PATH

        self.version = package_version("basic-pitch") + "-icassp2022-onnx"
        self.onset_threshold = onset_threshold
        self.frame_threshold = frame_threshold
        self.minimum_note_length_ms = minimum_note_length_ms
        self.melodia_trick = melodia_trick
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        self.session = ort.InferenceSession(str(ICASSP_2022_MODEL_PATH), options,
                                            providers=["CPUExecutionProvider"])

    def activations(self, audio_path: str | Path) -> dict[str, np.ndarray]:
        from basic_pitch.constants import AUDIO_N_SAMPLES, AUDIO_SAMPLE_RATE, FFT_HOP
        from basic_pitch.inference import unwrap_output

        n_overlapping_frames = 30  # as run_inference
        overlap_len = n_overlapping_frames * FFT_HOP
        hop = AUDIO_N_SAMPLES - overlap_len
        outputs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
        stats: dict = {}
        windows = stream_windows(audio_path, AUDIO_SAMPLE_RATE, AUDIO_N_SAMPLES, hop,
                                 pad_left=overlap_len // 2, stats=stats)
        for batch in batched(windows, self.batch_size):
            x = np.stack([w for _, w in batch])[:, :, None]  # (B, AUDIO_N_SAMPLES, 1)
            note, onset, contour = self.session.run(
                ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"],
                {"serving_default_input_2:0": x},
            )
            outputs["note"].append(note)
            outputs["onset"].append(onset)
            outputs["contour"].append(contour)
        return {k: unwrap_output(np.concatenate(v), stats["n_samples"], n_overlapping_frames)
                for k, v in outputs.items()}

    def transcribe(self, audio_path: str | Path) -> list[Note]:
        import basic_pitch.note_creation as note_creation
        from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP

        output = self.activations(audio_path)
        min_note_len = int(np.round(self.minimum_note_length_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))
        _, events = note_creation.model_output_to_notes(
            output, onset_thresh=self.onset_threshold, frame_thresh=self.frame_threshold,
            min_note_len=min_note_len, melodia_trick=self.melodia_trick, include_pitch_bends=False,
        )
        # Basic Pitch's amplitude is the mean frame activation in [0, 1]; velocity = 127 * amplitude as its
        # own MIDI writer does.
        return notes_from_events(((on, off, p, 127 * a) for on, off, p, a, _ in events), self.name)


# -- registry --------------------------------------------------------------------------------------


def _transkun(**options):
    from symmv.transcription_transkun import Transkun

    return Transkun(**options)


def _pti(**options):
    from symmv.transcription_pti import PianoTranscriptionInference

    return PianoTranscriptionInference(**options)


def _midi_file(**options):
    from symmv.release import MidiFile

    return MidiFile(**options)


BACKENDS: dict[str, Callable] = {
    "basic-pitch": BasicPitch,
    "transkun": _transkun,
    "pti": _pti,
    "midi-file": _midi_file,  # sources that already are MIDI (the SymMV release): the notes are read
}


def default_backend() -> str:
    """The backend a run uses when its config names none: env SYMMV_TRANSCRIBER, else by machine size.

    Decision (measured with bench/bench_transcription.py and symmv/eval_transcription.py on fluidsynth
    renders of music21 works and SymMV release MIDI): Transkun V2 is the most accurate (onset F1 0.997-1.0
    vs Basic Pitch's 0.83-0.90) but needs ~2 CPU-s per audio second with our 14 s hop (Basic Pitch ~0.05),
    so it is the default where it runs at least about realtime -- 8+ cores -- and Basic Pitch on small
    machines such as the 2-core build box, where Transkun would take hours per hour of covers.
    PTI needs a checkpoint that cannot be downloaded here, so it is never a default.
    """
    env = os.environ.get("SYMMV_TRANSCRIBER")
    if env:
        return env
    return "transkun" if (os.cpu_count() or 1) >= 8 and importlib.util.find_spec("transkun") else "basic-pitch"


@functools.lru_cache(maxsize=4)
def _backend_instance(name: str, options: tuple) -> object:
    if name not in BACKENDS:
        raise KeyError(f"unknown transcription backend {name!r}; known: {sorted(BACKENDS)}")
    return BACKENDS[name](**dict(options))


def get_backend(name: str | None = None, **options) -> object:
    """A (cached) backend instance: models load once per process and options."""
    return _backend_instance(name or default_backend(), tuple(sorted(options.items())))


def transcribe(audio_path: str | Path, backend: str = "basic-pitch", **options) -> Transcription:
    """Transcribe one audio file to piano notes with the named backend (see BACKENDS)."""
    model = get_backend(backend, **options)
    notes = model.transcribe(audio_path)
    return Transcription(notes=notes, backend=model.name, version=model.version)
