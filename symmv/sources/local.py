"""Read a folder in the layout yt-dlp writes: `<id>.<ext>` media next to `<id>.info.json`.

Both the offline demo source and the real crawler (symmv.sources.youtube) produce this layout, so everything
after discovery is one code path. Broken items (unreadable JSON, missing media, id mismatch) come back
as Reject records; discovery itself never fails on a single bad item.
"""
from __future__ import annotations

import json
from pathlib import Path

from symmv.core.errors import ConfigError
from symmv.core.ids import sanitize_id
from symmv.core.records import MediaItem, Reject, info_problem

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
    """All items of one folder, sorted by id, and a Reject for each broken one.

    Broken: unreadable info.json (`bad_info_json`), a field of the wrong type (`bad_metadata:<field>`),
    no media file or a dangling link (`missing_media`), and ids that are not unique -- two info.json
    files with one id, or two raw ids that sanitize to one song id (`duplicate_id`, see unique_ids).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"source folder {folder} does not exist")
    items, rejects = [], []
    for info_path in sorted(folder.glob("*.info.json")):
        item_id = info_path.name[: -len(".info.json")]
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            rejects.append(Reject(item_id, stage, "bad_info_json", f"{type(exc).__name__}: {exc}"[:500]))
            continue
        missing = [f for f in REQUIRED_FIELDS if not info.get(f)] if isinstance(info, dict) else ["<object>"]
        if missing:
            rejects.append(Reject(item_id, stage, "bad_info_json", f"missing fields: {missing}"))
            continue
        bad = info_problem(info)
        if bad is not None:
            rejects.append(Reject(item_id, stage, f"bad_metadata:{bad}",
                                  f"{info_path.name}: {bad!r} is {type(info[bad]).__name__} {str(info[bad])[:80]!r}"))
            continue
        media = find_media(info_path)
        if media is None:
            rejects.append(Reject(item_id, stage, "missing_media", f"no media file next to {info_path.name}"))
            continue
        if not media.is_file():  # a dangling symlink (or a link to a folder)
            rejects.append(Reject(item_id, stage, "missing_media", f"{media.name} is a link to nothing readable"))
            continue
        # `paired_video` is the release's own pairing (symmv.sources.release); a downloaded file may not claim it
        info = {k: v for k, v in info.items() if k != "paired_video"}
        items.append(MediaItem(id=str(info["id"]), media_path=str(media), info=info))
    return unique_ids(items, rejects, stage)


def named_by_its_id(item: MediaItem) -> bool:
    """Whether the item's files are named by its id, as yt-dlp writes them: `<id>.<ext>` (its media is found
    from its info.json's name, so that one is `<id>.info.json`)."""
    return Path(item.media_path).stem == item.id


def unique_ids(items: list[MediaItem], rejects: list[Reject], stage: str) -> tuple[list[MediaItem], list[Reject]]:
    """Ids, and the song ids they sanitize to, must be unique. Of the items sharing one, the single item
    named by its own id keeps it and the others are rejected `duplicate_id` naming that keeper (a copied or
    hand-made info.json can claim any id; only the downloader names a file by it). With no such item, or
    several, every item of the group is rejected: none can be trusted to be the one meant.

    The SymMV release (symmv.sources.release) names its media `midi/<index>.mid` for the id
    `symmv-<index>`, so none of its items is ever a keeper and its clashes reject every item involved.
    """
    by_id: dict[str, list[MediaItem]] = {}
    for item in items:
        by_id.setdefault(item.id, []).append(item)
        sanitized = sanitize_id(item.id)
        if sanitized != item.id:
            by_id.setdefault(sanitized, []).append(item)
    refused: dict[int, Reject] = {}
    for group in by_id.values():
        if len({g.media_path for g in group}) < 2:
            continue
        named = [g for g in group if named_by_its_id(g)]
        keeper = named[0] if len(named) == 1 else None
        for item in group:
            if item is not keeper and id(item) not in refused:
                refused[id(item)] = Reject(item.id, stage, "duplicate_id", _duplicate_detail(item, group, keeper))
    rejects.extend(refused[id(i)] for i in items if id(i) in refused)
    return sorted((i for i in items if id(i) not in refused), key=lambda i: i.id), rejects


def _duplicate_detail(item: MediaItem, group: list[MediaItem], keeper: MediaItem | None) -> str:
    name = Path(item.media_path).name
    if keeper is not None:
        return f"{name} claims id {item.id!r}, which is {Path(keeper.media_path).name}'s (kept)"[:400]
    others = sorted({Path(g.media_path).name for g in group} - {name})
    return f"id {item.id!r} is not unique: also {', '.join(others)[:300]}"
