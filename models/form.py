"""Form: which bars of a piece restate an earlier bar, learned from the training songs.

Songs repeat themselves: in the SymMV release's 30 s clips about a fifth of the melody bars restate an
earlier bar note for note (bench/results/realism.json). V-MusProd's decoders see their own past, but the
CPU-size stages never learned to copy a bar (0% repeats in 64 pieces, issue 20), so the form is planned
explicitly, as structure-aware generators do (a form plan, then the notes): the repetition pattern of a
real window of the training split is drawn for the piece, and each stage restates the source bar where the
plan says so and the stages before it agree (`models.sample.Grammar(repeat_of=...)` copies the bar's tokens
through the decoder; chords first, the melody only where the chords of both bars are equal, the
accompaniment only where chords and melody are).

`song_form(ex)`: per bar, the first earlier bar with the same content per layer (-1 = new or empty).
`FormModel`: every training song's form, stored sparse in the checkpoint folder (`form.json`);
`FormModel.sample(n_bars, rng)`: the form of a random window of that many bars of a random training song
(a repeat whose source lies before the window is new: a clip only hears itself).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

LAYERS = ("chord", "melody", "accompaniment")


def first_repeats(contents: Sequence[frozenset]) -> list[int]:
    """Per bar, the first earlier bar with equal non-empty content, else -1."""
    seen: dict[frozenset, int] = {}
    out = []
    for b, c in enumerate(contents):
        out.append(seen.get(c, -1) if c else -1)
        if c and c not in seen:
            seen[c] = b
    return out


def song_form(chords, melody, accompaniment, n_bars: int) -> dict[str, list[int]]:
    """chords: ChordEvents; melody / accompaniment: quantized Notes -> layer -> per-bar first repeat source."""
    content = {layer: defaultdict(set) for layer in LAYERS}
    for c in chords:
        content["chord"][int(c.bar)].add((int(c.position), int(c.root), str(c.quality)))
    for layer, notes in (("melody", melody), ("accompaniment", accompaniment)):
        for n in notes:
            content[layer][int(n.bar)].add((int(n.position), int(n.pitch), int(n.duration_16th or 1)))
    return {layer: first_repeats([frozenset(content[layer][b]) for b in range(n_bars)]) for layer in LAYERS}


@dataclass
class FormModel:
    # per training song: n_bars and, per layer, the [bar, source] pairs of its repeated bars
    songs: list[dict]

    @classmethod
    def fit(cls, examples) -> "FormModel":
        songs = []
        for ex in examples:
            if ex.n_bars < 2:
                continue
            form = song_form(ex.chords, ex.melody, ex.accompaniment, ex.n_bars)
            songs.append({"n_bars": ex.n_bars, **{layer: [[b, s] for b, s in enumerate(src) if s >= 0]
                                                  for layer, src in form.items()}})
        return cls(songs=songs)

    def sample(self, n_bars: int, rng: np.random.Generator) -> dict[str, dict[int, int]]:
        """layer -> {bar: earlier bar it restates} for a piece of `n_bars` bars (empty without songs)."""
        if not self.songs:
            return {layer: {} for layer in LAYERS}
        long_enough = [s for s in self.songs if s["n_bars"] >= n_bars] or self.songs
        song = long_enough[int(rng.integers(len(long_enough)))]
        start = int(rng.integers(0, max(1, song["n_bars"] - n_bars + 1)))
        return {layer: {b - start: s - start for b, s in song[layer] if start <= s and b < start + n_bars}
                for layer in LAYERS}

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), separators=(",", ":")))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "FormModel":
        return cls(**json.loads(Path(path).read_text()))
