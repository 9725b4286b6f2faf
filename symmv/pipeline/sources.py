"""Where covers come from: one registry of sources, each an object that knows its own media (the readers
themselves are symmv.sources.*; this registry sits above them and symmv.matching, which it wires together).

A `Source` discovers its covers (and a Reject per broken item), says where official-video candidates come
from, checks its own config before any song runs, says whether an item's media is MIDI (no audio to
measure, judge or align: the stages ask this, never a file suffix or a field), and names the transcriber and
beat tracker its media implies when the config picks none. `--source NAME` looks one up in `SOURCES`; adding
a source is one entry here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from symmv.core.errors import ConfigError
from symmv.core.records import MediaItem, Reject

MIDI_SUFFIXES = (".mid", ".midi")


def media_is_midi(item: MediaItem) -> bool:
    """The one "is this MIDI" test: a symbolic file rather than a recording."""
    return Path(item.media_path).suffix.lower() in MIDI_SUFFIXES


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    discover: Callable  # (BuildConfig) -> (covers, rejects)
    videos: Callable  # (BuildConfig) -> the official-video candidates (symmv.matching.candidates)
    validate: Callable  # (BuildConfig) -> None, ConfigError when the source cannot be read
    transcriber: str = ""  # what its media implies ("" = the machine's best audio transcriber)
    beat_tracker: str = "madmom"  # what its media implies when --beat-tracker is not given
    crawls: bool = False  # the flow crawls channels into source_dir/covers first

    def is_midi(self, item: MediaItem) -> bool:
        return media_is_midi(item)


def _folder_exists(cfg) -> None:
    if not Path(cfg.source_dir).is_dir():
        raise ConfigError(f"--source-dir {cfg.source_dir} does not exist (make demo-corpus writes the demo source)")


def _channels_exist(cfg) -> None:
    if not Path(cfg.channels_config).is_file():
        raise ConfigError(f"--channels-config {cfg.channels_config} does not exist")


def _release_exists(cfg) -> None:
    _folder_exists(cfg)
    if not (Path(cfg.source_dir) / "SymMV.csv").is_file():
        raise ConfigError(f"{Path(cfg.source_dir) / 'SymMV.csv'} not found: point --source-dir at a SymMV release checkout")


def _discover_folder(cfg, with_videos: bool) -> tuple[list[MediaItem], list[Reject]]:
    from symmv.sources.local import discover

    covers, rejects = discover(Path(cfg.source_dir) / "covers")
    covers = covers[: cfg.limit] if cfg.limit else covers
    videos = Path(cfg.source_dir) / "videos"
    if with_videos and videos.is_dir():  # broken candidates are reject rows of their own
        rejects += discover(videos, stage="discover_videos")[1]
    return covers, rejects


def _discover_release(cfg) -> tuple[list[MediaItem], list[Reject]]:
    from symmv.sources.release import discover_release

    return discover_release(cfg.source_dir, cfg.limit)


def _local_videos(cfg):
    from symmv.matching.candidates import LocalVideos

    return LocalVideos(Path(cfg.source_dir) / "videos")


def _youtube_search(cfg):
    from symmv.matching.candidates import YouTubeSearch
    from symmv.sources.youtube import load_config

    return YouTubeSearch(Path(cfg.source_dir) / "videos", load_config(cfg.channels_config), cfg.search_results)


def _paired(cfg):
    from symmv.matching.candidates import PairedOnly

    return PairedOnly()


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("local", "a folder in yt-dlp's layout: covers/ and videos/ (media + .info.json)",
           lambda cfg: _discover_folder(cfg, with_videos=True), _local_videos, _folder_exists),
    Source("youtube", "crawl the channels of --channels-config with yt-dlp into --source-dir, match by ytsearch",
           lambda cfg: _discover_folder(cfg, with_videos=False), _youtube_search, _channels_exist, crawls=True),
    Source("symmv-release", "a SymMV release checkout: SymMV.csv + midi/ (+ videos/<index>.mp4 if fetched)",
           _discover_release, _paired, _release_exists, transcriber="midi-file", beat_tracker="notes"),
)}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; choose one of: {', '.join(sorted(SOURCES))}") from None
