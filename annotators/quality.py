"""Video quality filters (paper sec. 3: musicians removed "static or lyric videos"; we also drop pairs
whose cover and video durations disagree, and files that do not decode).

Each filter returns None (keep) or a `Reject(item_id, stage="video_quality", reason, detail)`; the
reason codes are stable strings for the rejects table. All are pure functions over the features of
annotators.video; decode failures get their reason codes in symmv.features.video.
"""
from __future__ import annotations

import numpy as np

from annotators.video import VideoFeatures
from symmv.core.records import Reject

STAGE = "video_quality"

# A second is "still" when its mean 0.2 s RGB difference (0..1, 64 px frames) is below this: 0.005 is
# about 1.3 grey levels of 255, above H.264 noise on a still source (measured ~0.0002 on encoded lavfi
# stills) and below slow real motion (testsrc2's slowest seconds are ~0.03).
STILL_MOTION = 0.005
STATIC_MIN_STILL_FRACTION = 0.9  # static video: still for at least 90 % of its seconds
# Lyric video: mostly still (text changes cause brief motion) and text on most frames. TEXT_SCORE is
# the thin-stroke pixel fraction of annotators.video.text_score: 0.018 on a two-line 36 px lyric
# overlay at 360p, 0.0004 on testsrc2, 0 on a blurred still.
LYRIC_MIN_STILL_FRACTION = 0.6
LYRIC_TEXT_SCORE = 0.005
LYRIC_MIN_TEXT_FRACTION = 0.5
# Duration mismatch: piano covers routinely trim intros/outros, so allow max(20 s, 15 %) of the longer.
DURATION_TOLERANCE_S = 20.0
DURATION_TOLERANCE_FRAC = 0.15


def still_fraction(motion: np.ndarray, still_motion: float = STILL_MOTION) -> float:
    """Fraction of seconds (with a motion value) whose motion is below `still_motion`."""
    m = np.asarray(motion, float)
    m = m[np.isfinite(m)]
    return float((m < still_motion).mean()) if len(m) else 1.0


def static_video(
    item_id: str,
    features: VideoFeatures,
    still_motion: float = STILL_MOTION,
    min_still_fraction: float = STATIC_MIN_STILL_FRACTION,
) -> Reject | None:
    frac = still_fraction(features.motion, still_motion)
    if frac >= min_still_fraction:
        return Reject(item_id, STAGE, "static_video",
                      f"{frac:.0%} of {len(features.motion)} s below motion {still_motion} "
                      f"(mean motion {features.motion_mean:.4f})")
    return None


def lyric_video(
    item_id: str,
    features: VideoFeatures,
    still_motion: float = STILL_MOTION,
    min_still_fraction: float = LYRIC_MIN_STILL_FRACTION,
    text_score: float = LYRIC_TEXT_SCORE,
    min_text_fraction: float = LYRIC_MIN_TEXT_FRACTION,
) -> Reject | None:
    still = still_fraction(features.motion, still_motion)
    texty = float((np.asarray(features.text_score) >= text_score).mean()) if features.n_frames else 0.0
    if still >= min_still_fraction and texty >= min_text_fraction:
        return Reject(item_id, STAGE, "lyric_video",
                      f"{still:.0%} of seconds still, text on {texty:.0%} of frames "
                      f"(median text score {np.median(features.text_score):.4f})")
    return None


def duration_mismatch(
    item_id: str,
    cover_duration_s: float,
    video_duration_s: float,
    tolerance_s: float = DURATION_TOLERANCE_S,
    tolerance_frac: float = DURATION_TOLERANCE_FRAC,
) -> Reject | None:
    """Reject when |cover - video| exceeds max(tolerance_s, tolerance_frac * the longer duration)."""
    gap = abs(cover_duration_s - video_duration_s)
    allowed = max(tolerance_s, tolerance_frac * max(cover_duration_s, video_duration_s))
    if gap > allowed:
        return Reject(item_id, STAGE, "duration_mismatch",
                      f"cover {cover_duration_s:.1f} s vs video {video_duration_s:.1f} s "
                      f"(gap {gap:.1f} s > {allowed:.1f} s)")
    return None


def video_quality(
    item_id: str, features: VideoFeatures, cover_duration_s: float | None = None
) -> Reject | None:
    """First failing filter, in order: duration mismatch, lyric video, static video (a lyric video is
    also static; it gets the more specific reason)."""
    if cover_duration_s is not None:
        mismatch = duration_mismatch(item_id, cover_duration_s, features.duration_s)
        if mismatch is not None:
            return mismatch
    return lyric_video(item_id, features) or static_video(item_id, features)
