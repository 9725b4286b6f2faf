"""ByteDance piano_transcription_inference backend (Kong et al., "High-resolution piano transcription with
pedals by regressing onset and offset times", 2021): the transcriber family the paper used (sec. 3.1).

The package (0.0.6, installed with --no-deps: it pulls torch) is used for its model classes and its
RegressionPostProcessor only, because its entry point `PianoTranscription` is unusable here:
- its loader runs `wget -O <checkpoint>` whenever the file is missing or smaller than 160 MB -- with no
  network that truncates a good local file to 0 bytes -- so we build the model and load the state dict;
- its `load_audio` breaks on librosa 0.11 -- we decode with ffmpeg (symmv.io.audio.stream_audio);
- its `forward` hard-codes batch_size=1 -- we batch segments;
- it holds the whole recording in memory -- we stream 10 s segments and stitch their centre halves.

The checkpoint cannot be downloaded here (Zenodo record 4034264, ~165 MB,
`note_F1=0.9677_pedal_F1=0.9186.pth`); point `checkpoint` or env SYMMV_PTI_CHECKPOINT at a copy.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from symmv.core.records import Note
from symmv.core.versions import package_version
from symmv.io.audio import stream_windows
from symmv.transcription.events import batched, notes_from_events

CHECKPOINT_NAME = "note_F1=0.9677_pedal_F1=0.9186.pth"
MODEL_TYPES = ("Note_pedal", "Regress_onset_offset_frame_velocity_CRNN")


def default_checkpoint() -> Path:
    env = os.environ.get("SYMMV_PTI_CHECKPOINT")
    if env:
        return Path(env)
    return Path.home() / "piano_transcription_inference_data" / CHECKPOINT_NAME


def load_pti_model(checkpoint: str | Path, model_type: str = "Note_pedal") -> torch.nn.Module:
    """Build the package's model class and load a checkpoint (`{"model": state_dict}`) without any download."""
    from piano_transcription_inference import models

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file() or checkpoint.stat().st_size == 0:
        raise FileNotFoundError(
            f"PTI checkpoint {checkpoint} is missing or empty. It cannot be downloaded on this machine: copy "
            f"Zenodo record 4034264's {CHECKPOINT_NAME} (~165 MB) there or set SYMMV_PTI_CHECKPOINT.")
    from piano_transcription_inference import config

    model = getattr(models, model_type)(frames_per_second=config.frames_per_second,
                                        classes_num=config.classes_num)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"], strict=False)  # Note_pedal splits note_model/pedal_model itself
    return model.eval()


def _file_digest(path: Path, n_bytes: int = 1 << 20) -> str:
    """Short content id of a checkpoint (first MiB + size): provenance without hashing 165 MB."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(n_bytes))
    h.update(str(path.stat().st_size).encode())
    return h.hexdigest()[:10]


class PianoTranscriptionInference:
    name = "pti"

    def __init__(self, checkpoint: str | Path | None = None, model_type: str = "Note_pedal",
                 segment_s: float = 10.0, batch_size: int = 4, threads: int | None = None,
                 onset_threshold: float = 0.3, offset_threshold: float = 0.3, frame_threshold: float = 0.1,
                 pedal_offset_threshold: float = 0.2):
        from piano_transcription_inference import config

        if threads:
            torch.set_num_threads(threads)
        checkpoint = Path(checkpoint) if checkpoint else default_checkpoint()
        self.model = load_pti_model(checkpoint, model_type)
        self.weights = str(checkpoint)  # its content hash goes into the cache key
        self.sample_rate = config.sample_rate  # 16 kHz
        self.frames_per_second = config.frames_per_second
        self.classes_num = config.classes_num
        self.segment_samples = int(segment_s * self.sample_rate)
        if self.segment_samples % 4 or (self.segment_samples // 2) % (self.sample_rate // self.frames_per_second):
            raise ValueError(f"segment_s={segment_s} must cut into frame-aligned quarters")
        self.batch_size = batch_size
        self.thresholds = dict(onset_threshold=onset_threshold, offset_threshold=offset_threshold,
                               frame_threshold=frame_threshold, pedal_offset_threshold=pedal_offset_threshold)
        tag = f"{model_type}-{_file_digest(checkpoint)}"
        if segment_s != 10.0:
            tag += f"+seg{segment_s:g}"
        self.version = f"{package_version('piano_transcription_inference')}-{tag}"

    def activations(self, audio_path: str | Path) -> dict[str, np.ndarray]:
        """Model outputs over the whole recording, stitched as PianoTranscription.enframe/deframe do.

        Segments of `segment_samples` every half segment; each keeps its centre half (the first its first
        three quarters, the last its last three quarters). PTI pads the audio to whole segments; windows
        past that padded length (stream_windows makes one more) are dropped.
        """
        seg, hop = self.segment_samples, self.segment_samples // 2
        stats: dict = {}
        kept: dict[str, list[np.ndarray]] = {}
        windows = stream_windows(audio_path, self.sample_rate, seg, hop, stats=stats)
        with torch.inference_mode():
            for batch in batched(windows, self.batch_size):
                x = torch.from_numpy(np.stack([w for _, w in batch]))  # (B, seg)
                output = {k: v.numpy() for k, v in self.model(x).items()}  # (B, seg frames + 1, 88 | 1)
                for i in range(len(batch)):
                    for key, value in output.items():
                        kept.setdefault(key, []).append(value[i])
        n_segments = 2 * int(np.ceil(stats["n_samples"] / seg)) - 1  # as PianoTranscription.enframe
        stitched = {}
        for key, segments in kept.items():
            segments = segments[:n_segments]
            if len(segments) == 1:  # PTI keeps a lone segment whole
                stitched[key] = segments[0]
                continue
            segments = [s[:-1] for s in segments]  # the extra frame of the STFT's center=True
            quarter = segments[0].shape[0] // 4
            parts = [segments[0][: 3 * quarter]]
            parts += [s[quarter: 3 * quarter] for s in segments[1:-1]]
            parts.append(segments[-1][quarter:])
            stitched[key] = np.concatenate(parts)
        return stitched

    def transcribe(self, audio_path: str | Path) -> list[Note]:
        from piano_transcription_inference.utilities import RegressionPostProcessor

        post = RegressionPostProcessor(self.frames_per_second, classes_num=self.classes_num, **self.thresholds)
        note_events, _ = post.output_dict_to_midi_events(self.activations(audio_path))
        return notes_from_events(((e["onset_time"], e["offset_time"], e["midi_note"], e["velocity"])
                                  for e in note_events), self.name)
