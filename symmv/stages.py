"""Per-song stages of `build-symmv`: each takes a SongWork and returns it with its stage's fields set.

The flow (flows/build.py) only wires these together. A stage that fails sets `work.reject` (stage,
reason, detail) and every later stage passes the item through untouched, so one bad song never stops
the run. Stages call the pure annotators; they hold no Prefect code and no global state.
"""
from __future__ import annotations

import functools
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from symmv.config import BuildConfig
from symmv.records import MediaItem, Note, Reject
from symmv.safe_names import sanitize_id


@dataclass
class SongWork:
    cover: MediaItem
    song_id: str = ""
    parsed: object | None = None  # symmv.titles.ParsedTitle
    video: MediaItem | None = None
    match: dict | None = None  # the matcher's decision, JSON-able, kept for audit
    transcriber: str = ""
    notes: list[Note] = field(default_factory=list)
    genre: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    reject: Reject | None = None

    def __post_init__(self):
        self.song_id = self.song_id or sanitize_id(self.cover.id)


def stage(name: str):
    """Skip items already rejected; turn any exception into a Reject of this stage."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(work: SongWork, *args, **kwargs) -> SongWork:
            if work.reject is not None:
                return work
            try:
                return fn(work, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - quarantine, never crash the run
                reason = getattr(exc, "reason", None) or f"{name}_failed"
                detail = f"{type(exc).__name__}: {exc}"
                if not hasattr(exc, "reason"):
                    detail += " | " + traceback.format_exc(limit=-2).replace("\n", " ")[-400:]
                work.reject = Reject(work.cover.id, name, reason, detail[:1000])
                return work

        return run

    return wrap


class StageError(ValueError):
    """A stage's own refusal, with a machine-readable reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@stage("match")
def parse_and_match(work: SongWork, videos: list[MediaItem], cfg: BuildConfig) -> SongWork:
    """Parse song/artist from the cover's metadata and pick its official video (paper sec. 3.1)."""
    from symmv.matching import choose_video
    from symmv.titles import parse_info

    work.parsed = parse_info(work.cover.info)
    if not work.parsed.song:
        raise StageError("unparseable_title", f"no song title found in {work.cover.title[:200]!r}")
    by_id = {v.id: v for v in videos}
    decision = choose_video(work.parsed, work.cover.duration_s, [v.info for v in videos], cfg.match_threshold)
    work.match = decision.to_dict()
    if decision.chosen_id is None:
        best = decision.scores[0].candidate_id if decision.scores else None
        raise StageError("no_video_match", f"{decision.reason}: best candidate {best} scored "
                         f"{decision.score:.2f} (threshold {cfg.match_threshold})")
    work.video = by_id[decision.chosen_id]
    work.genre = work.cover.info.get("genre") or None
    work.provenance["match"] = f"symmv.matching threshold={cfg.match_threshold}"
    return work


@stage("transcribe")
def transcribe_cover(work: SongWork, cfg: BuildConfig) -> SongWork:
    """Piano audio -> notes with the configured backend (paper sec. 3.1)."""
    from symmv.transcription import transcribe

    result = transcribe(work.cover.media_path, backend=cfg.transcriber)
    if not result.notes:
        raise StageError("no_notes", f"{result.transcriber} found no notes")
    work.notes, work.transcriber = result.notes, result.transcriber
    work.provenance["notes"] = result.transcriber
    return work


# ---------------------------------------------------------------- rows for the shards

def song_row(work: SongWork, split: str, midi_path: str | None) -> dict:
    cover, video, parsed = work.cover.info, (work.video.info if work.video else {}), work.parsed
    return {
        "song_id": work.song_id, "cover_title": work.cover.title,
        "song": parsed.song if parsed else None, "artist": parsed.artist if parsed else None,
        "cover_id": work.cover.id, "cover_url": cover.get("webpage_url"),
        "cover_channel": cover.get("channel") or cover.get("uploader"),
        "video_id": video.get("id"), "video_url": video.get("webpage_url"), "video_title": video.get("title"),
        "match_score": (work.match or {}).get("score"),
        "cover_duration_s": work.cover.duration_s, "video_duration_s": video.get("duration"),
        "n_notes": len(work.notes), "genre": work.genre, "midi_path": midi_path,
        "transcriber": work.transcriber, "provenance": json.dumps(work.provenance, sort_keys=True),
    }


def note_rows(work: SongWork) -> list[dict]:
    return [{"song_id": work.song_id, "track": n.track, "onset_s": n.onset_s, "offset_s": n.offset_s,
             "pitch": n.pitch, "velocity": n.velocity, "bar": n.bar, "position": n.position,
             "duration_16th": n.duration_16th} for n in work.notes]


def reject_row(reject: Reject) -> dict:
    return {"item_id": reject.item_id, "stage": reject.stage, "reason": reject.reason, "detail": reject.detail}


def write_midi(notes: list[Note], path: Path) -> Path:
    """One MIDI file per song: one instrument per track (piano / melody / accompaniment)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for track in sorted({n.track for n in notes}):
        inst = pretty_midi.Instrument(program=0, name=track)
        inst.notes = [pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch), start=float(n.onset_s),
                                       end=float(max(n.offset_s, n.onset_s + 1e-3))) for n in notes if n.track == track]
        pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pm.write(str(tmp))
    tmp.replace(path)
    return path
