"""Can a classifier tell generated music from real piano covers? Per-piece statistics and a two-sample test.

The paper's five figures (SC, PE, PCE, EBR, IOI; models/evaluation/metrics.py) are corpus means of a few pitch and
onset counts: music with flat melodies, no repetition and constant velocities meets them. This module
measures a piece the way a listener or a musician would look at a piano roll, then asks whether the
generated and the real pieces can be told apart:

- `piece_statistics(notes, chords)`: ~35 plain statistics of one piece on the 16th grid (pitch, melodic
  intervals, rhythm, polyphony, harmony, structure, dynamics); each NaN where undefined (no melody ...).
- `classifier_test(a, b)`: the classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): cross-validated
  accuracy of a linear and a tree classifier that tell rows of `a` from rows of `b`. 0.5 = indistinguishable.
- `overlapped_area(a, b)`: MGEval's overlapped area (Yang & Lerch 2020) of the two sets' distributions of
  one statistic (Gaussian KDEs; 1 = identical, 0 = disjoint).

All over `symmv.core.records.Note` with `bar`, `position`, `duration_16th` filled (quantized), tracks
"melody" / "accompaniment", and `models.tokens.ChordEvent` chords; 4/4 bars of 16 sixteenths.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from models.evaluation.metrics import pitch_class_entropy, scale_consistency
from models.music import CHORD_INTERVALS, grid_step, melody_line, sounding
from models.tokens import ChordEvent
from symmv.core.records import Note

PHRASE_REST_16TH = 4  # a melody rest of a beat or more ends a phrase
SHORT_16TH = 1  # "short" note: one 16th (a quarter of a beat)

# name -> group, in the order the benchmark reports them
STATISTICS = {
    "melody_pitch_mean": "pitch", "melody_pitch_std": "pitch", "melody_range": "pitch",
    "accompaniment_pitch_mean": "pitch", "accompaniment_pitch_std": "pitch", "accompaniment_range": "pitch",
    "melody_over_accompaniment": "pitch",
    "interval_abs_mean": "intervals", "interval_repeat_share": "intervals", "interval_step_share": "intervals",
    "interval_leap_share": "intervals", "interval_up_share": "intervals",
    "onsets_per_bar": "rhythm", "melody_notes_per_bar": "rhythm", "melody_ioi_16th": "rhythm",
    "melody_ioi_cv": "rhythm", "melody_duration_16th": "rhythm", "accompaniment_duration_16th": "rhythm",
    "short_note_share": "rhythm", "onset_on_beat_share": "rhythm", "onset_on_eighth_share": "rhythm",
    "notes_per_onset": "polyphony", "accompaniment_notes_per_onset": "polyphony", "mean_polyphony": "polyphony",
    "pitch_class_entropy": "harmony", "scale_consistency": "harmony", "chord_tone_share": "harmony",
    "chords_per_bar": "harmony",
    "melody_bar_repeat": "structure", "rhythm_bar_repeat": "structure", "melody_bar_similarity": "structure",
    "phrase_length_16th": "structure",
    "velocity_mean": "dynamics", "velocity_std": "dynamics", "melody_velocity_offset": "dynamics",
    "downbeat_accent": "dynamics", "velocity_bar_std": "dynamics",
}


def _mean(xs) -> float:
    return float(np.mean(xs)) if len(xs) else math.nan


def _std(xs) -> float:
    return float(np.std(xs)) if len(xs) else math.nan


def _range(xs) -> float:
    return float(max(xs) - min(xs)) if len(xs) else math.nan


def interval_statistics(line: Sequence[Note]) -> dict[str, float]:
    """Melodic intervals between consecutive melody notes: mean |interval| (semitones), shares of repeats
    (0), steps (1-2), leaps (>= 5) and of rising intervals among the non-repeats."""
    iv = np.diff([n.pitch for n in line])
    if not len(iv):
        return {k: math.nan for k in ("interval_abs_mean", "interval_repeat_share", "interval_step_share",
                                      "interval_leap_share", "interval_up_share")}
    a = np.abs(iv)
    moving = iv[iv != 0]
    return {"interval_abs_mean": float(a.mean()), "interval_repeat_share": float((a == 0).mean()),
            "interval_step_share": float(((a >= 1) & (a <= 2)).mean()), "interval_leap_share": float((a >= 5).mean()),
            "interval_up_share": float((moving > 0).mean()) if len(moving) else math.nan}


def bar_repetition(notes: Sequence[Note], n_bars: int) -> dict[str, float]:
    """Structure: over the bars after the first that hold melody, the share whose melody ((position, pitch)
    set) equals an earlier bar's; over bars with notes, the share whose onset pattern (positions of every
    note) equals an earlier bar's; and the mean, over melody bars after the first, of the best Jaccard
    similarity of its (position, pitch) set with an earlier bar's (graded: a varied repeat counts)."""
    melody, rhythm = defaultdict(set), defaultdict(set)
    for n in notes:
        rhythm[int(n.bar)].add(int(n.position))
        if n.track == "melody":
            melody[int(n.bar)].add((int(n.position), int(n.pitch)))
    mel_bars = [melody[b] for b in range(n_bars) if melody[b]]
    rhy_bars = [frozenset(rhythm[b]) for b in range(n_bars) if rhythm[b]]

    def repeat_share(bars) -> float:
        if len(bars) < 2:
            return math.nan
        return float(np.mean([any(bars[i] == bars[j] for j in range(i)) for i in range(1, len(bars))]))

    def best_jaccard(i: int) -> float:
        return max(len(mel_bars[i] & mel_bars[j]) / len(mel_bars[i] | mel_bars[j]) for j in range(i))

    sim = [best_jaccard(i) for i in range(1, len(mel_bars))]
    return {"melody_bar_repeat": repeat_share(mel_bars), "rhythm_bar_repeat": repeat_share(rhy_bars),
            "melody_bar_similarity": _mean(sim)}


def phrase_length_16th(line: Sequence[Note]) -> float:
    """Mean phrase length of the melody in 16ths: phrases are split at rests of a beat or more."""
    if not line:
        return math.nan
    lengths, start, end = [], grid_step(line[0]), grid_step(line[0]) + int(line[0].duration_16th or 1)
    for n in line[1:]:
        if grid_step(n) - end >= PHRASE_REST_16TH:
            lengths.append(end - start)
            start = grid_step(n)
        end = max(end, grid_step(n) + int(n.duration_16th or 1))
    lengths.append(end - start)
    return float(np.mean(lengths))


def chord_tone_share(line: Sequence[Note], chords: Sequence[ChordEvent]) -> float:
    """Share of melody notes whose pitch class is a tone of the chord sounding at their onset
    (notes under no chord or an "N"/"X" chord are not counted)."""
    if not chords or not line:
        return math.nan
    chord_at, hits = sounding(chords), []
    for n in line:
        c = chord_at(grid_step(n))
        if c is None or c.root < 0 or c.quality not in CHORD_INTERVALS:
            continue
        hits.append((n.pitch - c.root) % 12 in CHORD_INTERVALS[c.quality])
    return _mean(hits)


def dynamics(notes: Sequence[Note]) -> dict[str, float]:
    """Velocity: mean and spread over the piece, melody minus accompaniment mean, downbeat accent (mean on
    position 0 minus mean elsewhere) and the spread of per-bar mean velocities (phrase-level dynamics)."""
    v = np.array([n.velocity for n in notes], np.float64)
    if not len(v):
        return {k: math.nan for k in ("velocity_mean", "velocity_std", "melody_velocity_offset", "downbeat_accent",
                                      "velocity_bar_std")}
    mel = [n.velocity for n in notes if n.track == "melody"]
    acc = [n.velocity for n in notes if n.track == "accompaniment"]
    down = [n.velocity for n in notes if n.position == 0]
    other = [n.velocity for n in notes if n.position != 0]
    per_bar = defaultdict(list)
    for n in notes:
        per_bar[int(n.bar)].append(n.velocity)
    return {"velocity_mean": float(v.mean()), "velocity_std": float(v.std()),
            "melody_velocity_offset": _mean(mel) - _mean(acc) if mel and acc else math.nan,
            "downbeat_accent": _mean(down) - _mean(other) if down and other else math.nan,
            "velocity_bar_std": _std([np.mean(x) for x in per_bar.values()]) if len(per_bar) > 1 else math.nan}


def piece_statistics(notes: Sequence[Note], chords: Sequence[ChordEvent] = (), n_bars: int | None = None) -> dict:
    """Every statistic of STATISTICS for one piece (quantized notes; `n_bars` defaults to the last note's bar + 1)."""
    notes = [n for n in notes if n.bar is not None and n.position is not None]
    n_bars = n_bars or (max((int(n.bar) for n in notes), default=-1) + 1)
    bars = max(n_bars, 1)
    line = melody_line(notes)
    mel = [n.pitch for n in notes if n.track == "melody"]
    acc = [n.pitch for n in notes if n.track == "accompaniment"]
    onsets = defaultdict(list)
    for n in notes:
        onsets[grid_step(n)].append(n)
    acc_onsets = [sum(m.track == "accompaniment" for m in ns) for ns in onsets.values()]
    mel_ioi = np.diff([grid_step(n) for n in line])
    durations = [int(n.duration_16th or 1) for n in notes]
    sounding = sum(durations)
    span = (max((grid_step(n) + int(n.duration_16th or 1) for n in notes), default=0)
            - min((grid_step(n) for n in notes), default=0))
    out = {
        "melody_pitch_mean": _mean(mel), "melody_pitch_std": _std(mel), "melody_range": _range(mel),
        "accompaniment_pitch_mean": _mean(acc), "accompaniment_pitch_std": _std(acc),
        "accompaniment_range": _range(acc),
        "melody_over_accompaniment": float(np.median(mel) - np.median(acc)) if mel and acc else math.nan,
        **interval_statistics(line),
        "onsets_per_bar": len(onsets) / bars, "melody_notes_per_bar": len(line) / bars,
        "melody_ioi_16th": _mean(mel_ioi),
        "melody_ioi_cv": float(mel_ioi.std() / mel_ioi.mean()) if len(mel_ioi) else math.nan,
        "melody_duration_16th": _mean([int(n.duration_16th or 1) for n in line]),
        "accompaniment_duration_16th": _mean([int(n.duration_16th or 1) for n in notes if n.track == "accompaniment"]),
        "short_note_share": _mean([d <= SHORT_16TH for d in durations]),
        "onset_on_beat_share": _mean([s % 4 == 0 for s in onsets]),
        "onset_on_eighth_share": _mean([s % 2 == 0 for s in onsets]),
        "notes_per_onset": _mean([len(ns) for ns in onsets.values()]),
        "accompaniment_notes_per_onset": _mean([k for k in acc_onsets if k]),
        "mean_polyphony": sounding / span if span else math.nan,
        "pitch_class_entropy": pitch_class_entropy(notes), "scale_consistency": scale_consistency(notes),
        "chord_tone_share": chord_tone_share(line, chords),
        "chords_per_bar": len(chords) / bars if chords else math.nan,
        **bar_repetition(notes, n_bars), "phrase_length_16th": phrase_length_16th(line),
        **dynamics(notes),
    }
    return {k: out[k] for k in STATISTICS}


def matrix(rows: Sequence[dict], names: Sequence[str] = tuple(STATISTICS)) -> np.ndarray:
    """Per-piece statistics -> (n_pieces, n_statistics) float array (NaN kept)."""
    return np.array([[float(r.get(k, math.nan)) for k in names] for r in rows], np.float64)


def classifier_test(a: np.ndarray, b: np.ndarray, *, folds: int = 5, repeats: int = 5, seed: int = 0) -> dict:
    """Classifier two-sample test: balanced accuracy of telling rows of `a` from rows of `b`, cross-validated
    (stratified `folds`-fold, `repeats` reshuffles; mean and std over the repeats), for a logistic regression on
    standardised statistics and a random forest. NaNs are imputed with the training fold's median; a column
    with no value at all is 0. 0.5 = the two sets cannot be told apart; 1.0 = always."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.concatenate([a, b])
    X = np.where(np.isnan(X).all(0), 0.0, X)  # a statistic undefined everywhere carries nothing
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    classifiers = {
        "logistic": make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                  LogisticRegression(C=1.0, max_iter=2000)),
        "random_forest": make_pipeline(SimpleImputer(strategy="median"),
                                       RandomForestClassifier(n_estimators=200, min_samples_leaf=2, random_state=seed,
                                                              n_jobs=1)),
    }
    out = {}
    for name, clf in classifiers.items():
        scores = cross_val_score(clf, X, y, cv=cv, scoring="balanced_accuracy").reshape(repeats, folds).mean(1)
        out[name] = {"accuracy": float(scores.mean()), "std": float(scores.std())}
    forest = classifiers["random_forest"].fit(X, y)[-1]
    out["random_forest"]["top_features"] = [int(i) for i in np.argsort(forest.feature_importances_)[::-1][:8]]
    return out


def overlapped_area(a: Sequence[float], b: Sequence[float], grid: int = 512) -> float:
    """MGEval's overlapped area of two samples of one statistic: integral of min(p_a, p_b) over Gaussian KDEs
    (Scott's bandwidth) of each, in [0, 1]. A set with no spread (all values equal, where a KDE is undefined)
    is a narrow Gaussian of 2% of the pooled range (or 1e-3) around its value. NaN if either has no value."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 1 or len(b) < 1:
        return math.nan
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    width = max(hi - lo, 1e-3)
    xs = np.linspace(lo - 0.25 * width, hi + 0.25 * width, grid)

    def density(x: np.ndarray) -> np.ndarray:
        from scipy.stats import gaussian_kde

        if len(x) > 1 and x.std() > 1e-9 * width:
            try:
                return gaussian_kde(x)(xs)
            except np.linalg.LinAlgError:
                pass
        s = 0.02 * width
        return np.mean(np.exp(-0.5 * ((xs[:, None] - x[None]) / s) ** 2), 1) / (s * math.sqrt(2 * math.pi))

    pa, pb = density(a), density(b)
    dx = xs[1] - xs[0]
    pa, pb = pa / (pa.sum() * dx), pb / (pb.sum() * dx)
    return float(np.minimum(pa, pb).sum() * dx)


def overlap_table(a_rows: Sequence[dict], b_rows: Sequence[dict]) -> dict[str, float]:
    """OA per statistic between two sets of per-piece statistics."""
    return {k: overlapped_area([r[k] for r in a_rows], [r[k] for r in b_rows]) for k in STATISTICS}
