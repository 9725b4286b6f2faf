"""Pipeline core v2 (issue 12): layer contracts, content-keyed cache keys, the error contract, the build
lock, the manifest, and a hostile corpus of single bad items that must neither sink nor poison a build."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import symmv
from symmv.core.errors import BuildAborted, ConfigError
from symmv.core.records import MediaItem
from symmv.pipeline import registry
from symmv.pipeline.config import BuildConfig
from symmv.core.schema import SONGS
from symmv.pipeline.sources import get_source
from symmv.pipeline.stages import BuildContext
from conftest import TINY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def swap_stage(monkeypatch):
    """Replace one registry entry for a test: the batch runner gets a pipeline made with it."""
    from symmv.pipeline import batch
    from symmv.pipeline.contract import Pipeline

    def swap(name: str, **changes):
        stages = [replace(s, **changes) if s.name == name else s for s in batch.PIPELINE.stages]
        monkeypatch.setattr(batch, "PIPELINE", Pipeline(stages, registry.SONG_COLUMNS, SONGS.names))
        return batch.PIPELINE

    return swap


def test_import_layers_hold():
    """import-linter's contracts in pyproject.toml: layers one way, annotators on symmv.core only."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout and "4 kept" in proc.stdout


# ---------------------------------------------------------------- cache keys

class _Videos:
    name = "test"

    def __init__(self, listing="a"):
        self.listing = listing

    def identity(self, content_hash):
        return self.listing


def _keys(values, cfg, ctx, versions=None, pipeline=None):
    pipeline, keys = pipeline or registry.PIPELINE, {}
    for stage in pipeline.stages:
        v = (versions or {}).get(stage.name, {"v": 1})
        keys[stage.name] = pipeline.key(stage, values, cfg, ctx, keys, v)
    return keys


@pytest.fixture
def keyed():
    cover = MediaItem("c1", "/src/covers/c1.m4a", {"id": "c1", "title": "A - B (Piano Cover)", "duration": 10.0})
    values = {"cover": cover, "song_id": "c1", "cover_sha256": "abc", "video": MediaItem("v1", "/src/videos/v1.mp4", {}),
              "video_sha256": "def"}
    return values, BuildConfig(), BuildContext(source=get_source("local"), videos=_Videos(), content_hash=lambda p: "h")


def test_keys_never_depend_on_out_or_source_folder(keyed):
    values, cfg, ctx = keyed
    moved = {**values, "cover": MediaItem("c1", "/elsewhere/c1.m4a", dict(values["cover"].info)),
             "video": MediaItem("v1", "/elsewhere/v1.mp4", {})}
    other = replace(cfg, out=Path("/tmp/another-out"), source_dir=Path("/elsewhere"), workers=7, batch_size=3,
                    cache_dir=Path("/c"))
    assert _keys(values, cfg, ctx) == _keys(moved, other, ctx)


def test_content_change_changes_every_key_of_that_song(keyed):
    values, cfg, ctx = keyed
    a, b = _keys(values, cfg, ctx), _keys({**values, "cover_sha256": "abd"}, cfg, ctx)
    assert all(a[s] != b[s] for s in a)


def test_backend_version_or_weights_change_recompute_transcription_and_later_only(keyed):
    values, cfg, ctx = keyed
    base = _keys(values, cfg, ctx)
    for change in ({"v": 2}, {"v": 1, "weights_sha256": "new"}):
        new = _keys(values, cfg, ctx, {"transcribe": change})
        assert {s for s in base if base[s] != new[s]} == {"transcribe", "music_qc", "rhythm", "symbolic"}


def test_config_field_and_candidate_listing_reach_only_their_stages(keyed):
    values, cfg, ctx = keyed
    base = _keys(values, cfg, ctx)
    qc = _keys(values, replace(cfg, qc_min_duration_s=7.0), ctx)
    assert {s for s in base if base[s] != qc[s]} == {"music_qc"}
    tracker = _keys(values, cfg, ctx, {"rhythm": {"tracker": "notes"}})  # the resolved tracker is a version
    assert {s for s in base if base[s] != tracker[s]} == {"rhythm", "symbolic"}
    listing = _keys(values, cfg, replace(ctx, videos=_Videos("b")))
    assert {s for s in base if base[s] != listing[s]} == {"match", "video", "alignment"}


def test_annotator_code_change_changes_its_key(keyed, swap_stage):
    values, cfg, ctx = keyed
    base = _keys(values, cfg, ctx)
    changed = _keys(values, cfg, ctx, pipeline=swap_stage("symbolic", code=("annotators.key",)))
    assert changed["symbolic"] != base["symbolic"] and changed["transcribe"] == base["transcribe"]


# ---------------------------------------------------------------- error contract, validation, lock, manifest

@pytest.mark.parametrize("field,value", [("transcriber", "basicpitch"), ("beat_tracker", "librosa"),
                                         ("semantic_encoder", "clip-vit"), ("task_runner", "celery"),
                                         ("source", "vimeo"), ("source_dir", Path("/no/such/folder")),
                                         ("batch_size", 0), ("val_fraction", 0.95)])
def test_config_errors_are_caught_before_any_song(field, value, tiny_source):
    from symmv.pipeline.build import validate

    with pytest.raises(ConfigError):
        validate(replace(BuildConfig(source_dir=tiny_source), **{field: value}))


def test_cli_config_error_is_one_line_and_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "symmv.cli", "build", "--transcriber", "basicpitch",
                           "--out", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown transcriber 'basicpitch'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and not (tmp_path / "o").exists()


def test_second_build_on_the_same_out_fails_fast(tmp_path):
    from symmv.pipeline.writer import BuildLock

    holder = subprocess.Popen([sys.executable, "-c", "import sys; from symmv.pipeline.writer import BuildLock\n"
                               f"with BuildLock({str(tmp_path)!r}):\n print('held', flush=True); sys.stdin.read()"],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"  # another process's build (the lock is re-entrant in one)
    with pytest.raises(BuildAborted, match="another build is writing"):
        with BuildLock(tmp_path):
            pass
    holder.communicate("", timeout=60)
    with BuildLock(tmp_path):  # released: the next build may go
        pass


def test_internal_errors_stop_the_build_past_the_fraction(tiny_source, tmp_path, swap_stage):
    from symmv.pipeline.batch import run_batch
    from symmv.pipeline.build import discover_covers

    def bug(song, cfg, ctx):
        raise KeyError("a programming error")

    swap_stage("match", run=bug)
    cfg = BuildConfig(source_dir=tiny_source, out=tmp_path / "out", cache_dir=tmp_path / "cache", **TINY)
    covers, _ = discover_covers(cfg)
    with pytest.raises(BuildAborted, match="internal errors"):
        run_batch(0, covers, cfg)
    assert not list((tmp_path / "out" / ".batches").glob("*"))  # the aborted batch left nothing behind
    summary = run_batch(0, covers, replace(cfg, max_reject_fraction=1.0))
    assert summary["reject_reasons"] == {"match:internal_error:KeyError": len(covers)}
    assert not list((tmp_path / "cache" / "stages" / "match").rglob("*.pkl"))  # bugs are never cached


def test_load_follows_the_manifest(tiny_build, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_build[0], root)
    stray = root / "notes" / "split=train" / "part-stray.parquet"
    shutil.copy(next((root / "notes").glob("split=*/part-*.parquet")), stray)
    assert len(symmv.load("notes", root=root)) == len(symmv.load("notes", root=tiny_build[0]))


# ---------------------------------------------------------------- the hostile corpus

def _info(folder: Path, item_id: str, stem: str | None = None, **fields) -> Path:
    path = folder / f"{stem or item_id}.info.json"
    path.write_text(json.dumps({"id": item_id, **fields}))
    return path


@pytest.fixture(scope="module")
def hostile_build(tiny_source, tiny_build, build_cache, tmp_path_factory):
    from flows.build import build_symmv
    from symmv.sources.local import discover

    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(tiny_source / "covers", root / "covers")
    shutil.copytree(tiny_source / "videos", root / "videos")
    covers, videos = root / "covers", root / "videos"
    good = discover(covers)[0]
    built = set(symmv.load("songs", root=tiny_build[0]).cover_id)
    song = next(c for c in good if c.id in built)
    audio = Path(song.media_path)
    title = song.title

    def cover(item_id: str, stem: str | None = None, media: Path | None = None, **fields):
        shutil.copy(media or audio, covers / f"{stem or item_id}.m4a")
        _info(covers, item_id, stem, **{"title": title, "duration": song.duration_s, **fields})

    cover("badgenre001", genre=5)  # wrong type in the info.json
    cover("dupcover001", stem="dupcover001")  # two info.json files with one id: this one is named by it,
    cover("dupcover001", stem="dupcover001b")  # this one only claims it (rejected, the first keeps the id)
    cover("claimpair01", paired_video={"id": "someother1", "webpage_url": "https://youtu.be/someother1"})
    cover("liar0000001", duration=32.0)  # a 6 s file claiming 32 s
    other = next(c for c in good if c.id in built and c.id != song.id)  # another piece, titled as this one:
    cover("wrongpiece1", media=Path(other.media_path), duration=other.duration_s)  # its video's soundtrack differs
    blip = covers / "blip0000001.m4a"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(audio), "-t", "0.3", str(blip)], check=True)
    _info(covers, "blip0000001", title=title, duration=0.3)
    some_video = next(videos.glob("*.mp4"))
    shutil.copy(some_video, videos / "baddur00001.mp4")
    _info(videos, "baddur00001", title=title, duration="32.6")  # a string duration on a candidate video
    os.symlink(videos / "nothing-here.mp4", videos / "dangling001.mp4")
    _info(videos, "dangling001", title=title, duration=6.0)
    out = root / "out"
    summary = build_symmv(config=BuildConfig(source_dir=root, out=out, card_dir=root / "cards", progress=False, **TINY,
                                             cache_dir=build_cache))
    return out, summary, song


def test_each_bad_item_is_its_own_reject_row(hostile_build):
    out, summary, _ = hostile_build
    rejects = symmv.load("rejects", root=out)
    got = {(r.item_id, r.stage, r.reason) for r in rejects.itertuples()}
    assert ("badgenre001", "discover", "bad_metadata:genre") in got
    assert ("dupcover001", "discover", "duplicate_id") in got
    assert sum(1 for g in got if g[0] == "dupcover001") == 1 and (rejects.item_id == "dupcover001").sum() == 1
    assert "dupcover001b.m4a" in rejects[rejects.item_id == "dupcover001"].detail.item()
    assert ("liar0000001", "measure", "bad_metadata:duration") in got
    assert ("blip0000001", "measure", "too_short") in got
    assert ("baddur00001", "discover_videos", "bad_metadata:duration") in got
    assert ("dangling001", "discover_videos", "missing_media") in got
    assert ("wrongpiece1", "alignment", "low_confidence") in got  # the video's soundtrack is another piece
    assert summary["reject_reasons"]["alignment:low_confidence"] == 1  # and only that cover is refused
    assert "| `alignment` | `low_confidence` | 1 | `wrongpiece1` |" in (out / "README.md").read_text()


def test_bad_items_neither_sink_nor_poison_the_good_ones(hostile_build, tiny_build):
    out, summary, song = hostile_build
    songs = symmv.load("songs", root=out)
    reference = symmv.load("songs", root=tiny_build[0])
    assert set(reference.cover_id) <= set(songs.cover_id)  # every good song is still built
    claimed = songs[songs.cover_id == "claimpair01"]
    for row in claimed.itertuples():  # a local info.json cannot skip matching by claiming a pair
        assert json.loads(row.provenance)["match"] != "paired by the source"
        assert row.video_id != "someother1"
    mine = songs[songs.cover_id == song.id].drop(columns=["split", "provenance", "video_tempo_bpm"]).reset_index(drop=True)
    ref = reference[reference.cover_id == song.id].drop(columns=["split", "provenance", "video_tempo_bpm"]).reset_index(drop=True)
    assert mine.equals(ref)
    midi = {p.name for p in (out / "midi").glob("*.mid")}
    assert midi == {f"{s}.mid" for s in songs.song_id}  # one MIDI per song, none for rejects


# ---------------------------------------------------------------- QC and alignment stages in the build

def test_music_qc_rows_for_every_song(tiny_build):
    root, _ = tiny_build
    songs, qc = symmv.load("songs", root=root), symmv.load("music_qc", root=root)
    assert set(qc.song_id) == set(songs.song_id) and qc.qc_reason.isna().all()
    assert all("music_qc" in json.loads(p) for p in songs.provenance)


def test_default_build_aligns_every_demo_pair_to_its_known_time_map(tiny_build, tiny_source):
    """Alignment is on by default: every matched demo pair gets a monotone path that agrees with the demo's
    known answer (ground_truth/<cover>.alignment.json: video_s = intro_s + cover_s * stretch) at the cover's
    note onsets, and none is refused (each soundtrack is the same piece)."""
    import numpy as np

    from annotators.alignment import LOW_CONFIDENCE
    from symmv.io.midi import read_notes

    root, summary = tiny_build
    songs, alignment = symmv.load("songs", root=root).set_index("song_id"), symmv.load("alignment", root=root)
    assert summary["reject_reasons"].get("alignment:low_confidence", 0) == 0
    assert len(alignment) == len(songs) >= 2  # every kept song has its alignment row
    for row in alignment.itertuples():
        cover, video = np.asarray(row.cover_time_s), np.asarray(row.video_time_s)
        assert row.confidence >= LOW_CONFIDENCE and len(cover) == len(video) >= 2
        assert np.all(np.diff(cover) > 0) and np.all(np.diff(video) >= 0)  # a warping path: monotone
        assert 0 <= video[0] and video[-1] <= songs.loc[row.song_id, "video_duration_s"] + 0.5
        assert json.loads(songs.loc[row.song_id, "provenance"])["alignment"].startswith("align-")
        cover_id = songs.loc[row.song_id, "cover_id"]
        truth = json.loads((tiny_source / "ground_truth" / f"{cover_id}.alignment.json").read_text())
        onsets = np.unique([n.onset_s for n in read_notes(tiny_source / "ground_truth" / f"{cover_id}.mid")])
        err_ms = np.abs(np.interp(onsets, cover, video) - (truth["intro_s"] + onsets * truth["stretch"])) * 1000
        assert np.median(err_ms) < 100 and np.percentile(err_ms, 95) < 300, (cover_id, truth, err_ms)
    card = (root / "README.md").read_text()
    assert "## Cover <-> video alignment" in card and f"{len(alignment)} of {len(songs)} songs are aligned" in card
