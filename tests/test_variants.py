"""The Table 2 model rows (models/evaluation/variants.py): every stage run's shapes and one training step, the
ablation switches doing what they say, the CMT-style rhythm rules on a synthetic motion curve, and every
row trained for a few steps on the synthetic corpus writing a well-formed piece for a video."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from models import tokens as tk
from models.evaluation import variants as VR
from models.networks.checkpoint import load_model, read_config
from models.config import ControllerConfig, ModelConfig, TrainConfig
from models.training.data import build_examples, collate, make_window, stage_tokens
from models.generation.generate import SHIPPED_CHECKPOINTS, bars_for
from models.generation.rhythm import RhythmConfig, bar_positions, cmt_rhythm
from models.generation.sample import Grammar
from model_fixtures import synthetic_tables
from models.training.train import apply_switches
from models.networks.transformers import ChordTransformer, NoteTransformer, build_model

torch.set_num_threads(1)
SEM, COL, D = 7, 5, 32


def small(run: VR.StageRun) -> ModelConfig:
    cfg = ModelConfig(stage=run.stage, d_model=D, n_head=2, n_layer=2, n_enc_layer=1, block_size=160,
                      controller=ControllerConfig(semantic_dim=SEM, color_dim=COL))
    return apply_switches(cfg, **run.switches)


@pytest.fixture(scope="module")
def examples():
    return build_examples(synthetic_tables(n_songs=3, semantic_dim=SEM, color_dim=COL))


def batch_for(examples, cfg):
    return collate([make_window(ex, b0, cfg, 4) for ex in examples[:2] for b0 in (0, 2)])


# ----------------------------------------------------------------------------------------------------
# every stage run: shapes and one training step


@pytest.mark.parametrize("folder", list(VR.RUNS))
def test_every_stage_run_has_the_shapes_and_learns_in_one_step(examples, folder):
    cfg = small(VR.RUNS[folder])
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, NoteTransformer if cfg.encoder_decoder else ChordTransformer)
    batch = batch_for(examples, cfg)
    tokens = batch["tokens"]  # (B,T,F)
    ctx = model.context(batch)
    if cfg.video_conditioned:  # memory = the frames of the modalities switched on
        frames = (batch["semantic"].shape[1] if cfg.controller.use_semantic else 0) + (
            batch["color"].shape[1] if cfg.controller.use_color else 0)
        assert ctx.memory.shape == (tokens.shape[0], frames, D)
    else:
        assert (ctx.memory is None) == (not cfg.encoder_decoder)
    h = model.decode(tokens[:, :-1], ctx)
    assert h.shape == (tokens.shape[0], tokens.shape[1] - 1, D)
    logits = model.heads(h, tokens[:, 1:, 0])
    assert {a: v.shape for a, v in logits.items()} == {a: (*h.shape[:2], n) for a, n in tk.VOCAB.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before, parts = model(batch)
    notes = {"pitch", "duration"} if cfg.stage != "chord" else set()
    assert torch.isfinite(before) and set(parts) == {"type", "barbeat", "root", "quality"} | notes
    opt.zero_grad()
    before.backward()
    opt.step()
    after, _ = model(batch)
    assert float(after.detach()) < float(before.detach())


def test_one_stream_tokens_hold_what_their_row_needs(examples):
    ex = examples[0]
    music, cond = stage_tokens(ex, "music")  # Video2music / CMT: chords and every note, no condition
    assert cond is None
    assert (music[:, 0] == tk.CHORD).sum() == len(ex.chords)
    assert (music[:, 0] == tk.NOTE).sum() == len(ex.melody) + len(ex.accompaniment)
    notes, cond = stage_tokens(ex, "notes")  # Video2chord2music: the same stream over the chords
    assert np.array_equal(notes, music)
    assert set(cond[:, 0]) == {tk.RHYTHM, tk.CHORD}


# ----------------------------------------------------------------------------------------------------
# the switches


def test_a_switched_off_modality_is_not_read(examples):
    for off in ("semantic", "color"):
        cfg = small(VR.RUNS[f"chord-no-{off}"])
        model = build_model(cfg).eval()
        assert not hasattr(model.controller, f"{off}_in") and not hasattr(model.controller, f"{off}_encoder")
        batch = batch_for(examples, cfg)
        noisy = {**batch, off: torch.randn_like(batch[off]) * 100}
        with torch.no_grad():
            assert torch.equal(model(batch)[0], model(noisy)[0])
    full = build_model(small(VR.RUNS["chord"])).eval()
    batch = batch_for(examples, full.cfg)
    with torch.no_grad():
        assert not torch.equal(full(batch)[0], full({**batch, "color": batch["color"] + 1})[0])


@pytest.mark.parametrize("timing_encoding", [True, False])
def test_without_timing_encoding_the_timing_field_is_ignored(examples, timing_encoding):
    cfg = small(VR.StageRun("x", "melody", timing_encoding=timing_encoding))
    model = build_model(cfg).eval()
    batch = batch_for(examples, cfg)
    shifted = batch["tokens"].clone()
    shifted[..., tk.F["timing"]] = (shifted[..., tk.F["timing"]] + 7) % tk.N_TIMING
    with torch.no_grad():
        same = torch.equal(model.decode(batch["tokens"], model.context(batch)),
                           model.decode(shifted, model.context(batch)))
    assert same == (not timing_encoding)
    assert (model.embed.timing is None) == (not timing_encoding)


def test_shipped_checkpoints_still_load_with_todays_behaviour():
    for stage in ("chord", "melody", "accompaniment"):
        cfg = read_config(SHIPPED_CHECKPOINTS / stage)
        assert cfg.timing_encoding and cfg.controller.use_semantic and cfg.controller.use_color
        assert load_model(SHIPPED_CHECKPOINTS / stage).embed.timing is not None


def test_registry_rows_share_stages_and_name_existing_runs():
    assert set(VR.ROWS) == {"V-MusProd", "w/o semantic", "w/o color", "w/o motion", "w/o video", "Video2music",
                            "Video2chord2music", "CMT"}
    for row in VR.ROWS.values():
        assert set(row.folders.values()) <= set(VR.RUNS) and row.pipeline in VR.PIPELINES
        assert all(VR.RUNS[f].stage == role for role, f in row.folders.items())
    # w/o semantic retrains only the chord stage; every folder is trained once
    assert VR.ROWS["w/o semantic"].folders["melody"] == VR.ROWS["V-MusProd"].folders["melody"]
    assert VR.folders_of(VR.ROWS) == list(VR.RUNS)
    assert VR.folders_of(["w/o semantic"]) == ["melody", "accompaniment", "chord-no-semantic"]


# ----------------------------------------------------------------------------------------------------
# CMT-style rhythm rules


def test_cmt_rules_put_onsets_density_and_strength_where_the_motion_peaks():
    tempo, n_bars = 120.0, 8  # 2 s bars, 16 s
    motion = np.full(16, 0.1)
    motion[9] = 1.0  # one burst of motion in second 9 (bar 4), a smaller one in second 2 (bar 1)
    motion[2] = 0.4
    plan = cmt_rhythm(motion, [5.0], 16.0, tempo, n_bars, RhythmConfig(density_range=(2, 10)))
    s16 = 60.0 / tempo / 4
    required = np.flatnonzero(plan.required.ravel())
    assert list(required) == [round(2.5 / s16), round(5.0 / s16), round(9.5 / s16)]  # peaks (mid-second), cut
    # density follows motion speed: the burst's bar has the most onsets, calm bars the fewest
    assert int(np.argmax(plan.onsets_per_bar)) == 4 and plan.onsets_per_bar[4] == 10
    assert plan.onsets_per_bar[7] == 2 and plan.onsets_per_bar[1] > plan.onsets_per_bar[7]
    assert (plan.onsets_per_bar >= plan.required.sum(1)).all()
    # strength follows saliency: the loudest 16th is the burst's
    assert int(np.argmax(plan.velocity)) // 16 == 4 and plan.velocity.max() == 105
    assert plan.velocity.min() >= 50


def test_cmt_rules_without_motion_keep_the_cuts_and_a_middle_density():
    plan = cmt_rhythm(None, [1.0], 4.0, 120.0, 2, RhythmConfig(density_range=(2, 10)))
    assert plan.required.sum() == 1 and plan.required[0, 8]
    assert list(plan.onsets_per_bar) == [6, 6]


def test_bar_positions_keep_every_required_onset_and_the_exact_density():
    rng = np.random.default_rng(0)
    plan = cmt_rhythm(rng.random(12), [0.3, 3.1, 7.9], 12.0, 100.0, bars_for(12.0, 100.0))
    for bar in range(len(plan.onsets_per_bar)):
        for _ in range(20):  # random walks through the bar
            pos, onsets, taken = -1, 0, []
            while True:
                positions, may_end = bar_positions(plan, bar, pos, onsets)
                choices = list(np.flatnonzero(positions)) + (["end"] if may_end else [])
                assert choices, (bar, pos, onsets)
                pick = choices[rng.integers(len(choices))]
                if pick == "end":
                    break
                pos, onsets = int(pick), onsets + 1
                taken.append(pos)
            assert set(np.flatnonzero(plan.required[bar])) <= set(taken)
            assert len(taken) == plan.onsets_per_bar[bar]


def test_the_grammar_follows_the_plan_token_by_token():
    plan = cmt_rhythm(np.array([0.1, 0.9, 0.1, 0.1]), [], 4.0, 120.0, 2)
    g = Grammar("music", 2, 120.0, rhythm=plan)
    g.advance(g.bos())
    g.advance(g.forced())  # Bar 0
    assert g.allowed_types()[tk.RHYTHM] and not g.allowed_types()[tk.EOS]
    assert not g.allowed("barbeat", {})[tk.BAR]  # bar 0 cannot end before its onsets
    required, target = int(np.flatnonzero(plan.required[0])[0]), int(plan.onsets_per_bar[0])
    assert (required, target) == (12, 10)
    # not past the visual beat, nor so late that the bar's 10 onsets no longer fit
    assert np.flatnonzero(g.allowed("barbeat", {})[2:]).tolist() == list(range(16 - target + 1))
    for _ in range(target - 1):  # take the free positions as early as possible: the beat is still ahead
        g.advance(g.token(tk.RHYTHM, barbeat=2 + g.pos + 1))
        g.advance(g.token(tk.NOTE, pitch=61, duration=1))
    assert np.flatnonzero(g.allowed("barbeat", {})[2:]).tolist() == [required]  # the last onset: on the beat


# ----------------------------------------------------------------------------------------------------
# every row: trained a few steps, then one piece for a video


@pytest.fixture(scope="module")
def trained_rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    tables = synthetic_tables(n_songs=6, semantic_dim=SEM, color_dim=COL)
    overrides = dict(window_bars=4, windows_per_song=1, batch_size=4, max_val_windows=2, warmup_steps=1)
    summaries = VR.train_all_variants(None, tmp, "tiny", steps=2, tables=tables, train_overrides=overrides,
                                      progress=False)
    return tmp, summaries


def test_train_all_variants_trains_each_folder_once_with_the_same_budget(trained_rows):
    ckpt, summaries = trained_rows
    assert list(summaries) == list(VR.RUNS)
    assert {s["steps"] for s in summaries.values()} == {2}
    for folder, run in VR.RUNS.items():
        cfg = read_config(ckpt / folder)
        assert (cfg.stage, cfg.video, cfg.controller.use_semantic, cfg.controller.use_color, cfg.timing_encoding) == (
            run.stage, run.video, run.semantic, run.color, run.timing_encoding)
    assert (ckpt / "variants.json").is_file()


def synthetic_video(duration_s=9.0, fps=2.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(duration_s * fps)
    motion = np.full(int(duration_s), 0.05)
    motion[6] = 0.8
    return {"semantic": rng.normal(size=(n, SEM)).astype(np.float32), "color": rng.random((n, COL)).astype(np.float32),
            "fps": fps, "duration_s": duration_s, "video_tempo_bpm": 96.0, "motion": motion,
            "shot_boundaries_s": [2.5]}


@pytest.mark.parametrize("name", list(VR.ROWS))
def test_every_row_writes_a_well_formed_piece_for_a_video(trained_rows, name):
    ckpt, _ = trained_rows
    row, video = VR.ROWS[name], synthetic_video()
    notes = row.generate(video, ckpt, seed=1, max_tokens=3000)
    assert notes, name
    ranges = [read_config(ckpt / f).pitch_range for f in row.folders.values() if VR.RUNS[f].stage != "chord"]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    for n in notes:
        assert lo <= n.pitch <= hi and n.track in ("melody", "accompaniment")
        assert 0.0 <= n.onset_s < n.offset_s <= video["duration_s"] + 1e-9
        assert 0 <= n.position < tk.STEPS_PER_BAR and n.duration_16th >= 1 and 1 <= n.velocity <= 127
    tempo = row.fixed_tempo_bpm or video["video_tempo_bpm"]
    bar_s = 240.0 / tempo
    assert all(math.isclose(n.onset_s, (n.bar * 16 + n.position) * bar_s / 16) for n in notes)
    if name == "w/o motion":
        assert tempo == 110.0  # the fixed tempo, not the video's 96 BPM


def test_cmt_row_plays_on_the_cut_and_densest_where_the_video_moves(trained_rows):
    ckpt, _ = trained_rows
    video = synthetic_video()
    notes = VR.ROWS["CMT"].generate(video, ckpt, seed=3, max_tokens=3000)
    s16 = 60.0 / 96.0 / 4
    plan = cmt_rhythm(video["motion"], video["shot_boundaries_s"], 9.0, 96.0, bars_for(9.0, 96.0))
    onsets = {(n.bar, n.position) for n in notes}
    for t in (2.5, 6.5):  # the cut and the motion peak (the middle of second 6) have a note onset
        assert divmod(round(t / s16), 16) in onsets, t
    per_bar = pd.Series([b for b, _ in onsets]).value_counts()
    peak_bar = int(6.5 / (16 * s16))
    assert per_bar[peak_bar] == plan.onsets_per_bar[peak_bar] == plan.onsets_per_bar.max() == 10
    whole_bars = int(9.0 // (16 * s16))  # the last bar runs past the video and is cut
    assert all(per_bar.get(b, 0) == plan.onsets_per_bar[b] for b in range(whole_bars))
    assert per_bar[peak_bar] > per_bar.min()
    # strength: the loudest notes are the burst's
    assert max(notes, key=lambda n: n.velocity).bar == peak_bar


# ----------------------------------------------------------------------------------------------------
# Table 2 from the registry: models.evaluation.evaluate takes the trained rows


@pytest.mark.slow  # ~45 s on the shared 2-core box: VMCP training and fluidsynth renders of 3 rows
def test_evaluate_split_reports_the_registry_rows(tmp_path):
    from test_evaluate import HAVE_FLUIDSYNTH, VMCP_TEST, write_dataset

    from models.evaluation import evaluate as E

    if not HAVE_FLUIDSYNTH:
        pytest.skip("fluidsynth / TimGM6mb soundfont not installed (VMCP renders the music)")
    root = write_dataset(tmp_path / "data")  # 3 test videos, cuts at 2 s and 4 s
    rows = ("w/o semantic", "Video2music", "CMT")
    VR.train_all_variants(root, tmp_path / "ckpt", "tiny", steps=2, rows=rows, progress=False,
                          train_overrides=dict(window_bars=4, windows_per_song=1, max_val_windows=2, warmup_steps=1))
    result = E.evaluate_split(root, {}, tmp_path / "report", vmcp_cfg=VMCP_TEST, split="test", n_boot=20,
                              fixed_tempo_ablation=False, variants_dir=tmp_path / "ckpt", rows=VR.ROWS)
    assert set(result["variants"]) == set(rows)  # rows not trained there are left out ...
    assert {"w/o color", "Video2chord2music", "w/o video"} <= set(result["not_run"])
    assert not set(rows) & set(result["not_run"])  # ... and reported as not run, the trained ones not
    for name in rows:
        scores = result["variants"][name]
        assert scores["quality"]["n_pieces_quality"] == 3 and scores["vmcp"]["M"] == 3
    assert result["variants"]["Video2music"]["chord_video"] and not result["variants"]["CMT"]["chord_video"]
    # CMT plays a note onset on the 16th nearest each cut: at most half a 16th (<= 0.094 s at 80 BPM) away
    assert result["variants"]["CMT"]["beat_alignment"]["onsets"]["score"] > math.exp(-0.094 ** 2 / (2 * 0.1 ** 2))
    assert "CMT: " in result["provenance"]["checkpoints"]


def test_train_cli_flags_reach_the_checkpoint(tmp_path):
    from model_fixtures import write_synthetic_dataset
    from models.training.train import main

    root = write_synthetic_dataset(tmp_path / "data", n_songs=6, semantic_dim=SEM, color_dim=COL)
    common = ["--size", "tiny", "--data", str(root), "--out", str(tmp_path / "ckpt"), "--max-steps", "1"]
    main(["--stage", "chord", "--no-color", "--folder", "chord-no-color", *common])
    main(["--stage", "music", "--unconditional", "--no-timing-encoding", *common])
    cfg = read_config(tmp_path / "ckpt" / "chord-no-color")
    assert cfg.stage == "chord" and cfg.video and cfg.controller.use_semantic and not cfg.controller.use_color
    cfg = read_config(tmp_path / "ckpt" / "music")
    assert cfg.stage == "music" and not cfg.video and not cfg.timing_encoding
    with pytest.raises(SystemExit):  # one folder cannot hold three stages
        main(["--stage", "all", "--folder", "x", *common])


@pytest.mark.parametrize("folder", ["music", "notes"])  # the two new stage kinds
def test_the_new_stage_kinds_learn_the_synthetic_corpus(tmp_path, folder):
    from models.training.train import train_stage

    tables = synthetic_tables(n_songs=24, semantic_dim=SEM, color_dim=COL)
    run = VR.RUNS[folder]
    train = TrainConfig(epochs=6, batch_size=8, lr=3e-3, warmup_steps=3, window_bars=4, windows_per_song=8)
    summary = train_stage(run.stage, tmp_path, tables=tables, model_cfg=small(run), train_cfg=train, progress=False,
                          folder=folder)
    # val loss clearly below the unigram baseline on the same validation windows (as test_train's melody)
    assert summary["best_val"] < 0.7 * summary["unigram_val"], summary
    assert (tmp_path / folder / "model.safetensors").is_file()


def test_folders_train_in_parallel_workers_as_they_do_one_by_one(tmp_path):
    """--jobs 2: two worker processes, each loading the data itself, give the same checkpoints as one
    process (training is seeded), and variants.json lists every folder."""
    from model_fixtures import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", n_songs=4, semantic_dim=SEM, color_dim=COL)
    rows = ("w/o color", "Video2music")  # melody, accompaniment, chord-no-color, music
    overrides = dict(window_bars=4, windows_per_song=1, batch_size=4, max_val_windows=2, warmup_steps=1,
                     num_threads=1)
    one = VR.train_all_variants(root, tmp_path / "one", "tiny", steps=2, rows=rows, progress=False,
                                train_overrides=overrides)
    two = VR.train_all_variants(root, tmp_path / "two", "tiny", steps=2, rows=rows, progress=False,
                                train_overrides=overrides, jobs=2)
    assert list(two) == list(one) == ["melody", "accompaniment", "chord-no-color", "music"]
    for folder in one:
        assert two[folder]["best_val"] == pytest.approx(one[folder]["best_val"], rel=1e-5)
    assert set(json.loads((tmp_path / "two" / "variants.json").read_text())["summaries"]) == set(one)
