"""The build's stages, declared once (the contract: symmv.pipeline.contract): what each reads, writes and
emits. The batch runner loops over `PIPELINE.stages` and knows nothing of them; the run order, the stages each
key chains to, the rows of every table and the columns of `songs` all come from these declarations.

Adding a field is its annotator function plus one declaration: the stage that computes it lists it in
`writes` (with its type), and, when it is a songs column, in `columns` (and the column in the songs schema,
symmv.core.schema). A stage that needs it lists it in `reads`; the order follows.
"""
from __future__ import annotations

import json

from annotators.alignment import Alignment
from annotators.chords import Chord
from annotators.key import KeyEstimate
from annotators.video import VideoFeatures
from symmv.core.records import Beat, MediaItem, Note
from symmv.core.schema import SONGS
from symmv.matching.titles import ParsedTitle
from symmv.pipeline import stages as S
from symmv.pipeline.cache import digest
from symmv.pipeline.contract import ListOf, Pipeline, Stage


def _cover_info(song, ctx) -> dict:
    return {"info": json.dumps(song.cover.info, sort_keys=True, default=str), "paired": song.cover.paired_video,
            "midi": ctx.source.is_midi(song.cover)}


def _candidates(song, ctx) -> dict:
    return {**_cover_info(song, ctx), "candidates": digest(ctx.videos.identity(ctx.content_hash))}


def _video(song, ctx) -> dict:
    return {"video": song.video.id if song.video else None, "video_sha256": song.video_sha256,
            "midi": ctx.source.is_midi(song.cover)}


def _qc_classifier_path() -> str:
    from annotators.music_qc import CLASSIFIER_PATH

    return str(CLASSIFIER_PATH)


def _key(song, field: str):
    return getattr(song.key, field) if song.key else None


STAGES: list[Stage] = [
    Stage("measure", S.measure_cover, reads=("cover",), writes={"cover_duration_s": float | None},
          columns={"cover_duration_s": lambda s: s.cover_duration_s},
          config=("max_cover_s", "min_cover_s"), code=("symmv.io.media", "symmv.io.midi"), inputs=_cover_info),
    Stage("match", S.parse_and_match, reads=("cover", "cover_duration_s"),
          writes={"parsed": ParsedTitle | None, "match": dict | None, "video": MediaItem | None, "video_sha256": str},
          rows={"matches": S.match_rows},
          columns={"song": lambda s: s.parsed.song if s.parsed else None,
                   "artist": lambda s: s.parsed.artist if s.parsed else None,
                   "video_id": lambda s: s.video.info.get("id") if s.video else None,
                   "video_url": lambda s: s.video.info.get("webpage_url") if s.video else None,
                   "video_title": lambda s: s.video.info.get("title") if s.video else None,
                   "match_score": lambda s: (s.match or {}).get("score")},
          config=("match_threshold", "search_results", "source"),
          code=("symmv.matching.matcher", "symmv.matching.titles"), inputs=_candidates,
          provenance=(("match", "songs.video_id / video_url / video_title / match_score, `matches`"),)),
    Stage("metadata", S.look_up_metadata, reads=("cover", "song_id"),
          writes={"genre": str | None, "metadata": dict | None},
          rows={"metadata": S.one_row("metadata")}, columns={"genre": lambda s: s.genre},
          config=("shazam",), code=("symmv.matching.metadata",), inputs=_cover_info,
          provenance=(("genre", "songs.genre"),)),
    Stage("video", S.extract_video_features, reads=("cover", "video", "video_sha256", "cover_duration_s"),
          writes={"video_features": VideoFeatures | None},
          rows={"video_features": S.video_feature_rows},
          columns={"video_duration_s": lambda s: s.video_features.duration_s if s.video_features is not None else None},
          config=("semantic_encoder", "video_fps", "semantic_stride"),
          code=("annotators.video", "annotators.quality", "symmv.features.video", "symmv.io.video"), inputs=_video,
          versions=lambda cfg, h: {"encoder": S.encoder_version(cfg)},
          provenance=(("video_features", "`video_features` color / motion / shot_boundaries_s"),
                      ("semantic", "video_features.semantic"),
                      ("video_tempo", "songs.video_tempo_bpm (motion -> 90-130 BPM over the build's motion range)"))),
    Stage("alignment", S.align_to_video, reads=("cover", "video", "video_sha256", "song_id"), writes={"alignment": Alignment | None},
          rows={"alignment": S.one_row("alignment")},
          config=("align", "min_alignment_confidence"), code=("annotators.alignment", "symmv.io.audio"), inputs=_video,
          provenance=(("alignment", "`alignment`: cover time -> official-video time, confidence"),)),
    Stage("transcribe", S.transcribe_cover, reads=("cover",), writes={"raw_notes": ListOf(Note), "transcriber": str},
          columns={"transcriber": lambda s: s.transcriber}, code=("symmv.transcription.events",),
          versions=lambda cfg, h: S.transcriber_identity(cfg, h),
          provenance=(("notes", "`notes` onset_s / offset_s / pitch / velocity, songs.n_notes, the MIDI files"),)),
    Stage("music_qc", S.check_music, reads=("cover", "song_id", "raw_notes"), writes={"music_qc": dict | None},
          rows={"music_qc": S.one_row("music_qc")}, config=("qc_min_duration_s",),
          code=("annotators.music_qc", "symmv.io.audio"), inputs=_cover_info,
          versions=lambda cfg, h: {"classifier": h(_qc_classifier_path())},
          provenance=(("music_qc", "`music_qc`: what the music/audio quality filters measured"),)),
    Stage("rhythm", S.track_rhythm, reads=("cover", "raw_notes"),
          writes={"beats": ListOf(Beat), "tempo_bpm": float | None, "meter": int | None},
          rows={"beats": S.beat_rows}, columns={"tempo_bpm": lambda s: s.tempo_bpm, "meter": lambda s: s.meter},
          code=("annotators.beats", "symmv.io.audio"),
          versions=lambda cfg, h: {"tracker": S.beat_tracker_version(cfg)},
          provenance=(("beats", "`beats`, songs.tempo_bpm / meter"),)),
    Stage("symbolic", S.annotate_symbolic, reads=("raw_notes", "beats"),
          writes={"notes": ListOf(Note), "chords": ListOf(Chord), "key": KeyEstimate | None,
                  "key_windows": ListOf(KeyEstimate)},
          rows={"notes": S.note_rows, "chords": S.chord_rows, "key_windows": S.key_window_rows},
          columns={"n_notes": lambda s: len(s.notes), "key_tonic": lambda s: _key(s, "tonic"),
                   "key_mode": lambda s: _key(s, "mode"), "key_confidence": lambda s: _key(s, "confidence")},
          code=S.SYMBOLIC_ANNOTATORS,
          provenance=(("quantize", "notes.bar / position / duration_16th"), ("skyline", "notes.track (melody / accompaniment)"),
                      ("chords", "`chords`"), ("key", "songs.key_tonic / key_mode / key_confidence, `key_windows`"))),
]

# songs columns that no stage computes: what discovery knows, what the writer decides, the final pass's.
SONG_COLUMNS = {
    "song_id": lambda s: s.song_id, "cover_title": lambda s: s.cover.title, "cover_id": lambda s: s.cover.id,
    "cover_url": lambda s: s.cover.info.get("webpage_url"),
    "cover_channel": lambda s: s.cover.info.get("channel") or s.cover.info.get("uploader"),
    "midi_path": lambda s: f"midi/{s.song_id}.mid",
    "video_tempo_bpm": lambda s: None,  # the final pass sets it from the dataset's motion range
    "provenance": lambda s: None,  # the runner writes the stages' provenance notes
}

# Tables also written for a refused song (under split=rejected): the matcher's audit trail.
AUDIT_TABLES = ("matches",)

PIPELINE = Pipeline(STAGES, SONG_COLUMNS, SONGS.names)
STAGE_NAMES = PIPELINE.names


def provenance_fields() -> dict[str, str]:
    """songs.provenance key -> the fields its producer made, in stage order (for the data card)."""
    return {key: text for stage in PIPELINE.stages for key, text in stage.provenance}
