"""Whole symbolic annotation of one 4-minute song: annotators (numpy) vs the straightforward reference path.

    python bench/bench_symbolic.py [--song 00050] [--release DIR] [--repeats 5] [--out bench/results/symbolic.json]

Same input for both: the song's Note list and its beats (the SymMV release MIDI sits on a fixed 120 BPM grid,
so the beats are constant_tempo_beats). Annotators: quantize + skyline + chords + estimate_key + windowed_keys.
Reference: naive Python quantize+skyline, music21 stream + KrumhanslSchmuckler, chorder's Dechorder.dechord on
a miditoolkit object. Building the music21 / miditoolkit objects from the notes is part of the reference
path (a pipeline holding Note records has to do it); it is also reported separately. The outputs are checked
to agree (key, per-beat chords, melody notes) before timing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotators import chords as chords_mod  # noqa: E402
from annotators import key as key_mod  # noqa: E402
from annotators import quantize as quantize_mod  # noqa: E402
from annotators import skyline as skyline_mod  # noqa: E402
from symmv.evaluation import annotators as ref  # noqa: E402


def annotate(notes, beats):
    q = quantize_mod.quantize(notes, beats)
    split = skyline_mod.skyline(q, beats)
    ch = chords_mod.chords(notes, beats, merge=False, ticks_per_beat=ref.RELEASE_TICKS_PER_BEAT)
    k = key_mod.estimate_key(notes)
    windows = key_mod.windowed_keys(q)
    return split, ch, k, windows


def reference(notes):
    split = ref.naive_skyline(notes)
    ch = ref.chorder_beat_labels(notes)
    k = ref.music21_key(notes)
    return split, ch, k


def build_only(notes):
    """The object-building part of the reference path (music21 stream + miditoolkit object)."""
    import miditoolkit
    from music21 import note, stream

    s = stream.Stream()
    for n in notes:
        s.insert(n.onset_s * 2, note.Note(n.pitch, quarterLength=(n.offset_s - n.onset_s) * 2))
    midi = miditoolkit.MidiFile()
    inst = miditoolkit.Instrument(program=0)
    inst.notes = [miditoolkit.Note(velocity=n.velocity, pitch=n.pitch, start=round(n.onset_s * 440),
                                   end=round(n.offset_s * 440)) for n in notes]
    midi.instruments.append(inst)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--song", default="00050")  # 240.3 s long
    ap.add_argument("--release", default=ref.DEFAULT_RELEASE)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "symbolic.json"))
    args = ap.parse_args()

    midi_path = Path(args.release) / "midi" / f"{args.song}.mid"
    notes = ref.release_notes(midi_path)
    beats = quantize_mod.constant_tempo_beats(max(n.offset_s for n in notes), ref.RELEASE_TEMPO_BPM)

    # same answers first
    split, ch, k, _ = annotate(notes, beats)
    r_split, r_ch, r_k = reference(notes)
    mel = sorted((n.onset_s, n.pitch, n.duration_16th) for n in split if n.track == "melody")
    r_mel = sorted((n.onset_s, n.pitch, n.duration_16th) for n in r_split if n.track == "melody")
    same_chords = sum((c.root, c.quality if c.root >= 0 else "N/X", c.bass) == r for c, r in zip(ch, r_ch))
    agreement = {
        "key_same": (k.tonic, k.mode) == r_k[:2],
        "chord_beats_same": same_chords / max(len(ch), len(r_ch)),
        "melody_same": mel == r_mel,
    }

    ours_med, ours_all = timed(lambda: annotate(notes, beats), max(args.repeats * 4, 20))
    ref_med, ref_all = timed(lambda: reference(notes), args.repeats)
    build_med, _ = timed(lambda: build_only(notes), args.repeats)
    parts = {
        "annotators": {
            "quantize+skyline": timed(lambda: skyline_mod.skyline(quantize_mod.quantize(notes, beats), beats), 20)[0],
            "chords": timed(lambda: chords_mod.chords(notes, beats, merge=False, ticks_per_beat=220), 20)[0],
            "key": timed(lambda: key_mod.estimate_key(notes), 20)[0],
        },
        "reference": {
            "naive_skyline": timed(lambda: ref.naive_skyline(notes), args.repeats)[0],
            "chorder": timed(lambda: ref.chorder_beat_labels(notes), args.repeats)[0],
            "music21_ks": timed(lambda: ref.music21_key(notes), args.repeats)[0],
            "object_building_only": build_med,
        },
    }
    result = {
        "benchmark": "symbolic annotation of one song (skyline + chords + key)",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor(), "cpu_count": os.cpu_count()},
        "input": {"midi": str(midi_path), "n_notes": len(notes), "duration_s": max(n.offset_s for n in notes),
                  "n_beats": len(beats)},
        "versions": {"quantize": quantize_mod.ANNOTATOR_VERSION, "skyline": skyline_mod.ANNOTATOR_VERSION,
                     "chords": chords_mod.ANNOTATOR_VERSION, "key": key_mod.ANNOTATOR_VERSION},
        "agreement": agreement,
        "median_s": {"annotators": ours_med, "reference": ref_med},
        "all_s": {"annotators": ours_all, "reference": ref_all},
        "speedup": ref_med / ours_med,
        "speedup_excluding_reference_object_building": (ref_med - build_med) / ours_med,
        "parts_median_s": parts,
        "note": "annotators also compute 8-bar windowed keys, which the reference path does not",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("input", "agreement", "median_s", "speedup",
                                             "speedup_excluding_reference_object_building")}, indent=2))


if __name__ == "__main__":
    main()
