"""Video controller of V-MusProd (paper sec. 4.1).

Semantic (CLIP2Video) and color (RGB-uv histogram) frame features go through separate transformer
encoders, are concatenated along time with a learned modality embedding, and a fusion encoder mixes
them. The fused sequence is the key/value memory of the Chord Transformer's cross-attention. Motion
features do not enter here: they set the tempo (`video_tempo_bpm`) that feeds the Tempo Embedding and the
Timing Encoding of the music transformers.

Feature widths come from the data (`ControllerConfig.semantic_dim`, `color_dim`); nothing assumes 512.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from models.config import ModelConfig
from models.tokens import N_TIMING
from models.layers import Encoder, sinusoid

SEMANTIC, COLOR = 0, 1  # modality embedding rows


def stride_index(n_frames: int, max_frames: int) -> np.ndarray:
    """Indices of at most max_frames evenly strided frames (a 3-minute video at 6 fps has 1080)."""
    if n_frames <= max_frames:
        return np.arange(n_frames)
    return np.linspace(0, n_frames - 1, max_frames).round().astype(np.int64)


def frame_timing(index: np.ndarray, n_frames: int) -> np.ndarray:
    """Where each frame lies in the whole video, in the music's Timing Encoding buckets."""
    return np.minimum(np.asarray(index) * N_TIMING // max(1, n_frames), N_TIMING - 1).astype(np.int64)


class VideoController(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.controller
        if c.semantic_dim <= 0 or c.color_dim <= 0:
            raise ValueError("set controller.semantic_dim / color_dim from the data before building the model")
        self.d_model = cfg.d_model
        self.semantic_in = nn.Linear(c.semantic_dim, cfg.d_model)
        self.color_in = nn.Linear(c.color_dim, cfg.d_model)
        self.semantic_encoder = Encoder(cfg, c.n_layer_modality)
        self.color_encoder = Encoder(cfg, c.n_layer_modality)
        self.modality = nn.Embedding(2, cfg.d_model)
        # Training sees windows of a video, generation the whole video: a frame's timing bucket (its
        # place in the whole video, as the music tokens' Timing Encoding) keeps the two aligned.
        self.timing = nn.Embedding(N_TIMING, cfg.d_model)
        self.fusion = Encoder(cfg, c.n_layer_fusion)

    def encode(self, proj: nn.Linear, encoder: Encoder, frames, valid, timing):
        pos = torch.arange(frames.shape[1], device=frames.device)
        x = proj(frames) + sinusoid(pos, self.d_model)
        return encoder(x + self.timing(timing) if timing is not None else x, valid)  # (B,T,D)

    def forward(self, semantic, semantic_valid, color, color_valid, semantic_timing=None, color_timing=None):
        # semantic (B,Ts,Ds), color (B,Tc,Dc), *_valid (B,T*) bool, *_timing (B,T*) int
        # -> memory (B,Ts+Tc,D), valid (B,Ts+Tc)
        s = self.encode(self.semantic_in, self.semantic_encoder, semantic, semantic_valid, semantic_timing)
        c = self.encode(self.color_in, self.color_encoder, color, color_valid, color_timing)
        x = torch.cat([s + self.modality.weight[SEMANTIC], c + self.modality.weight[COLOR]], dim=1)
        valid = torch.cat([semantic_valid, color_valid], dim=1)
        return self.fusion(x, valid), valid
