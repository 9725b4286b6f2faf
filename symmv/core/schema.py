"""Arrow schemas of the SymMV tables, declared once and versioned.

Every table is stored as Hive-partitioned Parquet (`<root>/<table>/split=<split>/part-*.parquet`); the
`split` partition column is not stored inside the files, the reader adds it back. `rejects` lives under
`split=rejected`. Bump SCHEMA_VERSION on any incompatible change; it is written into each file's
metadata and checked by the reader.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1"

SONGS = pa.schema(
    [
        ("song_id", pa.string()),  # stable id derived from the cover's source id
        ("cover_title", pa.string()),  # raw title of the piano cover as the source gave it
        ("song", pa.string()),  # parsed song title
        ("artist", pa.string()),  # parsed artist ("" when unknown)
        ("cover_id", pa.string()),
        ("cover_url", pa.string()),
        ("cover_channel", pa.string()),
        ("video_id", pa.string()),
        ("video_url", pa.string()),
        ("video_title", pa.string()),
        ("match_score", pa.float64()),  # official-video matcher score of the chosen video
        ("cover_duration_s", pa.float64()),
        ("video_duration_s", pa.float64()),
        ("n_notes", pa.int32()),
        ("tempo_bpm", pa.float64()),  # music tempo from the beat tracker (null until tracked)
        ("meter", pa.int8()),  # beats per bar the beat tracker chose (its most common bar length)
        ("video_tempo_bpm", pa.float64()),  # tempo from video motion, paper sec. 4.1 (null until computed)
        ("key_tonic", pa.int8()),  # 0 = C .. 11 = B (null until estimated)
        ("key_mode", pa.string()),  # "major" / "minor"
        ("key_confidence", pa.float64()),
        ("genre", pa.string()),  # from ShazamIO when available, else null
        ("midi_path", pa.string()),  # relative to the dataset root
        ("transcriber", pa.string()),  # "<backend> <version>" that produced the notes
        ("provenance", pa.string()),  # JSON: stage -> "<name> <version>" for every field's producer
    ]
)

NOTES = pa.schema(
    [
        ("song_id", pa.string()),
        ("track", pa.string()),  # "piano" (unsplit), "melody" or "accompaniment"
        ("onset_s", pa.float64()),
        ("offset_s", pa.float64()),
        ("pitch", pa.int8()),
        ("velocity", pa.int8()),
        ("bar", pa.int32()),  # quantized grid position (null until quantized)
        ("position", pa.int16()),  # 16th-note slot within the bar
        ("duration_16th", pa.int32()),
    ]
)

REJECTS = pa.schema(
    [
        ("item_id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)

# BEATS: produced by annotators.beats
# Rows of the `beats` table (symmv.core.schema.BEATS); song_id is added by the flow.
BEATS = pa.schema(
    [
        ("song_id", pa.string()),
        ("time_s", pa.float64()),
        ("bar", pa.int32()),
        ("beat_in_bar", pa.int8()),  # 1 = downbeat
    ]
)


# CHORDS: produced by annotators.chords
# symmv.core.schema.CHORDS plus `bass` (the bass pitch class chorder reports, -1 when no pitch is long enough).
CHORDS = pa.schema(
    [
        ("song_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("bar", pa.int32()),
        ("position", pa.int16()),
        ("root", pa.int8()),  # 0-11, -1 for N / X
        ("quality", pa.string()),  # one of QUALITIES, "N" or "X"
        ("bass", pa.int8()),  # 0-11, -1 when none
    ]
)


# KEY_WINDOWS: produced by annotators.key
# song-level keys go to symmv.core.schema.SONGS (key_tonic, key_mode, key_confidence); windowed keys to this table
KEY_WINDOWS = pa.schema(
    [
        ("song_id", pa.string()),
        ("bar_start", pa.int32()),
        ("bar_end", pa.int32()),  # exclusive
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("key_tonic", pa.int8()),
        ("key_mode", pa.string()),
        ("key_confidence", pa.float64()),
        ("key_margin", pa.float64()),
    ]
)


# VIDEO_FEATURES: produced by annotators.video
# Beyond the paper's three features, three columns: duration_s, text_score (lyric-video
# filter input), annotator (provenance of the non-semantic features and their parameters);
# semantic_encoder / semantic are null when no encoder was run.
VIDEO_FEATURES = pa.schema(
    [
        ("song_id", pa.string()),
        ("video_id", pa.string()),
        ("fps", pa.float64()),  # sampling rate of the per-frame series (paper: 6 fps)
        ("n_frames", pa.int32()),
        ("duration_s", pa.float64()),  # decoded duration, n_frames / fps
        ("semantic_encoder", pa.string()),  # "<name> <version>" of the semantic encoder
        ("semantic_dim", pa.int32()),
        ("semantic", pa.list_(pa.list_(pa.float32()))),  # (n_frames, semantic_dim)
        ("color_bins", pa.int32()),
        ("color", pa.list_(pa.list_(pa.float32()))),  # (n_frames, 3*color_bins*color_bins), RGB-uv
        ("text_score", pa.list_(pa.float32())),  # (n_frames,) thin-stroke fraction
        ("motion", pa.list_(pa.float32())),  # per-second mean RGB difference at 0.2 s intervals
        ("motion_mean", pa.float64()),
        ("shot_boundaries_s", pa.list_(pa.float64())),
        ("annotator", pa.string()),  # "symmv.video <version> <params json>"
    ]
)


# MATCHES: produced by symmv.matching.matcher
# One row per cover in the `matches` table: the decision plus its full audit trail as JSON text.
MATCHES = pa.schema([
    pa.field("cover_id", pa.string(), nullable=False),
    pa.field("video_id", pa.string()),  # null when no candidate passed
    pa.field("score", pa.float32()),
    pa.field("runner_up_id", pa.string()),
    pa.field("runner_up_score", pa.float32()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("query", pa.string()),
    pa.field("decision_json", pa.string(), nullable=False),
    pa.field("matcher_version", pa.string(), nullable=False),
])


# METADATA: produced by symmv.matching.metadata
# Per-song metadata columns (joined onto `songs` by the lead, or written as their own table).
METADATA = pa.schema([
    pa.field("song_id", pa.string(), nullable=False),
    pa.field("genre", pa.string()),
    pa.field("lyrics", pa.large_string()),
    pa.field("metadata_status", pa.string(), nullable=False),
    pa.field("metadata_error", pa.string()),
    pa.field("shazam_key", pa.string()),
    pa.field("shazam_title", pa.string()),
    pa.field("shazam_artist", pa.string()),
    pa.field("metadata_provider", pa.string(), nullable=False),
])


# MUSIC_QC: produced by annotators.music_qc (the QC stage, after transcription)
# The figures every music/audio quality filter looked at, and the verdict (null = kept).
MUSIC_QC = pa.schema(
    [
        ("song_id", pa.string()),
        ("duration_s", pa.float64()),
        ("n_notes", pa.int32()),
        ("silence_share", pa.float64()),
        ("longest_gap_s", pa.float64()),
        ("note_density_per_s", pa.float64()),
        ("pitch_span", pa.float64()),
        ("median_pitch", pa.float64()),
        ("polyphony_p95", pa.float64()),
        ("onsets_per_s_p95", pa.float64()),
        ("segment_start_s", pa.list_(pa.float32())),  # 5-s windows judged by the piano classifier
        ("segment_piano_probability", pa.list_(pa.float32())),
        ("non_piano_share", pa.float64()),
        ("qc_reason", pa.string()),  # too_short / non_piano / implausible / fragmented, null when kept
        ("qc_version", pa.string()),
    ]
)


# ALIGNMENT: produced by annotators.alignment (cover audio <-> the official video's own soundtrack)
ALIGNMENT = pa.schema(
    [
        ("song_id", pa.string()),
        ("cover_time_s", pa.list_(pa.float32())),  # every 0.5 s of the cover, from its first aligned frame
        ("video_time_s", pa.list_(pa.float32())),  # the video time each cover time maps to (monotone)
        ("confidence", pa.float64()),
        # the cover's key against the soundtrack's, -5..+6 semitones (null in builds before alignment version 3)
        ("transposition_semitones", pa.int8()),
        ("method", pa.string()),
    ]
)


@dataclass(frozen=True)
class Table:
    """One table of the dataset, declared once: its schema, the stable row order that makes its files
    byte-identical for the same inputs, and what it holds (the data card's table list). The stages that
    fill it declare their row makers in symmv.pipeline.registry."""

    name: str
    schema: pa.Schema
    sort_key: tuple[str, ...]
    description: str


DECLARED: tuple[Table, ...] = (
    Table("songs", SONGS, ("song_id",),
          "one row per cover / official-video pair: titles, ids, durations, tempo, key, genre, provenance"),
    Table("notes", NOTES, ("song_id", "onset_s", "pitch", "track"),
          "transcribed piano notes in seconds; bar / position / track once quantized and split by the skyline"),
    Table("beats", BEATS, ("song_id", "time_s"), "beats and downbeats from the cover audio"),
    Table("chords", CHORDS, ("song_id", "start_s"),
          "one chord per beat span, merged (10 qualities, N = no chord, X = unknown)"),
    Table("key_windows", KEY_WINDOWS, ("song_id", "bar_start"), "windowed key estimates (modulations)"),
    Table("video_features", VIDEO_FEATURES, ("song_id",),
          "per-frame semantic and color features, motion series and shot boundaries of the video"),
    Table("matches", MATCHES, ("cover_id",), "the official-video matcher's decision for every cover (audit trail)"),
    Table("metadata", METADATA, ("song_id",), "ShazamIO genre / lyrics lookups"),
    Table("music_qc", MUSIC_QC, ("song_id",),
          "what the music/audio quality filters measured per cover (piano share, gaps, density, range)"),
    Table("alignment", ALIGNMENT, ("song_id",),
          "cover time -> official-video time (every 0.5 s), its confidence and the cover's transposition against "
          "the video (on by default; --no-align)"),
    Table("rejects", REJECTS, ("item_id", "stage"), "items dropped by a stage, with the stage, reason and detail"),
)

TABLES: dict[str, pa.Schema] = {t.name: t.schema for t in DECLARED}
SORT_KEYS: dict[str, list[str]] = {t.name: list(t.sort_key) for t in DECLARED}
DESCRIPTIONS: dict[str, str] = {t.name: t.description for t in DECLARED}

SPLITS = ("train", "val", "test")
REJECTED_SPLIT = "rejected"
