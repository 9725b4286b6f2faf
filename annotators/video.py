"""Video features of paper sec. 4.1: semantic, color (RGB-uv histogram), motion (RGB difference) and tempo,
plus shot boundaries and a text-likeness score used by the lyric-video filter.

The annotators are pure functions over frames (HxWx3 uint8 RGB arrays) and series; `video_features`
consumes decoded frame streams (symmv.features.video decodes the file) on one timeline: frame k is at `k / fps` s.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from symmv.core.constants import TEMPO_RANGE_BPM
from symmv.core import schema as _schema



class SemanticEncoder(Protocol):
    """What the features need of a semantic encoder (symmv.features.encoders builds real ones)."""

    name: str
    version: str
    dim: int

    def encode(self, frames: np.ndarray) -> np.ndarray:  # (N, H, W, 3) uint8 RGB -> (N, dim) float32
        ...

ANNOTATOR_VERSION = "1"

# --- Color: HistoGAN RGB-uv histogram (Afifi et al., CVPR 2021), as the paper's color feature [2]. ---
# For each reference channel c in (R, G, B), u = log(I_c + eps) - log(I_a + eps), v = log(I_c + eps) -
# log(I_b + eps) with (a, b) the other two channels in RGB order; every pixel votes with its intensity
# sqrt(R^2 + G^2 + B^2) (dark pixels carry no reliable chroma), and the 3 histograms together sum to 1.
# Same as HistoGAN: I in [0, 1], eps = 1e-6, u/v range [-3, 3], 3 channels. Different from HistoGAN, on
# purpose: 32 bins per axis instead of 64 (3 x 32 x 32 = 3072 values per frame instead of 12288; at 6 fps
# this is the widest per-frame series in the table), hard binning instead of the differentiable
# inverse-quadratic kernel (we never backpropagate through it), out-of-range u/v clipped into the edge
# bins instead of fading out (so saturated colors still count), and frames subsampled to <= 64 px a side
# (HistoGAN resizes to 150 px; a histogram needs few pixels and this keeps it cheap).
COLOR_BINS = 32
COLOR_EPS = 1e-6
COLOR_UV_RANGE = (-3.0, 3.0)
COLOR_MAX_SIDE = 64
_UV_PAIRS = ((0, 1, 2), (1, 0, 2), (2, 0, 1))  # (reference, a, b) per histogram channel

# --- Motion: mean absolute RGB difference between frames 0.2 s apart (paper: "intervals of 5 frames
# (0.2 seconds)" at 25 fps), on 64 px frames, in [0, 1] (1 = every value flipped 0 <-> 255). ---
MOTION_FPS = 5.0
MOTION_SIZE = 64

# --- Tempo: the video-level mean motion mapped linearly from [motion_min, motion_max] to [90, 130] BPM,
# clipped (paper sec. 4.1). The paper uses the dataset's minimum and maximum; we use robust dataset
# percentiles (2nd / 98th of the per-video means, see `motion_range`) so one slideshow or one strobe
# video does not squash everyone else. DEFAULT_MOTION_RANGE is a provisional placeholder, NOT derived
# from data (no real music videos were available when this was written): recompute it with
# `motion_range` on the built dataset and pass the result explicitly.
DEFAULT_MOTION_RANGE = (0.0, 0.15)

# --- Shots: a cut where the joint RGB histogram (8 bins per channel, intensity included, unlike the
# illumination-invariant RGB-uv one) changes by more than half its mass between consecutive frames. ---
SHOT_HIST_BINS = 8
SHOT_THRESHOLD = 0.5
SHOT_MIN_GAP_S = 0.5  # one cut per half second at most: flashes and strobes otherwise fire twice

# --- Text: fraction of pixels on thin high-contrast strokes (a luma rise and fall, or fall and rise, of
# more than TEXT_CONTRAST within TEXT_MAX_STROKE_PX along a row): rendered text is made of them,
# photographs and smooth backgrounds rarely are. ---
TEXT_CONTRAST = 48
TEXT_MAX_STROKE_PX = 6


def subsample(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Stride-subsample so that neither side exceeds `max_side` (a view, no copy)."""
    step = max(1, -(-max(frame.shape[:2]) // max_side))
    return frame[::step, ::step]


def _uv_bin_table(bins: int) -> np.ndarray:
    """(65536,) int64: bin of log(x/255 + eps) - log(y/255 + eps) at index x * 256 + y, for 8-bit x, y."""
    log_i = np.log(np.arange(256) / 255.0 + COLOR_EPS)
    lo, hi = COLOR_UV_RANGE
    diff = log_i[:, None] - log_i[None, :]
    return np.clip(np.floor((diff - lo) * (bins / (hi - lo))), 0, bins - 1).astype(np.int64).ravel()


_UV_TABLES: dict[int, np.ndarray] = {}


def rgb_uv_histogram(frame: np.ndarray, bins: int = COLOR_BINS, max_side: int = COLOR_MAX_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, bins, bins) float32 RGB-uv histogram summing to 1."""
    table = _UV_TABLES.get(bins)
    if table is None:
        table = _UV_TABLES[bins] = _uv_bin_table(bins)
    rgb = subsample(frame, max_side).reshape(-1, 3).astype(np.intp)  # (P, 3)
    shifted = rgb << 8
    weight = np.sqrt(np.einsum("pc,pc->p", rgb, rgb) / 255.0**2 + COLOR_EPS)  # sqrt(R^2+G^2+B^2), I in [0, 1]
    index = np.empty((3, len(rgb)), np.intp)
    for ch, (ref, a, b) in enumerate(_UV_PAIRS):  # u = table[ref, a], v = table[ref, b]
        index[ch] = (ch * bins + table[shifted[:, ref] | rgb[:, a]]) * bins + table[shifted[:, ref] | rgb[:, b]]
    hist = np.bincount(index.ravel(), weights=np.tile(weight, 3), minlength=3 * bins * bins)
    return (hist / (hist.sum() + COLOR_EPS)).astype(np.float32).reshape(3, bins, bins)


def rgb_difference(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute RGB difference of two equal-size uint8 frames, in [0, 1]."""
    return float(np.abs(current.astype(np.int16) - previous.astype(np.int16)).mean() / 255.0)


def per_second(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of `values` within each whole second [s, s+1) of `times_s`; seconds without values are NaN."""
    times_s, values = np.asarray(times_s, float), np.asarray(values, float)
    if len(values) == 0:
        return np.zeros(0, np.float32)
    second = np.floor(times_s + 1e-9).astype(np.int64)
    n = second.max() + 1
    total = np.bincount(second, weights=values, minlength=n)
    count = np.bincount(second, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(np.float32)


def motion_range(motion_means: Iterable[float], low_pct: float = 2.0, high_pct: float = 98.0) -> tuple[float, float]:
    """Dataset-level (motion_min, motion_max) for `motion_tempo_bpm`: percentiles of per-video means."""
    m = np.asarray([x for x in motion_means if np.isfinite(x)], float)
    if len(m) == 0:
        raise ValueError("motion_range needs at least one finite motion mean")
    lo, hi = np.percentile(m, [low_pct, high_pct])
    return float(lo), float(hi)


def motion_tempo_bpm(
    motion_mean: float,
    motion_min: float = DEFAULT_MOTION_RANGE[0],
    motion_max: float = DEFAULT_MOTION_RANGE[1],
    tempo_range_bpm: tuple[float, float] = TEMPO_RANGE_BPM,
) -> float:
    """Paper sec. 4.1: map the mean RGB difference linearly from [motion_min, motion_max] to the tempo range."""
    if not motion_max > motion_min:
        raise ValueError(f"motion_max ({motion_max}) must exceed motion_min ({motion_min})")
    r = float(np.clip((motion_mean - motion_min) / (motion_max - motion_min), 0.0, 1.0))
    return tempo_range_bpm[0] + r * (tempo_range_bpm[1] - tempo_range_bpm[0])


def rgb_histogram(frame: np.ndarray, bins: int = SHOT_HIST_BINS, max_side: int = COLOR_MAX_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 -> (bins**3,) float32 joint RGB histogram summing to 1."""
    q = (subsample(frame, max_side).reshape(-1, 3) >> (8 - int(np.log2(bins)))).astype(np.int64)
    hist = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3)
    return (hist / hist.sum()).astype(np.float32)


def shot_boundaries(
    histograms: np.ndarray, times_s: np.ndarray, threshold: float = SHOT_THRESHOLD, min_gap_s: float = SHOT_MIN_GAP_S
) -> np.ndarray:
    """Times of the first frame after each hard cut, from per-frame normalised histograms (N, B).

    A cut is where half the L1 distance between consecutive histograms (the fraction of mass that
    moved, in [0, 1]) reaches `threshold`. Gradual transitions (fades, dissolves) are not detected.
    """
    histograms, times_s = np.asarray(histograms), np.asarray(times_s, float)
    if len(histograms) < 2:
        return np.zeros(0)
    change = 0.5 * np.abs(np.diff(histograms, axis=0)).sum(axis=1)  # (N-1,)
    cuts, last = [], -np.inf
    for k in np.flatnonzero(change >= threshold) + 1:
        if times_s[k] - last >= min_gap_s:
            cuts.append(times_s[k])
            last = times_s[k]
    return np.asarray(cuts, float)


def text_score(frame: np.ndarray, contrast: int = TEXT_CONTRAST, max_stroke_px: int = TEXT_MAX_STROKE_PX) -> float:
    """Fraction of pixels starting a thin high-contrast stroke along a row (text-likeness), in [0, 1].

    Every other row only: glyphs are many rows tall, and it halves the cost."""
    rows = frame[::2].astype(np.int16)
    luma = (rows[..., 0] * 19 + rows[..., 1] * 38 + rows[..., 2] * 7) >> 6  # (H/2, W) ~BT.601, fits int16
    step = np.diff(luma, axis=1)  # (H/2, W-1)
    rise, fall = step > contrast, step < -contrast
    stroke = np.zeros_like(rise)
    for k in range(1, max_stroke_px + 1):
        stroke[:, :-k] |= (rise[:, :-k] & fall[:, k:]) | (fall[:, :-k] & rise[:, k:])
    return float(stroke.mean())


@dataclass
class VideoFeatures:
    """All features of one video on one timeline: per-frame series at `fps` (frame k at k / fps s),
    motion per whole second. `semantic` is (n_frames, 0) when no encoder was asked for."""

    fps: float
    n_frames: int
    duration_s: float  # decoded duration, n_frames / fps (frame-rate precision)
    semantic_encoder: str | None  # "<name> <version>", None when no semantic features were computed
    semantic: np.ndarray  # (n_frames, semantic_dim) float32
    color: np.ndarray  # (n_frames, 3 * color_bins**2) float32, RGB-uv, (channel, u, v) row-major
    text_score: np.ndarray  # (n_frames,) float32
    motion: np.ndarray  # (n_seconds,) float32, mean 0.2 s RGB difference per second
    motion_mean: float  # mean of all 0.2 s RGB differences (NaN if the video is shorter than 0.2 s)
    shot_boundaries_s: np.ndarray  # (n_cuts,) float64
    color_bins: int = COLOR_BINS
    annotator: str = field(default="")

    @property
    def semantic_dim(self) -> int:
        return int(self.semantic.shape[1])

    @property
    def frame_times_s(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps

    def to_row(self, song_id: str, video_id: str) -> dict:
        """One row of VIDEO_FEATURES."""
        return {
            "song_id": song_id,
            "video_id": video_id,
            "fps": float(self.fps),
            "n_frames": int(self.n_frames),
            "duration_s": float(self.duration_s),
            "semantic_encoder": self.semantic_encoder,
            "semantic_dim": self.semantic_dim,
            "semantic": self.semantic.tolist() if self.semantic_encoder else None,
            "color_bins": int(self.color_bins),
            "color": self.color.tolist(),
            "text_score": self.text_score.tolist(),
            "motion": self.motion.tolist(),
            "motion_mean": float(self.motion_mean),
            "shot_boundaries_s": self.shot_boundaries_s.tolist(),
            "annotator": self.annotator,
        }


def features_from_streams(
    streams: Iterator[tuple[int, float, np.ndarray]],
    fps: float,
    encoder: SemanticEncoder | None,
    batch_frames: int = 32,
    semantic_stride: int = 1,
) -> VideoFeatures:
    """Every feature of one video from its decoded frames (symmv.features.video decodes): consume `(stream, time_s, frame)` with stream 0 the per-frame
    timeline and stream 1 the motion stream (frames MOTION_FPS apart). The encoder sees every
    `semantic_stride`-th timeline frame; each embedding is held for the frames up to the next one, so the
    semantic series stays on the timeline (the encoder is the costly part on a CPU)."""
    color, texts, shot_hists, semantic, batch = [], [], [], [], []
    motion_times, motion_values, previous = [], [], None
    for stream, time_s, frame in streams:
        if stream == 1:
            if previous is not None:
                motion_times.append(time_s)
                motion_values.append(rgb_difference(previous, frame))
            previous = frame
            continue
        color.append(rgb_uv_histogram(frame).ravel())
        texts.append(text_score(frame))
        shot_hists.append(rgb_histogram(frame))
        if encoder is not None and (len(color) - 1) % semantic_stride == 0:
            batch.append(frame)
            if len(batch) == batch_frames:
                semantic.append(encoder.encode(np.stack(batch)))
                batch = []
    if encoder is not None and batch:
        semantic.append(encoder.encode(np.stack(batch)))
    n = len(color)
    times = np.arange(n) / fps
    if encoder is not None:
        semantic_arr = np.concatenate(semantic) if semantic else np.zeros((0, encoder.dim), np.float32)
        semantic_arr = np.repeat(semantic_arr, semantic_stride, axis=0)[:n]
        if semantic_arr.shape != (n, encoder.dim):
            raise RuntimeError(f"encoder {encoder.name} {encoder.version} returned {semantic_arr.shape}, expected {(n, encoder.dim)}")
    else:
        semantic_arr = np.zeros((n, 0), np.float32)
    params = {"color_bins": COLOR_BINS, "color_max_side": COLOR_MAX_SIDE, "motion_fps": MOTION_FPS,
              "motion_size": MOTION_SIZE, "shot_threshold": SHOT_THRESHOLD, "text_contrast": TEXT_CONTRAST,
              "semantic_stride": semantic_stride}
    return VideoFeatures(
        fps=fps,
        n_frames=n,
        duration_s=n / fps,
        semantic_encoder=f"{encoder.name} {encoder.version}" if encoder is not None else None,
        semantic=semantic_arr.astype(np.float32, copy=False),
        color=np.asarray(color, np.float32).reshape(n, -1),
        text_score=np.asarray(texts, np.float32),
        motion=per_second(np.asarray(motion_times), np.asarray(motion_values)),
        motion_mean=float(np.mean(motion_values)) if motion_values else float("nan"),
        shot_boundaries_s=shot_boundaries(np.asarray(shot_hists), times),
        annotator=f"symmv.video {ANNOTATOR_VERSION} {json.dumps(params, sort_keys=True)}",
    )


VIDEO_FEATURES = _schema.VIDEO_FEATURES  # declared in symmv.core.schema (the one place every table is declared)
