import json

import numpy as np
import pytest

from models.evaluation.metrics import corpus_metrics, quality_metrics
from models.evaluation.report import PAPER_TABLE2, write_table2
from models.evaluation.vmcp import rank_metrics
from symmv.core.records import Note

PROVENANCE = {"data": "demo (synthetic fixture)", "semantic_encoder": "clip-vit-b32 test", "audio_encoder": "cnn 1",
              "seed": 0}


def fixture_rows():
    # VMCP figures from known ranks, quality figures from a known piece: the report must carry them as is.
    vmcp = rank_metrics(np.array([1, 3, 8, 25, 60], float), m_used=70, n_boot=50)
    vmcp.update(M=70, n_pieces_vmcp=5)
    notes = [Note(0.0, 0.5, 60, 80), Note(0.5, 1.0, 64, 80), Note(1.0, 1.5, 67, 80), Note(3.0, 3.5, 72, 80)]
    quality = corpus_metrics([quality_metrics(notes, tempo_bpm=120)])
    few = rank_metrics(np.array([1.0, 2.0]), m_used=2, n_boot=20)
    few.update(M=2, n_pieces_vmcp=2, note="only 2 videos: M = 2 instead of 70")
    return {"V-MusProd": {**vmcp, **quality}, "Video2music": {**few, **quality}}, quality


def test_write_table2_markdown_json_png(tmp_path):
    rows, quality = fixture_rows()
    real = PAPER_TABLE2["Real (SymMV)"]
    paths = write_table2(rows, real, tmp_path, PROVENANCE)
    report = json.loads(paths["json"].read_text())
    assert report["columns"] == ["P@5", "P@10", "P@20", "AR", "SC", "PE", "PCE", "EBR", "IOI"]
    row = report["rows"]["V-MusProd"]
    assert row["P@5"]["value"] == pytest.approx(40.0)  # ranks 1 and 3 of 5 are in the top 5
    assert row["AR"]["value"] == pytest.approx(19.4) and row["AR"]["chance"] == 35.5
    assert row["PE"]["value"] == pytest.approx(2.0)  # four distinct pitches once each
    assert row["PE"]["abs_diff_to_real"] == pytest.approx(abs(2.0 - 4.197))
    assert report["provenance"]["data"].startswith("demo")

    md = paths["markdown"].read_text()
    assert "| Method | P@5 | P@10 | P@20 | AR | SC | PE | PCE | EBR | IOI |" in md
    assert "demo (synthetic fixture)" in md and "cnn 1" in md and "seed: 0" in md
    assert "| Chance (M = 70) | 7.1 | 14.3 | 28.6 | 35.5 |" in md
    assert "| Chance (M = 2) |" in md and "M = 2 instead of 70" in md
    assert "| Real | - | - | - | - | 0.986 | 4.197 |" in md
    assert "(2.197)" in md  # |PE - Real|
    assert "V-MusProd: VMCP over 5 pieces, quality over 1 pieces" in md
    assert "not ours" in md  # the paper's table is labelled as theirs

    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_rows_sharing_a_note_are_named_together(tmp_path):
    rows, _ = fixture_rows()
    rows["w/o color"] = dict(rows["Video2music"])
    md = write_table2(rows, PAPER_TABLE2["Real (SymMV)"], tmp_path, PROVENANCE)["markdown"].read_text()
    assert md.count("M = 2 instead of 70") == 1 and "- Video2music, w/o color: only 2 videos" in md
    assert "V-MusProd: VMCP over 5 pieces, quality over 1 pieces; Video2music, w/o color: VMCP over 2 pieces" in md


def test_provenance_is_required(tmp_path):
    rows, _ = fixture_rows()
    with pytest.raises(ValueError, match="seed"):
        write_table2(rows, PAPER_TABLE2["Real (SymMV)"], tmp_path, {"data": "demo", "semantic_encoder": "x",
                                                                    "audio_encoder": "cnn"})
