"""The correspondence benchmark's source: videos rendered from their own music carry its harmony and rhythm."""
import colorsys
import csv

import numpy as np
import pytest

from symmv.core.records import Note
from symmv.features.video import video_features
from symmv.io.midi import write_notes
from symmv.sources.correspondence import (SCENES, CorrespondenceConfig, build_correspondence_source, clip_notes,
                                          render_frames)
from symmv.sources.release import discover_release


def _c_major_dense(seconds: float) -> list[Note]:  # C-E-G eighths at 120 BPM, a bass C on every beat
    notes = []
    for k in range(int(seconds * 4)):
        t = k * 0.25
        notes.append(Note(t, t + 0.25, (72, 76, 79)[k % 3], 90))
        if k % 2 == 0:
            notes.append(Note(t, t + 0.5, 48, 80))
    return notes


def _a_minor_sparse(seconds: float) -> list[Note]:  # an A minor triad every 1.0 s
    return [Note(t, t + 0.9, p, 60) for t in np.arange(0, seconds, 1.0) for p in (57, 60, 64)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    release = tmp_path_factory.mktemp("release")
    (release / "midi").mkdir()
    write_notes(_c_major_dense(14), release / "midi" / "00001.mid")
    write_notes(_a_minor_sparse(14), release / "midi" / "00002.mid")
    write_notes(_a_minor_sparse(3), release / "midi" / "00003.mid")  # too short for a 6 s clip
    with open(release / "SymMV.csv", "w") as fh:
        fh.write("index\tyoutube_url\ttonality\tshazam_id\n")
        for i, key in (("00001", "C major"), ("00002", "a minor"), ("00003", "a minor")):
            fh.write(f"{i}\thttps://www.youtube.com/watch?v=AAAAAAAAA{i[-2:]}\t{key}\t\n")
    cfg = CorrespondenceConfig(release=release, out=tmp_path_factory.mktemp("bench") / "src", clip_s=6.0,
                               fps=6, size=48, workers=1)
    return cfg, build_correspondence_source(cfg, progress=False)


def test_source_is_a_release_checkout_with_videos_the_release_source_reads(source):
    cfg, summary = source
    assert summary["songs"] == 2 and [s["index"] for s in summary["skipped"]] == ["00003"]
    rows = list(csv.DictReader(open(cfg.out / "SymMV.csv"), delimiter="\t"))
    assert [r["index"] for r in rows] == ["00001", "00002"] and rows[1]["tonality"] == "a minor"
    items, rejects = discover_release(cfg.out)
    assert not rejects and [i.paired_video["media_path"] for i in items] == [
        str(cfg.out / "videos" / "00001.mp4"), str(cfg.out / "videos" / "00002.mp4")]
    assert items[0].paired_video["webpage_url"].endswith("AAAAAAAAA01")  # splits still group by the real URL


def _mean_hsv(path) -> tuple[float, float, float]:
    from symmv.io.video import read_frames

    _, frames = read_frames(path, fps=2.0, size=32)  # (times_s, frames)
    rgb = frames.reshape(-1, 3).mean(0) / 255
    return colorsys.rgb_to_hsv(*rgb)


def test_colour_follows_the_chords_and_motion_follows_the_note_density(source):
    cfg, _ = source
    c_major, a_minor = _mean_hsv(cfg.out / "videos" / "00001.mp4"), _mean_hsv(cfg.out / "videos" / "00002.mp4")
    # C on the circle of fifths is hue 0 (red); A (root 9 -> 9 * 7 % 12 = 3 fifths) is hue 0.25.
    assert min(c_major[0], 1 - c_major[0]) < 0.05 and abs(a_minor[0] - 0.25) < 0.05
    assert c_major[2] > a_minor[2] + 0.2 and c_major[1] > a_minor[1]  # major bright and vivid, minor dark
    motion = video_features(cfg.out / "videos" / "00001.mp4", None, fps=2.0).motion
    assert len(motion) == 6 and (motion > 0.02).all()  # the texture drifts all the time


@pytest.mark.parametrize("scene", SCENES)
def test_motion_grows_with_the_note_density_in_every_scene(scene):
    def motion(onsets_per_s: float) -> float:
        t = np.arange(36) / 6
        desc = {"t": t, "colour": np.full((36, 3), 0.5), "density": np.full(36, onsets_per_s),
                "flash": np.zeros(36), "shot": np.zeros(36, int)}
        frames = [f.astype(np.int16) for f in render_frames(desc, scene, size=64, fps=6, seed=0)]
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])]))

    assert motion(1.0) < motion(3.0) < motion(6.0) and motion(6.0) > 1.5 * motion(1.0)


def test_a_rerun_keeps_finished_songs(source):
    cfg, _ = source
    video = cfg.out / "videos" / "00001.mp4"
    before = video.stat().st_mtime_ns
    assert build_correspondence_source(cfg, progress=False)["songs"] == 2
    assert video.stat().st_mtime_ns == before


def test_clip_notes_starts_past_the_intro_and_cuts_at_the_end():
    notes = [Note(float(t), t + 0.5, 60, 80) for t in range(40)]
    clip, t0 = clip_notes(notes, clip_s=10.0, start_fraction=0.5)
    assert t0 == 15.0 and clip[0].onset_s == 0.0 and max(n.offset_s for n in clip) <= 10.0 and len(clip) == 10
    assert clip_notes(notes[:5], clip_s=10.0, start_fraction=0.5) is None
