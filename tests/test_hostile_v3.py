"""Hostile input v3: a video with corrupt frames is refused `video:corrupt_frames` on the decoder's own report
(genuine videos, still ones included, are not), and of items sharing one id the one named by it keeps it --
with the good items beside the bad ones built exactly as on their own."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import symmv
from symmv.core.records import MediaItem
from symmv.features.video import reject_for_read_error, video_features
from symmv.io.video import (CorruptFramesError, DecodeReport, VideoReadError, decode_report, iter_streams, probe,
                            read_frames)
from symmv.sources.local import discover, unique_ids
from video_clips import cut, lavfi_clip, lyric, moving, needs_ffmpeg, solid, still
from conftest import REPO, TINY  # noqa: E402


def overwrite_middle(clean: Path, bad: Path, fraction: float = 0.4, seed: int = 0) -> Path:
    """A copy of `clean` whose middle `fraction` of bytes is random (the container header and index survive)."""
    data = bytearray(clean.read_bytes())
    start, end = int(len(data) * (0.5 - fraction / 2)), int(len(data) * (0.5 + fraction / 2))
    data[start:end] = random.Random(seed).randbytes(end - start)
    bad.write_bytes(bytes(data))
    return bad


def _decodes(path: Path) -> int:
    return sum(1 for _ in iter_streams(path, [(6.0, 224), (5.0, 64)]))


# ---------------------------------------------------------------- corrupt frames

@needs_ffmpeg
def test_video_with_a_random_middle_is_corrupt_frames_and_its_clean_copy_reads_fine(tmp_path):
    clean = moving(tmp_path / "clean.mp4", seconds=4.0)
    bad = overwrite_middle(clean, tmp_path / "bad.mp4")
    assert probe(bad).codec == "h264"  # the container still opens: this is about the frames
    with pytest.raises(CorruptFramesError) as err:
        _decodes(bad)
    assert err.value.reason == "corrupt_frames" and isinstance(err.value, VideoReadError)
    assert "packets" in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(CorruptFramesError):
        video_features(bad, encoder=None)
    reject = reject_for_read_error("vid", err.value)
    assert (reject.reason, reject.item_id) == ("corrupt_frames", "vid")
    times, frames = read_frames(clean, fps=6.0, size=32)  # the clean copy beside it
    assert len(times) == 24 and frames.shape == (24, 32, 32, 3)
    feats = video_features(clean, encoder=None)
    assert feats.n_frames == 24 and np.isfinite(feats.motion).all()


@needs_ffmpeg
@pytest.mark.parametrize("make", [
    lambda d: solid(d / "solid.mp4"),
    lambda d: still(d / "still.mp4", seconds=12.0),  # static: the `static` filter's business, not a read error
    lambda d: moving(d / "moving.mp4"),
    lambda d: cut(d / "cut.mp4"),
    lambda d: lyric(d / "lyric.mp4"),
    lambda d: lavfi_clip(d / "slideshow.mp4", "color=c=red:s=320x240:r=25:d=3[a];color=c=blue:s=320x240:r=25:d=3[b];"
                                              "color=c=green:s=320x240:r=25:d=3[c];[a][b][c]concat=n=3:v=1:a=0"),
    lambda d: _stream_copy_from_mid_gop(d),
], ids=["solid", "still", "moving", "cut", "lyric", "slideshow", "stream-copy-mid-gop"])
def test_genuine_videos_decode_without_corrupt_frames(tmp_path, make):
    assert _decodes(make(tmp_path)) > 0


def _stream_copy_from_mid_gop(folder: Path) -> Path:
    """A stream copy cut between keyframes: its edit list makes the decoder drop a GOP's head without errors
    (ffmpeg reads more packets than it decodes frames), which is not corruption."""
    source = lavfi_clip(folder / "gop.mp4", "testsrc2=s=320x240:r=30:d=8")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:v", "libx264", "-g", "150", "-preset",
                    "veryfast", str(folder / "long-gop.mp4")], check=True)
    out = folder / "copy.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "2.3", "-i", str(folder / "long-gop.mp4"), "-c", "copy",
                    str(out)], check=True)
    return out


CLIPS = REPO / ".cache" / "clips"  # the real sample clips the demo source cuts its videos from


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(p.name for p in CLIPS.glob("[!.]*")) if CLIPS.is_dir() else ["(none)"])
def test_real_sample_clips_are_not_corrupt(name):
    if not (CLIPS / name).is_file():
        pytest.skip(f"no sample clips in {CLIPS} (the demo source fetches them)")
    assert _decodes(CLIPS / name) > 0


def test_decode_report_reads_ffmpeg_5_and_7():
    v5 = ("[h264 @ 0x1] [error] Invalid NAL unit size (1801982847 > 1096).\n"
          "[error] Error while decoding stream #0:0: Invalid data found when processing input\n"
          "[warning] x.mp4: corrupt decoded frame in stream 0\n"
          "[verbose]   Input stream #0:0 (video): 250 packets read (340059 bytes); 151 frames decoded; \n"
          "[verbose]   Input stream #0:1 (audio): 400 packets read (6400 bytes); \n")
    report = decode_report(v5)
    assert (report.packets, report.frames_decoded, len(report.errors)) == (250, 151, 2)
    assert report.errors[0] == "[h264 @ 0x1] Invalid NAL unit size (1801982847 > 1096)."
    assert report.failed_packets == 2 and not report.corrupt  # bounded by the errors it reported
    v7 = ("[in#0/mov,mp4 @ 0x2] [verbose]   Input stream #0:0 (video): 600 packets read (752208 bytes); "
          "531 frames decoded; 0 decode errors; \n")
    edit_list = decode_report(v7)  # fewer frames than packets, not one error: an edit list, not corruption
    assert (edit_list.packets, edit_list.frames_decoded, edit_list.failed_packets) == (600, 531, 0)
    assert not edit_list.corrupt
    assert DecodeReport(("e",) * 40, 100, 60).corrupt and not DecodeReport(("e",) * 4, 100, 60).corrupt
    assert not decode_report("[error] killed before the end\n").corrupt  # no final counts: nothing to judge


# ---------------------------------------------------------------- duplicate ids

def _item(folder: Path, stem: str, item_id: str, media: bytes = b"audio") -> None:
    (folder / f"{stem}.info.json").write_text(json.dumps({"id": item_id, "title": f"Song {stem}"}))
    (folder / f"{stem}.m4a").write_bytes(media)


def test_the_item_named_by_its_id_keeps_it_and_the_impostor_is_rejected(tmp_path):
    _item(tmp_path, "abc", "abc", b"genuine")
    _item(tmp_path, "zzz", "abc", b"impostor")
    _item(tmp_path, "other", "other")
    items, rejects = discover(tmp_path)
    assert [(i.id, Path(i.media_path).name) for i in items] == [("abc", "abc.m4a"), ("other", "other.m4a")]
    assert [(r.item_id, r.reason) for r in rejects] == [("abc", "duplicate_id")]
    assert "zzz.m4a" in rejects[0].detail and "abc.m4a" in rejects[0].detail and "kept" in rejects[0].detail


def test_with_no_item_named_by_the_id_every_claimant_is_rejected(tmp_path):
    _item(tmp_path, "yyy", "abc")
    _item(tmp_path, "zzz", "abc")
    items, rejects = discover(tmp_path)
    assert items == [] and sorted(r.detail for r in rejects) == ["id 'abc' is not unique: also yyy.m4a",
                                                                 "id 'abc' is not unique: also zzz.m4a"]


def test_two_items_named_by_ids_that_sanitize_alike_are_both_rejected(tmp_path):
    from symmv.core.ids import sanitize_id

    _item(tmp_path, "a.b", "a.b")  # its song id is sanitize_id("a.b")
    _item(tmp_path, sanitize_id("a.b"), sanitize_id("a.b"))  # ... which is this one's own id
    items, rejects = discover(tmp_path)
    assert items == [] and {r.reason for r in rejects} == {"duplicate_id"} and len(rejects) == 2


def test_release_items_never_keep_a_shared_id():
    """The release's media is midi/<index>.mid for id symmv-<index>: no file is named by its id."""
    a = MediaItem("symmv-7", "/release/midi/7.mid", {})
    b = MediaItem("symmv-7", "/release/midi/07.mid", {})
    same_file = MediaItem("symmv-8", "/release/midi/8.mid", {})  # one entry listed twice: not a clash
    items, rejects = unique_ids([a, b, same_file, same_file], [], "discover")
    assert items == [same_file, same_file] and [r.item_id for r in rejects] == ["symmv-7", "symmv-7"]


# ---------------------------------------------------------------- both in a build, beside the good songs

@pytest.fixture(scope="module")
def hostile_build(tiny_source, tiny_build, build_cache, tmp_path_factory):
    """The tiny source plus: a cover whose official video has its middle 40 % overwritten (a copy of a good
    song's video, whose clean original stays beside it), and an impostor info.json claiming a good song's id."""
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    root = tmp_path_factory.mktemp("hostile-v3")
    covers, videos = root / "covers", root / "videos"
    shutil.copytree(tiny_source / "covers", covers)
    shutil.copytree(tiny_source / "videos", videos)
    reference = symmv.load("songs", root=tiny_build[0])
    built = {c.id: c for c in discover(covers)[0] if c.id in set(reference.cover_id)}
    frozen_from, claimed = sorted(built)[:2]
    song = built[frozen_from]
    video_id = reference.set_index("cover_id").loc[frozen_from, "video_id"]
    video_info = json.loads((videos / f"{video_id}.info.json").read_text())
    overwrite_middle(videos / f"{video_id}.mp4", videos / "frozenvid01.mp4")
    title = "Zed Zebra - Frozen Middle Song"
    (videos / "frozenvid01.info.json").write_text(json.dumps({
        "id": "frozenvid01", "title": f"{title} (Official Music Video)", "channel": "Zed Zebra",
        "duration": video_info.get("duration"), "webpage_url": "demo://video/frozenvid01"}))
    shutil.copy(song.media_path, covers / "frozenmid01.m4a")
    (covers / "frozenmid01.info.json").write_text(json.dumps({
        "id": "frozenmid01", "title": f"{title} (Piano Cover)", "duration": song.duration_s,
        "channel": "Fault Piano", "webpage_url": "demo://cover/frozenmid01"}))
    shutil.copy(song.media_path, covers / "zzzimpostor.m4a")  # other music, claiming a good song's id
    (covers / "zzzimpostor.info.json").write_text(json.dumps({**built[claimed].info, "id": claimed}))
    out = root / "out"
    summary = build_symmv(config=BuildConfig(source_dir=root, out=out, card_dir=root / "cards", progress=False, **TINY,
                                             cache_dir=build_cache))
    return out, summary, claimed, video_id


def test_frozen_middle_video_and_impostor_are_each_their_own_reject(hostile_build, tiny_build):
    out, summary, claimed, _ = hostile_build
    rejects = symmv.load("rejects", root=out)
    reference = symmv.load("rejects", root=tiny_build[0])
    got = sorted(zip(rejects.item_id, rejects.stage, rejects.reason))
    expected = sorted([*zip(reference.item_id, reference.stage, reference.reason),
                       ("frozenmid01", "video", "corrupt_frames"), (claimed, "discover", "duplicate_id")])
    assert got == expected
    detail = rejects[rejects.reason == "duplicate_id"].detail.item()
    assert "zzzimpostor.m4a" in detail and f"{claimed}.m4a" in detail
    assert "packets" in rejects[rejects.item_id == "frozenmid01"].detail.item()
    assert summary["reject_reasons"]["video:corrupt_frames"] == 1


def test_good_songs_beside_them_are_built_exactly_as_on_their_own(hostile_build, tiny_build):
    out, _, claimed, video_id = hostile_build
    volatile = ["split", "provenance", "video_tempo_bpm"]  # tempo: scaled over the build's motion range
    songs = symmv.load("songs", root=out).drop(columns=volatile).sort_values("cover_id").reset_index(drop=True)
    ref = symmv.load("songs", root=tiny_build[0]).drop(columns=volatile).sort_values("cover_id").reset_index(drop=True)
    assert songs.equals(ref)  # the claimed song included, and the clean original of the corrupted video
    assert video_id in set(songs.video_id) and claimed in set(songs.cover_id)
    notes = symmv.load("notes", root=out).drop(columns=["split"]).sort_values(["song_id", "onset_s", "pitch"])
    ref_notes = symmv.load("notes", root=tiny_build[0]).drop(columns=["split"]).sort_values(["song_id", "onset_s", "pitch"])
    assert notes.reset_index(drop=True).equals(ref_notes.reset_index(drop=True))
