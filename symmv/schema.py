"""Arrow schemas of the SymMV tables, declared once and versioned.

Every table is stored as Hive-partitioned Parquet (`<root>/<table>/split=<split>/part-*.parquet`); the
`split` partition column is not stored inside the files, the reader adds it back. `rejects` lives under
`split=rejected`. Bump SCHEMA_VERSION on any incompatible change; it is written into each file's
metadata and checked by the reader.
"""
from __future__ import annotations

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

# Declared next to the code that produces them (STYLE: schema beside the annotator), collected here.
from annotators.beats import BEAT_SCHEMA as BEATS  # noqa: E402  madmom beats/downbeats
from annotators.chords import CHORD_SCHEMA as CHORDS  # noqa: E402  chords per beat, merged
from annotators.key import KEY_WINDOW_SCHEMA as KEY_WINDOWS  # noqa: E402  windowed keys (modulations)
from annotators.video import VIDEO_FEATURES  # noqa: E402  semantic / color / motion on one timeline
from symmv.matching import MATCH_SCHEMA as MATCHES  # noqa: E402  the matcher's audit trail, one row per cover
from symmv.metadata import METADATA_SCHEMA as METADATA  # noqa: E402  ShazamIO genre/lyrics per song

TABLES: dict[str, pa.Schema] = {
    "songs": SONGS,
    "notes": NOTES,
    "beats": BEATS,
    "chords": CHORDS,
    "key_windows": KEY_WINDOWS,
    "video_features": VIDEO_FEATURES,
    "matches": MATCHES,
    "metadata": METADATA,
    "rejects": REJECTS,
}

SPLITS = ("train", "val", "test")
REJECTED_SPLIT = "rejected"
