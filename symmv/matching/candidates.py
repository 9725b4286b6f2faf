"""Where official-video candidates come from: a local folder (offline) or a YouTube search (crawl).

Both give the matcher yt-dlp info dicts and hand back the chosen one as a MediaItem, so the match stage
is one code path. Network calls hold the Prefect global concurrency limit named by symmv.sources.youtube.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from symmv.core.records import MediaItem, Reject
from symmv.sources.local import discover


class LocalVideos:
    """Every video of a folder in yt-dlp's layout is a candidate for every cover."""

    name = "local"

    def __init__(self, folder: str | Path):
        self.items, self.rejects = discover(folder, stage="discover_videos") if Path(folder).is_dir() else ([], [])
        self.by_id = {v.id: v for v in self.items}

    def identity(self, content_hash) -> str:
        """What the candidate listing is, by content: every video's info and media hash (cache keys)."""
        return json.dumps([[v.id, json.dumps(v.info, sort_keys=True, default=str), content_hash(v.media_path)]
                           for v in self.items])

    def candidates(self, parsed) -> list[dict]:
        return [v.info for v in self.items]

    def fetch(self, info: dict) -> MediaItem:
        return self.by_id[info["id"]]


class YouTubeSearch:
    """`ytsearchN:` on the parsed title (paper sec. 3.1); the chosen video is downloaded into `dest`."""

    name = "youtube"

    def __init__(self, dest: str | Path, crawl_cfg, n: int = 10):
        self.dest, self.crawl_cfg, self.n = Path(dest), crawl_cfg, n
        self.rejects: list[Reject] = []

    def identity(self, content_hash) -> str:
        return f"ytsearch{self.n}"  # a live search: results are whatever YouTube returns at the time

    def _limit(self):
        try:
            from prefect.concurrency.sync import concurrency

            from symmv.sources.youtube import CONCURRENCY_LIMIT

            return concurrency(CONCURRENCY_LIMIT, occupy=1)
        except ImportError:  # used outside Prefect
            return nullcontext()

    def candidates(self, parsed) -> list[dict]:
        from symmv.sources.youtube import ydl_options
        from symmv.matching.matcher import search_candidates

        with self._limit():
            return search_candidates(parsed.search_query(), self.n, ydl_options(self.crawl_cfg))

    def fetch(self, info: dict) -> MediaItem:
        from symmv.sources.youtube import download

        with self._limit():
            return download(info, self.dest, self.crawl_cfg, kind="video")


class PairedOnly:
    """A source whose covers carry their own video (the SymMV release): no candidate pool to search."""

    name = "paired"
    by_id: dict = {}

    def identity(self, content_hash) -> str:
        return "paired"

    def candidates(self, parsed) -> list[dict]:
        return []

    def fetch(self, info: dict) -> MediaItem:
        raise LookupError("a paired source has no candidates to fetch")
