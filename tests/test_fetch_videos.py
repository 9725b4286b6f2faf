"""`symmv fetch-videos` against a real local HTTP server: real yt-dlp (its generic extractor takes a plain http
mp4 as a direct link, no forcing needed), a tiny release-like folder, real files in videos/. Only 127.0.0.1 is
contacted. The release reader accepts an entry only when its URL carries a YouTube-style `v=<11 chars>` id, so
the local URLs carry one in their query string (the server ignores it)."""
from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pretty_midi
import pytest

from symmv.cli import main
from symmv.sources.fetch import FetchConfig, fetch_videos, reject_reason, ydl_options_for
from symmv.sources.release import discover_release

REPO = Path(__file__).resolve().parents[1]
FAST = dict(sleep_interval_s=0.0, max_sleep_interval_s=0.0, sleep_requests_s=0.0, ratelimit_bytes_s=0, retries=3,
            backoff_base_s=0.01, backoff_max_s=0.05, ytdlp_retries=0, socket_timeout_s=5.0)
NOT_HTML_VIDEO = "<html><head><title>A blog post</title></head><body><p>No video here.</p></body></html>"


@pytest.fixture(scope="module")
def www(tmp_path_factory) -> Path:
    """The folder the server serves."""
    return tmp_path_factory.mktemp("www")


@pytest.fixture(scope="module")
def server(www):
    """A tiny real mp4 at /good.mp4 and /other.mp4, /flaky.mp4 (503 for its first two requests), a page with no
    video (/page.html), /limited.mp4 (always 429); everything else 404. Counts requests per path."""
    root = www
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=8:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-shortest", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(root / "good.mp4")], check=True)
    for name in ("other.mp4", "flaky.mp4", "limited.mp4"):
        (root / name).write_bytes((root / "good.mp4").read_bytes())
    (root / "page.html").write_text(NOT_HTML_VIDEO, encoding="utf-8")
    hits: Counter = Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def send_head(self):
            path = self.path.split("?")[0]
            hits[path] += 1
            if path == "/limited.mp4" or (path == "/flaky.mp4" and hits[path] <= 2):
                self.send_error(429 if path == "/limited.mp4" else 503)
                return None
            return super().send_head()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()


def make_release(folder: Path, urls: dict[str, str]) -> Path:
    """A release-like folder: SymMV.csv in the release's columns (tab-separated) and a one-note MIDI per entry."""
    (folder / "midi").mkdir(parents=True)
    lines = ["index\tyoutube_url\ttonality\tshazam_id"]
    for index, url in urls.items():
        lines.append(f"{index}\t{url}\tC major\t")
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.0, end=0.5))
        pm.instruments.append(piano)
        pm.write(str(folder / "midi" / f"{index}.mid"))
    (folder / "SymMV.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory):
    """One fetch over 7 entries, with a user's own mp4 and a notes file already in videos/."""
    base, hits = server
    release = make_release(tmp_path_factory.mktemp("release"), {
        "00001": f"{base}/good.mp4?v=GOODgood001",
        "00002": f"{base}/good.mp4?v=GOODgood001",  # the same official video as 00001 (the release has such pairs)
        "00003": f"{base}/missing.mp4?v=MISSmiss003",  # removed: 404
        "00004": f"{base}/page.html?v=PAGEpage004",  # a page without a video: the generic extractor gives up
        "00005": f"{base}/flaky.mp4?v=FLAKflak005",  # two 503s, then the video: our retries get it
        "00006": f"{base}/other.mp4?v=USERuser006",  # the user already put their own file there
        "00007": "https://example.com/not-a-video-page",  # no video id: the release reader refuses it
    })
    videos = release / "videos"
    videos.mkdir()
    (videos / "00006.mp4").write_bytes(b"the user's own cut, not a real mp4")
    (videos / "notes.txt").write_text("my notes", encoding="utf-8")
    lines: list[str] = []
    summary = fetch_videos(FetchConfig(source_dir=release, **FAST), report=lines.append)
    stats = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in videos.iterdir()}
    return release, summary, lines, Counter(hits), stats


def rejects_of(release: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (release / "videos" / "fetch_rejects.jsonl").read_text().splitlines()]
    return {r["index"]: r for r in rows}


def test_good_video_lands_where_the_release_source_reads_it(first_run):
    release, summary, lines, _, _ = first_run
    videos = release / "videos"
    for index in ("00001", "00002", "00005"):
        mp4 = videos / f"{index}.mp4"
        assert mp4.stat().st_size > 1000 and mp4.read_bytes()[4:8] == b"ftyp"  # a real mp4 file
        assert json.loads((videos / f"{index}.info.json").read_text())["extractor"] == "generic"
    assert (videos / "00002.mp4").samefile(videos / "00001.mp4")  # one download, hard-linked
    items, discover_rejects = discover_release(release)
    by_index = {Path(i.media_path).stem: i for i in items}
    assert by_index["00001"].paired_video["media_path"] == str(videos / "00001.mp4")
    assert by_index["00005"].paired_video["media_path"] == str(videos / "00005.mp4")
    assert "media_path" not in by_index["00003"].paired_video
    assert (summary.fetched, summary.linked, summary.already_there, summary.rejected) == (2, 1, 1, 3)
    assert summary.stopped == ""
    progress = [line for line in lines if "] 0000" in line]
    assert len(progress) == 6 and "00001 fetched GOODgood001" in progress[0] and "ETA" in progress[0]
    assert "00002 linked same video as 00001" in progress[1]
    assert lines[-1].startswith("next: symmv build --source symmv-release --source-dir")
    assert "2 fetched, 1 already there, 1 linked (shared URL), 3 rejected" in lines[-2]


def test_bad_urls_become_reject_rows_with_reasons(first_run, server):
    release, _, _, hits, _ = first_run
    base, _ = server
    rows = rejects_of(release)
    assert set(rows) == {"00003", "00004", "00007"}
    assert rows["00003"]["reason"] == "not_found" and "404" in rows["00003"]["detail"]
    assert rows["00003"]["url"] == f"{base}/missing.mp4?v=MISSmiss003" and rows["00003"]["item_id"] == "symmv-00003"
    assert rows["00004"]["reason"] == "unsupported_url"
    assert rows["00007"]["reason"] == "bad_video_url" and rows["00007"]["stage"] == "discover"
    assert all("\n" not in r["detail"] and r["detail"] for r in rows.values())
    assert hits["/missing.mp4"] == 1  # a 404 is final: not retried
    assert hits["/flaky.mp4"] >= 3  # 503, 503, then the video


def test_user_files_are_untouched(first_run):
    release, _, _, hits, _ = first_run
    videos = release / "videos"
    assert (videos / "00006.mp4").read_bytes() == b"the user's own cut, not a real mp4"
    assert not (videos / "00006.info.json").exists()
    assert (videos / "notes.txt").read_text() == "my notes"
    assert hits["/other.mp4"] == 0  # its entry was not even asked for


def test_second_run_fetches_nothing_new_and_keeps_files(first_run, server):
    release, _, _, hits_before, stats = first_run
    _, hits = server
    lines: list[str] = []
    summary = fetch_videos(FetchConfig(source_dir=release, **FAST), report=lines.append)
    assert (summary.fetched, summary.linked, summary.already_there) == (0, 0, 4)
    assert hits["/good.mp4"] == hits_before["/good.mp4"] and hits["/flaky.mp4"] == hits_before["/flaky.mp4"]
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in (release / "videos").iterdir()}
    assert {k: v for k, v in after.items() if k != "fetch_rejects.jsonl"} == \
        {k: v for k, v in stats.items() if k != "fetch_rejects.jsonl"}
    assert (release / "videos" / "archive.txt").read_text().split() == ["generic", "good", "generic", "flaky"]
    assert set(rejects_of(release)) == {"00003", "00004", "00007"}  # the bad ones were asked again, still bad


def test_separate_into_folder_is_a_release_view(server, tmp_path):
    base, _ = server
    release = make_release(tmp_path / "release", {"00001": f"{base}/other.mp4?v=OTHRothr001"})
    into = tmp_path / "fetched"
    summary = fetch_videos(FetchConfig(source_dir=release, into=into, **FAST), report=lambda line: None)
    assert summary.fetched == 1 and not (release / "videos").exists()  # the release stays as published
    assert (into / "SymMV.csv").resolve() == (release / "SymMV.csv").resolve() and (into / "midi").is_symlink()
    items, _ = discover_release(into)
    assert items[0].paired_video["media_path"] == str(into / "videos" / "00001.mp4")


def test_blocked_session_stops_the_run(server, tmp_path):
    base, hits = server
    release = make_release(tmp_path / "release", {f"0000{i}": f"{base}/limited.mp4?v=LIMITlimit{i}" for i in range(1, 4)})
    before = hits["/limited.mp4"]
    summary = fetch_videos(FetchConfig(source_dir=release, **{**FAST, "retries": 2}, stop_after_blocked=2),
                           report=lambda line: None)
    assert summary.rejected == 2 and "stopped after 2 refusals in a row (rate_limited)" in summary.stopped
    assert hits["/limited.mp4"] - before == 4  # 2 entries x 2 attempts; the third entry was never asked for
    assert [r["reason"] for r in rejects_of(release).values()] == ["rate_limited", "rate_limited"]


def test_user_mistakes_are_one_line(tmp_path, capsys):
    def error_of(*argv: str) -> str:
        assert main(["fetch-videos", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("symmv fetch-videos: error: ")
        return err

    assert "no SymMV.csv" in error_of("--source-dir", str(tmp_path / "nowhere"))
    release = make_release(tmp_path / "release", {"00001": "https://www.youtube.com/watch?v=SJOKlqJho8U"})
    (tmp_path / "a-file").write_text("x")
    assert "is a file" in error_of("--source-dir", str(release), "--into", str(tmp_path / "a-file"))
    assert "cannot create" in error_of("--source-dir", str(release), "--into", str(tmp_path / "a-file" / "sub"))
    (release / "videos").mkdir()
    (release / "videos" / "fetch_rejects.jsonl").write_text("my own list\n")
    assert "not written by symmv fetch-videos" in error_of("--source-dir", str(release))
    assert (release / "videos" / "fetch_rejects.jsonl").read_text() == "my own list\n"


def test_reject_reasons_from_ytdlp_messages():
    """Messages as yt-dlp's YouTube extractor writes them (yt_dlp/extractor/youtube/_video.py)."""
    cases = {
        "ERROR: [youtube] x: Private video. Sign in if you've been granted access to this video": "private",
        "ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader": "removed",
        "ERROR: [youtube] x: Video unavailable. This video is no longer available because the YouTube account "
        "associated with this video has been terminated.": "removed",
        "ERROR: [youtube] x: The uploader has not made this video available in your country": "geo_blocked",
        "ERROR: [youtube] x: Video unavailable. This video contains content from SME, who has blocked it in your "
        "country on copyright grounds": "geo_blocked",
        "ERROR: [youtube] x: Sign in to confirm your age. This video may be inappropriate for some users.": "age_restricted",
        "ERROR: [youtube] x: Sign in to confirm you're not a bot. Use --cookies-from-browser": "bot_check",
        "ERROR: [youtube] x: This content isn't available, try again later.": "rate_limited",
        "ERROR: [youtube] x: Join this channel to get access to members-only content like this video": "members_only",
        "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found": "not_found",
        "ERROR: Unsupported URL: https://example.com/": "unsupported_url",
    }
    assert {message: reject_reason(message) for message in cases} == cases
    assert reject_reason("<urlopen error [Errno 111] Connection refused>", transient=True) == "network_error"
    assert reject_reason("something new") == "download_failed"


def test_ydl_options_carry_rate_limit_retries_and_layout(tmp_path):
    cfg = FetchConfig(source_dir=tmp_path, ratelimit_bytes_s=500_000, sleep_interval_s=1.0, max_sleep_interval_s=3.0,
                      ytdlp_retries=4, max_video_height=480, cookies_file=tmp_path / "cookies.txt")
    opts = ydl_options_for(cfg, tmp_path / "videos", "00042")
    assert opts["outtmpl"]["default"] == str(tmp_path / "videos" / "00042.%(ext)s")
    assert opts["download_archive"] == str(tmp_path / "videos" / "archive.txt") and opts["writeinfojson"]
    assert (opts["ratelimit"], opts["sleep_interval"], opts["max_sleep_interval"]) == (500_000, 1.0, 3.0)
    assert (opts["retries"], opts["fragment_retries"]) == (4, 4) and "height<=480" in opts["format"]
    assert opts["overwrites"] is False and opts["cookiefile"] == str(tmp_path / "cookies.txt")
    assert opts["postprocessors"] == [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}]
    assert ydl_options_for(FetchConfig(ratelimit_bytes_s=0), tmp_path, "1")["ratelimit"] is None


@pytest.mark.slow
def test_fetched_video_is_built_into_video_features(server, www, symmv_release, tmp_path):
    """fetch-videos -> symmv build --source symmv-release over the fetched view: the video stage runs on the
    download (the first half of `make reproduce`). The video lasts as long as the release's cover of 00001, or the
    build refuses the pair as video:duration_mismatch."""
    import symmv
    from symmv.io.midi import read_notes

    base, _ = server
    release = make_release(tmp_path / "release", {})
    (release / "midi" / "00001.mid").write_bytes((symmv_release / "midi" / "00001.mid").read_bytes())
    cover_s = max(n.offset_s for n in read_notes(release / "midi" / "00001.mid"))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size=160x90:rate=4:duration={cover_s:.1f}", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={cover_s:.1f}", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "32k", str(www / "long.mp4")], check=True)
    (release / "SymMV.csv").write_text(f"index\tyoutube_url\ttonality\tshazam_id\n00001\t{base}/long.mp4?v=LONGlong001"
                                       "\tC major\t\n", encoding="utf-8")
    view = tmp_path / "view"
    assert fetch_videos(FetchConfig(source_dir=release, into=view, **FAST), report=lambda line: None).fetched == 1
    out = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "symmv.cli", "build", "--source", "symmv-release", "--source-dir", str(view),
                    "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--card-dir", str(tmp_path / "cards"),
                    "--video-fps", "2", "--semantic-stride", "4", "--no-progress"], check=True, cwd=REPO, timeout=600)
    features = symmv.load("video_features", root=out)
    assert list(features["song_id"]) == ["symmv-00001"] and list(features["video_id"]) == ["LONGlong001"]
    assert abs(float(features["duration_s"].iloc[0]) - cover_s) < 1.0
