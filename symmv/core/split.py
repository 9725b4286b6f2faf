"""Train/val/test assignment, grouped by official video.

Several covers can share one official video (the SymMV release has such entries), so the unit of
splitting is the video URL, never the song: otherwise test videos leak into training. Each group's split
comes from a seeded hash of its key alone, so a batch can assign its songs without seeing the others, the
result never depends on processing order, and adding songs never moves a video to another split.

The price of a per-key hash is that fractions hold only on average: a small dataset can end with an
empty split (the 17-video demo gets train 16 / val 1 / test 0 with seed 0). `assign_splits` repairs
exactly that case, from the set of group keys alone: when the hash leaves a split with a positive
fraction empty and there are enough groups to fill every split, groups are ranked by the same hash and
cut at the fractions (at least one group each). A large dataset never meets the condition, so its
splits stay the per-key hash; a rebuild of the same songs sees the same key set, hence the same splits.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLITS = ("train", "val", "test")


def _check(val_fraction: float, test_fraction: float) -> None:
    if not 0 <= val_fraction + test_fraction < 1 or min(val_fraction, test_fraction) < 0:
        raise ValueError("val_fraction and test_fraction must be >= 0 and sum to less than 1")


def split_hash(group: str, seed: int = 0) -> float:
    """The group's uniform draw in [0, 1): a seeded SHA-256 of its key (stable across runs and machines)."""
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:12], 16) / 16**12


def split_of(group: str, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> str:
    """"train" | "val" | "test" for one group key (e.g. the official-video URL)."""
    _check(val_fraction, test_fraction)
    u = split_hash(group, seed)
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def _rank_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(test, val) group counts for a rank cut: each positive fraction gets >= 1, train keeps >= 1."""
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    while n_test + n_val > n - 1:  # only with large fractions of few groups: shrink the larger share
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_test, n_val


def assign_splits(groups: Iterable[str], val_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 0) -> dict[str, str]:
    """Every group's split: `split_of` per key, unless that leaves a split with a positive fraction empty and
    there are enough groups (one per such split, plus one for train); then the groups sorted by `split_hash`
    go test, val, train in that order (the hash's own order, cut by rank instead of by value)."""
    _check(val_fraction, test_fraction)
    keys = sorted(set(groups))
    by_hash = {g: split_of(g, val_fraction, test_fraction, seed) for g in keys}
    wanted = {"train", *(["val"] if val_fraction > 0 else []), *(["test"] if test_fraction > 0 else [])}
    if wanted <= set(by_hash.values()) or len(keys) < len(wanted):
        return by_hash
    n_test, n_val = _rank_counts(len(keys), val_fraction, test_fraction)
    ranked = sorted(keys, key=lambda g: (split_hash(g, seed), g))
    return {g: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, g in enumerate(ranked)}


def split_overrides(groups: Iterable[str], val_fraction: float = 0.1, test_fraction: float = 0.1,
                    seed: int = 0) -> dict[str, str]:
    """The groups whose `assign_splits` split differs from their per-key hash split (empty for large datasets)."""
    assigned = assign_splits(groups, val_fraction, test_fraction, seed)
    return {g: s for g, s in sorted(assigned.items()) if s != split_of(g, val_fraction, test_fraction, seed)}
