"""Transkun V2 backend (Yan & Duan, "Scoring intervals using non-hierarchical transformer for automatic
piano transcription", ISMIR 2024): a neural semi-CRF over note intervals; weights ship in the PyPI wheel.

Installed with `pip install --no-deps transkun==2.0.1`: its dependency list pulls torchaudio (and would
move torch), but the package uses torchaudio only for the mel filterbank, which `symmv.transcription.mel` provides while
the model is built. `moduleconf`, `pydub`, `soxr` and `ncls` serve only its CLI/training code, which we
do not call: we build the model from the wheel's JSON conf, decode audio ourselves and stream segments.

`TransKun.transcribe` is ported below (`_transcribe_segments`) so the audio is streamed segment by segment
from ffmpeg instead of held whole; the per-segment maths and the cross-segment merging are its own code.
Speed options (CPU): `segment_hop_s` (default 14 s, see DEFAULT_SEGMENT_HOP_S; the wheel uses 8),
`threads` (sets torch's global intra-op threads), and `quantize` (dynamic int8 encoder Linears; measured
to lose accuracy, off). Anything that differs from the wheel's own settings is written into `version`
and hence provenance, e.g. "2.0.1-v2+seg16-hop14".
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import torch

from symmv.transcription.mel import torchaudio_shim
from symmv.core.records import Note
from symmv.core.versions import package_version
from symmv.io.audio import AudioError as TranscriptionError, stream_windows
from symmv.transcription.events import notes_from_events

PEDAL_PITCHES = (-64, -67)  # Transkun also "transcribes" sustain/sostenuto pedals as pseudo-pitches
# The wheel re-transcribes half of every 16 s segment (hop 8 s). A 14 s hop keeps 2 s of left context
# (notes starting in a segment's first frame lose their onset, so some overlap is needed) and halves the
# CPU time: measured 50.7 vs 103 CPU-s on a 25.5 s Bach excerpt with onset F1 0.997 vs 1.000
# (bench/bench_transcription.py). Dynamic int8 Linear layers cost too much accuracy (F1 0.85) to use.
DEFAULT_SEGMENT_HOP_S = 14.0


def _pretrained_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("transkun")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("transkun is not installed: pip install --no-deps transkun==2.0.1")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained"


def load_transkun(weights: str | Path | None = None, conf: str | Path | None = None) -> torch.nn.Module:
    """TransKun V2 with the wheel's weights (or the given ones), in eval mode on CPU."""
    with torchaudio_shim():
        from transkun.ModelTransformer import TransKun

        conf_path = Path(conf) if conf else _pretrained_dir() / "2.0.conf"
        config = TransKun.Config()
        config.__dict__.update(json.loads(conf_path.read_text())["Model"]["config"])
        model = TransKun(conf=config)
    weights_path = Path(weights) if weights else _pretrained_dir() / "2.0.pt"
    # The checkpoint is a plain dict of tensors; weights_only keeps torch.load from unpickling code.
    checkpoint = torch.load(weights_path, map_location="cpu", weights_only=True)
    state = checkpoint.get("best_state_dict", checkpoint.get("state_dict"))
    model.load_state_dict(state, strict=False)  # strict=False as transkun.transcribe loads it
    return model.eval()


class Transkun:
    name = "transkun"

    def __init__(self, segment_size_s: float | None = None, segment_hop_s: float | None = None,
                 threads: int | None = None, quantize: bool = False, weights: str | Path | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.model = load_transkun(weights)
        self.weights = str(weights or _pretrained_dir() / "2.0.pt")  # its content hash goes into the cache key
        if quantize:
            # int8 weights for the Linear layers of the transformer encoder (7.1 M of its 9.1 M Linear
            # weights). Not every Linear: transkun's positional embedding reads `proj.weight.device`, which
            # a dynamically quantized Linear no longer has.
            encoder_linears = {name for name, module in self.model.named_modules()
                               if name.startswith("backbone.encoderLayers") and isinstance(module, torch.nn.Linear)}
            self.model = torch.ao.quantization.quantize_dynamic(self.model, encoder_linears, dtype=torch.qint8)
        self.segment_size_s = segment_size_s or self.model.segmentSizeInSecond
        self.segment_hop_s = segment_hop_s or DEFAULT_SEGMENT_HOP_S
        tags = []
        wheel_segmentation = (self.model.segmentSizeInSecond, self.model.segmentHopSizeInSecond)
        if (self.segment_size_s, self.segment_hop_s) != wheel_segmentation:
            tags.append(f"seg{self.segment_size_s:g}-hop{self.segment_hop_s:g}")
        if quantize:
            tags.append("int8")
        if weights:
            tags.append(f"weights={Path(weights).name}")
        self.version = "+".join([package_version("transkun") + "-v2", *tags])

    def transcribe(self, audio_path: str | Path) -> list[Note]:
        with torch.inference_mode():
            events = _transcribe_segments(self.model, audio_path, self.segment_size_s, self.segment_hop_s)
        keys = ((e.start, e.end, e.pitch, e.velocity) for e in events if e.pitch not in PEDAL_PITCHES)
        return notes_from_events(keys, self.name)


def _transcribe_segments(model, audio_path, segment_size_s: float, step_s: float) -> list:
    """transkun.ModelTransformer.TransKun.transcribe (2.0.1) over streamed mono segments.

    Same padding (segment - step seconds of zeros at both ends), segment grid, forced start positions
    carried from segment to segment and merging of notes cut by a segment boundary.
    """
    from transkun.Data import resolveOverlapping
    from transkun.Util import makeFrame

    if not 0 < step_s <= segment_size_s:
        raise ValueError(f"need 0 < segment_hop_s <= segment_size_s, got {step_s}, {segment_size_s}")
    fs, hop = model.fs, model.hopSize
    pad_time_begin = segment_size_s - step_s
    pad = math.ceil(pad_time_begin * fs)
    start_pos = [math.floor(pad_time_begin * fs / hop)] * len(model.targetMIDIPitch)
    step = math.ceil(step_s * fs / hop) * hop
    segment = math.ceil(segment_size_s * fs)
    last_frame_idx = round(segment / hop)

    events_by_pitch: dict[int, list] = defaultdict(list)
    for begin, samples in stream_windows(audio_path, fs, segment, step, pad_left=pad, pad_right=pad):
        begin_time = begin / fs - pad_time_begin
        frames = makeFrame(torch.from_numpy(samples).unsqueeze(0), hop, model.windowSize)  # (1, nFrame, win)
        events, last_p = model.transcribeFrames(frames.unsqueeze(0), forcedStartPos=start_pos,
                                                velocityCriteron="hamming", onsetBound=None,
                                                lastFrameIdx=last_frame_idx)
        start_pos = [max(k - int(step / hop), 0) for k in last_p]
        for e in events[0]:
            e.start = max(e.start + begin_time, 0)
            e.end = max(e.end + begin_time, e.start)
            pitch_events = events_by_pitch[e.pitch]
            if pitch_events and e.start < pitch_events[-1].end:  # continues the previous segment's note
                if e.hasOnset:
                    pitch_events[-1] = e
                else:
                    pitch_events[-1].hasOffset = e.hasOffset
                    pitch_events[-1].end = max(e.end, pitch_events[-1].end)
                continue
            if e.hasOnset:
                pitch_events.append(e)
    for pitch_events in events_by_pitch.values():
        if pitch_events:
            pitch_events[-1].hasOffset = True  # the audio ended: close the last note
    events = [e for pitch_events in events_by_pitch.values() for e in pitch_events if e.hasOffset]
    if not events:
        raise TranscriptionError("no_notes", "transkun: the transcriber found no notes")
    return resolveOverlapping(events)
