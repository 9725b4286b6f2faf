"""The CPU training recipe's pieces: null-video chord training, per-attribute validation, data-derived
pitch ranges, beat-grid chords, accompaniment under the melody, DDP under torchrun, the music benchmark's
measures."""
import json
from dataclasses import replace
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.training import data as D
from models import tokens as tk
from models.networks.checkpoint import read_config
from models.config import ControllerConfig, ModelConfig, TrainConfig, configs_for
from models.generation.sample import Grammar, SamplingConfig, condition_context, sample_sequence, video_context
from model_fixtures import synthetic_tables, write_synthetic_dataset
from models.training.train import train_stage
from models.networks.transformers import build_model
from symmv.core.records import Note

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def small(stage, **kw):
    return ModelConfig(stage=stage, d_model=32, n_head=2, n_layer=1, n_enc_layer=1, block_size=128, **kw)


def fast_train(**kw):
    return TrainConfig(**{**dict(epochs=1, batch_size=8, lr=3e-3, warmup_steps=2, window_bars=4,
                                 windows_per_song=2, patience=5), **kw})


def without_video(tables, prefix="rel"):
    """The same music as other songs with no video_features rows (like the SymMV release)."""
    out = {k: v.copy() for k, v in tables.items()}
    for name in ("songs", "notes", "chords"):
        out[name]["song_id"] = prefix + out[name]["song_id"]
    out["video_features"] = out["video_features"].iloc[0:0]
    return out


def test_null_video_lets_songs_without_video_train_the_chord_stage(tmp_path):
    with_video = synthetic_tables(n_songs=8, semantic_dim=6, color_dim=4)
    tables = D.concat_tables(without_video(synthetic_tables(n_songs=8, seed=1, semantic_dim=6, color_dim=4)),
                             with_video)
    cfg = small("chord", controller=ControllerConfig(semantic_dim=6, color_dim=4, max_frames=16))
    examples = D.build_examples(tables, "train")
    items = D.windows(examples, cfg, fast_train(), np.random.default_rng(0))
    null = [it for it in items if it["semantic"].shape == (1, 6) and not it["semantic"].any()]
    assert len(null) == 2 * sum(not D.has_video(ex) for ex in examples) > 0
    skipped = D.windows(examples, cfg, fast_train(null_video=False), np.random.default_rng(0))
    assert len(skipped) == 2 * sum(D.has_video(ex) for ex in examples)
    summary = train_stage("chord", tmp_path, tables=tables, model_cfg=cfg, train_cfg=fast_train(), progress=False)
    assert summary["n_train_songs_with_video"] == sum(D.has_video(ex) for ex in examples)
    assert summary["n_train_songs"] == len(examples)


def test_training_summary_has_per_attribute_losses_and_pitch_range(tmp_path):
    tables = synthetic_tables(n_songs=12, semantic_dim=6, color_dim=4)
    summary = train_stage("melody", tmp_path, tables=tables, model_cfg=small("melody"),
                          train_cfg=fast_train(max_val_windows=3), progress=False, provenance={"data": "synthetic"})
    assert summary["n_val_windows"] == 3
    assert {"type", "barbeat", "pitch", "duration"} <= set(summary["best_val_attributes"])
    assert set(summary["unigram_val_attributes"]) == set(summary["best_val_attributes"])
    assert np.isclose(sum(summary["best_val_attributes"].values()), summary["best_val"], rtol=1e-3)
    saved = json.loads((tmp_path / "melody" / "training.json").read_text())
    assert saved["provenance"] == {"data": "synthetic"} and saved["best_val"] == summary["best_val"]
    melody = [n.pitch for ex in D.build_examples(tables, "train") for n in ex.melody]
    lo, hi = read_config(tmp_path / "melody").pitch_range
    assert lo <= np.percentile(melody, 1) and hi >= np.percentile(melody, 99) and hi - lo < 48


def test_cpu_size_is_the_make_train_all_recipe():
    model, train = configs_for("accompaniment", "cpu")
    assert model.d_model >= 64 and train.num_threads == 1 and train.max_val_windows > 0
    assert configs_for("chord", "paper")[1].epochs == 200  # the paper's sizes keep the paper's epochs


def test_chords_start_on_beats_with_the_beat_grid():
    torch.manual_seed(0)
    model = build_model(small("chord", controller=ControllerConfig(semantic_dim=5, color_dim=3)))
    ctx = video_context(model, np.zeros((1, 5)), np.zeros((1, 3)))
    for seed in range(3):
        seq = sample_sequence(model, ctx, Grammar("chord", 6, 100.0, chord_grid=4), SamplingConfig(temperature=1.5),
                              seed)
        chords = tk.decode_chords(seq)
        assert chords and all(c.position % 4 == 0 for c in chords)
        assert max(c.bar for c in chords) <= 5 and seq[-1][0] == tk.EOS


def test_accompaniment_stays_below_the_sounding_melody_note():
    torch.manual_seed(2)
    model = build_model(small("accompaniment"))
    chords = [tk.ChordEvent(b, 0, 0, "M") for b in range(3)]
    melody = [Note(0, 0, 64 + b, 90, "melody", bar=b, position=p, duration_16th=4) for b in range(3)
              for p in (0, 4, 8, 12)]
    cond = tk.encode(melody, chords, n_bars=3, tempo_bpm=120, bos_eos=False)
    grammar = Grammar("accompaniment", 3, 120.0, chords, pitch_range=(21, 108), melody=melody)
    seq = sample_sequence(model, condition_context(model, cond), grammar, SamplingConfig(temperature=1.5), 0)
    notes = tk.decode_notes(seq)
    assert len(notes) > 3
    assert all(n.pitch < 64 + n.bar for n in notes)  # an untrained model would go anywhere in 21..108


def test_melody_above_share_counts_bars_holding_both_tracks():
    sys.path.insert(0, str(REPO))
    from bench.bench_music import melody_above_share

    def note(track, pitch, bar):
        return Note(0, 1, pitch, 80, track, bar=bar, position=0, duration_16th=4)

    notes = [note("melody", 72, 0), note("accompaniment", 48, 0), note("accompaniment", 50, 0),
             note("melody", 40, 1), note("accompaniment", 48, 1), note("accompaniment", 60, 2)]
    assert melody_above_share(notes) == 0.5  # bar 0 above, bar 1 below, bar 2 has no melody


@pytest.mark.slow  # two torchrun processes start torch and train: ~20-40 s on the shared 2-core box
def test_ddp_training_under_torchrun_with_gloo(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    root = write_synthetic_dataset(tmp_path / "data", n_songs=16, semantic_dim=6, color_dim=4)
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "models.training.train",
                           "--stage", "melody", "--size", "tiny", "--data", str(root), "--out", str(tmp_path / "ckpt"),
                           "--epochs", "3", "--lr", "3e-3"], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={"PATH": str(Path(sys.executable).parent), "OMP_NUM_THREADS": "1",
                               "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ckpt" / "melody" / "training.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 3
    history = json.loads((tmp_path / "ckpt" / "melody" / "state.json").read_text())["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # the synchronised model learns
    assert (tmp_path / "ckpt" / "melody" / "model.safetensors").is_file()


def test_transposition_shifts_pitches_and_roots_together():
    tokens = tk.encode([Note(0, 1, 60, 80, "melody", bar=0, position=0, duration_16th=4),
                        Note(0, 1, 127, 80, "melody", bar=0, position=4, duration_16th=4)],
                       [tk.ChordEvent(0, 0, 11, "M"), tk.ChordEvent(0, 8, -1, "N")], n_bars=1)
    up = D.transpose_tokens(tokens, 2)
    assert [n.pitch for n in tk.decode_notes(up)] == [62, 117]  # 129 is past MIDI: an octave down
    assert [(c.root, c.quality) for c in tk.decode_chords(up)] == [(1, "M"), (-1, "N")]
    assert np.array_equal(D.transpose_tokens(up, -2)[:, tk.F["type"]], tokens[:, tk.F["type"]])
    cfg = small("melody")
    ex = D.build_examples(synthetic_tables(n_songs=6), "train")[0]
    plain, shifted = D.make_window(ex, 0, cfg, 4), D.make_window(ex, 0, cfg, 4, semitones=3)
    for key in ("tokens", "cond_tokens"):
        a, b = plain[key], shifted[key]
        notes = a[:, tk.F["type"]] == tk.NOTE
        assert np.array_equal(b[notes, tk.F["pitch"]], a[notes, tk.F["pitch"]] + 3)
        chords = a[:, tk.F["type"]] == tk.CHORD
        assert np.array_equal(b[chords, tk.F["root"]], (a[chords, tk.F["root"]] - 1 + 3) % 12 + 1)


def test_a_model_that_wants_a_new_bar_ends_the_piece_in_the_last_bar():
    """Training windows rarely end with EOS; the wish for a bar past the last one must become the end."""
    torch.manual_seed(0)
    model = build_model(small("accompaniment"))
    with torch.no_grad():  # a model that always asks for a new bar
        model.heads.type_head.bias[tk.RHYTHM] += 30.0
        model.heads.heads["barbeat"].bias[tk.BAR] += 30.0
    cond = tk.encode(chords=[tk.ChordEvent(0, 0, 0, "M")], n_bars=3, bos_eos=False)
    grammar = Grammar("accompaniment", 3, 100.0, max_tokens=500)
    seq = sample_sequence(model, condition_context(model, cond), grammar, SamplingConfig(), 0)
    bars = np.flatnonzero((seq[:, tk.F["type"]] == tk.RHYTHM) & (seq[:, tk.F["barbeat"]] == tk.BAR))
    assert len(bars) == 3
    # the last bar's "new bar" is the end: nothing between its Bar token and EOS (without `end_of_piece`
    # the sampler walks the positions of the last bar and fills them instead)
    assert [int(t[0]) for t in seq[bars[-1] + 1:]] == [tk.EOS]


def test_opening_share_starts_that_share_of_training_windows_at_the_first_bar():
    cfg = small("melody")
    examples = [ex for ex in D.build_examples(synthetic_tables(n_songs=24), "train") if ex.n_bars > 8]
    first_bars = lambda items: np.mean([it["tokens"][1, tk.F["bar"]] == 0 for it in items])  # noqa: E731
    many = fast_train(windows_per_song=40)
    assert first_bars(D.windows(examples, cfg, many, np.random.default_rng(0))) < 0.2
    opening = D.windows(examples, cfg, replace(many, opening_share=0.5), np.random.default_rng(0))
    assert 0.4 < first_bars(opening) < 0.65
    assert first_bars(D.windows(examples, cfg, replace(many, opening_share=1.0), np.random.default_rng(0))) == 1.0


def test_stages_that_read_the_video_train_untransposed():
    examples = D.build_examples(synthetic_tables(n_songs=8, semantic_dim=6, color_dim=4), "train")
    transposing, untransposed = fast_train(transpose=6, windows_per_song=8), fast_train(windows_per_song=8)

    def tokens(cfg, train_cfg):
        return [it["tokens"] for it in D.windows(examples, cfg, train_cfg, np.random.default_rng(0))]

    with_video = small("chord", controller=ControllerConfig(semantic_dim=6, color_dim=4, max_frames=16))
    unconditional = small("chord", video=False)
    same = zip(tokens(with_video, transposing), tokens(with_video, untransposed))
    assert all(np.array_equal(a, b) for a, b in same)
    moved = zip(tokens(unconditional, transposing), tokens(unconditional, untransposed))
    assert not all(np.array_equal(a, b) for a, b in moved)  # the unconditional stage is transposed
