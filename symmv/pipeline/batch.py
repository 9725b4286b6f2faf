"""Running the registry's stages over one batch of songs, and the checks made before any song runs.

`run_batch` is what one Prefect task does: for each cover, every stage of the registry's `PIPELINE` in its
derived order -- read from the content-keyed cache (an entry of another key, stage or shape is a miss) or
computed, checked against the stage's declared writes and stored -- then the rows the stages declare are
converted to their Arrow schemas (a wrong-typed value rejects the song as `bad_metadata:<field>`, never a crash at writing) and
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
from dataclasses import dataclass, field, fields

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
from symmv.pipeline.contract import SOURCE_FIELDS, SongView
from symmv.pipeline.registry import AUDIT_TABLES, PIPELINE
from symmv.pipeline.writer import BatchWriter, finished_batch

# Config fields that change where or how fast a build runs, never what it produces (not in any key).
RUN_ONLY_FIELDS = {"out", "card_dir", "source_dir", "channels_config", "workers", "task_runner", "cluster_address",
                   "limit", "progress", "verbose", "batch_size", "cache_dir", "max_reject_fraction",
                   "min_accept_fraction"}
# The modules that turn stage results into rows: a change here rewrites the parts (cheap), never the stages.
WRITER_CODE = ("symmv.pipeline.batch", "symmv.pipeline.writer", "symmv.pipeline.stages", "symmv.core.schema",
               "symmv.core.shards", "symmv.core.split", "symmv.io.midi")


def build_context(cfg: BuildConfig) -> S.BuildContext:
    """The source, video candidates and content hashes of this build (one per process)."""
    from symmv.pipeline.sources import get_source

    source = get_source(cfg.source)
    return S.BuildContext(source=source, videos=source.videos(cfg), content_hash=ContentHashes(cfg.cache_dir).of)


def stage_versions(cfg: BuildConfig, ctx: S.BuildContext) -> dict[str, dict]:
    return {s.name: s.versions(cfg, ctx.content_hash) for s in PIPELINE.stages}


def batch_key(covers: list[MediaItem], cfg: BuildConfig, ctx: S.BuildContext, versions: dict,
              split_overrides: dict[str, str] | None = None) -> str:
    """What a batch's parts depend on: its covers by content, the candidate videos, the config, the code
    (and the small-dataset split overrides, symmv.core.split.split_overrides, when there are any)."""
    content = [[c.id, ctx.content_hash(c.media_path), json.dumps(c.info, sort_keys=True, default=str),
                c.paired_video] for c in covers]
    config = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in RUN_ONLY_FIELDS}
    code = [code_version(*s.code) for s in PIPELINE.stages if s.code] + [code_version(*WRITER_CODE)]
    return digest({"covers": content, "videos": digest(ctx.videos.identity(ctx.content_hash)), "config": config,
                   "versions": versions, "code": code, "stages": PIPELINE.fingerprints,
                   **({"splits": split_overrides} if split_overrides else {})})


@dataclass
class Song:
    """One song on its way through the stages: what discovery knows, then every field a stage wrote."""

    values: dict  # SOURCE_FIELDS, then each stage's writes, and "provenance"
    timings_s: dict[str, float] = field(default_factory=dict)  # wall seconds per stage (for bench/, not data)
    done: list[str] = field(default_factory=list)  # stages whose results are in `values`
    reject: Reject | None = None
    tables: dict[str, pa.Table] = field(default_factory=dict)  # its rows, once every stage accepted it

    @classmethod
    def of(cls, cover: MediaItem, cover_sha256: str) -> Song:
        from symmv.core.ids import sanitize_id

        return cls({"cover": cover, "song_id": sanitize_id(cover.id), "cover_sha256": cover_sha256, "provenance": {}})

    @property
    def cover(self) -> MediaItem:
        return self.values["cover"]

    def apply(self, stage_name: str, result: dict, ctx: S.BuildContext) -> None:
        self.values["provenance"] = {**self.values["provenance"], **result.get("provenance", {})}
        self.values.update({k: v for k, v in result.items() if k != "provenance"})
        video, by_id = self.values.get("video"), getattr(ctx.videos, "by_id", None)
        if "video" in result and by_id and video is not None and video.id in by_id:
            self.values["video"] = by_id[video.id]  # a cached decision, with today's path of the same video
        self.done.append(stage_name)


def run_stages(song: Song, cfg: BuildConfig, ctx: S.BuildContext, cache: StageCache,
               versions: dict, outcomes: dict[str, str] | None = None) -> Song:
    """Every stage for one song; sets `song.reject` on a refusal or a bug (ConfigError propagates).
    `outcomes`, when given, receives stage -> "cached" | "ran" | "refused" | "error" (progress display)."""
    keys: dict[str, str] = {}
    outcomes = {} if outcomes is None else outcomes
    for stage in PIPELINE.stages:
        started = time.perf_counter()
        try:
            key = keys[stage.name] = PIPELINE.key(stage, song.values, cfg, ctx, keys, versions[stage.name])
            result = cache.get(stage.name, key, schema=stage.schema, check=stage.conforms)
            outcomes[stage.name] = "cached"
            if result is None:
                outcomes[stage.name] = "ran"
                try:
                    written = stage.run(PIPELINE.view(stage, song.values), cfg, ctx)
                    stage.check(written)
                    result = ("ok", written)
                except Refusal as exc:  # includes MediaError: broken media or network, the item's fault
                    result = ("refused", exc.reason, str(exc.detail)[:1000])
                cache.put(stage.name, key, result, schema=stage.schema)
                song.timings_s[stage.name] = time.perf_counter() - started
        except ConfigError:
            raise
        except OSError as exc:
            if _environment_error(exc):  # the disk is full or read-only: every song would fail alike
                raise
            song.reject = _internal(song, stage.name, exc)
            outcomes[stage.name] = "error"
            return song
        except Exception as exc:  # noqa: BLE001 - a bug (ContractError included): recorded, counted, never cached
            song.reject = _internal(song, stage.name, exc)
            outcomes[stage.name] = "error"
            return song
        if result[0] == "refused":
            song.reject = Reject(song.cover.id, stage.name, result[1], result[2])
            outcomes[stage.name] = "refused"
            return song
        song.apply(stage.name, result[1], ctx)
    return song


def _environment_error(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT)


def _internal(song: Song, stage: str, exc: BaseException) -> Reject:
    tb = traceback.format_exc(limit=-3).replace("\n", " | ")[-600:]
    return Reject(song.cover.id, stage, f"internal_error:{type(exc).__name__}", f"{exc} | {tb}"[:1000])


def _first_bad_field(table: str, rows: list[dict]) -> str:
    for f in TABLES[table]:
        try:
            pa.array([r.get(f.name) for r in rows], type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            return f.name
    return "?"


def _done_views(song: Song):
    """Each stage that ran, with what its row makers may read: its reads, its writes, the source fields."""
    for name in song.done:
        stage = PIPELINE.by_name[name]
        yield stage, PIPELINE.view(stage, song.values, extra=(*stage.writes, *SOURCE_FIELDS))


def song_rows(song: Song, tables: tuple[str, ...] | None = None) -> dict[str, list[dict]]:
    """The rows the stages that ran declare (`tables`: only those), and, for an accepted song, its songs row."""
    rows: dict[str, list[dict]] = {}
    for stage, view in _done_views(song):
        for table, make in stage.rows.items():
            if tables is None or table in tables:
                rows.setdefault(table, []).extend(make(view))
    if tables is None:
        rows["songs"] = [song_row(song)]
    return rows


def song_row(song: Song) -> dict:
    base = SongView(song.values, SOURCE_FIELDS, "songs")
    row = {column: make(base) for column, make in PIPELINE.song_columns.items()}
    for stage, view in _done_views(song):
        row.update({column: make(view) for column, make in stage.columns.items()})
    row["provenance"] = json.dumps(song.values["provenance"], sort_keys=True)
    return row


def song_tables(song: Song, tables: tuple[str, ...] | None = None) -> dict[str, pa.Table]:
    """One song's rows as Arrow tables of the declared schemas (Refusal `bad_metadata:<field>` if a value
    does not fit its column: validated where the record is made, never at writing)."""
    out = {}
    for table, table_rows in song_rows(song, tables).items():
        try:
            out[table] = to_table(table, table_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
            bad = _first_bad_field(table, table_rows)
            raise Refusal(f"bad_metadata:{bad}", f"{table}.{bad}: {exc}"[:500]) from exc
    return out


def run_batch(index: int, covers: list[MediaItem], cfg: BuildConfig, split_overrides: dict[str, str] | None = None) -> dict:
    """Process one batch and write its parts; returns its summary (no song data). Resumes a finished batch.
    `split_overrides`: official-video key -> split, for the videos whose hash split a small dataset overrides."""
    ctx = build_context(cfg)
    versions = stage_versions(cfg, ctx)
    key = batch_key(covers, cfg, ctx, versions, split_overrides)
    overrides = split_overrides or {}
    groups: set[str] = set()
    done = finished_batch(cfg.out, key)
    if done is not None:
        return {**done, "resumed": True}
    cache, writer = StageCache(cfg.cache_dir), BatchWriter(cfg.out, key)
    rejects, timings, internal = [], {}, 0
    counts: Counter = Counter()
    try:
        for cover in covers:
            song, outcomes = _process(cover, cfg, ctx, cache, versions)
            for name, seconds in song.timings_s.items():
                timings.setdefault(name, []).append(round(seconds, 4))
            progress.song_finished(index, song.values["song_id"], song.reject, outcomes)
            if song.reject is not None:
                rejects.append(song.reject)
                if song.reject.reason.startswith("internal_error:"):
                    internal += 1
                    if internal > cfg.max_reject_fraction * len(covers):
                        raise BuildAborted(f"{internal} of {len(covers)} songs in batch {index} hit internal errors "
                                           f"(max_reject_fraction {cfg.max_reject_fraction}); last: {song.reject.item_id} "
                                           f"at {song.reject.stage}: {song.reject.reason}: {song.reject.detail[:300]}")
                for table, data in _audit_tables(song).items():  # the matcher's audit trail of refused songs too
                    writer.add(table, REJECTED, data)
                continue
            group = song.values["video"].info.get("webpage_url") or song.values["video"].id
            split = overrides.get(group) or split_of(group, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
            groups.add(group)
            writer.write_midi(song.values["song_id"], song.values["notes"])
            for table, data in song.tables.items():
                writer.add(table, split, data)
            counts["songs"] += 1
            counts[f"split:{split}"] += 1
            counts[f"transcriber:{song.values['transcriber']}"] += 1
            counts["music_s"] += song.values.get("cover_duration_s") or 0.0
        if rejects:
            writer.add("rejects", REJECTED, to_table("rejects", [S.reject_row(r) for r in rejects]))
        summary = {"key": key, "index": index, "songs": counts["songs"], "rejects": len(rejects),
                   "reject_reasons": dict(Counter(f"{r.stage}:{r.reason}" for r in rejects)),
                   "reject_examples": {f"{r.stage}:{r.reason}": f"{r.item_id}: {r.detail[:160]}" for r in rejects},
                   "splits": {k[6:]: v for k, v in counts.items() if k.startswith("split:")},
                   "split_groups": sorted(groups),  # the accepted songs' official-video keys (split units)
                   "transcribers": {k[12:]: v for k, v in counts.items() if k.startswith("transcriber:")},
                   "music_s": round(counts["music_s"], 3), "stage_s": timings,
                   "cache_hits": cache.hits, "cache_misses": cache.misses,
                   "cache_invalid": dict(cache.invalid), "internal_errors": internal,
                   "hash_index_rebuilt": ctx.content_hash.__self__.rebuilt}
        return writer.commit(summary)
    except BaseException:
        writer.abort()
        raise


def _process(cover: MediaItem, cfg: BuildConfig, ctx: S.BuildContext, cache: StageCache,
             versions: dict) -> tuple[Song, dict[str, str]]:
    """One cover through every stage and into its tables (`song.tables`), or a reject."""
    outcomes: dict[str, str] = {}
    try:
        song = Song.of(cover, ctx.content_hash(cover.media_path))
    except OSError as exc:
        song = Song.of(cover, "")
        song.reject = Reject(cover.id, "discover", "missing_media", f"{type(exc).__name__}: {exc}"[:500])
        return song, outcomes
    song = run_stages(song, cfg, ctx, cache, versions, outcomes)
    if song.reject is None:
        try:
            song.tables = song_tables(song)
        except Refusal as exc:
            song.reject = Reject(cover.id, "write", exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a bug in a row maker: counted like a stage bug
            song.reject = Reject(cover.id, "write", f"internal_error:{type(exc).__name__}", str(exc)[:1000])
    return song, outcomes


def _audit_tables(song: Song) -> dict[str, pa.Table]:
    try:
        return song_tables(song, AUDIT_TABLES)
    except Exception:  # noqa: BLE001 - the audit trail of a refused song never costs the build
        return {}


def merge_summaries(summaries: list[dict]) -> dict:
    """The build report's counts from the batches' summaries (the parent never sees song data)."""
    total: dict = {"songs": 0, "rejects": 0, "reject_reasons": Counter(), "splits": Counter(),
                   "transcribers": Counter(), "music_s": 0.0, "cache_hits": Counter(), "cache_misses": Counter(),
                   "cache_invalid": Counter(),
                   "batches_resumed": 0, "reject_examples": {}, "hash_index_rebuilt": 0}
    stage_s: dict[str, list[float]] = {}
    for s in summaries:
        for k in ("songs", "rejects", "music_s", "hash_index_rebuilt"):
            total[k] += s.get(k, 0)
        for k in ("reject_reasons", "splits", "transcribers", "cache_hits", "cache_misses", "cache_invalid"):
            total[k].update(s.get(k, {}))
        for reason, example in s.get("reject_examples", {}).items():
            total["reject_examples"].setdefault(reason, example)
        total["batches_resumed"] += bool(s.get("resumed"))
        for name, values in s["stage_s"].items():
            stage_s.setdefault(name, []).extend(values)
    total["stage_s"] = {n: {"songs": len(v), "total_s": round(sum(v), 3), "median_s": round(statistics.median(v), 3)}
                        for n, v in stage_s.items()}
    total["hours_music"] = round(total.pop("music_s") / 3600, 4)
    return {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in total.items()}
