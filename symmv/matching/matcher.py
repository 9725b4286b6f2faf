"""Find the official music video for a parsed cover title (paper sec. 3.1).

"We parse the metadata and use the parsed song title and singer as keywords to search for the
corresponding official music video"; the musicians then removed "static or lyric videos". Here every
candidate gets an explainable score and every decision is kept (`MatchDecision.to_json`) so a person
can audit why a video was chosen or refused.

Candidates are plain dicts: a yt-dlp `ytsearchN:` flat entry ({'_type': 'url', 'ie_key': 'Youtube', 'id',
'title', 'duration', 'channel', 'channel_id', 'uploader', 'view_count', 'channel_is_verified', ...}) or a
full `<id>.info.json` (which adds 'artist'/'artists', 'track', 'categories', 'tags', 'width', 'height').
Only keys both have are required; the rest refine the score when present.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace


from symmv.matching.titles import ParsedTitle
from symmv.core import schema as _schema

try:  # rapidfuzz is much faster and handles partial matches better; difflib keeps this importable without it
    from rapidfuzz import fuzz as _fuzz

    def _ratio(a: str, b: str) -> float:
        return _fuzz.ratio(a, b) / 100.0

    def _partial_ratio(a: str, b: str) -> float:
        return _fuzz.partial_ratio(a, b) / 100.0

    SIMILARITY_BACKEND = "rapidfuzz"
except ImportError:  # pragma: no cover - exercised only where rapidfuzz is absent
    from difflib import SequenceMatcher

    def _ratio(a: str, b: str) -> float:
        return SequenceMatcher(None, a, b).ratio()

    def _partial_ratio(a: str, b: str) -> float:
        short, long_ = sorted((a, b), key=len)
        if not short:
            return 0.0
        n = len(short)
        return max(SequenceMatcher(None, short, long_[i:i + n]).ratio() for i in range(max(1, len(long_) - n + 1)))

    SIMILARITY_BACKEND = "difflib"

MATCHER_VERSION = "matching-1"
POPULARITY_WEIGHT = 0.02
# A candidate failing any of these is never chosen. min_official: some evidence the upload is official
#  (title says so, VEVO, verified, the artist's own channel); set it to 0 for sources without that metadata.
GATES = {"min_title_similarity": 0.75, "min_artist_similarity": 0.6, "min_official": 0.25}
# Kinds of upload the paper's musicians removed ("static or lyric videos") or that are not the original
#  video at all: any of these penalties also disqualifies. "live" and "alternate_version" only lower the score.
DISQUALIFYING = ("lyric", "audio_only", "topic_channel", "cover", "reaction", "short", "is_live")

# Weights of the positive evidence (sum 1.0) and the size of each penalty. Chosen by hand on the labelled
#  search results in tests/data/search_results (see tests/test_matching.py for the measured P/R).
WEIGHTS = {"title": 0.40, "artist": 0.25, "duration": 0.15, "official": 0.20}
PENALTIES = {
    "lyric": 0.45,  # lyric videos are what the paper's musicians removed
    "audio_only": 0.45,  # "(Audio)", "Official Audio", "Visualizer": a static image
    "topic_channel": 0.45,  # "<Artist> - Topic": auto-generated audio-only uploads
    "cover": 0.50,  # covers, piano versions, karaoke, instrumentals, remixes: not the original video
    "live": 0.35,  # live performances, concerts, "Live at ..."
    "reaction": 0.60,  # reaction / review / tutorial videos
    "short": 0.40,  # YouTube shorts: clips, not the music video
    "is_live": 0.60,  # a stream, live or archived
    "alternate_version": 0.15,  # "(Dance ver.)", "Extended", "10 hours": the song, but not *the* video
}
_PENALTY_PATTERNS = {
    "lyric": r"\blyrics?\b|\blyric\s+video\b|\bletra\b|\bsing[\s-]?along\b|가사|歌詞",
    "audio_only": r"[\(\[]\s*(?:official\s+)?audio\s*[\)\]]|\bofficial\s+audio\b|\bvisuali[sz]er\b|\baudio\s+only\b"
                  r"|\bstatic\s+video\b|\bfull\s+album\b",
    "cover": r"\bcover\b|\bpiano\s+(?:version|tutorial|solo)\b|\bkaraoke\b|\binstrumental\b|\bremix\b|\bsped\s+up\b"
             r"|\bslowed\b|\bnightcore\b|\b8d\s+audio\b|\bacoustic\s+version\b|\bmashup\b|\bsynthesia\b|カラオケ",
    "live": r"\blive\b|\bconcert\b|\btour\b|\bperformance\b|\bunplugged\b|\bmtv\b|\bgrammys?\b|\bsnl\b|\bat\s+the\s+bbc\b"
            r"|\bjimmy\s+fallon\b|\btiny\s+desk\b|\brehearsal\b",
    "reaction": r"\breacts?\b|\breaction\b|\breview\b|\bbreakdown\b|\bexplained\b|\btutorial\b|\blesson\b|\bvocal\s+coach\b"
                r"|\bbehind\s+the\s+scenes\b|\bmaking\s+of\b|\bteaser\b|\btrailer\b",
    "alternate_version": r"\bver(?:sion)?\b\.?|\bdance\s+practice\b|\bchoreograph|\bextended\b|\bloop\b"
                         r"|\b\d+\s*hours?\b|\bspecial\s+video\b|\bvertical\s+video\b",
}
_OFFICIAL_TITLE = re.compile(r"(?i)\bofficial\s+(?:music\s+)?video\b|\bofficial\s+mv\b|\bm/v\b|[\(\[]\s*mv\s*[\)\]]"
                             r"|\bmusic\s+video\b|\bofficial\s+video\b|\bmusic\s+clip\b|ミュージックビデオ|뮤직비디오")


@dataclass(frozen=True, slots=True)
class Score:
    """One candidate's score with every component, so the decision can be audited."""

    candidate_id: str
    title: str
    channel: str
    total: float
    title_similarity: float
    artist_similarity: float
    duration_agreement: float  # 1 = same length as the cover, 0 = off by >= 50 %, 0.5 = unknown
    official_bonus: float  # 0..1 evidence the upload is the official video
    penalties: dict[str, float] = field(default_factory=dict)
    orientation: str = "as_parsed"  # or "swapped": song and artist exchanged (ambiguous "A - B" titles)
    gate: str = ""  # why it could not be chosen whatever its total ("" = eligible)


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """Which candidate was chosen (or None) and why; JSON-serialisable for the audit trail."""

    chosen_id: str | None
    score: float
    runner_up_id: str | None
    runner_up_score: float
    reason: str  # machine-readable code: "matched", "no_candidates", "below_threshold", "title_mismatch"
    scores: list[Score]
    query: str = ""
    threshold: float = 0.0
    matcher_version: str = MATCHER_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> MatchDecision:
        scores = [Score(**s) for s in data.get("scores", [])]
        return cls(**{**data, "scores": scores})


MATCH_SCHEMA = _schema.MATCHES  # declared in symmv.core.schema (the one place every table is declared)


def match_row(cover_id: str, decision: MatchDecision) -> dict:
    """A MATCH_SCHEMA row for one decision."""
    return {
        "cover_id": cover_id, "video_id": decision.chosen_id, "score": decision.score,
        "runner_up_id": decision.runner_up_id, "runner_up_score": decision.runner_up_score,
        "reason": decision.reason, "query": decision.query, "decision_json": decision.to_json(),
        "matcher_version": decision.matcher_version,
    }


def _norm(text: str) -> str:
    """Lowercase, NFKC, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = re.sub(r"[^\w\s]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _compact(text: str) -> str:
    return _norm(text).replace(" ", "")


def _channel_of(info: dict) -> str:
    return str(info.get("channel") or info.get("uploader") or "")


def _similarity_in(needle: str, haystack: str) -> float:
    """How well `needle` occurs inside `haystack` (1 = verbatim)."""
    a, b = _compact(needle), _compact(haystack)
    if not a or not b:
        return 0.0
    if a in b:
        return 1.0
    return _partial_ratio(a, b) if len(a) <= len(b) else _ratio(a, b)


def _artist_similarity(artist: str, info: dict) -> float:
    if not artist:
        return 0.5  # nothing to compare: neutral
    channel = _channel_of(info)
    channel_core = re.sub(r"(?i)vevo$|\s*-\s*topic$|official$|\bofficial\b|\bmusic\b|\btv\b|\bchannel\b", "", channel)
    artists = info.get("artists") or ([info["artist"]] if info.get("artist") else [])
    # The artist may be credited in the title ("Artist - Song (Official Video)") or run the channel.
    title_part = str(info.get("title") or "").split(" - ")[0]
    fields = [channel_core, title_part, *map(str, artists)]
    return max(_similarity_in(artist, f) if len(_compact(f)) >= 2 else 0.0 for f in fields)


def _duration_agreement(cover_duration_s: float | None, candidate_duration_s: float | None) -> float:
    # Covers are often a little shorter than the video (no intro/outro/skits), so agreement is generous:
    #  full marks within 15 %, linearly down to 0 at 50 % relative difference.
    if not cover_duration_s or not candidate_duration_s:
        return 0.5
    rel = abs(float(candidate_duration_s) - float(cover_duration_s)) / max(float(cover_duration_s), 1.0)
    return float(min(1.0, max(0.0, (0.50 - rel) / 0.35)))


def _official_bonus(info: dict, artist: str) -> float:
    channel = _channel_of(info)
    evidence = 0.0
    if _OFFICIAL_TITLE.search(str(info.get("title") or "")):
        evidence += 0.5
    if re.search(r"(?i)vevo$", channel.replace(" ", "")):
        evidence += 0.5
    if info.get("channel_is_verified") or info.get("uploader_verified"):
        evidence += 0.25
    if artist and re.search(r"(?i)\s-\stopic$", channel) is None and _similarity_in(artist, channel) >= 0.9:
        evidence += 0.35  # the artist's own channel
    if str(info.get("categories") or "").find("Music") >= 0:
        evidence += 0.1
    return min(1.0, evidence)


def _penalties(info: dict, parsed: ParsedTitle) -> dict[str, float]:
    title = str(info.get("title") or "")
    own_words = _norm(f"{parsed.song} {parsed.artist} {parsed.context}")  # "Live Forever", "Cover Me Up"
    found: dict[str, float] = {}
    for name, pattern in _PENALTY_PATTERNS.items():
        for m in re.finditer(pattern, title, flags=re.IGNORECASE):
            if _norm(m.group(0)) and f" {_norm(m.group(0))} " not in f" {own_words} ":
                found[name] = PENALTIES[name]
                break
    if re.search(r"(?i)\s-\stopic$", _channel_of(info)):
        found["topic_channel"] = PENALTIES["topic_channel"]
    if "/shorts/" in str(info.get("url") or info.get("webpage_url") or ""):
        found["short"] = PENALTIES["short"]
    if info.get("live_status") in ("is_live", "was_live", "is_upcoming"):
        found["is_live"] = PENALTIES["is_live"]
    return found


def score_candidate(parsed: ParsedTitle, cover_duration_s: float | None, candidate_info: dict) -> Score:
    """Score one candidate video (flat search entry or info.json dict) against a parsed cover title."""
    title = str(candidate_info.get("title") or "")
    track = str(candidate_info.get("track") or "")
    title_sim = max(_similarity_in(parsed.song, title), _similarity_in(parsed.song, track) if track else 0.0)
    artist_sim = _artist_similarity(parsed.artist, candidate_info)
    duration = _duration_agreement(cover_duration_s, candidate_info.get("duration"))
    official = _official_bonus(candidate_info, parsed.artist)
    penalties = _penalties(candidate_info, parsed)
    # Views only break near-ties (the official upload of a song is nearly always its most viewed one).
    views = float(candidate_info.get("view_count") or 0)
    popularity = POPULARITY_WEIGHT * min(1.0, math.log10(views + 1.0) / 10.0)
    total = (WEIGHTS["title"] * title_sim + WEIGHTS["artist"] * artist_sim + WEIGHTS["duration"] * duration
             + WEIGHTS["official"] * official + popularity - sum(penalties.values()))
    return Score(
        candidate_id=str(candidate_info.get("id") or ""), title=title, channel=_channel_of(candidate_info),
        total=round(total, 4), title_similarity=round(title_sim, 4), artist_similarity=round(artist_sim, 4),
        duration_agreement=round(duration, 4), official_bonus=round(official, 4), penalties=penalties,
        gate=_gate(parsed, title_sim, artist_sim, duration, official, candidate_info, cover_duration_s, penalties),
    )


def _gate(parsed, title_sim, artist_sim, duration, official, info, cover_duration_s, penalties) -> str:
    """Hard requirements, independent of the weighted total: the name of the first one failed, or ""."""
    for name in DISQUALIFYING:
        if name in penalties:
            return f"excluded_{name}"
    if title_sim < GATES["min_title_similarity"]:
        return "song_not_in_title"
    if parsed.artist and artist_sim < GATES["min_artist_similarity"]:
        return "other_artist"
    if cover_duration_s and info.get("duration") and duration <= 0.0:
        return "duration_mismatch"  # a 10-hour loop or a 30-second teaser is not the music video
    if official < GATES["min_official"]:
        return "not_official"
    return ""


def _orientations(parsed: ParsedTitle) -> list[tuple[str, ParsedTitle]]:
    """The parse as given, plus song/artist swapped when the title's order was a guess."""
    out = [("as_parsed", parsed)]
    if parsed.artist and parsed.confidence < 0.8:
        out.append(("swapped", replace(parsed, song=parsed.artist, artist=parsed.song)))
    return out


def choose_video(
    parsed: ParsedTitle,
    cover_duration_s: float | None,
    candidates: list[dict],
    threshold: float = 0.55,
) -> MatchDecision:
    """Pick the official video among candidates, or None with a reason; every score is kept.

    Each candidate is scored under both readings of an ambiguous "A - B" title and keeps the better one;
    the best candidate that passes every gate (see GATES) and reaches `threshold` is chosen.
    """
    scores: list[Score] = []
    for info in candidates:
        if not info.get("id"):
            continue
        readings = [replace(score_candidate(p, cover_duration_s, info), orientation=name)
                    for name, p in _orientations(parsed)]
        scores.append(max(readings, key=lambda s: (not s.gate, s.total)))
    scores.sort(key=lambda s: (not s.gate, s.total), reverse=True)
    query = parsed.search_query()
    if not scores:
        return MatchDecision(None, 0.0, None, 0.0, "no_candidates", [], query, threshold)
    top = scores[0]
    runner = scores[1] if len(scores) > 1 else None
    runner_id, runner_score = (runner.candidate_id, runner.total) if runner else (None, 0.0)
    if top.gate:
        reason, chosen = f"no_eligible_candidate:{top.gate}", None
    elif top.total < threshold:
        reason, chosen = "below_threshold", None
    else:
        reason, chosen = "matched", top.candidate_id
    return MatchDecision(chosen, top.total, runner_id, runner_score, reason, scores, query, threshold)


def search_candidates(query: str, n: int = 10, ydl_opts: dict | None = None) -> list[dict]:
    """Flat YouTube search through yt-dlp's `ytsearchN:` (one request, no per-video page loads).

    Returns the playlist's entries as yt-dlp gives them (see the module docstring for their keys).
    Network and extractor failures propagate as `yt_dlp.utils.DownloadError`; callers wrap this in their
    retry policy (symmv.sources.youtube.with_retries).
    """
    import yt_dlp  # heavy import, only needed on the network path

    opts = {"quiet": True, "no_warnings": True, "skip_download": True, "extract_flat": "in_playlist",
            **(ydl_opts or {})}
    with yt_dlp.YoutubeDL(opts) as ydl:
        result = ydl.extract_info(f"ytsearch{int(n)}:{query}", download=False)
        result = ydl.sanitize_info(result) or {}
    return [e for e in result.get("entries") or [] if e]
