"""Video features of one file: decode once (symmv.io.video), hand the frame streams to the pure
annotators (annotators.video), and give decode failures their reason codes for the rejects table."""
from __future__ import annotations

from pathlib import Path

from annotators.quality import STAGE
from annotators.video import MOTION_FPS, MOTION_SIZE, SemanticEncoder, VideoFeatures, features_from_streams
from symmv.core.records import Reject
from symmv.io.video import VideoReadError, iter_frames, iter_streams, probe


def video_features(
    path: str | Path,
    encoder: SemanticEncoder | None,
    fps: float = 6.0,
    size: int = 224,
    threads: int = 0,
    batch_frames: int = 32,
    semantic_stride: int = 1,
) -> VideoFeatures:
    """Decode `path` once and compute every feature; `encoder=None` skips the semantic features.

    Streams: frames at `fps` x `size` px feed semantic (in batches of `batch_frames`), color, text and
    shot features; a second 5 fps x 64 px stream from the same decode feeds the 0.2 s motion.
    `semantic_stride` n: the encoder sees every n-th frame and each embedding is held for n frames.
    Raises symmv.io.video.VideoReadError (a ValueError) for unreadable, empty or corrupt files.
    """
    return features_from_streams(
        iter_streams(path, [(fps, size), (MOTION_FPS, MOTION_SIZE)], threads=threads), fps, encoder, batch_frames,
        semantic_stride
    )


def reject_for_read_error(item_id: str, error: VideoReadError) -> Reject:
    """The rejects row for a decode failure raised anywhere (probe, video_features): its reason is the
    error's own (unreadable_video, zero_frames, corrupt_frames; symmv.io.video)."""
    return Reject(item_id, STAGE, error.reason, str(error)[-500:])


def unreadable_video(item_id: str, path: str | Path) -> Reject | None:
    """Probe the file and decode its first frame (cheap; the only filter that does I/O)."""
    try:
        probe(path)
        frames = iter_frames(path, fps=1.0, size=32)
        next(frames)
        frames.close()
    except VideoReadError as e:
        return reject_for_read_error(item_id, e)
    return None


