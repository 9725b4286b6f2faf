"""The stage contract (symmv.pipeline.contract, issue 21): declared reads/writes/rows, the order derived from
them, keys that cover each stage's own code and constants, and the source registry the stages ask."""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

import symmv
from symmv.core.records import MediaItem, Note
from symmv.core.schema import SONGS
from symmv.pipeline import batch, registry
from symmv.pipeline import stages as S
from symmv.pipeline.cache import StageCache
from symmv.pipeline.config import BuildConfig
from symmv.pipeline.contract import ContractError, ListOf, Pipeline, Stage, fingerprint
from symmv.pipeline.sources import SOURCES, get_source, media_is_midi
from video_clips import moving, needs_ffmpeg


def _stage(name, reads=(), writes=None, run=None, **kw):
    return Stage(name, run or (lambda song, cfg, ctx: {}), reads=reads, writes=writes or {}, **kw)


# ---------------------------------------------------------------- the declarations themselves

def test_registry_order_puts_every_stage_after_the_writers_of_what_it_reads():
    p = registry.PIPELINE
    position = {name: i for i, name in enumerate(p.names)}
    for stage in p.stages:
        for f in stage.reads:
            if f in p.writer:
                assert position[p.writer[f]] < position[stage.name], (stage.name, f)
    # the same declarations in reverse give an order that still holds (it is derived, not listed)
    reverse = Pipeline(list(reversed(registry.STAGES)), registry.SONG_COLUMNS, SONGS.names)
    assert set(reverse.names) == set(p.names) and reverse.after == p.after
    assert p.writer["cover_duration_s"] == "measure"  # one writer: the video filter always sees it


@pytest.mark.parametrize("stages,match", [
    ([_stage("a", reads=("nobody_writes_this",))], "which no stage writes"),
    ([_stage("a", writes={"x": int}), _stage("b", writes={"x": int})], "written by both"),
    ([_stage("a", reads=("y",), writes={"x": int}), _stage("b", reads=("x",), writes={"y": int})], "no order"),
    ([_stage("a", writes={"cover": str})], "written by both"),
])
def test_broken_declarations_are_errors_at_start_up(stages, match):
    with pytest.raises(ContractError, match=match):
        Pipeline(stages, {"song_id": lambda s: s.song_id}, ["song_id"])


def test_songs_columns_must_cover_the_schema_exactly():
    columns = dict(registry.SONG_COLUMNS)
    del columns["cover_url"]
    with pytest.raises(ContractError, match="by nobody.*cover_url"):
        Pipeline(registry.STAGES, columns, SONGS.names)
    with pytest.raises(ContractError, match="not in the schema.*mood"):
        Pipeline(registry.STAGES, {**registry.SONG_COLUMNS, "mood": lambda s: None}, SONGS.names)


def test_view_is_read_only_and_only_what_was_declared():
    stage = _stage("peek", reads=("cover",))
    view = registry.PIPELINE.view(stage, {"cover": MediaItem("c", "c.m4a", {}), "raw_notes": [Note(0, 1, 60, 80)]})
    assert view.cover.id == "c"
    with pytest.raises(ContractError, match="reads 'raw_notes'"):
        view.raw_notes
    with pytest.raises(ContractError, match="assigned"):
        view.cover = None


def test_writes_are_checked_by_type_and_name():
    stage = _stage("t", writes={"n": int | None, "notes": ListOf(Note)})
    stage.check({"n": None, "notes": [Note(0, 1, 60, 80)], "provenance": {"n": "test 1"}})
    for bad in ({"n": "3"}, {"notes": [1, 2]}, {"other": 1}, {"provenance": {"n": 3}}):
        with pytest.raises(ContractError):
            stage.check(bad)
    assert stage.conforms(("ok", {"n": 3})) and stage.conforms(("refused", "no_notes", "none"))
    assert not stage.conforms(("ok", {"n": "3"})) and not stage.conforms("hello") and not stage.conforms(("ok",))


def test_a_cached_result_of_another_shape_is_a_miss(tmp_path):
    cache, stage = StageCache(tmp_path), registry.PIPELINE.by_name["measure"]
    cache.put("measure", "k" * 64, ("ok", {"cover_duration_s": "six"}), schema=stage.schema)
    assert cache.get("measure", "k" * 64, schema=stage.schema, check=stage.conforms) is None
    assert cache.invalid["measure"] == 1
    cache.put("measure", "k" * 64, ("ok", {"cover_duration_s": 6.0}), schema=stage.schema)
    assert cache.get("measure", "k" * 64, schema=stage.schema, check=stage.conforms) == ("ok", {"cover_duration_s": 6.0})


# ---------------------------------------------------------------- keys cover a stage's own code and constants

def test_fingerprint_covers_the_constants_and_helpers_a_stage_names(monkeypatch):
    align, measure = fingerprint(S.align_to_video), fingerprint(S.measure_cover)
    monkeypatch.setattr(S, "ALIGN_SAMPLE_RATE", 16000)
    assert fingerprint(S.align_to_video) != align and fingerprint(S.measure_cover) == measure
    monkeypatch.setattr(S, "MEDIA_DURATION_TOLERANCE_S", 5.0)
    assert fingerprint(S.measure_cover) != measure
    rhythm = fingerprint(S.track_rhythm)
    monkeypatch.setattr(S, "beat_tracker_name", lambda cfg: "madmom")  # a same-module helper it calls
    assert fingerprint(S.track_rhythm) != rhythm


def test_transcription_key_covers_the_backend_code():
    identity = S.transcriber_identity(BuildConfig(transcriber="midi-file"), lambda p: "h")
    assert identity["backend"] == "midi-file" and len(identity["code"]) == 12


# ---------------------------------------------------------------- the source registry

def test_sources_say_what_their_media_implies():
    release, local = get_source("symmv-release"), get_source("local")
    assert (release.transcriber, release.beat_tracker) == ("midi-file", "notes")
    assert (local.transcriber, local.beat_tracker) == ("", "madmom") and SOURCES["youtube"].crawls
    cfg = BuildConfig(source="symmv-release")
    assert (S.transcriber_name(cfg), S.beat_tracker_name(cfg)) == ("midi-file", "notes")
    assert S.beat_tracker_name(replace(cfg, beat_tracker="madmom")) == "madmom"  # the config still wins
    assert media_is_midi(MediaItem("a", "x/1.MID", {})) and not media_is_midi(MediaItem("a", "x/1.m4a", {}))
    with pytest.raises(Exception, match="unknown source 'vimeo'"):
        get_source("vimeo")


def _mini_release(root: Path, songs: dict[str, tuple[float, float]]) -> Path:
    """A release-layout source: per index, `midi_s` seconds of notes and a `video_s`-second video."""
    from symmv.io.midi import write_notes

    (root / "midi").mkdir(parents=True)
    (root / "videos").mkdir()
    with open(root / "SymMV.csv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["index", "youtube_url", "shazam_id"])
        for i, (index, (midi_s, video_s)) in enumerate(sorted(songs.items())):
            w.writerow([index, f"https://www.youtube.com/watch?v=vid{i:08d}", ""])
            notes = [Note(t * 0.25, t * 0.25 + 0.2, 60 + (t * 7) % 12, 80) for t in range(int(midi_s * 4))]
            write_notes(notes, root / "midi" / f"{index}.mid")
            moving(root / "videos" / f"{index}.mp4", seconds=video_s)
    return root


@needs_ffmpeg
def test_midi_source_videos_get_the_duration_filter(tmp_path):
    """v2 set a MIDI cover's length in transcribe, after the video stage: the duration filter never ran."""
    from flows.build import build_symmv

    src = _mini_release(tmp_path / "release", {"0001": (8.0, 8.0), "0002": (40.0, 6.0)})
    out = tmp_path / "ds"
    summary = build_symmv(config=BuildConfig(source="symmv-release", source_dir=src, out=out, card_dir=tmp_path / "c",
                                             semantic_encoder="none", progress=False, cache_dir=tmp_path / "cache"))
    rejects = symmv.load("rejects", root=out)
    assert list(zip(rejects.item_id, rejects.stage, rejects.reason)) == [("symmv-0002", "video", "duration_mismatch")]
    songs = symmv.load("songs", root=out)
    assert list(songs.cover_id) == ["symmv-0001"] and summary["songs"] == 1
    assert songs.cover_duration_s[0] == pytest.approx(7.95, abs=0.01) and songs.video_duration_s[0] > 7
    assert songs.transcriber[0].startswith("midi-file")  # implied by the source, no flag


# ---------------------------------------------------------------- adding a field

def test_adding_a_songs_field_is_a_function_and_one_declaration(tiny_source, tiny_build, build_cache, tmp_path,
                                                                monkeypatch):
    """A new stage writes `mean_velocity` and declares its songs column; the runner orders it after the
    notes' writer, checks its value and makes the column, with nothing else touched but the schema -- and
    every other stage's cached result still serves (their keys did not move)."""
    import pyarrow as pa

    from symmv.core import schema, shards
    from symmv.pipeline.build import discover_covers

    def mean_velocity(song, cfg, ctx) -> dict:
        return {"mean_velocity": sum(n.velocity for n in song.raw_notes) / len(song.raw_notes)}

    extra = Stage("loudness", mean_velocity, reads=("raw_notes",), writes={"mean_velocity": float},
                  columns={"mean_velocity": lambda s: s.mean_velocity})
    songs_schema = SONGS.append(pa.field("mean_velocity", pa.float64()))
    pipeline = Pipeline([extra, *registry.STAGES], registry.SONG_COLUMNS, songs_schema.names)
    assert pipeline.names.index("loudness") > pipeline.names.index("transcribe")
    monkeypatch.setattr(batch, "PIPELINE", pipeline)
    monkeypatch.setitem(schema.TABLES, "songs", songs_schema)
    monkeypatch.setattr(shards, "TABLES", schema.TABLES)
    from conftest import TINY

    cfg = BuildConfig(source_dir=tiny_source, out=tmp_path / "out", cache_dir=build_cache, **TINY)
    covers, _ = discover_covers(cfg)
    ctx = batch.build_context(cfg)
    cache, versions = StageCache(cfg.cache_dir), batch.stage_versions(cfg, ctx)
    built = [s for s in (batch._process(c, cfg, ctx, cache, versions)[0] for c in covers) if s.reject is None]
    assert built  # the tiny source's genuine covers (its planted failures are refused)
    for song in built:
        row = song.tables["songs"].to_pylist()[0]
        notes = song.values["raw_notes"]
        assert row["mean_velocity"] == pytest.approx(sum(n.velocity for n in notes) / len(notes))
    assert set(cache.misses) == {"loudness"}, cache.misses


# ---------------------------------------------------------------- settings: paths defined once

def test_settings_paths_live_in_the_repository_and_the_card_finds_the_accuracy_file():
    from symmv.card.sections import annotator_accuracy
    from symmv.core import settings

    assert (settings.REPO_ROOT / "pyproject.toml").is_file() and settings.BENCH_RESULTS.is_dir()
    assert not settings.DEFAULT_DATASET.is_absolute()
    if (settings.BENCH_RESULTS / "eval_annotators.json").is_file():  # v2 looked for it under symmv/bench/
        data, source = annotator_accuracy(None)
        assert data and "bench/results/eval_annotators.json" in source


def test_no_absolute_machine_paths_in_the_code():
    from symmv.core import settings

    offenders = [str(p.relative_to(settings.REPO_ROOT)) for folder in ("symmv", "models", "flows", "annotators", "bench")
                 for p in (settings.REPO_ROOT / folder).rglob("*.py") if "/work/" in p.read_text()]
    assert offenders == []


def test_songs_carry_the_meter_of_their_beats(tiny_build):
    """The real example of adding a field (issue 21's note): `meter`, the rhythm stage's beats per bar."""
    from collections import Counter

    root, _ = tiny_build
    songs, beats = symmv.load("songs", root=root), symmv.load("beats", root=root)
    assert len(songs) and songs.meter.notna().all()
    for song in songs.itertuples():
        bars = Counter(beats[beats.song_id == song.song_id].bar).values()
        assert song.meter == Counter(bars).most_common(1)[0][0]
