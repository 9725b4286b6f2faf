"""Beat / downbeat / meter / tempo trackers side by side on pieces with known answers.

Builds (or loads) the rhythm corpus of symmv.evaluation.rhythm -- music21 pieces in 2/4, 3/4, 4/4 and 6/8,
tempi 50-180 BPM, constant / ritardando / accelerando / rubato, several GM pianos, rendered with fluidsynth,
cached in data/bench-cache/rhythm/ -- and the offline demo source's covers when data/demo-source has
ground truth, runs every named tracker on the same pieces and writes a per-piece table, medians (overall and
per meter), the share of pieces meeting each goal of issue 22 and the cost (CPU seconds per minute of audio,
time.process_time around the tracker call only) to bench/results/beats.json.

    python bench/bench_beats.py                          # every tracker (Basic Pitch + oracle notes)
    python bench/bench_beats.py --trackers madmom --limit 8 --out /tmp/beats.json

A tracker is a function of annotators.beats named in TRACKERS; it is called with whichever of `samples`
(mono float32 at 44.1 kHz), `sample_rate` and `notes` its signature names and returns a BeatTrack. One that
reads notes runs once per --notes source ("basic-pitch": a real transcription of the audio, cached next to
it; "oracle": the notes that were rendered) and is reported as "<name>" for the first source and
"<name>@<source>" for the others; one that reads only audio runs once.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotators import beats, meter  # noqa: E402
from bench.common import RESULTS, machine, write_result  # noqa: E402
from symmv.evaluation import rhythm  # noqa: E402

# name -> a function of annotators.beats; add a tracker there and name it here.
TRACKERS = {
    "madmom": beats.track_beats,  # madmom RNN + DBN over 3/4 and 4/4 (the pipeline's audio tracker)
    "notes": beats.track_beats_from_notes,  # Ellis DP over a note-onset envelope, fixed 4/4 (MIDI sources)
    "joint": meter.track_meter,  # madmom's pulse + notes: beat level, meter, phase (weights fitted on this corpus and the training pieces)
}
ROW_COLUMNS = ("name", "kind", "meter", "tempo_true", "tempo_est", "pickup", "curve", "program", "texture",
               "beat_f", "cmlt", "amlt", "downbeat_f", "tempo_ok", "meter_ok", "meter_est", "metrical_level",
               "beat_phase", "downbeat_on_beat", "tempo_error", "audio_s", "cpu_s", "notes")


def reads(fn) -> set[str]:
    return set(inspect.signature(fn).parameters) & {"samples", "sample_rate", "notes"}


def as_tracker(fn) -> rhythm.Tracker:
    """(samples, sample_rate, notes) -> BeatTrack over a function that takes any of the three by name."""
    wanted = reads(fn)

    def tracker(samples, sample_rate, notes):
        given = {"samples": samples, "sample_rate": sample_rate, "notes": notes}
        return fn(**{k: v for k, v in given.items() if k in wanted})

    return tracker


def runs(names: list[str], note_sources: list[str]) -> list[tuple[str, str, str | None]]:
    """(label, tracker name, notes source) for every run the names ask for."""
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise SystemExit(f"unknown tracker(s) {unknown}; known: {sorted(TRACKERS)}")
    out = []
    for name in names:
        if "notes" in reads(TRACKERS[name]):
            out += [(name if i == 0 else f"{name}@{src}", name, src) for i, src in enumerate(note_sources)]
        else:
            out.append((name, name, None))
    return out


def prepare_transcriptions(pieces, note_sources: list[str]) -> dict:
    """Transcribe every piece once per real backend before timing anything (cached next to the audio)."""
    about = {}
    for source in note_sources:
        if source == "oracle":
            continue
        started, cpu, audio_s = time.perf_counter(), 0.0, 0.0
        for n, piece in enumerate(pieces):
            _, info = rhythm.transcribed_notes(piece, source)
            cpu, audio_s = cpu + info.get("cpu_s", 0.0), audio_s + piece.truth.duration_s
            if time.perf_counter() - started > 60 and n % 5 == 0:
                print(f"  {source}: {n + 1}/{len(pieces)} transcribed", flush=True)
        # cpu_s as measured when each cached transcription was made (process time, whatever the load)
        about[source] = {"version": info.get("version"), "cpu_s": round(cpu, 1),
                         "cpu_s_per_audio_s": round(cpu / audio_s, 3) if audio_s else None}
    return about


def table(rows: list[dict]) -> list[dict]:
    def tidy(v):
        return round(v, 4) if isinstance(v, float) else v

    return [{k: tidy(r.get(k)) for k in ROW_COLUMNS} for r in rows]


def failures(rows: list[dict]) -> dict:
    """Where a tracker goes wrong: pieces by metrical level, by phase, by downbeat shift, per meter."""
    def names(pred):
        return [r["name"] for r in rows if pred(r)]

    return {
        "wrong_tempo_by_level": {level: names(lambda r, lv=level: not r["tempo_ok"] and r["metrical_level"] == lv)
                                 for level in sorted({r["metrical_level"] for r in rows if not r["tempo_ok"]})},
        "off_beat_phase": names(lambda r: r["tempo_ok"] and r["beat_phase"] == r["beat_phase"]
                                and abs(r["beat_phase"]) > 0.25),
        "right_beats_wrong_downbeats": {
            str(shift): names(lambda r, s=shift: r["beat_f"] >= 0.9 and r["downbeat_f"] < 0.85
                              and r["downbeat_on_beat"] == s)
            for shift in sorted({r["downbeat_on_beat"] for r in rows if r["beat_f"] >= 0.9
                                 and r["downbeat_f"] < 0.85}, key=str)},
        "meter_wrong_by_meter": {m: names(lambda r, m=m: r["meter"] == m and not r["meter_ok"])
                                 for m in sorted({r["meter"] for r in rows})},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trackers", nargs="+", default=list(TRACKERS), help=f"names in TRACKERS: {sorted(TRACKERS)}")
    # Basic Pitch, not Transkun, by default: Transkun costs ~11.6 CPU s per audio s on a 2-core AVX2 machine
    # (hours for the corpus), Basic Pitch ~0.04; the committed results ran these
    parser.add_argument("--notes", nargs="+", default=["basic-pitch", "oracle"],
                        help="notes handed to trackers that read notes: a transcription backend or 'oracle'")
    parser.add_argument("--limit", type=int, default=None, help="at most this many corpus pieces (spread over meters)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=rhythm.DEFAULT_CACHE)
    parser.add_argument("--demo-source", type=Path, default=Path("data/demo-source"),
                        help="the offline demo source; its covers are scored too when it has ground_truth/")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "beats.json")
    parser.add_argument("--comment", default="", help="a note for the result (why these settings)")
    args = parser.parse_args(argv)
    plan = runs(args.trackers, args.notes)

    corpus = rhythm.build_corpus(args.cache, seed=args.seed, limit=args.limit)
    demo, demo_skipped = ([], [{"name": str(args.demo_source), "reason": "--no-demo"}]) if args.no_demo else \
        rhythm.demo_corpus(args.demo_source, args.cache / "demo")
    print(f"corpus: {len(corpus)} pieces; demo covers: {len(demo)} (skipped {len(demo_skipped)})", flush=True)
    sources = sorted({src for _, _, src in plan if src})
    transcriptions = prepare_transcriptions(corpus + demo, sources)

    result = {"corpus": rhythm.composition(corpus), "demo": {"source": str(args.demo_source),
                                                             "composition": rhythm.composition(demo),
                                                             "skipped": demo_skipped},
              "conventions": {"beat": "notated beat: quarter in 2/4, 3/4, 4/4; dotted quarter in 6/8",
                              "meter": "beats per bar at that level (6/8: 2)",
                              "tempo": "60 / median true inter-beat interval (6/8: dotted-quarter BPM)",
                              "scores": "mir_eval 0.8, beats before 5 s left out; F and downbeat F 70 ms; "
                                        "tempo ok within 4 %; meter ok: beats per bar equal"},
              "goals": {k: {"threshold": t, "share_needed": s} for k, (t, s) in rhythm.GOALS.items()},
              "transcriptions": transcriptions, "comment": args.comment, "argv": sys.argv[1:], "trackers": {}}
    for label, name, source in plan:
        print(f"running {label} ...", flush=True)
        tracker = as_tracker(TRACKERS[name])
        rows = rhythm.evaluate(tracker, corpus, notes=source)
        demo_rows = rhythm.evaluate(tracker, demo, notes=source) if demo else []
        summary = rhythm.summarize(rows)
        result["trackers"][label] = {
            "function": f"annotators.beats.{TRACKERS[name].__name__}", "notes": source,
            "version": rows[0]["tracker_version"] if rows else None,
            **summary, "failures": failures(rows), "pieces": table(rows),
            "demo": {**rhythm.summarize(demo_rows), "pieces": table(demo_rows)} if demo_rows else None}
        goals = ", ".join(f"{k} {v['share']:.0%}" for k, v in summary["goals"].items())
        print(f"  {label}: beat F {summary['beat_f']:.3f}, downbeat F {summary['downbeat_f']:.3f}; goal shares: "
              f"{goals}; {summary['cpu_s_per_audio_min']:.2f} CPU s / audio min", flush=True)

    out = Path(args.out)
    if out.resolve().parent == RESULTS.resolve():
        write_result(out.stem, result)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine(), **result}, indent=2, sort_keys=True, default=str))
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
