"""Beats, downbeats, meter and tempo from the audio and its transcription together (issue 22).

madmom's downbeat network (annotators.beats) finds a pulse that sits on the metrical grid almost always
(median AMLt 0.98 on the rhythm benchmark) but often at the wrong level: doubled below 70 BPM, the eighths
or the quarters of a 6/8, 3/4 called 4/4, the downbeat shifted by a pickup. The notes say which level is
the beat and where the bar starts: bass notes, harmony changes and long notes fall on strong beats, and
the onsets between pulses say whether a beat divides in two or in three. So:

1. pulse: madmom's RNN activations decoded by its DBN (the pipeline's audio tracker, unchanged);
2. tatums: every pulse interval split in 2 or 3, whichever the note onsets between pulses follow
   (`subdivision`), the grid extended over the whole piece;
3. evidence per tatum (`TATUM_FEATURES`): madmom's beat and downbeat activations, note-onset strength,
   bass onsets, pitch-class change over 2 and 4 tatums, note length, onset count;
4. hypotheses (`hypotheses`): a beat of Q tatums (Q in 1, 2, 3, 4, 6, 8), a bar of m beats (2, 3, 4)
   and a phase (which tatum opens the first bar). Each is described by how much the evidence rises on its
   beats over the tatums and on its downbeats over its other beats, its tempo and bar length (log-scale,
   with squares: a prior over levels) and its level relative to madmom's pulse;
5. choice: a conditional-logit model over the hypotheses (`choose`), weights in meter_weights.json,
   fitted by bench/fit_meter.py on the rhythm benchmark's rendered corpus (music21 pieces, CC0/PD
   scores; see the JSON for the fit and its cross-validated scores).

A 6/8 bar comes out as 2 beats of 3 tatums (dotted-quarter beats), the benchmark's convention.
Cost over madmom alone: the tatum features and ~300 hypothesis rows per piece, a few ms per minute.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from symmv.core.records import Beat, Note

ANNOTATOR_VERSION = "meter-joint 3"  # 3: the grid ends with the music (music_end); few notes: madmom's track
WEIGHTS_PATH = Path(__file__).with_name("meter_weights.json")
FPS = 100  # madmom's activation frame rate
BEAT_LEVELS = (1, 2, 3, 4, 6, 8)  # a beat of Q tatums
METERS = (2, 3, 4)  # beats per bar
TATUM_FEATURES = ("downbeat_act", "beat_act", "onset", "bass", "harmony2", "harmony4", "length", "count")
ONSET_WINDOW_S = 0.05  # a note belongs to the tatum it starts within this distance of
BASS_BELOW = 55  # MIDI pitch (G3): a pianist's left hand
MIN_ONSETS = 16  # fewer distinct note onsets say nothing of bars: madmom's own track is returned, named as such


@dataclass(frozen=True)
class Hypothesis:
    beat_tatums: int  # Q: tatums per beat
    meter: int  # m: beats per bar
    phase: int  # the tatum (0 .. Q*m-1) that opens the first bar


def subdivision(pulse_s: np.ndarray, onsets_s: np.ndarray) -> int:
    """2 or 3: how the note onsets between pulses divide a pulse (thirds win only when they outweigh halves
    and quarters together)."""
    if len(pulse_s) < 2 or not len(onsets_s):
        return 2
    i = np.searchsorted(pulse_s, onsets_s, side="right") - 1
    inside = (i >= 0) & (i < len(pulse_s) - 1)
    i, t = i[inside], onsets_s[inside]
    phase = (t - pulse_s[i]) / (pulse_s[i + 1] - pulse_s[i])

    def mass(points, width=0.06):
        return sum(np.sum(np.abs(phase - p) < width) for p in points)

    return 3 if mass((1 / 3, 2 / 3)) > mass((1 / 2,)) + 0.5 * mass((1 / 4, 3 / 4)) else 2


def tatum_grid(pulse_s: np.ndarray, per_pulse: int, start_s: float, end_s: float) -> np.ndarray:
    """Each pulse interval split in `per_pulse` equal tatums, extended with the first / last interval's period
    to cover [start_s, end_s]."""
    pulse_s = np.asarray(pulse_s, dtype=np.float64)
    inner = [pulse_s[j] + (pulse_s[j + 1] - pulse_s[j]) * k / per_pulse
             for j in range(len(pulse_s) - 1) for k in range(per_pulse)]
    grid = np.array(inner + [pulse_s[-1]])
    head, tail = (pulse_s[1] - pulse_s[0]) / per_pulse, (pulse_s[-1] - pulse_s[-2]) / per_pulse
    before = grid[0] - head * np.arange(int(max(0.0, grid[0] - start_s) / head + 0.5), 0, -1)
    after = grid[-1] + tail * np.arange(1, int(max(0.0, end_s - grid[-1]) / tail + 0.5) + 1)
    return np.concatenate([before, grid, after])


def music_end(pulse_s: np.ndarray, onsets_s: np.ndarray) -> float:
    """Where the grid ends: madmom's last pulse, or past it the last onset of the run of notes that carries
    on from it with gaps under one pulse period. Notes after a longer silence are not music the pulse stopped
    following but a transcription's ghosts in the reverb tail (Basic Pitch re-detects the decaying sound at
    the start of its 1.64 s windows: 172 notes start after the last note ends in the 64 pieces of
    bench/bench_beats.py)."""
    end, period = float(pulse_s[-1]), float(pulse_s[-1] - pulse_s[-2])
    onsets_s = np.asarray(onsets_s, dtype=np.float64)
    for t in onsets_s[onsets_s > end]:
        if t - end > period:
            break
        end = float(t)
    return end


def _nearest(sorted_s: np.ndarray, points_s: np.ndarray) -> np.ndarray:
    """Index of the nearest time in non-empty, sorted `sorted_s` for each of `points_s` (the earlier on a tie)."""
    right = np.clip(np.searchsorted(sorted_s, points_s), 0, len(sorted_s) - 1)
    left = np.clip(right - 1, 0, len(sorted_s) - 1)
    return np.where(np.abs(sorted_s[left] - points_s) <= np.abs(sorted_s[right] - points_s), left, right)


def _chroma_change(tatums: np.ndarray, notes: list[Note], span: int) -> np.ndarray:
    """Per tatum: cosine distance between the pitch classes sounding in the `span` tatums after it and before it
    (duration-weighted)."""
    n = len(tatums)
    edges = np.concatenate([tatums, [tatums[-1] + (tatums[-1] - tatums[-2])]])
    chroma = np.zeros((n, 12))
    for note in notes:
        lo = max(0, int(np.searchsorted(edges, note.onset_s, side="right")) - 1)
        if lo >= n:  # starts after the grid (a transcription longer than the audio)
            continue
        hi = min(n, int(np.searchsorted(edges, note.offset_s, side="left")))
        for j in range(lo, max(lo + 1, hi)):
            overlap = min(edges[j + 1], note.offset_s) - max(edges[j], note.onset_s)
            chroma[j, note.pitch % 12] += max(overlap, 0.0) + 1e-3
    cum = np.vstack([np.zeros(12), np.cumsum(chroma, axis=0)])
    idx = np.arange(n)
    after = cum[np.minimum(idx + span, n)] - cum[idx]
    before = cum[idx] - cum[np.maximum(idx - span, 0)]
    dot = np.sum(after * before, axis=1)
    norm = np.linalg.norm(after, axis=1) * np.linalg.norm(before, axis=1)
    return np.where(norm > 0, 1.0 - dot / np.maximum(norm, 1e-12), 0.0)


def tatum_features(tatums: np.ndarray, activations: np.ndarray, notes: list[Note]) -> np.ndarray:
    """(n_tatums, len(TATUM_FEATURES)) evidence per tatum, each column divided by its mean (scale-free)."""
    n = len(tatums)
    frames = np.clip(np.round(tatums * FPS).astype(np.int64), 0, max(len(activations) - 1, 0))
    near = np.clip(frames[:, None] + np.arange(-3, 4)[None, :], 0, max(len(activations) - 1, 0))
    act = activations if len(activations) else np.zeros((1, 2))
    down, beat = act[near, 1].max(axis=1), act[near].sum(axis=2).max(axis=1)
    onset, bass, length, count = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    period = np.median(np.diff(tatums)) if n > 1 else 0.25
    nearest = _nearest(tatums, np.array([note.onset_s for note in notes], dtype=np.float64))
    for note, j in zip(notes, nearest):
        if abs(tatums[j] - note.onset_s) > ONSET_WINDOW_S:
            continue
        weight = note.velocity / 127.0
        onset[j] += weight
        count[j] += 1
        bass[j] += weight * (note.pitch < BASS_BELOW)
        length[j] = max(length[j], np.log1p((note.offset_s - note.onset_s) / period))
    columns = [down, beat, onset, bass, _chroma_change(tatums, notes, 2), _chroma_change(tatums, notes, 4),
               length, count]
    features = np.stack(columns, axis=1)
    return features / np.maximum(features.mean(axis=0, keepdims=True), 1e-9)


STRONGEST = (0, 3, 5)  # downbeat_act, bass, harmony4: the downbeat against the bar's strongest other beat
REPEATED = (2, 3, 6, 7)  # onset, bass, length, count: the rhythm that repeats bar after bar


def _repetition(features: np.ndarray, lag: int) -> float:
    """Mean correlation of the rhythm columns with themselves `lag` tatums later."""
    if lag >= len(features) - 4:
        return 0.0
    a, b = features[:-lag][:, REPEATED], features[lag:][:, REPEATED]
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    return float(np.mean(np.where(den > 0, (a * b).sum(axis=0) / np.maximum(den, 1e-12), 0.0)))


def _agreement(times_s: np.ndarray, reference_s: np.ndarray, window_s: float = 0.07) -> float:
    """Share of `reference_s` with a time of `times_s` within the window."""
    if not len(reference_s) or not len(times_s):
        return 0.0
    near = np.abs(times_s[_nearest(times_s, reference_s)] - reference_s)
    return float(np.mean(near <= window_s))


def _beats_per_bar(pulse_s: np.ndarray, downbeats_s: np.ndarray) -> int:
    """madmom's meter: the most common number of pulses between its downbeats (0 without two downbeats)."""
    if len(downbeats_s) < 2:
        return 0
    idx = np.searchsorted(pulse_s, downbeats_s - 0.02)
    gaps = np.diff(idx)
    gaps = gaps[gaps > 0]
    return int(np.bincount(gaps).argmax()) if len(gaps) else 0


def hypotheses(tatums: np.ndarray, features: np.ndarray, per_pulse: int, madmom_downbeats_s: np.ndarray,
               madmom_meter: int = 0, min_bpm: float = 30.0,
               max_bpm: float = 260.0) -> tuple[list[Hypothesis], np.ndarray]:
    """Every (beat level, meter, phase) the grid allows and its description (one row per hypothesis)."""
    period = float(np.median(np.diff(tatums)))
    n = len(tatums)
    mean_all = features.mean(axis=0)
    out, rows = [], []
    for q in BEAT_LEVELS:
        bpm = 60.0 / (q * period)
        if not min_bpm <= bpm <= max_bpm or n < 4 * q:
            continue
        beat_means = np.stack([features[p::q].mean(axis=0) for p in range(q)])
        for m in METERS:
            if n < 2 * q * m:
                continue
            repeats = [_repetition(features, q * m), _repetition(features, 2 * q * m), _repetition(features, q)]
            for phase in range(q * m):
                beat_mean = beat_means[phase % q]
                down_mean = features[phase::q * m].mean(axis=0)
                others = (beat_mean * m - down_mean) / (m - 1)  # the bar's other beats
                strongest_other = np.max([features[(phase + k * q) % (q * m)::q * m].mean(axis=0)
                                          for k in range(1, m)], axis=0)
                level = np.log2(q / per_pulse)  # 0: madmom's pulse is the beat
                prior = [np.log2(bpm / 100.0), np.log2(bpm / 100.0) ** 2,
                         np.log2(q * m * period / 2.5), np.log2(q * m * period / 2.5) ** 2,
                         level, level ** 2, float(level == 0), float(q in (3, 6)), float(m == 2), float(m == 3)]
                out.append(Hypothesis(q, m, phase))
                # bars that alternate strong / weak are half bars (a 4/4 read as 2/4, a 6/8 as 3/8)
                alternation = np.abs(features[phase::2 * q * m].mean(axis=0) -
                                     features[phase + q * m::2 * q * m].mean(axis=0))[list(STRONGEST)]
                downbeats = tatums[phase::q * m]
                madmom = [_agreement(downbeats, madmom_downbeats_s), _agreement(madmom_downbeats_s, downbeats),
                          float(level == 0 and m == madmom_meter)]
                rows.append(np.concatenate([beat_mean - mean_all, down_mean - others,
                                            (down_mean - strongest_other)[list(STRONGEST)], alternation, repeats,
                                            madmom, prior]))
    return out, np.array(rows)


FEATURE_NAMES = tuple([f"beat:{f}" for f in TATUM_FEATURES] + [f"bar:{f}" for f in TATUM_FEATURES] +
                      [f"bar_vs_strongest:{TATUM_FEATURES[i]}" for i in STRONGEST] +
                      [f"bar_alternation:{TATUM_FEATURES[i]}" for i in STRONGEST] +
                      ["repeat_bar", "repeat_2bars", "repeat_beat", "madmom_downbeats_kept", "downbeats_madmom_has",
                       "madmom_meter"] +
                      ["log_bpm", "log_bpm^2", "log_bar", "log_bar^2", "level", "level^2", "pulse_level",
                       "compound", "meter2", "meter3"])


def choose(options: list[Hypothesis], rows: np.ndarray, weights: np.ndarray) -> Hypothesis:
    return options[int(np.argmax(rows @ weights))]


def beats_of(tatums: np.ndarray, h: Hypothesis) -> list[Beat]:
    """The hypothesis' beats numbered in bars: a pickup before the first downbeat is bar 0 (as
    annotators.beats.number_bars)."""
    from annotators.beats import number_bars

    idx = np.arange(h.phase % h.beat_tatums, len(tatums), h.beat_tatums)
    beat_in_bar = ((idx - h.phase) // h.beat_tatums) % h.meter + 1
    return number_bars(tatums[idx], beat_in_bar)


@dataclass(frozen=True)
class Analysis:
    """Everything the choice saw, for the fit and for diagnostics."""

    pulse_s: np.ndarray
    per_pulse: int
    tatums: np.ndarray
    options: list[Hypothesis]
    rows: np.ndarray


def analyse(activations: np.ndarray, notes: list[Note], duration_s: float) -> Analysis | None:
    """Pulse, tatums, evidence and hypotheses of one piece (None when madmom finds under 4 beats)."""
    from annotators.beats import beats_from_activations

    decoded = beats_from_activations(activations)
    pulse = np.array([b.time_s for b in decoded])
    if len(pulse) < 4:
        return None
    notes = [n for n in notes if n.onset_s < duration_s]  # a transcription past the audio says nothing of it
    onsets = np.array(sorted(n.onset_s for n in notes))
    per_pulse = subdivision(pulse, onsets)
    # the grid covers the music (first onset to the end of the pulse or of the notes that carry it on), not
    # the silence or the reverb after it
    start = min(pulse[0], onsets[0] if len(onsets) else pulse[0])
    end = min(duration_s, music_end(pulse, onsets))
    tatums = tatum_grid(pulse, per_pulse, start - ONSET_WINDOW_S, end + ONSET_WINDOW_S)
    tatums = tatums[tatums >= 0]
    madmom_downbeats = np.array([b.time_s for b in decoded if b.is_downbeat])
    options, rows = hypotheses(tatums, tatum_features(tatums, activations, notes), per_pulse, madmom_downbeats,
                               _beats_per_bar(pulse, madmom_downbeats))
    return Analysis(pulse, per_pulse, tatums, options, rows) if options else None


def track_meter(samples: np.ndarray, notes: list[Note], sample_rate: int = 44100,
                weights_path: Path = WEIGHTS_PATH) -> "BeatTrack":
    """Beats, downbeats, meter and tempo of mono float samples and their transcription (see the module text)."""
    from annotators.beats import SAMPLE_RATE, BeatTrack, at_madmom_rate, beat_activations, tempo_from_beats

    samples = at_madmom_rate(samples, sample_rate)
    activations, duration_s = beat_activations(samples), len(samples) / SAMPLE_RATE
    onsets = {round(n.onset_s, 2) for n in notes if n.onset_s < duration_s}
    if len(onsets) < MIN_ONSETS:  # a click track or a near-silent transcription: the notes cannot choose
        from annotators.beats import track_from_activations

        alone = track_from_activations(activations)
        return replace(alone, version=f"{alone.version}, {ANNOTATOR_VERSION} fallback: {len(onsets)} note onsets < "
                                      f"{MIN_ONSETS}")
    analysis = analyse(activations, list(notes), duration_s)
    if analysis is None:
        return BeatTrack([], None, "joint-meter", meter_tracker_version(weights_path))
    beats = beats_of(analysis.tatums, choose(analysis.options, analysis.rows, model_weights(weights_path)))
    return BeatTrack(beats, tempo_from_beats(beats), "joint-meter", meter_tracker_version(weights_path))


def model_weights(path: Path = WEIGHTS_PATH) -> np.ndarray:
    """The fitted weights folded over the standardisation they were fitted on (rows @ w is the score)."""
    data = _weights_file(path)
    return np.array(data["weights"]) / np.array(data["scale"])


@functools.lru_cache(maxsize=4)
def _weights_file(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    if tuple(data["features"]) != FEATURE_NAMES:
        raise ValueError(f"{path} was fitted for other features than annotators.meter computes; refit with "
                         "bench/fit_meter.py")
    return data


def meter_tracker_version(path: Path = WEIGHTS_PATH) -> str:
    from annotators.beats import madmom_tracker_version

    return f"{ANNOTATOR_VERSION}, weights {_weights_file(path)['fit_id']}, pulse {madmom_tracker_version()}"
