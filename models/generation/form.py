"""Form: which bars of a piece restate an earlier bar, learned from the training songs.

Songs repeat themselves: in the SymMV release's 30 s clips about a fifth of the melody bars restate an
earlier bar note for note (bench/results/realism.json). V-MusProd's decoders see their own past, but the
CPU-size stages never learned to copy a bar (0% repeats in 64 pieces, issue 20), so the form is planned
explicitly, as structure-aware generators do (a form plan, then the notes): the repetition pattern of a
real window of the training split is drawn for the piece, and each stage restates the source bar where the
plan says so and the stages before it agree (`models.generation.sample.Grammar(repeat_of=...)` copies the bar's tokens
through the decoder). A restated tune brings its chords: the chord stage restates the bars of the chord and
melody plans; the melody stage restates the melody plan's bars note for note (where the chords agree) and the
rhythm plan's bars in rhythm (onsets and durations; its pitches sampled); the accompaniment restates the
rhythm of the bars of both plans, its pitches sampled over the bar's own chords and melody.

`song_form(ex)`: per bar, the latest earlier bar with the same content per layer (-1 = new or empty).
`FormModel`: every training song's form, stored sparse in the checkpoint folder (`form.json`);
`FormModel.sample(n_bars, rng)`: the form of a random window of that many bars of a random training song
(a repeat whose source lies before the window is new: a clip only hears itself).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models.config import JsonFile

LAYERS = ("chord", "melody", "rhythm")


def latest_repeats(contents: Sequence[frozenset]) -> list[int]:
    """Per bar, the latest earlier bar with equal non-empty content, else -1 (the latest, so that a window
    that starts after a tune's first statement still sees its later restatements)."""
    seen: dict[frozenset, int] = {}
    out = []
    for b, c in enumerate(contents):
        out.append(seen.get(c, -1) if c else -1)
        if c:
            seen[c] = b
    return out


def song_form(chords, melody, accompaniment, n_bars: int) -> dict[str, list[int]]:
    """chords: ChordEvents; melody / accompaniment: quantized Notes -> layer -> per-bar repeat source.

    Layers: "chord" (the bar's (position, root, quality) set), "melody" (its (position, pitch) set: the tune),
    "rhythm" (the onset positions of all its notes: the groove), as models/evaluation/realism.py measures repetition."""
    content = {layer: defaultdict(set) for layer in LAYERS}
    for c in chords:
        content["chord"][int(c.bar)].add((int(c.position), int(c.root), str(c.quality)))
    for n in melody:
        content["melody"][int(n.bar)].add((int(n.position), int(n.pitch)))
    for n in [*melody, *accompaniment]:
        content["rhythm"][int(n.bar)].add(int(n.position))
    return {layer: latest_repeats([frozenset(content[layer][b]) for b in range(n_bars)]) for layer in LAYERS}


@dataclass
class FormModel(JsonFile):
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

