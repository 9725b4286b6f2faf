"""Train/val/test assignment, grouped by official video.

Several covers can share one official video (the SymMV release has such entries), so the unit of
splitting is the video URL, never the song: otherwise test videos leak into training. Groups are ordered
by a seeded hash of their key and cut at exact counts, so the result depends only on the set of groups
and the seed, never on processing order.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping


def assign_splits(group_of: Mapping[str, str], val_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 0) -> dict[str, str]:
    """song_id -> "train" | "val" | "test", given song_id -> group key (e.g. the video URL)."""
    if not 0 <= val_fraction + test_fraction < 1:
        raise ValueError("val_fraction + test_fraction must be in [0, 1)")
    groups = sorted(set(group_of.values()), key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    n = len(groups)

    def count(fraction: float) -> int:  # at least one group per non-empty split once there are 3 groups
        return max(1, round(fraction * n)) if fraction > 0 and n >= 3 else round(fraction * n)

    n_test, n_val = count(test_fraction), count(val_fraction)
    split_of_group = {g: "test" if i < n_test else "val" if i < n_test + n_val else "train"
                      for i, g in enumerate(groups)}
    return {song: split_of_group[g] for song, g in sorted(group_of.items())}
