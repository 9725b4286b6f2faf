"""Choose the meter chooser's training pieces from music21's corpus: writes
symmv/evaluation/rhythm_training_pieces.json (read by symmv.evaluation.rhythm.training_specs).

Pieces that the rhythm benchmark or the demo covers use (rhythm.scores_in_use) are left out,
so bench/fit_meter.py's held-out scores stay held out. Candidates (a seeded shuffle of Bach chorales, the
Classical quartets / sonatas and Ryan's Mammoth folk tunes) are taken until every (meter, texture) cell
holds CAP pieces: the opening time signature 2/4, 3/4, 4/4 or 6/8 (rhythm.bar_grid), at least 40 notes,
and a tempo range that keeps the excerpt >= 25 s and the fastest notes (5th percentile inter-onset) under
12 per second. Texture "melody" is one part that never strikes two notes at once. Balancing textures per
meter keeps the chooser from learning "a single line is a 6/8".

    python bench/scan_meter_training.py        # ~5-8 min (music21 parses)
"""
from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from symmv.evaluation import rhythm  # noqa: E402

METERS = ("2/4", "3/4", "4/4", "6/8")
CAP = 15  # pieces per (meter, texture)
GROUPS = {"bach": 150, "beethoven": 40, "mozart": 40, "haydn": 40, "schumann_robert": 10, "schumann_clara": 10,
          "ryansMammoth": 500}  # corpus folder -> candidates drawn from it
SEED = 7


def candidates() -> list[str]:
    from music21 import corpus

    taken = rhythm.scores_in_use()
    paths = sorted(str(p).split("/corpus/")[1] for p in corpus.getPaths())
    rng = random.Random(SEED)
    out = []
    for group, n in GROUPS.items():
        inside = [p for p in paths if p.startswith(group + "/") and p not in taken]
        rng.shuffle(inside)
        out += inside[:n]
    rng.shuffle(out)
    return out


def describe(path: str) -> dict | None:
    from music21 import corpus

    score = corpus.parse(path)
    score = score.scores[0] if hasattr(score, "scores") else score
    grid = rhythm.bar_grid(score)
    if grid.time_signature not in METERS:
        return None
    raw = rhythm.score_notes(score, grid.end_ql)
    if len(raw) < 40:
        return None
    onsets = np.array(sorted({r[0] for r in raw}))
    ioi = np.diff(onsets)
    fastest_ql = float(np.percentile(ioi[ioi > 1e-6], 5))
    lo = 50.0 if grid.beat_ql == 1 else 40.0  # dotted-quarter BPM in 6/8
    hi = min(180.0 if grid.beat_ql == 1 else 120.0, 720.0 * fastest_ql / grid.beat_ql,
             (grid.end_ql - raw[0][0]) * 60.0 / (25.0 * grid.beat_ql))
    if hi - lo < 12:
        return None
    chord = max(Counter(r[0] for r in raw).values()) > 1
    texture = "melody" if len(score.parts) == 1 and not chord else "polyphonic"
    return {"path": path, "number": None, "meter": grid.time_signature,
            "bpm_range": [round(max(lo, 0.55 * hi)), round(hi)], "texture": texture,
            "pickup_beats": round(grid.pickup_beats, 3)}


def main() -> None:
    started = time.perf_counter()
    cells: dict[tuple[str, str], list[dict]] = {}
    for n, path in enumerate(candidates()):
        try:
            row = describe(path)
        except Exception as exc:  # noqa: BLE001 - a score music21 cannot read is no candidate
            print(f"  skipped {path}: {type(exc).__name__}", flush=True)
            continue
        if row is None or len(cells.setdefault((row["meter"], row["texture"]), [])) >= CAP:
            continue
        cells[(row["meter"], row["texture"])].append(row)
        print(f"[{n + 1}] {row['meter']} {row['texture']:10s} {path}", flush=True)
        if len(cells) == 2 * len(METERS) and all(len(v) >= CAP for v in cells.values()):
            break
    pieces = sorted((r for rows in cells.values() for r in rows), key=lambda r: (r["meter"], r["path"]))
    out = Path(rhythm.TRAINING_PIECES_PATH)
    out.write_text(json.dumps({
        "made_by": "bench/scan_meter_training.py", "seed": SEED, "cap": CAP,
        "cells": {f"{m} {t}": len(v) for (m, t), v in sorted(cells.items())},
        "license": "music21 corpus scores (public domain / the corpus' terms); this list is ours",
        "pieces": pieces}, indent=1))
    print(f"wrote {out}: {len(pieces)} pieces, {json.dumps({f'{m} {t}': len(v) for (m, t), v in sorted(cells.items())})}"
          f" ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
