"""Turn untrusted strings (video titles, ids from a remote site) into safe file names.

Nothing a website sends becomes a path unchecked: a title can hold '/', '..', NUL, control characters,
right-to-left overrides or 300 bytes of emoji. Names are capped in UTF-8 *bytes* (ext4 and most
filesystems limit a component to 255 bytes, not characters); an overlong name keeps a readable prefix and
gets a short hash of the full string so two long titles that share a prefix never collide.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_NAME_BYTES = 120
HASH_CHARS = 8

_ID_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
# Path separators, characters Windows/SMB refuse, and shell-hostile quoting characters.
_FORBIDDEN = re.compile(r'[/\\:*?"<>|\x00]')
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Longest prefix of `text` whose UTF-8 encoding fits in `max_bytes` (never splits a character)."""
    encoded = text.encode("utf-8", "ignore")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def _drop_unprintable(text: str) -> str:
    # Cc = control (incl. NUL, \n, \t), Cf = format (bidi overrides, zero-width joiners), Cs = surrogates.
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text)


def _fit(name: str, original: str, max_bytes: int, suffix: str = "") -> str:
    """Cap `name + suffix` at max_bytes; when it must be cut, append '-<hash of original>'."""
    if len((name + suffix).encode("utf-8")) <= max_bytes:
        return name + suffix
    tail = f"-{_short_hash(original)}{suffix}"
    room = max_bytes - len(tail.encode("utf-8"))
    return _truncate_utf8(name, max(room, 0)).rstrip(" ._-") + tail


def sanitize_id(raw: object, max_bytes: int = MAX_NAME_BYTES) -> str:
    """An item id safe as a file stem: only [A-Za-z0-9_-], never empty, never starting with '-'.

    YouTube ids (11 chars of [A-Za-z0-9_-]) pass through unchanged, so `<id>.info.json` stays what yt-dlp
    writes. Anything else is rewritten and, if any character had to change, suffixed with a hash of the
    original so two different raw ids can never map to the same name.
    """
    text = str(raw)
    cleaned = _ID_ALLOWED.sub("_", text)
    if cleaned.startswith("-"):
        cleaned = "_" + cleaned[1:]
    if cleaned != text or not cleaned:
        cleaned = f"{cleaned.strip('_') or 'id'}-{_short_hash(text)}"
    return _fit(cleaned, text, max_bytes)


def safe_filename(name: object, ext: str = "", max_bytes: int = MAX_NAME_BYTES) -> str:
    """A single, human-readable path component for `name` (e.g. a video title), plus `.ext`.

    Keeps Unicode letters (Japanese/Korean titles stay readable), removes separators, NUL and control
    characters, collapses '..', strips leading dots (no hidden files), avoids Windows device names, and caps
    the whole component at `max_bytes` UTF-8 bytes (prefix + short hash when cut).
    """
    original = str(name)
    text = unicodedata.normalize("NFC", _drop_unprintable(original))
    text = _FORBIDDEN.sub("_", text)
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        text = f"untitled-{_short_hash(original)}"
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    suffix = ""
    if ext:
        clean_ext = re.sub(r"[^A-Za-z0-9]", "", ext.lstrip("."))[:10]
        suffix = f".{clean_ext}" if clean_ext else ""
    return _fit(text, original, max_bytes, suffix)
