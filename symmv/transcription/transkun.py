"""Transkun V2 backend (Yan & Duan, "Scoring intervals using non-hierarchical transformer for automatic
piano transcription", ISMIR 2024): a neural semi-CRF over note intervals; weights ship in the PyPI wheel.

Installed with `pip install --no-deps transkun==2.0.1`: its dependency list pulls torchaudio (and would
move torch), but the package uses torchaudio only for the mel filterbank, which `symmv.transcription.mel` provides while
the model is built. `moduleconf`, `pydub`, `soxr` and `ncls` serve only its CLI/training code, which we
do not call: we build the model from the wheel's JSON conf, decode audio ourselves and stream segments.

`TransKun.transcribe` is ported below so the audio is streamed segment by segment from ffmpeg instead of
held whole, in two forms:
- `_transcribe_segments` (batch_segments=0): one segment at a time through the wheel's `transcribeFrames`;
  the per-segment maths and the cross-segment merging are its own code. The reference path.
- `_transcribe_batched` (the default): `batch_segments` segments per forward; transkun's attention on 4-D
  tensors so torch's fused CPU kernel applies (`flash_attention`); the transformer under bf16 autocast
  (`bf16`; by default only where the CPU has bf16 natively, `native_bf16`; the interval scores and the
  semi-CRF stay float32); no segment that holds only the right zero
  padding (`skip_tail`). Without the last three it gives the reference path's
  notes (tests/test_transcription.py); with them, the same onsets within 50 ms on rendered covers
  (bench/bench_transcription.py, bench/results/transcription_speedup.json).
Other options: `segment_hop_s` (default 14 s, see DEFAULT_SEGMENT_HOP_S; the wheel uses 8), `threads` (sets
torch's global intra-op threads), and `quantize` (dynamic int8 encoder Linears; measured to lose accuracy,
off). Anything that differs from the wheel's own settings is written into `version` and hence provenance
and the stage cache key, e.g. "2.0.1-v2+seg16-hop14+batch4+sdpa4d+bf16+skiptail".
"""
from __future__ import annotations

import json
import math
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
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
DEFAULT_BATCH_SEGMENTS = 4
DEFAULT_BF16 = None  # bf16 where the CPU computes it natively (native_bf16), float32 elsewhere


def native_bf16() -> bool:
    """Whether this CPU has bf16 dot products (AVX512-BF16 or AMX). Without them torch emulates bf16 and the
    batched path's bf16 transformer is several times slower than float32 (bench/results/transcription_bf16.json),
    so the default falls back to float32 there; the version tag says which one ran."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


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
                 threads: int | None = None, quantize: bool = False, weights: str | Path | None = None,
                 batch_segments: int = DEFAULT_BATCH_SEGMENTS, flash_attention: bool = True,
                 bf16: bool | None = DEFAULT_BF16, skip_tail: bool = True):
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
        # batch_segments = 0: the wheel's per-segment `transcribeFrames` (the reference path); the others only
        # apply to the batched path.
        self.batch_segments = batch_segments
        self.flash_attention = bool(batch_segments and flash_attention)
        self.bf16 = bool(batch_segments and (native_bf16() if bf16 is None else bf16))
        self.skip_tail = bool(batch_segments and skip_tail)
        if self.batch_segments:
            # transkun wraps every encoder layer in torch.utils.checkpoint while this is set: at inference
            # that does nothing but add a wrapper and two warnings per layer
            self.model.backbone.useGradientCheckpoint = False
        if self.flash_attention:
            for module in self.model.modules():
                if isinstance(module, _attention_class()):
                    module.forward = types.MethodType(_attention_4d, module)
        tags = []
        wheel_segmentation = (self.model.segmentSizeInSecond, self.model.segmentHopSizeInSecond)
        if (self.segment_size_s, self.segment_hop_s) != wheel_segmentation:
            tags.append(f"seg{self.segment_size_s:g}-hop{self.segment_hop_s:g}")
        if self.batch_segments:
            tags.append(f"batch{self.batch_segments}")
        tags += [tag for tag, on in (("sdpa4d", self.flash_attention), ("bf16", self.bf16),
                                     ("skiptail", self.skip_tail)) if on]
        if quantize:
            tags.append("int8")
        if weights:
            tags.append(f"weights={Path(weights).name}")
        self.version = "+".join([package_version("transkun") + "-v2", *tags])

    def transcribe(self, audio_path: str | Path) -> list[Note]:
        with torch.inference_mode():
            if self.batch_segments:
                events = _transcribe_batched(self.model, audio_path, self.segment_size_s, self.segment_hop_s,
                                             self.batch_segments, bf16=self.bf16, skip_tail=self.skip_tail)
            else:
                events = _transcribe_segments(self.model, audio_path, self.segment_size_s, self.segment_hop_s)
        keys = ((e.start, e.end, e.pitch, e.velocity) for e in events if e.pitch not in PEDAL_PITCHES)
        return notes_from_events(keys, self.name)


def _segment_grid(model, segment_size_s: float, step_s: float) -> tuple[int, int, int, list[int]]:
    """(left/right zero padding, hop and length of segments in samples, first forced start frames) as
    transkun's `TransKun.transcribe`: segment - step seconds of zeros at both ends."""
    if not 0 < step_s <= segment_size_s:
        raise ValueError(f"need 0 < segment_hop_s <= segment_size_s, got {step_s}, {segment_size_s}")
    fs, hop = model.fs, model.hopSize
    pad_time_begin = segment_size_s - step_s
    start_pos = [math.floor(pad_time_begin * fs / hop)] * len(model.targetMIDIPitch)
    return math.ceil(pad_time_begin * fs), math.ceil(step_s * fs / hop) * hop, math.ceil(segment_size_s * fs), start_pos


def _merge_segment(events_by_pitch: dict, events: list, begin_time: float) -> None:
    """Shift one segment's notes to song time and merge notes cut by the segment boundary (transkun's code)."""
    for e in events:
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


def _finish(events_by_pitch: dict) -> list:
    from transkun.Data import resolveOverlapping

    for pitch_events in events_by_pitch.values():
        if pitch_events:
            pitch_events[-1].hasOffset = True  # the audio ended: close the last note
    events = [e for pitch_events in events_by_pitch.values() for e in pitch_events if e.hasOffset]
    if not events:
        raise TranscriptionError("no_notes", "transkun: the transcriber found no notes")
    return resolveOverlapping(events)


def _transcribe_segments(model, audio_path, segment_size_s: float, step_s: float) -> list:
    """transkun.ModelTransformer.TransKun.transcribe (2.0.1) over streamed mono segments.

    Same padding (segment - step seconds of zeros at both ends), segment grid, forced start positions
    carried from segment to segment and merging of notes cut by a segment boundary.
    """
    from transkun.Util import makeFrame

    pad, step, segment, start_pos = _segment_grid(model, segment_size_s, step_s)
    fs, hop = model.fs, model.hopSize
    last_frame_idx = round(segment / hop)
    events_by_pitch: dict[int, list] = defaultdict(list)
    for begin, samples in stream_windows(audio_path, fs, segment, step, pad_left=pad, pad_right=pad):
        frames = makeFrame(torch.from_numpy(samples).unsqueeze(0), hop, model.windowSize)  # (1, nFrame, win)
        events, last_p = model.transcribeFrames(frames.unsqueeze(0), forcedStartPos=start_pos,
                                                velocityCriteron="hamming", onsetBound=None,
                                                lastFrameIdx=last_frame_idx)
        start_pos = [max(k - int(step / hop), 0) for k in last_p]
        _merge_segment(events_by_pitch, events[0], (begin - pad) / fs)
    return _finish(events_by_pitch)


# -- the batched path ------------------------------------------------------------------------------
# What `transcribeFrames` does per segment, split at the one place where a segment depends on the one
# before it: the Viterbi backtracking starts where the previous segment's notes ended (forced start
# positions). Everything before it -- mel front-end, transformer, interval scores and the backward Viterbi
# recursion, which does not depend on the start position -- runs for `batch_segments` segments in one
# forward; the backtracking and transkun's own note attributes (velocity, refined on/offsets) then run
# segment by segment in order.


def _attention_class():
    from transkun.LayersTransformer import MultiHeadAttentionKernel

    return MultiHeadAttentionKernel


def _attention_4d(self, query, key=None, value=None):
    """MultiHeadAttentionKernel.forward (kernel=None, the only kind V2 uses) on 4-D (batch, head, token, dim)
    tensors: transkun hands scaled_dot_product_attention 5-D ones, for which torch's CPU flash kernel does
    not apply and it falls back to the unfused maths path (-20% backbone CPU time measured). Same maths."""
    key = query if key is None else key
    value = key if value is None else value
    lead = query.shape[:-2]  # (N, T) or (N, F): attention runs over the second-to-last axis

    def heads(x, weight):  # (..., L, D) -> (prod(lead), H, L, d)
        return (x @ weight).flatten(0, -3).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    out = torch.nn.functional.scaled_dot_product_attention(
        heads(query, self.q_proj_weight), heads(key, self.k_proj_weight), heads(value, self.v_proj_weight))
    return self.out_proj(out.transpose(1, 2).flatten(-2, -1).unflatten(0, lead))


def _interval_scores(model, frames: torch.Tensor, bf16: bool) -> tuple[np.ndarray, torch.Tensor]:
    """processFramesBatch up to the CRF: (scores (T_begin, B * P, T_end), ctx (B, P, T, D)).

    The scores come out in the layout the backward recursion reads row by row, so the (T, T, B * P)
    tensor is written once instead of three times (ScaledInnerProductIntervalScorer's permute + the
    transpose in viterbiBackward); the values are the scorer's.
    """
    n = frames.shape[0]
    mean = frames.mean(dim=[1, 2, 3], keepdim=True)  # transkun's per-segment gain normalisation
    std = frames.std(dim=[1, 2, 3], keepdim=True)
    features = model.framewiseFeatureExtractor((frames - mean) / (std + 1e-8)).contiguous()
    features = features.view(n, *features.shape[-3:])
    pitches = torch.tensor(model.targetMIDIPitch)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        ctx = model.backbone(features, outputIndices=pitches)
    ctx = ctx.float()  # the interval scores stay float32: they are scaled by the interval length
    scorer = model.scorer
    size = scorer.size * scorer.expansionFactor
    q, k, diag = scorer.map(ctx).split([size, size, 1], dim=-1)
    scores = torch.einsum("iped,ipbd->ipbe", q / math.sqrt(size), k)  # (B, P, T_begin, T_end)
    t = torch.arange(scores.shape[-1])
    scores.mul_((t.unsqueeze(0) - t.unsqueeze(1)).abs())
    scores.diagonal(dim1=-2, dim2=-1).add_(diag.squeeze(-1))
    return scores.permute(2, 0, 1, 3).flatten(1, 2).contiguous().numpy(), ctx


def _viterbi_pointers(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recursion of transkun's viterbiBackward (CRF/NeuralSemiCRFInterval.py; its noise score is all
    zeros) over scores laid out (begin, track, end); returns its back pointers (T - 1, tracks) and the
    singleton mask (T, tracks). NumPy over contiguous rows: 4-5x less CPU than the TorchScript loop, whose
    690 steps each reduce across a strided axis. Ties go to the skip, then to the shortest interval, as
    its `torch.cat([...]).max` does.
    """
    T, n, _ = rows.shape
    diag = rows[np.arange(T), :, np.arange(T)]  # (T, tracks)
    singleton = diag > 0
    gain = np.where(singleton, diag, 0)
    q = np.zeros((n, T), np.float32)  # best score from frame t to the end, per track
    q[:, T - 1] = gain[T - 1]
    ptr = np.empty((T - 1, n), np.int64)
    tracks = np.arange(n)
    for i in range(1, T):
        b = T - i - 1
        total = q[:, b + 1:] + rows[b, :, b + 1:]  # an interval (b, e) then the best from e
        end = total.argmax(axis=1)
        best = total[tracks, end]
        skip = q[:, b + 1]
        take = best > skip
        ptr[i - 1] = np.where(take, end, -1)
        q[:, b] = np.where(take, best, skip) + gain[b]
    return ptr, singleton


def _backtrack(ptr, singleton, start_pos: list[int]) -> list[list[tuple[int, int]]]:
    """viterbiBackward's backtracking from forced start frames; ptr (T - 1, P), singleton (T, P) numpy."""
    T = singleton.shape[0]
    paths = []
    for p, j in enumerate(start_pos):
        path = []
        while j < T - 1:
            selection = int(ptr[T - j - 2, p])
            if singleton[j, p]:
                path.append((j, j))
            if selection < 0:
                j += 1
            else:
                path.append((j, selection + j + 1))
                j = selection + j + 1
        if singleton[T - 1, p]:
            path.append((T - 1, T - 1))
        paths.append(path)
    return paths


class _DecodedSegment:
    """Stands in for transkun's NeuralSemiCRFInterval in `transcribeFrames`: decode() backtracks the
    pointers computed for the whole batch, so transkun's attribute code runs unchanged on our paths."""

    def __init__(self, ptr, singleton):
        self.ptr, self.singleton = ptr, singleton

    def decode(self, forcedStartPos=None, forward=False):
        return _backtrack(self.ptr, self.singleton, forcedStartPos or [0] * self.singleton.shape[1])


class _SegmentView:
    """The model as `transcribeFrames` sees it for one segment: its own modules and settings, with
    processFramesBatch answering the precomputed (decoded CRF, ctx). A view, not a patch of the shared
    model, because the threads runner transcribes two songs at once with one model instance."""

    def __init__(self, model, decoded: _DecodedSegment, ctx):
        self._model, self._processed = model, (decoded, ctx)

    def processFramesBatch(self, frames):
        return self._processed

    def __getattr__(self, name):
        return getattr(self._model, name)


def _segment_events(model, frames, decoded: _DecodedSegment, ctx, start_pos, last_frame_idx):
    """TransKun.transcribeFrames on one segment whose scores and pointers are already computed."""
    events, last_p = type(model).transcribeFrames(_SegmentView(model, decoded, ctx), frames,
                                                  forcedStartPos=start_pos, velocityCriteron="hamming",
                                                  onsetBound=None, lastFrameIdx=last_frame_idx)
    return events[0], last_p


def _batches_of_windows(audio_path, fs: int, segment: int, step: int, pad: int, batch: int, skip_tail: bool):
    """Lists of up to `batch` (begin, samples) windows. With skip_tail, windows that start after the audio
    has ended (only the right zero padding: the wheel transcribes them) are dropped.

    Cutting the last window where the audio ends instead (a shorter last segment) was measured and
    rejected: a 16 s segment shortened to 15.5 s lost 35 of 155 notes on a Bach excerpt."""
    stats: dict = {}
    pending: list = []
    for window in stream_windows(audio_path, fs, segment, step, pad_left=pad, pad_right=pad, stats=stats):
        pending.append(window)
        if len(pending) > batch:  # one window held back: it may lie past the end of the audio
            yield pending[:batch]
            pending = pending[batch:]
    if skip_tail:
        audio_end = pad + stats["n_samples"]
        pending = [(begin, samples) for begin, samples in pending if begin < audio_end]
    if pending:
        yield pending


def _transcribe_batched(model, audio_path, segment_size_s: float, step_s: float, batch_segments: int,
                        bf16: bool = False, skip_tail: bool = False) -> list:
    """_transcribe_segments with `batch_segments` segments per forward (see the section comment)."""
    from transkun.Util import makeFrame

    pad, step, segment, start_pos = _segment_grid(model, segment_size_s, step_s)
    fs, hop = model.fs, model.hopSize
    n_pitches = len(model.targetMIDIPitch)
    events_by_pitch: dict[int, list] = defaultdict(list)
    for windows in _batches_of_windows(audio_path, fs, segment, step, pad, batch_segments, skip_tail):
        samples = torch.from_numpy(np.stack([w for _, w in windows]))
        frames = makeFrame(samples, hop, model.windowSize).unsqueeze(1)  # (B, 1, nFrame, win)
        rows, ctx = _interval_scores(model, frames, bf16)
        ptr, singleton = _viterbi_pointers(rows)  # (T - 1, B * P), (T, B * P)
        del rows
        last_frame_idx = round(samples.shape[-1] / hop)
        for b, (begin, _) in enumerate(windows):
            cols = slice(b * n_pitches, (b + 1) * n_pitches)
            decoded = _DecodedSegment(ptr[:, cols], singleton[:, cols])
            events, last_p = _segment_events(model, frames[b:b + 1], decoded, ctx[b:b + 1], start_pos,
                                             last_frame_idx)
            start_pos = [max(k - int(step / hop), 0) for k in last_p]
            _merge_segment(events_by_pitch, events, (begin - pad) / fs)
    return _finish(events_by_pitch)
