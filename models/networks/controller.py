"""Video controller of V-MusProd (paper sec. 4.1).

Semantic (CLIP2Video) and color (RGB-uv histogram) frame features go through separate transformer
encoders, are concatenated along time with a learned modality embedding, and a fusion encoder mixes
them. The fused sequence is the key/value memory of the Chord Transformer's cross-attention. Motion
features do not enter here: they set the tempo (`video_tempo_bpm`) that feeds the Tempo Embedding and the
Timing Encoding of the music transformers.

Feature widths come from the data (`ControllerConfig.semantic_dim`, `color_dim`); nothing assumes 512.
`use_semantic` / `use_color` switch a modality off entirely (no encoder, its input ignored): the
"w/o semantic" and "w/o color" ablations of sec. 6.4. The memory then holds only the other modality's frames.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import ModelConfig
from models.tokens import N_TIMING
from models.networks.layers import Encoder, sinusoid

SEMANTIC, COLOR = 0, 1  # modality embedding rows


def stride_index(n_frames: int, max_frames: int) -> np.ndarray:
    """Indices of at most max_frames evenly strided frames (a 3-minute video at 6 fps has 1080)."""
    if n_frames <= max_frames:
        return np.arange(n_frames)
    return np.linspace(0, n_frames - 1, max_frames).round().astype(np.int64)


def frame_bars(index: np.ndarray, n_frames: int, n_bars: int, bar_frame: np.ndarray | None = None) -> np.ndarray:
    """The bar each frame lies in: through `bar_frame` (the frame at each bar start, from the alignment
    path) where there is one, else proportionally (bars and frames spread evenly over the piece, as at
    generation, where the bars are laid at the video's tempo over its whole length)."""
    index = np.asarray(index)
    if bar_frame is not None:
        bars = np.searchsorted(np.asarray(bar_frame, dtype=np.float64), index, side="right") - 1
    else:
        bars = np.floor(index * n_bars / max(1, n_frames)).astype(np.int64)
    return np.clip(bars, 0, max(0, n_bars - 1)).astype(np.int64)


def frame_timing(index: np.ndarray, n_frames: int) -> np.ndarray:
    """Where each frame lies in the whole video, in the music's Timing Encoding buckets."""
    return np.minimum(np.asarray(index) * N_TIMING // max(1, n_frames), N_TIMING - 1).astype(np.int64)


class VideoController(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.controller
        self.modalities = [m for m, on in (("semantic", c.use_semantic), ("color", c.use_color)) if on]
        if not self.modalities:
            raise ValueError("a video controller needs semantic or color input; no video at all is video=False")
        dims = {"semantic": c.semantic_dim, "color": c.color_dim}
        if any(dims[m] <= 0 for m in self.modalities):
            raise ValueError("set controller.semantic_dim / color_dim from the data before building the model")
        self.d_model, self.input_norm = cfg.d_model, c.input_norm
        # Parameter names as before the switches (semantic_in, color_encoder, ...): old checkpoints load.
        for m in self.modalities:
            setattr(self, f"{m}_in", nn.Linear(dims[m], cfg.d_model))
            setattr(self, f"{m}_encoder", Encoder(cfg, c.n_layer_modality))
        self.modality = nn.Embedding(2, cfg.d_model)
        # Training sees windows of a video, generation the whole video: a frame's timing bucket (its
        # place in the whole video, as the music tokens' Timing Encoding) keeps the two aligned.
        self.timing = nn.Embedding(N_TIMING, cfg.d_model)
        self.fusion = Encoder(cfg, c.n_layer_fusion)

    def normalise(self, modality: str, frames: torch.Tensor) -> torch.Tensor:
        """Each frame's features on one scale: a colour histogram sums to 1 over 3,072 bins (entries ~3e-4)
        while a CLIP-like embedding has norm ~17, so unnormalised, colour reached the memory ~100x weaker
        than the position code and the chord stage learnt nothing from it (issue 14). Histograms go
        through a square root first (Hellinger), then every frame is standardised over its features.
        An all-zero "null video" frame stays zero."""
        if not self.input_norm:
            return frames
        if modality == "color":
            frames = frames.clamp(min=0).sqrt()
        return F.layer_norm(frames, frames.shape[-1:], eps=1e-8)

    def encode(self, proj: nn.Linear, encoder: Encoder, frames, valid, timing):
        pos = torch.arange(frames.shape[1], device=frames.device)
        x = proj(frames) + sinusoid(pos, self.d_model)
        return encoder(x + self.timing(timing) if timing is not None else x, valid)  # (B,T,D)

    def forward(self, semantic, semantic_valid, color, color_valid, semantic_timing=None, color_timing=None):
        # semantic (B,Ts,Ds), color (B,Tc,Dc), *_valid (B,T*) bool, *_timing (B,T*) int
        # -> memory (B,Ts+Tc,D), valid (B,Ts+Tc); a switched-off modality contributes no frames
        inputs = {"semantic": (semantic, semantic_valid, semantic_timing), "color": (color, color_valid, color_timing)}
        xs, valids = [], []
        for m in self.modalities:
            frames, valid, timing = inputs[m]
            x = self.encode(getattr(self, f"{m}_in"), getattr(self, f"{m}_encoder"), self.normalise(m, frames),
                            valid, timing)
            xs.append(x + self.modality.weight[SEMANTIC if m == "semantic" else COLOR])
            valids.append(valid)
        x, valid = torch.cat(xs, dim=1), torch.cat(valids, dim=1)
        return self.fusion(x, valid), valid
