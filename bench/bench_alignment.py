"""Cover <-> video-soundtrack alignment error (ms) and speed, on real music with a known time map.

    .venv/bin/python -m bench.bench_alignment          # ~6 min on 2 busy cores; bench/results/alignment.json

Two sets of pairs. "demo_30s" / "demo_6s": the demo corpus's own pairs (symmv.sources.demo: the cover and
the official video's soundtrack, rendered and encoded exactly as `symmv demo-corpus` does, at the demo's
30-s excerpt and the tests' 6-s one; truth video_s = intro_s + cover_s * stretch). "rerendered_40s":
each pair renders one excerpt of a real piece (SymMV release covers, music21 scores) twice with fluidsynth:
- the "cover": piano (GM 0), the excerpt as written;
- the "video soundtrack": another GM program (strings, guitar, organ, brass, choir, ...), half of them with
  a GM drum kit on the beat, after an intro of 4-9 s of quiet noise, with a piecewise tempo map (segments
  of 6-12 s at 0.8-1.25x). The true map cover second -> video second is that tempo map.
"transposed_40s": the same pairs with the cover transposed by -5..+6 semitones (never 0) against the soundtrack
(piano covers in an easier key): the key search must report the shift and align as well; the previous
aligner (align(key_invariant=False)) runs on these and on the untransposed pairs side by side.
Error = |alignment.video_time(t) - true(t)| at every cover note onset (where a listener hears the match).
Unrelated pairs (cover of one piece vs video of another) measure the refusal: their confidence must stay
under annotators.alignment.LOW_CONFIDENCE while the aligned pairs stay above.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from annotators import alignment as al
from bench import qc_corpus
from bench.common import write_result
from symmv.core.records import Note
from symmv.io.media import render_midi

WORK = qc_corpus.CACHE / "alignment"
SR = qc_corpus.SR
PIECES = qc_corpus.RELEASE_PIECES[:8] + qc_corpus.MUSIC21_PIECES[:4]
COVER_SHIFTS = (2, -5, 4, -3, 6, -1, 5, -2, 3, -4, 1)  # semitones, the transposed set's cover i gets [i % 11]
VIDEO_PROGRAMS = (48, 24, 19, 61, 52, 40, 73, 16, 25, 56, 65, 4)  # + trumpet 56, alto sax 65, e-piano 4


def tempo_map(length_s: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (cover_s, video_s) of a piecewise-linear map, starting after an intro offset."""
    intro = float(rng.uniform(4.0, 9.0))
    cover, video = [0.0], [intro]
    while cover[-1] < length_s + 5:
        seg = float(rng.uniform(6.0, 12.0))
        ratio = float(rng.uniform(0.8, 1.25))  # video seconds per cover second
        cover.append(cover[-1] + seg)
        video.append(video[-1] + seg * ratio)
    return np.array(cover), np.array(video)


def render_video(notes: list[Note], program: int, drums: bool, cmap, length_s: float, wav, rng) -> np.ndarray:
    import pretty_midi
    import soundfile as sf

    warp = lambda t: float(np.interp(t, *cmap))  # noqa: E731
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(velocity=int(np.clip(n.velocity, 1, 127)), pitch=n.pitch, start=warp(n.onset_s),
                                   end=max(warp(n.offset_s), warp(n.onset_s) + 0.05)) for n in notes]
    pm.instruments.append(inst)
    if drums:  # kick / snare / closed hi-hat at 0.5 s of cover time, warped like the music
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        for k, t in enumerate(np.arange(0, length_s, 0.25)):
            for pitch in ([42] + ([36] if k % 4 == 0 else []) + ([38] if k % 4 == 2 else [])):
                kit.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=warp(t), end=warp(t) + 0.1))
        pm.instruments.append(kit)
    mid = wav.with_suffix(".mid")
    pm.write(str(mid))
    render_midi(mid, wav, sample_rate=SR, gain=0.5)
    audio, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    intro = int(cmap[1][0] * SR)
    noise = rng.normal(0, 1, intro).astype(np.float32) * 0.01 * float(np.abs(audio).max())
    audio[:intro] += noise  # the video's own intro: room tone, not silence
    return audio


def make_pair(i: int, piece: str, length_s: float, shift: int = 0):
    rng = np.random.default_rng(100 + i)
    WORK.mkdir(parents=True, exist_ok=True)
    notes_all = qc_corpus.piece_notes(piece, WORK)
    notes = qc_corpus.excerpt(notes_all, qc_corpus.music_start(notes_all, length_s), length_s)
    stem = f"{i:02d}_" + piece.replace("/", "_").split(".")[0]
    # a score shorter than the excerpt ends early: the cover ends 1 s after its last note, as a real one would
    cover_s = min(length_s, max(n.offset_s for n in notes) + 1.0)
    cover_notes = [replace(n, pitch=n.pitch + shift) for n in notes]
    cover = qc_corpus.render(cover_notes, 0, WORK / f"{stem}_cover{shift:+d}.wav" if shift else WORK / f"{stem}_cover.wav", cover_s)
    cmap = tempo_map(length_s, rng)
    program = VIDEO_PROGRAMS[i % len(VIDEO_PROGRAMS)]
    video = render_video(notes, program, i % 2 == 0, cmap, length_s, WORK / f"{stem}_video.wav", rng)
    return {"stem": stem, "piece": piece, "notes": notes, "cover": cover, "video": video, "cmap": cmap,
            "program": qc_corpus.OTHER_PROGRAMS.get(program, str(program)), "drums": i % 2 == 0, "shift": shift}


def demo_pairs(n_songs: int, excerpt_s: float) -> list[dict]:
    """The demo corpus's cover + official soundtrack pairs, made by symmv.sources.demo's own functions (footage
    left out: alignment hears only the audio); cached as .npz under WORK/demo_<excerpt>s."""
    import tempfile
    from pathlib import Path

    from symmv.io.audio import decode_audio
    from symmv.io.media import default_soundfont, encode_audio
    from symmv.io.midi import read_notes
    from symmv.sources import demo

    work = WORK / f"demo_{excerpt_s:g}s"
    work.mkdir(parents=True, exist_ok=True)
    sf2, pairs = default_soundfont(), []
    for n, song in enumerate(demo.music21_songs(n_songs)):
        stem = work / f"{n:02d}"
        if not stem.with_suffix(".npz").exists():
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                demo.excerpt_piano_midi(demo.source_midi(song, None, tmp), stem.with_suffix(".mid"), excerpt_s)
                wav = render_midi(stem.with_suffix(".mid"), tmp / "cover.wav", soundfont=sf2)
                cover = decode_audio(encode_audio(wav, tmp / "cover.m4a", max_s=excerpt_s + 2.0), SR)
                cover_s = len(cover) / SR
                plan = demo.soundtrack_plan(n, cover_s)
                track = demo.make_soundtrack(stem.with_suffix(".mid"), plan, tmp / "soundtrack.wav", sf2)
                video = decode_audio(encode_audio(track, tmp / "soundtrack.m4a"), SR)
                official_s = plan["intro_s"] + cover_s * plan["stretch"] + 0.03 * cover_s  # as demo._make_videos
                video = np.pad(video, (0, max(0, int(official_s * SR) - len(video))))[: int(official_s * SR)]
                np.savez(stem.with_suffix(".npz"), cover=cover, video=video)
                stem.with_suffix(".json").write_text(json.dumps(plan))
        plan = json.loads(stem.with_suffix(".json").read_text())
        audio = np.load(stem.with_suffix(".npz"))
        cover_s = len(audio["cover"]) / SR
        cmap = (np.array([0.0, cover_s]), plan["intro_s"] + np.array([0.0, cover_s]) * plan["stretch"])
        pairs.append({"stem": f"{n:02d}_" + song.key.split(":")[1].split(".")[0].replace("/", "_"),
                      "notes": read_notes(stem.with_suffix(".mid")), "cover": audio["cover"], "video": audio["video"],
                      "cmap": cmap, "program": qc_corpus.OTHER_PROGRAMS.get(plan["program"], str(plan["program"])),
                      "drums": False})
    return pairs


def measure(pairs: list[dict], key_invariant: bool = True) -> dict:
    """Align each pair (error at the cover's note onsets, confidence, wall time) and each cover against the
    soundtrack of the pair 3 places on (another piece: must be refused). Pairs with a known "shift": whether
    the reported transposition is it."""
    per_pair, errors_ms, unrelated = [], [], []
    for p in pairs:
        t0 = time.perf_counter()
        a = al.align(p["cover"], p["video"], SR, song_id=p["stem"], key_invariant=key_invariant)
        wall = time.perf_counter() - t0
        onsets = np.unique([n.onset_s for n in p["notes"]])
        err = np.abs(a.video_time(onsets) - np.interp(onsets, *p["cmap"])) * 1000.0
        errors_ms.append(err)
        per_pair.append({"pair": p["stem"], "video_program": p["program"], "drums": p["drums"],
                         "intro_s": float(p["cmap"][1][0]), "confidence": a.confidence,
                         "median_error_ms": float(np.median(err)), "p95_error_ms": float(np.percentile(err, 95)),
                         "max_error_ms": float(err.max()), "n_onsets": int(len(onsets)), "wall_s": wall,
                         "audio_s": (len(p["cover"]) + len(p["video"])) / SR, "refused": al.low_confidence(a),
                         "transposition_semitones": a.transposition_semitones})
        if "shift" in p:
            per_pair[-1]["true_shift"] = p["shift"]
        print(per_pair[-1], flush=True)
    for i, p in enumerate(pairs):
        q = pairs[(i + 3) % len(pairs)]
        a = al.align(p["cover"], q["video"], SR, key_invariant=key_invariant)
        unrelated.append({"cover": p["stem"], "video": q["stem"], "confidence": a.confidence,
                          "refused": al.low_confidence(a), "transposition_semitones": a.transposition_semitones})
        print(unrelated[-1], flush=True)
    all_err = np.concatenate(errors_ms)
    conf_ok, conf_bad = [r["confidence"] for r in per_pair], [r["confidence"] for r in unrelated]
    return {
        "error_ms": {"median": float(np.median(all_err)), "p95": float(np.percentile(all_err, 95)),
                     "max": float(all_err.max()), "n_onsets": int(all_err.size),
                     "median_of_pair_medians": float(np.median([r["median_error_ms"] for r in per_pair])),
                     "worst_pair_median": float(max(r["median_error_ms"] for r in per_pair)),
                     "share_under_50ms": float(np.mean(all_err < 50)), "share_under_200ms": float(np.mean(all_err < 200))},
        "speed": {"median_wall_s_per_pair": float(np.median([r["wall_s"] for r in per_pair])),
                  "median_audio_s_per_wall_s": float(np.median([r["audio_s"] / r["wall_s"] for r in per_pair]))},
        "confidence": {"aligned_min": float(min(conf_ok)), "aligned_median": float(np.median(conf_ok)),
                       "unrelated_max": float(max(conf_bad)), "unrelated_median": float(np.median(conf_bad)),
                       "aligned_refused": sum(bool(r["refused"]) for r in per_pair),
                       "unrelated_accepted": sum(not r["refused"] for r in unrelated)},
        "key": ({"shift_right": sum(r["transposition_semitones"] == r["true_shift"] for r in per_pair),
                 "pairs": len(per_pair)} if per_pair and "true_shift" in per_pair[0] else None),
        "per_pair": per_pair,
        "unrelated_pairs": unrelated,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--length-s", type=float, default=40.0, help="cover excerpt length of the re-rendered pairs")
    ap.add_argument("--long-s", type=float, default=180.0, help="length of the one speed pair (0: skip)")
    ap.add_argument("--demo-songs", type=int, default=20, help="demo pairs per excerpt length (0: skip)")
    args = ap.parse_args()
    sets = {"rerendered_40s": [make_pair(i, p, args.length_s) for i, p in enumerate(PIECES)],
            "transposed_40s": [make_pair(i, p, args.length_s, COVER_SHIFTS[i % len(COVER_SHIFTS)])
                               for i, p in enumerate(PIECES)]}
    if args.demo_songs:
        sets.update({f"demo_{x:g}s": demo_pairs(args.demo_songs, x) for x in (30.0, 6.0)})
    results = {name: measure(pairs) for name, pairs in sets.items()}
    # side by side in this run: the aligner that assumes the soundtrack's key (version 2's behaviour)
    results.update({f"{name}_fixed_key": measure(sets[name], key_invariant=False)
                    for name in ("rerendered_40s", "transposed_40s")})
    speed = None
    if args.long_s:  # one full-song-length pair: time and memory scale with the product of the lengths
        long_pair = make_pair(99, qc_corpus.RELEASE_PIECES[0], args.long_s)
        speed = {}
        for name, key_invariant in (("key_search", True), ("fixed_key", False)):
            t0 = time.perf_counter()
            a = al.align(long_pair["cover"], long_pair["video"], SR, key_invariant=key_invariant)
            wall = time.perf_counter() - t0
            onsets = np.unique([n.onset_s for n in long_pair["notes"]])
            err = np.abs(a.video_time(onsets) - np.interp(onsets, *long_pair["cmap"])) * 1000.0
            speed[name] = {"cover_s": len(long_pair["cover"]) / SR, "video_s": len(long_pair["video"]) / SR,
                           "wall_s": wall, "median_error_ms": float(np.median(err)),
                           "p95_error_ms": float(np.percentile(err, 95)), "confidence": a.confidence,
                           "transposition_semitones": a.transposition_semitones}
            print(name, speed[name], flush=True)
    result = {
        "benchmark": "alignment",
        "inputs": {"pieces": list(PIECES), "excerpt_s": args.length_s, "sample_rate": SR,
                   "feature_rate_hz": al.FEATURE_RATE_HZ, "method": al.METHOD,
                   "annotator_version": al.ANNOTATOR_VERSION, "low_confidence_threshold": al.LOW_CONFIDENCE,
                   "transposed_cover_shifts": list(COVER_SHIFTS),
                   "video": "other GM program, drums on even pairs, 4-9 s noise intro, tempo 0.8-1.25x per 6-12 s",
                   "demo": f"symmv.sources.demo pairs, first {args.demo_songs} music21 pieces, 30-s and 6-s excerpts"},
        "sets": results,
        "long_pair": speed,
    }
    write_result("alignment", result)
    print(json.dumps({name: {k: r[k] for k in ("error_ms", "speed", "confidence", "key")} for name, r in results.items()},
                     indent=1))
    print(json.dumps({"long_pair": speed}))


if __name__ == "__main__":
    main()
