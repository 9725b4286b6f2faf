"""Per-song stages of `build-symmv`: each takes a SongWork and returns it with its stage's fields set.

The flow (flows/build.py) only wires these together. A stage that fails sets `work.reject` (stage,
reason, detail) and every later stage passes the item through untouched, so one bad song never stops
the run. Stages call the pure annotators; they hold no Prefect code and no global state.
"""
from __future__ import annotations

import functools
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from symmv.pipeline.config import BuildConfig
from symmv.core.records import Beat, MediaItem, Note, Reject
from symmv.core.ids import sanitize_id


@dataclass
class SongWork:
    cover: MediaItem
    song_id: str = ""
    parsed: object | None = None  # symmv.matching.titles.ParsedTitle
    video: MediaItem | None = None
    match: dict | None = None  # the matcher's decision, JSON-able, kept for audit
    transcriber: str = ""
    notes: list[Note] = field(default_factory=list)
    beats: list[Beat] = field(default_factory=list)
    tempo_bpm: float | None = None
    chords: list = field(default_factory=list)  # annotators.chords.Chord
    key: object | None = None  # annotators.key.KeyEstimate
    key_windows: list = field(default_factory=list)
    video_features: object | None = None  # annotators.video.VideoFeatures
    video_tempo_bpm: float | None = None  # from motion, set once the dataset's motion range is known
    genre: str | None = None
    metadata: dict | None = None  # a symmv.matching.metadata METADATA_SCHEMA row when ShazamIO was asked
    provenance: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)  # wall seconds per stage (for bench/, not data)
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
            started = time.perf_counter()
            try:
                return fn(work, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - quarantine, never crash the run
                reason = getattr(exc, "reason", None) or f"{name}_failed"
                detail = f"{type(exc).__name__}: {exc}"
                if not hasattr(exc, "reason"):
                    detail += " | " + traceback.format_exc(limit=-2).replace("\n", " ")[-400:]
                work.reject = Reject(work.cover.id, name, reason, detail[:1000])
                return work
            finally:
                work.timings_s[name] = time.perf_counter() - started

        return run

    return wrap


class StageError(ValueError):
    """A stage's own refusal, with a machine-readable reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@stage("match")
def parse_and_match(work: SongWork, videos, cfg: BuildConfig) -> SongWork:
    """Parse song/artist from the cover's metadata and pick its official video (paper sec. 3.1).

    `videos` is a candidate source (symmv.matching.candidates): a local folder or a YouTube search.
    """
    from symmv.matching.matcher import choose_video
    from symmv.io.media import duration_s as media_duration_s
    from symmv.matching.titles import parse_info

    if "paired_video" in work.cover.info:  # the source already knows the pair (the SymMV release)
        paired = work.cover.info["paired_video"]
        work.video = MediaItem(id=paired["id"], media_path="", info=paired)
        work.provenance["match"] = "paired by the source"
        return work
    length_s = media_duration_s(work.cover.media_path)  # the file's own length: info.json may be wrong
    if length_s > cfg.max_cover_s:
        raise StageError("too_long", f"{length_s:.0f} s > max_cover_s {cfg.max_cover_s:.0f} s")
    work.parsed = parse_info(work.cover.info)
    if not work.parsed.song:
        raise StageError("unparseable_title", f"no song title found in {work.cover.title[:200]!r}")
    candidates = videos.candidates(work.parsed)
    decision = choose_video(work.parsed, work.cover.duration_s, candidates, cfg.match_threshold)
    work.match = decision.to_dict()
    if decision.chosen_id is None:
        raise StageError("no_video_match", _no_match_detail(decision, cfg.match_threshold))
    work.video = videos.fetch(next(c for c in candidates if c.get("id") == decision.chosen_id))
    work.provenance["match"] = f"{decision.matcher_version} ({videos.name}) threshold={cfg.match_threshold}"
    return work


def _no_match_detail(decision, threshold: float) -> str:
    """Say why nothing was chosen; name the same-song uploads that were refused (e.g. a lyric video)."""
    same_song = [s for s in decision.scores if s.title_similarity >= 0.75 and s.gate]
    refused = "; ".join(f"{s.candidate_id} '{s.title[:80]}' refused: {s.gate}" for s in same_song[:3])
    best = decision.scores[0] if decision.scores else None
    best_text = f"best candidate {best.candidate_id} scored {best.total:.2f} ({best.gate or 'eligible'})" if best else ""
    return f"{decision.reason}: " + (refused or best_text or "no candidates") + f" [threshold {threshold}]"


@stage("metadata")
def look_up_metadata(work: SongWork, cfg: BuildConfig) -> SongWork:
    """Genre and lyrics from ShazamIO (paper sec. 3.2) when enabled; else the source's own genre field.

    Never rejects: a failed lookup is recorded in the metadata row (status, error) and the song goes on.
    """
    source_genre = work.cover.info.get("genre") or None
    work.genre = source_genre
    work.provenance["genre"] = "source info.json" if source_genre else "none"
    if cfg.shazam:
        from symmv.matching.metadata import metadata_row

        meta = _shazam_tagger(str(Path(cfg.out) / ".cache" / "shazam")).tag(work.cover.media_path)
        work.metadata = metadata_row(work.song_id, meta)
        if meta.genre:
            work.genre, work.provenance["genre"] = meta.genre, work.metadata["metadata_provider"]
    return work


@functools.lru_cache(maxsize=2)
def _shazam_tagger(cache_dir: str):
    from symmv.matching.metadata import ShazamTagger

    return ShazamTagger(cache_dir)  # one per run: it rate-limits across songs


@functools.lru_cache(maxsize=2)
def semantic_encoder(name: str, threads: int):
    """One encoder per process (weights load once); "none" computes no semantic features."""
    if name == "none":
        return None
    import torch

    from symmv.features.encoders import make_encoder

    torch.set_num_threads(max(1, threads))
    return make_encoder(name)


@stage("video")
def extract_video_features(work: SongWork, cfg: BuildConfig) -> SongWork:
    """Semantic (6 fps), RGB-uv color and RGB-difference motion on one timeline (paper sec. 4.1),
    then the quality filters (duration mismatch, lyric video, static video) that musicians applied by hand."""
    import os

    from annotators.quality import video_quality
    from symmv.features.video import video_features

    if not work.video.media_path:  # e.g. the SymMV release: URLs only, no video files
        work.provenance["semantic"] = "none (no video file in this source)"
        return work
    from symmv.features.video import reject_for_read_error
    from symmv.io.video import VideoReadError

    encoder = semantic_encoder(cfg.semantic_encoder, (os.cpu_count() or 2) // max(1, cfg.workers))
    try:
        feats = video_features(work.video.media_path, encoder, fps=cfg.video_fps)
    except VideoReadError as exc:  # unreadable / zero-frame file: the quality filters' own reason codes
        reject = reject_for_read_error(work.video.id, exc)
        raise StageError(reject.reason, f"video {work.video.id}: {reject.detail}") from exc
    reject = video_quality(work.video.id, feats, work.cover.duration_s)
    if reject is not None:
        raise StageError(reject.reason, f"video {work.video.id}: {reject.detail}")
    work.video_features = feats
    work.provenance["video_features"] = feats.annotator
    work.provenance["semantic"] = feats.semantic_encoder or "none"
    return work


@stage("transcribe")
def transcribe_cover(work: SongWork, cfg: BuildConfig) -> SongWork:
    """Piano audio -> notes with the configured backend (paper sec. 3.1)."""
    from symmv.transcription.backends import default_backend, transcribe

    result = transcribe(work.cover.media_path, backend=cfg.transcriber or default_backend())
    if not result.notes:
        raise StageError("no_notes", f"{result.transcriber} found no notes")
    work.notes, work.transcriber = result.notes, result.transcriber
    work.provenance["notes"] = result.transcriber
    return work


def _madmom_beats(work: SongWork):
    from annotators.beats import SAMPLE_RATE, track_beats
    from symmv.io.audio import decode_audio

    return track_beats(decode_audio(work.cover.media_path, SAMPLE_RATE))


def _note_beats(work: SongWork):
    from annotators.beats import track_beats_from_notes

    return track_beats_from_notes(work.notes)


# Beat trackers by name: madmom on the cover audio (paper sec. 3.2), or a tracker over the notes for
# sources that are MIDI without a musical tempo map (the SymMV release).
BEAT_TRACKERS = {"madmom": _madmom_beats, "notes": _note_beats}


@stage("rhythm")
def track_rhythm(work: SongWork, cfg: BuildConfig) -> SongWork:
    """Beats, downbeats and tempo (paper sec. 3.2)."""
    if cfg.beat_tracker not in BEAT_TRACKERS:
        raise KeyError(f"unknown beat tracker {cfg.beat_tracker!r}; known: {sorted(BEAT_TRACKERS)}")
    track = BEAT_TRACKERS[cfg.beat_tracker](work)
    if len(track.beats) < 2:
        raise StageError("no_beats", f"{track.tracker} found {len(track.beats)} beats")
    work.beats, work.tempo_bpm = list(track.beats), track.tempo_bpm
    work.provenance["beats"] = f"{track.tracker} {track.version}"
    return work


@stage("symbolic")
def annotate_symbolic(work: SongWork, cfg: BuildConfig) -> SongWork:
    """16th-note quantization on the beat grid -> skyline melody/accompaniment -> chords -> key."""
    from annotators import chords, key, quantize, skyline

    quantized = quantize.quantize(work.notes, work.beats)
    work.notes = skyline.skyline(quantized, work.beats)
    work.chords = chords.chords(work.notes, work.beats)
    work.key = key.estimate_key(work.notes)
    work.key_windows = key.windowed_keys(work.notes)
    for module in (quantize, skyline, chords, key):
        work.provenance[module.__name__.split(".")[-1]] = module.ANNOTATOR_VERSION
    return work


# ---------------------------------------------------------------- resume: what a stage's result depends on

STAGE_ORDER = ("match", "metadata", "video", "transcribe", "rhythm", "symbolic")


def _stage_inputs(stage: str, cfg: BuildConfig) -> dict:
    """The configuration and code versions one stage's output depends on (besides earlier stages)."""
    if stage == "match":
        from symmv.matching.matcher import MATCHER_VERSION

        return {"matcher": MATCHER_VERSION, "threshold": cfg.match_threshold, "source": cfg.source,
                "search_results": cfg.search_results}
    if stage == "metadata":
        return {"shazam": cfg.shazam}
    if stage == "video":
        from annotators import quality, video

        return {"video": video.ANNOTATOR_VERSION, "quality": getattr(quality, "ANNOTATOR_VERSION", "1"),
                "encoder": cfg.semantic_encoder, "fps": cfg.video_fps}
    if stage == "transcribe":
        from symmv.transcription.backends import default_backend

        return {"transcriber": cfg.transcriber or default_backend()}
    if stage == "rhythm":
        return {"beat_tracker": cfg.beat_tracker}
    from annotators import chords, key, quantize, skyline

    return {m.__name__: m.ANNOTATOR_VERSION for m in (quantize, skyline, chords, key)}


@functools.lru_cache(maxsize=1)
def _stages_code() -> str:
    """This module's source: a fix to any stage's code invalidates the cached results (like Prefect's
    TASK_SOURCE, which would only see the flows' one-line task wrappers)."""
    import hashlib

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def file_fingerprint(path: str) -> list:
    """Name, size and modification time: cheap, and changes whenever a download is replaced."""
    if not path:
        return []
    st = Path(path).stat()
    return [Path(path).name, st.st_size, st.st_mtime_ns]


def cache_key(stage: str, work: SongWork, cfg: BuildConfig, candidates: str = "") -> str:
    """Prefect cache key of `stage` for one song: the cover's files, the candidate videos' listing, and
    the inputs of this stage and of every stage before it. A changed annotator version changes the keys
    of its stage and the later ones only; earlier stages are read back from the persisted results."""
    import hashlib

    upstream = STAGE_ORDER[: STAGE_ORDER.index(stage) + 1]
    payload = {"code": _stages_code(), "cover": work.cover.id, "media": file_fingerprint(work.cover.media_path), "out": str(cfg.out),
               "source_dir": str(cfg.source_dir), "candidates": candidates,
               "video": [work.video.id, file_fingerprint(work.video.media_path)] if work.video else None,
               "stages": {s: _stage_inputs(s, cfg) for s in upstream}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- rows for the shards

def duration_s(work: SongWork) -> float | None:
    """The cover's length: its info.json's, else (MIDI sources say none) the end of its last note."""
    return work.cover.duration_s or (max(n.offset_s for n in work.notes) if work.notes else None)


def song_row(work: SongWork, split: str, midi_path: str | None) -> dict:
    cover, video, parsed = work.cover.info, (work.video.info if work.video else {}), work.parsed
    return {
        "song_id": work.song_id, "cover_title": work.cover.title,
        "song": parsed.song if parsed else None, "artist": parsed.artist if parsed else None,
        "cover_id": work.cover.id, "cover_url": cover.get("webpage_url"),
        "cover_channel": cover.get("channel") or cover.get("uploader"),
        "video_id": video.get("id"), "video_url": video.get("webpage_url"), "video_title": video.get("title"),
        "match_score": (work.match or {}).get("score"),
        "cover_duration_s": duration_s(work), "video_duration_s": video.get("duration"),
        "n_notes": len(work.notes), "genre": work.genre, "midi_path": midi_path,
        "tempo_bpm": work.tempo_bpm, "video_tempo_bpm": work.video_tempo_bpm,
        "key_tonic": work.key.tonic if work.key else None, "key_mode": work.key.mode if work.key else None,
        "key_confidence": work.key.confidence if work.key else None,
        "transcriber": work.transcriber, "provenance": json.dumps(work.provenance, sort_keys=True),
    }


def beat_rows(work: SongWork) -> list[dict]:
    return [{"song_id": work.song_id, "time_s": b.time_s, "bar": b.bar, "beat_in_bar": b.beat_in_bar}
            for b in work.beats]


def chord_rows(work: SongWork) -> list[dict]:
    return [{"song_id": work.song_id, "start_s": c.start_s, "end_s": c.end_s, "bar": c.bar, "position": c.position,
             "root": c.root, "quality": c.quality, "bass": c.bass} for c in work.chords]


def key_window_rows(work: SongWork) -> list[dict]:
    return [{"song_id": work.song_id, "bar_start": k.bar_start, "bar_end": k.bar_end, "start_s": k.start_s,
             "end_s": k.end_s, "key_tonic": k.tonic, "key_mode": k.mode, "key_confidence": k.confidence,
             "key_margin": k.margin} for k in work.key_windows]


def video_feature_row(work: SongWork) -> dict:
    return work.video_features.to_row(work.song_id, work.video.id)


def set_video_tempi(works: list[SongWork]) -> dict:
    """Paper sec. 4.1: map each video's mean motion linearly from the dataset's [min, max] to 90-130 BPM.

    min/max are the 2nd/98th percentiles of the per-video means of this build (robust to one outlier);
    with fewer than 3 videos there is no range to speak of and the documented default range is used.
    """
    from annotators.video import DEFAULT_MOTION_RANGE, motion_range, motion_tempo_bpm

    works = [w for w in works if w.video_features is not None]
    means = [w.video_features.motion_mean for w in works]
    lo, hi = motion_range(means) if len(means) >= 3 else DEFAULT_MOTION_RANGE
    source = "build percentiles 2/98" if len(means) >= 3 and hi > lo else "default range"
    if not hi > lo:
        lo, hi = DEFAULT_MOTION_RANGE
    for w in works:
        w.video_tempo_bpm = motion_tempo_bpm(w.video_features.motion_mean, lo, hi)
        w.provenance["video_tempo"] = f"motion [{lo:.5f}, {hi:.5f}] ({source}) -> [90, 130] BPM"
    return {"motion_min": lo, "motion_max": hi, "source": source}


def match_row(work: SongWork) -> dict:
    from symmv.matching.matcher import MatchDecision, match_row as decision_row

    return decision_row(work.cover.id, MatchDecision.from_dict(work.match))


def note_rows(work: SongWork) -> list[dict]:
    return [{"song_id": work.song_id, "track": n.track, "onset_s": n.onset_s, "offset_s": n.offset_s,
             "pitch": n.pitch, "velocity": n.velocity, "bar": n.bar, "position": n.position,
             "duration_16th": n.duration_16th} for n in work.notes]


def reject_row(reject: Reject) -> dict:
    return {"item_id": reject.item_id, "stage": reject.stage, "reason": reject.reason, "detail": reject.detail}
