"""The SymMV release as a source: the authors' transcribed piano-cover MIDI paired with their videos' URLs.

`build-symmv --source symmv-release --source-dir PATH` reads a checkout of the release (`SymMV.csv`,
`midi/<index>.mid`); the MIDI files are already transcriptions (by the paper's transcriber), so the
transcription stage reads them with the "midi-file" backend instead of an audio model, and everything
after it (rhythm, quantization, skyline, chords, key, split, shards) is the same code path as for audio.
The release ships no video files: its songs carry the official video URL (the split groups by it) but no
video features, unless the checkout has `videos/<index>.mp4` (official videos you downloaded yourself, or the
correspondence benchmark's rendered ones, symmv.sources.correspondence): then the video stage runs on them. Its tonality labels are ground truth for evaluation and are never read by the pipeline.

Quirks handled (the release's README): the MIDI sits on a fixed 120 BPM grid (tempo and bars in the
file are not musical, so beats are tracked from the notes), and several entries share one video URL.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from symmv.core.errors import ConfigError
from symmv.core.records import MediaItem, Reject
from symmv.sources.local import unique_ids

YOUTUBE_ID = re.compile(r"(?:v=|youtu\.be/)([\w-]{11})")
BILIBILI_ID = re.compile(r"bilibili\.com/video/(BV\w+)")  # some release entries point at bilibili


def video_id_of(url: str) -> str | None:
    """A stable id for an official-video URL: YouTube's 11-character id, or "bilibili-<BV id>"."""
    if m := YOUTUBE_ID.search(url):
        return m.group(1)
    if m := BILIBILI_ID.search(url):
        return f"bilibili-{m.group(1)}"
    return None


def video_path(root: str | Path, index: str) -> Path:
    """Where an entry's official video is read from: `videos/<index>.mp4` (symmv fetch-videos writes it there)."""
    return Path(root) / "videos" / f"{index}.mp4"


def discover_release(root: str | Path, limit: int = 0) -> tuple[list[MediaItem], list[Reject]]:
    """One MediaItem per release entry (media = its MIDI file, info = what the CSV says), sorted by index."""
    root = Path(root)
    table = root / "SymMV.csv"
    if not table.is_file():
        raise ConfigError(f"{table} not found: point --source-dir at a SymMV release checkout")
    items, rejects = [], []
    with open(table, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh, delimiter="\t"), key=lambda r: r["index"])
    for row in rows[: limit or None]:
        index, url = row["index"].strip(), row["youtube_url"].strip()
        midi = root / "midi" / f"{index}.mid"
        video = video_id_of(url)
        if not midi.is_file():
            rejects.append(Reject(f"symmv-{index}", "discover", "missing_media", f"no {midi.name}"))
            continue
        if video is None:
            rejects.append(Reject(f"symmv-{index}", "discover", "bad_video_url", url[:200]))
            continue
        info = {"id": f"symmv-{index}", "title": f"SymMV {index}", "webpage_url": f"symmv-release://{index}",
                "extractor": "symmv-release", "shazam_id": row.get("shazam_id") or None,
                }
        paired = {"id": video, "webpage_url": url, "title": f"SymMV {index} video"}
        if (video_file := video_path(root, index)).is_file():  # fetched, or the correspondence benchmark's
            paired["media_path"] = str(video_file)
        items.append(MediaItem(id=info["id"], media_path=str(midi), info=info, paired_video=paired))
    return unique_ids(items, rejects, "discover")
