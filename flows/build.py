"""Prefect flow `build-symmv`: the dataset DAG, as thin wiring over symmv.pipeline.

    validate the config (unknown names, missing folders: one line, before any song)
    -> [youtube: crawl channels with yt-dlp]
    -> discover covers (a yt-dlp-layout folder, or the SymMV release)
    -> map `songs` batches: per song, every stage of symmv.pipeline.registry.STAGES (measure, match,
       metadata, video, transcribe, rhythm, symbolic), content-cached; each batch writes its own parts
    -> [a small dataset whose hash splits leave one empty: the batches again, splits by hash rank]
    -> publish: dataset-level motion range -> video tempo, manifest written last (the dataset appears whole)
    -> build report + data card (<out>/README.md; a copy elsewhere only with --card-dir)
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from symmv.core.records import Reject
from symmv.core.split import split_overrides
from symmv.pipeline import build as B
from symmv.pipeline import progress
from symmv.pipeline.batch import merge_summaries, run_batch
from symmv.pipeline.config import BuildConfig
from symmv.pipeline.runners import make_task_runner
from symmv.pipeline.sources import get_source
from symmv.pipeline.runners import provenance as runner_provenance
from symmv.pipeline.writer import BuildLock


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


@task(name="songs", cache_policy=NO_CACHE, task_run_name="songs[{first}..{last}]")
def process_batch(index: int, covers: list, cfg: BuildConfig, first: str = "", last: str = "",
                  split_overrides: dict[str, str] | None = None) -> dict:
    """One batch: every stage for every song, written as the batch's own Parquet parts; a summary back.
    Each finished song is one line of this task run's log (the UI, build.log), with the batch's ETA."""
    log, started, done = get_run_logger(), time.monotonic(), [0]

    def song_line(song_id: str, reject, outcomes: dict[str, str]) -> None:
        done[0] += 1
        ran = [s for s, o in outcomes.items() if o == "ran"]
        cached = sum(o == "cached" for o in outcomes.values())
        verdict = (f"rejected at {reject.stage}: {reject.reason}" if reject is not None
                   else f"accepted ({len(ran)} stages ran, {cached} cached)")
        log.info("batch %d song %d/%d %s: %s; batch ETA %s", index, done[0], len(covers), song_id, verdict,
                 progress.clock(progress.eta_s(done[0], len(covers), time.monotonic() - started)))

    with progress.song_listener(index, song_line):
        return run_batch(index, covers, cfg, split_overrides)


@flow(name="process-songs")
def process_songs(config: BuildConfig, split_overrides: dict[str, str] | None = None) -> tuple[list[dict], list[Reject]]:
    """Discovery and the batches, on the configured task runner (threads, processes, Dask or Ray).

    Takes only the config (and a small dataset's split overrides): a subflow's parameters are sent to the
    Prefect API (limit 512 KB), so the covers are discovered here; only batch summaries (counts, no song
    data) come back. A line per finished batch says how far the build is.
    """
    log, started = get_run_logger(), time.monotonic()
    covers, rejects = B.discover_covers(config)
    batches = B.make_batches(covers, config)
    log.info("%d covers in %d batches, %d broken items", len(covers), len(batches), len(rejects))
    if progress.CURRENT is not None:
        progress.CURRENT.total = len(covers) + len(rejects)
        if progress.CURRENT.phase == "starting":  # a second pass keeps its own name ("splits")
            progress.CURRENT.phase = "songs"
        for r in rejects:  # broken items count as done (rejected) from the start
            progress.CURRENT.song(-1, False, {r.stage: "refused"})
    futures = [process_batch.submit(i, b, config, first=b[0].id, last=b[-1].id, split_overrides=split_overrides)
               for i, b in enumerate(batches)]
    summaries, songs_done = {}, 0
    for future in as_completed(futures):
        summary = future.result()
        summaries[summary["index"]] = summary
        songs_done += summary["songs"] + summary["rejects"]
        elapsed = time.monotonic() - started
        log.info("batch %d done%s: %d songs, %d rejected; %d/%d batches, %d/%d covers, elapsed %s, ETA %s",
                 summary["index"], " (resumed)" if summary.get("resumed") else "", summary["songs"],
                 summary["rejects"], len(summaries), len(batches), songs_done, len(covers), progress.clock(elapsed),
                 progress.clock(progress.eta_s(songs_done, len(covers), elapsed)))
        if progress.CURRENT is not None:
            progress.CURRENT.batch(summary)
    return [summaries[i] for i in sorted(summaries)], rejects


def previous_split_overrides(out: Path) -> dict[str, str]:
    """The split overrides the last build into `out` recorded (its build_report.json), else none."""
    try:
        return json.loads((out / "build_report.json").read_text()).get("split_overrides") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def small_dataset_splits(config: BuildConfig, summaries: list[dict]) -> dict[str, str]:
    """The official videos whose split `assign_splits` moves (a hash split left empty), from every batch's keys."""
    groups = [g for s in summaries for g in s.get("split_groups", [])]
    return split_overrides(groups, config.val_fraction, config.test_fraction, config.split_seed)


@flow(name="build-symmv", log_prints=True)
def build_symmv(config: BuildConfig = BuildConfig()) -> dict:
    log = get_run_logger()
    started = time.perf_counter()
    B.validate(config)
    with BuildLock(config.out), build_log(Path(config.out) / "build.log"):
        crawl_rejects = crawl_channels(config) if get_source(config.source).crawls else []
        runner = make_task_runner(config.task_runner, config.workers, config.cluster_address or None)
        guess = previous_split_overrides(Path(config.out))  # a rebuild of the same songs: right at once
        summaries, cover_rejects = process_songs.with_options(task_runner=runner)(config, guess or None)
        overrides = small_dataset_splits(config, summaries)
        first_pass = merge_summaries(summaries)  # what the first pass found in the cache stays in the report
        if overrides != guess:  # a small dataset's empty split: the parts again, ranked (stages all cached)
            log.info("splits %s with %d official videos: %d of them move by hash rank so no split is empty "
                     "(symmv.core.split.assign_splits); writing the batches again", merge_summaries(summaries)["splits"],
                     sum(len(s.get("split_groups", [])) for s in summaries), len(overrides))
            if progress.CURRENT is not None:
                progress.CURRENT.restart_batches("splits")
            summaries, cover_rejects = process_songs.with_options(task_runner=runner)(config, overrides or None)
        source_rejects = crawl_rejects + cover_rejects
        summary = merge_summaries(summaries)
        if overrides != guess:  # the second pass only re-read what the first one computed: the work is the first's
            for k in ("cache_hits", "cache_misses", "cache_invalid", "stage_s", "hash_index_rebuilt", "batches_resumed"):
                summary[k] = first_pass[k]
        summary["rejects"] += len(source_rejects)
        for r in source_rejects:
            reason = f"{r.stage}:{r.reason}"
            summary["reject_reasons"][reason] = summary["reject_reasons"].get(reason, 0) + 1
            summary["reject_examples"].setdefault(reason, f"{r.item_id}: {r.detail[:160]}")
        summary["reject_reasons"] = dict(sorted(summary["reject_reasons"].items()))
        B.check_accepted(config, summary)  # before publishing: a failed gate leaves the previous build readable
        if progress.CURRENT is not None:
            progress.CURRENT.phase = "publishing"
        published = B.finalize(config, [s["key"] for s in summaries], source_rejects)
        summary.update(published, batches=len(summaries), task_runner=runner_provenance(config.task_runner),
                       split_overrides=overrides,
                       wall_s=round(time.perf_counter() - started, 2))
        (Path(config.out) / "build_report.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
        summary["card"] = data_card(config)
        publish_artifacts(config, summary)
    log.info("built %(songs)d songs, %(rejects)d rejects -> %(splits)s", summary)
    return summary


@contextmanager
def build_log(path: Path):
    """Every run writes `<out>/build.log`, a deployment's too: the flow's and tasks' run-logger lines reach the
    root logger (Prefect's loggers propagate). The CLI has its handler on the file already: then nothing is added."""
    root, path = logging.getLogger(), path.resolve()
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        yield
        return
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def publish_artifacts(cfg: BuildConfig, summary: dict) -> None:
    """The build report (markdown) and the rejects (table) as Prefect artifacts of this flow run."""
    import re

    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    import symmv

    key = re.sub(r"[^a-z0-9-]+", "-", Path(cfg.out).name.lower()).strip("-") or "dataset"
    create_markdown_artifact(key=f"build-report-{key}", markdown=B.report_markdown(cfg, summary),
                             description=f"build-symmv report for {cfg.out}")
    rejects = symmv.load("rejects", root=cfg.out)
    rows = [{"item": r.item_id, "stage": r.stage, "reason": r.reason, "detail": r.detail[:200]}
            for r in rejects.itertuples()][:1000]
    create_table_artifact(key=f"rejects-{key}", table=rows or [{"item": "", "stage": "", "reason": "none", "detail": ""}],
                          description=f"{len(rejects)} rejected items of {cfg.out}")


@task(name="data-card", cache_policy=NO_CACHE)
def data_card(cfg: BuildConfig) -> str:
    from symmv.card.writer import PLOT_FILES, write_card

    card = write_card(Path(cfg.out), Path(cfg.card_dir) if cfg.card_dir else None)
    B.record_outputs(cfg, [card.name, *PLOT_FILES.values()])
    return str(card)
