"""Parse song title and artist out of piano-cover video titles (paper sec. 3.1).

The paper "parse[s] the metadata and use[s] the parsed song title and singer as keywords to search for the
corresponding official music video". Tutorial channels have no shared convention, so parsing is a short
list of rules, tried in order, each leaving its name in `ParsedTitle.rule` so a wrong parse can be traced:

1. explicit fields in the description ("Song: ...", "Artist: ...", "Original song by ...");
2. yt-dlp's own music metadata (`track`/`artist`) when parsing a whole info.json (`parse_info`);
3. the title: strip decoration (emoji, hashtags, "[Synthesia]", "(Piano Cover)", "Easy", "Sheet music",
   "Piano Cover by X"), pull out "(from Movie)" context and CJK quotes (artist「song」, artist【song】),
   split on " - ", " | ", " / ", then decide which side is the artist.

Order of the two sides: " - " is "Artist - Song" on most channels, " / " and " | " are "Song / Artist"
(the Japanese and many tutorial-channel conventions). The description can flip it ("... by <side>").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

# Phrases that describe the *video*, never the song: cut wherever they appear in a title.
_VIDEO_PHRASES = [
    r"piano\s*(?:cover|tutorial|version|ver\.?|solo|arrangement|instrumental|lesson|sheets?|"
    r"sheet\s*music|karaoke|accompaniment|duet|collab(?:oration)?|remix|medley)s?",
    r"(?:easy|hard|advanced|intermediate|beginner|expert|slow|fast|simple|emotional|relaxing|beautiful|"
    r"epic|romantic|sad|ultimate|impossible|insane|extreme|virtuosic)\s+piano(?:\s+(?:cover|tutorial|"
    r"version|solo|arrangement|lesson|sheets?))?",
    r"(?:free\s+)?sheet\s*music(?:\s+\+\s*midi)?", r"sheets?\s*\+\s*midi", r"level\s*\d+",
    r"synthesia", r"how\s+to\s+play", r"learn\s+(?:to\s+play|piano)", r"tutorial(?:\s+lesson)?",
    r"(?:4|8)k", r"1080p", r"60\s*fps", r"with\s+lyrics",
]
# Single words that are noise only when a whole segment/bracket is made of them ("(Piano)", "| Easy |"):
#  inside a segment they may be part of the song ("Cover Me Up", "Solo", "Easy On Me", "Piano Man").
_VIDEO_WORDS = [
    r"(?:easy|hard|advanced|intermediate|beginner|expert)\s*(?:level|mode|version|ver\.?)?",
    r"sheets?", r"midi", r"lesson", r"piano", r"cover", r"instrumental", r"solo", r"hd", r"hq", r"lyrics",
    r"\d+\s*(?:hands?|h)", r"(?:one|two|left|right)\s+hands?",
]
# CJK scripts have no spaces, so these are cut wherever they appear (no word boundaries).
_CJK_NOISE_RE = re.compile(
    r"ピアノ(?:カバー|ソロ|アレンジ|楽譜|譜面|ver\.?)?|を?弾いてみた|楽譜|耳コピ|"
    r"피아노(?:\s*커버|\s*연주|\s*악보)?|커버|연주|악보|鋼琴(?:版|演奏|教學|譜)?|钢琴(?:版|演奏|教学|谱)?|琴譜|琴谱"
)
_NOISE_RE = re.compile(r"(?i)(?<![\w])(?:" + "|".join(_VIDEO_PHRASES + _VIDEO_WORDS) + r")(?![\w])")
_INLINE_NOISE_RE = re.compile(r"(?i)(?<![\w])(?:" + "|".join(_VIDEO_PHRASES) + r")(?![\w])")
# Single noise words are still cut at a segment's end ("Let It Go piano") or start ("Tutorial: ...").
_EDGE_WORD_RE = re.compile(
    r"(?i)^(?:advanced|intermediate|beginner|sheets?|tutorial|lesson|played|by)\b\s*|"
    r"\s*\b(?:piano|cover|easy|hard|advanced|intermediate|beginner|solo|instrumental|version|ver\.?|lyrics|"
    r"midi|sheets?|tutorial|lesson|hd|hq|slow|fast)$")
_COVER_BY_RE = re.compile(r"(?i)\b(?:piano\s+)?(?:cover|arrangement|arranged|tutorial|played)\s+by\s+.+$")
_FEAT_RE = re.compile(r"(?i)\s*[\(\[]?\s*\b(?:feat\.?|ft\.?|featuring)\s+[^\)\]\-|/]+[\)\]]?")
_FROM_RE = re.compile(
    r"""(?ix)
    [\(\[]\s*(?:from|theme\s+from|ost\s+from|from\s+the\s+(?:movie|film|anime|series))\s+
    ["'“”]?(?P<ctx>[^\)\]"“”]+?)["'“”]?\s*(?:ost|soundtrack)?\s*[\)\]]
    """
)
_OST_RE = re.compile(r"(?i)[\(\[]\s*(?P<ctx>[^\(\)\[\]]+?)\s+(?:ost|soundtrack|op|ed|opening|ending|theme)"
                     r"(?:\s*\d+)?\s*[\)\]]")
_CTX_MARK = "\ue000"  # private-use character marking where a "(Movie OST)" context was cut out
_BRACKETS = [("(", ")"), ("[", "]"), ("{", "}"), ("【", "】"), ("「", "」"), ("『", "』"), ("〈", "〉"), ("《", "》"),
             ("<", ">")]
_SEPARATORS = re.compile(r"\s+[-–—~|/]\s+|\s*[|｜]\s*|\s+-(?=\S)|(?<=\S)-\s+")
_DESC_FIELD = re.compile(
    r"(?im)^\s*(?:[-•*]\s*)?(?P<key>song(?:\s+title)?|title|track|original\s+song|artist|singer|"
    r"original\s+artist|performed\s+by|composer|composed\s+by|music\s+by|原曲|アーティスト|歌手|曲名)\s*[:：-]\s*"
    r"(?P<value>[^\n]+?)\s*$"
)
_ORIGINAL_BY = re.compile(r"(?i)\boriginal(?:\s+song)?(?:\s+(?:is|was))?\s*(?:[:：]\s*)?(?:\"|“)?(?P<song>[^\"”\n]+?)"
                          r"(?:\"|”)?\s+by\s+(?P<artist>[^\n.!,(]+)")


@dataclass(frozen=True, slots=True)
class ParsedTitle:
    """What a cover title says about the original: the search keywords of paper sec. 3.1."""

    song: str
    artist: str  # "" when the title names no artist (e.g. "Song (from Movie) piano")
    confidence: float  # 0..1, rule-based (not calibrated): low values deserve a human look
    rule: str  # which rule produced it, for auditing
    context: str = ""  # film / anime / game the song is from ("from Frozen", "Naruto OP")

    def to_dict(self) -> dict:
        return asdict(self)

    def search_query(self) -> str:
        """Keywords for the official-video search ("<artist> <song> <context> official video")."""
        return " ".join(p for p in (self.artist, self.song, self.context, "official video") if p)


def _strip_symbols(text: str) -> str:
    """NFKC (fullwidth ｜－ → ASCII), drop emoji/pictographs/dingbats and zero-width/variation characters."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Sk", "Cf", "Cc", "Co", "Cs") or 0xFE00 <= ord(ch) <= 0xFE0F:
            out.append(" ")
        else:
            out.append(ch)
    text = "".join(out)
    text = re.sub(r"(?<!\w)#\S+", " ", text)  # hashtags
    return re.sub(r"\s+", " ", text).strip()


def _is_noise(segment: str, uploader: str = "") -> bool:
    """True when a segment only describes the video (or names the uploading channel)."""
    s = segment.strip()
    if not s:
        return True
    if uploader and _norm(s) == _norm(uploader):
        return True
    rest = _NOISE_RE.sub(" ", _CJK_NOISE_RE.sub(" ", s))
    rest = re.sub(r"(?i)\b(?:by|and|&|\+|x|the|a|an|in|for|of|on)\b", " ", rest)
    return not re.sub(r"[\W_]+", "", rest)


def _remove_noise(segment: str) -> str:
    s = _COVER_BY_RE.sub("", segment)
    s = _INLINE_NOISE_RE.sub(" ", _CJK_NOISE_RE.sub(" ", s))
    s = re.sub(r"\s+", " ", s).strip(" -–—|/~:,.+&")
    while True:
        stripped = _EDGE_WORD_RE.sub("", s).strip(" -–—|/~:,.+&")
        if stripped == s or not stripped:
            return stripped if stripped else s
        s = stripped


def _norm(text: str) -> str:
    """Comparison form: casefold, NFKC, punctuation and spaces removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", "", text)


def _clean_name(text: str) -> str:
    """Final tidy of a song/artist string: no feat., no leftover brackets or quotes."""
    text = _FEAT_RE.sub(" ", text)
    for open_, close in _BRACKETS:
        text = re.sub(re.escape(open_) + r"[^" + re.escape(open_ + close) + r"]*" + re.escape(close), " ", text)
    text = re.sub(r"[\"“”'‘’]+(?=\s|$)|(?<=\s)[\"“”'‘’]+|^[\"“”'‘’]+", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip(" -–—|/~:,.+")


def _bracket_segments(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Remove top-level bracketed parts; return the remaining text and [(opening bracket, inner text)]."""
    found: list[tuple[str, str]] = []
    for open_, close in _BRACKETS:
        pattern = re.compile(re.escape(open_) + r"([^" + re.escape(open_ + close) + r"]*)" + re.escape(close))
        for m in pattern.finditer(text):
            found.append((open_, m.group(1).strip()))
        text = pattern.sub(" ", text)
    return text, found


def _from_description(description: str) -> tuple[str, str]:
    """(song, artist) from explicit fields in the description, "" where absent."""
    song = artist = ""
    for m in _DESC_FIELD.finditer(description or ""):
        key, value = m.group("key").lower(), _clean_name(m.group("value"))
        if not value or re.match(r"(?i)https?://", value):
            continue
        if key in ("song", "song title", "title", "track", "original song", "曲名") and not song:
            if " by " in value.lower() and key == "original song":
                song, _, by = value.partition(" by ")
                artist = artist or _clean_name(by)
                song = _clean_name(song)
            else:
                song = value
        elif key not in ("song", "song title", "title", "track", "original song", "曲名") and not artist:
            artist = value
    if not song:
        m = _ORIGINAL_BY.search(description or "")
        if m:
            song, artist = _clean_name(m.group("song")), artist or _clean_name(m.group("artist"))
    return song, artist


def _mentioned_as_artist(name: str, description: str) -> bool:
    """Does the description say "by <name>" / "<name>'s" (so `name` is the performer)?"""
    if not name or not description:
        return False
    pattern = r"(?i)(?:\bby|\bfrom|\bsinger|\bartist)\s*[:：]?\s*" + re.escape(name) + r"|" + re.escape(name) + r"['’]s\b"
    return re.search(pattern, description) is not None


def _split_title(text: str) -> tuple[list[str], list[str]]:
    """Split on separators; return (segments, the separator before each segment after the first)."""
    parts = _SEPARATORS.split(text)
    seps = [m.group(0).strip() or "-" for m in _SEPARATORS.finditer(text)]
    return parts, seps


def parse_title(title: str, description: str = "", uploader: str = "", order: str | None = None) -> ParsedTitle:
    """Song and artist from a piano-cover title (+ description, + the channel name to discard).

    `order` ("artist_song" | "song_artist") is a per-channel hint from configs/channels.toml that overrides
    the separator default for two-part titles.
    """
    desc_song, desc_artist = _from_description(description)
    if desc_song and desc_artist:
        return ParsedTitle(desc_song, desc_artist, 0.95, "description_fields")

    text = _strip_symbols(title)
    context = ""
    m = _FROM_RE.search(text) or _OST_RE.search(text)
    if m and not _is_noise(m.group("ctx")):
        context = _clean_name(m.group("ctx"))
        text = text[: m.start()] + _CTX_MARK + text[m.end():]
    text = _COVER_BY_RE.sub("", text)

    text, brackets = _bracket_segments(text)
    quoted = [inner for open_, inner in brackets if open_ in "「『《〈【" and not _is_noise(inner, uploader)]

    parts, seps = _split_title(text)
    kept: list[tuple[str, str]] = []  # (separator before it, text)
    song_side = -1  # index in `kept` of the segment that carried "(Movie OST)": that side is the song
    for i, part in enumerate(parts):
        sep = seps[i - 1] if i > 0 else ""
        if _CTX_MARK in part:
            song_side = len(kept)
            part = part.replace(_CTX_MARK, " ")
        if _is_noise(part, uploader):
            continue
        cleaned = _remove_noise(part)
        if cleaned and not _is_noise(cleaned, uploader):
            kept.append((sep, cleaned))

    song, artist, rule, conf = _assign(kept, quoted, description, order, song_side)
    if rule == "work_piece_artist" and not context:
        context = _clean_name(kept[0][1])
    song, artist = _clean_name(song), _clean_name(artist)
    if desc_song and not song:
        song, rule = desc_song, rule + "+description_song"
    if desc_artist and (not artist or _norm(artist) == _norm(song)):
        artist, rule, conf = desc_artist, rule + "+description_artist", max(conf, 0.8)
    if not song and artist:  # a lone segment is more likely the song than the artist
        song, artist = artist, ""
    if context and _norm(artist) == _norm(context):
        artist = ""
    if not song:
        return ParsedTitle("", artist, 0.0, "unparsed", context)
    return ParsedTitle(song, artist, conf if artist else min(conf, 0.5), rule, context)


def _assign(kept: list[tuple[str, str]], quoted: list[str], description: str, order: str | None,
            song_side: int = -1):
    """Decide (song, artist, rule, confidence) from the kept title segments and CJK-quoted parts."""
    if quoted:  # artist「song」 / artist【song】 (Japanese and Chinese channels)
        song = quoted[0]
        others = [t for _, t in kept if _norm(t) != _norm(song)]
        return song, (others[0] if others else ""), "cjk_quotes", 0.85
    if not kept:
        return "", "", "unparsed", 0.0
    if len(kept) == 1:
        text = kept[0][1]
        m = re.match(r"(?i)^(?P<song>.+?)\s+by\s+(?P<artist>.+)$", text)
        if m:
            return m.group("song"), m.group("artist"), "song_by_artist", 0.8
        return text, "", "song_only", 0.4
    if len(kept) >= 3:
        # "Interstellar - Main Theme - Hans Zimmer": work - piece - composer
        return kept[1][1], kept[2][1], "work_piece_artist", 0.55
    (_, left), (sep, right) = kept
    if order == "artist_song":
        return right, left, "channel_order", 0.9
    if order == "song_artist":
        return left, right, "channel_order", 0.9
    if _mentioned_as_artist(right, description) and not _mentioned_as_artist(left, description):
        return left, right, "song_sep_artist+description", 0.85
    if _mentioned_as_artist(left, description) and not _mentioned_as_artist(right, description):
        return right, left, "artist_sep_song+description", 0.85
    if song_side in (0, 1):  # "Gurenge (Demon Slayer OP) - LiSA"
        return (left, right, "song_with_context_first", 0.8) if song_side == 0 else (
            right, left, "artist_dash_song_with_context", 0.8)
    if sep in ("/", "|"):
        return left, right, "song_slash_artist", 0.7
    if _FEAT_RE.search(left):  # "Artist ft. X - Song"
        return right, left, "artist_feat_dash_song", 0.8
    if "&" in right and "&" not in left:  # "Señorita - Shawn Mendes & Camila Cabello"
        return left, right, "song_dash_duo", 0.6
    return right, left, "artist_dash_song", 0.7


def parse_info(info: dict, order: str | None = None) -> ParsedTitle:
    """Parse a yt-dlp info dict: YouTube's own music metadata (`track`, `artist(s)`) wins when present."""
    track = info.get("track")
    artists = info.get("artists") or ([info["artist"]] if info.get("artist") else [])
    if track and artists:
        return ParsedTitle(str(track), str(artists[0]), 0.95, "ytdlp_music_metadata")
    return parse_title(
        str(info.get("title") or ""),
        str(info.get("description") or ""),
        str(info.get("channel") or info.get("uploader") or ""),
        order=order,
    )
