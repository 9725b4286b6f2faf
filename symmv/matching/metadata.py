"""Genre and lyrics of a cover via ShazamIO (paper sec. 3.2, "Metadata").

"We use ShazamIO to search for lyrics and genres of music in SymMV." The cover audio is fingerprinted
locally by shazamio-core (Rust, no network) and the signature is sent to Shazam's recognition endpoint;
the answer carries `track.genres.primary` and, when Shazam has them, a LYRICS section (else one more call,
`track_about(key)`, may have it).

Three rules make this safe inside a batch flow:
* cached on disk by a fingerprint of the decoded audio, so a rerun never asks Shazam twice for one file;
* rate-limited (one request per `min_interval_s` per tagger; Shazam answers 429 to bursts);
* never fatal: any failure is a `Metadata(status="error", error=...)`, the song goes on without metadata.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from symmv.core import schema as _schema

PROVIDER = "shazamio"
CACHE_FORMAT = 1


def _provider_version() -> str:
    try:
        return f"{PROVIDER}=={importlib.metadata.version('shazamio')}"
    except importlib.metadata.PackageNotFoundError:
        return f"{PROVIDER}==unknown"


@dataclass(frozen=True, slots=True)
class Metadata:
    """What Shazam knows about one cover. `status`: "matched" | "no_match" | "error"."""

    genre: str | None
    lyrics: str | None  # lines joined by "\n"
    status: str = "error"
    error: str | None = None
    track_key: str | None = None
    title: str | None = None  # Shazam's title/artist: a cross-check of symmv.matching.titles' parse
    artist: str | None = None
    fingerprint: str | None = None
    from_cache: bool = False
    provider: str = PROVIDER


METADATA_SCHEMA = _schema.METADATA  # declared in symmv.core.schema (the one place every table is declared)


def metadata_row(song_id: str, meta: Metadata) -> dict:
    """A METADATA_SCHEMA row."""
    return {"song_id": song_id, "genre": meta.genre, "lyrics": meta.lyrics, "metadata_status": meta.status,
            "metadata_error": meta.error, "shazam_key": meta.track_key, "shazam_title": meta.title,
            "shazam_artist": meta.artist, "metadata_provider": _provider_version()}


def audio_fingerprint(path: str | Path) -> str:
    """sha256 of the decoded audio (mono 16-bit PCM at 22.05 kHz), so a re-muxed file keeps its key.

    Falls back to the file bytes when ffmpeg cannot decode it (then recognition will fail anyway, but the
    failure is keyed stably).
    """
    digest = hashlib.sha256()
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
           "-ar", "22050", "-f", "s16le", "-"]
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            total = 0
            for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):
                digest.update(chunk)
                total += len(chunk)
        if proc.returncode == 0 and total > 0:
            return "pcm-sha256:" + digest.hexdigest()
    except OSError:
        pass
    return "file-sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def extract_metadata(response: dict, about: dict | None = None) -> Metadata:
    """Genre/lyrics/title/artist from a recognition answer (+ an optional `track_about` answer). Pure."""
    track = response.get("track") or {}
    if not response.get("matches") or not track:
        return Metadata(None, None, status="no_match")
    genre = (track.get("genres") or {}).get("primary") or ((about or {}).get("genres") or {}).get("primary")
    lyrics = _lyrics(track) or _lyrics(about or {})
    return Metadata(genre=genre, lyrics=lyrics, status="matched", track_key=str(track.get("key") or "") or None,
                    title=track.get("title"), artist=track.get("subtitle"))


def _lyrics(track: dict) -> str | None:
    for section in track.get("sections") or []:
        if section.get("type") == "LYRICS" and section.get("text"):
            return "\n".join(str(line) for line in section["text"])
    return None


class RateLimiter:
    """At most one call per `min_interval_s` (thread-safe; Prefect runs sync tasks in threads)."""

    def __init__(self, min_interval_s: float, sleep: Callable[[float], None] = time.sleep):
        self.min_interval_s, self._sleep = float(min_interval_s), sleep
        self._lock = threading.Lock()
        self._next_s = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_s:
                self._sleep(self._next_s - now)
                now = self._next_s
            self._next_s = now + self.min_interval_s


class ShazamTagger:
    """Recognise covers with ShazamIO, cached on disk by audio fingerprint.

    `http_client`: a `shazamio.interfaces.client.HTTPClientInterface`; None builds shazamio's own
    HTTPClient with a short retry policy (shazamio's default retries up to 20 times, minutes per song).
    """

    def __init__(self, cache_dir: str | Path, min_interval_s: float = 3.0, http_client=None,
                 language: str = "en-US", endpoint_country: str = "GB", fetch_lyrics: bool = True,
                 limiter: RateLimiter | None = None):
        self.cache_dir = Path(cache_dir)
        self.http_client = http_client
        self.language, self.endpoint_country, self.fetch_lyrics = language, endpoint_country, fetch_lyrics
        self.limiter = limiter or RateLimiter(min_interval_s)

    def tag(self, audio_path: str | Path) -> Metadata:
        """Synchronous entry point (for Prefect tasks and scripts)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.tag_async(audio_path))
        # Called from inside a running loop (a notebook, an async flow): run on a private loop in a thread.
        result: list[Metadata] = []
        worker = threading.Thread(target=lambda: result.append(asyncio.run(self.tag_async(audio_path))))
        worker.start()
        worker.join()
        return result[0]

    async def tag_async(self, audio_path: str | Path) -> Metadata:
        fingerprint = None
        try:
            fingerprint = audio_fingerprint(audio_path)
            cache_file = self.cache_dir / f"{fingerprint.replace(':', '-')}.json"
            if cache_file.exists():
                cached = json.loads(cache_file.read_text(encoding="utf-8"))
                meta = extract_metadata(cached["response"], cached.get("about"))
                return _with(meta, fingerprint=fingerprint, from_cache=True)
            response, about = await self._recognize(audio_path)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"format": CACHE_FORMAT, "provider": _provider_version(),
                                       "response": response, "about": about}, ensure_ascii=False), encoding="utf-8")
            tmp.replace(cache_file)  # atomic: a crash never leaves a half-written cache entry
            return _with(extract_metadata(response, about), fingerprint=fingerprint)
        except Exception as exc:  # never fatal: the song keeps going without metadata
            return Metadata(None, None, status="error", error=f"{type(exc).__name__}: {exc}"[:500],
                            fingerprint=fingerprint)

    async def _recognize(self, audio_path: str | Path) -> tuple[dict, dict | None]:
        from aiohttp_retry import ExponentialRetry
        from shazamio import HTTPClient, Shazam

        own_client = self.http_client is None
        client = self.http_client or HTTPClient(retry_options=ExponentialRetry(
            attempts=3, max_timeout=20, statuses={500, 502, 503, 504, 429}))
        try:
            shazam = Shazam(language=self.language, endpoint_country=self.endpoint_country, http_client=client)
            self.limiter.wait()
            response = await shazam.recognize(str(audio_path))
            about = None
            track = response.get("track") or {}
            if self.fetch_lyrics and response.get("matches") and track.get("key") and not _lyrics(track):
                self.limiter.wait()
                about = await shazam.track_about(int(track["key"]))
            return response, about
        finally:
            if own_client:
                await client.close()


def _with(meta: Metadata, **changes) -> Metadata:
    return Metadata(**{**asdict(meta), **changes})
