import numpy as np
import pytest
import torch

from models import tokens as tk
from models.config import ControllerConfig, ModelConfig
from models.networks.controller import VideoController
from models.training.data import collate, make_window
from model_fixtures import synthetic_tables
from models.training.data import build_examples
from models.networks.transformers import (ChordTransformer, NoteTransformer, bar_cross_mask, build_model, compound_loss,
                                 new_cache)

torch.set_num_threads(1)
SEM, COL = 7, 5  # deliberately not 512: widths come from the data


def cfg(stage, **kw):
    kw.setdefault("controller", ControllerConfig(semantic_dim=SEM, color_dim=COL))
    return ModelConfig(stage=stage, d_model=32, n_head=2, n_layer=2, n_enc_layer=1, block_size=128, **kw)


@pytest.fixture(scope="module")
def example():
    return build_examples(synthetic_tables(n_songs=2, semantic_dim=SEM, color_dim=COL))[0]


def batch_for(example, stage, window_bars=4, **kw):
    c = cfg(stage, **kw)
    return c, collate([make_window(example, b0, c, window_bars) for b0 in (0, 2)])


def test_bar_mask_on_a_hand_built_case():
    dec_bars = torch.tensor([[0, 0, 1, 2, 5]])
    enc_bars = torch.tensor([[0, 1, 1, 2, 3, 3, 9]])
    enc_valid = torch.tensor([[True, True, True, True, True, True, False]])
    expected = torch.tensor([
        [1, 1, 1, 0, 0, 0, 0],  # bar 0 sees bars 0, 1
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],  # bar 1 sees 0, 1, 2
        [0, 1, 1, 1, 1, 1, 0],  # bar 2 sees 1, 2, 3
        [1, 1, 1, 1, 1, 1, 0],  # bar 5: nothing in reach -> every valid key, never a NaN row
    ], dtype=torch.bool)
    assert torch.equal(bar_cross_mask(dec_bars, enc_bars, enc_valid)[0, 0], expected)


def test_controller_shapes_and_padding():
    c = cfg("chord")
    ctrl = VideoController(c).eval()
    sem, col = torch.randn(2, 6, SEM), torch.randn(2, 4, COL)
    sv, cv = torch.ones(2, 6, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    memory, valid = ctrl(sem, sv, col, cv)
    assert memory.shape == (2, 10, 32) and valid.shape == (2, 10)
    # padded frames (valid False) do not change the valid outputs
    sv2 = sv.clone()
    sv2[1, 4:] = False
    sem2 = sem.clone()
    sem2[1, 4:] = 1e3
    m_pad, _ = ctrl(sem2, sv2, col, cv)
    m_ref, _ = ctrl(sem[1:, :4], sv[1:, :4], col[1:], cv[1:])
    keep = torch.cat([torch.arange(4), torch.arange(6, 10)])
    assert torch.allclose(m_pad[1, keep], m_ref[0], atol=1e-5)


def test_controller_puts_every_modality_on_one_scale():
    """A colour histogram (entries ~1e-3) and a CLIP-like embedding (norm ~17) reach the memory alike:
    the memory does not change when a frame's features are scaled."""
    torch.manual_seed(0)
    ctrl = VideoController(cfg("chord")).eval()
    sem, col = torch.randn(1, 6, SEM), torch.rand(1, 4, COL)
    col = col / col.sum(-1, keepdim=True)  # histograms
    ones = (torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool))
    m, _ = ctrl(sem, ones[0], col, ones[1])
    m_scaled, _ = ctrl(sem * 40, ones[0], col * 1e-2, ones[1])
    assert torch.allclose(ctrl.normalise("color", col), ctrl.normalise("color", col * 1e-2), atol=1e-4)
    assert torch.allclose(ctrl.normalise("semantic", sem), ctrl.normalise("semantic", sem * 40), atol=1e-4)
    assert torch.allclose(m, m_scaled, atol=5e-3)  # float32 through three encoder layers
    old = VideoController(cfg("chord", controller=ControllerConfig(SEM, COL, input_norm=False))).eval()
    old.load_state_dict(ctrl.state_dict())  # same parameters: the normalisation has none
    m_old, _ = old(sem, ones[0], col * 1e-3, ones[1])
    assert not torch.allclose(m_old, m, atol=1e-2)


def test_old_checkpoint_configs_load_without_the_new_controller_behaviour():
    from models.config import model_config_from_dict, model_config_to_dict

    d = model_config_to_dict(cfg("chord"))
    assert model_config_from_dict(d).controller.input_norm and model_config_from_dict(d).controller.bar_reach == 1
    for key in ("input_norm", "bar_reach"):
        del d["controller"][key]
    old = model_config_from_dict(d).controller
    assert old.input_norm is False and old.bar_reach == -1


def test_chord_tokens_read_the_video_memory_of_their_own_bars(example):
    """With bar_reach 1 a chord of bar b cross-attends the memory frames of bars b-1..b+1 (the controller's
    encoders still mix all frames of the window into each memory frame, as in the paper): changing the
    memory of bar 3 changes the decoder in bars 2-4 and nothing before bar 2; without the mask it does."""
    from dataclasses import replace

    torch.manual_seed(0)
    c, batch = batch_for(example, "chord", window_bars=8)
    batch = {k: v[:1] for k, v in batch.items()}
    tokens = batch["tokens"][:, :-1]
    bars = tokens[0, :, tk.F["bar"]]
    assert {int(b) for b in bars} >= {0, 1, 2, 3, 4}
    model = build_model(c).eval()
    ctx = model.context(batch)
    assert ctx.bars is not None and ctx.bars.shape == ctx.valid.shape and ctx.reach == 1
    in_bar3 = ctx.bars[0] == 3
    assert in_bar3.any() and (~in_bar3).any()
    memory = ctx.memory.clone()
    memory[0, in_bar3] = torch.randn_like(memory[0, in_bar3]) * 5
    changed = replace(ctx, memory=memory)
    diff = (model.decode(tokens, ctx) - model.decode(tokens, changed))[0].abs().amax(-1)
    assert torch.all(diff[bars < 2] < 1e-5) and torch.all(diff[bars == 3] > 1e-4)
    unmasked, unmasked_changed = replace(ctx, bars=None), replace(changed, bars=None)
    diff_all = (model.decode(tokens, unmasked) - model.decode(tokens, unmasked_changed))[0].abs().amax(-1)
    assert torch.all(diff_all[bars < 2] > 1e-4)


@pytest.mark.parametrize("stage", ["chord", "melody", "accompaniment"])
def test_forward_shapes_and_finite_loss(example, stage):
    c, batch = batch_for(example, stage)
    model = build_model(c).eval()
    assert isinstance(model, ChordTransformer if stage == "chord" else NoteTransformer)
    tokens = batch["tokens"]
    h = model.decode(tokens[:, :-1], model.context(batch))
    assert h.shape == (*tokens[:, :-1].shape[:2], 32)
    logits = model.heads(h, tokens[:, 1:, 0])
    assert {a: v.shape[-1] for a, v in logits.items()} == tk.VOCAB
    loss, parts = model(batch)
    expected_attrs = {"type", "barbeat", "root", "quality"} | ({"pitch", "duration"} if stage != "chord" else set())
    assert torch.isfinite(loss) and set(parts) == expected_attrs


def test_loss_ignores_attributes_a_type_does_not_use():
    targets = torch.tensor([[[tk.NOTE, 0, 61, 4, 0, 0], [tk.RHYTHM, tk.BAR, 0, 0, 0, 0], [tk.PAD, 0, 0, 0, 0, 0]]])
    logits = {a: torch.randn(1, 3, v) for a, v in tk.VOCAB.items()}
    loss, parts = compound_loss(logits, targets)
    garbage = {a: v.clone() for a, v in logits.items()}
    garbage["root"][:] = 50.0  # no CHORD target: must not matter
    garbage["pitch"][0, 1:] = -50.0  # pitch of the RHYTHM / PAD targets: must not matter
    garbage["type"][0, 2] = 99.0  # PAD target: must not matter
    assert torch.allclose(compound_loss(garbage, targets)[0], loss)
    assert set(parts) == {"type", "barbeat", "pitch", "duration"}


@pytest.mark.parametrize("stage", ["chord", "melody"])
def test_decoder_is_causal(example, stage):
    c, batch = batch_for(example, stage)
    model = build_model(c).eval()
    tokens = batch["tokens"][:1, :20]
    k = tokens.shape[1] // 2
    ctx = model.context({k: v[:1] for k, v in batch.items()})
    h = model.decode(tokens, ctx)
    changed = tokens.clone()
    changed[0, k:, tk.F["pitch"]] = 100
    h2 = model.decode(changed, ctx)
    assert torch.allclose(h[0, :k], h2[0, :k], atol=1e-5) and not torch.allclose(h[0, k:], h2[0, k:])


@torch.no_grad()
def test_melody_decoder_only_sees_neighbouring_bars(example):
    c = cfg("melody")
    model = build_model(c).eval()
    dec = tk.encode(example.melody, example.chords, n_bars=example.n_bars, tempo_bpm=example.tempo_bpm)
    cond = tk.encode(chords=example.chords, n_bars=example.n_bars, tempo_bpm=example.tempo_bpm, bos_eos=False)
    cond2 = cond.copy()
    in_bar5 = (cond2[:, tk.F["bar"]] == 5) & (cond2[:, 0] == tk.CHORD)
    cond2[in_bar5, tk.F["root"]] = cond2[in_bar5, tk.F["root"]] % 12 + 1  # another chord in bar 5 only
    h = [model.decode(torch.as_tensor(dec)[None], model.context({"cond_tokens": torch.as_tensor(c_)[None]}))[0]
         for c_ in (cond, cond2)]
    bars = dec[:, tk.F["bar"]]
    # tokens of bars < 4 cannot see bar 5 (not through the mask, and the decoder is causal)
    before, near = bars < 4, np.abs(bars - 5) <= 1
    diff = (h[0] - h[1]).abs().amax(-1).numpy()
    assert diff[near].max() > 1e-4
    # The encoder is bidirectional, so a bar-5 change reaches every encoder output. Without encoder
    # layers, only the cross-attention mask stands between bar 5 and the earlier bars.
    model.encoder.blocks = torch.nn.ModuleList()
    h = [model.decode(torch.as_tensor(dec)[None], model.context({"cond_tokens": torch.as_tensor(c_)[None]}))[0]
         for c_ in (cond, cond2)]
    diff = (h[0] - h[1]).abs().amax(-1).numpy()
    assert diff[before].max() < 1e-5 and diff[near].max() > 1e-4


def test_sdpa_and_naive_attention_agree(example):
    c, batch = batch_for(example, "accompaniment")
    torch.manual_seed(0)
    sdpa = build_model(c).eval()
    naive = build_model(cfg("accompaniment", attn_impl="naive")).eval()
    naive.load_state_dict(sdpa.state_dict())
    assert torch.allclose(sdpa(batch)[0], naive(batch)[0], atol=1e-4)


@pytest.mark.parametrize("stage", ["chord", "accompaniment"])
def test_kv_cache_matches_full_forward(example, stage):
    c, batch = batch_for(example, stage)
    model = build_model(c).eval()
    one = {k: v[:1] for k, v in batch.items()}
    tokens = one["tokens"][:, :12]
    ctx = model.context(one)
    full = model.decode(tokens, ctx)
    cache = new_cache(c.n_layer)
    steps = [model.decode(tokens[:, i: i + 1], ctx, cache, start_pos=i) for i in range(tokens.shape[1])]
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_unconditional_chord_model_has_no_cross_attention(example):
    c, batch = batch_for(example, "chord", video=False)
    model = build_model(c)
    assert model.controller is None and all(b.cross_attn is None for b in model.blocks)
    loss, _ = model({"tokens": batch["tokens"]})
    assert torch.isfinite(loss)


def test_video_window_keeps_whole_video_timing():
    from models.networks.controller import frame_timing, stride_index
    from models.training.data import video_window

    video = np.arange(100, dtype=np.float32)[:, None]  # frame i holds i
    frames, timing, bars = video_window(video, 4, 8, 16, max_frames=10)  # bars 4..7 of 16 -> frames 25..49
    assert len(frames) == 10 and frames[0, 0] == 25 and frames[-1, 0] == 49
    assert np.array_equal(timing, frames[:, 0].astype(int) * tk.N_TIMING // 100)
    assert np.array_equal(bars, frames[:, 0].astype(int) * 16 // 100)  # frame 25 is in bar 4, frame 49 in bar 7
    assert bars[0] == 4 and bars[-1] == 7
    whole = stride_index(100, 10)  # generation: the whole video, strided
    assert whole[0] == 0 and whole[-1] == 99 and frame_timing(whole, 100)[-1] == tk.N_TIMING - 1
