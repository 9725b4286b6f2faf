import json

import pytest

from symmv.core.split import split_of
from symmv.sources.local import discover


def _item(folder, item_id, title="A - B (Piano Cover)", media=True, raw=None):
    (folder / f"{item_id}.info.json").write_text(raw if raw is not None else json.dumps(
        {"id": item_id, "title": title, "duration": 12.0}))
    if media:
        (folder / f"{item_id}.m4a").write_bytes(b"\0" * 10)


def test_discover_reads_ytdlp_layout_and_quarantines_broken_items(tmp_path):
    _item(tmp_path, "good1")
    _item(tmp_path, "good.2")  # dots in ids are legal on some sites
    _item(tmp_path, "nomedia", media=False)
    _item(tmp_path, "badjson", raw="{not json")
    _item(tmp_path, "notitle", raw=json.dumps({"id": "notitle"}))
    (tmp_path / "good1.m4a.part").write_bytes(b"")  # an interrupted download is not media
    items, rejects = discover(tmp_path)
    assert [i.id for i in items] == ["good.2", "good1"]
    assert items[1].media_path.endswith("good1.m4a") and items[1].duration_s == 12.0
    assert {(r.item_id, r.reason) for r in rejects} == {
        ("nomedia", "missing_media"), ("badjson", "bad_info_json"), ("notitle", "bad_info_json")}


def test_split_groups_covers_of_one_video_and_is_deterministic():
    group_of = {f"song{i}": f"video{i // 2}" for i in range(40)}  # pairs of covers share a video
    split = {song: split_of(group, 0.1, 0.1, seed=0) for song, group in group_of.items()}
    for i in range(0, 40, 2):
        assert split[f"song{i}"] == split[f"song{i + 1}"]
    assert {s: split_of(g, 0.1, 0.1, seed=0) for s, g in reversed(list(group_of.items()))} == split
    assert {s: split_of(g, 0.1, 0.1, seed=1) for s, g in group_of.items()} != split


def test_split_fractions_hold_on_average_and_bad_fractions_are_refused():
    counts = {s: 0 for s in ("train", "val", "test")}
    for i in range(4000):
        counts[split_of(f"https://www.youtube.com/watch?v={i:011d}", 0.1, 0.1)] += 1
    assert abs(counts["val"] / 4000 - 0.1) < 0.02 and abs(counts["test"] / 4000 - 0.1) < 0.02
    with pytest.raises(ValueError):
        split_of("v", 0.6, 0.5)
