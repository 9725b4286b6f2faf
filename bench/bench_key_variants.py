"""Why does annotators.key (Krumhansl-Kessler) agree with the release's tonality labels only ~0.74?

    .venv/bin/python -m bench.bench_key_variants              # all 999 songs, numpy variants (~1-2 min)
    .venv/bin/python -m bench.bench_key_variants --music21 200   # + music21's own MIDI parse on 200 songs
    .venv/bin/python -m bench.bench_key_variants --build-root data/symmv-release   # + the keys a build wrote

Reads the SymMV release directly (SymMV.csv tonality, midi/<index>.mid on its fixed 120 BPM grid) and scores
variants of key finding against the labels: the profile (music21's KrumhanslSchmuckler = Krumhansl-Kessler,
AardenEssen, TemperleyKostkaPayne, BellmanBudge, SimpleWeights), the weighting (duration vs onset count),
which notes (all, the skyline melody, the accompaniment), and music21's full path (converter.parse of the
MIDI, then `analyze("key")`, whose default in music21 is AardenEssen, or `analyze("krumhansl")`).
Disagreements are broken down by their relation to the label (relative, dominant, parallel, ...).
Writes bench/results/key_variants.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from annotators.key import key_correlations, parse_key_name  # noqa: F401 (the default path, for the record)
from annotators import key as key_mod
from bench.common import write_result
from symmv.core import settings
from symmv.evaluation.annotators import release_notes

RELEASE = settings.release_root()


def profiles() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from music21.analysis import discrete

    classes = {"krumhansl_kessler": discrete.KrumhanslSchmuckler, "aarden_essen": discrete.AardenEssen,
               "temperley_kostka_payne": discrete.TemperleyKostkaPayne, "bellman_budge": discrete.BellmanBudge,
               "simple_weights": discrete.SimpleWeights}
    return {name: (np.array(c().getWeights("major"), float), np.array(c().getWeights("minor"), float))
            for name, c in classes.items()}


def best_key(profile_pc: np.ndarray, major: np.ndarray, minor: np.ndarray) -> tuple[int, str]:
    rows = np.stack([np.roll(major, t) for t in range(12)] + [np.roll(minor, t) for t in range(12)])
    rows = rows - rows.mean(axis=1, keepdims=True)
    p = profile_pc - profile_pc.mean()
    r = rows @ p / (np.linalg.norm(rows, axis=1) * max(np.linalg.norm(p), 1e-12))
    tonic = np.arange(24) % 12
    best = int(np.lexsort((np.arange(24) >= 12, tonic, r))[-1])  # music21's tie rule, as annotators.key
    return best % 12, "minor" if best >= 12 else "major"


def relation(est: tuple[int, str], ref: tuple[int, str]) -> str:
    (t, m), (rt, rm) = est, ref
    d = (t - rt) % 12
    if (t, m) == (rt, rm):
        return "exact"
    if m != rm and ((rm == "major" and d == 9) or (rm == "minor" and d == 3)):
        return "relative"
    if m != rm and d == 0:
        return "parallel"
    if m == rm and d == 7:
        return "dominant"
    if m == rm and d == 5:
        return "subdominant"
    return "other"


def note_sets(notes) -> dict[str, list]:
    from annotators.quantize import constant_tempo_beats, quantize
    from annotators.skyline import skyline

    end = max(n.offset_s for n in notes)
    q = quantize(notes, constant_tempo_beats(end, 120.0))
    split = skyline(q, constant_tempo_beats(end, 120.0))
    return {"all": notes, "melody": [n for n in split if n.track == "melody"],
            "accompaniment": [n for n in split if n.track == "accompaniment"]}


def pc_profile(notes, weighting: str) -> np.ndarray:
    pitch = np.array([n.pitch for n in notes], int) % 12
    if weighting == "duration":
        w = np.array([n.offset_s - n.onset_s for n in notes])
    elif weighting == "count":
        w = np.ones(len(notes))
    elif weighting == "duration_capped_1s":  # a held pedal-less bass note does not dominate
        w = np.minimum(1.0, np.array([n.offset_s - n.onset_s for n in notes]))
    else:
        raise ValueError(weighting)
    return np.bincount(pitch, weights=w, minlength=12)


def music21_path(midi: Path, methods=("key", "krumhansl")) -> dict[str, tuple[int, str]]:
    from music21 import converter

    score = converter.parse(str(midi))
    return {m: (k.tonic.pitchClass, k.mode) for m in methods for k in [score.analyze(m)]}


def build_tables(root: Path, labels: dict) -> dict:
    """Keys of a `symmv build --source symmv-release` output: as stored in `songs`, and recomputed from its
    `notes` table with each profile: the accuracy of the data as written (issue 15, point 3)."""
    import symmv
    from annotators.quantize import quantize
    from symmv.core.records import Beat, Note
    from symmv.io.midi import read_notes

    songs = symmv.load("songs", root=str(root))
    beats = {sid: g for sid, g in symmv.load("beats", root=str(root)).groupby("song_id")}
    notes = symmv.load("notes", root=str(root), columns=["song_id", "onset_s", "offset_s", "pitch", "velocity"])
    by_song = {sid: g for sid, g in notes.groupby("song_id")}
    rows = []
    for s in songs.itertuples():
        index = s.song_id.split("-")[-1]
        if index not in labels or s.song_id not in by_song:
            continue
        g = by_song[s.song_id]
        ns = [Note(a, b, int(p), int(v)) for a, b, p, v in zip(g.onset_s, g.offset_s, g.pitch, g.velocity)]
        row = {"song": index, "label": labels[index], "stored": (int(s.key_tonic), s.key_mode)}
        for profile in ("aarden_essen", "krumhansl_kessler"):
            k = key_mod.estimate_key(ns, profile)
            row[f"{profile} on the notes table"] = (k.tonic, k.mode)
        if s.song_id in beats:  # what the build would store if the key came before the skyline cut the melody
            b = beats[s.song_id]
            grid = [Beat(float(t), int(bar), int(i)) for t, bar, i in zip(b.time_s, b.bar, b.beat_in_bar)]
            k = key_mod.estimate_key(quantize(read_notes(RELEASE / "midi" / f"{index}.mid"), grid))
            row["aarden_essen on quantized notes before the skyline"] = (k.tonic, k.mode)
        rows.append(row)
    return {"root": str(root), "n_songs": len(rows),
            **{k: agreement([r for r in rows if k in r], k)
               for k in ("stored", "aarden_essen on the notes table", "krumhansl_kessler on the notes table",
                         "aarden_essen on quantized notes before the skyline")}} if rows else {}


def agreement(rows: list[dict], key: str) -> dict:
    rel = [relation(r[key], r["label"]) for r in rows]
    counts = {k: rel.count(k) for k in ("exact", "relative", "parallel", "dominant", "subdominant", "other")}
    return {"agreement": counts["exact"] / len(rows), "n": len(rows),
            "mirex_like": (counts["exact"] + 0.5 * counts["dominant"] + 0.3 * counts["relative"]
                           + 0.2 * counts["parallel"]) / len(rows),
            "relations": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--music21", type=int, default=0, help="also run music21's own MIDI parse on N songs")
    ap.add_argument("--limit", type=int, default=0, help="only the first N songs (0: all)")
    ap.add_argument("--build-root", type=Path, default=None,
                    help="also score a `symmv build --source symmv-release` output (e.g. data/symmv-release)")
    args = ap.parse_args()
    with open(RELEASE / "SymMV.csv") as f:
        labels = {r["index"]: parse_key_name(r["tonality"]) for r in csv.DictReader(f, delimiter="\t")}
    songs = [s for s in sorted(labels) if (RELEASE / "midi" / f"{s}.mid").exists()]
    songs = songs[: args.limit] if args.limit else songs
    profs = profiles()
    t0 = time.perf_counter()
    rows = []
    for s in songs:
        notes = release_notes(RELEASE / "midi" / f"{s}.mid")
        if not notes:
            continue
        row = {"song": s, "label": labels[s], "annotator_default": (lambda k: (k.tonic, k.mode))(
            key_mod.estimate_key(notes))}
        for subset, sub_notes in note_sets(notes).items():
            if not sub_notes:
                continue
            for weighting in ("duration", "count", "duration_capped_1s"):
                pc = pc_profile(sub_notes, weighting)
                for pname, (major, minor) in profs.items():
                    row[f"{pname}|{weighting}|{subset}"] = best_key(pc, major, minor)
        rows.append(row)
    numpy_s = time.perf_counter() - t0
    variants = sorted(k for k in rows[0] if "|" in k)
    table = {"annotator_default (key.py)": agreement(rows, "annotator_default")}
    table |= {v: agreement([r for r in rows if v in r], v) for v in variants}
    m21 = {}
    if args.music21:
        t1 = time.perf_counter()
        sub = rows[:: max(1, len(rows) // args.music21)][: args.music21]
        for r in sub:
            for method, k in music21_path(RELEASE / "midi" / f"{r['song']}.mid").items():
                r[f"music21_parse|{method}"] = k
        for method in ("key", "krumhansl"):
            m21[f"music21 converter.parse + analyze({method!r})"] = agreement(sub, f"music21_parse|{method}")
        for v in ("annotator_default", "aarden_essen|duration|all", "krumhansl_kessler|duration|all"):
            m21[f"{v} (same {len(sub)} songs)"] = agreement(sub, v)
        m21["seconds"] = time.perf_counter() - t1
    built = build_tables(args.build_root, labels) if args.build_root else None
    ranked = sorted(((v["agreement"], k) for k, v in table.items()), reverse=True)
    result = {"benchmark": "key_variants", "inputs": {"release": str(RELEASE), "n_songs": len(rows),
                                                     "key_annotator": key_mod.ANNOTATOR_VERSION},
              "numpy_variants_s": numpy_s, "variants": table, "music21_path": m21,
              "build_tables": built,
              "ranked": [[round(a, 4), k] for a, k in ranked]}
    write_result("key_variants", result)
    for a, k in ranked[:12]:
        print(f"{a:.3f}  {k}  {table[k]['relations']}")
    print(json.dumps(m21, indent=1))
    print(json.dumps(built, indent=1))


if __name__ == "__main__":
    main()
