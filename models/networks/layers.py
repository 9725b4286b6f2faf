"""Transformer building blocks shared by the video controller and the three music transformers.

Pre-LayerNorm blocks (nanoGPT). Attention goes through `torch.nn.functional.scaled_dot_product_attention`;
masks are boolean with True = may attend (SDPA's convention). Causal self-attention passes `is_causal`
and never builds a (T, T) mask. `attn_impl="naive"` materialises the mask and the score matrix in fp32,
only so the benchmark can compare the two.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import ModelConfig


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool,
           impl: str = "sdpa", dropout: float = 0.0) -> torch.Tensor:
    """q (B,H,T,hd), k/v (B,H,S,hd), mask broadcastable to (B,H,T,S) -> (B,H,T,hd)."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout)
    T, S = q.shape[-2], k.shape[-2]
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B,H,T,S)
    if is_causal:
        scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    att = F.dropout(scores.softmax(-1), dropout, training=dropout > 0)
    return (att @ v.float()).to(q.dtype)


def sinusoid(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Fixed sinusoidal encoding of integer positions (...,) -> (..., d_model); works at any length."""
    half = d_model // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / half)
    angles = positions.float()[..., None] * freqs  # (..., half)
    return torch.cat([angles.sin(), angles.cos()], -1)


class Attention(nn.Module):
    """Multi-head self- or cross-attention with an optional KV cache (a dict owned by the caller)."""

    def __init__(self, cfg: ModelConfig, cross: bool):
        super().__init__()
        self.n_head, self.cross, self.impl, self.dropout = cfg.n_head, cross, cfg.attn_impl, cfg.dropout
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (B,T,D) -> (B,H,T,hd)
        B, T, D = x.shape
        return x.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)

    def forward(self, x, memory=None, mask=None, is_causal=False, cache: dict | None = None):
        B, T, D = x.shape
        q = self.split(self.q(x))
        if self.cross and cache is not None and "k" in cache:  # memory keys/values computed once
            k, v = cache["k"], cache["v"]
        else:
            k, v = (self.split(t) for t in self.kv(memory if self.cross else x).split(D, dim=-1))
            if not self.cross and cache is not None and "k" in cache:  # append this step to the past
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        dropout = self.dropout if self.training else 0.0
        y = attend(q, k, v, mask, is_causal, self.impl, dropout)  # (B,H,T,hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-LN block: self-attention, optional cross-attention, MLP."""

    def __init__(self, cfg: ModelConfig, cross: bool = False):
        super().__init__()
        d = cfg.d_model
        self.ln_self, self.self_attn = nn.LayerNorm(d), Attention(cfg, cross=False)
        self.ln_cross = nn.LayerNorm(d) if cross else None
        self.cross_attn = Attention(cfg, cross=True) if cross else None
        self.ln_mlp = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.d_ff_mult * d), nn.GELU(), nn.Linear(cfg.d_ff_mult * d, d),
                                 nn.Dropout(cfg.dropout))

    def forward(self, x, *, self_mask=None, causal=False, memory=None, cross_mask=None, cache=None):
        # x (B,T,D); memory (B,S,D); cache: {"self": {...}, "cross": {...}} during generation
        past = cache["self"].get("k") if cache is not None else None
        is_causal = causal and x.shape[1] > 1
        assert not (is_causal and past is not None), "prefill only into an empty cache"
        x = x + self.self_attn(self.ln_self(x), mask=self_mask, is_causal=is_causal,
                               cache=cache["self"] if cache is not None else None)
        if self.cross_attn is not None and memory is not None:
            x = x + self.cross_attn(self.ln_cross(x), memory=memory, mask=cross_mask,
                                    cache=cache["cross"] if cache is not None else None)
        return x + self.mlp(self.ln_mlp(x))


class Encoder(nn.Module):
    """Bidirectional encoder over (B,S,D) with a key-padding mask `valid` (B,S)."""

    def __init__(self, cfg: ModelConfig, n_layer: int):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        mask = None if valid is None or bool(valid.all()) else valid[:, None, None, :]  # (B,1,1,S)
        for block in self.blocks:
            x = block(x, self_mask=mask)
        return self.ln_f(x)
