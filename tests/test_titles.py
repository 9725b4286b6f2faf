"""Title parsing (paper sec. 3.1) measured on a hand-labelled table of realistic piano-cover titles."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from symmv.core.ids import MAX_NAME_BYTES, safe_filename, sanitize_id
from symmv.matching.titles import ParsedTitle, parse_info, parse_title

TABLE = Path(__file__).parent / "data" / "titles.tsv"
# Floors on the whole table (207 titles), just under what was measured (song 0.918, both 0.913, both
#  ignoring order 0.995; printed by the test): a regression fails, an improvement does not.
MIN_BOTH_ACCURACY = 0.90
# Keywords found regardless of which side is the artist: what the video search needs, since matching
#  retries low-confidence parses with song and artist swapped (symmv.matching.matcher.choose_video).
MIN_UNORDERED_ACCURACY = 0.97
MIN_SONG_ACCURACY = 0.90


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())


def _matches(predicted: str, expected: str) -> bool:
    return any(_norm(predicted) == _norm(alt) for alt in expected.split("||"))


def load_table(split: str | None = None) -> list[tuple[str, str, str]]:
    """Rows of the table; split "tuning" (rules were developed on them), "heldout" or None (all)."""
    rows, current = [], "tuning"
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# --- heldout"):
            current = "heldout"
        if not line or line.startswith("#") or line.startswith("title\t"):
            continue
        title, song, artist = line.split("\t")
        if split is None or split == current:
            rows.append((title, song, artist))
    return rows


def test_table_is_big_enough():
    rows = load_table()
    assert len(rows) >= 150
    assert len({r[0] for r in rows}) == len(rows), "duplicate titles"


def _accuracy(rows):
    song_ok = artist_ok = both_ok = unordered_ok = 0
    errors = []
    for title, song, artist in rows:
        parsed = parse_title(title)
        s, a = _matches(parsed.song, song), _matches(parsed.artist, artist)
        song_ok += s
        artist_ok += a
        both_ok += s and a
        unordered_ok += (s and a) or (_matches(parsed.artist, song) and _matches(parsed.song, artist))
        if not (s and a):
            errors.append(f"  {title!r}: got ({parsed.song!r}, {parsed.artist!r}) [{parsed.rule}]"
                          f" want ({song!r}, {artist!r})")
    n = len(rows)
    return song_ok / n, artist_ok / n, both_ok / n, unordered_ok / n, errors


def test_accuracy_on_labelled_titles():
    for split in ("tuning", "heldout"):
        rows = load_table(split)
        song, artist, both, unordered, errors = _accuracy(rows)
        print(f"\ntitle parsing, {split} ({len(rows)} titles): song {song:.3f}, artist {artist:.3f}, "
              f"both {both:.3f}, both ignoring order {unordered:.3f}")
        print("\n".join(errors))
    song, _, both, unordered, _ = _accuracy(load_table())
    print(f"all: song {song:.3f}, both {both:.3f}, both ignoring order {unordered:.3f}")
    assert song >= MIN_SONG_ACCURACY
    assert both >= MIN_BOTH_ACCURACY
    assert unordered >= MIN_UNORDERED_ACCURACY


@pytest.mark.parametrize(
    ("title", "song", "artist", "context"),
    [
        ("Let It Go (from Frozen) piano", "Let It Go", "", "Frozen"),
        ("Interstellar - Main Theme - Hans Zimmer | Epic Piano Solo", "Main Theme", "Hans Zimmer", "Interstellar"),
        ("Gurenge (Demon Slayer OP) [Piano] - LiSA", "Gurenge", "LiSA", "Demon Slayer"),
    ],
)
def test_context_is_kept_for_the_search(title, song, artist, context):
    parsed = parse_title(title)
    assert (parsed.song, parsed.artist, parsed.context) == (song, artist, context)
    assert context in parsed.search_query() and song in parsed.search_query()


def test_description_fields_override_the_title():
    desc = "Learn to play this song!\nSong: Shallow\nArtist: Lady Gaga & Bradley Cooper\nSheets: https://x.y/z"
    parsed = parse_title("Shallow | A Star Is Born | Piano", description=desc)
    assert (parsed.song, parsed.artist, parsed.rule) == ("Shallow", "Lady Gaga & Bradley Cooper", "description_fields")


def test_description_decides_the_order_of_a_dash_title():
    # "Song - Artist" would read as "Artist - Song" without the description's "by Sam Smith".
    parsed = parse_title("Stay With Me - Sam Smith (EASY Piano Tutorial)",
                         description="My piano arrangement of the hit by Sam Smith. Sheets on Patreon")
    assert (parsed.song, parsed.artist) == ("Stay With Me", "Sam Smith")
    assert parsed.rule.endswith("+description")


def test_channel_order_hint_and_uploader_segment_are_used():
    parsed = parse_title("Shallow - Lady Gaga | Peter Buka", uploader="Peter Buka", order="song_artist")
    assert (parsed.song, parsed.artist, parsed.rule) == ("Shallow", "Lady Gaga", "channel_order")


def test_ytdlp_music_metadata_wins_in_parse_info():
    info = {"title": "some unparseable title", "track": "Lemon", "artists": ["Kenshi Yonezu"]}
    assert parse_info(info) == ParsedTitle("Lemon", "Kenshi Yonezu", 0.95, "ytdlp_music_metadata")
    assert parse_info({"title": "Coldplay - Yellow (Piano Cover)", "channel": "Rousseau"}).song == "Yellow"


def test_empty_and_noise_only_titles_are_unparsed():
    assert parse_title("").rule == "unparsed"
    assert parse_title("Piano Tutorial | Easy | Sheet Music 🎹").confidence == 0.0


# --- safe names -----------------------------------------------------------------------------------------

def test_youtube_ids_pass_through_unchanged():
    assert sanitize_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert sanitize_id("a_b-C9") == "a_b-C9"


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/b", "x\x00y", "-rf", "..", "", "id\nwith\tcontrol", "é"])
def test_sanitize_id_never_yields_a_path(raw):
    out = sanitize_id(raw)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", out), out
    assert out not in (".", "..")


def test_sanitize_id_keeps_distinct_ids_distinct():
    assert sanitize_id("a/b") != sanitize_id("a_b")
    assert sanitize_id("a/b") != sanitize_id("a:b")


@pytest.mark.parametrize(
    "title",
    ["AC/DC - Back In Black", "../../secret", "..", "nul\x00byte", "tab\tand\nnewline\x1b[31m", "CON",
     "\u202eevil-rtl-override", "   ", ".hidden"],
)
def test_safe_filename_is_one_safe_component(title):
    name = safe_filename(title, "mp3")
    assert name.endswith(".mp3")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert ".." not in name and not name.startswith(".")
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)
    assert name.split(".")[0].upper() != "CON"


def test_overlong_names_are_truncated_with_a_hash():
    long_jp = "残響散歌" * 40  # 480 UTF-8 bytes
    a, b = safe_filename(long_jp + "A", "json"), safe_filename(long_jp + "B", "json")
    assert len(a.encode()) <= MAX_NAME_BYTES and len(b.encode()) <= MAX_NAME_BYTES
    assert a != b and a.endswith(".json")
    a.encode("utf-8").decode("utf-8")  # no split character
    assert len(sanitize_id("x" * 500).encode()) <= MAX_NAME_BYTES
    assert safe_filename("米津玄師 - Lemon", "mp3") == "米津玄師 - Lemon.mp3"  # readable when short
