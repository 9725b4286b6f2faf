"""The build's steps around the batches: check the config, discover covers, cut batches, publish.

flows/build.py wires these into the Prefect DAG; a plain loop over the same functions builds the same
dataset (bench/bench_build_scale.py measures both).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from symmv.core.errors import BuildAborted, ConfigError
from symmv.core.records import MediaItem, Reject
from symmv.pipeline import stages as S
from symmv.pipeline.cache import digest
from symmv.pipeline.config import BuildConfig
from symmv.pipeline.writer import BATCHES, own, publish

# yt-dlp info.json keys that can be megabytes and that no stage reads: dropped at discovery, so the parent
# flow holds a few hundred bytes per cover even for a 100k-cover crawl.
HEAVY_INFO_KEYS = ("formats", "requested_formats", "thumbnails", "automatic_captions", "subtitles", "heatmap",
                   "requested_downloads", "http_headers", "fragments", "requested_subtitles")


def validate(cfg: BuildConfig) -> None:
    """Every name and path the build will use, checked before any song is processed (ConfigError; OSError for
    a cache or card folder that cannot be written)."""
    from symmv.features.encoders import ENCODERS
    from symmv.pipeline.runners import RUNNERS
    from symmv.pipeline.sources import SOURCES, get_source
    from symmv.transcription.backends import BACKENDS, get_backend

    def choose(what: str, value: str, known) -> None:
        if value not in known:
            raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(sorted(known))}")

    choose("source", cfg.source, SOURCES)
    transcriber = S.transcriber_name(cfg)
    choose("transcriber", transcriber, BACKENDS)
    choose("beat tracker", S.beat_tracker_name(cfg), S.BEAT_TRACKERS)
    choose("semantic encoder", cfg.semantic_encoder, [*ENCODERS, "none"])
    choose("task runner", cfg.task_runner, RUNNERS)
    get_source(cfg.source).validate(cfg)
    if not 0 <= cfg.val_fraction + cfg.test_fraction < 1 or min(cfg.val_fraction, cfg.test_fraction) < 0:
        raise ConfigError("--val-fraction and --test-fraction must be >= 0 and sum to less than 1")
    if cfg.batch_size < 1 or cfg.workers < 1:
        raise ConfigError("--batch-size and --workers must be >= 1")
    if not 0 < cfg.max_reject_fraction <= 1:
        raise ConfigError("--max-reject-fraction must be in (0, 1]")
    if not 0 <= cfg.min_accept_fraction <= 1:
        raise ConfigError("--min-accept-fraction must be in [0, 1]")
    for folder in filter(None, (cfg.cache_dir, cfg.card_dir)):  # before seconds of model loading (--out: BuildLock writes first)
        writable(Path(folder))
    try:
        get_backend(transcriber)  # loads the model once: a missing checkpoint fails here, not per song
    except (FileNotFoundError, ImportError, RuntimeError) as exc:
        raise ConfigError(f"transcriber {transcriber!r} cannot start: {exc}") from exc


def writable(folder: Path) -> None:
    """Create `folder` and a file in it: a read-only, forbidden or full disk fails now, as an OSError that the
    CLI shows as `cannot write <folder>: <reason>`, not after the first hour of transcription."""
    probe = folder / f".tmp-writable-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"symmv")
        probe.unlink()
    except OSError as exc:  # named by the folder the user chose, not by the probe file
        raise OSError(exc.errno, exc.strerror, str(folder)) from exc


def discover_covers(cfg: BuildConfig) -> tuple[list[MediaItem], list[Reject]]:
    """The covers of the source (trimmed of heavy info keys) and a Reject per broken item."""
    from symmv.pipeline.sources import get_source

    covers, rejects = get_source(cfg.source).discover(cfg)
    light = [MediaItem(c.id, c.media_path, {k: v for k, v in c.info.items() if k not in HEAVY_INFO_KEYS},
                       c.paired_video) for c in covers]
    return light, rejects


def make_batches(covers: list[MediaItem], cfg: BuildConfig) -> list[list[MediaItem]]:
    """Consecutive runs of the id-sorted covers, at most `batch_size` each, and at least one batch per
    worker when there are enough covers (a 20-song demo on 2 workers runs as 2 batches of 10)."""
    if not covers:
        return []
    size = max(1, min(cfg.batch_size, math.ceil(len(covers) / cfg.workers)))
    return [covers[i: i + size] for i in range(0, len(covers), size)]


def check_accepted(cfg: BuildConfig, summary: dict) -> None:
    """--min-accept-fraction, before publishing: BuildAborted when too few covers became songs.

    Share = songs / (songs + rejected covers); broken candidate videos (`discover_videos:*`) are no covers.
    """
    if not cfg.min_accept_fraction:
        return
    reasons = summary["reject_reasons"]
    rejected = summary["rejects"] - sum(n for r, n in reasons.items() if r.startswith("discover_videos:"))
    covers = summary["songs"] + rejected
    share = summary["songs"] / covers if covers else 0.0
    if share < cfg.min_accept_fraction:
        top = ", ".join(f"{r} ({n})" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3]) or "none"
        raise BuildAborted(f"only {summary['songs']} of {covers} covers were accepted ({share:.0%} < "
                           f"--min-accept-fraction {cfg.min_accept_fraction:g}); nothing new was published, "
                           f"{cfg.out} keeps its previous build. Most rejected: {top}")


def record_outputs(cfg: BuildConfig, card_files: list[str]) -> None:
    """The report, log and card files (README.md, plots) this build wrote beside the tables, added to the
    manifest's owned files: the manifest names every file the build owns."""
    out = Path(cfg.out)
    own(out, [n for n in ("build_report.json", "build.log", *card_files) if (out / n).is_file()])


def finalize(cfg: BuildConfig, batch_keys: list[str], source_rejects: list[Reject]) -> dict:
    """The light final pass: the dataset's motion range -> songs.video_tempo_bpm, then publish.

    Reads only the `motion_mean` column of the batches' video features and their small songs parts.
    """
    out = Path(cfg.out)
    folders = [out / BATCHES / k for k in batch_keys]
    motion = {}
    for folder in folders:
        for path in folder.glob("video_features/split=*/part.parquet"):
            t = pq.read_table(path, columns=["song_id", "motion_mean"])
            motion.update(zip(t.column("song_id").to_pylist(), t.column("motion_mean").to_pylist()))
    lo, hi, source = S.motion_to_tempo(list(motion.values()))
    songs: dict[str, list[pa.Table]] = {}
    for folder in folders:
        for path in folder.glob("songs/split=*/part.parquet"):
            songs.setdefault(path.parent.name.split("=", 1)[1], []).append(pq.read_table(path))
    tempo_note = f"motion [{lo:.5f}, {hi:.5f}] ({source}) -> [90, 130] BPM"
    merged = {split: _with_video_tempo(pa.concat_tables(parts), motion, lo, hi, tempo_note)
              for split, parts in songs.items()}
    generation = digest({"batches": batch_keys, "rejects": [r.__repr__() for r in source_rejects],
                         "motion": [lo, hi]})
    from symmv.pipeline.stages import reject_row

    manifest = publish(out, batch_keys, merged, [reject_row(r) for r in source_rejects], generation)
    return {"motion_range": {"motion_min": lo, "motion_max": hi, "source": source},
            "generation": manifest["generation"]}


def _with_video_tempo(songs: pa.Table, motion: dict, lo: float, hi: float, note: str) -> pa.Table:
    from annotators.video import motion_tempo_bpm
    from symmv.core.shards import to_table

    rows = songs.to_pylist()
    for row in rows:
        m = motion.get(row["song_id"])
        if m is not None and m == m:
            row["video_tempo_bpm"] = motion_tempo_bpm(m, lo, hi)
            provenance = json.loads(row["provenance"])
            provenance["video_tempo"] = note
            row["provenance"] = json.dumps(provenance, sort_keys=True)
    return to_table("songs", rows)


def report_markdown(cfg: BuildConfig, summary: dict) -> str:
    """The build report as Markdown: counts, splits, reject reasons with an example each, stage times."""
    lines = [f"# build-symmv: {cfg.out}", "",
             f"**{summary['songs']} songs** ({summary['hours_music']} h of music), **{summary['rejects']} rejected**, "
             f"{summary['batches']} batches ({summary['batches_resumed']} resumed), {summary['wall_s']} s wall.", "",
             "| split | songs |", "| --- | ---: |"]
    lines += [f"| {s} | {n} |" for s, n in summary["splits"].items()]
    lines += ["", "| reject reason | items | example |", "| --- | ---: | --- |"]
    for reason, n in summary["reject_reasons"].items():
        example = summary["reject_examples"].get(reason, "").replace("|", "/")
        lines.append(f"| `{reason}` | {n} | {example[:160]} |")
    invalid, rebuilt = summary.get("cache_invalid") or {}, summary.get("hash_index_rebuilt", 0)
    if invalid or rebuilt:
        lines += ["", f"Cache entries not trusted (another key, stage or shape; recomputed): "
                      f"{', '.join(f'{s} {n}' for s, n in sorted(invalid.items())) or 'none'}"
                      + (f"; the content-hash index was corrupt and rebuilt {rebuilt}x." if rebuilt else ".")]
    lines += ["", "| stage | songs run | cached | median s | total s |", "| --- | ---: | ---: | ---: | ---: |"]
    for stage in sorted(set(summary["stage_s"]) | set(summary["cache_hits"])):
        t = summary["stage_s"].get(stage, {})
        lines.append(f"| {stage} | {t.get('songs', 0)} | {summary['cache_hits'].get(stage, 0)} | "
                     f"{t.get('median_s', '')} | {t.get('total_s', '')} |")
    return "\n".join(lines) + "\n"
