"""ShazamIO metadata (paper sec. 3.2): real shazamio + shazamio-core signature of a real rendered clip; only
the remote API is replaced, at shazamio's own HTTP client interface, by recorded Shazam answers."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import aiohttp
import pyarrow as pa
import pytest
from shazamio import Serialize
from shazamio.interfaces.client import HTTPClientInterface

from symmv.matching.metadata import (METADATA_SCHEMA, Metadata, RateLimiter, ShazamTagger, audio_fingerprint,
                            extract_metadata, metadata_row)

RECORDED = Path(__file__).parent / "data" / "shazam"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


class RecordedShazamAPI(HTTPClientInterface):
    """Stands in for Shazam's servers: answers shazamio's requests with recorded JSON, records the calls."""

    def __init__(self, tag_answer: dict | Exception, about_answer: dict | None = None):
        self.tag_answer, self.about_answer, self.calls = tag_answer, about_answer, []

    async def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs.get("json")))
        if "/tag/" in url:
            if isinstance(self.tag_answer, Exception):
                raise self.tag_answer
            return self.tag_answer
        if "/track/" in url and self.about_answer is not None:
            return self.about_answer
        raise AssertionError(f"unexpected request {method} {url}")

    async def request_text(self, url, *, content_type, **kwargs):
        raise AssertionError("not used")


@pytest.fixture(scope="module")
def cover_mp3(tmp_path_factory) -> Path:
    """12 s of a piano-like chord sequence, rendered by ffmpeg (shazamio-core needs a few seconds of audio)."""
    path = tmp_path_factory.mktemp("audio") / "cover.mp3"
    tones = "+".join(f"0.2*sin(2*PI*{f}*t)*exp(-2*mod(t\\,1.5))" for f in (261.63, 329.63, 392.0, 523.25))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"aevalsrc={tones}:s=22050:d=12",
                    "-ac", "1", "-b:a", "64k", str(path)], check=True)
    return path


def no_wait() -> RateLimiter:
    return RateLimiter(0.0)


def test_recorded_answers_match_shazamio_schema():
    # The recorded answers must parse with shazamio's own pydantic models (same shapes as the live API).
    full = Serialize.full_track(recorded("recognize_match.json"))
    assert full.track.title == "Amazing Grace" and full.matches
    assert Serialize.full_track(recorded("recognize_no_match.json")).track is None
    Serialize.track(recorded("track_about.json"))


def test_genre_lyrics_and_cache(cover_mp3, tmp_path):
    api = RecordedShazamAPI(recorded("recognize_match.json"))
    tagger = ShazamTagger(tmp_path / "cache", http_client=api, limiter=no_wait())
    meta = tagger.tag(cover_mp3)
    assert meta.status == "matched" and meta.error is None
    assert meta.genre == "Folk" and (meta.title, meta.artist, meta.track_key) == ("Amazing Grace", "Judy Collins", "5933917")
    assert meta.lyrics.splitlines()[0] == "Amazing grace! How sweet the sound" and len(meta.lyrics.splitlines()) == 4
    # One real recognition request carrying a real shazamio-core signature of our clip.
    (method, url, body), = api.calls
    assert method == "POST" and "/tag/" in url
    assert body["signature"]["uri"].startswith("data:audio/vnd.shazam.sig;base64,") and body["signature"]["samplems"] > 0

    again = tagger.tag(cover_mp3)
    assert len(api.calls) == 1, "second call must be served from the disk cache"
    assert again.from_cache and (again.genre, again.lyrics) == (meta.genre, meta.lyrics)
    assert again.fingerprint == meta.fingerprint == audio_fingerprint(cover_mp3)
    assert list((tmp_path / "cache").glob("pcm-sha256-*.json"))


def test_lyrics_fall_back_to_track_about(cover_mp3, tmp_path):
    api = RecordedShazamAPI(recorded("recognize_no_lyrics.json"), recorded("track_about.json"))
    meta = ShazamTagger(tmp_path, http_client=api, limiter=no_wait()).tag(cover_mp3)
    assert meta.genre == "Classical" and meta.lyrics == "(instrumental: lent et douloureux)"
    assert [c[0] for c in api.calls] == ["POST", "GET"] and "/track/602118337" in api.calls[1][1]


def test_no_match_is_not_an_error(cover_mp3, tmp_path):
    meta = ShazamTagger(tmp_path, http_client=RecordedShazamAPI(recorded("recognize_no_match.json")),
                        limiter=no_wait()).tag(cover_mp3)
    assert (meta.status, meta.genre, meta.lyrics, meta.error) == ("no_match", None, None, None)


def test_network_error_is_not_fatal_and_not_cached(cover_mp3, tmp_path):
    api = RecordedShazamAPI(aiohttp.ClientConnectionError("Cannot connect to host amp.shazam.com:443"))
    tagger = ShazamTagger(tmp_path, http_client=api, limiter=no_wait())
    meta = tagger.tag(cover_mp3)
    assert meta.status == "error" and meta.genre is None and "ClientConnectionError" in meta.error
    tagger.tag(cover_mp3)
    assert len(api.calls) == 2, "failures are retried on the next run, not cached"


def test_undecodable_file_is_not_fatal(tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"not audio at all")
    api = RecordedShazamAPI(recorded("recognize_match.json"))
    meta = ShazamTagger(tmp_path / "cache", http_client=api, limiter=no_wait()).tag(bad)
    assert meta.status == "error" and meta.fingerprint.startswith("file-sha256:") and not api.calls


def test_rate_limiter_spaces_calls():
    slept = []
    limiter = RateLimiter(2.0, sleep=slept.append)
    limiter.wait()
    limiter.wait()
    assert len(slept) == 1 and 1.9 < slept[0] <= 2.0


def test_extract_metadata_and_row_fit_schema():
    meta = extract_metadata(recorded("recognize_match.json"))
    table = pa.Table.from_pylist([metadata_row("abc", meta), metadata_row("def", Metadata(None, None, error="x"))],
                                 schema=METADATA_SCHEMA)
    assert table.column("genre").to_pylist() == ["Folk", None]
    assert table.column("metadata_provider").to_pylist()[0].startswith("shazamio==")
