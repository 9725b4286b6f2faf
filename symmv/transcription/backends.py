"""Audio -> piano notes (paper sec. 3.1): one registry of transcription backends.

`transcribe(path, backend=...)` decodes any container ffmpeg can read (m4a/opus/webm/wav) to mono float32
itself, streams fixed windows of it through the backend's model (a 10-minute cover is never handed to a
model whole) and returns a `Transcription`: the notes plus the backend's name and version, which the flow
writes into provenance (`songs.transcriber`).

Backends (name -> constructor in `BACKENDS`; each instance knows `name` and `version`):
- "basic-pitch": Spotify's Basic Pitch ICASSP 2022 ONNX model (ships in the wheel, Apache-2.0).
- "transkun":    Transkun V2 (Yan & Duan), weights in the wheel; see `symmv.transcription.transkun`.
- "pti":         ByteDance piano_transcription_inference (Kong et al.), the paper's transcriber family;
                 needs a checkpoint on disk (see `symmv.transcription.pti`).

Every failure that should quarantine the item (undecodable, empty, silent audio, nothing transcribed)
raises `TranscriptionError` (= symmv.io.audio.AudioError) with a machine-readable `reason` for the rejects table.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symmv.core.records import Note
from symmv.core.versions import package_version
from symmv.io.audio import AudioError, stream_windows
from symmv.core.schema import NOTES
from symmv.transcription.events import batched, notes_from_events

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


# One error type for "this audio cannot be transcribed" (undecodable, empty, silent, no notes): the decoder's
# AudioError, a symmv.core.errors.MediaError with a reason code, so the stage makes it a `rejects` row.
TranscriptionError = AudioError


# The notes table's schema (symmv.core.schema.NOTES): a Transcription's notes before quantization fill it.
TRANSCRIBED_NOTE_SCHEMA = NOTES
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
        self.weights = str(ICASSP_2022_MODEL_PATH)  # its content hash goes into the cache key
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
    from symmv.transcription.transkun import Transkun

    return Transkun(**options)


def _pti(**options):
    from symmv.transcription.pti import PianoTranscriptionInference

    return PianoTranscriptionInference(**options)


def _midi_file(**options):
    from symmv.transcription.midi_file import MidiFile

    return MidiFile(**options)


BACKENDS: dict[str, Callable] = {
    "basic-pitch": BasicPitch,
    "transkun": _transkun,
    "pti": _pti,
    "midi-file": _midi_file,  # sources that already are MIDI (the SymMV release): the notes are read
}


def default_backend() -> str:
    """The backend a run uses when its config names none: env SYMMV_TRANSCRIBER, else by machine size.

    Decision (bench/bench_transcription.py, bench/results/transcription_speedup.json: fluidsynth renders of
    SymMV release covers and music21 pieces): Transkun V2 is the most accurate (onset F1 ~0.99-1.0 vs
    Basic Pitch's ~0.75-0.87) and our batched path (bf16 where the CPU has it natively, else float32: 0.7-0.9
    CPU-s per audio-s) runs it faster than realtime on 2 CPU threads, so
    it is the default on any CPU machine with 2+ cores; on one core it would fall behind realtime, and
    Basic Pitch (~20x cheaper) takes over. PTI needs a checkpoint that cannot be downloaded here, so it is
    never a default.
    """
    env = os.environ.get("SYMMV_TRANSCRIBER")
    if env:
        return env
    return "transkun" if (os.cpu_count() or 1) >= 2 and importlib.util.find_spec("transkun") else "basic-pitch"


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
