"""Evaluation (models/evaluation/evaluate.py): pure parts on hand-made records, then one end-to-end run over real
Parquet with tiny checkpoints trained for one epoch, real fluidsynth renders and a tiny VMCP."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.evaluation import evaluate as E
from models.evaluation import variants as VR
from models.evaluation.audio import notes_from_midi
from models.config import ModelConfig, TrainConfig
from models.evaluation.metrics import quality_metrics
from model_fixtures import synthetic_tables
from models.evaluation.vmcp import VMCPConfig
from symmv.core.records import Beat, Note
from symmv.core.shards import commit_shards, write_shard

HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None and Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists()


# ----------------------------------------------------------------------------------------------------
# fixture: the synthetic corpus as a dataset with train / val / test splits


def write_dataset(root: Path, n_songs: int = 10, demo: bool = True) -> Path:
    tables = synthetic_tables(n_songs=n_songs, semantic_dim=6, color_dim=4, fps=2.0)
    songs = tables["songs"]
    # songs 0-1 are val (synthetic_tables); 2-4 test, the 5 others train
    songs.loc[2:4, "split"] = "test"
    songs["cover_url"] = [("demo://cover/" if demo else "https://youtube.com/watch?v=") + s for s in songs["song_id"]]
    video = tables["video_features"]
    video["duration_s"] = video["n_frames"] / video["fps"]
    video["shot_boundaries_s"] = [[2.0, 4.0]] * len(video)  # two cuts per video
    video["motion_mean"] = np.linspace(0.01, 0.05, len(video))
    # a 4/4 beat grid from t = 0 at each song's tempo, as the beat tracker would give it
    n_bars = tables["notes"].groupby("song_id")["bar"].max() + 1
    tables["beats"] = pd.DataFrame([dict(song_id=sid, time_s=k * 60.0 / tempo, bar=k // 4, beat_in_bar=k % 4 + 1)
                                    for sid, tempo in zip(songs["song_id"], songs["tempo_bpm"])
                                    for k in range(4 * n_bars[sid])])
    split_of = dict(zip(songs["song_id"], songs["split"]))
    for name, df in tables.items():
        for split in ("train", "val", "test"):
            part = df[df["song_id"].map(split_of) == split]
            rows = [{k: v for k, v in r.items() if k != "split"} for r in part.to_dict("records")]
            write_shard(root, name, split, rows, part="synthetic")
    commit_shards(root, generation="synthetic")
    return root


# ----------------------------------------------------------------------------------------------------
# pure parts


def test_generated_downbeats_are_bar_starts_inside_the_video():
    assert E.generated_downbeats_s(120.0, 5.0) == [0.0, 2.0, 4.0]  # 2 s bars of 4/4 at 120 BPM
    assert E.generated_downbeats_s(90.0, 2.6) == pytest.approx([0.0])  # one 2.67 s bar covers 2.6 s


def test_beat_alignment_is_one_on_events_and_chance_is_lower():
    on = E.beat_alignment([2.0, 4.0], [0.0, 2.0, 4.0, 6.0], duration_s=8.0, sigma_s=0.1, seed=0)
    assert on["score"] == pytest.approx(1.0) and on["n_cuts"] == 2
    assert 0.0 < on["chance"] < 0.3  # 4 events, sigma 0.1 s in 8 s: random cuts rarely land on one
    off = E.beat_alignment([1.0, 3.0], [0.0, 2.0, 4.0, 6.0], duration_s=8.0, sigma_s=0.1, seed=0)
    assert off["score"] == pytest.approx(math.exp(-1 / (2 * 0.01)))  # 1 s away from every event
    none = E.beat_alignment([], [0.0], duration_s=8.0, sigma_s=0.1, seed=0)
    assert math.isnan(none["score"]) and none["n_cuts"] == 0
    mean = E.mean_alignment([on, none, {"score": 0.5, "chance": 0.1, "n_cuts": 1}])
    assert mean["n_videos"] == 2 and mean["score"] == pytest.approx(0.75)


def test_ground_truth_prefers_the_skyline_tracks_over_the_unsplit_piano():
    rows = pd.DataFrame([
        dict(track="piano", onset_s=0.0, offset_s=0.5, pitch=60, velocity=80, bar=0, position=0, duration_16th=2),
        dict(track="melody", onset_s=0.5, offset_s=1.0, pitch=72, velocity=80, bar=0, position=2, duration_16th=2),
        dict(track="accompaniment", onset_s=0.0, offset_s=1.0, pitch=48, velocity=80, bar=None, position=None,
             duration_16th=None)])
    notes = E.ground_truth_notes(rows)
    assert [n.pitch for n in notes] == [48, 72] and notes[0].bar is None and notes[1].bar == 0
    assert [n.pitch for n in E.ground_truth_notes(rows.iloc[:1])] == [60]  # unsplit songs keep their piano


def test_rows_not_run_lists_the_registry_rows_not_produced():
    ran = {"V-MusProd": {"chord_video": True, "row": None}}
    missing = E.rows_not_run(ran)
    assert set(missing) == set(VR.ROWS) - {"V-MusProd"}
    assert "fixed-tempo" in missing["w/o motion"] and "--unconditional" in missing["w/o video"]
    ran["w/o video (unconditional)"] = {"chord_video": False, "row": None}
    assert "w/o video" not in E.rows_not_run(ran)  # the unconditional checkpoint given stands for the row
    # CMT's model is unconditional too, but it is not the unconditional chord stage
    cmt = {"CMT": {"chord_video": False, "row": "CMT"}}
    assert "CMT" not in E.rows_not_run(cmt) and "w/o video" in E.rows_not_run(cmt)


def test_row_descriptions_name_folders_budget_and_tempo(tmp_path):
    (tmp_path / "variants.json").write_text(json.dumps({"summaries": {
        "music-unconditional": {"steps": 30, "best_val": 1.234, "unigram_val": 4.5},
        "melody-no-timing": {"steps": 30, "best_val": 2.0, "unigram_val": 3.0},
        "chord": {"steps": 30, "best_val": 7.5, "unigram_val": 6.95}}}))
    rows = [E.Variant(name, str(tmp_path), VR.ROWS[name].fixed_tempo_bpm, row=name) for name in ("CMT", "w/o motion")]
    about = E.row_descriptions(rows)
    assert about["CMT"].startswith(VR.ROWS["CMT"].about)
    assert f"one-stream pipeline over {tmp_path}/ music-unconditional (30 steps, val 1.23 vs unigram 4.50)" \
        in about["CMT"]
    assert "tempo from the video's motion; rhythm: RhythmConfig" in about["CMT"]
    # w/o motion: a folder without a summary is named bare, and the fixed tempo is stated
    assert f"{tmp_path}/ chord (30 steps, val 7.50 vs unigram 6.95), melody-no-timing (30 steps, val 2.00 vs unigram " \
        "3.00), accompaniment-no-timing;" in about["w/o motion"]
    assert about["w/o motion"].endswith("tempo fixed at 110 BPM")
    # the chord folder learned less than token frequencies; a folder without a summary is not counted
    assert E.above_unigram(rows) == {"above": 1, "of": 3}


def test_unknown_setting_is_refused():
    assert E.eval_config(split="val", m=10).m == 10
    with pytest.raises(TypeError, match="unknown evaluation settings"):
        E.eval_config(splitt="val")


def test_load_eval_songs_reads_the_split_and_its_tempi(tmp_path):
    root = write_dataset(tmp_path / "data", demo=False)
    songs = E.load_eval_songs(root, "test")
    truth = synthetic_tables(n_songs=10, semantic_dim=6, color_dim=4, fps=2.0)
    assert [s.song_id for s in songs] == ["syn002", "syn003", "syn004"]
    s = songs[0]
    expected = truth["notes"][truth["notes"]["song_id"] == "syn002"]
    assert len(s.notes) == len(expected) and s.shot_boundaries_s == [2.0, 4.0]
    assert s.video_tempo_bpm == truth["songs"].set_index("song_id").loc["syn002", "video_tempo_bpm"]
    assert E.generation_features(s)["semantic"].shape == (s.video["n_frames"], 6)
    assert E.generation_features(s, fixed_tempo_bpm=100.0)["video_tempo_bpm"] == 100.0
    assert E.dataset_label(root, "test") == "real: data (test split)"
    assert [s.song_id for s in E.load_eval_songs(root, "val,test")] == [f"syn00{i}" for i in range(5)]


def test_score_pieces_matches_quality_metrics_and_aligns_cuts():
    notes = [Note(0.0, 0.5, 60, 80, "melody", 0, 0, 4), Note(2.0, 2.5, 64, 80, "melody", 1, 0, 4),
             Note(4.0, 4.5, 67, 80, "melody", 2, 0, 4)]
    song = E.EvalSong("s", {"fps": 2.0, "n_frames": 12, "duration_s": 6.0, "shot_boundaries_s": [2.0, 4.0]}, notes,
                      beats=[Beat(0.5 * i, i // 4, i % 4 + 1) for i in range(12)], tempo_bpm=120.0)
    out = E.score_pieces([song], [notes], [120.0], [[0.0, 2.0, 4.0]], E.EvalConfig())
    piece = out["per_piece"][0]
    assert {k: piece[k] for k in ("SC", "PE", "PCE", "EBR", "IOI")} == quality_metrics(notes, tempo_bpm=120.0)
    assert out["quality"]["SC"] == 1.0 and out["quality"]["n_pieces_quality"] == 1
    assert out["beat_alignment"]["downbeats"]["score"] == pytest.approx(1.0)
    assert out["beat_alignment"]["onsets"]["score"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# end to end: Parquet -> 1-epoch checkpoints -> generation -> VMCP -> report


def small(stage, **kw):
    return ModelConfig(stage=stage, d_model=32, n_head=2, n_layer=1, n_enc_layer=1, block_size=128, **kw)


ONE_EPOCH = TrainConfig(epochs=1, batch_size=8, lr=3e-3, warmup_steps=2, window_bars=4, windows_per_song=1)
VMCP_TEST = VMCPConfig(segment_s=2.0, max_segments=4, audio_dim=8, cnn_channels=(4, 8), d_model=16, n_heads=2,
                       n_layers=1, embed_dim=8, dropout=0.0, batch_size=4, steps=5, lr=1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from models.training.train import train_stage

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on the shared 2-core machine oversubscribe
    tmp = tmp_path_factory.mktemp("eval")
    root = write_dataset(tmp / "data")
    ckpt, uncond = tmp / "ckpt", tmp / "ckpt-unconditional"
    for stage in ("chord", "melody", "accompaniment"):
        train_stage(stage, ckpt, data_root=root, model_cfg=small(stage), train_cfg=ONE_EPOCH, progress=False)
    # sec. 6.5: the chord stage without video; melody / accompaniment are shared
    train_stage("chord", uncond, data_root=root, model_cfg=small("chord", video=False), train_cfg=ONE_EPOCH,
                progress=False)
    for stage in ("melody", "accompaniment"):
        shutil.copytree(ckpt / stage, uncond / stage)
    yield tmp, root, {"V-MusProd": str(ckpt), "w/o video (unconditional)": str(uncond)}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def report(trained):
    if not HAVE_FLUIDSYNTH:
        pytest.skip("fluidsynth / TimGM6mb soundfont not installed (VMCP renders the music)")
    tmp, root, ckpts = trained
    out = tmp / "report"
    # the fixed-tempo row is left to the (slow) flow test: one variant fewer to render here
    result = E.evaluate_split(root, ckpts, out, vmcp_cfg=VMCP_TEST, split="test", seed=0, m=70, n_boot=50,
                              fixed_tempo_ablation=False)
    return root, out, result, ckpts


def test_evaluate_split_writes_a_table2_report(report):
    root, out, result, ckpts = report
    for name in ("table2.md", "table2.json", "table2.png", "evaluation.json", "README.md", "vmcp/model.safetensors"):
        assert (out / name).is_file(), name
    table = json.loads((out / "table2.json").read_text())
    rows = table["rows"]
    assert {"V-MusProd", "w/o video (unconditional)"} == set(rows)
    # Real = the test split's ground truth; the synthetic songs are diatonic, so SC is exactly 1
    songs = E.load_eval_songs(root, "test")
    assert table["real"]["SC"] == 1.0
    assert table["real"]["PE"] == pytest.approx(np.mean([quality_metrics(s.notes)["PE"] for s in songs]))
    for name, row in rows.items():
        for col in ("SC", "PE", "PCE", "EBR", "IOI", "P@5", "AR"):
            assert math.isfinite(row[col]["value"]), (name, col)
        assert row["M"] == 3 and row["n_pieces_vmcp"] == 3 and row["n_pieces_quality"] == 3
        assert 1.0 <= row["AR"]["value"] <= 3.0 and row["AR"]["chance"] == 2.0
    assert result["M"] == 3 and result["provenance"]["M"] == 3
    prov = table["provenance"]
    assert prov["data"] == "demo: data (test split)" and prov["semantic_encoder"] == "synthetic 0"
    assert prov["seed"] == 0 and prov["audio_encoder"].startswith("cnn") and "ckpt-unconditional" in prov["checkpoints"]
    md = (out / "table2.md").read_text()
    assert "Chance (M = 3)" in md and "| Real |" in md
    readme = (out / "README.md").read_text()
    assert "arbitrary" in readme and "M = 3" in readme and "- CMT:" in readme
    assert "CMT" in result["not_run"] and "w/o video" not in result["not_run"]
    # the report says what each row is: here two checkpoints given by name, both at the video's tempo
    assert f"- V-MusProd: checkpoint given: {ckpts['V-MusProd']} (chord stage video-conditioned" in readme
    assert f"- w/o video (unconditional): checkpoint given: {ckpts['w/o video (unconditional)']} (chord stage " \
           "unconditional" in readme and "tempo from the video's motion" in readme

    check = result["real"]["shuffled_check"]
    assert check["real"]["M"] == check["shuffled"]["M"] == 3
    for name, scores in [("Real", result["real"]), *result["variants"].items()]:
        for kind in ("downbeats", "onsets"):
            ba = scores["beat_alignment"][kind]
            assert ba["n_videos"] == 3 and 0.0 <= ba["score"] <= 1.0 and 0.0 < ba["chance"] < 1.0, (name, kind)
    # V-MusProd ran at each video's motion tempo
    assert [p["tempo_bpm"] for p in result["variants"]["V-MusProd"]["per_piece"]] == [s.video_tempo_bpm for s in songs]
    # the generated pieces are on disk as MIDI, note for note
    for piece in result["variants"]["V-MusProd"]["per_piece"]:
        midi = out / "midi" / "v-musprod" / f"{piece['song_id']}.mid"
        assert len(notes_from_midi(midi)) == piece["n_notes"]


@pytest.mark.slow  # Prefect start-up alone: 11-35 s on the shared 2-core box
def test_prefect_flow_loads_the_saved_vmcp_and_reproduces_the_figures(report, tmp_path):
    from flows.evaluate import evaluate
    from models.config import EvalConfig

    root, out, result, ckpts = report
    flow_out = evaluate(EvalConfig(data=root, ckpt=ckpts["V-MusProd"], split="test", out=tmp_path / "flow", seed=0, m=70,
                                   vmcp_ckpt=str(out / "vmcp"), fixed_tempo_ablation=True, threads=1))
    again = json.loads((tmp_path / "flow" / "evaluation.json").read_text())
    assert again["vmcp_info"]["source"].startswith("loaded from")
    assert flow_out["M"] == 3 and list(flow_out["rows"]) == ["V-MusProd", "fixed tempo 110 BPM"]
    assert "w/o video" in flow_out["not_run"]
    # same seed, same checkpoints, same VMCP weights: the same pieces and the same ranks
    assert again["variants"]["V-MusProd"]["vmcp"]["ranks"] == result["variants"]["V-MusProd"]["vmcp"]["ranks"]
    assert flow_out["rows"]["V-MusProd"]["PE"] == pytest.approx(result["variants"]["V-MusProd"]["quality"]["PE"])
    # the fixed-tempo row ran the same checkpoint at 110 BPM
    assert {p["tempo_bpm"] for p in again["variants"]["fixed tempo 110 BPM"]["per_piece"]} == {110.0}
    assert "tempo fixed" not in again["provenance"]["checkpoints"] and len(list((tmp_path / "flow/midi").iterdir())) == 2


def test_vmcp_videos_accepts_a_vmcp_that_reads_colour_and_motion():
    from models.evaluation import vmcp as V
    from models.evaluation.evaluate import EvalSong, vmcp_videos

    video = {"semantic": [[1.0, 0.0, 0.0]] * 8, "color": [[0.5, 0.5]] * 8, "motion": [0.1] * 4, "fps": 2.0,
             "n_frames": 8, "duration_s": 4.0}
    songs = [EvalSong(song_id=f"s{i}", video=video, notes=[]) for i in range(2)]
    cfg = V.VMCPConfig(video_inputs=("semantic", "color", "motion"), video_dim=3 + 2 + 8, cnn_channels=(4, 8),
                       audio_dim=8, d_model=16, n_heads=2, n_layers=1, embed_dim=8)
    assert len(vmcp_videos(V.VMCP(cfg), songs)) == 2
    with pytest.raises(ValueError, match="retrain"):
        vmcp_videos(V.VMCP(V.VMCPConfig(video_dim=7, cnn_channels=(4, 8), audio_dim=8, d_model=16, n_heads=2,
                                         n_layers=1, embed_dim=8)), songs)
