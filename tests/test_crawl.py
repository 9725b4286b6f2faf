"""The crawler against a real local HTTP server: real yt-dlp (generic extractor, RSS feed as the "channel"),
real files in yt-dlp's layout, the download archive, and bounded retries. Only 127.0.0.1 is contacted."""
from __future__ import annotations

import functools
import http.server
import json
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from symmv.sources.youtube import (CONCURRENCY_LIMIT, CrawlConfig, CrawlError, download, keep_entry, list_channel, load_config,
                         ydl_options)

REPO = Path(__file__).resolve().parents[1]
FAST = CrawlConfig(sleep_interval_s=0.0, max_sleep_interval_s=0.0, sleep_requests_s=0.0, ratelimit_bytes_s=None,
                   backoff_base_s=0.01, backoff_max_s=0.05, retries=3, socket_timeout_s=5.0, ytdlp_retries=0)

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>
<title>Local Piano Tutorials</title>
<item><title>Coldplay - Yellow (Piano Cover)</title><guid>yKNxeF4KMs1</guid><itunes:duration>4:22</itunes:duration>
  <description>Sheet music on Patreon</description><enclosure url="{base}/media/cover.mp3" type="audio/mpeg"/></item>
<item><title>Adele - Hello (Piano Cover) #shorts</title><guid>shortAAAAA1</guid><itunes:duration>0:45</itunes:duration>
  <enclosure url="{base}/media/cover.mp3" type="audio/mpeg"/></item>
<item><title>1 HOUR Relaxing Piano Medley</title><guid>medleyAAAA1</guid><itunes:duration>1:02:00</itunes:duration>
  <enclosure url="{base}/media/cover.mp3" type="audio/mpeg"/></item>
<item><title>Studio vlog: my new keyboard</title><guid>vlogAAAAAA1</guid><itunes:duration>8:00</itunes:duration>
  <enclosure url="{base}/media/cover.mp3" type="audio/mpeg"/></item>
<item><title>Queen - Bohemian Rhapsody | Piano Tutorial</title><guid>fJ9rUzIMcZ1</guid><itunes:duration>5:55</itunes:duration>
  <enclosure url="{base}/media/cover.mp3" type="audio/mpeg"/></item>
</channel></rss>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """http.server on 127.0.0.1 serving ffmpeg-generated media and an RSS "channel"; counts GETs per path."""
    root = tmp_path_factory.mktemp("www")
    (root / "media").mkdir()
    ff = ["ffmpeg", "-loglevel", "error", "-y"]
    subprocess.run([*ff, "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-ac", "1", "-b:a", "32k",
                    str(root / "media" / "cover.mp3")], check=True)
    subprocess.run([*ff, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=660:duration=2", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "32k", str(root / "media" / "official.mp4")], check=True)
    hits: Counter = Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits[self.path.split("?")[0]] += 1
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    (root / "feed.xml").write_text(FEED.format(base=base), encoding="utf-8")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, hits
    httpd.shutdown()


def test_list_channel_flat_lists_and_filters(server):
    base, _ = server
    entries = list_channel(f"{base}/feed.xml", FAST)
    assert [e["title"] for e in entries] == ["Coldplay - Yellow (Piano Cover)", "Queen - Bohemian Rhapsody | Piano Tutorial"]
    assert entries[0]["duration"] == 262
    assert "yKNxeF4KMs1" in entries[0]["url"]  # yt-dlp smuggles the RSS guid as the video id


def test_download_writes_ytdlp_layout_and_archive_prevents_redownload(server, tmp_path):
    base, hits = server
    entry = list_channel(f"{base}/feed.xml", FAST)[0]
    before = hits["/media/cover.mp3"]
    item = download(entry, tmp_path, FAST, kind="audio")
    fetched_first = hits["/media/cover.mp3"] - before

    assert item.id == "yKNxeF4KMs1"
    assert Path(item.media_path) == tmp_path / "yKNxeF4KMs1.mp3"
    info = json.loads((tmp_path / "yKNxeF4KMs1.info.json").read_text(encoding="utf-8"))
    assert info["id"] == "yKNxeF4KMs1" and info["title"] == "Coldplay - Yellow (Piano Cover)"
    assert item.info["title"] == info["title"] and item.duration_s == 262
    assert (tmp_path / "archive.txt").read_text().split() == ["generic", "yKNxeF4KMs1"]
    mtime = Path(item.media_path).stat().st_mtime_ns

    again = download(entry, tmp_path, FAST, kind="audio")
    fetched_second = hits["/media/cover.mp3"] - before - fetched_first
    # The generic extractor probes the URL once to learn what it is; only the first run also fetched the body.
    assert fetched_first == 2 and fetched_second <= 1
    assert again.id == item.id and again.media_path == item.media_path
    assert Path(item.media_path).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.txt", "yKNxeF4KMs1.info.json", "yKNxeF4KMs1.mp3"]


def test_download_video_by_url(server, tmp_path):
    base, _ = server
    item = download(f"{base}/media/official.mp4", tmp_path / "videos", FAST, kind="video")
    assert item.id == "official" and item.media_path.endswith("official.mp4")
    assert Path(item.media_path).stat().st_size > 1000
    assert (tmp_path / "videos" / "official.info.json").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_errors_become_crawl_error_after_bounded_retries(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/media/cover.mp3"
    start = time.monotonic()
    with pytest.raises(CrawlError) as err:
        download(url, tmp_path, FAST)
    assert err.value.url == url and err.value.attempts == FAST.retries and err.value.transient
    assert url in str(err.value)
    assert time.monotonic() - start < 20
    with pytest.raises(CrawlError) as err:
        list_channel(url.replace("media/cover.mp3", "feed.xml"), replace(FAST, retries=2))
    assert err.value.attempts == 2


def test_permanent_errors_are_not_retried(server, tmp_path):
    base, _ = server
    with pytest.raises(CrawlError) as err:
        download(f"{base}/media/missing.mp3", tmp_path, FAST)
    assert err.value.attempts == 1 and not err.value.transient  # 404: retrying cannot help
    with pytest.raises(CrawlError):
        download("../../etc/passwd", tmp_path, FAST)  # neither an id nor a URL


def test_keep_entry_rules():
    cfg = CrawlConfig()
    assert keep_entry({"title": "Coldplay - Yellow (Piano Cover)", "duration": 262}, cfg) == ""
    assert keep_entry({"title": "Coldplay - Yellow (Piano Cover)", "duration": 30}, cfg) == "duration"
    assert keep_entry({"title": "Coldplay - Yellow (Piano Cover)", "duration": None}, cfg) == "no_duration"
    assert keep_entry({"title": "Q&A stream", "duration": 300}, cfg) == "no_include_keyword"
    assert keep_entry({"title": "Piano medley 2024", "duration": 300}, cfg) == "exclude_keyword"
    assert keep_entry({"title": "Piano", "duration": 300, "live_status": "was_live"}, cfg) == "live"


def test_channels_config_loads():
    cfg = load_config(REPO / "configs" / "channels.toml")
    assert len(cfg.channels) >= 3 and all(c.url.startswith("https://www.youtube.com/@") for c in cfg.channels)
    assert cfg.min_duration_s < cfg.max_duration_s and cfg.retries >= 1
    assert CONCURRENCY_LIMIT == "youtube"
    with pytest.raises(ValueError):
        CrawlConfig.from_dict({"max_duraton_s": 3})  # typos are errors, not silently ignored


def test_ydl_options_carry_policy(tmp_path):
    cfg = replace(FAST, cookies_file="cookies.txt", max_video_height=480, ratelimit_bytes_s=1_000_000,
                  sleep_interval_s=1.0, max_sleep_interval_s=4.0)
    video = ydl_options(cfg, tmp_path, kind="video")
    assert video["cookiefile"] == "cookies.txt" and "height<=480" in video["format"] and video["format"].endswith("/best")
    assert video["download_archive"] == str(tmp_path / "archive.txt") and video["writeinfojson"]
    assert video["outtmpl"]["default"].endswith("%(id)s.%(ext)s") and video["restrictfilenames"]
    assert (video["ratelimit"], video["sleep_interval"], video["max_sleep_interval"]) == (1_000_000, 1.0, 4.0)
    assert ydl_options(cfg, tmp_path, kind="audio")["format"] == "bestaudio/best"
    listing = ydl_options(cfg)
    assert listing["extract_flat"] == "in_playlist" and "outtmpl" not in listing and "writeinfojson" not in listing
