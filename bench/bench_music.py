"""Music-quality benchmark of V-MusProd: >= 30 generated 30-second pieces vs 30-second clips of the SymMV
release's test split (the Real row). Writes bench/results/music.json (machine, inputs, per-group means and
medians, the issue's targets and whether each holds) and piano-roll PNGs under bench/results/music/.

    .venv/bin/python bench/bench_music.py [--ckpt models/checkpoints/cpu] [--n 32] [--seconds 30]

Real = 30-second clips of the test-split songs at a random bar (seeded by song id): a uniform sample of
"the release's test-split clips of the same length", which is what a video clip of a song is; the targets
are checked against it. The same songs' openings (first 30 s: intros are sparser) and middles are scored
too, with the targets checked against each (`targets_met_by_reference`), so nobody has to take the choice
on trust. Pieces: half conditioned on the demo's test-split videos (their features and motion tempo, several seeds
each), half with the null video (the chord stage's "no video" input) at the tempo of the Real clip they
are paired with, so that tempo-bound figures (IOI) compare like with like. Metrics (models/evaluation/metrics.py):
SC, PE, PCE, EBR, IOI on the merged piece; plus melody above accompaniment (median pitch per bar, over
bars holding both), the share of chords starting on a beat, and note statistics a musician would check.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, write_result  # noqa: E402
from models import tokens as tk  # noqa: E402
from models.networks.checkpoint import load_model  # noqa: E402
from models.config import STAGES  # noqa: E402
from models.generation.generate import bars_for, generate_music, performance_models  # noqa: E402
from models.evaluation.metrics import METRIC_NAMES, quality_metrics  # noqa: E402
from models.generation.sample import SamplingConfig  # noqa: E402
from symmv.core.records import Note  # noqa: E402

# Issue 14's targets: |generated - Real| at most this (SC: an absolute floor).
TARGETS = {"SC": 0.95, "PE": 0.30, "PCE": 0.15, "EBR": 0.03, "IOI": 0.05}
MELODY_ABOVE_TARGET = 0.90
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


REFERENCES = ("random", "start", "middle")  # where a Real clip starts; the first is the one the targets use


def real_clips(release_root: str, seconds: float, n: int, where: str = "start", split: str = "test") -> list[dict]:
    """`seconds` of each test-split song on the 16th grid: from the bar of its first note ("start"),
    centred on the song's middle bar ("middle": intros are sparser than the body of a song), or from a
    random bar (seeded by the song id) where a whole clip fits ("random"). n <= 0: every song."""
    import zlib

    import symmv

    songs = symmv.load("songs", split=split, root=release_root)
    notes = symmv.load("notes", split=split, root=release_root)
    chords = symmv.load("chords", split=split, root=release_root)
    notes = notes[notes["track"].isin(["melody", "accompaniment"])].dropna(subset=["bar", "position", "duration_16th"])
    by_song, chords_by_song = dict(tuple(notes.groupby("song_id"))), dict(tuple(chords.groupby("song_id")))
    clips = []
    for song in songs.sort_values("song_id").to_dict("records"):
        df = by_song.get(song["song_id"])
        tempo = song.get("tempo_bpm")
        if df is None or not tempo or not np.isfinite(tempo):
            continue
        n_bars = bars_for(seconds, float(tempo))
        b0 = int(df["bar"].min())
        if where == "middle":
            b0 = max(b0, (b0 + int(df["bar"].max())) // 2 - n_bars // 2)
        elif where == "random":
            last_start = max(b0, int(df["bar"].max()) + 1 - n_bars)
            b0 = int(np.random.default_rng(zlib.crc32(song["song_id"].encode())).integers(b0, last_start + 1))
        part = df[(df["bar"] >= b0) & (df["bar"] < b0 + n_bars)]
        t0 = float(part["onset_s"].min())
        part = part[part["onset_s"] < t0 + seconds]
        clip_notes = [Note(onset_s=float(r.onset_s) - t0, offset_s=min(float(r.offset_s), t0 + seconds) - t0,
                           pitch=int(r.pitch), velocity=int(r.velocity), track=str(r.track), bar=int(r.bar) - b0,
                           position=int(r.position), duration_16th=int(r.duration_16th))
                      for r in part.itertuples()]
        ch = chords_by_song.get(song["song_id"])
        ch = [] if ch is None else [tk.ChordEvent(int(r.bar) - b0, int(r.position), int(r.root), str(r.quality))
                                    for r in ch.itertuples() if b0 <= r.bar < b0 + n_bars]
        clips.append({"song_id": song["song_id"], "tempo_bpm": float(tempo), "notes": clip_notes, "chords": ch})
        if 0 < n <= len(clips):
            break
    return clips


def demo_videos(demo_root: str | None) -> list[dict]:
    """The demo's test-split video features (semantic, color, motion tempo), if the demo is built."""
    if not demo_root or not (Path(demo_root) / "video_features").is_dir():
        return []
    import symmv

    from models.training.data import frames

    rows = symmv.load("video_features", split="test", root=demo_root).to_dict("records")
    return [{"song_id": r["song_id"], "semantic": frames(r["semantic"]), "color": frames(r["color"]),
             "video_tempo_bpm": r.get("video_tempo_bpm")} for r in rows]


def melody_above_share(notes: list[Note]) -> float:
    """Share of bars (holding both tracks) whose median melody pitch is above the median accompaniment pitch."""
    bars: dict[int, dict[str, list[int]]] = {}
    for n in notes:
        bars.setdefault(n.bar, {"melody": [], "accompaniment": []}).setdefault(n.track, []).append(n.pitch)
    both = [b for b in bars.values() if b["melody"] and b["accompaniment"]]
    if not both:
        return float("nan")
    return float(np.mean([np.median(b["melody"]) > np.median(b["accompaniment"]) for b in both]))


def note_stats(notes: list[Note], chords: list[tk.ChordEvent]) -> dict:
    onsets: dict[float, int] = {}
    for n in notes:
        onsets[round(n.onset_s, 4)] = onsets.get(round(n.onset_s, 4), 0) + 1
    mel = [n for n in notes if n.track == "melody"]
    acc = [n for n in notes if n.track == "accompaniment"]
    return {
        "melody_above_share": melody_above_share(notes),
        "chords_on_beats_share": float(np.mean([c.position % 4 == 0 for c in chords])) if chords else float("nan"),
        "chords_per_bar": len(chords) / max(1, max((c.bar for c in chords), default=0) + 1),
        "notes": len(notes),
        "max_simultaneous_onsets": max(onsets.values(), default=0),
        "melody_median_pitch": float(np.median([n.pitch for n in mel])) if mel else float("nan"),
        "accompaniment_median_pitch": float(np.median([n.pitch for n in acc])) if acc else float("nan"),
        "melody_median_duration_s": float(np.median([n.offset_s - n.onset_s for n in mel])) if mel else float("nan"),
    }


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], np.float64)
        vals = vals[np.isfinite(vals)]
        out[k] = {"mean": float(vals.mean()) if len(vals) else None,
                  "median": float(np.median(vals)) if len(vals) else None}
    out["n_pieces"] = len(rows)
    return out


def piano_roll(notes: list[Note], chords: list[tk.ChordEvent], tempo_bpm: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    colors = {"melody": "tab:red", "accompaniment": "tab:blue"}
    for n in notes:
        ax.barh(n.pitch, n.offset_s - n.onset_s, left=n.onset_s, height=0.8, color=colors.get(n.track, "gray"))
    bar_s = 240.0 / tempo_bpm
    n_bars = int(max((n.offset_s for n in notes), default=0) / bar_s) + 1
    for b in range(n_bars + 1):
        ax.axvline(b * bar_s, color="0.85", lw=0.6, zorder=0)
    for c in chords:
        name = "N" if c.root < 0 else f"{PITCH_CLASSES[c.root]}{c.quality}"
        ax.text((c.bar * 16 + c.position) * bar_s / 16, 108, name, fontsize=6, rotation=90, va="bottom")
    ax.set_ylim(20, 116), ax.set_xlabel("time (s)"), ax.set_ylabel("MIDI pitch")
    ax.set_title(title, fontsize=9)
    fig.tight_layout(), fig.savefig(path, dpi=80), plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="models/checkpoints/cpu")
    p.add_argument("--release", default="data/symmv-release")
    p.add_argument("--demo", default="data/symmv-demo")
    p.add_argument("--n", type=int, default=32, help="generated pieces")
    p.add_argument("--n-real", type=int, default=0, help="Real clips per reference (0 = every test-split song)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--rhythm-top-p", type=float, help="top-p of the token type, onset position and duration "
                                                     "(default: SamplingConfig.top_p_override, 1.0)")
    p.add_argument("--type-temperature", type=float, help="temperature of the token type (default: --temperature)")
    p.add_argument("--pitch-temperature", type=float, help="temperature of note pitches (default: --temperature)")
    p.add_argument("--chord-temperature", type=float, help="temperature of chord roots and qualities "
                                                           "(default: --temperature x SamplingConfig.temperature_scale)")
    p.add_argument("--max-notes-per-onset", type=int, default=SamplingConfig.max_notes_per_onset)
    p.add_argument("--seed", type=int, default=1000, help="piece i is sampled with seed SEED + i")
    p.add_argument("--name", default="music", help="result file bench/results/<name>.json")
    p.add_argument("--rolls", type=int, default=3, help="piano-roll PNGs of this many generated pieces")
    args = p.parse_args(argv)

    reals = {where: real_clips(args.release, args.seconds, args.n_real, where=where) for where in REFERENCES}
    real = reals[REFERENCES[0]]
    videos = demo_videos(args.demo)
    models = {**{s: load_model(Path(args.ckpt) / s) for s in STAGES}, **performance_models(args.ckpt)}
    null_video = None
    chord = models["chord"]
    if getattr(chord, "controller", None) is not None:
        c = chord.cfg.controller
        null_video = (np.zeros((1, c.semantic_dim), np.float32), np.zeros((1, c.color_dim), np.float32))
    sampling = SamplingConfig(max_notes_per_onset=args.max_notes_per_onset)
    if args.rhythm_top_p is not None:
        sampling.top_p_override = {a: args.rhythm_top_p for a in sampling.top_p_override}
    temperature = {a: args.temperature * sampling.temperature_scale.get(a, 1.0) for a in tk.ATTRIBUTES}
    for attr, value in (("type", args.type_temperature), ("pitch", args.pitch_temperature),
                        ("root", args.chord_temperature), ("quality", args.chord_temperature)):
        if value is not None:
            temperature[attr] = value
    pieces, wall = [], []
    for i in range(args.n):
        seed = args.seed + i
        if videos and i % 2 == 0:
            v = videos[(i // 2) % len(videos)]
            feats = {"semantic": v["semantic"], "color": v["color"], "video_tempo_bpm": v["video_tempo_bpm"],
                     "duration_s": args.seconds}
            group = "video"
        else:
            feats = {"video_tempo_bpm": real[i % len(real)]["tempo_bpm"], "duration_s": args.seconds}
            if null_video is not None:
                feats["semantic"], feats["color"] = null_video
            group = "null video"
        t0 = time.perf_counter()
        notes, chords = generate_music(feats, args.ckpt, seed=seed, temperature=temperature, top_p=args.top_p,
                                       models=models, sampling=sampling, return_chords=True)
        wall.append(time.perf_counter() - t0)
        pieces.append({"group": group, "seed": seed, "tempo_bpm": float(feats["video_tempo_bpm"] or 110.0),
                       "notes": notes, "chords": chords})

    def rows_of(items):
        return [{**quality_metrics(it["notes"]), **note_stats(it["notes"], it["chords"])} for it in items]

    gen_rows = rows_of(pieces)
    gen_sum = summarise(gen_rows)
    real_sums = {where: summarise(rows_of(clips)) for where, clips in reals.items()}
    by_group = {g: summarise([r for r, pc in zip(gen_rows, pieces) if pc["group"] == g])
                for g in sorted({pc["group"] for pc in pieces})}

    def checks_against(real_sum: dict) -> dict:
        checks = {"SC": gen_sum["SC"]["mean"] >= TARGETS["SC"]}
        for m in METRIC_NAMES[1:]:
            checks[m] = abs(gen_sum[m]["mean"] - real_sum[m]["mean"]) <= TARGETS[m]
        checks["melody_above"] = gen_sum["melody_above_share"]["mean"] >= MELODY_ABOVE_TARGET
        checks["chords_on_beats"] = gen_sum["chords_on_beats_share"]["mean"] >= 0.99
        return checks

    by_reference = {where: checks_against(rs) for where, rs in real_sums.items()}
    gaps_by_reference = {where: {m: gen_sum[m]["mean"] - rs[m]["mean"] for m in METRIC_NAMES}
                         for where, rs in real_sums.items()}
    real_sum, checks, gaps = real_sums[REFERENCES[0]], by_reference[REFERENCES[0]], gaps_by_reference[REFERENCES[0]]

    rolls = RESULTS / args.name
    if args.rolls > 0:  # --rolls 0 (sweeps): no pictures
        rolls.mkdir(parents=True, exist_ok=True)
        for i, pc in enumerate(pieces[: args.rolls]):
            piano_roll(pc["notes"], pc["chords"], pc["tempo_bpm"], f"generated #{i} ({pc['group']}, seed "
                       f"{pc['seed']}, {pc['tempo_bpm']:.0f} BPM)", rolls / f"generated_{i}.png")
        piano_roll(real[0]["notes"], real[0]["chords"], real[0]["tempo_bpm"],
                   f"Real: {real[0]['song_id']} ({args.seconds:.0f} s from a random bar)", rolls / "real_0.png")

    write_result(args.name, {
        "inputs": {"ckpt": args.ckpt, "release": args.release, "demo": args.demo if videos else None,
                   "n_generated": len(pieces), "n_real": len(real), "seconds": args.seconds,
                   "real_reference": f"{REFERENCES[0]} (targets); also {', '.join(REFERENCES[1:])}",
                   "temperature": temperature, "top_p": args.top_p, "seed": args.seed,
                   "sampling": {k: v for k, v in vars(sampling).items() if k not in ("temperature", "top_p")},
                   "groups": {g: s["n_pieces"] for g, s in by_group.items()}},
        "real": real_sum, "real_by_reference": real_sums, "generated": gen_sum, "generated_by_group": by_group,
        "gap_generated_minus_real": gaps, "gap_by_reference": gaps_by_reference, "targets": TARGETS,
        "targets_met": checks, "targets_met_by_reference": by_reference,
        "median_generation_wall_s": statistics.median(wall),
        "piano_rolls": sorted(str(p.relative_to(RESULTS.parent.parent)) for p in rolls.glob("*.png"))
        if args.rolls > 0 else [],
    })


if __name__ == "__main__":
    main()
