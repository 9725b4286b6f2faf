import json

import numpy as np
import pytest
import torch

from models.training import data as D
from models.networks.checkpoint import load_model, load_optimizer, save_model, save_optimizer
from models.config import ControllerConfig, ModelConfig, TrainConfig
from model_fixtures import synthetic_tables, write_synthetic_dataset
from models.training.train import main, train_stage
from models.networks.transformers import build_model

torch.set_num_threads(1)


def small(stage, **kw):
    return ModelConfig(stage=stage, d_model=32, n_head=2, n_layer=2, n_enc_layer=1, block_size=128, **kw)


def fast_train(**kw):
    return TrainConfig(**{**dict(epochs=2, batch_size=8, lr=3e-3, warmup_steps=3, window_bars=4,
                                 windows_per_song=2, patience=5), **kw})


@pytest.fixture(scope="module")
def tables():
    return synthetic_tables(n_songs=24, semantic_dim=6, color_dim=4)


def fixed_batch(tables, model_cfg):
    examples = D.build_examples(tables, "train")
    return D.collate(D.windows(examples, model_cfg, fast_train(), np.random.default_rng(0))[:8])


@pytest.mark.parametrize("stage", ["chord", "melody", "accompaniment"])
def test_one_step_reduces_loss_on_a_fixed_batch(tables, stage):
    cfg = small(stage, controller=ControllerConfig(semantic_dim=6, color_dim=4))
    torch.manual_seed(0)
    model = build_model(cfg)
    batch = fixed_batch(tables, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before, _ = model(batch)
    opt.zero_grad()
    before.backward()
    opt.step()
    after, _ = model(batch)
    assert float(after.detach()) < float(before.detach())


def test_checkpoint_round_trip_gives_identical_outputs(tables, tmp_path):
    cfg = small("melody")
    model = build_model(cfg).eval()
    batch = fixed_batch(tables, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(batch)[0].backward()
    opt.step()
    save_model(model, tmp_path, "model")
    save_optimizer(opt, tmp_path)
    loaded = load_model(tmp_path, "model")
    assert loaded.cfg == cfg
    with torch.no_grad():
        assert torch.equal(model(batch)[0], loaded(batch)[0])
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    load_optimizer(opt2, tmp_path)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys() and all(torch.equal(s1[i]["exp_avg_sq"], s2[i]["exp_avg_sq"]) for i in s1)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))


def test_tiny_melody_model_learns_and_resumes(tables, tmp_path):
    summary = train_stage("melody", tmp_path, tables=tables, model_cfg=small("melody"),
                          train_cfg=fast_train(epochs=6, windows_per_song=8), progress=False)
    out = tmp_path / "melody"
    assert summary["epochs"] == 6 and len(summary["history"]) == 6
    # val loss clearly below the unigram baseline on the same validation windows
    assert summary["best_val"] < 0.7 * summary["unigram_val"], summary
    assert {"model.safetensors", "last.safetensors", "optimizer.safetensors", "config.json", "loss.png",
            "state.json"} <= {p.name for p in out.iterdir()}
    # resuming with more epochs continues from epoch 6 instead of starting over
    again = train_stage("melody", tmp_path, tables=tables, model_cfg=small("melody"),
                        train_cfg=fast_train(epochs=7, windows_per_song=8), progress=False)
    assert again["epochs"] == 7 and [h["epoch"] for h in again["history"]] == list(range(1, 8))
    assert again["history"][:6] == summary["history"]


def test_tiny_chord_model_learns_from_video(tables, tmp_path):
    summary = train_stage("chord", tmp_path, tables=tables, model_cfg=small("chord"),
                          train_cfg=fast_train(epochs=3, windows_per_song=8), progress=False)
    assert summary["best_val"] < 0.75 * summary["unigram_val"], summary
    assert json.loads((tmp_path / "chord/config.json").read_text())["model"]["controller"]["semantic_dim"] == 6


def test_early_stopping(tables, tmp_path):
    summary = train_stage("melody", tmp_path, tables=tables, model_cfg=small("melody"),
                          train_cfg=fast_train(epochs=50, lr=0.0, warmup_steps=1, patience=2), progress=False)
    assert summary["stopped_early"] and summary["epochs"] == 3  # epoch 1 sets best, 2 and 3 do not improve


def test_cli_trains_from_parquet(tmp_path, capsys):
    root = write_synthetic_dataset(tmp_path / "data", n_songs=6, semantic_dim=6, color_dim=4)
    main(["--stage", "accompaniment", "--size", "tiny", "--data", str(root), "--out", str(tmp_path / "ckpt"),
          "--epochs", "1"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and (tmp_path / "ckpt/accompaniment/model.safetensors").exists()



def test_unconditional_chord_stage_trains_without_video(tables, tmp_path):
    no_video = {**tables, "video_features": tables["video_features"].iloc[:0]}  # sec. 6.5: no video at all
    summary = train_stage("chord", tmp_path, tables=no_video, model_cfg=small("chord", video=False),
                          train_cfg=fast_train(epochs=1), progress=False)
    assert summary["epochs"] == 1 and np.isfinite(summary["best_val"])
    assert load_model(tmp_path / "chord").controller is None
