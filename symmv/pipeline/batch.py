"""Running the registry's stages over one batch of songs, and the checks made before any song runs.

`run_batch` is what one Prefect task does: for each cover, every stage of `STAGES` in order -- read from
the content-keyed cache or computed and stored -- then the song's rows are converted to their Arrow
schemas (a wrong-typed value rejects the song as `bad_metadata:<field>`, never a crash at writing) and
streamed into the batch's own Parquet parts (symmv.pipeline.writer). The error contract
(symmv.core.errors): a Refusal or MediaError is a reject row; ConfigError stops the build; any other
exception is a bug, recorded as `internal_error:<Type>`, and past `max_reject_fraction` of the batch the
build stops with BuildAborted instead of quietly rejecting everything.
"""
from __future__ import annotations

import json
import statistics
import time
import traceback
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

import pyarrow as pa

from symmv.core.errors import BuildAborted, ConfigError, Refusal
from symmv.core.records import MediaItem, Reject
from symmv.core.schema import REJECTED_SPLIT as REJECTED, TABLES
from symmv.core.shards import to_table
from symmv.core.split import split_of
from symmv.core.versions import code_version
from symmv.pipeline import progress
from symmv.pipeline import stages as S
from symmv.pipeline.cache import ContentHashes, StageCache, digest
from symmv.pipeline.config import BuildConfig
from symmv.pipeline.registry import STAGES
from symmv.pipeline.writer import BatchWriter, finished_batch

# Config fields that change where or how fast a build runs, never what it produces (not in any key).
RUN_ONLY_FIELDS = {"out", "card_dir", "source_dir", "channels_config", "workers", "task_runner", "cluster_address",
                   "limit", "progress", "batch_size", "cache_dir", "max_reject_fraction"}
# The modules that turn stage results into rows: a change here rewrites the parts (cheap), never the stages.
WRITER_CODE = ("symmv.pipeline.batch", "symmv.pipeline.writer", "symmv.pipeline.stages", "symmv.core.schema",
               "symmv.core.shards", "symmv.core.split", "symmv.io.midi")


def build_context(cfg: BuildConfig) -> S.BuildContext:
    """The video candidates and content hashes of this build (one per process)."""
    from symmv.matching.candidates import LocalVideos, YouTubeSearch

    if cfg.source == "youtube":
        from symmv.sources.youtube import load_config

        videos = YouTubeSearch(Path(cfg.source_dir) / "videos", load_config(cfg.channels_config), cfg.search_results)
    else:
        videos = LocalVideos(Path(cfg.source_dir) / "videos")
    return S.BuildContext(videos=videos, content_hash=ContentHashes(cfg.cache_dir).of)


def stage_versions(cfg: BuildConfig, ctx: S.BuildContext) -> dict[str, dict]:
    return {s.name: s.versions(cfg, ctx.content_hash) for s in STAGES}


def batch_key(covers: list[MediaItem], cfg: BuildConfig, ctx: S.BuildContext, versions: dict) -> str:
    """What a batch's parts depend on: its covers by content, the candidate videos, the config, the code."""
    content = [[c.id, ctx.content_hash(c.media_path), json.dumps(c.info, sort_keys=True, default=str),
                c.paired_video] for c in covers]
    config = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in RUN_ONLY_FIELDS}
    code = [code_version(*s.code) for s in STAGES if s.code] + [code_version(*WRITER_CODE)]
    return digest({"covers": content, "videos": digest(ctx.videos.identity(ctx.content_hash)), "config": config,
                   "versions": versions, "code": code})


def _apply(work: S.SongWork, updates: dict, ctx: S.BuildContext) -> S.SongWork:
    provenance = {**work.provenance, **updates.get("provenance", {})}
    work = replace(work, **{k: v for k, v in updates.items() if k != "provenance"}, provenance=provenance)
    by_id = getattr(ctx.videos, "by_id", None)
    if "video" in updates and by_id and work.video and work.video.id in by_id:
        work.video = by_id[work.video.id]  # a cached decision, with today's path of the same video
    return work


def run_stages(work: S.SongWork, cfg: BuildConfig, ctx: S.BuildContext, cache: StageCache,
               versions: dict, outcomes: dict[str, str] | None = None) -> S.SongWork:
    """Every stage for one song; sets `work.reject` on a refusal or a bug (ConfigError propagates).
    `outcomes`, when given, receives stage -> "cached" | "ran" | "refused" | "error" (progress display)."""
    keys: dict[str, str] = {}
    outcomes = {} if outcomes is None else outcomes
    for stage in STAGES:
        key = keys[stage.name] = stage.key(work, cfg, ctx, keys, versions[stage.name])
        started = time.perf_counter()
        result = cache.get(stage.name, key)
        outcomes[stage.name] = "cached"
        if result is None:
            outcomes[stage.name] = "ran"
            try:
                result = ("ok", stage.run(work, cfg, ctx))
            except ConfigError:
                raise
            except Refusal as exc:  # includes MediaError: broken media or network, the item's fault
                result = ("refused", exc.reason, str(exc.detail)[:1000])
            except Exception as exc:  # noqa: BLE001 - a bug: recorded, counted, never cached
                tb = traceback.format_exc(limit=-3).replace("\n", " | ")[-600:]
                work.reject = Reject(work.cover.id, stage.name, f"internal_error:{type(exc).__name__}",
                                     f"{exc} | {tb}"[:1000])
                outcomes[stage.name] = "error"
                return work
            cache.put(stage.name, key, result)
            work.timings_s[stage.name] = time.perf_counter() - started
        if result[0] == "refused":
            work.reject = Reject(work.cover.id, stage.name, result[1], result[2])
            outcomes[stage.name] = "refused"
            return work
        work = _apply(work, result[1], ctx)
    return work


def _first_bad_field(table: str, rows: list[dict]) -> str:
    for f in TABLES[table]:
        try:
            pa.array([r.get(f.name) for r in rows], type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            return f.name
    return "?"


def song_tables(work: S.SongWork, split: str, midi_path: str) -> dict[str, pa.Table]:
    """One accepted song as Arrow tables of the declared schemas (Refusal `bad_metadata:<field>` if a value
    does not fit its column: validated where the record is made, never at writing)."""
    rows = {"songs": [S.song_row(work, split, midi_path)], "notes": S.note_rows(work), "beats": S.beat_rows(work),
            "chords": S.chord_rows(work), "key_windows": S.key_window_rows(work)}
    if work.match is not None:
        rows["matches"] = [S.match_row(work)]
    if work.metadata is not None:
        rows["metadata"] = [work.metadata]
    if work.video_features is not None:
        rows["video_features"] = [S.video_feature_row(work)]
    if work.music_qc is not None:
        rows["music_qc"] = [work.music_qc]
    if work.alignment is not None:
        rows["alignment"] = [work.alignment.row()]
    out = {}
    for table, table_rows in rows.items():
        try:
            out[table] = to_table(table, table_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
            bad = _first_bad_field(table, table_rows)
            raise Refusal(f"bad_metadata:{bad}", f"{table}.{bad}: {exc}"[:500]) from exc
    return out


def run_batch(index: int, covers: list[MediaItem], cfg: BuildConfig) -> dict:
    """Process one batch and write its parts; returns its summary (no song data). Resumes a finished batch."""
    ctx = build_context(cfg)
    versions = stage_versions(cfg, ctx)
    key = batch_key(covers, cfg, ctx, versions)
    done = finished_batch(cfg.out, key)
    if done is not None:
        return {**done, "resumed": True}
    cache, writer = StageCache(cfg.cache_dir), BatchWriter(cfg.out, key)
    rejects, timings, internal = [], {}, 0
    counts: Counter = Counter()
    try:
        for cover in covers:
            work = S.SongWork(cover=cover)
            try:
                work.cover_sha256 = ctx.content_hash(cover.media_path)
            except OSError as exc:
                work.reject = Reject(cover.id, "discover", "missing_media", f"{type(exc).__name__}: {exc}"[:500])
            outcomes: dict[str, str] = {}
            if work.reject is None:
                work = run_stages(work, cfg, ctx, cache, versions, outcomes)
            for name, seconds in work.timings_s.items():
                timings.setdefault(name, []).append(round(seconds, 4))
            if work.reject is None:
                split = split_of(work.video.info.get("webpage_url") or work.video.id, cfg.val_fraction,
                                 cfg.test_fraction, cfg.split_seed)
                try:
                    tables = song_tables(work, split, f"midi/{work.song_id}.mid")
                except Refusal as exc:
                    work.reject = Reject(cover.id, "write", exc.reason, exc.detail)
                except Exception as exc:  # noqa: BLE001 - a bug in a row formatter: counted like a stage bug
                    work.reject = Reject(cover.id, "write", f"internal_error:{type(exc).__name__}", str(exc)[:1000])
            if progress.CURRENT is not None:
                progress.CURRENT.song(index, work.reject is None, outcomes)
            if work.reject is not None:
                rejects.append(work.reject)
                if work.reject.reason.startswith("internal_error:"):
                    internal += 1
                    if internal > cfg.max_reject_fraction * len(covers):
                        raise BuildAborted(f"{internal} of {len(covers)} songs in batch {index} hit internal errors "
                                           f"(max_reject_fraction {cfg.max_reject_fraction}); last: {work.reject.item_id} "
                                           f"at {work.reject.stage}: {work.reject.reason}: {work.reject.detail[:300]}")
                if work.match is not None:  # the matcher's audit trail is kept for refused songs too
                    writer.add("matches", REJECTED, to_table("matches", [S.match_row(work)]))
                continue
            writer.write_midi(work.song_id, work.notes)
            for table, data in tables.items():
                writer.add(table, split, data)
            counts["songs"] += 1
            counts[f"split:{split}"] += 1
            counts[f"transcriber:{work.transcriber}"] += 1
            counts["music_s"] += S.duration_s(work) or 0.0
        if rejects:
            writer.add("rejects", REJECTED, to_table("rejects", [S.reject_row(r) for r in rejects]))
        summary = {"key": key, "index": index, "songs": counts["songs"], "rejects": len(rejects),
                   "reject_reasons": dict(Counter(f"{r.stage}:{r.reason}" for r in rejects)),
                   "reject_examples": {f"{r.stage}:{r.reason}": f"{r.item_id}: {r.detail[:160]}" for r in rejects},
                   "splits": {k[6:]: v for k, v in counts.items() if k.startswith("split:")},
                   "transcribers": {k[12:]: v for k, v in counts.items() if k.startswith("transcriber:")},
                   "music_s": round(counts["music_s"], 3), "stage_s": timings,
                   "cache_hits": cache.hits, "cache_misses": cache.misses, "internal_errors": internal}
        return writer.commit(summary)
    except BaseException:
        writer.abort()
        raise


def merge_summaries(summaries: list[dict]) -> dict:
    """The build report's counts from the batches' summaries (the parent never sees song data)."""
    total: dict = {"songs": 0, "rejects": 0, "reject_reasons": Counter(), "splits": Counter(),
                   "transcribers": Counter(), "music_s": 0.0, "cache_hits": Counter(), "cache_misses": Counter(),
                   "batches_resumed": 0, "reject_examples": {}}
    stage_s: dict[str, list[float]] = {}
    for s in summaries:
        for k in ("songs", "rejects", "music_s"):
            total[k] += s[k]
        for k in ("reject_reasons", "splits", "transcribers", "cache_hits", "cache_misses"):
            total[k].update(s[k])
        for reason, example in s.get("reject_examples", {}).items():
            total["reject_examples"].setdefault(reason, example)
        total["batches_resumed"] += bool(s.get("resumed"))
        for name, values in s["stage_s"].items():
            stage_s.setdefault(name, []).extend(values)
    total["stage_s"] = {n: {"songs": len(v), "total_s": round(sum(v), 3), "median_s": round(statistics.median(v), 3)}
                        for n, v in stage_s.items()}
    total["hours_music"] = round(total.pop("music_s") / 3600, 4)
    return {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in total.items()}
