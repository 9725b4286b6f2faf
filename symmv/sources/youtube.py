"""Crawl piano-tutorial channels with yt-dlp into the local source layout (paper sec. 3.1).

"We first collect piano covers ... from professional piano tutorial YouTube channels", then download the
official video found by symmv.matching.matcher. Everything lands in yt-dlp's own layout, which symmv.sources.local reads:

    <dest>/<id>.<ext>           media (audio for covers, video for official videos)
    <dest>/<id>.info.json       yt-dlp's metadata (id, title, uploader, channel, duration, ...)
    <dest>/archive.txt          yt-dlp download archive: a second run skips what is already there

Plain functions, no Prefect: the flow wraps `list_channel` and `download` in tasks and must hold the
Prefect global concurrency limit named `CONCURRENCY_LIMIT` ("youtube") around every call that reaches
YouTube (listing, searching, downloading), so parallel tasks never hammer the site.
"""
from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, TypeVar

from symmv.core.errors import MediaError
from symmv.core.records import MediaItem
from symmv.core.ids import sanitize_id
from symmv.sources.local import find_media

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CONCURRENCY_LIMIT = "youtube"  # name of the Prefect global concurrency limit the flow must use
YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_T = TypeVar("_T")


class CrawlError(MediaError):
    """A listing or download that failed for good (after retries, or at once when retrying is pointless).

    A network failure is the item's, not the program's: a MediaError, so it becomes a reject row."""

    default_reason = "network_error"

    def __init__(self, url: str, message: str, attempts: int = 1, transient: bool = False):
        super().__init__(f"{url}: {message} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.url, self.attempts, self.transient = url, attempts, transient


@dataclass(frozen=True)
class Channel:
    name: str
    url: str
    title_order: str | None = None  # "artist_song" | "song_artist": hint for symmv.matching.titles.parse_title


@dataclass(frozen=True)
class CrawlConfig:
    """Crawl settings; `load_config` reads them from configs/channels.toml ([crawl] table + [[channels]])."""

    channels: tuple[Channel, ...] = ()
    min_duration_s: float = 60.0  # shorter: shorts, intros, teasers
    max_duration_s: float = 600.0  # longer: medleys, compilations, streams
    include_keywords: tuple[str, ...] = ("piano",)  # a title must contain one (empty = no requirement)
    exclude_keywords: tuple[str, ...] = ("medley", "compilation", "hour", "live stream", "livestream", "#shorts",
                                         "mashup", "megamix", "top 10", "top 20", "collection")
    max_items_per_channel: int | None = None
    audio_format: str = "bestaudio/best"
    max_video_height: int = 720  # official videos: enough for CLIP/flow features, keeps downloads small
    archive_name: str = "archive.txt"
    cookies_file: str | None = None  # Netscape cookies.txt, for age-gated videos
    retries: int = 3  # our attempts per call, on transient (network) errors only
    backoff_base_s: float = 5.0  # attempt k waits base * 2**k (+-25 % jitter), capped at backoff_max_s
    backoff_max_s: float = 120.0
    sleep_interval_s: float = 2.0  # yt-dlp: random sleep in [sleep_interval, max_sleep_interval] before a download
    max_sleep_interval_s: float = 8.0
    sleep_requests_s: float = 0.75  # yt-dlp: sleep between extraction requests
    ratelimit_bytes_s: int | None = 4_000_000
    socket_timeout_s: float = 30.0
    ytdlp_retries: int = 2  # yt-dlp's own per-fragment/HTTP retries inside one attempt

    @classmethod
    def from_dict(cls, data: dict) -> CrawlConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"channels"}
        if unknown:
            raise ValueError(f"unknown crawl settings: {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        kwargs["channels"] = tuple(Channel(**c) for c in data.get("channels", ()))
        return cls(**kwargs)


def load_config(path: str | Path) -> CrawlConfig:
    """Read `[crawl]` settings and `[[channels]]` from a TOML file."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return CrawlConfig.from_dict({**data.get("crawl", {}), "channels": data.get("channels", [])})


def keep_entry(entry: dict, cfg: CrawlConfig) -> str:
    """Why a flat-listed upload is skipped ("" = keep): duration window and title keywords."""
    title = str(entry.get("title") or "").casefold()
    duration = entry.get("duration")
    if entry.get("live_status") in ("is_live", "is_upcoming", "was_live"):
        return "live"
    if duration is None:
        return "no_duration"
    if not cfg.min_duration_s <= float(duration) <= cfg.max_duration_s:
        return "duration"
    if cfg.include_keywords and not any(k.casefold() in title for k in cfg.include_keywords):
        return "no_include_keyword"
    if any(k.casefold() in title for k in cfg.exclude_keywords):
        return "exclude_keyword"
    return ""


def ydl_options(cfg: CrawlConfig, dest: Path | None = None, kind: Literal["audio", "video"] = "audio") -> dict:
    """yt-dlp options for a download (dest given) or a flat listing (dest None)."""
    opts: dict = {
        "quiet": True, "no_warnings": True, "noprogress": True,
        "socket_timeout": cfg.socket_timeout_s, "retries": cfg.ytdlp_retries,
        "extractor_retries": cfg.ytdlp_retries, "fragment_retries": cfg.ytdlp_retries,
        "sleep_interval_requests": cfg.sleep_requests_s,
    }
    if cfg.cookies_file:
        opts["cookiefile"] = cfg.cookies_file
    if dest is None:
        return {**opts, "extract_flat": "in_playlist", "skip_download": True}
    height = int(cfg.max_video_height)
    opts.update({
        # '%(id)s.%(ext)s' + writeinfojson is exactly the layout symmv.sources.local reads. restrictfilenames makes
        #  yt-dlp itself reduce the id to [A-Za-z0-9_.-] before it becomes a path.
        "outtmpl": {"default": str(Path(dest) / "%(id)s.%(ext)s")},
        "restrictfilenames": True, "windowsfilenames": True, "trim_file_name": 120,
        "writeinfojson": True, "clean_infojson": True,
        "download_archive": str(Path(dest) / cfg.archive_name),
        "sleep_interval": cfg.sleep_interval_s, "max_sleep_interval": max(cfg.sleep_interval_s, cfg.max_sleep_interval_s),
        "ratelimit": cfg.ratelimit_bytes_s, "noplaylist": True, "overwrites": False, "continuedl": True,
    })
    if kind == "audio":
        opts["format"] = cfg.audio_format
    else:
        opts["format"] = (f"bestvideo[height<={height}][ext=mp4]+bestaudio[ext=m4a]/"
                          f"bestvideo[height<={height}]+bestaudio/best[height<={height}]/best")
        opts["merge_output_format"] = "mp4"
    return opts


def _is_transient(exc: BaseException) -> bool:
    """Network trouble worth retrying; "video unavailable"/"unsupported URL" are not."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, HTTPError):
            return exc.status in (403, 429) or exc.status >= 500  # 403: YouTube throttling a fresh session
        if isinstance(exc, (TransportError, ConnectionError, TimeoutError)):
            return True
        nested = getattr(exc, "exc_info", None)
        exc = (nested[1] if nested and len(nested) > 1 else None) or exc.__cause__ or exc.__context__
    return False


def with_retries(call: Callable[[], _T], url: str, cfg: CrawlConfig, sleep: Callable[[float], None] = time.sleep) -> _T:
    """Run `call`; on transient errors retry with exponential backoff, at most `cfg.retries` attempts."""
    attempts = max(1, int(cfg.retries))
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except CrawlError:
            raise
        except Exception as exc:  # yt-dlp raises DownloadError wrapping the real cause
            transient = _is_transient(exc)
            if not transient or attempt == attempts:
                raise CrawlError(url, _one_line(exc), attempt, transient) from exc
            delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
            sleep(delay * random.uniform(0.75, 1.25))
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # yt-dlp colours its messages
    return " ".join(text.split())[:500]


def list_channel(url: str, cfg: CrawlConfig) -> list[dict]:
    """Flat-list a channel's uploads (one request per page, no per-video page loads) and keep the covers.

    Returns yt-dlp's flat entries that pass `keep_entry`, each with `webpage_url` set, in channel order.
    """
    import yt_dlp

    def fetch() -> dict:
        with yt_dlp.YoutubeDL(ydl_options(cfg)) as ydl:
            return ydl.sanitize_info(ydl.extract_info(url, download=False)) or {}

    listing = with_retries(fetch, url, cfg)
    kept = []
    for entry in _flatten(listing):
        if keep_entry(entry, cfg):
            continue
        kept.append({**entry, "webpage_url": entry.get("webpage_url") or entry.get("url")})
        if cfg.max_items_per_channel and len(kept) >= cfg.max_items_per_channel:
            break
    return kept


def _flatten(listing: dict) -> list[dict]:
    """A channel URL gives a playlist of tabs (Videos, Shorts, Live) or of videos: return the videos."""
    out = []
    for entry in listing.get("entries") or []:
        if not entry:
            continue
        if entry.get("_type") == "playlist":
            out.extend(_flatten(entry))
        else:
            out.append(entry)
    return out


def download(
    url_or_id: str | dict, dest: str | Path, cfg: CrawlConfig, kind: Literal["audio", "video"] = "audio",
) -> MediaItem:
    """Download one item into `dest` (media + `<id>.info.json`) and return it as a MediaItem.

    `url_or_id`: a YouTube id, a URL, or a flat entry from `list_channel` (then its listed metadata, e.g. the
    RSS/playlist title, is merged as yt-dlp does for `url_transparent` entries). Already archived items are
    not fetched again: the MediaItem is rebuilt from the files on disk.
    """
    import yt_dlp

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = _target_url(url_or_id)

    def fetch() -> dict:
        with yt_dlp.YoutubeDL(ydl_options(cfg, dest, kind)) as ydl:
            if isinstance(url_or_id, dict):
                info = ydl.process_ie_result(dict(url_or_id), download=True)
            else:
                info = ydl.extract_info(target, download=True)
            if info is None:  # yt-dlp found the id in the archive before extracting
                return {}
            info = dict(info)
            info["__expected_path"] = ydl.prepare_filename(info)
            return info

    info = with_retries(fetch, target, cfg)
    return _media_item(info, dest, target, url_or_id)


def _target_url(url_or_id: str | dict) -> str:
    if isinstance(url_or_id, dict):
        url = url_or_id.get("webpage_url") or url_or_id.get("url")
        if not url:
            raise CrawlError(str(url_or_id.get("id")), "entry has no url")
        return str(url)
    text = str(url_or_id).strip()
    if YOUTUBE_ID.match(text):
        return f"https://www.youtube.com/watch?v={text}"
    if not re.match(r"^https?://", text):
        raise CrawlError(text, "not a YouTube id or an http(s) URL")
    return text


def _media_item(info: dict, dest: Path, target: str, url_or_id: str | dict) -> MediaItem:
    """Locate the written media and info.json (fresh, or from an earlier run) and load them."""
    downloads = info.get("requested_downloads") or []
    if downloads and downloads[0].get("filepath"):
        media: Path | None = Path(downloads[0]["filepath"])
        info_json = Path(downloads[0].get("infojson_filename") or media.with_suffix(".info.json"))
    else:  # skipped thanks to the archive: find what an earlier run wrote, the way symmv.sources.local does
        expected = info.get("__expected_path")
        if not expected:  # archived and skipped before extraction: only the id is known
            vid = (url_or_id.get("id") if isinstance(url_or_id, dict) else None) or _id_from_url(target)
            expected = str(dest / f"{sanitize_id(vid)}.x")  # an id from a URL never becomes a raw path
        stem = Path(expected).with_suffix("").name
        info_json = dest / f"{stem}.info.json"
        media = find_media(info_json)
        if media is None:
            raise CrawlError(target, f"yt-dlp skipped it (archive?) but no media for {stem!r} in {dest}")
    if not info_json.exists():
        raise CrawlError(target, f"no info.json written next to {media.name}")
    meta = json.loads(info_json.read_text(encoding="utf-8"))
    return MediaItem(id=str(meta.get("id") or media.name.split(".")[0]), media_path=str(media), info=meta)


def _id_from_url(url: str) -> str:
    m = re.search(r"(?:v=|youtu\.be/|/shorts/)([A-Za-z0-9_-]{11})", url)
    return m.group(1) if m else Path(url.split("?")[0].split("#")[0]).stem
