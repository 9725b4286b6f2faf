"""Prefect flow `build-symmv`: the dataset DAG, as thin wiring over symmv.pipeline.stages.

    discover covers (local yt-dlp-layout folder, or crawl channels with yt-dlp)
      -> parse song/artist + match the official video (local folder or YouTube search)
      -> metadata (ShazamIO genre/lyrics, optional)
      -> video features (semantic 6 fps, RGB-uv color, motion, cuts) + video quality filters
      -> transcribe the piano audio
      -> rhythm (beats, downbeats, tempo)
      -> symbolic (16th quantization, skyline melody/accompaniment, chords, key)
      -> split by video -> Parquet shards + MIDI + build report -> data card
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.futures import wait

from symmv.pipeline import stages
from symmv.matching.candidates import LocalVideos, YouTubeSearch
from symmv.pipeline.config import BuildConfig
from symmv.io.midi import write_notes
from symmv.core.records import MediaItem, Reject
from symmv.sources.release import discover_release
from symmv.pipeline.runners import make_task_runner
from symmv.pipeline.runners import provenance as runner_provenance
from symmv.core.schema import TABLES
from symmv.core.shards import shard_paths, write_shard
from symmv.sources.local import discover
from symmv.core.split import assign_splits

PART = "build"  # one part per table/split for a single-process build


def per_song(stage: str) -> dict:
    """Task options of a per-song stage: cached on its inputs (see stages.cache_key), results persisted
    under $PREFECT_HOME/storage, so a re-run after a crash or a change skips the work already done."""
    def key(context, parameters) -> str:
        # `match` depends on the candidate videos; later stages on the video it chose (in `work`).
        videos = parameters.get("videos")
        return stages.cache_key(stage, parameters["work"], parameters["cfg"], getattr(videos, "fingerprint", ""))

    return {"cache_policy": CacheKeyFnPolicy(cache_key_fn=key), "persist_result": True}


@task(name="crawl-channels", cache_policy=NO_CACHE, retries=0)
def crawl_channels(cfg: BuildConfig) -> list[Reject]:
    """source=youtube: list every configured channel and download its covers into source_dir/covers."""
    from prefect.concurrency.sync import concurrency

    from symmv.sources.youtube import CONCURRENCY_LIMIT, CrawlError, download, list_channel, load_config

    crawl_cfg, rejects = load_config(cfg.channels_config), []
    for channel in crawl_cfg.channels:
        try:
            with concurrency(CONCURRENCY_LIMIT, occupy=1):
                entries = list_channel(channel.url, crawl_cfg)
        except CrawlError as exc:
            rejects.append(Reject(channel.url, "crawl", "channel_listing_failed", str(exc)))
            continue
        for entry in entries[: cfg.limit or None]:
            try:
                with concurrency(CONCURRENCY_LIMIT, occupy=1):
                    download(entry, Path(cfg.source_dir) / "covers", crawl_cfg, kind="audio")
            except CrawlError as exc:
                rejects.append(Reject(str(entry.get("id")), "crawl", "download_failed", str(exc)))
    return rejects


@task(name="discover", cache_policy=NO_CACHE)
def discover_covers(cfg: BuildConfig) -> tuple[list[MediaItem], list[Reject]]:
    if cfg.source == "symmv-release":
        return discover_release(cfg.source_dir, cfg.limit)
    covers, rejects = discover(Path(cfg.source_dir) / "covers")
    return (covers[: cfg.limit] if cfg.limit else covers), rejects


def video_candidates(cfg: BuildConfig):
    if cfg.source == "youtube":
        from symmv.sources.youtube import load_config

        return YouTubeSearch(Path(cfg.source_dir) / "videos", load_config(cfg.channels_config), cfg.search_results)
    return LocalVideos(Path(cfg.source_dir) / "videos")


@task(name="match", **per_song("match"))
def match(work: stages.SongWork, videos, cfg: BuildConfig) -> stages.SongWork:
    return stages.parse_and_match(work, videos, cfg)


@task(name="metadata", **per_song("metadata"))
def metadata(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.look_up_metadata(work, cfg)


@task(name="video-features", **per_song("video"))
def video_features(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.extract_video_features(work, cfg)


@task(name="transcribe", **per_song("transcribe"))
def transcribe(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.transcribe_cover(work, cfg)


@task(name="rhythm", **per_song("rhythm"))
def rhythm(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.track_rhythm(work, cfg)


@task(name="symbolic", **per_song("symbolic"))
def symbolic(work: stages.SongWork, cfg: BuildConfig) -> stages.SongWork:
    return stages.annotate_symbolic(work, cfg)


@task(name="write-shards", cache_policy=NO_CACHE)
def write_dataset(works: list[stages.SongWork], source_rejects: list[Reject], cfg: BuildConfig) -> dict:
    out = Path(cfg.out)
    for leftover in out.glob("*/split=*/.tmp-*"):  # a shard a killed run was writing: never visible, now gone
        leftover.unlink()
    accepted = [w for w in works if w.reject is None]
    motion = stages.set_video_tempi(accepted)
    rejects = source_rejects + [w.reject for w in works if w.reject is not None]
    split_of = assign_splits({w.song_id: w.video.info.get("webpage_url") or w.video.id for w in accepted},
                             cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    rows: dict[tuple[str, str], list[dict]] = {}

    def add(table: str, split: str, new_rows: list[dict]) -> None:
        rows.setdefault((table, split), []).extend(new_rows)

    for w in works:
        split = split_of.get(w.song_id, "rejected")
        if w.match is not None:
            add("matches", split, [stages.match_row(w)])
        if w.metadata is not None:
            add("metadata", split, [w.metadata])
        if w.reject is None:
            midi = write_notes(w.notes, out / "midi" / f"{w.song_id}.mid")
            add("songs", split, [stages.song_row(w, split, str(midi.relative_to(out)))])
            add("notes", split, stages.note_rows(w))
            add("beats", split, stages.beat_rows(w))
            add("chords", split, stages.chord_rows(w))
            add("key_windows", split, stages.key_window_rows(w))
            if w.video_features is not None:
                add("video_features", split, [stages.video_feature_row(w)])
    add("rejects", "rejected", [stages.reject_row(r) for r in rejects])
    written = {write_shard(out, table, split, data, PART) for (table, split), data in rows.items()}
    for table in TABLES:
        for stale in set(shard_paths(out, table)) - written:  # what a previous build left behind
            stale.unlink()
    return {"songs": len(accepted), "rejects": len(rejects), "motion_range": motion,
            "hours_music": round(sum(stages.duration_s(w) or 0 for w in accepted) / 3600, 4),
            "transcribers": dict(Counter(w.transcriber for w in accepted)),
            "stage_s": stage_seconds(works), "splits": dict(sorted(Counter(split_of.values()).items())),
            "reject_reasons": dict(sorted(Counter(f"{r.stage}:{r.reason}" for r in rejects).items()))}


def stage_seconds(works: list[stages.SongWork]) -> dict:
    """Per stage: songs that ran it, total and median wall seconds (threads overlap: totals exceed wall)."""
    import statistics

    per_stage: dict[str, list[float]] = {}
    for w in works:
        for name, seconds in w.timings_s.items():
            per_stage.setdefault(name, []).append(seconds)
    return {name: {"songs": len(v), "total_s": round(sum(v), 3), "median_s": round(statistics.median(v), 3)}
            for name, v in per_stage.items()}


@task(name="data-card", cache_policy=NO_CACHE)
def data_card(cfg: BuildConfig) -> str:
    from symmv.card.writer import write_card

    return str(write_card(Path(cfg.out), Path(cfg.card_dir)))


@flow(name="process-songs")
def process_songs(config: BuildConfig) -> tuple[list[stages.SongWork], list[Reject]]:
    """Discovery and the per-song DAG, on the configured task runner (threads, processes, Dask or Ray).

    Takes only the config: a subflow's parameters are sent to the Prefect API (limit 512 KB), so the
    song list is discovered here rather than passed in.
    """
    log = get_run_logger()
    covers, cover_rejects = discover_covers(config)
    videos = video_candidates(config)
    log.info("%d covers, %d broken items; video candidates from %s", len(covers), len(cover_rejects), videos.name)
    works = [stages.SongWork(cover=c) for c in covers]
    matched = match.map(works, videos=unmapped(videos), cfg=unmapped(config))
    described = metadata.map(matched, cfg=unmapped(config))
    filmed = video_features.map(described, cfg=unmapped(config))
    transcribed = transcribe.map(filmed, cfg=unmapped(config))
    timed = rhythm.map(transcribed, cfg=unmapped(config))
    annotated = symbolic.map(timed, cfg=unmapped(config))
    wait(annotated)
    return [f.result() for f in annotated], cover_rejects


@flow(name="build-symmv", log_prints=True)
def build_symmv(config: BuildConfig = BuildConfig()) -> dict:
    log = get_run_logger()
    started = time.perf_counter()
    crawl_rejects = crawl_channels(config) if config.source == "youtube" else []
    runner = make_task_runner(config.task_runner, config.workers, config.cluster_address or None)
    works, cover_rejects = process_songs.with_options(task_runner=runner)(config)
    summary = write_dataset(works, crawl_rejects + cover_rejects, config)
    summary["task_runner"] = runner_provenance(config.task_runner)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    (Path(config.out) / "build_report.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    summary["card"] = data_card(config)
    log.info("built %(songs)d songs, %(rejects)d rejects -> %(splits)s", summary)
    return summary
