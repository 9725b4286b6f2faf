"""symmv.card (writer, sections, plots, reading): the dataset card of a tiny build written on the fly (tests/card_fixtures.py) has the known numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from card_fixtures import EXPECTED, build_dataset
from symmv.card import PLOT_FILES
from symmv.card.plots import plot_semantic_tsne
from symmv.card.sections import NOT_AVAILABLE, size_category
from symmv.card.writer import main, write_card
from symmv.core.shards import commit_shards

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ACCURACY = {"annotators": {"key": "key-ks 1"}, "wall_s": 987.25,
            "release": {"key_vs_labels": {"n": 10, "exact": 0.7, "mirex_weighted": 0.8}, "items": [{"n": 1}]}}
SECTIONS = ["# SymMV: tiny", "## Dataset summary", "## Tables", "## Splits", "## Genres",
            "## Data analysis (paper Fig. 3)", "## Provenance", "## Annotator accuracy", "## Rejected items",
            "## Licenses", "## Known limitations", "## Loading", "## Citation"]


@pytest.fixture(scope="module")
def full_build(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("build") / "symmv-tiny")


@pytest.fixture(scope="module")
def full_card(full_build, tmp_path_factory) -> Path:
    cards = tmp_path_factory.mktemp("cards")
    at_root = write_card(full_build, cards, name="tiny", extra={"annotator_accuracy": ACCURACY})
    assert at_root == full_build / "README.md"  # the dataset root is a Hugging Face dataset
    copy = cards / "tiny" / "README.md"  # and the repository keeps a copy
    assert copy.read_text() == at_root.read_text()
    return copy


def header_and_body(card: Path) -> tuple[str, str]:
    text = card.read_text()
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return header, body


def test_card_sections_and_numbers(full_card):
    assert full_card.name == "README.md" and full_card.parent.name == "tiny"
    _, body = header_and_body(full_card)
    positions = [body.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert f"| Songs (piano cover + official video pairs) | {EXPECTED['songs']} |" in body
    assert f"| Music (piano cover audio) | {EXPECTED['music_hours']} |" in body  # 8 x 90 s
    assert f"| Official videos | {EXPECTED['video_hours']} |" in body  # 8 x 100 s
    assert f"| Notes | {EXPECTED['notes']} |" in body
    assert "| Beats | 64 |" in body and "| Chords | 32 |" in body and "| Videos with features | 8 |" in body
    # splits: songs, music h (n x 90 s), video h (n x 100 s), notes (4/song), beats (8/song), chords, video rows
    assert "| train | 5 | 0.12 | 0.14 | 20 | 40 | 20 | 5 |" in body
    assert "| val | 2 | 0.05 | 0.06 | 8 | 16 | 8 | 2 |" in body
    assert "| test | 1 | 0.03 | 0.03 | 4 | 8 | 4 | 1 |" in body
    assert "| Pop | 4 | 50.0% | 4 | 0 | 0 | 115.0 |" in body  # median of 100, 110, 120, 128
    assert "| Rock | 3 | 37.5% | 1 | 2 | 0 | 150.0 |" in body
    assert "5 major, 3 minor" in body
    tables = [line for line in body.split("## Tables")[1].split("## Splits")[0].splitlines()
              if not line.startswith(("| `metadata`", "| `music_qc`", "| `alignment`"))]  # optional: absent here
    assert NOT_AVAILABLE not in "\n".join(tables)


def test_card_provenance_rejects_licenses_accuracy(full_card):
    _, body = header_and_body(full_card)
    for transcriber, n in EXPECTED["transcribers"].items():
        assert f"| `{transcriber}` | {n} |" in body
    assert "| `beats` | `beats`, songs.tempo_bpm / meter | `madmom 0.16.1` | 8 |" in body
    assert "| `notes` | `notes` onset_s / offset_s / pitch / velocity, songs.n_notes, the MIDI files | " \
           "`basic-pitch 0.4.0` | 6 |" in body
    assert "|  |  | `pti 1.0` | 2 |" in body  # second producer of the same stage
    assert "| `fixture-encoder 1` | 8 |" in body  # semantic encoder per video
    assert "3 items were dropped" in body
    assert "| `transcribe` | `no_notes` | 2 | `r0`, `r1` |" in body
    assert "| `match` | `no_video_match` | 1 | `r2` |" in body
    licenses = body.split("## Licenses")[1].split("## Known limitations")[0]
    assert licenses.count("CC BY-NC-SA 4.0") >= 3  # the build, the SymMV release, madmom's models
    assert "madmom" in licenses and "public-domain" in licenses
    assert "| release / key_vs_labels | n 10 | exact 0.700, mirex_weighted 0.800 |" in body
    assert "`key`: key-ks 1" in body and "987" not in body  # timing fields are not card content
    assert "not the paper's 512-d CLIP features" in body


def test_card_plots_written_and_linked(full_card):
    _, body = header_and_body(full_card)
    for filename in PLOT_FILES.values():
        png = full_card.parent / filename
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert f"]({filename})" in body
    assert "over 8 songs, top 3 genres" in body  # BPM: Pop, Rock KDEs and the 1-song Jazz histogram
    assert "8 videos, features from `fixture-encoder 1`" in body


def test_yaml_header_lists_tables_and_splits(full_card, full_build):
    yaml = pytest.importorskip("yaml")
    header = yaml.safe_load(header_and_body(full_card)[0])
    assert header["pretty_name"] == "SymMV (tiny)" and header["license"] == "cc-by-nc-sa-4.0"
    assert header["size_categories"] == ["n<1K"] and "symbolic-music" in header["tags"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"songs", "notes", "beats", "chords", "key_windows", "video_features", "matches", "rejects"}
    assert configs["songs"].get("default") is True
    assert [f["split"] for f in configs["songs"]["data_files"]] == ["train", "val", "test"]
    assert [f["split"] for f in configs["rejects"]["data_files"]] == ["rejected"]
    for config in configs.values():
        for data_file in config["data_files"]:
            assert list(full_build.glob(data_file["path"])), data_file  # every pattern matches real shards


def test_card_is_deterministic(full_card, full_build, tmp_path):
    again = write_card(full_build, tmp_path, name="tiny", extra={"annotator_accuracy": ACCURACY})
    assert again.read_text() == full_card.read_text()
    for filename in PLOT_FILES.values():
        assert (again.parent / filename).read_bytes() == (full_card.parent / filename).read_bytes()


def test_cli_on_a_build_without_annotations(tmp_path, capsys):
    root = build_dataset(tmp_path / "bare", tables=("songs", "notes", "rejects"))
    card_dir = tmp_path / "cards" / "bare"
    card_dir.mkdir(parents=True)
    for filename in PLOT_FILES.values():  # plots of an earlier build that this one cannot draw
        (card_dir / filename).write_bytes(PNG_MAGIC)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"limitations": ["Fixture build: numbers are made up."]}))

    assert main(["--root", str(root), "--out-dir", str(tmp_path / "cards"), "--extra", str(extra),
                 "--accuracy", str(tmp_path / "missing.json")]) == 0

    assert Path(capsys.readouterr().out.strip()) == root / "README.md"
    card = card_dir / "README.md"
    _, body = header_and_body(card)
    for line in ("| Beats | not available in this build (no `beats` table) |",
                 "| Videos with features | not available in this build (no `video_features` table) |",
                 "t-SNE of video semantic features by genre: not available in this build: no semantic features",
                 "Chord distribution per genre: not available in this build: the `chords` table is absent",
                 "Annotator accuracy figures: not available in this build",
                 "This build has no `beats`, `chords`, `key_windows`, `video_features` table",
                 "- Fixture build: numbers are made up."):
        assert line in body
    assert "| train | 5 | 0.12 | 0.14 | 20 | - | - | - |" in body
    assert (card_dir / PLOT_FILES["bpm"]).stat().st_size > 5000  # songs.tempo_bpm is still there
    assert not (card_dir / PLOT_FILES["tsne"]).exists() and not (card_dir / PLOT_FILES["chords"]).exists()
    configs = [line for line in header_and_body(card)[0].splitlines() if line.startswith("- config_name:")]
    assert configs == ["- config_name: songs", "- config_name: notes", "- config_name: rejects"]


def test_empty_root_gives_a_card_of_absences(tmp_path):
    (tmp_path / "empty").mkdir()
    commit_shards(tmp_path / "empty")  # a committed build of nothing (an uncommitted root has no card: load refuses)
    body = header_and_body(write_card(tmp_path / "empty", tmp_path / "cards"))[1]
    assert "| Songs (piano cover + official video pairs) | 0 |" in body
    assert "Songs: not available in this build." in body
    assert "`rejects`: not available in this build." in body
    with pytest.raises(FileNotFoundError):
        write_card(tmp_path / "nowhere", tmp_path / "cards")


def test_tsne_needs_five_videos(tmp_path):
    video = pd.DataFrame({"song_id": ["a", "b", "c"], "semantic_encoder": ["e 1"] * 3, "annotator": [None] * 3,
                          "mean_semantic": [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]})
    songs = pd.DataFrame({"song_id": ["a", "b", "c"], "genre": ["Pop", "Pop", None]})
    caption, why = plot_semantic_tsne(video, songs, tmp_path / "tsne.png")
    assert caption is None and why.startswith("only 3 videos") and not (tmp_path / "tsne.png").exists()


@pytest.mark.parametrize("n, bucket", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (1140, "1K<n<10K"),
                                       (250_000, "100K<n<1M")])
def test_size_category(n, bucket):
    assert size_category(n) == bucket


def test_card_counts_meters():
    import pandas as pd

    from symmv.card.sections import meter_line

    line = meter_line(pd.DataFrame({"meter": [4, 3, 4, None, 2]}))
    assert "2 in 4 beats per bar" in line and "1 in 3 beats per bar" in line and "1 in 2 beats per bar" in line
    assert "`songs.meter` is empty" in meter_line(pd.DataFrame({"song_id": ["a"]}))  # a build before the column
