"""Fault-injection corpus: every bad item ends as a `rejects` row with its stage and reason, the run
completes, and the good item beside them is built exactly as on its own."""
import json
import os
import shutil
import subprocess

import pytest

import symmv
from symmv.sources.local import discover
from conftest import TINY  # noqa: E402
from symmv.card.writer import PLOT_FILES  # noqa: E402


def _cover(folder, item_id, title, media_bytes=None, media_from=None, duration=7.0, ext="m4a"):
    info = {"id": item_id, "title": title, "duration": duration, "channel": "Fault Piano", "uploader": "Fault Piano",
            "webpage_url": f"demo://cover/{item_id}", "description": "", "tags": []}
    (folder / f"{item_id}.info.json").write_text(json.dumps(info))
    media = folder / f"{item_id}.{ext}"
    if media_from is not None:
        shutil.copy(media_from, media)
    else:
        media.write_bytes(media_bytes)
    return media


@pytest.fixture(scope="module")
def fault_build(tiny_source, tiny_build, build_cache, tmp_path_factory):
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    root = tmp_path_factory.mktemp("faults")
    covers, videos = root / "covers", root / "videos"
    shutil.copytree(tiny_source / "videos", videos)
    covers.mkdir()
    built = set(symmv.load("songs", root=tiny_build[0]).cover_id)
    good = next(c for c in discover(tiny_source / "covers")[0] if c.id in built)  # has its official video
    shutil.copy(good.media_path, covers)
    shutil.copy(good.media_path.rsplit(".", 1)[0] + ".info.json", covers)
    title = good.title
    audio = good.media_path
    _cover(covers, "emptyfile01", title, media_bytes=b"")
    _cover(covers, "truncated01", title, media_bytes=open(audio, "rb").read()[:1500])
    _cover(covers, "garbage0001", title, media_bytes=os.urandom(50_000))
    silent = covers / "silent00001.m4a"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t",
                    str(good.duration_s),
                    "-c:a", "aac", str(silent)], check=True)
    _cover(covers, "silent00001", title, media_bytes=silent.read_bytes(), duration=good.duration_s)
    long_file = covers / "thirtymin01.m4a"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:r=8000", "-t", "1800",
                    "-c:a", "aac", "-b:a", "16k", str(long_file)], check=True)
    _cover(covers, "thirtymin01", title, media_bytes=long_file.read_bytes(), duration=1800.0)
    # Hostile metadata: a path-traversal id, control characters, a 10 KB title.
    _cover(covers, "hostile0001", "../../etc/passwd \x00\x1b[31m" + "A" * 10_000, media_from=audio)
    (covers / "brokenjson1.info.json").write_text("{not json")
    (covers / "brokenjson1.m4a").write_bytes(b"\0")
    # A corrupt "official" video for a song that has a good cover.
    beach = good
    _cover(covers, "beachcover1", "Zed Zebra - Broken Video Song (Piano Cover)", media_from=beach.media_path)
    (videos / "corruptvid1.mp4").write_bytes(os.urandom(80_000))
    (videos / "corruptvid1.info.json").write_text(json.dumps({
        "id": "corruptvid1", "title": "Zed Zebra - Broken Video Song (Official Music Video)", "channel": "Zed Zebra",
        "duration": 6.0, "webpage_url": "demo://video/corruptvid1"}))
    out = root / "out"
    summary = build_symmv(config=BuildConfig(source_dir=root, out=out, card_dir=root / "cards", progress=False, **TINY,
                                             cache_dir=build_cache))
    return root, out, summary


@pytest.mark.slow
def test_every_bad_item_is_quarantined_with_its_stage_and_reason(fault_build):
    root, out, summary = fault_build
    rejects = symmv.load("rejects", root=out).set_index("item_id")
    got = {item: (row.stage, row.reason) for item, row in rejects.iterrows()}
    assert got["emptyfile01"] == ("measure", "unreadable_media")
    assert got["truncated01"][0] in ("measure", "alignment", "transcribe") and got["truncated01"][1] in (
        "unreadable_media", "undecodable_audio", "empty_audio", "silent_audio", "no_notes")
    assert got["garbage0001"] == ("measure", "unreadable_media")
    assert got["silent00001"] == ("alignment", "silent_audio")  # alignment (on by default) decodes the cover first
    assert got["thirtymin01"] == ("measure", "too_long")
    assert got["hostile0001"][0] == "match"
    assert got["brokenjson1"] == ("discover", "bad_info_json")
    assert got["beachcover1"][0] == "video" and got["beachcover1"][1] in ("unreadable_video", "zero_frames")
    assert all(len(d) for d in rejects.detail)


@pytest.mark.slow
def test_good_item_is_unaffected_and_nothing_escapes_the_output(fault_build, tiny_build):
    root, out, summary = fault_build
    songs = symmv.load("songs", root=out)
    assert summary["songs"] == len(songs) == 1
    reference = symmv.load("notes", root=tiny_build[0])
    mine = symmv.load("notes", root=out)
    ref_song = reference[reference.song_id == songs.song_id[0]].drop(columns="split").reset_index(drop=True)
    assert ref_song.equals(mine.drop(columns="split").reset_index(drop=True))
    written = {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()}
    assert written <= {"songs", "notes", "beats", "chords", "key_windows", "video_features", "matches", "rejects",
                       "midi", "build_report.json", "build.log", "_manifest.json", ".batches", ".build.lock",
                       ".symmv-dataset", "music_qc", "alignment", "README.md", *PLOT_FILES.values()}
    assert not (root.parent / "etc").exists()
