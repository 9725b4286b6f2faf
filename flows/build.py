"""Prefect flow `build-symmv`: the dataset DAG, as thin wiring over symmv.stages.

    discover covers + videos (yt-dlp layout)
      -> parse song/artist + match the official video
      -> transcribe the piano audio
      -> split by video -> Parquet shards + MIDI + build report
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from symmv import stages
from symmv.config import BuildConfig
from symmv.records import MediaItem, Reject
from symmv.shards import shard_paths, write_shard
from symmv.sources import discover
from symmv.split import assign_splits

PART = "build"  # one part per table/split for a single-process build (workers add their own names)
TABLES_WRITTEN = ("songs", "notes", "rejects")


@task(name="discover", cache_policy=NO_CACHE)
def discover_source(cfg: BuildConfig) -> tuple[list[MediaItem], list[MediaItem], list[Reject]]:
    covers, cover_rejects = discover(Path(cfg.source_dir) / "covers")
    videos, video_rejects = discover(Path(cfg.source_dir) / "videos")
    return (covers[: cfg.limit] if cfg.limit else covers), videos, cover_rejects + video_rejects


@task(name="match", cache_policy=NO_CACHE)
def match(work: stages.SongWork, videos: list[MediaItem], cfg: BuildConfig) -> stages.SongWork:
    return stages.parse_and_match(work, videos, cfg)


@task(name="transcribe", cache_policy=NO_CACHE)
def transcribe(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.transcribe_cover(work, cfg)


@task(name="write-shards", cache_policy=NO_CACHE)
def write_dataset(works: list[stages.SongWork], source_rejects: list[Reject], cfg: BuildConfig) -> dict:
    out = Path(cfg.out)
    accepted = [w for w in works if w.reject is None]
    rejects = source_rejects + [w.reject for w in works if w.reject is not None]
    split_of = assign_splits({w.song_id: w.video.info.get("webpage_url") or w.video.id for w in accepted},
                             cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    rows: dict[tuple[str, str], list[dict]] = {}
    for w in accepted:
        split = split_of[w.song_id]
        midi = stages.write_midi(w.notes, out / "midi" / f"{w.song_id}.mid")
        rows.setdefault(("songs", split), []).append(stages.song_row(w, split, str(midi.relative_to(out))))
        rows.setdefault(("notes", split), []).extend(stages.note_rows(w))
    rows[("rejects", "rejected")] = [stages.reject_row(r) for r in rejects]
    written = {write_shard(out, table, split, data, PART) for (table, split), data in rows.items()}
    for table in TABLES_WRITTEN:  # drop shards a previous build left behind that this one did not write
        for stale in set(shard_paths(out, table)) - written:
            stale.unlink()
    return {"songs": len(accepted), "rejects": len(rejects), "splits": dict(Counter(split_of.values())),
            "reject_reasons": dict(Counter(f"{r.stage}:{r.reason}" for r in rejects))}


@flow(name="build-symmv", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def build_symmv(config: BuildConfig = BuildConfig()) -> dict:
    log = get_run_logger()
    started = time.perf_counter()
    covers, videos, source_rejects = discover_source(config)
    log.info("discovered %d covers, %d videos, %d broken items", len(covers), len(videos), len(source_rejects))
    works = [stages.SongWork(cover=c) for c in covers]
    matched = match.map(works, videos=unmapped(videos), cfg=unmapped(config))
    transcribed = transcribe.map(matched, cfg=unmapped(config))
    wait(transcribed)
    summary = write_dataset([f.result() for f in transcribed], source_rejects, config)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    (Path(config.out) / "build_report.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    log.info("built %(songs)d songs, %(rejects)d rejects -> %(splits)s", summary)
    return summary
