"""The card's text, one function per section: YAML header (Hugging Face `configs:`), summary, tables, splits,
genres, figures, provenance, accuracy, alignment, rejects, licenses, limitations, usage."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from symmv.card import BUILD_ACCURACY_JSON, PLOT_FILES
from symmv.card.plots import plot_bpm_density, plot_chord_distribution, plot_semantic_tsne
from symmv.card.reading import Build, _known, genre_of, genre_order, ordered_splits, table_names
from symmv.core import settings
from symmv.core.schema import DESCRIPTIONS
from symmv.pipeline.registry import provenance_fields

CARD_VERSION = "symmv-card 1"
LICENSE = "cc-by-nc-sa-4.0"
ANNOTATOR_EVAL_JSON = settings.BENCH_RESULTS / "eval_annotators.json"
NOT_AVAILABLE = "not available in this build"

# songs.provenance maps a producing stage to "<name> <version>" (symmv.pipeline.stages); what each stage fills in.
PROVENANCE_FIELDS = provenance_fields()  # declared by each stage in symmv.pipeline.registry

TABLE_PURPOSE = DESCRIPTIONS  # declared with each table (symmv.core.schema)

CITATION = """@inproceedings{zhuo2023video,
  title     = {Video Background Music Generation: Dataset, Method and Evaluation},
  author    = {Zhuo, Le and Wang, Zhaokai and Wang, Baisen and Liao, Yue and Bao, Chenxi and Peng, Stanley
               and Han, Songhao and Zhang, Aixi and Fang, Fei and Liu, Si},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2023}
}"""



def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h ({seconds / 60:.1f} min)"


SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"))


def size_category(n: int) -> str:
    """Hugging Face size_categories bucket for n examples (songs)."""
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "n>1B")


# ---------------------------------------------------------------- YAML header

def _yaml_scalar(value) -> str:
    # JSON strings are valid YAML double-quoted scalars; plain words stay unquoted for readability.
    text = str(value)
    return text if text.replace("-", "").replace("_", "").isalnum() else json.dumps(text)


def yaml_header(build: Build, name: str) -> str:
    n_songs = len(build.songs)
    lines = ["---", f"pretty_name: {_yaml_scalar(f'SymMV ({name})')}", f"license: {LICENSE}",
             "task_categories:", "- other", "size_categories:", f"- {_yaml_scalar(size_category(n_songs))}",
             "tags:"]
    lines += [f"- {t}" for t in ("music", "symbolic-music", "midi", "piano", "music-video", "video",
                                 "video-to-music", "background-music-generation", "chords", "symmv")]
    configs = [(t, ordered_splits(build.row_counts[t])) for t in table_names(build.root) if build.has(t)]
    if configs:
        lines.append("configs:")
    for table, splits in configs:
        lines.append(f"- config_name: {table}")
        if table == "songs":
            lines.append("  default: true")
        lines.append("  data_files:")
        for split in splits:
            if build.rows(table, split):
                lines += [f"  - split: {split}", f"    path: {_yaml_scalar(f'{table}/split={split}/part-*.parquet')}"]
    lines.append("---")
    return "\n".join(lines)


# ---------------------------------------------------------------- prose sections

def section_summary(build: Build, name: str) -> str:
    songs = build.songs
    music_s = float(songs["cover_duration_s"].fillna(0).sum()) if len(songs) else 0.0
    video_s = float(songs["video_duration_s"].fillna(0).sum()) if len(songs) else 0.0
    n_notes = build.rows("notes") if build.has("notes") else int(songs["n_notes"].fillna(0).sum()) if len(songs) else 0

    def count(table: str) -> str:
        return f"{build.rows(table):,}" if build.has(table) else f"{NOT_AVAILABLE} (no `{table}` table)"

    rows = [
        ["Songs (piano cover + official video pairs)", f"{len(songs):,}"],
        ["Music (piano cover audio)", hours(music_s)],
        ["Official videos", hours(video_s)],
        ["Notes", f"{n_notes:,}"],
        ["Beats", count("beats")],
        ["Chords", count("chords")],
        ["Key windows", count("key_windows")],
        ["Videos with features", count("video_features")],
        ["Rejected items", f"{build.rows('rejects'):,}"],
    ]
    return "\n".join([
        "## Dataset summary", "",
        f"`{name}` is a build of SymMV, the video + symbolic music dataset of *Video Background Music Generation: "
        "Dataset, Method and Evaluation* (Zhuo et al., ICCV 2023): piano covers of songs, transcribed to notes and "
        "annotated with beats, chords and keys, each paired with the song's official music video and per-frame "
        "video features. It was produced by the open `symmv` toolkit; this card is generated from the build "
        f"itself ({CARD_VERSION}).", "",
        md_table(["", "Size"], rows),
    ])


def section_tables(build: Build) -> str:
    rows = []
    for table in table_names(build.root):
        counts = build.row_counts.get(table, {})
        where = ", ".join(f"{s}: {counts[s]:,}" for s in ordered_splits(counts)) if build.has(table) else NOT_AVAILABLE
        rows.append([f"`{table}`", TABLE_PURPOSE.get(table, ""), f"{build.rows(table):,}", where])
    return "\n".join([
        "## Tables", "",
        "Hive-partitioned Parquet, `<table>/split=<split>/part-*.parquet`; the `split` column is the partition "
        "(rejected items live under `split=rejected`). Columns and types: `symmv/core/schema.py`.", "",
        md_table(["Table", "Contents", "Rows", "Rows per split"], rows),
    ])


def section_splits(build: Build) -> str:
    songs = build.songs
    if not len(songs):
        return f"## Splits\n\nSongs: {NOT_AVAILABLE}."
    rows = []
    for split in ordered_splits(songs["split"].unique()):
        s = songs[songs["split"] == split]
        rows.append([split, f"{len(s):,}", f"{s['cover_duration_s'].fillna(0).sum() / 3600:.2f}",
                     f"{s['video_duration_s'].fillna(0).sum() / 3600:.2f}",
                     f"{build.rows('notes', split):,}" if build.has("notes") else "-",
                     f"{build.rows('beats', split):,}" if build.has("beats") else "-",
                     f"{build.rows('chords', split):,}" if build.has("chords") else "-",
                     f"{build.rows('video_features', split):,}" if build.has("video_features") else "-"])
    return "\n".join([
        "## Splits", "",
        "Songs are split by official video (`symmv.core.split`), so the same video never appears in two splits "
        "(the paper: 1000 / 70 / 70 pairs).", "",
        md_table(["Split", "Songs", "Music h", "Video h", "Notes", "Beats", "Chords", "Video features"], rows),
    ])


def meter_line(songs: pd.DataFrame) -> str:
    """How many songs have each meter (songs.meter: the beats per bar the beat tracker chose)."""
    meters = songs["meter"].dropna().astype(int) if "meter" in songs.columns else pd.Series(dtype=int)
    if not len(meters):
        return f"Meter: {NOT_AVAILABLE} (`songs.meter` is empty: no beat tracking, or a build before it)."
    counts = meters.value_counts().sort_index()
    parts = ", ".join(f"{n:,} in {m} beats per bar" for m, n in counts.items())
    return (f"Meter (beats per bar, `songs.meter`; bars and 16th positions in `notes`, `chords` and `beats` follow "
            f"it): {parts}.")


def section_genres(build: Build) -> str:
    songs = build.songs
    if not len(songs):
        return f"## Genres\n\n{NOT_AVAILABLE}."
    genre = genre_of(songs)
    tempo = songs.set_index("song_id")["tempo_bpm"] if "tempo_bpm" in songs.columns else None
    splits = ordered_splits(songs["split"].unique())
    split_of = songs.set_index("song_id")["split"]
    rows = []
    counts = genre.value_counts()
    for g in genre_order(songs):
        n = counts[g]
        ids = genre.index[genre.to_numpy() == g]
        bpm = tempo.loc[ids].dropna() if tempo is not None else pd.Series(dtype=float)
        per_split = split_of.loc[ids].value_counts()
        rows.append([g, f"{n:,}", f"{n / len(songs):.1%}", *[f"{int(per_split.get(s, 0)):,}" for s in splits],
                     f"{bpm.median():.1f}" if len(bpm) else "-"])
    text = ["## Genres", "", md_table(["Genre", "Songs", "Share", *splits, "Median BPM"], rows)]
    text += ["", meter_line(songs)]
    keyed = _known(_known(songs, "key_tonic"), "key_mode")
    if len(keyed):
        from annotators.stats import key_distribution

        keys = key_distribution(songs)
        modes = keyed["key_mode"].value_counts()
        top = ", ".join(f"{k} ({n})" for k, n in zip(keys["key"][:5], keys["n_songs"][:5]))
        text += ["", f"Tonality (Krumhansl-Schmuckler, paper sec. 3.2): {int(modes.get('major', 0))} major, "
                     f"{int(modes.get('minor', 0))} minor; most common keys: {top}."]
    else:
        text += ["", f"Tonality: {NOT_AVAILABLE} (songs.key_tonic / key_mode are empty)."]
    return "\n".join(text)


def _provenance_rows(songs: pd.DataFrame) -> list[list]:
    counts: dict[tuple[str, str], int] = {}
    for raw in songs["provenance"].dropna() if "provenance" in songs.columns else []:
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError:
            entries = {"(unparseable provenance)": raw[:80]}
        for stage, producer in entries.items():
            producer = producer if isinstance(producer, str) else json.dumps(producer, sort_keys=True)
            counts[(stage, producer)] = counts.get((stage, producer), 0) + 1
    order = list(PROVENANCE_FIELDS)
    keyed = sorted(counts.items(), key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else len(order),
                                                   kv[0][0], -kv[1], kv[0][1]))
    rows, previous = [], None
    for (stage, producer), n in keyed:  # a stage with several producers: name it and its fields once
        fields = PROVENANCE_FIELDS.get(stage, "(not described by this card version)")
        rows.append([f"`{stage}`" if stage != previous else "", fields if stage != previous else "",
                     f"`{producer}`", f"{n:,}"])
        previous = stage
    return rows


def _count_rows(values: pd.Series) -> list[list]:
    counts = values.fillna("(none)").value_counts()
    return [[f"`{v}`", f"{n:,}"] for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def section_provenance(build: Build) -> str:
    songs = build.songs
    text = ["## Provenance", "",
            "Every song row carries `provenance`, a JSON object from producing stage to the backend / model / "
            "version that produced its fields, and `transcriber`, the transcription backend of its notes. "
            "Counts are songs.", ""]
    rows = _provenance_rows(songs) if len(songs) else []
    text.append(md_table(["Stage", "Fields", "Producer", "Songs"], rows) if rows else f"Provenance: {NOT_AVAILABLE}.")
    if len(songs) and "transcriber" in songs.columns:
        text += ["", "Notes transcribed by:", "", md_table(["Transcriber", "Songs"], _count_rows(songs["transcriber"]))]
    if len(build.video):
        text += ["", "Video features:", "",
                 md_table(["Semantic encoder", "Videos"], _count_rows(build.video["semantic_encoder"]))]
        if build.video["annotator"].notna().any():
            text += ["", md_table(["Video feature extractor", "Videos"], _count_rows(build.video["annotator"]))]
    if len(build.matches) and "matcher_version" in build.matches.columns:
        text += ["", "Official-video matching (`matches`, all covers including rejected ones):", "",
                 md_table(["Matcher", "Covers"], _count_rows(build.matches["matcher_version"]))]
    text += ["", "Fields without a provenance entry: `cover_*` and `video_title` are the source's yt-dlp `info.json` "
                 "metadata as downloaded; the durations are measured (the cover's with ffprobe, or the end of its last "
                 "note for MIDI sources; the video's from its decoded frames); `song` / `artist` are parsed from the cover title "
                 "(`symmv.matching.titles`); `split` is assigned by `symmv.core.split`; `midi_path` is the build's MIDI "
                 "rendering of `notes`."]
    return "\n".join(text)


def section_licenses(build: Build) -> str:
    lines = [
        "## Licenses", "",
        f"This build is distributed under **CC BY-NC-SA 4.0** (`{LICENSE}`): non-commercial research use, with "
        "attribution, derivatives under the same terms. The components:", "",
        "- **The SymMV release** (Zhuo et al., `zhuole1025/SymMV`: transcribed piano covers, chord and tonality "
        "labels) is licensed CC BY-NC-SA 4.0; anything derived from it inherits that license.",
        "- **madmom's pretrained models** (RNN beat / downbeat tracking, paper sec. 3.2) are licensed "
        "CC BY-NC-SA 4.0 (madmom's source code is BSD); where the `beats` producer in the provenance table is "
        "madmom, the beats, downbeats and tempo are derived from those models under those terms.",
        "- **music21 corpus pieces** (used by the offline demo corpus, `symmv demo-corpus`) are public-domain "
        "works.",
        "- **Audio and video are not redistributed**: the cover recordings and official videos stay with their "
        "owners on their platforms; the dataset holds their ids / URLs, the transcribed notes and derived features.",
    ]
    if build.has("metadata"):
        lines.append("- **Lyrics** in `metadata` are copyrighted texts returned by Shazam; share them only where "
                     "you hold the right to.")
    return "\n".join(lines)


def _transposition_text(aligned: pd.DataFrame) -> str:
    """One sentence: how many covers are played in another key than their video (the aligner searches the
    cover's key shift and aligns in it; `transposition_semitones`, null in builds before alignment version 3)."""
    shifts = aligned["transposition_semitones"].dropna().astype(int) if "transposition_semitones" in aligned else pd.Series(dtype=int)
    if not len(shifts):
        return "No transposition was measured in this build (alignment before version 3)."
    moved = shifts[shifts != 0]
    counts = ", ".join(f"{k:+d}: {v:,}" for k, v in moved.value_counts().sort_index().items())
    return (f"{len(moved):,} of {len(shifts):,} aligned covers are played in another key than their video's soundtrack"
            + (f" (semitones: {counts})" if counts else "") + "; a pair that does not align in the video's key "
            "is searched in the other 11 and aligned in the best one (`transposition_semitones`, -5..+6; it must "
            "clear a stricter confidence threshold), so a transposed cover is aligned, not refused.")


def section_alignment(build: Build) -> str:
    """How many pairs were aligned to the video's own soundtrack, how well, and what the path says (the
    video's intro before the cover's music, the tempo ratio); the reasons of the unaligned ones."""
    text = ["## Cover <-> video alignment", ""]
    aligned, songs = build.alignment, build.songs
    refused = int((build.rejects["reason"] == "low_confidence").sum()) if len(build.rejects) else 0
    if len(aligned):
        confidence = aligned["confidence"].astype(float)
        paths = [(np.asarray(c, float), np.asarray(v, float)) for c, v in zip(aligned["cover_time_s"], aligned["video_time_s"])]
        intro_s = np.median([v[0] - c[0] for c, v in paths])
        ratio = [(v[-1] - v[0]) / (c[-1] - c[0]) for c, v in paths if len(c) >= 2 and c[-1] > c[0]]
        methods = ", ".join(sorted(aligned["method"].unique()))
        text += [f"{len(aligned):,} of {len(songs):,} songs are aligned to their official video's soundtrack "
                 f"(`alignment`: the video second of every 0.5 s of cover time; {methods}). Confidence median "
                 f"{confidence.median():.2f} (min {confidence.min():.2f}); {refused:,} pairs were refused as "
                 "`alignment:low_confidence` (their video's soundtrack is not the cover's piece, or not "
                 f"recognisably). The video's intro before the cover's first aligned second: median {intro_s:.1f} s"
                 + (f"; video/cover tempo ratio median {np.median(ratio):.3f} (range {min(ratio):.3f}-{max(ratio):.3f})."
                    if ratio else "."),
                 "", _transposition_text(aligned),
                 "", "Training and evaluation read music time through this path where a song has a row "
                 "(`models/timebase.py`: the chord stage's video window, the ground truth of beat alignment and "
                 "VMCP's segment pairs); elsewhere music second t is video second t, as in the paper."]
    else:
        text.append(f"No `alignment` rows in this build{f' ({refused:,} pairs refused as `alignment:low_confidence`)' if refused else ''}.")
    states = [json.loads(p).get("alignment") for p in songs["provenance"].dropna()] if "provenance" in songs else []
    unaligned = pd.Series([s for s in states if s and not str(s).startswith("align-")], dtype=object)
    if len(unaligned):
        text += ["", md_table(["Not aligned because", "Songs"], [[f"`{k}`", f"{v:,}"] for k, v in unaligned.value_counts().items()])]
    return "\n".join(text)


def section_rejects(build: Build) -> str:
    rejects = build.rejects
    if not len(rejects):
        return "## Rejected items\n\nNo item was rejected in this build." if "rejects" in build.row_counts or \
            (build.root / "rejects").is_dir() else f"## Rejected items\n\n`rejects`: {NOT_AVAILABLE}."
    rows = []
    grouped = rejects.groupby(["stage", "reason"], sort=True)["item_id"]
    for (stage, reason), ids in sorted(grouped, key=lambda kv: (-len(kv[1]), kv[0])):
        examples = ", ".join(f"`{i}`" for i in sorted(ids.astype(str))[:3])
        rows.append([f"`{stage}`", f"`{reason}`", f"{len(ids):,}", examples])
    return "\n".join(["## Rejected items", "",
                      f"{len(rejects):,} items were dropped; every one is a row of `rejects` (stage, reason, detail). "
                      "A per-item failure never stops the build.", "",
                      md_table(["Stage", "Reason", "Items", "Examples"], rows)])


def _flatten_metrics(data: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Nested eval JSON -> (path, {metric: number}) for every dict that holds numbers."""
    skip = {"machine", "wall_s", "items", "failures", "skipped", "annotators"}
    out, numbers = [], {}
    for key, value in data.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            out += _flatten_metrics(value, f"{prefix}{key} / ")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[key] = value
    return ([(prefix.rstrip(" /"), numbers)] if numbers and prefix else []) + out


def _metric(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"


def annotator_accuracy(extra: dict | None, root: Path | None = None) -> tuple[dict | None, str]:
    """The annotator evaluation to report: extra['annotator_accuracy'] (dict or JSON path), else the build's
    own (<root>/annotator_accuracy.json), else the bench file."""
    source = (extra or {}).get("annotator_accuracy")
    if isinstance(source, dict):
        return source, "passed to the card generator"
    own = Path(root) / BUILD_ACCURACY_JSON if root is not None else None
    path = Path(source) if source else (own if own is not None and own.is_file() else ANNOTATOR_EVAL_JSON)
    if path.is_file():
        repo = settings.REPO_ROOT
        shown = path.resolve().relative_to(repo) if path.resolve().is_relative_to(repo) else path.name
        return json.loads(path.read_text()), f"`{shown}` (written by `python -m symmv.evaluation.annotators`)"
    return None, ""


def chord_grid_note(build: Build, data: dict | None) -> str:
    """Which beat grid the `chords` table is on, why, and (when measured) what that costs against the
    release's labels."""
    trackers = sorted({json.loads(p).get("beats") for p in build.songs["provenance"].dropna()} - {None}) \
        if len(build.songs) and "provenance" in build.songs else []
    text = ("**Beat grid of the `chords` table.** One chord per beat of this build's `beats` table"
            + (f" ({', '.join(f'`{t}`' for t in trackers)})" if trackers else "")
            + ", the grid `notes.bar` / `position` are quantized on, so a chord and the notes under it share "
              "bar and position, which is how the models read them (chord tokens at bar/position). Not the "
              "SymMV release's own grid: its MIDI and chord files sit on a fixed 120-BPM clock (0.5 s per "
              "'beat') whatever the song's tempo, and an audio cover has no such grid at all.")
    tables = (data or {}).get("tables_as_written")
    if isinstance(tables, dict):
        built = tables.get("chords_on_build_beats_vs_release_chord_files", {})
        ref = tables.get("reference_grid_same_songs", {}).get("chords_vs_release_chord_files", {})
        keys, ref_keys = tables.get("keys_as_stored_vs_release_labels", {}), \
            tables.get("reference_grid_same_songs", {}).get("key_vs_release_labels", {})
        if built.get("n_beats") and ref.get("n_beats"):
            text += (f" Measured on {tables.get('n_songs')} songs of a release build (`tables_as_written` below): "
                     f"root+quality agreement with the release chord files {built['root_and_quality']:.3f} on this "
                     f"grid vs {ref['root_and_quality']:.3f} with the annotator re-run on the release's 0.5-s grid "
                     f"(roots {built['root']:.3f} vs {ref['root']:.3f}); the labels themselves are on that 0.5-s "
                     "grid, which favours the reference figure.")
        if keys.get("n") and ref_keys.get("n"):
            text += (f" Keys as stored in `songs`: exact {keys['exact']:.3f} vs the release labels "
                     f"({ref_keys['exact']:.3f} re-estimated from the release MIDI as it is; the stored key is "
                     "estimated on the quantized, skyline-split notes, which can tip a near-tie).")
    return text


def section_accuracy(extra: dict | None, build: Build | None = None) -> str:
    data, source = annotator_accuracy(extra, build.root if build is not None else None)
    grid = [chord_grid_note(build, data), ""] if build is not None and build.has("chords") else []
    if not data:
        return "\n".join(["## Annotator accuracy", "", *grid,
                          f"Annotator accuracy figures: {NOT_AVAILABLE} (no evaluation JSON found)."])
    text = ["## Annotator accuracy", "", *grid,
            f"Measured agreement of the annotators with reference labels, from {source}. Shares are in [0, 1]; "
            "`n` / `n_beats` is the number of items compared. The SymMV release's own labels are noisy "
            "(its chord boundaries lie on a fixed 0.5 s grid), so they are a reference, not ground truth.", ""]
    versions = data.get("annotators")
    if isinstance(versions, dict):
        text += [f"- `{k}`: {v}" for k, v in sorted(versions.items())] + [""]
    rows = []
    for path, numbers in _flatten_metrics(data):
        counts = {k: v for k, v in numbers.items() if isinstance(v, int)}
        shares = {k: v for k, v in numbers.items() if not isinstance(v, int)}
        rows.append([path, ", ".join(f"{k} {_metric(v)}" for k, v in counts.items()),
                     ", ".join(f"{k} {_metric(v)}" for k, v in shares.items())])
    text.append(md_table(["Comparison", "Compared", "Agreement"], rows) if rows else "(no numeric figures)")
    return "\n".join(text)


# Onset F1 of each transcription backend (by name) on rendered covers with known notes: 3 SymMV release covers
# / 2 music21 pieces, 25-29 s each (bench/results/transcription_speedup.json). Transkun is the CPU default
# (symmv.transcription.backends.default_backend) because it is both the most accurate and faster than realtime.
TRANSCRIBER_ONSET_F1 = {
    "transkun": "0.993 on the release covers, 0.998 on the music21 pieces (unmodified model: 0.999 / 0.999)",
    "basic-pitch": "0.854 / 0.852",
}


def section_limitations(build: Build, extra: dict | None, semantic_encoders: list[str]) -> str:
    songs = build.songs
    items = []
    transcribers = sorted(songs["transcriber"].dropna().unique()) if len(songs) else []
    items.append("Notes are automatic transcriptions of the cover audio"
                 + (f" ({', '.join(f'`{t}`' for t in transcribers)})" if transcribers else "")
                 + "; missed, extra and octave-shifted notes are not corrected by hand (the paper had three "
                   "musicians check every pair; this build did not).")
    measured = [f"`{name}` {TRANSCRIBER_ONSET_F1[name]}" for name in sorted({t.split()[0] for t in transcribers})
                if name in TRANSCRIBER_ONSET_F1]
    if measured:
        items.append("Transcription accuracy, measured on fluidsynth renders of SymMV release covers and music21 "
                     "pieces with known notes (onset F1, 50 ms, mir_eval; bench/bench_transcription.py): "
                     + "; ".join(measured) + ". Real recordings (room, other pianos) will score lower.")
    estimated = [what for present, what in (
        (build.has("beats"), "beats, tempo and meter come from a beat tracker (madmom's, the default, can only "
                             "choose 3 or 4 beats per bar; on the rhythm benchmark it has the meter of 38 % of the "
                             "pieces right, bench/results/beats.json)"),
        (build.has("chords"), "chords from a rule-based recogniser over the notes on each beat (chorder's rules)"),
        (len(_known(songs, "key_tonic")) > 0, "keys from Krumhansl-Schmuckler profiles")) if present]
    if estimated:
        items.append("Estimated, not hand-labelled: " + "; ".join(estimated) + ". See the accuracy figures above.")
    items.append("The official video is matched automatically from the parsed title and artist; a wrong match is "
                 "possible below a clear margin (see `matches`: score and runner-up score for every cover). The "
                 "cover and the video are separate recordings of the song, not guaranteed to be time-aligned.")
    missing = [t for t in ("beats", "chords", "key_windows", "video_features") if not build.has(t)]
    if missing:
        items.append("This build has no " + ", ".join(f"`{t}`" for t in missing)
                     + " table: the fields that depend on it are null and its statistics are absent from this card.")
    for column, what in (("genre", "genre"), ("tempo_bpm", "tempo"), ("key_tonic", "key")):
        if len(songs) and column in songs.columns and songs[column].isna().any():
            items.append(f"{int(songs[column].isna().sum()):,} of {len(songs):,} songs have no {what} "
                         f"(`songs.{column}` is null).")
    if semantic_encoders and not any("clip" in e.lower() for e in semantic_encoders):
        items.append(f"Semantic video features come from {', '.join(f'`{e}`' for e in semantic_encoders)}, not the "
                     "paper's 512-d CLIP features; the t-SNE plot is not directly comparable with Fig. 3(b).")
    if 0 < len(songs) < 100:
        items.append(f"With {len(songs)} songs the genre statistics and plots illustrate the pipeline; they are not "
                     "representative of the full dataset (the paper: 1140 pairs, 76.5 hours).")
    reported = build.report.get("songs")
    if reported is not None and reported != len(songs):
        items.append(f"build_report.json says {reported} songs but the `songs` table holds {len(songs)}: the "
                     "shards and the report come from different builds.")
    items += [str(x) for x in (extra or {}).get("limitations", [])]
    return "\n".join(["## Known limitations", ""] + [f"- {i}" for i in items])


def section_usage(build: Build, name: str) -> str:
    return "\n".join([
        "## Loading", "",
        "```python",
        "import symmv",
        f"notes = symmv.load(\"notes\", split=\"train\", root=\"data/{name}\")   # pandas, `split` column added",
        "",
        "import duckdb",
        f"duckdb.sql(\"SELECT split, count(*) FROM read_parquet('data/{name}/notes/*/*.parquet', "
        "hive_partitioning=true) GROUP BY split\")",
        "",
        "from datasets import load_dataset   # this README sits at the dataset root: every table is a config",
        f"notes = load_dataset(\"data/{name}\", \"notes\", split=\"train\")",
        f"songs = load_dataset(\"data/{name}\")   # the default config: songs, all splits",
        "```", "",
        "Browse one song (piano roll with chords and beats, rendered audio, video frames): "
        "`notebooks/browse_symmv.ipynb`.",
    ])


def section_figures(build: Build, card_dir: Path) -> str:
    text = ["## Data analysis (paper Fig. 3)", ""]
    songs = build.songs
    plots = []
    if not len(songs) or songs.get("tempo_bpm", pd.Series(dtype=float)).isna().all():
        plots.append(("bpm", "BPM density per genre", None, "songs.tempo_bpm is empty (no beat tracking)"))
    else:
        caption = plot_bpm_density(songs, card_dir / PLOT_FILES["bpm"])
        plots.append(("bpm", "BPM density per genre", caption, "no song has both a tempo and a genre"))
    caption, why = plot_semantic_tsne(build.video, songs, card_dir / PLOT_FILES["tsne"])
    plots.append(("tsne", "t-SNE of video semantic features by genre", caption, why))
    if not len(build.chords):
        plots.append(("chords", "Chord distribution per genre", None, "the `chords` table is absent or empty"))
    else:
        caption = plot_chord_distribution(build.chords, songs, card_dir / PLOT_FILES["chords"])
        plots.append(("chords", "Chord distribution per genre", caption,
                      "no song has chords, a key and a genre together"))
    for key, title, caption, why in plots:
        text.append(f"### {title}")
        text.append("")
        if caption:
            text += [f"![{title}]({PLOT_FILES[key]})", "", caption, ""]
        else:
            (card_dir / PLOT_FILES[key]).unlink(missing_ok=True)  # drop a stale plot of an earlier build
            text += [f"{title}: {NOT_AVAILABLE}: {why}.", ""]
    return "\n".join(text).rstrip()
