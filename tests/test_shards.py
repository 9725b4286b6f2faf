import pyarrow.parquet as pq
import pytest

from symmv.core.schema import NOTES, SCHEMA_VERSION
from symmv.core.shards import commit_shards, load, shard_paths, write_shard


def _notes(song, n):
    return [{"song_id": song, "track": "piano", "onset_s": 0.5 * (n - i), "offset_s": 0.5 * (n - i) + 0.4,
             "pitch": 60 + i, "velocity": 80} for i in range(n)]


def test_roundtrip_schema_sorting_and_split_column(tmp_path):
    write_shard(tmp_path, "notes", "train", _notes("b", 3) + _notes("a", 2), "p0")
    write_shard(tmp_path, "notes", "test", _notes("c", 1), "p0")
    commit_shards(tmp_path)
    frame = load("notes", root=tmp_path)
    assert list(frame["song_id"]) == ["a", "a", "b", "b", "b", "c"]
    assert frame.groupby("song_id")["onset_s"].apply(lambda s: s.is_monotonic_increasing).all()
    assert set(frame["split"]) == {"train", "test"}
    assert list(load("notes", split="test", root=tmp_path)["song_id"]) == ["c"]
    assert len(load("notes", split=["train", "test"], root=tmp_path)) == 6
    stored = pq.read_schema(shard_paths(tmp_path, "notes", "train")[0])
    assert stored.remove_metadata().equals(NOTES)
    assert stored.metadata[b"symmv_schema_version"].decode() == SCHEMA_VERSION


def test_same_rows_give_identical_bytes(tmp_path):
    a = write_shard(tmp_path / "x", "notes", "train", _notes("s", 50), "p0")
    b = write_shard(tmp_path / "y", "notes", "train", list(reversed(_notes("s", 50))), "p0")
    assert a.read_bytes() == b.read_bytes()


def test_crash_mid_write_leaves_no_visible_shard(tmp_path, monkeypatch):
    import symmv.core.shards as shards

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shards.pq, "write_table", boom)
    with pytest.raises(OSError):
        write_shard(tmp_path, "notes", "train", _notes("s", 3), "p0")
    assert not list((tmp_path / "notes").rglob("*.parquet"))  # neither the part nor its temp file
    assert commit_shards(tmp_path)["tables"]["notes"] == []


def test_rejects_wrong_schema_version(tmp_path):
    path = write_shard(tmp_path, "notes", "train", _notes("s", 2), "p0")
    table = pq.read_table(path).replace_schema_metadata({"symmv_schema_version": "0"})
    pq.write_table(table, path)
    commit_shards(tmp_path)
    with pytest.raises(ValueError, match="schema version 0"):
        load("notes", root=tmp_path)


def test_empty_and_unknown_tables(tmp_path):
    commit_shards(tmp_path)
    assert list(load("chords", root=tmp_path).columns)[-1] == "split"
    with pytest.raises(KeyError):
        load("nope", root=tmp_path)
