"""Typed records that flow between stages.

Every stage consumes and produces these plain, immutable records; annotators are pure functions over
them (no I/O, no Prefect). Times are seconds of the cover audio unless a name says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Note:
    """One transcribed note. `bar`/`position` are filled by the 16th-note quantizer (None before)."""

    onset_s: float
    offset_s: float
    pitch: int  # MIDI pitch 0-127
    velocity: int  # MIDI velocity 1-127
    track: str = "piano"  # "piano" before the skyline split, then "melody" / "accompaniment"
    bar: int | None = None  # 0-based bar index on the beat grid
    position: int | None = None  # 16th-note slot within the bar (0..4*beats_per_bar-1)
    duration_16th: int | None = None  # quantized duration in 16th notes (>= 1)


@dataclass(frozen=True, slots=True)
class Beat:
    """One tracked beat; `beat_in_bar` is 1-based as madmom reports it (1 = downbeat)."""

    time_s: float
    bar: int
    beat_in_bar: int

    @property
    def is_downbeat(self) -> bool:
        return self.beat_in_bar == 1


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One downloaded item in yt-dlp's layout: a media file next to `<id>.info.json`."""

    id: str
    media_path: str
    info: dict = field(hash=False, compare=False)

    @property
    def title(self) -> str:
        return str(self.info.get("title") or "")

    @property
    def duration_s(self) -> float | None:
        d = self.info.get("duration")
        return float(d) if d is not None else None


@dataclass(frozen=True, slots=True)
class Reject:
    """A quarantined item: which stage refused it and why. The run goes on without it."""

    item_id: str
    stage: str
    reason: str  # short machine-readable code, e.g. "no_video_match", "transcription_failed"
    detail: str = ""  # human-readable detail (exception text, scores)
