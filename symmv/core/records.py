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
    info: dict = field(hash=False, compare=False)  # validated against INFO_FIELDS by the source
    # The official video, only for sources that really carry pairs (the SymMV release); a `paired_video`
    # key inside a downloaded info.json is never trusted (symmv.sources.local drops it).
    paired_video: dict | None = field(default=None, hash=False, compare=False)

    @property
    def title(self) -> str:
        return str(self.info.get("title") or "")

    @property
    def duration_s(self) -> float | None:
        """What the info.json claims; the pipeline measures the media and only cross-checks this."""
        d = self.info.get("duration")
        return float(d) if d is not None else None


# The info.json fields the pipeline reads, with the types they must have (yt-dlp's own types). A field of
# another type makes the item a `bad_metadata:<field>` reject where it is read, never a crash at writing.
INFO_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "title": (str,), "duration": (int, float), "webpage_url": (str,), "channel": (str,),
    "uploader": (str,), "genre": (str,), "description": (str,), "channel_id": (str,), "view_count": (int,),
    "channel_is_verified": (bool,), "extractor": (str,), "shazam_id": (str,), "artist": (str,), "track": (str,),
}


def info_problem(info: object) -> str | None:
    """The first INFO_FIELDS field whose value has the wrong type (None: all fine). Nulls are allowed."""
    if not isinstance(info, dict):
        return "<object>"
    for name, types in INFO_FIELDS.items():
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in types:  # True is an int in Python, never a duration
            return name
        if not isinstance(value, types):
            return name
        if isinstance(value, float) and value != value:  # NaN
            return name
    return None


@dataclass(frozen=True, slots=True)
class Reject:
    """A quarantined item: which stage refused it and why. The run goes on without it."""

    item_id: str
    stage: str
    reason: str  # short machine-readable code, e.g. "no_video_match", "transcription_failed"
    detail: str = ""  # human-readable detail (exception text, scores)
