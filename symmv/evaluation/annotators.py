"""Accuracy of the symbolic annotators against references nobody here wrote, and agreement with the
reference implementations they replace.

    python -m symmv.evaluation.annotators --out results.json [--release DIR] [--limit N] [--tables ROOT]

`--tables ROOT` (a build of the release: `symmv build --source symmv-release ...`) also measures the tables
that build wrote, read through `symmv.load` as a user reads them -- keys as stored in `songs`, the `chords`
table on the beats of the build's `beats` table -- beside the reference-grid figures of the same songs (the
annotators re-run on the release's own 120-BPM grid), writes them to ROOT/annotator_accuracy.json and
re-renders ROOT/README.md, the build's data card, which reports them (`symmv card --root ROOT` refreshes the
copy under data_cards/).

Keys
- SymMV release tonality labels (SymMV.csv, music21 spelling) over the release MIDI. These labels were
  themselves produced by Krumhansl-Schmuckler (paper sec. 3.2), so they measure reproduction, not truth.
- music21 corpus pieces whose key a person stated: titles ("... in F Major", first/last movements only)
  and the key at the start of the Roman-numeral analyses of Bach chorales (choraleAnalyses/*.rntxt).
  Scored exact and MIREX-style weighted (same 1, fifth 0.5, relative 0.3, parallel 0.2).
- agreement with music21's KrumhanslSchmuckler on the same notes (song and corpus items).
Chords (per beat, the label active at the beat's midpoint)
- SymMV release chord files (noisy: 0.5 s grid = one beat at the release's fixed 120 BPM, roots Bb/Eb
  never occur, unlabelled stretches are skipped).
- Roman-numeral analyses of Bach chorales (root + quality of each numeral) and chord symbols of the
  music21 lead sheets (leadSheet/, nottingham-dataset/); chord symbols are removed from the input notes.
- agreement with chorder 0.1.4 run on miditoolkit objects (the reference path), per beat.

The reference helpers here (music21 stream, chorder via miditoolkit, naive skyline) are shared with the
tests and bench/bench_symbolic.py.
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from annotators import chords as chords_mod
from annotators import key as key_mod
from annotators.chords import CHORDER_TO_SYMMV, Chord, chords
from annotators.key import estimate_key, parse_key_name
from annotators.quantize import constant_tempo_beats
from symmv.card.writer import BUILD_ACCURACY_JSON, write_card
from symmv.core import settings
from symmv.core.records import Note

RELEASE_TICKS_PER_BEAT = 220  # SymMV release MIDI: 220 tpq at a fixed 120 BPM, so 1 s = 440 ticks
RELEASE_TEMPO_BPM = 120.0
DEFAULT_RELEASE = str(settings.release_root())

# Pieces whose key the composer/editor states in the title; only movements in that key (first/last).
TITLED_KEYS = {
    "beethoven/opus18no1/movement1": "F major",
    "beethoven/opus18no1/movement4": "F major",
    "mozart/k80/movement1": "G major",
    "mozart/k155/movement1": "D major",
    "chopin/mazurka06-2": "c# minor",
}
CHORALE_ANALYSES = [f"bach/choraleAnalyses/riemenschneider{i:03d}.rntxt" for i in range(1, 21)]
LEAD_SHEETS = ["leadSheet/berlinAlexandersRagtime.mxl", "leadSheet/fosterBrownHair.mxl",
               "nottingham-dataset/reelsa-c.abc"]


# ---------------------------------------------------------------------------------------------- inputs
def release_notes(midi_path: str | Path) -> list[Note]:
    """Notes of a SymMV release MIDI (all tracks), seconds on its fixed 120 BPM grid."""
    import miditoolkit

    midi = miditoolkit.MidiFile(str(midi_path))
    scale = RELEASE_TEMPO_BPM / 60.0 * midi.ticks_per_beat
    return sorted(
        (Note(n.start / scale, n.end / scale, n.pitch, max(1, n.velocity))
         for inst in midi.instruments if not inst.is_drum for n in inst.notes),
        key=lambda n: (n.onset_s, n.pitch),
    )


def music21_notes(score, tempo_bpm: float = RELEASE_TEMPO_BPM) -> list[Note]:
    """Notes of a music21 score at a constant tempo (quarter note = beat). Chord symbols, grace notes,
    rests and unpitched notes are dropped; ties are merged."""
    from music21 import harmony, note

    sec = 60.0 / tempo_bpm
    out = []
    for el in score.stripTies().flatten().notes:
        if isinstance(el, harmony.ChordSymbol) or isinstance(el, note.Unpitched) or el.quarterLength <= 0:
            continue
        onset, dur = float(el.offset) * sec, float(el.quarterLength) * sec
        out += [Note(onset, onset + dur, int(p.midi), 80) for p in el.pitches]
    return sorted(out, key=lambda n: (n.onset_s, n.pitch))


# ------------------------------------------------------------------------------------ reference paths
def music21_key(notes: Sequence[Note], tempo_bpm: float = RELEASE_TEMPO_BPM) -> tuple[int, str, float]:
    """music21's KrumhanslSchmuckler on a stream built from the notes (quarterLength = beats)."""
    from music21 import note, stream

    s = stream.Stream()
    per_s = tempo_bpm / 60.0
    for n in notes:
        s.insert(n.onset_s * per_s, note.Note(n.pitch, quarterLength=(n.offset_s - n.onset_s) * per_s))
    k = s.analyze("key.krumhanslschmuckler")
    return k.tonic.pitchClass, k.mode, float(k.correlationCoefficient)


def chorder_beat_labels(
    notes: Sequence[Note], ticks_per_beat: int = RELEASE_TICKS_PER_BEAT, tempo_bpm: float = RELEASE_TEMPO_BPM
) -> list[tuple[int, str, int]]:
    """chorder's Dechorder.dechord on a miditoolkit object built from the notes, per beat, mapped to the
    SymMV vocabulary: (root or -1, quality or 'N/X', bass or -1). chorder cannot tell N from X."""
    import miditoolkit
    from chorder import Dechorder

    midi = miditoolkit.MidiFile()
    midi.ticks_per_beat = ticks_per_beat
    inst = miditoolkit.Instrument(program=0, is_drum=False, name="piano")
    scale = tempo_bpm / 60.0 * ticks_per_beat
    inst.notes = [miditoolkit.Note(velocity=n.velocity, pitch=n.pitch, start=int(round(n.onset_s * scale)),
                                   end=int(round(n.offset_s * scale))) for n in notes]
    midi.instruments.append(inst)
    midi.max_tick = max(n.end for n in inst.notes) if inst.notes else 0
    out = []
    for c in Dechorder.dechord(midi):
        if c.root_pc is None:
            out.append((-1, "N/X", -1))
        else:
            out.append((c.root_pc, CHORDER_TO_SYMMV[c.quality], -1 if c.bass_pc is None else c.bass_pc))
    return out


def naive_skyline(notes: Sequence[Note], tempo_bpm: float = RELEASE_TEMPO_BPM) -> list[Note]:
    """Straightforward Python quantize + skyline on a constant-tempo grid (the bench's reference path):
    the same rules as annotators.skyline, written as plain loops over note objects."""
    from dataclasses import replace

    per_16th = 60.0 / tempo_bpm / 4
    quantized = []
    for n in notes:
        on = int(n.onset_s / per_16th + 0.5)
        off = int(n.offset_s / per_16th + 0.5)
        quantized.append(replace(n, bar=on // 16, position=on % 16, duration_16th=max(1, off - on)))
    by_slot: dict[int, list[Note]] = {}
    for n in quantized:
        by_slot.setdefault(n.bar * 16 + n.position, []).append(n)
    out, melody_end, melody_pitch, current = [], -1, -1, None
    for slot in sorted(by_slot):
        group = sorted(by_slot[slot], key=lambda n: (-n.pitch, -n.duration_16th, -n.velocity, n.onset_s))
        kept = [n for i, n in enumerate(group) if i == 0 or n.pitch != group[i - 1].pitch]
        top = kept[0]
        if slot >= melody_end or top.pitch >= melody_pitch:
            if current is not None and slot < melody_end:
                i, n = current
                out[i] = replace(n, duration_16th=slot - (n.bar * 16 + n.position),
                                 offset_s=min(n.offset_s, top.onset_s))
            current = (len(out), replace(top, track="melody"))
            out.append(current[1])
            melody_end, melody_pitch = slot + top.duration_16th, top.pitch
            kept = kept[1:]
        out += [replace(n, track="accompaniment") for n in kept]
    return out


# ------------------------------------------------------------------------------------------- scoring
def mirex_key_score(est: tuple[int, str], ref: tuple[int, str]) -> float:
    """MIREX key weighting: same 1, perfect fifth (either way, same mode) 0.5, relative 0.3, parallel 0.2."""
    (et, em), (rt, rm) = est, ref
    if (et, em) == (rt, rm):
        return 1.0
    if em == rm and (et - rt) % 12 in (5, 7):
        return 0.5
    if em != rm and ((em == "minor" and (et - rt) % 12 == 9) or (em == "major" and (et - rt) % 12 == 3)):
        return 0.3
    if em != rm and et == rt:
        return 0.2
    return 0.0


def _key_summary(pairs: list[tuple[tuple[int, str], tuple[int, str]]]) -> dict:
    if not pairs:
        return {"n": 0}
    scores = [mirex_key_score(e, r) for e, r in pairs]
    return {
        "n": len(pairs),
        "exact": float(np.mean([e == r for e, r in pairs])),
        "mirex_weighted": float(np.mean(scores)),
        "fifth": float(np.mean([s == 0.5 for s in scores])),
        "relative": float(np.mean([s == 0.3 for s in scores])),
        "parallel": float(np.mean([s == 0.2 for s in scores])),
    }


QUALITY_BY_INTERVALS = {
    (0, 4, 7): "M", (0, 3, 7): "m", (0, 3, 6): "o", (0, 4, 8): "+", (0, 4, 7, 10): "7", (0, 4, 7, 11): "M7",
    (0, 3, 7, 10): "m7", (0, 3, 6, 9): "o7", (0, 3, 6, 10): "o", (0, 2, 7): "sus2", (0, 5, 7): "sus4",
}


def quality_of(root_pc: int, pitch_classes) -> str | None:
    """Our vocabulary's quality for a chord given as root + pitch classes (None: outside the vocabulary)."""
    return QUALITY_BY_INTERVALS.get(tuple(sorted({(pc - root_pc) % 12 for pc in pitch_classes})))


def parse_chord_label(label: str) -> tuple[int, str]:
    """'C#m7' / 'BbM' / 'Asus4' -> (root pc, quality)."""
    root_len = 2 if len(label) > 1 and label[1] in "#b" else 1
    root, quality = label[:root_len], label[root_len:]
    if quality not in chords_mod.QUALITIES:
        raise ValueError(f"unknown chord label {label!r}")
    return parse_key_name(f"{root} major")[0], quality


def beat_labels(chord_items: Sequence[Chord]) -> list[tuple[int, str]]:
    """Per-beat (root, quality) of unmerged chords."""
    return [(c.root, c.quality) for c in chord_items]


def _chord_scores(est: list[tuple[int, str]], ref: list[tuple[int, str] | None]) -> dict:
    pairs = [(e, r) for e, r in zip(est, ref) if r is not None]
    if not pairs:
        return {"n_beats": 0}
    return {
        "n_beats": len(pairs),
        "root": float(np.mean([e[0] == r[0] for e, r in pairs])),
        "quality": float(np.mean([e[1] == r[1] for e, r in pairs])),
        "root_and_quality": float(np.mean([e == r for e, r in pairs])),
        "estimate_no_chord": float(np.mean([e[0] < 0 for e, _ in pairs])),
    }


def release_chord_reference(path: Path, n_beats: int) -> list[tuple[int, str] | None]:
    """Label active at each beat's midpoint in a release chord file (None where unlabelled)."""
    ref: list[tuple[int, str] | None] = [None] * n_beats
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) != 3:
            continue
        start, end, label = int(parts[0]), int(parts[1]), parts[2]
        first = max(0, -(-(start - RELEASE_TICKS_PER_BEAT // 2) // RELEASE_TICKS_PER_BEAT))
        for b in range(first, n_beats):
            mid = b * RELEASE_TICKS_PER_BEAT + RELEASE_TICKS_PER_BEAT // 2
            if mid >= end:
                break
            if mid >= start:
                ref[b] = parse_chord_label(label)
    return ref


def _song_beats(notes: Sequence[Note]):
    return constant_tempo_beats(max(n.offset_s for n in notes), RELEASE_TEMPO_BPM)


def _chorder_agreement(mine: list[Chord], ref: list[tuple[int, str, int]]) -> tuple[int, int]:
    n = min(len(mine), len(ref))
    extra = abs(len(mine) - len(ref))  # beats only one side has count as disagreement
    same = sum(
        (c.root, c.quality if c.root >= 0 else "N/X", c.bass) == r for c, r in zip(mine[:n], ref[:n])
    )
    return same, n + extra


# ----------------------------------------------------------------------------------------- evaluation
def eval_release(release: Path, limit: int | None, music21_every: int, indexes: set[str] | None = None) -> dict:
    rows = list(csv.DictReader(open(release / "SymMV.csv"), delimiter="\t"))
    rows = [r for r in rows if (release / "midi" / f"{r['index']}.mid").exists()
            and (indexes is None or r["index"] in indexes)][:limit]
    key_pairs, m21_pairs, m21_vs_label = [], [], []
    chord_est, chord_ref, agree, total = [], [], 0, 0
    failures = []
    for i, row in enumerate(rows):
        notes = release_notes(release / "midi" / f"{row['index']}.mid")
        try:
            k = estimate_key(notes)
        except ValueError as e:
            failures.append({"index": row["index"], "error": str(e)})
            continue
        label = parse_key_name(row["tonality"])
        key_pairs.append(((k.tonic, k.mode), label))
        if music21_every and i % music21_every == 0:
            t, m, _ = music21_key(notes)
            m21_pairs.append(((k.tonic, k.mode), (t, m)))
            m21_vs_label.append(((t, m), label))
        mine = chords(notes, _song_beats(notes), merge=False, ticks_per_beat=RELEASE_TICKS_PER_BEAT)
        chord_est += beat_labels(mine)
        chord_ref += release_chord_reference(release / "chord" / f"{row['index']}.txt", len(mine))
        if music21_every and i % music21_every == 0:
            s, n = _chorder_agreement(mine, chorder_beat_labels(notes))
            agree, total = agree + s, total + n
    return {
        "n_songs": len(rows),
        "failures": failures,
        "key_vs_release_labels": _key_summary(key_pairs),
        "key_agreement_with_music21_ks": _key_summary(m21_pairs),
        "music21_ks_vs_release_labels": _key_summary(m21_vs_label),
        "chords_vs_release_chord_files": _chord_scores(chord_est, chord_ref),
        "chord_agreement_with_chorder": {"songs_every": music21_every, "beats": total,
                                         "agreement": agree / total if total else None},
    }


def chord_at(chord_rows, times_s: np.ndarray) -> list[tuple[int, str]]:
    """(root, quality) of the chords-table row active at each time ((-1, "N") where none is)."""
    starts, ends = chord_rows["start_s"].to_numpy(), chord_rows["end_s"].to_numpy()
    order = np.argsort(starts)
    starts, ends = starts[order], ends[order]
    roots, qualities = chord_rows["root"].to_numpy()[order], chord_rows["quality"].to_numpy()[order]
    i = np.searchsorted(starts, times_s, side="right") - 1
    return [(int(roots[k]), str(qualities[k])) if k >= 0 and t < ends[k] else (-1, "N") for k, t in zip(i, times_s)]


def release_label_at(path: Path, times_s: np.ndarray) -> list[tuple[int, str] | None]:
    """The release chord file's label active at each time (None where unlabelled); 1 s = 440 ticks."""
    spans = []
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            spans.append((int(parts[0]), int(parts[1]), parse_chord_label(parts[2])))
    ticks = np.asarray(times_s) * RELEASE_TEMPO_BPM / 60.0 * RELEASE_TICKS_PER_BEAT
    return [next((label for a, b, label in spans if a <= t < b), None) for t in ticks]


def eval_tables(root: Path, release: Path) -> dict:
    """Keys as stored and the chords table on the build's own beats, against the release's labels.

    Per beat of the `beats` table, the chords-table row active at the beat's midpoint is compared with the
    release chord file's label active at the same instant (the build reads the release MIDI on its own clock,
    so seconds match). Songs are the build's (`cover_id` = symmv-<index>)."""
    from symmv.core.shards import load

    songs, chords_t, beats = load("songs", root=root), load("chords", root=root), load("beats", root=root)
    labels = {r["index"]: r["tonality"] for r in csv.DictReader(open(release / "SymMV.csv"), delimiter="\t")}
    index_of = {r.song_id: r.cover_id.removeprefix("symmv-") for r in songs.itertuples()}
    keyed = songs.dropna(subset=["key_tonic"])
    key_pairs = [((int(r.key_tonic), str(r.key_mode)), parse_key_name(labels[index_of[r.song_id]]))
                 for r in keyed.itertuples() if labels.get(index_of[r.song_id])]
    chords_by_song, beats_by_song = dict(tuple(chords_t.groupby("song_id"))), dict(tuple(beats.groupby("song_id")))
    est, ref, beat_s = [], [], []
    for sid, index in index_of.items():
        chord_file = release / "chord" / f"{index}.txt"
        if sid not in beats_by_song or sid not in chords_by_song or not chord_file.is_file():
            continue
        times = np.sort(beats_by_song[sid]["time_s"].to_numpy())
        if len(times) < 2:
            continue
        mids = (times[:-1] + times[1:]) / 2
        est += chord_at(chords_by_song[sid], mids)
        ref += release_label_at(chord_file, mids)
        beat_s.append(float(np.median(np.diff(times))))
    return {
        "n_songs": len(songs),
        "keys_as_stored_vs_release_labels": _key_summary(key_pairs),
        "chords_on_build_beats_vs_release_chord_files": _chord_scores(est, ref),
        "median_build_beat_s": float(np.median(beat_s)) if beat_s else None,
        "reference_grid_same_songs": eval_release(release, None, 0, indexes=set(index_of.values())),
    }


def _rntxt_reference(path: str):
    """(score notes, analyst's opening key, per-beat (root, quality) or None) of a chorale analysis."""
    from music21 import corpus, roman

    analysis = corpus.parse(path)
    bwv = next(line.split(":", 1)[1].strip() for line in open(corpus.getWork(path)) if line.startswith("BWV"))
    score = corpus.parse(f"bach/bwv{bwv}")
    numerals = list(analysis.flatten().getElementsByClass(roman.RomanNumeral))
    first_key = numerals[0].key
    return score, (first_key.tonic.pitchClass, first_key.mode), numerals


def _active_labels(symbols, n_beats: int) -> list[tuple[int, str] | None]:
    """Per-beat label of chord-like music21 objects (RomanNumeral / ChordSymbol), held until the next one."""
    starts = [float(s.offset) for s in symbols]
    ref: list[tuple[int, str] | None] = []
    for b in range(n_beats):
        i = int(np.searchsorted(starts, b + 0.5, side="right")) - 1
        if i < 0:
            ref.append(None)
            continue
        s = symbols[i]
        root = s.root().pitchClass
        q = quality_of(root, [p.pitchClass for p in s.pitches])
        ref.append((root, q) if q else None)
    return ref


def eval_corpus() -> dict:
    from music21 import corpus, harmony

    out: dict = {}
    pairs, m21, items = [], [], []
    for path, label in TITLED_KEYS.items():
        notes = music21_notes(corpus.parse(path))
        k = estimate_key(notes)
        t, m, _ = music21_key(notes)
        ref = parse_key_name(label)
        pairs.append(((k.tonic, k.mode), ref))
        m21.append(((k.tonic, k.mode), (t, m)))
        items.append({"piece": path, "label": label, "estimate": k.name, "music21": key_mod.key_name(t, m)})
    out["key_titled_pieces"] = _key_summary(pairs) | {"items": items}

    pairs_rn, est_c, ref_c, agree, total = [], [], [], 0, 0
    skipped = []
    for path in CHORALE_ANALYSES:
        try:
            score, ref_key, numerals = _rntxt_reference(path)
        except Exception as e:  # e.g. "BWV: 248(2).12" has no score in music21's corpus
            skipped.append(f"{path}: {type(e).__name__}")
            continue
        notes = music21_notes(score)
        k = estimate_key(notes)
        t, m, _ = music21_key(notes)
        pairs_rn.append(((k.tonic, k.mode), ref_key))
        m21.append(((k.tonic, k.mode), (t, m)))
        mine = chords(notes, _song_beats(notes), merge=False, ticks_per_beat=480)
        est_c += beat_labels(mine)
        # analysis and score both flatten a pickup measure to offset 0, so offsets align as they are
        ref_c += _active_labels(numerals, len(mine))
        s, n = _chorder_agreement(mine, chorder_beat_labels(notes, ticks_per_beat=480))
        agree, total = agree + s, total + n
    out["key_bach_chorale_analyses"] = _key_summary(pairs_rn) | {"skipped": skipped}
    out["key_agreement_with_music21_ks"] = _key_summary(m21)
    out["chords_vs_bach_roman_numerals"] = _chord_scores(est_c, ref_c)

    est_l, ref_l = [], []
    for path in LEAD_SHEETS:
        parsed = corpus.parse(path)
        for score in getattr(parsed, "scores", [parsed]):
            notes = music21_notes(score)
            if not notes:
                continue
            symbols = [c for c in score.flatten().getElementsByClass(harmony.ChordSymbol)
                       if not isinstance(c, harmony.NoChord) and c.root() is not None]
            mine = chords(notes, _song_beats(notes), merge=False, ticks_per_beat=480)
            est_l += beat_labels(mine)
            ref_l += _active_labels(symbols, len(mine))
            s, n = _chorder_agreement(mine, chorder_beat_labels(notes, ticks_per_beat=480))
            agree, total = agree + s, total + n
    out["chords_vs_lead_sheet_symbols"] = _chord_scores(est_l, ref_l) | {
        "note": "melody-only input: the chord must be guessed from the tune"}
    out["chord_agreement_with_chorder"] = {"beats": total, "agreement": agree / total if total else None}
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--release", default=DEFAULT_RELEASE)
    ap.add_argument("--limit", type=int, default=None, help="first N release songs only")
    ap.add_argument("--reference-every", type=int, default=5,
                    help="run music21/chorder reference paths on every N-th release song (0 = never)")
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--tables", default=None, help="a release build's dataset root: measure the tables it wrote "
                                                  "(written to ROOT/annotator_accuracy.json for its card)")
    args = ap.parse_args(argv)
    t0 = time.time()
    result = {
        "annotators": {"key": key_mod.ANNOTATOR_VERSION, "chords": chords_mod.ANNOTATOR_VERSION},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    release = Path(args.release)
    if (release / "SymMV.csv").exists():
        result["symmv_release"] = eval_release(release, args.limit, args.reference_every)
    else:
        result["symmv_release"] = {"skipped": f"{release} not found"}
    if args.tables:
        result["tables_as_written"] = eval_tables(Path(args.tables), release) | {"root": str(args.tables)}
    if not args.no_corpus:
        result["music21_corpus"] = eval_corpus()
    result["wall_s"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    if args.tables:  # the build's own figures, next to its tables; its card (ROOT/README.md) is re-rendered
        (Path(args.tables) / BUILD_ACCURACY_JSON).write_text(json.dumps(result, indent=2))
        write_card(Path(args.tables), out_dir=None)
    return result


if __name__ == "__main__":
    main()
