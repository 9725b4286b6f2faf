"""Semantic encoder registry: the offline EfficientNet-Lite0 and CLIP's clear errors when it cannot load."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from symmv.features.encoders import (
    ENCODERS,
    ClipEncoder,
    EncoderUnavailable,
    find_clip_checkpoint,
    make_encoder,
    provenance,
)


@pytest.fixture(scope="module")
def lite0():
    return make_encoder("efficientnet-lite0")


def test_registry():
    assert set(ENCODERS) == {"clip", "efficientnet-lite0"}
    with pytest.raises(ValueError, match="unknown semantic encoder"):
        make_encoder("resnet")


def test_efficientnet_shapes_and_provenance(lite0):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 120, 160, 3), dtype=np.uint8)  # any size: short side -> 224, crop
    out = lite0.encode(frames)
    assert out.shape == (2, 1280) == (2, lite0.dim) and out.dtype == np.float32
    assert np.isfinite(out).all() and not np.allclose(out[0], out[1])
    assert provenance(lite0) == "efficientnet-lite0 0.1.0+57934424"
    assert lite0.encode(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 1280)
    with pytest.raises(ValueError):
        lite0.encode(np.zeros((1, 224, 224), np.uint8))


def test_efficientnet_weights_are_the_imagenet_ones(lite0):
    # the pooled features feed the pretrained classifier: a daisy photo must come out as "daisy" (985)
    spec = importlib.util.find_spec("sklearn")  # its sample photo, without importing all of sklearn
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "images" / "flower.jpg" if spec else None
    if path is None or not path.is_file():
        pytest.skip("scikit-learn's flower.jpg sample image is not installed")
    flower = np.asarray(Image.open(path).convert("RGB"))[None]
    feats = torch.from_numpy(lite0.encode(flower))
    logits = lite0.model._fc(feats)
    assert int(logits.argmax()) == 985


def test_clip_without_checkpoint_raises(monkeypatch):
    monkeypatch.delenv("SYMMV_CLIP_CHECKPOINT", raising=False)
    with pytest.raises(EncoderUnavailable, match="SYMMV_CLIP_CHECKPOINT"):
        make_encoder("clip")


def test_clip_missing_paths_raise(tmp_path):
    with pytest.raises(EncoderUnavailable, match="does not exist"):
        ClipEncoder(checkpoint=tmp_path / "nope.bin")
    with pytest.raises(EncoderUnavailable, match="no open_clip checkpoint"):
        ClipEncoder(checkpoint=tmp_path)  # empty "hub cache"


def test_find_checkpoint_in_hub_cache_layout(tmp_path):
    snap = tmp_path / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"x")
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    assert find_clip_checkpoint(tmp_path) == snap / "open_clip_model.safetensors"  # safetensors preferred


def test_clip_reports_missing_open_clip(tmp_path):
    try:
        import open_clip  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("open_clip imports here; this test covers machines where it cannot")
    ckpt = tmp_path / "open_clip_pytorch_model.bin"
    ckpt.write_bytes(b"not loaded")
    with pytest.raises(EncoderUnavailable, match="open_clip"):
        ClipEncoder(checkpoint=ckpt)
