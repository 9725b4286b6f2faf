"""Accuracy of the transcription backends and the beat tracker on rendered audio with held-aside truth.

Ground truth comes from MIDI we render ourselves with fluidsynth (TimGM6mb piano), so every note and beat
is known exactly:
- notes: a few SymMV release MIDI (real piano covers, <release>/midi, symmv.core.settings.release_root) and music21
  corpus pieces; onset F1 and onset+offset F1 with mir_eval.transcription (50 ms onset tolerance).
- beats: music21 pieces only -- the SymMV MIDI sit on a fixed 120 BPM grid that is not the music's beat,
  so their "beats every 0.5 s" would be a wrong truth. Beat and downbeat F-measure (mir_eval.beat, 70 ms)
  and the tempo error against the score's tempo.

    python -m symmv.evaluation.transcription --backends basic-pitch transkun --out eval.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symmv.core import settings
from symmv.io import media
from symmv.io.midi import read_notes, write_notes
from symmv.core.records import Note

def render_midi(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 22050,
                soundfont: str | Path | None = None) -> Path:
    """Render a MIDI file to a WAV with fluidsynth (no audio driver; deterministic; gain 0.2, its default)."""
    return media.render_midi(midi_path, wav_path, sample_rate=sample_rate, soundfont=soundfont, gain=0.2)


def midi_notes(midi_path: str | Path) -> list[Note]:
    """All non-drum notes of a MIDI file, in seconds (the ground truth of a rendered clip)."""
    return read_notes(midi_path)


def _intervals_pitches(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[n.onset_s, max(n.offset_s, n.onset_s + 1e-3)] for n in notes])
    pitches_hz = 440.0 * 2.0 ** ((np.array([n.pitch for n in notes]) - 69) / 12)
    return intervals, pitches_hz


def note_scores(reference: list[Note], estimate: list[Note], onset_tolerance_s: float = 0.05) -> dict:
    """Onset-only and onset+offset precision/recall/F1 (mir_eval.transcription defaults otherwise)."""
    import mir_eval

    ref_i, ref_p = _intervals_pitches(reference)
    est_i, est_p = _intervals_pitches(estimate)
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance_s, offset_ratio=None)
    p2, r2, f2, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance_s)
    return {"onset_precision": p, "onset_recall": r, "onset_f1": f,
            "onset_offset_precision": p2, "onset_offset_recall": r2, "onset_offset_f1": f2,
            "n_reference": len(reference), "n_estimate": len(estimate)}


# -- ground truth from music21 scores (notes and beats) ---------------------------------------------


@dataclass(frozen=True)
class ScoreExcerpt:
    """A score rendered at a constant tempo: notes and beats are exact by construction."""

    name: str
    midi_path: Path
    notes: list[Note]
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    tempo_bpm: float  # beats per minute of the score's beat unit (quarter for x/4, half for 2/2)
    beats_per_bar: int


def music21_excerpt(work: str, midi_path: str | Path, seconds: float = 25.0, quarter_bpm: float = 96.0,
                    measure_offset: int = 0) -> ScoreExcerpt:
    """First `seconds` of a music21 corpus work (from measure index `measure_offset`) as piano MIDI.

    Every part goes to one piano at a constant `quarter_bpm` (the score's tempo marks are ignored so the
    beat truth is exact). Beats follow the opening time signature (simple meters: one beat per
    denominator unit); a pickup measure is handled through music21's measure offsets and paddingLeft.
    """
    import pretty_midi
    from music21 import corpus, meter

    score = corpus.parse(work).stripTies()
    sec_per_quarter = 60.0 / quarter_bpm
    first_part = score.parts[0].getElementsByClass("Measure")
    measures = list(first_part)[measure_offset:]
    t0_q = float(measures[0].offset) if measure_offset else 0.0
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    beats_per_bar, beat_q = int(ts.numerator), 4.0 / ts.denominator
    end_q = t0_q + seconds / sec_per_quarter

    beats, downbeats = [], []
    for m in measures:
        m_start = float(m.offset) - t0_q
        bar_q = float(m.barDuration.quarterLength)
        bar_origin = m_start - float(m.paddingLeft)  # a pickup bar starts before its first note
        for k in range(int(round(bar_q / beat_q))):
            t = bar_origin + k * beat_q
            if t >= m_start - 1e-9 and t + t0_q < end_q:
                beats.append(t * sec_per_quarter)
                if k == 0:
                    downbeats.append(t * sec_per_quarter)
        if m_start + t0_q >= end_q:
            break

    pm = pretty_midi.PrettyMIDI(initial_tempo=quarter_bpm)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for element in score.flatten().notes:
        on_q = float(element.offset)
        if on_q < t0_q or on_q >= end_q:
            continue
        off_q = min(on_q + float(element.quarterLength), end_q)
        for pitch in element.pitches:
            piano.notes.append(pretty_midi.Note(velocity=80, pitch=int(pitch.midi),
                                                start=(on_q - t0_q) * sec_per_quarter,
                                                end=max(off_q - t0_q, on_q - t0_q + 0.05) * sec_per_quarter))
    # the same pitch sounding twice at once (two voices in unison) is one key on a piano
    seen, unique = set(), []
    for n in sorted(piano.notes, key=lambda n: (n.start, n.pitch)):
        if (round(n.start, 4), n.pitch) not in seen:
            seen.add((round(n.start, 4), n.pitch))
            unique.append(n)
    piano.notes = unique
    pm.instruments.append(piano)
    pm.write(str(midi_path))
    return ScoreExcerpt(name=work, midi_path=Path(midi_path), notes=midi_notes(midi_path),
                        beats_s=np.array(beats), downbeats_s=np.array(downbeats),
                        tempo_bpm=quarter_bpm / beat_q, beats_per_bar=beats_per_bar)


def symmv_release_excerpt(midi_path: str | Path, out_path: str | Path, seconds: float = 25.0) -> list[Note]:
    """The first `seconds` of a SymMV release MIDI (a real piano cover) as its own MIDI file; its notes."""
    notes = read_notes(midi_path)
    start = min((n.onset_s for n in notes), default=0.0)
    write_notes([Note(n.onset_s - start, min(n.offset_s, start + seconds + 2.0) - start, n.pitch, n.velocity)
                 for n in notes if start <= n.onset_s < start + seconds], out_path)
    return midi_notes(out_path)


# -- evaluation run ----------------------------------------------------------------------------------

MUSIC21_WORKS = ("bach/bwv66.6", "joplin/maple_leaf_rag", "mozart/k155/movement2", "haydn/opus74no1/movement3")
SYMMV_MIDI = ("00001", "00002", "00003")


@dataclass(frozen=True)
class EvalClip:
    name: str
    source: str  # "music21" | "symmv-release"
    wav_path: Path
    notes: list[Note]
    excerpt: ScoreExcerpt | None  # beat truth (music21 only)


def build_eval_set(out_dir: str | Path, seconds: float = 25.0, release: str | Path | None = None,
                   works=MUSIC21_WORKS, symmv_ids=SYMMV_MIDI, sample_rate: int = 44100) -> list[EvalClip]:
    """Render the evaluation clips into `out_dir`: music21 works (notes + beats) and SymMV MIDI (notes)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for work in works:
        stem = work.replace("/", "_")
        excerpt = music21_excerpt(work, out_dir / f"{stem}.mid", seconds=seconds)
        wav = render_midi(excerpt.midi_path, out_dir / f"{stem}.wav", sample_rate)
        clips.append(EvalClip(work, "music21", wav, excerpt.notes, excerpt))
    release = Path(release) if release else settings.release_root()
    for song_id in symmv_ids if (release / "midi").is_dir() else ():
        midi = out_dir / f"symmv_{song_id}.mid"
        notes = symmv_release_excerpt(release / "midi" / f"{song_id}.mid", midi, seconds)
        clips.append(EvalClip(f"symmv/{song_id}", "symmv-release", render_midi(midi, midi.with_suffix(".wav"),
                                                                                sample_rate), notes, None))
    return clips


def audio_seconds(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(str(path)).duration)


def timed(fn, *args, **kwargs):
    """(result, wall seconds, process CPU seconds); CPU time is the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def evaluate_transcription(clips: list[EvalClip], backend: str, **options) -> list[dict]:
    from symmv.transcription.backends import TranscriptionError, get_backend

    model = get_backend(backend, **options)
    rows = []
    for clip in clips:
        try:
            notes, wall, cpu = timed(model.transcribe, clip.wav_path)
        except TranscriptionError as err:
            notes, wall, cpu = [], float("nan"), float("nan")
            print(f"{backend} {clip.name}: {err}")
        duration = audio_seconds(clip.wav_path)
        rows.append({"clip": clip.name, "source": clip.source, "backend": backend, "version": model.version,
                     "options": options, "audio_s": duration, "wall_s": wall, "cpu_s": cpu,
                     "realtime_factor": duration / wall, **note_scores(clip.notes, notes)})
    return rows


def evaluate_beats(clips: list[EvalClip]) -> list[dict]:
    import mir_eval

    from annotators.beats import track_beats

    rows = []
    for clip in clips:
        if clip.excerpt is None:  # SymMV MIDI: a 120 BPM grid, not the music's beat
            continue
        track, wall, cpu = timed(track_beats, clip.wav_path)
        truth = clip.excerpt
        tempo = track.tempo_bpm or float("nan")
        rows.append({
            "clip": clip.name, "tracker": track.tracker, "version": track.version,
            "audio_s": audio_seconds(clip.wav_path), "wall_s": wall, "cpu_s": cpu,
            "realtime_factor": audio_seconds(clip.wav_path) / wall,
            "beat_f": mir_eval.beat.f_measure(truth.beats_s, np.array([b.time_s for b in track.beats])),
            "downbeat_f": mir_eval.beat.f_measure(truth.downbeats_s, np.array(track.downbeats_s)),
            "tempo_true_bpm": truth.tempo_bpm, "tempo_est_bpm": tempo,
            "tempo_rel_error": abs(tempo - truth.tempo_bpm) / truth.tempo_bpm,
            "beats_per_bar_true": truth.beats_per_bar, "beats_per_bar_est": track.beats_per_bar,
        })
    return rows


def summarize(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {k: float(np.nanmedian([r[k] for r in rows])) for k in keys} | {"n_clips": len(rows)}


BACKEND_OPTIONS = {  # what the evaluation runs for each backend name given on the command line
    "basic-pitch": {},
    "transkun": {},  # our defaults (16 s segments every 14 s)
    "transkun-wheel": {"segment_hop_s": 8.0},  # the wheel's own settings
    "pti": {},
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["basic-pitch", "transkun"],
                        choices=sorted(BACKEND_OPTIONS))
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--release", default=None, help="SymMV release dir (default $SYMMV_RELEASE)")
    parser.add_argument("--workdir", default=None, help="where rendered clips go (default: a temp dir)")
    parser.add_argument("--no-beats", action="store_true")
    parser.add_argument("--out", default=None, help="JSON output path (default: stdout)")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="symmv-eval-"))
    clips = build_eval_set(workdir, args.seconds, args.release)
    report: dict = {"seconds_per_clip": args.seconds, "clips": [c.name for c in clips],
                    "onset_tolerance_s": 0.05, "transcription": {}, "beats": None}
    for name in args.backends:
        backend = "transkun" if name.startswith("transkun") else name
        try:
            rows = evaluate_transcription(clips, backend, **BACKEND_OPTIONS[name])
        except (FileNotFoundError, RuntimeError, ImportError) as err:  # e.g. no PTI checkpoint here
            report["transcription"][name] = {"error": str(err)}
            continue
        report["transcription"][name] = {
            "version": rows[0]["version"], "options": BACKEND_OPTIONS[name],
            "median": summarize(rows, ("onset_f1", "onset_offset_f1", "realtime_factor", "cpu_s")),
            "per_clip": rows}
        print(name, report["transcription"][name]["median"], flush=True)
    if not args.no_beats:
        rows = evaluate_beats(clips)
        report["beats"] = {"median": summarize(rows, ("beat_f", "downbeat_f", "tempo_rel_error", "realtime_factor")),
                           "per_clip": rows}
        print("beats", report["beats"]["median"], flush=True)
    text = json.dumps(report, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return report


if __name__ == "__main__":
    main()
