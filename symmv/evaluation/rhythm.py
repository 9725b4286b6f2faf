"""Beats, downbeats, meter and tempo against known answers: a rendered corpus with exact truth, its
scores and the evaluation loop (bench/bench_beats.py runs it; tests/test_rhythm_eval.py checks it).

Corpus (`build_corpus`, cached under data/bench-cache/rhythm/, deterministic for a seed, resumable)
- Pieces from music21's shipped corpus (offline): Bach chorales, Mozart / Haydn / Beethoven quartets,
  Joplin, Schumann, Chopin, Schubert, Corelli, C. P. E. Bach, Beach, Liliuokalani, J. R. Johnson, and
  single-line fife / Northumbrian / O'Neill's folk tunes (texture "melody"), in 2/4, 3/4, 4/4 and 6/8
  (PIECES). Each excerpt starts at the start of the piece -- a pickup (anacrusis) stays in and is marked --
  and ends at a bar line 25-30 s later, inside the opening time signature and before the first bar that
  breaks the bar grid (an overlong or displaced measure); split bars that add up to one bar are fine.
  Repeats are played as written (not expanded); fermatas, grace notes and the score's tempo marks are
  ignored; every part goes to one piano.
- Tempo: each piece gets a starting tempo drawn (seeded) in a range that suits it (PIECES; together
  50-180 BPM) and a tempo curve over the excerpt, applied to the score positions BEFORE rendering:
  "constant"; "ritardando" / "accelerando" (the tempo changes linearly in score position, to 0.85x /
  1.15x at the end); "rubato" (1 + 0.06 g(u), g a seeded sum of three slow sinusoids, 0.5-3 cycles per
  excerpt, scaled to max |g| = 1).
- Render: fluidsynth (symmv.io.media.render_midi) at 44.1 kHz, madmom's rate, with a General MIDI piano
  program from PROGRAMS (acoustic / bright / electric grand, honky-tonk, two electric pianos) and one of
  two soundfonts (TimGM6mb, FluidR3_GM where installed), seeded per piece. Onsets leave fluidsynth 3-7 ms
  after their note-on (measured), far inside the 70 ms tolerance.
- Files per piece: <name>.mid (the rendered notes, also the "oracle transcription"), <name>.wav and
  <name>.json (the truth, written last: a piece counts as built only when it exists and its plan matches).

Conventions (the truth every tracker is scored against)
- The beat is the notated beat: the quarter note in 2/4, 3/4 and 4/4; in 6/8 the DOTTED QUARTER (the
  musical beat of a compound meter, what a listener taps), so a 6/8 bar has 2 beats, the meter of a 6/8
  piece is 2 beats per bar, and its tempo is dotted-quarter BPM. (`beat_unit`: numerators 6, 9, 12 over
  8 or 16 are compound.) A tracker that follows the eighths of a 6/8 piece is off by 3x in tempo.
- Beat times come from the score offsets mapped through the tempo curve (exact: analytic for the linear
  curves, a 1/64-quarter trapezoid integral for rubato), plus LEAD_IN_S of silence; beats start at the
  first note (a silent grid beat before a short pickup is not a beat anyone hears) and stop before the
  closing bar line. Downbeats are the beats that open a bar.
- Tempo = 60 / median true inter-beat interval; pickup_beats = the pickup bar's length in beats (0: none;
  may be fractional, e.g. 1/3 for an eighth-note pickup in 6/8).

Scores (pure functions, NaN when a reference is empty; mir_eval 0.8 underneath)
- beat F-measure, 70 ms window; CMLt and AMLt continuity (Hainsworth / Klapuri: 17.5 % of the
  inter-beat interval, AMLt also accepting double / half tempo and the off-beat); downbeat F, 70 ms.
  As mir_eval.beat.evaluate and MIREX do, beats before 5 s are left out of beat and downbeat scores
  (trackers need a few beats to lock in). Where a demo cover's score grid breaks before its music ends
  (Handel's Lascia ch'io pianga at 24 s of 29), estimates past the last true beat + half a beat are left
  out too (`RhythmTruth.scored_until_s`): nothing is known of the beats there.
- tempo error |est / true - 1| (a doubled or halved tempo is an error of 1.0 or 0.5, i.e. wrong);
  tempo ok: error <= 4 %. Meter ok: the tracker's beats per bar == the true beats per bar.
- diagnostics: the metrical level est/true tempo ratio nearest to 1, 2, 1/2, 3, 1/3, 3/2, 2/3; the beat
  phase (where estimated beats fall inside true beat intervals: 0 on the beat, 0.5 the off-beat); the
  downbeat shift (which true beat of the bar the tracker calls "1").

`evaluate(tracker, corpus, notes=...)` calls `tracker(samples, sample_rate, notes) -> BeatTrack` on
every piece; `notes` is the oracle transcription ("oracle": the rendered MIDI) or a real one
(symmv.transcription.backends, e.g. "transkun"), cached as <name>.<backend>.json next to the audio.
`demo_corpus` adds the offline demo source's covers, whose beats are recovered from the music21 scores
they were rendered from (symmv.sources.demo renders music21's own MIDI, so its tempo map is the truth).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from symmv.core.records import Note

log = logging.getLogger(__name__)

CORPUS_VERSION = "rhythm-v1"  # bump when the plan, the excerpting or the rendering changes
DEMO_TRUTH_VERSION = "demo-truth-v3"  # bump when the demo covers' truth recovery changes (v3: scored_until_s)
DEFAULT_CACHE = Path("data/bench-cache/rhythm")
SAMPLE_RATE = 44100  # madmom's rate; the render writes it directly
LEAD_IN_S = 0.5  # silence before the first note
TARGET_S = (25.0, 30.0, 28.0)  # excerpt length: shortest, longest, preferred
BEAT_WINDOW_S = 0.07
SKIP_START_S = 5.0  # mir_eval.beat.trim_beats' default
TEMPO_TOLERANCE = 0.04
CURVE_DEPTH = {"constant": 0.0, "ritardando": 0.15, "accelerando": 0.15, "rubato": 0.06}
PROGRAMS = (0, 0, 1, 2, 3, 4, 5)  # GM: acoustic grand (twice as likely), bright, electric grand, honky-tonk, EP 1, EP 2
SOUNDFONTS = ("TimGM6mb.sf2", "FluidR3_GM.sf2")

# The goals of issue 22: (metric, threshold, share of pieces that must reach it).
GOALS = {"beat_f": (0.90, 0.95), "downbeat_f": (0.85, 0.90), "tempo_ok": (True, 0.95), "meter_ok": (True, 0.90)}


# ---------------------------------------------------------------- conventions

def beat_unit(numerator: int, denominator: int) -> tuple[int, float]:
    """(beats per bar, beat length in quarter notes): compound meters (6, 9, 12 over 8 or 16) beat in
    dotted notes (6/8: 2 dotted quarters), simple meters in the denominator's unit (3/4: 3 quarters)."""
    if numerator in (6, 9, 12) and denominator in (8, 16):
        return numerator // 3, 3 * 4.0 / denominator
    return numerator, 4.0 / denominator


# ---------------------------------------------------------------- tempo curves

@dataclass(frozen=True)
class TempoCurve:
    """The local tempo over the excerpt: start_bpm * factor(u), u = score position / length_ql in [0, 1]
    (positions past the end keep the end's tempo). BPM counts beats of `beat_ql` quarter notes."""

    kind: str  # "constant" | "ritardando" | "accelerando" | "rubato"
    start_bpm: float
    beat_ql: float
    length_ql: float
    seed: int = 0

    def factor(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        depth = CURVE_DEPTH[self.kind]
        if self.kind == "constant":
            return np.ones_like(u)
        if self.kind in ("ritardando", "accelerando"):
            return 1.0 + (depth if self.kind == "accelerando" else -depth) * u
        rng = np.random.default_rng(self.seed)
        cycles, phases, weights = rng.uniform(0.5, 3.0, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.0, 3)

        def wiggle(x):
            return sum(w * np.sin(2 * np.pi * c * x + p) for c, p, w in zip(cycles, phases, weights))

        peak = np.max(np.abs(wiggle(np.linspace(0, 1, 2001))))
        return 1.0 + depth * wiggle(u) / peak

    def bpm(self, q_ql: np.ndarray) -> np.ndarray:
        return self.start_bpm * self.factor(np.asarray(q_ql, dtype=np.float64) / self.length_ql)

    def seconds(self, q_ql: np.ndarray | float) -> np.ndarray:
        """Seconds from position 0 to score positions q (quarter notes): the integral of 60 / quarter-BPM."""
        q = np.asarray(q_ql, dtype=np.float64)
        sec_per_ql = 60.0 / (self.start_bpm * self.beat_ql)  # at factor 1
        length = self.length_ql
        inside = np.clip(q, 0.0, length)
        if self.kind == "constant":
            t = inside * sec_per_ql
        elif self.kind in ("ritardando", "accelerando"):
            a = CURVE_DEPTH[self.kind] * (1 if self.kind == "accelerando" else -1)
            t = sec_per_ql * length / a * np.log1p(a * inside / length)
        else:
            grid = np.linspace(0.0, length, max(2001, int(64 * length) + 1))
            rate = sec_per_ql / self.factor(grid / length)
            cumulative = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (rate[1:] + rate[:-1]) / 2)])
            t = np.interp(inside, grid, cumulative)
        beyond = np.maximum(q - length, 0.0) * sec_per_ql / float(self.factor(1.0))
        return t + beyond


# ---------------------------------------------------------------- score -> notes and truth

@dataclass(frozen=True)
class BarGrid:
    """The bar grid of a score's opening time signature, in quarter notes from the score's start."""

    time_signature: str
    beats_per_bar: int
    beat_ql: float
    bar_ql: float
    anchor_ql: float  # the first full bar's downbeat (= the pickup's length; 0 without a pickup)
    end_ql: float  # the last bar line before the grid breaks (time signature change, odd measure, end)

    @property
    def pickup_beats(self) -> float:
        return self.anchor_ql / self.beat_ql

    def beats(self, start_ql: float, end_ql: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions, 1-based beat in bar) of the grid beats in [start_ql, end_ql)."""
        k0 = math.ceil((start_ql - self.anchor_ql) / self.beat_ql - 1e-9)
        k1 = math.ceil((end_ql - self.anchor_ql) / self.beat_ql - 1e-9)
        k = np.arange(k0, k1)
        return self.anchor_ql + k * self.beat_ql, np.mod(k, self.beats_per_bar) + 1


def bar_grid(score) -> BarGrid:
    from music21 import meter

    measures = list(score.parts[0].getElementsByClass("Measure"))
    ts = measures[0].timeSignature or score.recurse().getElementsByClass(meter.TimeSignature).first()
    beats_per_bar, beat_ql = beat_unit(int(ts.numerator), int(ts.denominator))
    bar_ql = float(ts.barDuration.quarterLength)
    first_ql = float(measures[0].duration.quarterLength)
    anchor = first_ql if (float(measures[0].paddingLeft) > 0 or first_ql < bar_ql - 1e-6) else 0.0
    end = anchor
    starts = [float(m.offset) for m in measures] + [float(measures[-1].offset + measures[-1].duration.quarterLength)]
    for i in range(1 if anchor else 0, len(measures)):
        m = measures[i]
        if m.timeSignature is not None and m.timeSignature.ratioString != ts.ratioString:
            break
        offset, length = starts[i], float(m.duration.quarterLength)
        phase = (offset - anchor) % bar_ql
        on_grid = min(phase, bar_ql - phase) < 1e-6
        if length > bar_ql + 1e-6 or length > starts[i + 1] - offset + 1e-6 \
                or (not on_grid and abs(length - bar_ql) < 1e-6):
            # an overlong bar (a cadenza, a tuplet error, grace notes given a duration: music21's MIDI then
            # shifts every later note off the bar lines) or a whole bar off the grid: the beat breaks here
            break
        end = offset + length
    end_ql = anchor + math.floor((end - anchor) / bar_ql + 1e-6) * bar_ql
    return BarGrid(ts.ratioString, beats_per_bar, beat_ql, bar_ql, anchor, end_ql)


def score_notes(score, end_ql: float) -> list[tuple[float, float, int]]:
    """(onset_ql, offset_ql, pitch) of every sounding note before end_ql: ties merged, grace notes
    dropped, the same pitch struck twice at once (two voices in unison) kept once, the longer."""
    notes: dict[tuple[float, int], float] = {}
    for element in score.stripTies(inPlace=False).flatten().notes:
        onset, length = float(element.offset), float(element.quarterLength)
        if length <= 0 or onset >= end_ql - 1e-9 or not hasattr(element, "pitches"):
            continue
        for pitch in element.pitches:
            key = (round(onset, 6), int(pitch.midi))
            notes[key] = max(notes.get(key, 0.0), min(onset + length, end_ql))
    return sorted((on, off, p) for (on, p), off in notes.items())


@dataclass(frozen=True)
class RhythmTruth:
    """What a tracker should find in one piece (times in seconds of its audio)."""

    beats_s: list[float]
    beat_in_bar: list[int]  # 1-based position of each true beat in its bar (1 = downbeat)
    downbeats_s: list[float]
    time_signature: str
    beats_per_bar: int  # 2/4: 2, 3/4: 3, 4/4: 4, 6/8: 2 (dotted quarters)
    beat_ql: float  # 1.0, or 1.5 for 6/8
    tempo_bpm: float  # 60 / median true inter-beat interval (dotted-quarter BPM in 6/8)
    pickup_beats: float  # 0: the excerpt starts on a downbeat
    curve: str
    start_bpm: float
    duration_s: float  # of the music: first note to the closing bar line, lead-in included
    source: str = ""  # music21 corpus path (and number in an opus)
    texture: str = "polyphonic"  # or "melody" (one line)
    program: int | None = 0  # GM program of the render (None: not ours to say, the demo's)
    soundfont: str = ""
    plan_key: str = ""  # hash of the plan it was built from (resumability)
    # estimates after this are not scored: the score's grid breaks here (a time-signature change, an
    # overlong bar) while the music goes on, so nothing is known of the beats after it; None: the whole audio
    scored_until_s: float | None = None

    @property
    def meter(self) -> str:
        return self.time_signature

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RhythmTruth":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def score_excerpt(score, start_bpm: float, curve_kind: str = "constant", seed: int = 0,
                  target_s: tuple[float, float, float] = TARGET_S, velocity_range: tuple[int, int] = (60, 90),
                  lead_in_s: float = LEAD_IN_S) -> tuple[list[Note], RhythmTruth]:
    """The opening 25-30 s of a music21 score at `start_bpm` beats per minute under a tempo curve:
    its notes in seconds (ready to render) and the exact beat truth. Pure: no files, no rendering."""
    grid = bar_grid(score)
    raw = score_notes(score, grid.end_ql)
    if not raw:
        raise ValueError("no notes inside the opening time signature")
    first_ql = raw[0][0]
    bar_lines = grid.anchor_ql + grid.bar_ql * np.arange(1, round((grid.end_ql - grid.anchor_ql) / grid.bar_ql) + 1)
    bar_lines = bar_lines[bar_lines > first_ql + 1e-9]
    if not len(bar_lines):
        raise ValueError("no complete bar inside the opening time signature")

    def curve_until(end_ql: float) -> TempoCurve:
        return TempoCurve(curve_kind, start_bpm, grid.beat_ql, end_ql - first_ql, seed)

    lengths = np.array([float(curve_until(e).seconds(e - first_ql)) for e in bar_lines])
    shortest, longest, preferred = target_s
    fits = np.flatnonzero((lengths >= shortest) & (lengths <= longest))
    if len(fits):
        choice = fits[np.argmin(np.abs(lengths[fits] - preferred))]
    else:
        choice = int(np.argmax(lengths)) if lengths.max() < shortest else int(np.argmin(lengths))
    end_ql = float(bar_lines[choice])
    curve = curve_until(end_ql)

    def to_s(q):
        return lead_in_s + curve.seconds(np.asarray(q) - first_ql)

    rng = np.random.default_rng(seed)
    kept = [n for n in raw if n[0] < end_ql - 1e-9]
    onsets, offsets = to_s([n[0] for n in kept]), to_s([min(n[1], end_ql) for n in kept])
    velocities = rng.integers(velocity_range[0], velocity_range[1] + 1, len(kept))
    notes = [Note(round(float(on), 6), round(float(max(off, on + 0.03)), 6), int(n[2]), int(v))
             for n, on, off, v in zip(kept, onsets, offsets, velocities)]
    positions, in_bar = grid.beats(first_ql, end_ql)
    beats_s = to_s(positions)
    truth = RhythmTruth(
        beats_s=[round(float(t), 6) for t in beats_s], beat_in_bar=[int(k) for k in in_bar],
        downbeats_s=[round(float(t), 6) for t, k in zip(beats_s, in_bar) if k == 1],
        time_signature=grid.time_signature, beats_per_bar=grid.beats_per_bar, beat_ql=grid.beat_ql,
        tempo_bpm=round(float(60.0 / np.median(np.diff(beats_s))), 4) if len(beats_s) > 1 else float("nan"),
        pickup_beats=round(grid.pickup_beats, 6), curve=curve_kind, start_bpm=round(float(start_bpm), 3),
        duration_s=round(float(to_s(end_ql)), 4))
    return notes, truth


# ---------------------------------------------------------------- the corpus plan

@dataclass(frozen=True)
class PieceSpec:
    path: str  # music21 corpus path
    number: int | None  # tune number inside an abc opus
    meter: str  # the opening time signature (checked when built)
    bpm_range: tuple[float, float]  # starting tempo range, beats per minute (dotted quarters in 6/8)
    texture: str = "polyphonic"

    @property
    def name(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", self.path.rsplit(".", 1)[0])  # no dots: names get suffixes
        return f"{self.meter.replace('/', '-')}_{stem}" + (f"_{self.number}" if self.number is not None else "")


def _specs(meter: str, rows: Sequence[tuple]) -> list[PieceSpec]:
    return [PieceSpec(r[0], r[1], meter, r[2], *r[3:]) for r in rows]


# Ranges keep each piece plausible (its fastest notes under ~12 per second, its grid-consistent opening
# at least 25 s long; measured with music21 10.5) while the corpus spans 50-180 BPM.
PIECES: list[PieceSpec] = [
    *_specs("2/4", [
        ("joplin/maple_leaf_rag.mxl", None, (70, 100)),
        ("mozart/k155/movement3.mxl", None, (100, 140)),
        ("mozart/k458/movement4.mxl", None, (130, 175)),
        ("beethoven/opus18no1/movement4.mxl", None, (120, 160)),
        ("beethoven/opus59no1/movement3.mxl", None, (50, 58)),
        ("beethoven/opus59no1/movement4.mxl", None, (110, 150)),
        ("haydn/opus74no1/movement4.mxl", None, (140, 180)),
        ("schumann_robert/dichterliebe_no2.xml", None, (50, 62)),
        ("miscFolk/americanfifeopus.abc", 29, (80, 110), "melody"),
        ("miscFolk/americanfifeopus.abc", 31, (90, 118), "melody"),
    ]),
    *_specs("3/4", [
        ("bach/bwv187.7.mxl", None, (60, 90)),
        ("bach/bwv17.7.mxl", None, (70, 100)),
        ("mozart/k155/movement2.mxl", None, (50, 70)),
        ("mozart/k156/movement3.mxl", None, (120, 150)),
        ("mozart/k80/movement1.mxl", None, (50, 66)),
        ("haydn/opus1no1/movement4.mxl", None, (130, 170)),
        ("haydn/opus74no1/movement3.mxl", None, (150, 180)),
        ("beethoven/opus18no1/movement3.mxl", None, (125, 142)),
        ("schumann_clara/polonaise_op1n2.mxl", None, (80, 100)),
        ("chopin/mazurka06-2.krn", None, (110, 150)),
        ("schubert/Lindenbaum.xml", None, (70, 95)),
        ("oneills1850/0001-0050.abc", 10, (100, 140), "melody"),
    ]),
    *_specs("4/4", [
        ("bach/bwv10.7.mxl", None, (70, 100)),
        ("bach/bwv101.7.mxl", None, (60, 90)),
        ("bach/bwv66.6.mxl", None, (50, 66)),
        ("mozart/k545/movement1_exposition.mxl", None, (100, 112)),
        ("mozart/k155/movement1.mxl", None, (120, 150)),
        ("haydn/opus74no1/movement1.mxl", None, (130, 170)),
        ("corelli/opus3no1/1grave.xml", None, (50, 60)),
        ("cpebach/h186.mxl", None, (60, 80)),
        ("liliuokalani/aloha_oe.mxl", None, (70, 95)),
        ("beach/prayer_of_a_tired_child.musicxml", None, (60, 80)),
        ("miscFolk/northumbrianminstrelsyopus.abc", 34, (90, 130), "melody"),
        ("miscFolk/americanfifeopus.abc", 7, (100, 135), "melody"),
    ]),
    *_specs("6/8", [
        ("mozart/k458/movement1.mxl", None, (90, 120)),
        ("schumann_robert/opus41no1/movement2.mxl", None, (60, 80)),
        ("schumann_clara/opus17/movement3.xml", None, (50, 60)),
        ("beethoven/opus59no2/movement1.mxl", None, (80, 110)),
        ("beethoven/opus59no3/movement2.mxl", None, (50, 65)),
        ("beethoven/opus18no5.mxl", None, (90, 120)),
        ("haydn/opus1no1/movement1.mxl", None, (70, 100)),
        ("johnson_j_r/lift_every_voice.mxl", None, (50, 70)),
        ("miscFolk/americanfifeopus.abc", 119, (58, 70), "melody"),  # grid breaks after 16 bars: 30 beats
        ("miscFolk/americanfifeopus.abc", 22, (60, 85), "melody"),
        ("miscFolk/northumbrianminstrelsyopus.abc", 20, (60, 76), "melody"),
    ]),
]

# Curves per meter, in the order of a seeded shuffle of that meter's pieces: about a third constant, the
# rest split between ritardando, accelerando and rubato.
CURVE_CYCLE = ("constant", "ritardando", "rubato", "accelerando", "constant", "rubato", "ritardando",
               "constant", "accelerando", "rubato", "constant", "ritardando")


@dataclass(frozen=True)
class PiecePlan:
    spec: PieceSpec
    start_bpm: float
    curve: str
    program: int
    soundfont: str
    seed: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        text = json.dumps([CORPUS_VERSION, asdict(self.spec), self.start_bpm, self.curve, self.program,
                           self.soundfont, self.seed], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stable_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def corpus_plan(seed: int = 0, pieces: Sequence[PieceSpec] = PIECES) -> list[PiecePlan]:
    """Tempo, curve, program and soundfont of every piece: a pure function of the seed."""
    from symmv.core import settings

    fonts = [f for f in SOUNDFONTS if (settings.SOUNDFONT_DIR / f).is_file()] or [""]
    plans = []
    for meter in sorted({p.meter for p in pieces}):
        group = [p for p in pieces if p.meter == meter]
        order = np.random.default_rng(_stable_seed(seed, meter)).permutation(len(group))
        for rank, index in enumerate(order):
            spec = group[index]
            rng = np.random.default_rng(_stable_seed(seed, spec.name))
            lo, hi = spec.bpm_range
            plans.append(PiecePlan(spec, round(float(rng.uniform(lo, hi)), 2), CURVE_CYCLE[rank % len(CURVE_CYCLE)],
                                   int(rng.choice(PROGRAMS)), str(rng.choice(fonts)), _stable_seed(seed, spec.name, 1)))
    return sorted(plans, key=lambda p: p.name)


# ---------------------------------------------------------------- pieces on disk

@dataclass(frozen=True)
class Piece:
    name: str
    audio_path: Path
    midi_path: Path  # the notes that sound in the audio (the oracle transcription)
    cache_stem: Path  # transcriptions go to <cache_stem>.<backend>.json
    truth: RhythmTruth
    kind: str = "corpus"  # or "demo"

    def samples(self, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        from symmv.io.audio import decode_audio

        return decode_audio(self.audio_path, sample_rate)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _parse(spec: PieceSpec):
    from music21 import corpus

    score = corpus.parse(spec.path, number=spec.number) if spec.number is not None else corpus.parse(spec.path)
    return score.scores[0] if hasattr(score, "scores") else score  # an abc opus of one tune


def build_piece(plan: PiecePlan, cache: Path) -> Piece:
    """Render one planned piece into `cache` (or load it when its truth JSON matches the plan)."""
    from symmv.core import settings
    from symmv.io.media import render_midi
    from symmv.io.midi import write_notes

    stem = cache / plan.name
    truth_path = stem.with_suffix(".json")
    if truth_path.is_file() and stem.with_suffix(".wav").is_file():
        truth = RhythmTruth.from_json(json.loads(truth_path.read_text()))
        if truth.plan_key == plan.key:
            return Piece(plan.name, stem.with_suffix(".wav"), stem.with_suffix(".mid"), stem, truth)
    score = _parse(plan.spec)
    notes, truth = score_excerpt(score, plan.start_bpm, plan.curve, plan.seed)
    if truth.time_signature != plan.spec.meter:
        raise ValueError(f"{plan.spec.path} opens in {truth.time_signature}, planned {plan.spec.meter}")
    source = plan.spec.path + (f"#{plan.spec.number}" if plan.spec.number is not None else "")
    truth = RhythmTruth(**{**asdict(truth), "source": source, "texture": plan.spec.texture,
                           "program": plan.program, "soundfont": plan.soundfont, "plan_key": plan.key})
    cache.mkdir(parents=True, exist_ok=True)
    # 9600 ticks per quarter at 120 BPM: 52 us per tick, so writing the MIDI moves no note measurably
    write_notes(notes, stem.with_suffix(".mid"), resolution=9600, program=plan.program)
    soundfont = settings.SOUNDFONT_DIR / plan.soundfont if plan.soundfont else None
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        wav = render_midi(stem.with_suffix(".mid"), Path(tmp) / "render.wav", sample_rate=SAMPLE_RATE,
                          soundfont=soundfont)
        os.replace(wav, stem.with_suffix(".wav"))
    _write_json(truth_path, truth.to_json())  # last: the piece is complete
    return Piece(plan.name, stem.with_suffix(".wav"), stem.with_suffix(".mid"), stem, truth)


def _build_plans(plans: list[PiecePlan], cache: Path, progress: bool, kind: str = "corpus") -> list[Piece]:
    """Each plan built (or loaded) in `cache`; a piece that will not parse or render is skipped, loudly."""
    pieces = []
    for n, plan in enumerate(plans):
        started = time.perf_counter()
        try:
            pieces.append(replace(build_piece(plan, Path(cache)), kind=kind))
        except Exception as exc:  # noqa: BLE001 - one bad score never stops the corpus
            log.warning("rhythm %s: skipped %s: %s", kind, plan.name, exc)
            continue
        if progress and time.perf_counter() - started > 0.5:
            print(f"[{n + 1}/{len(plans)}] built {kind} piece {plan.name} ({time.perf_counter() - started:.1f} s)",
                  flush=True)
    return pieces


def build_corpus(cache: Path = DEFAULT_CACHE, seed: int = 0, limit: int | None = None,
                 progress: bool = True) -> list[Piece]:
    """Build (or complete) the rhythm corpus in `cache`; pieces already there are loaded, not rebuilt."""
    plans = corpus_plan(seed)
    return _build_plans(_spread(plans, limit) if limit is not None else plans, cache, progress)


TRAINING_PIECES_PATH = Path(__file__).with_name("rhythm_training_pieces.json")


def scores_in_use() -> set[str]:
    """The music21 paths the benchmark (PIECES) and the demo covers (symmv.sources.demo) render: never training
    pieces, so a fitted tracker's benchmark scores stay held-out figures."""
    from symmv.sources.demo import MUSIC21_PIECES

    return {p.path for p in PIECES} | {p[0] for p in MUSIC21_PIECES}


def training_specs(path: Path = TRAINING_PIECES_PATH) -> list[PieceSpec]:
    """The meter chooser's training pieces (bench/scan_meter_training.py wrote the list): music21 corpus
    pieces outside `scores_in_use`."""
    data = json.loads(Path(path).read_text())
    specs = [PieceSpec(r["path"], r.get("number"), r["meter"], tuple(r["bpm_range"]), r.get("texture", "polyphonic"))
             for r in data["pieces"]]
    clash = sorted({s.path for s in specs} & scores_in_use())
    if clash:
        raise ValueError(f"{path}: training pieces that the benchmark or the demo uses: {', '.join(clash)}")
    return specs


def build_training_corpus(cache: Path = DEFAULT_CACHE / "train", seed: int = 1,
                          progress: bool = True) -> list[Piece]:
    """The training pieces rendered as the corpus is (own seed, own cache), kind "train"."""
    return _build_plans(corpus_plan(seed, training_specs()), cache, progress, kind="train")


def _spread(plans: list[PiecePlan], limit: int) -> list[PiecePlan]:
    """`limit` plans taken round-robin over meters, so a short run still sees every meter."""
    by_meter: dict[str, list[PiecePlan]] = {}
    for p in plans:
        by_meter.setdefault(p.spec.meter, []).append(p)
    out, i = [], 0
    while len(out) < min(limit, len(plans)):
        for group in by_meter.values():
            if i < len(group) and len(out) < limit:
                out.append(group[i])
        i += 1
    return sorted(out, key=lambda p: p.name)


def composition(corpus: Sequence[Piece]) -> dict:
    """Counts per meter, curve, program, texture, pickup and tempo band."""
    def band(bpm: float) -> str:
        edges = (0, 60, 80, 100, 120, 140, 160, 180)
        i = int(np.searchsorted(edges, bpm, side="right")) - 1
        return f"{edges[i]:03d}-{edges[i + 1]:03d}" if i < len(edges) - 1 else "180+"

    def count(values) -> dict:
        return dict(sorted(Counter(values).items()))

    t = [p.truth for p in corpus]
    return {"n_pieces": len(t), "audio_minutes": round(sum(x.duration_s for x in t) / 60, 2),
            "meter": count(x.time_signature for x in t), "curve": count(x.curve for x in t),
            "tempo_band_bpm": count(band(x.tempo_bpm) for x in t), "program": count(str(x.program) for x in t),
            "texture": count(x.texture for x in t), "with_pickup": sum(x.pickup_beats > 0 for x in t),
            "tempo_range_bpm": [round(min(x.tempo_bpm for x in t), 1), round(max(x.tempo_bpm for x in t), 1)]
            if t else []}


# ---------------------------------------------------------------- the demo source's covers

def demo_corpus(source: Path = Path("data/demo-source"), cache: Path = DEFAULT_CACHE / "demo",
                max_songs: int = 200) -> tuple[list[Piece], list[dict]]:
    """The demo covers whose beats can be recovered: (pieces, skipped with reasons).

    symmv.sources.demo writes music21's MIDI of the score and keeps every note that starts in the
    excerpt, in seconds of that MIDI's tempo map; the cover id is youtube_like_id("cover:" + key). So the
    score's bar grid through the same MIDI's tempo map gives the beats exactly; a recovered note onset
    list that does not match the kept ground-truth MIDI (5 ms) rules a cover out.
    """
    from symmv.io.midi import read_notes
    from symmv.sources.demo import music21_songs, youtube_like_id

    covers, truth_dir = source / "covers", source / "ground_truth"
    pieces, skipped = [], []
    if not truth_dir.is_dir():
        return pieces, [{"name": str(source), "reason": "no ground_truth folder"}]
    keys = {youtube_like_id("cover:" + s.key): s.key for s in music21_songs(max_songs)}
    for midi in sorted(truth_dir.glob("*.mid")):
        cover_id = midi.stem
        audio = next((p for p in covers.glob(f"{cover_id}.*") if p.suffix != ".json"), None)
        if cover_id not in keys or audio is None:
            skipped.append({"name": cover_id, "reason": "not a music21 demo cover" if audio else "no audio"})
            continue
        stem = cache / cover_id
        truth_path = stem.with_name(f"{cover_id}.truth.json")
        # a rebuilt cover or a change in how its truth is recovered makes a new truth
        midi_key = hashlib.sha256(DEMO_TRUTH_VERSION.encode() + midi.read_bytes() + audio.read_bytes()).hexdigest()[:16]
        truth = RhythmTruth.from_json(json.loads(truth_path.read_text())) if truth_path.is_file() else None
        if truth is None or truth.plan_key != midi_key:
            try:
                truth = replace(_demo_truth(keys[cover_id].split(":")[1], read_notes(midi)), plan_key=midi_key)
            except ValueError as err:
                skipped.append({"name": cover_id, "reason": str(err)})
                continue
            cache.mkdir(parents=True, exist_ok=True)
            for old in cache.glob(f"{cover_id}.*.json"):  # its transcriptions too
                old.unlink()
            _write_json(truth_path, truth.to_json())
        pieces.append(Piece(f"demo_{cover_id}", audio, midi, stem, truth, kind="demo"))
    return pieces, skipped


def _demo_truth(corpus_path: str, kept: list[Note]) -> RhythmTruth:
    import pretty_midi
    from music21 import corpus

    score = corpus.parse(corpus_path)
    grid = bar_grid(score)
    with tempfile.TemporaryDirectory() as tmp:
        score.write("midi", fp=str(Path(tmp) / "score.mid"))  # what symmv.sources.demo.source_midi does
        pm = pretty_midi.PrettyMIDI(str(Path(tmp) / "score.mid"))

    def to_s(q):
        return np.array([pm.tick_to_time(int(round(x * pm.resolution))) for x in np.atleast_1d(q)])

    onsets = np.array(sorted({n.onset_s for n in kept}))
    first_s, last_s = float(onsets[0]), float(onsets[-1])
    raw = score_notes(score, float(score.highestTime) + 1)
    expected = to_s(sorted({on for on, _, _ in raw}))
    expected = expected[expected <= last_s + 1e-6]
    # Kept onsets on score onsets (5 ms) prove the tempo map is the one the cover was rendered with. Not all
    # of them: music21 writes grace notes (score_notes drops them), and its MIDI of two voices striking one
    # pitch on one channel comes back from pretty_midi with notes merged (Clara Schumann's polonaises: 78-89 %).
    matched = np.mean(np.min(np.abs(onsets[:, None] - expected[None, :]), axis=1) < 0.005) if len(expected) else 0
    if matched < 0.75:
        raise ValueError(f"only {matched:.0%} of the kept onsets sit on the score's onsets")
    # beats from the first note to the last bar line of the grid that the excerpt reaches
    first_ql = min(on for on, _, _ in raw)
    positions, in_bar = grid.beats(first_ql, grid.end_ql)
    beats_s = to_s(positions)
    keep = beats_s <= last_s + 1e-6
    if keep.sum() < 8:
        raise ValueError(f"the opening time signature {grid.time_signature} holds only {int(keep.sum())} beats")
    beats_s, in_bar = beats_s[keep], in_bar[keep]
    period = float(np.median(np.diff(beats_s)))
    # the grid broke (grid.end_ql) before the music ends: beats after it are unknown, so not scored
    until = round(float(beats_s[-1]) + period / 2, 6) if float(to_s(grid.end_ql)[0]) < last_s - 1e-6 else None
    return RhythmTruth(
        beats_s=[round(float(t), 6) for t in beats_s], beat_in_bar=[int(k) for k in in_bar],
        downbeats_s=[round(float(t), 6) for t, k in zip(beats_s, in_bar) if k == 1],
        time_signature=grid.time_signature, beats_per_bar=grid.beats_per_bar, beat_ql=grid.beat_ql,
        tempo_bpm=round(60.0 / period, 4), pickup_beats=round(grid.pickup_beats, 6),
        curve="score", start_bpm=round(float(60.0 / np.diff(beats_s)[0]), 3),
        duration_s=round(float(beats_s[-1]) - first_s + period, 4),
        source=f"{corpus_path} (onsets on the score: {matched:.0%})", program=None,
        soundfont="demo (symmv.io.media.default_soundfont)", scored_until_s=until)


# ---------------------------------------------------------------- transcriptions

def oracle_notes(piece: Piece) -> list[Note]:
    from symmv.io.midi import read_notes

    return read_notes(piece.midi_path)


def transcribed_notes(piece: Piece, backend: str = "transkun") -> tuple[list[Note], dict]:
    """A real transcription of the piece's audio, cached as <cache_stem>.<backend>.json: (notes, about)."""
    path = piece.cache_stem.with_name(f"{piece.cache_stem.name}.{backend}.json")
    if path.is_file():
        data = json.loads(path.read_text())
    else:
        from symmv.transcription.backends import transcribe

        started = time.process_time()
        result = transcribe(piece.audio_path, backend=backend)
        data = {"backend": result.backend, "version": result.version, "cpu_s": round(time.process_time() - started, 2),
                "notes": [[n.onset_s, n.offset_s, n.pitch, n.velocity] for n in result.notes]}
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, data)
    notes = [Note(float(a), float(b), int(p), int(v)) for a, b, p, v in data["notes"]]
    return notes, {k: v for k, v in data.items() if k != "notes"}


def piece_notes(piece: Piece, source: str) -> tuple[list[Note], dict]:
    """The notes a tracker is handed: "oracle" (the rendered MIDI) or a transcription backend's name."""
    if source == "oracle":
        return oracle_notes(piece), {"backend": "oracle", "version": CORPUS_VERSION}
    return transcribed_notes(piece, source)


# ---------------------------------------------------------------- scores

def _trim(beats: Sequence[float], until_s: float | None = None) -> np.ndarray:
    """Beats from 5 s on (mir_eval's convention) and, given `until_s` (RhythmTruth.scored_until_s), up to it."""
    beats = np.asarray(beats, dtype=np.float64)
    return beats[(beats >= SKIP_START_S) & (beats <= (np.inf if until_s is None else until_s))]


def beat_scores(reference_s: Sequence[float], estimate_s: Sequence[float], until_s: float | None = None) -> dict:
    """F-measure (70 ms) and the continuity metrics of mir_eval.beat over beats after 5 s (and before
    `until_s`, where the truth ends before the music: RhythmTruth.scored_until_s).

    F = 2PR / (P + R), a hit being an estimate within 70 ms of a reference beat (each used once).
    CMLt: the share of reference beats matched by an estimate within 17.5 % of the local inter-beat
    interval whose previous beat is matched too (correct metrical level); AMLt: the same, also accepting the
    estimate at double or half tempo or on the off-beat (Hainsworth 2004; Klapuri et al. 2006).
    NaN when the reference is empty; 0 when the estimate is.
    """
    import mir_eval

    ref, est = _trim(reference_s, until_s), _trim(estimate_s, until_s)
    if len(ref) < 2:
        return {"beat_f": float("nan"), "cmlt": float("nan"), "amlt": float("nan")}
    if len(est) < 2:
        return {"beat_f": 0.0, "cmlt": 0.0, "amlt": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = mir_eval.beat.f_measure(ref, est, f_measure_threshold=BEAT_WINDOW_S)
        _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return {"beat_f": float(f), "cmlt": float(cmlt), "amlt": float(amlt)}


def downbeat_f(reference_s: Sequence[float], estimate_s: Sequence[float], until_s: float | None = None) -> float:
    """F-measure of downbeats, 70 ms window, after 5 s (as `beat_scores`). NaN without reference downbeats."""
    import mir_eval

    ref, est = _trim(reference_s, until_s), _trim(estimate_s, until_s)
    if not len(ref):
        return float("nan")
    if not len(est):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=BEAT_WINDOW_S))


def tempo_error(true_bpm: float, estimate_bpm: float | None) -> float:
    """|est / true - 1|: 0.04 is 4 % off, 1.0 a doubled and 0.5 a halved tempo. NaN without an estimate."""
    if estimate_bpm is None or not np.isfinite(estimate_bpm) or not true_bpm:
        return float("nan")
    return abs(float(estimate_bpm) / float(true_bpm) - 1.0)


METRICAL_LEVELS = {"x1": 1.0, "x2": 2.0, "x1/2": 0.5, "x3": 3.0, "x1/3": 1 / 3, "x3/2": 1.5, "x2/3": 2 / 3}


def metrical_level(true_bpm: float, estimate_bpm: float | None, tolerance: float = TEMPO_TOLERANCE) -> str:
    """Which simple ratio est/true the estimate sits on ("x1" right, "x2" double, "x1/3" a 6/8 bar...), or
    "other" / "none"."""
    if estimate_bpm is None or not np.isfinite(estimate_bpm):
        return "none"
    ratio = float(estimate_bpm) / float(true_bpm)
    name, level = min(METRICAL_LEVELS.items(), key=lambda kv: abs(math.log(ratio / kv[1])))
    return name if abs(ratio / level - 1) <= tolerance else "other"


def beat_phase(reference_s: Sequence[float], estimate_s: Sequence[float]) -> float:
    """Circular mean position of estimated beats inside the true beat intervals they fall in, in beats,
    within [-0.5, 0.5): 0 on the beat, -0.5 the off-beat. NaN without beats to compare."""
    ref, est = np.asarray(reference_s, dtype=float), np.asarray(estimate_s, dtype=float)
    est = est[(est >= ref[0]) & (est < ref[-1])] if len(ref) > 1 else est[:0]
    if not len(est):
        return float("nan")
    k = np.searchsorted(ref, est, side="right") - 1
    frac = (est - ref[k]) / (ref[k + 1] - ref[k])
    angle = np.angle(np.mean(np.exp(2j * np.pi * frac)))
    return float(((angle / (2 * np.pi)) + 0.5) % 1.0 - 0.5)


def downbeat_shift(truth: RhythmTruth, estimate_downbeats_s: Sequence[float]) -> int | None:
    """The true beat of the bar (1-based) that most estimated downbeats land on (within 70 ms): 1 is right,
    3 in 4/4 means the tracker's bars start half a bar late. None when no estimated downbeat hits a beat."""
    ref = np.asarray(truth.beats_s)
    hits = []
    for t in estimate_downbeats_s:
        i = int(np.argmin(np.abs(ref - t))) if len(ref) else -1
        if i >= 0 and abs(ref[i] - t) <= BEAT_WINDOW_S and ref[i] >= SKIP_START_S:
            hits.append(truth.beat_in_bar[i])
    return Counter(hits).most_common(1)[0][0] if hits else None


def score_track(truth: RhythmTruth, track) -> dict:
    """Every score of one BeatTrack against one truth."""
    estimate = [b.time_s for b in track.beats]
    error = tempo_error(truth.tempo_bpm, track.tempo_bpm)
    until = truth.scored_until_s
    return {**beat_scores(truth.beats_s, estimate, until),
            "downbeat_f": downbeat_f(truth.downbeats_s, track.downbeats_s, until),
            "tempo_est": None if track.tempo_bpm is None else round(float(track.tempo_bpm), 3),
            "tempo_error": error, "tempo_ok": bool(error <= TEMPO_TOLERANCE),
            "meter_est": track.beats_per_bar, "meter_ok": track.beats_per_bar == truth.beats_per_bar,
            "metrical_level": metrical_level(truth.tempo_bpm, track.tempo_bpm),
            "beat_phase": beat_phase(truth.beats_s, estimate),
            "downbeat_on_beat": downbeat_shift(truth, track.downbeats_s)}


# ---------------------------------------------------------------- evaluation

Tracker = Callable[[np.ndarray, int, list], object]  # (samples, sample_rate, notes) -> annotators.beats.BeatTrack


def evaluate(tracker: Tracker, corpus: Sequence[Piece], notes: str | None = "oracle",
             warm_up: bool = True) -> list[dict]:
    """Run `tracker` on every piece and score it; one row per piece.

    `notes`: what the tracker is handed as a transcription ("oracle", a backend name, or None for an
    empty list, for trackers that read only audio). cpu_s is time.process_time around the tracker call
    alone (decoding and transcription excluded); `warm_up` first runs it on 5 s of the first piece so
    that model loading is not charged to a piece.
    """
    rows = []
    for n, piece in enumerate(corpus):
        samples = piece.samples(SAMPLE_RATE)
        given, about = piece_notes(piece, notes) if notes else ([], {"backend": None})
        if warm_up and n == 0:
            tracker(samples[:5 * SAMPLE_RATE], SAMPLE_RATE, [x for x in given if x.onset_s < 5.0])
        started = time.process_time()
        track = tracker(samples, SAMPLE_RATE, given)
        cpu_s = time.process_time() - started
        truth = piece.truth
        rows.append({"name": piece.name, "kind": piece.kind, "meter": truth.time_signature,
                     "beats_per_bar": truth.beats_per_bar, "tempo_true": truth.tempo_bpm,
                     "pickup": truth.pickup_beats, "curve": truth.curve, "program": truth.program,
                     "texture": truth.texture, "audio_s": round(len(samples) / SAMPLE_RATE, 3),
                     "cpu_s": round(cpu_s, 3), "notes": about.get("backend"), "tracker": track.tracker,
                     "tracker_version": track.version, **score_track(truth, track)})
    return rows


def _median(values) -> float:
    values = [float(v) for v in values if v is not None and np.isfinite(float(v))]
    return round(float(np.median(values)), 4) if values else float("nan")


def summarize(rows: Sequence[dict]) -> dict:
    """Medians, goal shares (GOALS), cost, and the same medians per meter."""
    def block(part: Sequence[dict]) -> dict:
        return {"n": len(part), **{k: _median(r[k] for r in part) for k in ("beat_f", "cmlt", "amlt", "downbeat_f",
                                                                              "tempo_error")},
                "tempo_ok_share": round(float(np.mean([r["tempo_ok"] for r in part])), 4) if part else float("nan"),
                "meter_ok_share": round(float(np.mean([r["meter_ok"] for r in part])), 4) if part else float("nan")}

    goals = {}
    for metric, (threshold, share) in GOALS.items():
        values = [r[metric] for r in rows]
        met = [bool(v) if isinstance(threshold, bool) else (v is not None and np.isfinite(v) and v >= threshold)
               for v in values]
        achieved = float(np.mean(met)) if met else float("nan")
        goals[metric] = {"threshold": threshold, "share_needed": share, "share": round(achieved, 4),
                         "met": bool(achieved >= share)}
    audio_min = sum(r["audio_s"] for r in rows) / 60
    return {**block(rows), "goals": goals,
            "cpu_s_per_audio_min": round(sum(r["cpu_s"] for r in rows) / audio_min, 3) if audio_min else float("nan"),
            "metrical_levels": dict(Counter(r["metrical_level"] for r in rows).most_common()),
            "per_meter": {m: block([r for r in rows if r["meter"] == m]) for m in sorted({r["meter"] for r in rows})}}
