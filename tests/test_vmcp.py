import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.evaluation.vmcp import (
    MusicClip,
    VideoClip,
    VMCPConfig,
    beat_alignment_chance,
    beat_alignment_score,
    candidate_ranks,
    embed_musics,
    load_vmcp,
    music_segments,
    rank_metrics,
    save_vmcp,
    segment_infonce,
    shuffled_pair_check,
    train_vmcp,
    video_segments,
    vmcp_scores,
    VMCP,
)
from symmv.core.records import Note


def paper_loss_loop(v, m, tau, valid):
    """Sec. 5.1's formula written as the paper's sums, one term at a time (both directions)."""
    n, L, _ = v.shape
    cells = [(i, l) for i in range(n) for l in range(L) if valid[i, l]]

    def s(a, b):
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    total = 0.0
    for x, y in ((v, m), (m, v)):
        for i, l in cells:
            num = math.exp(s(x[i, l], y[i, l]) / tau)
            den = sum(math.exp(s(x[i, l], y[j, k]) / tau) for j, k in cells)
            total -= math.log(num / den)
    return total


def test_segment_infonce_matches_paper_formula_loop():
    g = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(3, 4, 5, generator=g), dim=-1)
    m = torch.nn.functional.normalize(torch.randn(3, 4, 5, generator=g), dim=-1)
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[1, 3] = valid[2, 2:] = False  # padded segments drop out of every sum
    tau = 0.3
    got = float(segment_infonce(v, m, 1 / tau, valid, reduction="sum"))
    want = paper_loss_loop(v.numpy(), m.numpy(), tau, valid.numpy())
    assert got == pytest.approx(want, rel=1e-5)
    # "mean" divides each direction by the number of valid segments (9)
    assert float(segment_infonce(v, m, 1 / tau, valid, reduction="mean")) == pytest.approx(want / 9, rel=1e-5)


def test_candidate_ranks_known_ranks_when_all_videos_are_candidates():
    n = 6
    want = np.array([1, 2, 6, 3, 1, 4])
    sim = np.zeros((n, n))
    for i in range(n):
        sim[i, i] = 0.5
        others = [j for j in range(n) if j != i]
        for j in others[: want[i] - 1]:
            sim[i, j] = 0.9  # exactly want[i]-1 videos beat the true one
    ranks, m_used = candidate_ranks(sim, m=70, seed=3)
    assert m_used == n
    assert ranks.tolist() == want.tolist()
    r = rank_metrics(ranks, m_used, n_boot=50)
    assert r["P@5"] == pytest.approx(100 * 5 / 6)
    assert r["AR"] == pytest.approx(want.mean())
    assert r["P@5_chance"] == pytest.approx(100 * 5 / 6) and r["P@20_chance"] == 100.0
    assert r["AR_chance"] == 3.5


def test_candidate_ranks_sampled_pool_best_worst_and_ties():
    n, m = 100, 70
    best = np.eye(n)  # true video most similar -> rank 1 among any 70
    worst = 1 - np.eye(n)  # least similar -> rank M
    assert set(candidate_ranks(best, m, 0)[0]) == {1.0}
    ranks, m_used = candidate_ranks(worst, m, 0)
    assert m_used == 70 and set(ranks) == {70.0}
    tied = np.ones((n, n))  # all equal: ties count half -> the chance rank (M+1)/2
    assert set(candidate_ranks(tied, m, 0)[0]) == {35.5}
    r = rank_metrics(ranks, m_used, n_boot=50)
    assert r["P@5_chance"] == pytest.approx(100 * 5 / 70) and r["AR_chance"] == 35.5
    # seeded: the same seed draws the same pools
    rand = np.random.default_rng(1).normal(size=(n, n))
    assert np.array_equal(candidate_ranks(rand, m, 7)[0], candidate_ranks(rand, m, 7)[0])


def test_beat_alignment_score_known_values():
    onsets = [0.0, 0.5, 1.0, 1.5]
    assert beat_alignment_score([0.5, 1.0], onsets, sigma_s=0.1) == pytest.approx(1.0)
    assert beat_alignment_score([0.6], onsets, sigma_s=0.1) == pytest.approx(math.exp(-0.5))
    assert beat_alignment_score([0.25 + 1.5], onsets, sigma_s=0.25) == pytest.approx(math.exp(-0.5))
    assert math.isnan(beat_alignment_score([], onsets))
    chance = beat_alignment_chance(20, onsets, 2.0, sigma_s=0.1, seed=0)
    assert 0.1 < chance < 0.6  # random cuts on a 0.5 s grid: well below on-grid cuts


def test_segmenting_shapes_and_means():
    feats = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)  # 10 frames at 2 fps = 5 s
    segs = video_segments(VideoClip(feats, fps=2.0), segment_s=2.0)
    assert segs.shape == (2, 3)  # 2 whole segments; the last half-segment is dropped
    np.testing.assert_allclose(segs[0], feats[:4].mean(0))
    mel = music_segments(MusicClip(np.zeros((250, 8), np.float32), 50.0), 2.0)
    assert mel.shape == (2, 100, 8)


# ------------------------------------------------------------------------------------------------
# a synthetic world where music is a deterministic function of the video


N_CLASSES, SEG_S, MEL_FPS, N_MELS = 8, 2.0, 10.0, 32


def synthetic_pairs(n, seed, n_segments=6, dim=16):
    """Video frames carry a hidden class per segment; the music of a segment lights the mel band of the
    class read back from the video features (argmax of a fixed projection): music = f(video)."""
    rng = np.random.default_rng(seed)
    proto = np.random.default_rng(123).normal(size=(N_CLASSES, dim)).astype(np.float32)
    read = proto.T  # class = argmax(feature @ proto.T)
    pairs = []
    fps = 3.0
    frames_per_seg = int(SEG_S * fps)
    t = int(SEG_S * MEL_FPS)
    for _ in range(n):
        classes = rng.integers(0, N_CLASSES, n_segments)
        frames = np.repeat(proto[classes], frames_per_seg, axis=0)
        frames = frames + 0.3 * rng.normal(size=frames.shape).astype(np.float32)
        mel = np.full((n_segments * t, N_MELS), -80.0, np.float32)
        for s in range(n_segments):
            c = int(np.argmax(frames[s * frames_per_seg:(s + 1) * frames_per_seg].mean(0) @ read))
            mel[s * t:(s + 1) * t, 4 * c:4 * c + 4] = -10.0
        mel += rng.normal(0, 3, mel.shape).astype(np.float32)
        pairs.append((VideoClip(frames, fps), MusicClip(mel, MEL_FPS)))
    return pairs


TINY = VMCPConfig(segment_s=SEG_S, max_segments=8, n_mels=N_MELS, mel_fps=MEL_FPS, audio_dim=16,
                  cnn_channels=(8, 16), d_model=32, n_heads=2, n_layers=1, embed_dim=16, dropout=0.0,
                  batch_size=16, steps=60, lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def trained():
    # Two threads on a shared 2-core machine oversubscribe badly (10x slower here); one is plenty.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train = synthetic_pairs(48, seed=1)
    held_out = synthetic_pairs(40, seed=2)
    model = train_vmcp(train, TINY)
    yield model, held_out
    torch.set_num_threads(threads)


def test_trained_tiny_vmcp_beats_chance_and_shuffled_sits_at_chance(trained):
    model, held_out = trained
    assert model.cfg.video_dim == 16  # read from the data
    assert model.history[-1] < model.history[0]
    videos, musics = [p[0] for p in held_out], [p[1] for p in held_out]
    check = shuffled_pair_check(model, videos, musics, m=70, seed=0)
    real, shuffled = check["real"], check["shuffled"]
    assert real["M"] == 40 and "M = 40" in real["note"]
    assert real["P@5"] > real["P@5_chance"] + 30  # chance 12.5 %
    assert real["AR"] < real["AR_chance"] / 2  # chance 20.5
    assert abs(shuffled["AR"] - shuffled["AR_chance"]) < 6  # ~3 standard errors of a mean of 40 ranks
    assert shuffled["P@5"] < real["P@5"]


def test_checkpoint_round_trip(trained, tmp_path):
    model, held_out = trained
    save_vmcp(model, tmp_path / "ckpt", provenance={"data": "synthetic"})
    again = load_vmcp(tmp_path / "ckpt")
    musics = [p[1] for p in held_out[:3]]
    np.testing.assert_allclose(embed_musics(model, musics), embed_musics(again, musics), atol=1e-5)
    assert again.temperature == pytest.approx(model.temperature)


def test_pretrained_audio_encoder_registry(tmp_path):
    cfg = VMCPConfig(video_dim=4, audio_encoder="music_tagging_transformer", audio_encoder_path=str(tmp_path / "no.pt"))
    with pytest.raises(FileNotFoundError, match="TorchScript checkpoint"):
        VMCP(cfg)

    class Tiny(torch.nn.Module):
        def forward(self, mel):  # (N, T, n_mels) -> (N, 6)
            return mel.mean(1)[:, :6]

    path = tmp_path / "enc.pt"
    torch.jit.script(Tiny()).save(str(path))
    model = VMCP(VMCPConfig(video_dim=4, audio_encoder="torchscript", audio_encoder_path=str(path)))
    assert model.audio_encoder.out_dim == 6
    assert not any(p.requires_grad for p in model.audio_encoder.parameters())
    with pytest.raises(KeyError, match="unknown audio encoder"):
        VMCP(VMCPConfig(video_dim=4, audio_encoder="nope"))


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists(),
                    reason="fluidsynth / TimGM6mb soundfont not installed")
def test_fluidsynth_render_to_log_mel():
    from models.evaluation.audio import MelConfig, notes_log_mel

    notes = [Note(0.0, 1.0, 60, 100), Note(2.0, 3.0, 72, 100)]
    mel = notes_log_mel(notes, MelConfig())
    assert mel.shape[1] == 64 and 150 <= len(mel) <= 400  # 3 s of notes + fluidsynth's release tail, 50 fps
    loud, quiet = mel[0:25].mean(), mel[75:100].mean()  # 0-0.5 s sounding vs 1.5-2 s after the release
    assert loud > quiet + 10
    clip = MusicClip(mel, MelConfig().frames_per_second)
    assert music_segments(clip, 2.0).shape[1:] == (100, 64)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_vmcp_through_fluidsynth_beats_chance():
    """The real audio path: music notes chosen from the video features, rendered by fluidsynth."""
    from models.evaluation.audio import MelConfig
    from models.evaluation.vmcp import music_clip_from_notes

    mel_cfg = MelConfig(n_mels=32, hop_length=1600)  # 10 frames per second keeps it small
    rng = np.random.default_rng(0)
    proto = np.random.default_rng(123).normal(size=(N_CLASSES, 16)).astype(np.float32)
    pairs = []
    for _ in range(72):
        classes = rng.integers(0, N_CLASSES, 5)
        frames = np.repeat(proto[classes], 6, axis=0) + 0.3 * rng.normal(size=(30, 16)).astype(np.float32)
        notes = []
        for s in range(5):  # class read back from the features -> a register and a rhythm
            c = int(np.argmax(frames[s * 6:(s + 1) * 6].mean(0) @ proto.T))
            step = 0.25 if c % 2 else 0.5
            for k in range(int(2.0 / step)):
                t = s * 2.0 + k * step
                notes.append(Note(t, t + step * 0.9, 36 + 6 * c, 100))
        pairs.append((VideoClip(frames, 3.0), music_clip_from_notes(notes, mel_cfg)))
    cfg = dataclasses.replace(TINY, n_mels=32, mel_fps=mel_cfg.frames_per_second, steps=100)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = train_vmcp(pairs[:48], cfg)
        check = shuffled_pair_check(model, [p[0] for p in pairs[48:]], [p[1] for p in pairs[48:]], seed=0)
    finally:
        torch.set_num_threads(threads)
    print({k: (v["P@5"], v["AR"], v["AR_chance"]) for k, v in check.items()})
    assert check["real"]["AR"] < check["real"]["AR_chance"] * 0.6
    assert check["real"]["P@5"] > check["real"]["P@5_chance"] + 15


def test_video_inputs_add_colour_and_motion_blocks_of_unit_norm():
    fps, n = 2.0, 8  # 4 s of video, two 2 s segments
    color = np.zeros((n, 6), np.float32)
    color[:4, 0], color[4:, 5] = 1.0, 1.0  # the colour changes at 2 s
    clip = VideoClip(semantic=np.ones((n, 3), np.float32), fps=fps, color=color,
                     motion=np.array([0.0, 0.0, 0.3, 0.3], np.float32))
    segs = video_segments(clip, 2.0, ("semantic", "color", "motion"))
    assert segs.shape == (2, 3 + 6 + 8)
    for block in (segs[:, :3], segs[:, 3:9], segs[:, 9:]):
        assert np.allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-5)
    assert segs[0, 3] > 0.99 and segs[1, 8] > 0.99  # each segment's own colour
    assert np.argmax(segs[0, 9:]) == 0 and np.argmax(segs[1, 9:]) == 7  # still, then fast motion
    assert np.allclose(video_segments(clip, 2.0), 1.0)  # the paper's semantic-only input is unchanged
