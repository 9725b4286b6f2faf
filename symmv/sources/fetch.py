"""`symmv fetch-videos`: a SymMV release's official videos, downloaded with yt-dlp to where the release source reads them.

The release ships only URLs (its README). `symmv build --source symmv-release` runs the video stage on an
entry when `videos/<index>.mp4` exists (symmv.sources.release.video_path); this command fills that folder:

    <into>/videos/<index>.mp4          the official video (yt-dlp, <= max_video_height, remuxed to mp4)
    <into>/videos/<index>.info.json    yt-dlp's metadata for it
    <into>/videos/archive.txt          yt-dlp's download archive
    <into>/videos/fetch_rejects.jsonl  a row per entry the latest run did not get: item_id, url, reason, detail

`--into` defaults to the release checkout itself. Another folder becomes a view of the release (SymMV.csv and
midi/ linked from it), so a shared or read-only checkout stays as published and `--source-dir <into>` builds.

Resumable: an entry whose mp4 exists (yours or ours) is neither fetched again nor touched, and yt-dlp's archive
skips what it recorded. Polite: yt-dlp's rate limit and sleeps, with the crawler's defaults
(symmv.sources.youtube), and the run stops after `stop_after_blocked` refusals in a row that say the site is
blocking this session. Never fatal for one URL: a removed, private or geo-blocked video is a reject row.
Entries that share one URL (the release's README says several do) are downloaded once and hard-linked.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from symmv.core import settings
from symmv.core.errors import ConfigError, write_failure
from symmv.sources.release import discover_release, video_path
from symmv.sources.youtube import CrawlConfig, CrawlError, with_retries, ydl_options

STAGE = "fetch_videos"
REJECTS_NAME = "fetch_rejects.jsonl"
_CRAWL = CrawlConfig()  # the crawler's politeness defaults: shared, not written twice

# yt-dlp's words for why a video cannot be had -> our reason code. First match wins, so specific phrases come
# before general ones: YouTube says "Private video. Sign in if you've been granted access", "Sign in to confirm
# your age", "who has blocked it in your country on copyright grounds", "This video is no longer available".
REJECT_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("geo_blocked", ("in your country", "from your location", "geo restrict", "geo-restrict")),
    ("rate_limited", ("try again later", "rate-limited", "http error 429", "too many requests")),
    ("bot_check", ("not a bot", "captcha")),
    ("private", ("private video", "video is private")),
    ("age_restricted", ("confirm your age", "age-restricted", "age restricted", "inappropriate for some users")),
    ("members_only", ("members-only", "members only", "join this channel")),
    ("removed", ("video unavailable", "video is unavailable", "has been removed", "no longer available",
                 "account associated with this video has been terminated", "video does not exist")),
    ("copyright_blocked", ("copyright",)),
    ("login_required", ("sign in", "login required", "logged-in")),
    ("not_found", ("http error 404", "http error 410")),
    ("unsupported_url", ("unsupported url",)),
)
BLOCKED = ("rate_limited", "bot_check")  # the site refuses this session, not this video: more requests make it worse


@dataclass
class FetchConfig:
    """`symmv fetch-videos`: a SymMV release's official videos into videos/<index>.mp4 (symmv.sources.fetch)."""

    source_dir: Path = field(default_factory=settings.release_root)  # a SymMV release checkout (SymMV.csv, midi/)
    # where videos/ goes; a folder other than --source-dir gets SymMV.csv and midi/ linked from it, so that
    # `symmv build --source symmv-release --source-dir INTO` builds with the videos (none = --source-dir itself)
    into: Path | None = None
    limit: int = 0  # fetch for the first N entries of SymMV.csv only (0 = all)
    max_video_height: int = _CRAWL.max_video_height  # best format up to this height: enough for the video features
    ratelimit_bytes_s: int = _CRAWL.ratelimit_bytes_s or 0  # yt-dlp's download rate limit in bytes/s (0 = none)
    # yt-dlp sleeps a random time in [this, --max-sleep-interval-s] before each download
    sleep_interval_s: float = _CRAWL.sleep_interval_s
    max_sleep_interval_s: float = _CRAWL.max_sleep_interval_s  # upper end of that sleep
    sleep_requests_s: float = _CRAWL.sleep_requests_s  # yt-dlp's sleep between the page requests of one video
    retries: int = _CRAWL.retries  # our attempts per video on network errors (a refusal, e.g. "private", is final)
    backoff_base_s: float = _CRAWL.backoff_base_s  # attempt k waits this * 2**k, jittered by a quarter, before the next
    backoff_max_s: float = _CRAWL.backoff_max_s  # longest wait between two attempts
    ytdlp_retries: int = _CRAWL.ytdlp_retries  # yt-dlp's own retries and fragment_retries within one attempt
    socket_timeout_s: float = _CRAWL.socket_timeout_s  # a connection silent this long is a network error
    cookies_file: Path | None = None  # Netscape cookies.txt (yt-dlp's --cookies) for age-gated or bot-checked videos
    # stop after this many rate-limit / bot-check refusals in a row: YouTube then blocks the session for about an
    # hour, and every further request extends it; a later run resumes (0 = never stop)
    stop_after_blocked: int = 5

    def crawl_config(self) -> CrawlConfig:
        """The crawler's settings these map onto (symmv.sources.youtube.ydl_options, with_retries)."""
        shared = {f.name for f in fields(CrawlConfig)} & {f.name for f in fields(self)}
        values = {name: getattr(self, name) for name in shared}
        return CrawlConfig(**{**values, "ratelimit_bytes_s": self.ratelimit_bytes_s or None,
                              "cookies_file": str(self.cookies_file) if self.cookies_file else None})


@dataclass
class FetchSummary:
    fetched: int = 0
    already_there: int = 0  # an mp4 was there before this run: kept as it is
    linked: int = 0  # another entry's download of the same video, hard-linked
    rejected: int = 0
    stopped: str = ""  # why the run ended before the last entry ("" = it did not)
    rejects_file: Path | None = None
    into: Path | None = None
    elapsed_s: float = 0.0


class _Quiet:
    """yt-dlp's logger: its errors come back as exceptions (a reject row each); its own lines would break ours."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


def reject_reason(message: str, transient: bool = False) -> str:
    """The reason code of a failed download, from yt-dlp's message (REJECT_REASONS); else `network_error` for
    network trouble that outlasted the retries, else `download_failed`."""
    text = message.casefold()
    for reason, phrases in REJECT_REASONS:
        if any(phrase in text for phrase in phrases):
            return reason
    return "network_error" if transient else "download_failed"


def ydl_options_for(cfg: FetchConfig, videos: Path, index: str) -> dict:
    """yt-dlp options for one entry: the crawler's video options (format, rate limit, sleeps, retries, info.json,
    archive in `videos`), written as `<index>.<ext>` and remuxed to mp4 where a site serves another container."""
    return {**ydl_options(cfg.crawl_config(), videos, kind="video"),
            "outtmpl": {"default": str(videos / f"{index}.%(ext)s")},
            "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
            "logger": _Quiet()}


def prepare_into(cfg: FetchConfig) -> Path:
    """Check the release and the target before any download (a user mistake costs one line) and make
    `<into>/videos`; a separate --into gets the release's SymMV.csv and midi/ linked. Returns the videos folder."""
    release = Path(cfg.source_dir)
    if not (release / "SymMV.csv").is_file():
        raise ConfigError(f"--source-dir {release}: no SymMV.csv there; point it at a SymMV release checkout "
                          "(SymMV.csv, midi/)")
    into = Path(cfg.into) if cfg.into else release
    separate = not (into.exists() and into.resolve() == release.resolve())
    if separate:
        _check_release_view(release, into)
    videos = into / "videos"
    hint = "; pass --into DIR to fetch beside a read-only release" if not separate else ""
    try:
        videos.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--into {into}: cannot create {videos} ({exc.strerror or exc}){hint}") from None
    if not os.access(videos, os.W_OK | os.X_OK):
        raise ConfigError(f"--into {into}: {videos} is not writable{hint}")
    if separate:
        for name in ("SymMV.csv", "midi"):
            if not (into / name).exists() and (release / name).exists():
                (into / name).symlink_to((release / name).resolve())
    _check_rejects_file(videos / REJECTS_NAME)
    return videos


def _check_release_view(release: Path, into: Path) -> None:
    """A separate --into may already be a view of this release (a rerun), never another release's folder."""
    if into.exists() and not into.is_dir():
        raise ConfigError(f"--into {into} is a file, not a folder")
    csv = into / "SymMV.csv"
    if csv.exists() and not filecmp.cmp(csv, release / "SymMV.csv", shallow=False):
        raise ConfigError(f"--into {into} holds a SymMV.csv other than {release}'s: choose an empty folder "
                          "or the release itself")


def _check_rejects_file(path: Path) -> None:
    """The rejects file is rewritten on every run: refuse one this command did not write."""
    if not path.exists():
        return
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        ours = all(isinstance(r, dict) and r.get("stage") in (STAGE, "discover") for r in rows)
    except (ValueError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise ConfigError(f"{path} was not written by symmv fetch-videos (it rewrites that file): move it away")


def reject_row(index: str, url: str, reason: str, detail: str, stage: str = STAGE) -> dict:
    detail = " ".join(detail.split()).removeprefix("ERROR: ")
    return {"item_id": f"symmv-{index}", "index": index, "url": url, "stage": stage, "reason": reason,
            "detail": detail[:300]}


def _download(url: str, index: str, videos: Path, cfg: FetchConfig) -> None:
    """One entry through yt-dlp, retried on network errors (with_retries); a CrawlError when it fails for good."""
    import yt_dlp  # only when a download runs: `symmv --help` stays fast

    def attempt() -> None:
        with yt_dlp.YoutubeDL(ydl_options_for(cfg, videos, index)) as ydl:
            ydl.extract_info(url, download=True)

    with_retries(attempt, url, cfg.crawl_config())


def _link(src: Path, dst: Path) -> None:
    """`dst` as a hard link of `src` (a copy where the filesystem has none); an existing `dst` is left alone."""
    if dst.exists() or not src.exists():
        return
    try:
        os.link(src, dst)
    except FileExistsError:
        return
    except OSError:
        shutil.copyfile(src, dst)


class _Entries:
    """What this run knows per official video: which entry holds its file, or why it could not be had."""

    def __init__(self, videos: Path, cfg: FetchConfig):
        self.videos, self.cfg = videos, cfg
        self.holder: dict[str, str] = {}  # video id -> index whose mp4 is on disk
        self.refused: dict[str, dict] = {}  # video id -> the reject row of its first entry

    def fetch(self, index: str, url: str, video_id: str) -> tuple[str, str, dict | None]:
        """(status, text for the progress line, reject row or None) for one release entry."""
        mp4 = video_path(self.videos.parent, index)
        info_json = self.videos / f"{index}.info.json"
        if mp4.exists() or mp4.is_symlink():  # a link, even a dangling one, is the user's: yt-dlp would replace it
            if mp4.exists():
                self.holder.setdefault(video_id, index)
            return "already there", "" if info_json.exists() else "(no info.json; kept as it is)", None
        if video_id in self.holder:
            first = self.holder[video_id]
            _link(self.videos / f"{first}.mp4", mp4)
            _link(self.videos / f"{first}.info.json", info_json)
            return "linked", f"same video as {first}", None
        if video_id in self.refused:
            row = self.refused[video_id]
            row = reject_row(index, url, row["reason"], f"same video as {row['index']}: {row['detail']}")
            return "rejected", f"{row['reason']}: same video as {self.refused[video_id]['index']}", row
        started = time.monotonic()
        try:
            _download(url, index, self.videos, self.cfg)
        except CrawlError as exc:
            if write_failure(exc):  # a full or read-only disk is the machine's state, not this video's
                raise
            message = str(exc).removeprefix(f"{url}: ")  # the url has a column of its own
            row = reject_row(index, url, reject_reason(message, exc.transient), message)
            if row["reason"] not in BLOCKED:  # a refusal of the session, not of the video: its next entry tries again
                self.refused[video_id] = row
            return "rejected", f"{row['reason']}: {row['detail'][:160]}", row
        if not mp4.exists():
            written = sorted(p.name for p in self.videos.glob(f"{index}.*")) or ["nothing"]
            row = reject_row(index, url, "no_mp4_written",
                             f"yt-dlp wrote {', '.join(written)} (an id already in archive.txt is skipped: delete its "
                             "line to fetch it again)")
            self.refused[video_id] = row
            return "rejected", f"{row['reason']}: {row['detail'][:160]}", row
        self.holder[video_id] = index
        size = mp4.stat().st_size
        size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
        return "fetched", f"{video_id} {size_text} in {time.monotonic() - started:.1f} s", None


def fetch_videos(cfg: FetchConfig, report: Callable[[str], None] = lambda line: print(line, flush=True)) -> FetchSummary:
    """Every release entry's official video into `<into>/videos/<index>.mp4` + info.json; a progress line per
    entry and a summary line through `report`; the rejects file rewritten (also when interrupted)."""
    videos = prepare_into(cfg)
    items, unreadable = discover_release(cfg.source_dir, cfg.limit)
    rows = [reject_row(r.item_id.removeprefix("symmv-"), "", r.reason, r.detail, stage=r.stage) for r in unreadable]
    for r in unreadable:
        report(f"{time.strftime('%H:%M:%S')} {r.item_id} not fetched: {r.reason} ({r.detail[:120]})")
    entries, counts, blocked_in_a_row = _Entries(videos, cfg), Counter(), 0
    start, width, stopped = time.monotonic(), len(str(len(items))), ""
    try:
        for n, item in enumerate(items, 1):
            index = Path(item.media_path).stem  # the release's midi/<index>.mid
            status, text, row = entries.fetch(index, item.paired_video["webpage_url"], item.paired_video["id"])
            counts[status] += 1
            if row:
                rows.append(row)
            elapsed = time.monotonic() - start
            eta = f"  ETA {_clock(elapsed / n * (len(items) - n))}" if n < len(items) else ""
            report(f"{time.strftime('%H:%M:%S')} [{n:>{width}}/{len(items)}] {index} {status}"
                   f"{' ' + text if text else ''}{eta}")
            if row and row["reason"] in BLOCKED:
                blocked_in_a_row += 1
            elif status in ("fetched", "rejected"):  # the site answered about this video
                blocked_in_a_row = 0
            if cfg.stop_after_blocked and blocked_in_a_row >= cfg.stop_after_blocked:
                stopped = (f"stopped after {blocked_in_a_row} refusals in a row ({row['reason']}): the site is blocking "
                           "this session; rerun later (or with --cookies-file) to resume")
                break
    finally:
        _write_rejects(videos / REJECTS_NAME, rows)
    summary = FetchSummary(fetched=counts["fetched"], already_there=counts["already there"], linked=counts["linked"],
                           rejected=counts["rejected"] + len(unreadable), stopped=stopped,
                           rejects_file=videos / REJECTS_NAME, into=videos.parent, elapsed_s=time.monotonic() - start)
    report(summary_line(summary))
    if not stopped:
        report(f"next: symmv build --source symmv-release --source-dir {summary.into} --out <dataset>")
    return summary


def summary_line(s: FetchSummary) -> str:
    line = (f"fetch-videos: {s.fetched} fetched, {s.already_there} already there, {s.linked} linked (shared URL), "
            f"{s.rejected} rejected ({s.rejects_file}) in {_clock(s.elapsed_s)}")
    return f"{line}; {s.stopped}" if s.stopped else line


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _write_rejects(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def run(cfg: FetchConfig) -> int:
    """The command: 0 when every entry was tried, 1 when the site's refusals stopped it, 130 on Ctrl-C."""
    try:
        return 1 if fetch_videos(cfg).stopped else 0
    except KeyboardInterrupt:
        print("fetch-videos: interrupted; what was fetched stays, a rerun resumes", flush=True)
        return 130


def add_command(subparsers, add_dataclass_args: Callable, from_args: Callable) -> None:
    """Register `symmv fetch-videos`. The CLI passes its dataclass bridge (symmv.pipeline.config) in: sources sit
    below the pipeline layer and do not import it."""
    parser = subparsers.add_parser("fetch-videos", help="download a SymMV release's official videos with yt-dlp "
                                   "into videos/<index>.mp4, where the release source reads them")
    add_dataclass_args(parser, FetchConfig)
    parser.set_defaults(func=lambda args: run(from_args(FetchConfig, args)))
