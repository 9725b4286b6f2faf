"""Read a folder in the layout yt-dlp writes: `<id>.<ext>` media next to `<id>.info.json`.

Both the offline demo source and the real crawler (symmv.sources.youtube) produce this layout, so everything
after discovery is one code path. Broken items (unreadable JSON, missing media, id mismatch) come back
as Reject records; discovery itself never fails on a single bad item.
"""
from __future__ import annotations

import json
from pathlib import Path

from symmv.core.records import MediaItem, Reject

MEDIA_SUFFIXES = {".m4a", ".mp3", ".opus", ".webm", ".ogg", ".wav", ".flac", ".aac", ".mp4", ".mkv",
                  ".mov", ".avi"}
REQUIRED_FIELDS = ("id", "title")


def find_media(info_path: Path) -> Path | None:
    """The media file yt-dlp wrote beside `<id>.info.json` (skipping .part / .ytdl leftovers)."""
    stem = info_path.name[: -len(".info.json")]
    for candidate in sorted(info_path.parent.glob(f"{glob_escape(stem)}.*")):
        if candidate.suffix.lower() in MEDIA_SUFFIXES and candidate.name.count(".") == stem.count(".") + 1:
            return candidate
    return None


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def discover(folder: str | Path, stage: str = "discover") -> tuple[list[MediaItem], list[Reject]]:
    """All items of one folder, sorted by id, and a Reject for each broken one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"source folder {folder} does not exist")
    items, rejects = [], []
    for info_path in sorted(folder.glob("*.info.json")):
        item_id = info_path.name[: -len(".info.json")]
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            rejects.append(Reject(item_id, stage, "bad_info_json", f"{type(exc).__name__}: {exc}"[:500]))
            continue
        missing = [f for f in REQUIRED_FIELDS if not info.get(f)] if isinstance(info, dict) else ["<object>"]
        if missing:
            rejects.append(Reject(item_id, stage, "bad_info_json", f"missing fields: {missing}"))
            continue
        media = find_media(info_path)
        if media is None:
            rejects.append(Reject(item_id, stage, "missing_media", f"no media file next to {info_path.name}"))
            continue
        items.append(MediaItem(id=str(info["id"]), media_path=str(media), info=info))
    return items, rejects
