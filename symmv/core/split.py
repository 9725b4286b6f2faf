"""Train/val/test assignment, grouped by official video, with no global pass.

Several covers can share one official video (the SymMV release has such entries), so the unit of
splitting is the video URL, never the song: otherwise test videos leak into training. Each group's split
comes from a seeded hash of its key alone, so a batch can assign its songs without seeing the others, the
result never depends on processing order, and adding songs never moves a video to another split. The
price: fractions hold on average, and a small dataset can end with an empty split (the 17-video demo
builds with seed 1 for that reason).
"""
from __future__ import annotations

import hashlib


def split_of(group: str, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> str:
    """"train" | "val" | "test" for one group key (e.g. the official-video URL)."""
    if not 0 <= val_fraction + test_fraction < 1 or min(val_fraction, test_fraction) < 0:
        raise ValueError("val_fraction and test_fraction must be >= 0 and sum to less than 1")
    u = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:12], 16) / 16**12
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
