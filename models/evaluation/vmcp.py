"""VMCP: the video-music CLIP model and its retrieval metric (paper sec. 5.1-5.2), plus a beat-alignment figure.

Model (after Surís et al. 2022, the paper's [46]): split video and music into fixed-length segments; a
video segment is the mean of its frames' stored semantic features (dim read from the data; `video_inputs`
adds colour and motion, see VMCPConfig); a music
segment is a log-mel patch of the fluidsynth rendering (models/evaluation/audio.py) fed to an `AudioEncoder`; one
transformer encoder per modality runs over the segment sequence; both map into a shared embedding space
trained with the segment-level InfoNCE of sec. 5.1, in both directions, with a learnable temperature.

Metric (sec. 5.2): for each generated piece, rank its conditioning video among M candidates (itself +
M-1 others drawn with a seeded RNG) by cosine similarity of piece-level embeddings (mean of segment
embeddings, L2-normalized); report P@5/10/20 (percent) and the average rank, with bootstrap CIs and the
chance levels (P@K = K/M, AR = (M+1)/2). The paper uses M = 70.

Deviations from the paper, all forced by what exists here: the paper's audio encoder is a pretrained
music-tagging transformer [51] and its model is pretrained on ~20k YouTube-8M music videos then
fine-tuned on SymMV; neither checkpoint nor those videos can be had here, so the default audio encoder is
a small CNN trained from scratch on the pairs given to `train_vmcp`, and a pretrained encoder can be
plugged in through `AUDIO_ENCODERS` (TorchScript file loaded from a path).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.training.data import frames

VMCP_VERSION = "0.1"


# ----------------------------------------------------------------------------------------------------
# config and inputs


@dataclass
class VMCPConfig:
    segment_s: float = 2.0  # length of one segment, video and music alike
    max_segments: int = 16  # L: segments per training window (and per encoder chunk at inference)
    n_mels: int = 64  # must match the log-mel given (models.evaluation.audio.MelConfig)
    mel_fps: float = 50.0  # log-mel frames per second (MelConfig.frames_per_second)
    audio_encoder: str = "cnn"  # key of AUDIO_ENCODERS
    audio_encoder_path: str = ""  # checkpoint for pretrained encoders
    audio_dim: int = 128  # output dim of the audio encoder ("cnn" only; pretrained ones report theirs)
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)  # "cnn": one conv+pool block each (T, n_mels >= 2**len)
    video_dim: int = 0  # video segment feature dim; 0 = read from the training data
    # Per-segment video inputs: the paper's CLIP semantic features; "color" (mean RGB-uv histogram) and
    # "motion" (RGB difference) add what a one-frame-per-segment semantic encoder cannot see (the
    # correspondence benchmark's colour <-> harmony and motion <-> rhythm).
    video_inputs: tuple[str, ...] = ("semantic",)
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    embed_dim: int = 128
    dropout: float = 0.1
    init_temperature: float = 0.07
    # training
    batch_size: int = 16
    steps: int = 300
    lr: float = 3e-4
    weight_decay: float = 0.01
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True)
class VideoClip:
    """Per-frame features of one video (the `semantic` and `color` columns of VIDEO_FEATURES) and its
    per-second motion."""

    semantic: np.ndarray  # (n_frames, D)
    fps: float
    color: np.ndarray | None = None  # (n_frames, C)
    motion: np.ndarray | None = None  # (n_seconds,)

    @property
    def duration_s(self) -> float:
        return len(self.semantic) / self.fps


@dataclass(frozen=True)
class MusicClip:
    """Log-mel of one rendered piece (models.evaluation.audio.midi_log_mel / notes_log_mel)."""

    log_mel: np.ndarray  # (n_frames, n_mels)
    frames_per_second: float

    @property
    def duration_s(self) -> float:
        return len(self.log_mel) / self.frames_per_second


def video_clip_from_row(row) -> VideoClip:
    """A VIDEO_FEATURES row (dict / pandas Series) -> VideoClip."""
    motion = row.get("motion")
    return VideoClip(semantic=frames(row["semantic"]), fps=float(row["fps"]), color=frames(row.get("color")),
                     motion=None if motion is None else np.asarray(motion, np.float32))


def music_clip_from_notes(notes, mel_cfg=None) -> MusicClip:
    """Notes -> fluidsynth -> log-mel MusicClip (models/evaluation/audio.py; defaults: 16 kHz, 64 mels, 50 fps)."""
    from models.evaluation.audio import MelConfig, notes_log_mel

    mel_cfg = mel_cfg or MelConfig()
    return MusicClip(notes_log_mel(notes, mel_cfg), mel_cfg.frames_per_second)


def music_clip_from_midi(midi_path, mel_cfg=None) -> MusicClip:
    """MIDI file -> fluidsynth -> log-mel MusicClip."""
    from models.evaluation.audio import MelConfig, midi_log_mel

    mel_cfg = mel_cfg or MelConfig()
    return MusicClip(midi_log_mel(midi_path, mel_cfg), mel_cfg.frames_per_second)


def n_segments(duration_s: float, segment_s: float) -> int:
    """Whole segments in a clip; a clip shorter than one segment still gives one (zero-padded)."""
    return max(1, int(math.floor(duration_s / segment_s + 1e-9)))


MOTION_LEVELS = np.linspace(0.0, 0.3, 8)  # RBF centres that spread the scalar motion over 8 inputs


def video_segments(clip: VideoClip, segment_s: float, inputs: Sequence[str] = ("semantic",)) -> np.ndarray:
    """(S, D) per segment [s*seg, (s+1)*seg): the mean of its frames' features, for each of `inputs`
    ("semantic", "color", "motion"), each block scaled to unit norm so none drowns the others."""
    blocks = []
    for name in inputs:
        if name == "motion":
            block = _frame_means(_motion_frames(clip), 1.0, clip.duration_s, segment_s)
        else:
            feats = clip.semantic if name == "semantic" else np.sqrt(np.maximum(clip.color, 0))  # Hellinger
            block = _frame_means(np.asarray(feats, np.float32), clip.fps, clip.duration_s, segment_s)
        blocks.append(block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-6)
                      if len(inputs) > 1 else block)
    return np.concatenate(blocks, axis=1)


def _motion_frames(clip: VideoClip) -> np.ndarray:
    """(n_seconds, 8): each second's motion as soft memberships of MOTION_LEVELS."""
    m = np.zeros(1, np.float32) if clip.motion is None or not len(clip.motion) else np.asarray(clip.motion, np.float32)
    return np.exp(-0.5 * ((m[:, None] - MOTION_LEVELS[None]) / 0.03) ** 2).astype(np.float32)


def _frame_means(feats: np.ndarray, fps: float, duration_s: float, segment_s: float) -> np.ndarray:
    seg_of_frame = np.floor(np.arange(len(feats)) / fps / segment_s + 1e-9).astype(int)
    s_count = n_segments(duration_s, segment_s)
    out = np.zeros((s_count, feats.shape[1]), np.float32)
    for s in range(s_count):
        in_seg = feats[seg_of_frame == s]
        # At low fps a segment may hold no frame: take the nearest one.
        out[s] = in_seg.mean(axis=0) if len(in_seg) else feats[min(len(feats) - 1, int((s + 0.5) * segment_s * fps))]
    return out


def music_segments(clip: MusicClip, segment_s: float) -> np.ndarray:
    """(S, T, n_mels) log-mel patches of T = round(segment_s * fps) frames; the tail is padded at -100 dB."""
    t = int(round(segment_s * clip.frames_per_second))
    s_count = n_segments(clip.duration_s, segment_s)
    mel = np.full((s_count * t, clip.log_mel.shape[1]), -100.0, np.float32)
    n = min(len(clip.log_mel), s_count * t)
    mel[:n] = clip.log_mel[:n]
    return mel.reshape(s_count, t, -1)


# ----------------------------------------------------------------------------------------------------
# audio encoders: one registry, chosen by config


class CNNAudioEncoder(nn.Module):
    """Small CNN over one log-mel segment: (N, T, n_mels) -> (N, out_dim). Trained with VMCP."""

    name = "cnn"
    version = "1"
    trainable = True

    def __init__(self, cfg: VMCPConfig):
        super().__init__()
        chans = [1, *cfg.cnn_channels]
        layers = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(), nn.MaxPool2d(2)]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(chans[-1], cfg.audio_dim)
        self.out_dim = cfg.audio_dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = ((mel + 50.0) / 50.0).unsqueeze(1)  # dB -> roughly [-1, 1]; (N, 1, T, n_mels)
        x = self.convs(x)  # (N, C, T/16, n_mels/16)
        return self.proj(x.mean(dim=(2, 3)))


class TorchScriptAudioEncoder(nn.Module):
    """A frozen pretrained encoder exported as TorchScript: (N, T, n_mels) log-mel -> (N, A).

    This is where a music-tagging transformer (Won et al. 2021, the paper's [51]) plugs in once exported
    with its own front end; the file's `out_dim` attribute (or one probe forward) gives A.
    """

    name = "torchscript"
    version = "1"
    trainable = False

    def __init__(self, cfg: VMCPConfig):
        super().__init__()
        path = cfg.audio_encoder_path or os.environ.get("SYMMV_AUDIO_ENCODER", "")
        if not path or not Path(path).exists():
            raise FileNotFoundError(
                f"audio encoder {cfg.audio_encoder!r} needs a TorchScript checkpoint: set "
                f"VMCPConfig.audio_encoder_path or SYMMV_AUDIO_ENCODER (got {path!r}). Model hubs are not "
                "reachable here; export the model elsewhere with torch.jit.script/trace and copy the file in, "
                "or use audio_encoder='cnn'."
            )
        self.module = torch.jit.load(path, map_location="cpu").eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.path = str(path)
        with torch.no_grad():
            probe = torch.full((1, int(round(cfg.segment_s * cfg.mel_fps)), cfg.n_mels), -50.0)
            self.out_dim = int(getattr(self.module, "out_dim", self.module(probe).shape[-1]))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(mel)


AUDIO_ENCODERS: dict[str, Callable[[VMCPConfig], nn.Module]] = {
    "cnn": CNNAudioEncoder,
    "torchscript": TorchScriptAudioEncoder,
    "music_tagging_transformer": TorchScriptAudioEncoder,  # Won et al. 2021, exported to TorchScript
}


def build_audio_encoder(cfg: VMCPConfig) -> nn.Module:
    if cfg.audio_encoder not in AUDIO_ENCODERS:
        raise KeyError(f"unknown audio encoder {cfg.audio_encoder!r}; known: {sorted(AUDIO_ENCODERS)}")
    return AUDIO_ENCODERS[cfg.audio_encoder](cfg)


# ----------------------------------------------------------------------------------------------------
# model


class SegmentTransformer(nn.Module):
    """Projection + learned position embedding + transformer encoder over a segment sequence -> unit vectors."""

    def __init__(self, in_dim: int, cfg: VMCPConfig):
        super().__init__()
        self.proj = nn.Linear(in_dim, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.max_segments, cfg.d_model))
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(cfg.d_model, cfg.embed_dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, L, in_dim); pad: (B, L) True where padded
        h = self.proj(x) + self.pos[: x.shape[1]]
        h = self.encoder(h, src_key_padding_mask=pad)
        return F.normalize(self.head(h), dim=-1)  # (B, L, E)


class VMCP(nn.Module):
    def __init__(self, cfg: VMCPConfig):
        super().__init__()
        if cfg.video_dim <= 0:
            raise ValueError("VMCPConfig.video_dim must be set (train_vmcp reads it from the data)")
        self.cfg = cfg
        self.audio_encoder = build_audio_encoder(cfg)
        self.video_tf = SegmentTransformer(cfg.video_dim, cfg)
        self.music_tf = SegmentTransformer(self.audio_encoder.out_dim, cfg)
        self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_inv_temperature.detach()))

    def encode_video(self, video_segs: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        return self.video_tf(video_segs, pad)  # (B, L, D) -> (B, L, E)

    def encode_music(self, mel_segs: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        b, l, t, m = mel_segs.shape  # (B, L, T, n_mels)
        audio = self.audio_encoder(mel_segs.reshape(b * l, t, m)).reshape(b, l, -1)  # (B, L, A)
        return self.music_tf(audio, pad)

    def forward(self, video_segs, mel_segs, pad=None) -> torch.Tensor:
        v = self.encode_video(video_segs, pad)
        m = self.encode_music(mel_segs, pad)
        valid = None if pad is None else ~pad
        return segment_infonce(v, m, self.log_inv_temperature.exp(), valid, reduction="mean")


def segment_infonce(v: torch.Tensor, m: torch.Tensor, inv_temperature: torch.Tensor | float,
                    valid: torch.Tensor | None = None, reduction: str = "sum") -> torch.Tensor:
    """L^{v->m} + L^{m->v} of sec. 5.1 over unit-norm segment embeddings v, m: (N, L, E).

    L^{v->m} = - sum_i sum_l log( exp(s(v_il, m_il)/tau) / sum_j sum_k exp(s(v_il, m_jk)/tau) ),
    i.e. every valid segment of every piece in the batch is a negative, including the other segments of
    the same piece; L^{m->v} swaps the roles. `valid` (N, L) drops padded segments from both sums.
    reduction "sum" is the paper's formula; "mean" divides each direction by the number of valid segments.
    """
    if valid is None:
        valid = torch.ones(v.shape[:2], dtype=torch.bool, device=v.device)
    vf, mf = v[valid], m[valid]  # (P, E) flattened valid segments, aligned
    logits = vf @ mf.T * inv_temperature  # (P, P): cosine similarity / tau (inputs are unit-norm)
    target = torch.arange(len(vf), device=v.device)
    return (F.cross_entropy(logits, target, reduction=reduction)
            + F.cross_entropy(logits.T, target, reduction=reduction))


# ----------------------------------------------------------------------------------------------------
# training


@dataclass
class _Segmented:
    video: list[np.ndarray]  # each (S_i, D)
    music: list[np.ndarray]  # each (S_i, T, n_mels), same S_i as video


def _segment_pairs(pairs: Sequence[tuple[VideoClip, MusicClip]], cfg: VMCPConfig) -> _Segmented:
    vids, mus = [], []
    for video, music in pairs:
        vs, ms = video_segments(video, cfg.segment_s, cfg.video_inputs), music_segments(music, cfg.segment_s)
        s = min(len(vs), len(ms))  # the pair is aligned from t = 0; drop the longer one's tail
        vids.append(vs[:s])
        mus.append(ms[:s])
    return _Segmented(vids, mus)


def _batch(data: _Segmented, idx: Sequence[int], cfg: VMCPConfig, rng: np.random.Generator | None):
    """Stack pieces idx into padded tensors, cropping a window of <= max_segments (random when rng)."""
    L = min(cfg.max_segments, max(len(data.video[i]) for i in idx))
    t, n_mels = data.music[idx[0]].shape[1:]
    video = np.zeros((len(idx), L, data.video[idx[0]].shape[1]), np.float32)
    mel = np.full((len(idx), L, t, n_mels), -100.0, np.float32)
    pad = np.ones((len(idx), L), bool)
    for b, i in enumerate(idx):
        s = len(data.video[i])
        start = int(rng.integers(0, s - L + 1)) if rng is not None and s > L else 0
        n = min(L, s)
        video[b, :n] = data.video[i][start:start + n]
        mel[b, :n] = data.music[i][start:start + n]
        pad[b, :n] = False
    return torch.from_numpy(video), torch.from_numpy(mel), torch.from_numpy(pad)


def train_vmcp(pairs: Sequence[tuple[VideoClip, MusicClip]], cfg: VMCPConfig = VMCPConfig()) -> VMCP:
    """Train VMCP on aligned (video, music) pairs; returns the model in eval mode with `.history` (losses).

    Each step draws `batch_size` distinct pieces and a random window of <= max_segments segments from each.
    """
    if len(pairs) < 2:
        raise ValueError("contrastive training needs at least 2 pairs")
    video_dim = cfg.video_dim or int(video_segments(pairs[0][0], cfg.segment_s, cfg.video_inputs).shape[1])
    cfg = VMCPConfig(**{**asdict(cfg), "video_dim": video_dim})
    mel_fps = pairs[0][1].frames_per_second
    if abs(mel_fps - cfg.mel_fps) > 1e-6 or pairs[0][1].log_mel.shape[1] != cfg.n_mels:
        raise ValueError(f"log-mel is {mel_fps} fps x {pairs[0][1].log_mel.shape[1]} mels; cfg says "
                         f"{cfg.mel_fps} x {cfg.n_mels}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = _segment_pairs(pairs, cfg)
    model = VMCP(cfg).to(cfg.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    history = []
    bs = min(cfg.batch_size, len(pairs))
    for step in range(cfg.steps):
        idx = rng.choice(len(pairs), size=bs, replace=False)
        video, mel, pad = (x.to(cfg.device) for x in _batch(data, idx, cfg, rng))
        loss = model(video, mel, pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():  # CLIP's clamp: tau >= 0.01
            model.log_inv_temperature.clamp_(max=math.log(100.0))
        history.append(loss.item())
    model.eval()
    model.history = history
    return model


# ----------------------------------------------------------------------------------------------------
# checkpoints: safetensors + JSON config


def save_vmcp(model: VMCP, out_dir: str | Path, provenance: dict | None = None) -> Path:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A frozen TorchScript encoder is loaded from its own path, not copied into our checkpoint.
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if not k.startswith("audio_encoder.module.")}
    save_file(state, str(out_dir / "model.safetensors"))
    meta = {"config": asdict(model.cfg), "vmcp_version": VMCP_VERSION,
            "audio_encoder": f"{model.audio_encoder.name} {model.audio_encoder.version}",
            "provenance": provenance or {}, "history_last": getattr(model, "history", [])[-5:]}
    (out_dir / "config.json").write_text(json.dumps(meta, indent=1))
    return out_dir


def load_vmcp(ckpt_dir: str | Path) -> VMCP:
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    meta = json.loads((ckpt_dir / "config.json").read_text())
    conf = meta["config"]
    conf["cnn_channels"] = tuple(conf["cnn_channels"])  # JSON gives a list
    conf["video_inputs"] = tuple(conf.get("video_inputs", ("semantic",)))
    model = VMCP(VMCPConfig(**conf))
    missing, unexpected = model.load_state_dict(load_file(str(ckpt_dir / "model.safetensors")), strict=False)
    missing = [k for k in missing if not k.startswith("audio_encoder.module.")]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


# ----------------------------------------------------------------------------------------------------
# embeddings and the retrieval metric


@torch.no_grad()
def _pooled(encode, segs: np.ndarray, cfg: VMCPConfig) -> np.ndarray:
    # Longer pieces are encoded in chunks of max_segments (the position embedding's length), then the
    # segment embeddings of the whole piece are averaged and re-normalized.
    chunks = [encode(torch.from_numpy(segs[s:s + cfg.max_segments][None])) for s in range(0, len(segs), cfg.max_segments)]
    seg_emb = torch.cat(chunks, dim=1)[0]  # (S, E)
    return F.normalize(seg_emb.mean(0), dim=-1).cpu().numpy()


def embed_videos(model: VMCP, videos: Sequence[VideoClip]) -> np.ndarray:
    """(n, E) unit piece-level video embeddings."""
    model.eval()
    return np.stack([_pooled(model.encode_video, video_segments(v, model.cfg.segment_s, model.cfg.video_inputs),
                             model.cfg) for v in videos])


def embed_musics(model: VMCP, musics: Sequence[MusicClip]) -> np.ndarray:
    """(n, E) unit piece-level music embeddings."""
    model.eval()
    return np.stack([_pooled(model.encode_music, music_segments(m, model.cfg.segment_s), model.cfg) for m in musics])


def candidate_ranks(sim: np.ndarray, m: int = 70, seed: int = 0) -> tuple[np.ndarray, int]:
    """Rank of video i for music i among itself + (M-1) seeded random other videos, by `sim[i, :]`.

    sim: (n, n), sim[i, j] = similarity of music i and video j. Rank 1 = best. Ties with the true video
    count half (so ties cannot favour it). M is min(m, n); returns (ranks (n,), M used).
    """
    n = sim.shape[0]
    m_used = min(m, n)
    rng = np.random.default_rng(seed)
    ranks = np.empty(n, np.float64)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        cand = rng.choice(others, size=m_used - 1, replace=False)
        better = np.sum(sim[i, cand] > sim[i, i])
        ties = np.sum(sim[i, cand] == sim[i, i])
        ranks[i] = 1 + better + 0.5 * ties
    return ranks, m_used


def rank_metrics(ranks: np.ndarray, m_used: int, ks: Sequence[int] = (5, 10, 20), n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """P@K in percent and AR from ranks, with percentile-bootstrap 95% CIs over pieces and chance levels."""
    rng = np.random.default_rng(seed)
    boot_idx = rng.integers(0, len(ranks), (n_boot, len(ranks)))
    out: dict = {}
    for k in ks:
        hits = (ranks <= k).astype(np.float64) * 100.0
        out[f"P@{k}"] = float(hits.mean())
        out[f"P@{k}_ci95"] = [float(x) for x in np.quantile(hits[boot_idx].mean(1), [0.025, 0.975])]
        out[f"P@{k}_chance"] = 100.0 * min(k, m_used) / m_used
    out["AR"] = float(ranks.mean())
    out["AR_ci95"] = [float(x) for x in np.quantile(ranks[boot_idx].mean(1), [0.025, 0.975])]
    out["AR_chance"] = (m_used + 1) / 2
    return out


def vmcp_scores(model: VMCP, videos: Sequence[VideoClip], musics: Sequence[MusicClip], m: int = 70,
                seed: int = 0, n_boot: int = 1000) -> dict:
    """VMCP of generated `musics[i]` conditioned on `videos[i]` (sec. 5.2): P@5/10/20 (%), AR, CIs, chance.

    The candidate pool is the given videos; with fewer than m of them, M = len(videos) and `note` says so.
    """
    if len(videos) != len(musics) or len(videos) < 2:
        raise ValueError("need >= 2 (video, music) pairs, aligned by index")
    sim = embed_musics(model, musics) @ embed_videos(model, videos).T  # (n, n) cosine similarities
    ranks, m_used = candidate_ranks(sim, m, seed)
    out = rank_metrics(ranks, m_used, n_boot=n_boot, seed=seed)
    out.update(n_pieces_vmcp=len(videos), M=m_used, M_requested=m, seed=seed, ranks=ranks.tolist())
    if m_used < m:
        out["note"] = f"only {len(videos)} videos: M = {m_used} instead of {m}; chance levels use M = {m_used}"
    return out


def shuffled_pair_check(model: VMCP, videos: Sequence[VideoClip], musics: Sequence[MusicClip], m: int = 70,
                        seed: int = 0) -> dict:
    """Does VMCP measure correspondence? Scores held-out REAL pairs and the same pairs with music shuffled.

    Real pairs should beat chance; shuffled pairs (a seeded derangement: no music keeps its video) should
    sit at chance. Returns {"real": vmcp_scores(...), "shuffled": vmcp_scores(...)}.
    """
    n = len(musics)
    rng = np.random.default_rng(seed + 1)
    perm = rng.permutation(n)
    while n > 1 and np.any(perm == np.arange(n)):
        perm = rng.permutation(n)
    return {"real": vmcp_scores(model, videos, musics, m, seed),
            "shuffled": vmcp_scores(model, videos, [musics[j] for j in perm], m, seed)}


# ----------------------------------------------------------------------------------------------------
# rhythm correspondence (not in the paper)


def beat_alignment_score(cut_times_s: Sequence[float], music_times_s: Sequence[float], sigma_s: float = 0.1) -> float:
    """Mean over video cuts of exp(-d^2 / (2 sigma^2)), d = distance to the nearest musical event.

    AIST++'s BeatAlign (Li et al. 2021) with the roles used for video: the "kinematic beats" are video
    shot boundaries, the music side is downbeats or note onsets (pass whichever). 1 = every cut on an
    event; NaN without cuts or events. sigma 0.1 s (a 16th at ~150 BPM) by default; state it in reports.
    """
    cuts = np.asarray(cut_times_s, np.float64)
    events = np.sort(np.asarray(music_times_s, np.float64))
    if len(cuts) == 0 or len(events) == 0:
        return math.nan
    j = np.clip(np.searchsorted(events, cuts), 1, len(events) - 1) if len(events) > 1 else np.zeros(len(cuts), int)
    d = np.abs(cuts - events[j])
    if len(events) > 1:
        d = np.minimum(d, np.abs(cuts - events[j - 1]))
    return float(np.exp(-(d ** 2) / (2 * sigma_s ** 2)).mean())


def beat_alignment_chance(n_cuts: int, music_times_s: Sequence[float], duration_s: float, sigma_s: float = 0.1,
                          n_draws: int = 200, seed: int = 0) -> float:
    """Expected beat_alignment_score of `n_cuts` uniformly random cuts in [0, duration_s) (seeded MC)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([beat_alignment_score(rng.uniform(0, duration_s, n_cuts), music_times_s, sigma_s)
                          for _ in range(n_draws)]))
