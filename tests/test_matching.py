"""Official-video matching (paper sec. 3.1) on yt-dlp `ytsearch10:` flat results and info.json dicts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from symmv.matching.matcher import (MATCH_SCHEMA, MatchDecision, choose_video, match_row, score_candidate,
                            search_candidates)
from symmv.matching.titles import ParsedTitle, parse_title

RESULTS = Path(__file__).parent / "data" / "search_results"
LABELS = json.loads((RESULTS / "labels.json").read_text(encoding="utf-8"))["cases"]
# Floors just under what was measured (printed by test_precision_recall_on_labelled_searches).
MIN_PRECISION = 0.90
MIN_RECALL = 0.90


def _decide(name: str) -> tuple[MatchDecision, str | None]:
    label = LABELS[name]
    result = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    decision = choose_video(parse_title(label["cover_title"]), label["cover_duration_s"], result["entries"])
    return decision, label["expected_id"]


def _precision_recall(names: list[str]) -> tuple[float, float, int, int, int]:
    tp = fp = fn = 0
    for name in names:
        decision, expected = _decide(name)
        if decision.chosen_id is not None and decision.chosen_id == expected:
            tp += 1
        else:
            fp += decision.chosen_id is not None
            fn += expected is not None
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn


def test_recorded_results_have_the_ytdlp_flat_search_shape():
    for name in LABELS:
        result = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        assert result["_type"] == "playlist" and result["extractor_key"] == "YoutubeSearch"
        for e in result["entries"]:
            assert e["_type"] == "url" and e["ie_key"] == "Youtube"
            assert len(e["id"]) == 11 and e["url"].endswith(e["id"])
            assert {"title", "duration", "channel", "channel_id", "uploader", "view_count"} <= e.keys()


def test_precision_recall_on_labelled_searches():
    lines = []
    for split in ("tuning", "heldout", None):
        names = [n for n, lab in LABELS.items() if split is None or lab["split"] == split]
        p, r, tp, fp, fn = _precision_recall(names)
        lines.append(f"{split or 'all'}: n={len(names)} precision {p:.3f} recall {r:.3f} (tp {tp}, fp {fp}, fn {fn})")
    print("\nofficial-video matching: " + "; ".join(lines))
    p, r, *_ = _precision_recall(list(LABELS))
    assert p >= MIN_PRECISION and r >= MIN_RECALL


def test_lyric_audio_topic_live_and_covers_lose_to_the_official_video():
    decision, expected = _decide("coldplay_yellow")
    assert decision.chosen_id == expected == "yKNxeF4KMsY"
    by_title = {s.title: s for s in decision.scores}
    assert "lyric" in by_title["Coldplay - Yellow (Lyrics)"].penalties
    assert "topic_channel" in by_title["Yellow"].penalties
    assert "live" in by_title["Coldplay - Yellow (Live In Buenos Aires)"].penalties
    assert "cover" in by_title["Coldplay - Yellow (Piano Cover) | Peter Buka"].penalties
    assert "reaction" in by_title["Vocal Coach Reacts to Coldplay - Yellow"].penalties


def test_only_static_or_lyric_uploads_means_no_match():
    decision, expected = _decide("static_only")
    assert expected is None and decision.chosen_id is None
    assert decision.reason.startswith(("no_eligible_candidate", "below_threshold"))


def test_song_artist_order_is_resolved_by_the_candidates():
    # "Shallow - Lady Gaga" parses as artist "Shallow" (the dash default); the channel settles it.
    decision, expected = _decide("shallow")
    assert decision.chosen_id == expected
    assert decision.scores[0].orientation == "swapped"


def test_penalty_words_inside_the_song_name_are_not_penalised():
    parsed = ParsedTitle("Live Forever", "Oasis", 0.9, "test")
    info = {"id": "x" * 11, "title": "Oasis - Live Forever (Official Video)", "channel": "Oasis", "duration": 280}
    assert "live" not in score_candidate(parsed, 270, info).penalties


def test_works_on_full_info_json_dicts_too():
    # A local `<id>.info.json` (what the lead's offline demo passes): no ie_key/_type, extra music fields.
    info = {"id": "dQw4w9WgXcQ", "title": "Rick Astley - Never Gonna Give You Up (Official Music Video)",
            "uploader": "Rick Astley", "channel": "Rick Astley", "channel_id": "UCuAXFkgsw1L7xaCfnd5JJOw",
            "duration": 213, "upload_date": "20091025", "webpage_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "description": "The official video for “Never Gonna Give You Up” by Rick Astley", "tags": ["rick astley"],
            "categories": ["Music"], "track": "Never Gonna Give You Up", "artists": ["Rick Astley"]}
    lyric = {**info, "id": "lyricvideo1", "title": "Rick Astley - Never Gonna Give You Up (Lyrics)", "channel": "x",
             "uploader": "x", "track": None, "artists": None}
    parsed = parse_title("Rick Astley - Never Gonna Give You Up (Piano Cover)")
    decision = choose_video(parsed, 205.0, [lyric, info])
    assert decision.chosen_id == "dQw4w9WgXcQ" and decision.runner_up_id == "lyricvideo1"


def test_decision_round_trips_through_json_and_fits_the_schema():
    import pyarrow as pa

    decision, _ = _decide("despacito")
    again = MatchDecision.from_dict(json.loads(decision.to_json()))
    assert again == decision
    table = pa.Table.from_pylist([match_row("cover123456", decision)], schema=MATCH_SCHEMA)
    assert table.column("video_id").to_pylist() == [decision.chosen_id]


def test_no_candidates():
    decision = choose_video(ParsedTitle("x", "y", 0.9, "t"), 100.0, [])
    assert (decision.chosen_id, decision.reason) == (None, "no_candidates")


def test_search_candidates_uses_ytsearch_through_ytdlp(monkeypatch):
    # YouTube cannot be reached here: replace only the network fetch of the search extractor and check that
    #  our call goes through yt-dlp's real `ytsearchN:` dispatch and flat-playlist processing.
    import yt_dlp.extractor.youtube._search as yt_search

    recorded = json.loads((RESULTS / "adele_hello.json").read_text(encoding="utf-8"))
    asked = {}

    def fake_search_results(self, query, n=None):  # SearchInfoExtractor._search_results(query)
        asked["query"] = query
        yield from recorded["entries"]

    monkeypatch.setattr(yt_search.YoutubeSearchIE, "_search_results", fake_search_results, raising=True)
    entries = search_candidates("Adele Hello official video", n=3)
    assert asked["query"] == "Adele Hello official video"
    assert [e["id"] for e in entries] == [e["id"] for e in recorded["entries"][:3]]
    assert choose_video(parse_title("Adele - Hello (Piano Cover)"), 290, entries).chosen_id == "YQHsXMglC9A"
