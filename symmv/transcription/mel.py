"""HTK mel filterbank, the one function Transkun needs from torchaudio.

Transkun 2.0.1 imports torchaudio only for `torchaudio.functional.melscale_fbanks` (in
`transkun.Util.MelSpectrum.__init__`). torchaudio wheels do not load beside our torch 2.13 CPU build, so
`torchaudio_shim()` puts a minimal module exposing this function in `sys.modules` while the model is
constructed (and restores whatever was there). The filterbank is also stored in Transkun's checkpoint
(`framewiseFeatureExtractor.freq2mels`), so the loaded weights overwrite it; the shim only has to build a
buffer of the right shape -- but it computes the same numbers: tests/test_transcription.py checks it
equals the stored buffer exactly and librosa.filters.mel(htk=True, norm=None) to float32 precision.
"""
from __future__ import annotations

import contextlib
import math
import sys
import types
from collections.abc import Iterator

import torch


def mel_to_hz_htk(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                    norm: str | None = None, mel_scale: str = "htk") -> torch.Tensor:
    """Triangular HTK mel filters, shape (n_freqs, n_mels); torchaudio.functional.melscale_fbanks' contract."""
    if mel_scale != "htk" or norm is not None:
        raise NotImplementedError("only the HTK scale without normalisation (what Transkun uses)")
    # float32 throughout, as torchaudio computes it: narrow low filters differ from a float64 build
    # (librosa) by ~1e-5, and this reproduces Transkun's stored buffer bit for bit.
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0 + f_min / 700.0)
    m_max = 2595.0 * math.log10(1.0 + f_max / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = mel_to_hz_htk(m_pts)  # (n_mels + 2,) filter edges
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


@contextlib.contextmanager
def torchaudio_shim() -> Iterator[types.ModuleType]:
    """`import torchaudio` yields a stub with `functional.melscale_fbanks` inside the block."""
    shim = types.ModuleType("torchaudio")
    shim.functional = types.SimpleNamespace(melscale_fbanks=melscale_fbanks)
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = shim
    try:
        yield shim
    finally:
        if saved is None:
            sys.modules.pop("torchaudio", None)
        else:
            sys.modules["torchaudio"] = saved
