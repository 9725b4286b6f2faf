"""The correspondence benchmark: SymMV release songs, each with a video rendered from its own music.

No official music video can be downloaded here, and the demo's video/music pairs are arbitrary, so nothing
offline can tell whether a model's music corresponds to its video (issue 14, item 5). This source makes the
correspondence real by construction and lets real music carry it: for each release song, a clip of its own
piano cover and a video rendered from that clip's music, frame by frame:

  colour  hue from the sounding chord's root on the circle of fifths (neighbouring keys, neighbouring hues);
          major-like chords bright and saturated, minor-like ones dark and muted; no chord is grey. So the
          RGB-uv colour histogram carries the harmony (the paper's colour <-> tonality argument, sec. 6.4).
  motion  a texture drifting at a speed that follows the note density (onsets per second over 1 s), and a
          flash on every onset scaled by its velocity. So RGB-difference motion carries the rhythm.
  cuts    a new shot (texture orientation and scale) every 4 bars, on the downbeat: phrase boundaries.
  scene   the texture family (stripes, rings, checker, ...) is chosen from the song's overall character
          (mode x register x density), standing in for genre, which the release does not label; the
          semantic encoder sees the family.

It is written in the SymMV release's own layout (`SymMV.csv`, `midi/<index>.mid`) plus `videos/<index>.mp4`
with a yt-dlp style `<index>.info.json`, so `symmv build --source symmv-release` builds it with the pipeline's
own video stage, and the evaluation that reads the built dataset runs unchanged on a release checkout that
has the real official videos in `videos/`. The correspondence here is synthetic: a model that scores well on
it has learned these rendering rules, not a director's taste. `ground_truth/<index>.json` keeps the clip's
place in the song and the per-frame descriptors the video was drawn from; the pipeline never reads it.
"""
from __future__ import annotations

import colorsys
import csv
import json
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from symmv.core import settings
from symmv.core.records import Note

MINOR_LIKE = {"m", "m7", "o", "o7"}
NO_CHORD = {"N", "X"}
SCENES = ("stripes", "checker", "rings", "dots", "waves", "hatch", "spiral", "rays")
PHRASE_BARS = 4  # a cut every 4 bars: the usual phrase length of the pop songs SymMV covers


@dataclass
class CorrespondenceConfig:
    """`symmv correspondence-source`: the correspondence benchmark's source (see symmv.sources.correspondence)."""

    release: Path = field(default_factory=settings.release_root)  # a SymMV release checkout (SymMV.csv, midi/)
    out: Path = Path("data/correspondence-source")  # where SymMV.csv, midi/, videos/ and ground_truth/ go
    n_songs: int = 0  # release entries to use, in index order (0 = all)
    clip_s: float = 24.0  # seconds of each song (one clip per song: short enough to build 999 on 2 cores)
    start_fraction: float = 0.3  # the clip starts this far into the song (intros are sparse and unrepresentative)
    fps: int = 12  # frame rate of the rendered videos
    size: int = 128  # frame side in pixels (the feature extractor resamples)
    workers: int = 2  # songs rendered concurrently
    seed: int = 0  # seed of the shot layouts (orientation, scale)


# ---------------------------------------------------------------- music -> per-frame descriptors (pure)

def clip_notes(notes: list[Note], clip_s: float, start_fraction: float) -> tuple[list[Note], float] | None:
    """The notes of a `clip_s` window starting at the first onset past `start_fraction` of the song, shifted
    to start at 0 and cut at the window's end; None when the song is shorter than the window."""
    if not notes:
        return None
    end = max(n.offset_s for n in notes)
    if end < clip_s + 1.0:
        return None
    target = start_fraction * (end - clip_s)
    t0 = next((n.onset_s for n in notes if n.onset_s >= target), notes[0].onset_s)
    t0 = min(t0, end - clip_s)
    clip = [Note(n.onset_s - t0, min(n.offset_s, t0 + clip_s) - t0, n.pitch, n.velocity)
            for n in notes if t0 <= n.onset_s < t0 + clip_s - 0.05]
    return (clip, float(t0)) if clip else None


def chord_colour(root: int | None, quality: str | None) -> tuple[float, float, float]:
    """RGB in [0, 1]: hue from the root's place on the circle of fifths, light and vivid for major-like
    chords, dark and muted for minor-like ones, grey for no chord."""
    if root is None or root < 0 or quality in NO_CHORD or quality is None:
        return (0.45, 0.45, 0.45)
    hue = ((root * 7) % 12) / 12.0
    minor = quality in MINOR_LIKE
    return colorsys.hsv_to_rgb(hue, 0.45 if minor else 0.85, 0.45 if minor else 0.9)


def song_scene(notes: list[Note], chords_: list) -> str:
    """The texture family from the song's character: mode (share of minor-like chord time), register
    (median pitch) and density (onsets per second) -> one of 8 SCENES."""
    minor_s = sum(c.end_s - c.start_s for c in chords_ if c.quality in MINOR_LIKE)
    total_s = sum(c.end_s - c.start_s for c in chords_ if c.quality not in NO_CHORD) or 1.0
    duration = max(n.offset_s for n in notes) or 1.0
    minor = minor_s / total_s > 0.4
    high = float(np.median([n.pitch for n in notes])) >= 62
    dense = len(notes) / duration >= 6.0
    return SCENES[4 * minor + 2 * high + dense]


def frame_descriptors(notes: list[Note], beats: list, chords_: list, clip_s: float, fps: int) -> dict:
    """Per video frame: colour (RGB), rhythmic density (distinct onset times per second over the surrounding
    second; a chord is one onset), onset flash
    (velocity-weighted, decaying over 0.15 s) and the shot index (a new shot every PHRASE_BARS bars)."""
    t = np.arange(int(round(clip_s * fps))) / fps
    onsets = np.array([n.onset_s for n in notes])
    velocity = np.array([n.velocity for n in notes]) / 127.0
    onset_times = np.unique(np.round(onsets / 0.05)) * 0.05  # onsets within 50 ms are one attack
    density = np.array([np.count_nonzero(np.abs(onset_times - ti) < 0.5) for ti in t], dtype=np.float64)
    age = t[:, None] - onsets[None, :]
    flash = np.clip((np.where((age >= 0) & (age < 0.15), 1 - age / 0.15, 0) * velocity).sum(1), 0, 1)
    colour = np.full((len(t), 3), 0.45)
    for c in chords_:
        colour[(t >= c.start_s) & (t < c.end_s)] = chord_colour(c.root, c.quality)
    downbeats = [b.time_s for b in beats if b.is_downbeat]
    cuts = np.array(downbeats[PHRASE_BARS::PHRASE_BARS])
    shot = np.searchsorted(cuts, t, side="right")
    return {"t": t, "colour": colour, "density": density, "flash": flash, "shot": shot, "cuts_s": cuts}


# ---------------------------------------------------------------- descriptors -> frames

def _texture(scene: str, x: np.ndarray, y: np.ndarray, phase: float, theta: float, period: float) -> np.ndarray:
    """A [0, 1] texture of the scene family, drifted by `phase` pixels along `theta`. All are smooth
    (sinusoidal), so the RGB difference between frames grows with the drift, alike for every family."""
    u = x * np.cos(theta) + y * np.sin(theta) - phase
    v = -x * np.sin(theta) + y * np.cos(theta)
    r, a = np.hypot(x, y), np.arctan2(y, x)
    w = 2 * np.pi / period
    s = {
        "stripes": np.sin(w * u),
        "checker": np.sin(w * u) * np.sin(w * v),
        "rings": np.sin(w * (r - phase)),
        "dots": np.cos(w * u) * np.cos(w * v),
        "waves": np.sin(w * (u + 0.3 * period * np.sin(w * v / 2))),
        "hatch": np.maximum(np.sin(w * u), np.sin(w * v)),
        "spiral": np.sin(w * r + 3 * a - w * phase),
        "rays": np.sin(8 * a - w * phase),
    }[scene]
    return 0.5 + 0.5 * s


def render_frames(desc: dict, scene: str, size: int, fps: int, seed: int):
    """Yield (size, size, 3) uint8 frames: the chord colour (kept inside 38-191 so nothing clips), plus
    the drifting texture at a fixed amplitude (motion the same for dark and light colours), plus the onset
    flash. Each shot draws its own orientation and scale."""
    rng = np.random.default_rng(seed)
    n_shots = int(desc["shot"].max()) + 1 if len(desc["shot"]) else 1
    layouts = [(rng.uniform(0, np.pi), rng.uniform(20, 32)) for _ in range(n_shots)]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    phase = 0.0
    for k in range(len(desc["t"])):
        # px/s follows onsets/s; at most ~8 px per 0.2 s, under half the texture period (no aliasing)
        phase += (2.0 + 6.0 * min(desc["density"][k], 7.0)) / fps
        theta, period = layouts[desc["shot"][k]]
        tex = _texture(scene, x, y, phase, theta, period)[..., None]
        rgb = np.asarray(desc["colour"][k], np.float32)
        frame = 255 * (0.15 + 0.6 * rgb) + 60 * (tex - 0.5) + 15 * desc["flash"][k]
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_video(frames, path: Path, size: int, fps: int) -> None:
    """Raw RGB frames -> H.264 MP4 through one ffmpeg pipe."""
    proc = subprocess.Popen(["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                             f"{size}x{size}", "-r", str(fps), "-i", "-", "-an", "-c:v", "libx264", "-preset",
                             "ultrafast", "-crf", "26", "-pix_fmt", "yuv420p", str(path)], stdin=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(frame.tobytes())
    finally:
        proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}")


# ---------------------------------------------------------------- one song, the whole source

def render_song(row: dict, cfg: CorrespondenceConfig) -> dict:
    """Clip one release song, render its video; returns its CSV row, or {"skipped": reason}."""
    from annotators.beats import track_beats_from_notes
    from annotators.chords import chords
    from symmv.io.midi import read_notes, write_notes

    index = row["index"]
    video, truth_path = cfg.out / "videos" / f"{index}.mp4", cfg.out / "ground_truth" / f"{index}.json"
    csv_row = {"index": index, "youtube_url": row["youtube_url"], "tonality": row["tonality"],
               "shazam_id": row.get("shazam_id", "")}
    if truth_path.is_file() and video.is_file():  # rendered by an earlier run (the truth file is written last)
        return {**csv_row, "scene": json.loads(truth_path.read_text())["scene"]}
    clipped = clip_notes(read_notes(cfg.release / "midi" / f"{index}.mid"), cfg.clip_s, cfg.start_fraction)
    if clipped is None:
        return {"index": index, "skipped": f"shorter than {cfg.clip_s + 1:g} s or no notes"}
    notes, t0 = clipped
    beats = track_beats_from_notes(notes).beats
    chords_ = chords(notes, beats) if beats else []
    scene = song_scene(notes, chords_)
    desc = frame_descriptors(notes, beats, chords_, cfg.clip_s, cfg.fps)
    write_notes(notes, cfg.out / "midi" / f"{index}.mid", tempo_bpm=120.0)
    write_video(render_frames(desc, scene, cfg.size, cfg.fps, cfg.seed * 100003 + int(index)), video, cfg.size, cfg.fps)
    info = {"id": f"cv-{index}", "title": f"SymMV {index} (video rendered from its music)", "duration": cfg.clip_s,
            "ext": "mp4", "webpage_url": f"symmv-correspondence://{index}", "extractor": "symmv-correspondence",
            "description": f"Rendered from seconds {t0:.2f}-{t0 + cfg.clip_s:.2f} of SymMV release entry {index} "
                           f"(scene {scene}): colour from chords, motion from note density, cuts every "
                           f"{PHRASE_BARS} bars. Synthetic correspondence."}
    (cfg.out / "videos" / f"{index}.info.json").write_text(json.dumps(info, indent=1))
    truth = {"index": index, "clip_start_s": t0, "clip_s": cfg.clip_s, "scene": scene, "fps": cfg.fps,
             "cuts_s": desc["cuts_s"].tolist(), "density": desc["density"].tolist(),
             "chords": [[c.start_s, c.end_s, c.root, c.quality] for c in chords_]}
    truth_path.write_text(json.dumps(truth))
    return {**csv_row, "scene": scene}


def build_correspondence_source(cfg: CorrespondenceConfig, progress: bool = True) -> dict:
    """Every chosen release song -> clip MIDI + rendered video; writes SymMV.csv last (the source is
    complete when it exists). Songs too short for a clip are skipped and listed. A re-run keeps the songs
    an earlier (interrupted) run finished."""
    from tqdm import tqdm

    from symmv.core.errors import ConfigError

    table = cfg.release / "SymMV.csv"
    if not table.is_file():
        raise ConfigError(f"{table} not found: point --release at a SymMV release checkout")
    with open(table, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh, delimiter="\t"), key=lambda r: r["index"])[: cfg.n_songs or None]
    for sub in ("midi", "videos", "ground_truth"):
        (cfg.out / sub).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max(1, cfg.workers)) as pool:
        results = list(tqdm(pool.map(render_song, rows, [cfg] * len(rows)), total=len(rows),
                            desc="render videos", unit="song", disable=not progress))
    kept = [r for r in results if "skipped" not in r]
    with open(cfg.out / "SymMV.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["index", "youtube_url", "tonality", "shazam_id"], delimiter="\t",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    scenes = {s: sum(r["scene"] == s for r in kept) for s in SCENES}
    return {"songs": len(kept), "skipped": [r for r in results if "skipped" in r], "scenes": scenes}
