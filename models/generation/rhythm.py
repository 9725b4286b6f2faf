"""Rule-based rhythm control from a video, after CMT (Di et al. 2021, "Video Background Music Generation
with Controllable Music Transformer"): the Table 2 baseline "CMT" (paper sec. 6.1).

CMT ties three video features to three music features by rules, on top of an unconditional compound-word
transformer; we do the same over the unconditional "music" stage (models/config.py):

    video timing    -> onset timing  visual beats (local maxima of the motion curve, and shot cuts) get a
                                     note onset on the nearest 16th;
    motion speed    -> note density  the bar's mean motion, scaled between the video's slowest and fastest
                                     bar, sets how many onsets (Position tokens) the bar has;
    motion saliency -> strength      the motion at an onset relative to the video's strongest sets its
                                     velocity (CMT's "strength" counts notes per onset; our compound tokens
                                     carry no velocity, so strength is applied to the notes after sampling).

What the data has per video (symmv.core.schema.VIDEO_FEATURES): `motion`, one mean RGB difference per
second (sec. 4.1), and `shot_boundaries_s`. CMT uses optical flow at frame rate; a per-second curve only
places visual beats to the second, which the shot cuts (exact times) complement. The plan is a pure
function of those features; the sampler (models/generation/sample.py `Grammar(rhythm=...)`) enforces it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.tokens import STEPS_PER_BAR


@dataclass(frozen=True)
class RhythmConfig:
    density_range: tuple[int, int] = (2, 10)  # onsets per bar for the video's slowest / fastest bar
    velocity_range: tuple[int, int] = (50, 105)  # MIDI velocity for no motion / the video's strongest
    motion_hz: float = 1.0  # samples per second of the `motion` column (annotators/video.py: per second)


@dataclass(frozen=True)
class RhythmPlan:
    """What the sampler must respect, on the piece's 16th grid."""

    required: np.ndarray  # (n_bars, 16) bool: a visual beat falls here, an onset must too
    onsets_per_bar: np.ndarray  # (n_bars,) int: the bar's number of onsets (>= its required ones)
    velocity: np.ndarray  # (n_bars * 16,) int: strength of a note starting at that 16th


def motion_peaks_s(motion: np.ndarray, motion_hz: float) -> list[float]:
    """Times of the local maxima of the motion curve that rise above its median (a sample's time is
    the middle of the interval it averages)."""
    m = np.asarray(motion, dtype=np.float64)
    if len(m) < 2:
        return []
    padded = np.concatenate([[-np.inf], m, [-np.inf]])
    peak = (m >= padded[:-2]) & (m > padded[2:]) & (m > np.median(m))
    return [(i + 0.5) / motion_hz for i in np.flatnonzero(peak)]


def cmt_rhythm(motion, shot_boundaries_s, duration_s: float, tempo_bpm: float, n_bars: int,
               cfg: RhythmConfig = RhythmConfig()) -> RhythmPlan:
    """The video's rhythm plan for a piece of `n_bars` 4/4 bars at `tempo_bpm` starting with the video."""
    n_steps = n_bars * STEPS_PER_BAR
    s16 = 60.0 / tempo_bpm / 4
    step_s = np.arange(n_steps) * s16
    motion = np.asarray(motion if motion is not None else [], dtype=np.float64)
    motion = motion[np.isfinite(motion)] if len(motion) else motion
    if len(motion):
        curve = np.interp(step_s, (np.arange(len(motion)) + 0.5) / cfg.motion_hz, motion)  # (n_steps,)
    else:
        curve = np.zeros(n_steps)

    required = np.zeros(n_steps, dtype=bool)
    for t in [*motion_peaks_s(motion, cfg.motion_hz), *(shot_boundaries_s or [])]:
        step = int(round(float(t) / s16))
        if 0 <= t < duration_s and step < n_steps:
            required[step] = True
    required = required.reshape(n_bars, STEPS_PER_BAR)

    speed = curve.reshape(n_bars, STEPS_PER_BAR).mean(1)  # (n_bars,)
    span = speed.max() - speed.min()
    frac = (speed - speed.min()) / span if span > 0 else np.full(n_bars, 0.5)
    lo, hi = cfg.density_range
    onsets = np.maximum(np.round(lo + frac * (hi - lo)).astype(np.int64), required.sum(1))

    strongest = curve.max() if len(curve) and curve.max() > 0 else 1.0
    vlo, vhi = cfg.velocity_range
    velocity = np.round(vlo + np.clip(curve / strongest, 0, 1) * (vhi - vlo)).astype(np.int64)
    return RhythmPlan(required=required, onsets_per_bar=np.minimum(onsets, STEPS_PER_BAR), velocity=velocity)


def bar_positions(plan: RhythmPlan, bar: int, pos: int, onsets: int) -> tuple[np.ndarray, bool]:
    """Where the next onset of `bar` may go after position `pos` with `onsets` onsets so far, and whether
    the bar may end now -> ((16,) bool, bool).

    Never skip a required position (only positions up to the next one); a free position only while the
    bar's budget leaves room for the required ones still ahead; any position only where enough positions
    remain to reach the budget. So every walk through the bar takes all required positions and exactly
    `onsets_per_bar` onsets (the budget is >= the required count and <= 16); the bar may end once both hold."""
    bar = min(bar, len(plan.onsets_per_bar) - 1)
    required, target = plan.required[bar], int(plan.onsets_per_bar[bar])
    ahead = np.flatnonzero(required[pos + 1:]) + pos + 1
    last = int(ahead[0]) if len(ahead) else STEPS_PER_BAR - 1
    positions = np.zeros(STEPS_PER_BAR, dtype=bool)
    for p in range(pos + 1, last + 1):
        within_budget = bool(required[p]) or onsets + 1 + int(required[p + 1:].sum()) <= target
        positions[p] = within_budget and STEPS_PER_BAR - p >= target - onsets  # room left for the budget
    may_end = not len(ahead) and (onsets >= target or not positions.any())
    return positions, may_end


def apply_strength(notes: list, plan: RhythmPlan) -> list:
    """Notes with velocity = the plan's strength at their onset 16th (CMT's motion saliency)."""
    from dataclasses import replace

    last = len(plan.velocity) - 1
    return [replace(n, velocity=int(plan.velocity[min(last, n.bar * STEPS_PER_BAR + n.position)])) for n in notes]
