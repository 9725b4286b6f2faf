"""Chord, Melody and Accompaniment Transformers of V-MusProd (paper sec. 4.2).

All three are decoders over compound tokens (`models.tokens`): the token embedding is the sum of one
embedding per attribute plus the Bar, Beat, Tempo and Timing embeddings and a sinusoidal position; the
output has one head per attribute, the non-type heads conditioned on the (teacher-forced or sampled)
type as in CP Transformer [21]. They differ only in what the decoder cross-attends:

- ChordTransformer: the video controller's fused semantic+color memory; with `video=False` there is no
  cross-attention at all (unconditional setting, sec. 6.5).
- NoteTransformer (melody and accompaniment): an encoder over the condition tokens (chords, or chords +
  melody), through the bar-level mask: a decoder token attends only encoder tokens of the previous,
  current and next bar.

The Table 2 ablations (sec. 6.4) reuse the two classes with another decoder stream: stage "music"
(Video2music; unconditional, the CMT-style baseline's model) is a ChordTransformer whose tokens are
chords and all notes; stage "notes" (Video2chord2music) a NoteTransformer over the chords whose tokens
are melody and accompaniment notes together. `timing_encoding=False` drops the Timing Encoding (w/o motion).

The paper uses linear attention [26] for speed; we use exact attention through SDPA.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import tokens as tk
from models.config import ModelConfig
from models.networks.controller import VideoController
from models.networks.layers import Block, Encoder, sinusoid

N_BEAT = 1 + tk.STEPS_PER_BAR


@dataclass
class Context:
    """What the decoder cross-attends: memory (B,S,D), its padding `valid` (B,S), and for the
    bar-level mask the bar of every memory token (B,S) (None = no bar mask) and its reach in bars."""

    memory: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    bars: torch.Tensor | None = None
    reach: int = 1


class TokenEmbedding(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.d_model, self.max_bars = cfg.d_model, cfg.max_bars
        self.attributes = nn.ModuleList(nn.Embedding(tk.VOCAB[a], cfg.d_model) for a in tk.ATTRIBUTES)
        self.bar = nn.Embedding(cfg.max_bars, cfg.d_model)
        self.beat = nn.Embedding(N_BEAT, cfg.d_model)
        self.tempo = nn.Embedding(tk.N_TEMPO, cfg.d_model)
        self.timing = nn.Embedding(tk.N_TIMING, cfg.d_model) if cfg.timing_encoding else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        # tokens (B,T,len(FIELDS)) int64 -> (B,T,D)
        x = sum(emb(tokens[..., i]) for i, emb in enumerate(self.attributes))
        x = x + self.bar(tokens[..., tk.F["bar"]].clamp(0, self.max_bars - 1))
        x = x + self.beat(tokens[..., tk.F["beat"]]) + self.tempo(tokens[..., tk.F["tempo"]])
        if self.timing is not None:  # w/o motion: no Timing Encoding (sec. 6.4)
            x = x + self.timing(tokens[..., tk.F["timing"]])
        pos = torch.arange(start_pos, start_pos + tokens.shape[1], device=tokens.device)
        return self.drop(x + sinusoid(pos, self.d_model))


class AttributeHeads(nn.Module):
    """Type head on the hidden state; the other heads on hidden + embedding of the token's type."""

    def __init__(self, d_model: int):
        super().__init__()
        self.type_head = nn.Linear(d_model, tk.VOCAB["type"])
        self.type_condition = nn.Embedding(tk.VOCAB["type"], d_model)
        self.heads = nn.ModuleDict({a: nn.Linear(d_model, tk.VOCAB[a]) for a in tk.ATTRIBUTES[1:]})

    def attribute_logits(self, h: torch.Tensor, types: torch.Tensor) -> dict[str, torch.Tensor]:
        g = h + self.type_condition(types)
        return {a: head(g) for a, head in self.heads.items()}

    def forward(self, h: torch.Tensor, types: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"type": self.type_head(h), **self.attribute_logits(h, types)}


def compound_loss(logits: dict[str, torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over attributes of the cross-entropy on the tokens whose type uses that attribute.

    logits: attr -> (B,T,V); targets (B,T,6) attribute values. PAD targets count for nothing.
    """
    used = torch.as_tensor(tk.ATTRIBUTES_USED, device=targets.device)[targets[..., 0]]  # (B,T,6)
    total, parts = targets.new_zeros((), dtype=torch.float32), {}
    for i, attr in enumerate(tk.ATTRIBUTES):
        m = used[..., i]
        if m.any():
            ce = F.cross_entropy(logits[attr][m].float(), targets[..., i][m])
            total = total + ce
            parts[attr] = float(ce.detach())
    return total, parts


def bar_cross_mask(query_bars: torch.Tensor, key_bars: torch.Tensor, key_valid: torch.Tensor,
                   reach: int = 1) -> torch.Tensor:
    """(B,T), (B,S), (B,S) -> (B,1,T,S) bool: decoder token of bar b sees encoder bars b-reach .. b+reach.

    A query with no encoder token in reach (it cannot happen for well-formed sequences, whose encoder
    has a Bar token per bar) sees every valid key instead of producing NaNs.
    """
    mask = ((query_bars[:, :, None] - key_bars[:, None, :]).abs() <= reach) & key_valid[:, None, :]
    mask = mask | (~mask.any(-1, keepdim=True) & key_valid[:, None, :])
    return mask[:, None]


def new_cache(n_layer: int) -> list[dict]:
    return [{"self": {}, "cross": {}} for _ in range(n_layer)]


class CompoundDecoder(nn.Module):
    """Shared decoder: embedding, blocks with optional cross-attention, attribute heads."""

    def __init__(self, cfg: ModelConfig, cross: bool):
        super().__init__()
        self.cfg = cfg
        self.embed = TokenEmbedding(cfg)
        self.blocks = nn.ModuleList(Block(cfg, cross=cross) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.heads = AttributeHeads(cfg.d_model)

    def context(self, batch: dict) -> Context:
        raise NotImplementedError

    def decode(self, tokens: torch.Tensor, ctx: Context, cache: list[dict] | None = None,
               start_pos: int = 0) -> torch.Tensor:
        # tokens (B,T,F) -> hidden (B,T,D); causal self-attention, cross-attention to ctx.memory
        cross_mask = None
        if ctx.memory is not None and ctx.bars is not None:
            cross_mask = bar_cross_mask(tokens[..., tk.F["bar"]], ctx.bars, ctx.valid, ctx.reach)
        elif ctx.memory is not None and not bool(ctx.valid.all()):
            cross_mask = ctx.valid[:, None, None, :]  # key padding only
        x = self.embed(tokens, start_pos)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, memory=ctx.memory, cross_mask=cross_mask,
                      cache=cache[i] if cache is not None else None)
        return self.ln_f(x)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher forcing: predict tokens[:, 1:] from tokens[:, :-1]. Returns (loss, per-attribute CE)."""
        tokens = batch["tokens"]  # (B,T,F)
        h = self.decode(tokens[:, :-1], self.context(batch))  # (B,T-1,D)
        logits = self.heads(h, tokens[:, 1:, 0])
        return compound_loss(logits, tokens[:, 1:, : len(tk.ATTRIBUTES)])


class ChordTransformer(CompoundDecoder):
    """Chord Transformer, and the one-decoder Video2music / unconditional "music" model (same wiring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, cross=cfg.video)
        self.controller = VideoController(cfg) if cfg.video else None

    def context(self, batch: dict) -> Context:
        if self.controller is None:
            return Context()
        memory, valid = self.controller(batch["semantic"], batch["semantic_valid"], batch["color"],
                                        batch["color_valid"], batch.get("semantic_timing"), batch.get("color_timing"))
        reach = self.cfg.controller.bar_reach
        if reach < 0 or any(f"{m}_bars" not in batch for m in self.controller.modalities):
            return Context(memory=memory, valid=valid)
        # the memory is the modalities' frames in controller order: their bars in the same order
        bars = torch.cat([batch[f"{m}_bars"] for m in self.controller.modalities], dim=1)
        return Context(memory=memory, valid=valid, bars=bars, reach=reach)


class NoteTransformer(CompoundDecoder):
    """Melody (condition = chords), Accompaniment (chords + melody) or Video2chord2music's "notes"
    (condition = chords, decoder = melody + accompaniment) Transformer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, cross=True)
        self.encoder = Encoder(cfg, cfg.n_enc_layer)

    def context(self, batch: dict) -> Context:
        cond = batch["cond_tokens"]  # (B,S,F), shares the decoder's token embedding
        valid = cond[..., 0] != tk.PAD
        memory = self.encoder(self.embed(cond), valid)  # (B,S,D)
        return Context(memory=memory, valid=valid, bars=cond[..., tk.F["bar"]])


def build_model(cfg: ModelConfig) -> CompoundDecoder:
    return NoteTransformer(cfg) if cfg.encoder_decoder else ChordTransformer(cfg)
