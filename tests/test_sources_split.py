import json

from symmv.sources.local import discover
from symmv.core.split import assign_splits


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
    split = assign_splits(group_of, 0.1, 0.1, seed=0)
    assert split == assign_splits(dict(reversed(list(group_of.items()))), 0.1, 0.1, seed=0)
    for i in range(0, 40, 2):
        assert split[f"song{i}"] == split[f"song{i + 1}"]
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 32, "val": 4, "test": 4}  # 20 groups -> 16/2/2 groups
    assert assign_splits(group_of, 0.1, 0.1, seed=1) != split


def test_split_small_sets_still_get_val_and_test():
    split = assign_splits({f"s{i}": f"v{i}" for i in range(3)}, 0.1, 0.1)
    assert sorted(split.values()) == ["test", "train", "val"]
