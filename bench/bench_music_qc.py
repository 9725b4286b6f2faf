"""Music-QC thresholds measured on a labelled corpus of real music; precision/recall per reason, held out.

    .venv/bin/python -m bench.bench_music_qc            # builds/reuses data/bench-cache/music_qc
    # cold: render ~2 min, basic-pitch ~3.5 min (220 s of audio in 14 s at load ~3; ~8 min at load ~7),
    # features ~2 min: ~8 min on 2 cores shared with other jobs, ~13 min at load ~7
    .venv/bin/python -m bench.bench_music_qc --write-classifier   # also refits annotators/music_qc_piano.json

Corpus (bench/qc_corpus.py): 16 real pieces (10 SymMV release covers, 6 music21 scores), split by piece
(even -> train, odd -> test), 11 variants each: 2 piano renders (ok), 2 other GM programs, speech over the
music and a 9-s talking intro (non_piano), bursts and sparse notes (fragmented), 5/9/13-s clips (too_short),
clusters / a drone / the extreme register (implausible). Transcription: basic-pitch (the CPU default).

Fitting, on the train pieces only:
- non_piano: logistic regression (sklearn, balanced classes, standardized) over TIMBRE_FEATURES, against a
  one-feature baseline (the note-decay slope, best-F1 threshold); both are scored on the test pieces.
- every scalar threshold: the midpoint between the most extreme train clip that must pass and the nearest
  train clip of the reason beyond it (a max-margin cut with no train false positive), or left at the
  dataclass default when the feature separates nothing.
The test figures are for annotators.music_qc's DEFAULT_THRESHOLDS and committed classifier, as the build
uses them; the fitted values are reported beside them.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from dataclasses import asdict, replace

import numpy as np

from annotators import music_qc as qc
from bench import qc_corpus
from bench.common import write_result
from symmv.io.audio import decode_audio

WORK = qc_corpus.CACHE / "music_qc"

# (threshold field, feature, direction: "max" = reject above, "min" = reject below, reason)
SCALAR_THRESHOLDS = (
    ("max_non_piano_share", "non_piano_share", "max", "non_piano"),
    ("max_silence_share", "silence_share", "max", "fragmented"),
    ("max_gap_s", "longest_gap_s", "max", "fragmented"),
    ("min_note_density_per_s", "note_density_per_s", "min", "fragmented"),
    ("min_pitch_span", "pitch_span", "min", "implausible"),
    ("max_median_pitch", "median_pitch", "max", "implausible"),
    ("min_median_pitch", "median_pitch", "min", "implausible"),
    ("max_polyphony_p95", "polyphony_p95", "max", "implausible"),
    ("max_onsets_per_s_p95", "onsets_per_s_p95", "max", "implausible"),
)


def corpus_features() -> tuple[list, list[qc.MusicFeatures], dict]:
    t0 = time.perf_counter()
    clips = qc_corpus.build_clips(WORK)
    t1 = time.perf_counter()
    cold = sum(not c.wav.with_suffix(".notes.json").exists() for c in clips)
    clips = qc_corpus.transcribe_clips(clips, WORK)
    t2 = time.perf_counter()
    feats = [qc.music_features(decode_audio(c.wav, qc_corpus.SR), qc_corpus.SR, list(c.notes)) for c in clips]
    t3 = time.perf_counter()
    audio_s = sum(f.duration_s for f in feats)
    return clips, feats, {"render_s": t1 - t0, "transcribe_s": t2 - t1, "clips_transcribed_now": cold,
                          "features_s": t3 - t2,
                          "audio_s": audio_s, "features_audio_s_per_s": audio_s / max(t3 - t2, 1e-9)}


def segment_training_set(clips, feats, mask) -> tuple[np.ndarray, np.ndarray]:
    """Window rows of the masked clips and their piano truth: a non-piano clip's windows are not piano, except
    a talking intro's windows after the speech ends (they are piano); windows straddling the end are left out."""
    x, y = [], []
    for clip, f, m in zip(clips, feats, mask):
        if not m:
            continue
        for start, timbre in zip(f.segment_start_s, f.segment_timbre):
            if clip.kind == "speech_intro":
                if start < qc_corpus.SPEECH_INTRO_S < start + qc.SEGMENT_S:
                    continue
                piano = start >= qc_corpus.SPEECH_INTRO_S
            else:
                piano = clip.label != "non_piano"
            x.append(timbre)
            y.append(piano)
    return np.array(x), np.array(y)


def fit_classifier(x: np.ndarray, y_piano: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000).fit(scaler.transform(x), y_piano)
    return {"features": list(qc.TIMBRE_FEATURES), "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0]),
            "model": "sklearn LogisticRegression(C=0.5, class_weight=balanced) on StandardScaler, 5-s windows",
            "trained_on": "bench/bench_music_qc.py train pieces", "n_train_windows": int(len(y_piano))}


def release_reference(limit: int = 0) -> dict:
    """Note statistics of the release's real covers (kept by the authors' musicians): what must pass."""
    from symmv.evaluation.annotators import release_notes

    out = []
    for mid in sorted((qc_corpus.RELEASE / "midi").glob("*.mid"))[: limit or None]:
        notes = release_notes(mid)
        if notes:
            out.append(qc.note_statistics(notes, max(n.offset_s for n in notes)))
    return {k: np.array([r[k] for r in out], np.float64) for k in out[0]}


def best_f1_threshold(values: np.ndarray, positive: np.ndarray, reject_above: bool) -> float:
    best, best_f1 = float(values.mean()), -1.0
    cands = np.unique(values)
    for a, b in zip(cands[:-1], cands[1:]):
        cut = (a + b) / 2
        pred = values > cut if reject_above else values < cut
        tp = (pred & positive).sum()
        f1 = 2 * tp / max(1, pred.sum() + positive.sum())
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    return best


def max_margin_threshold(values_pass: np.ndarray, values_reason: np.ndarray, direction: str) -> float | None:
    """Midpoint between the extreme passing clip and the nearest reason clip beyond it; None if none lies beyond."""
    if direction == "max":
        edge = values_pass.max()
        beyond = values_reason[values_reason > edge]
        return float((edge + beyond.min()) / 2) if beyond.size else None
    edge = values_pass.min()
    beyond = values_reason[values_reason < edge]
    return float((edge + beyond.max()) / 2) if beyond.size else None


def fit_scalars(clips, feats, train, extra) -> dict:
    out = {}
    order = list(qc.REASONS)
    for field, feature, direction, reason in SCALAR_THRESHOLDS:
        # clips that must pass this filter: ok ones and those whose reason comes later in QC_FILTERS order
        later = {r for r in order[order.index(reason) + 1:]} | {"ok"}
        values = np.array([extra[feature][i] if feature in extra else getattr(f, feature)
                           for i, f in enumerate(feats)], np.float64)
        must_pass = np.array([c.label in later for c in clips]) & train & np.isfinite(values)
        of_reason = np.array([c.label == reason for c in clips]) & train & np.isfinite(values)
        cut = max_margin_threshold(values[must_pass], values[of_reason], direction)
        out[field] = {"fitted": cut, "default": getattr(qc.DEFAULT_THRESHOLDS, field), "feature": feature,
                      "reject": "above" if direction == "max" else "below", "reason": reason,
                      "train_pass_range": [float(values[must_pass].min()), float(values[must_pass].max())],
                      "train_reason_range": [float(values[of_reason].min()), float(values[of_reason].max())]}
    return out


def scores(labels: list[str], predicted: list[str]) -> dict:
    out = {}
    for reason in qc.REASONS:
        tp = sum(p == reason and l == reason for p, l in zip(predicted, labels))
        n_pred, n_true = predicted.count(reason), labels.count(reason)
        out[reason] = {"precision": tp / n_pred if n_pred else float("nan"),
                       "recall": tp / n_true if n_true else float("nan"), "n_true": n_true, "n_predicted": n_pred}
    ok_true = [l == "ok" for l in labels]
    out["ok_false_reject_rate"] = float(np.mean([p != "ok" for p, t in zip(predicted, ok_true) if t]))
    bad = [l != "ok" for l in labels]
    out["any_reject"] = {"precision": float(np.mean([b for p, b in zip(predicted, bad) if p != "ok"])),
                         "recall": float(np.mean([p != "ok" for p, b in zip(predicted, bad) if b]))}
    return out


def verdict(f: qc.MusicFeatures, thresholds: qc.QCThresholds, classifier: qc.PianoClassifier) -> str:
    """qc.music_qc with an explicit classifier (the one just fitted, before it is the module's)."""
    for qc_filter in qc.QC_FILTERS:
        r = qc_filter(f, thresholds, classifier) if qc_filter is qc.non_piano else qc_filter(f, thresholds)
        if r:
            return r
    return "ok"


def check_dir(folder: Path, classifier: qc.PianoClassifier) -> list[dict]:
    """QC verdicts of every cover audio in a folder (e.g. the demo source's covers/): what a build would refuse."""
    from symmv.transcription import transcribe

    out = []
    for audio_path in sorted(p for p in Path(folder).iterdir() if p.suffix in (".m4a", ".wav", ".mp3", ".webm", ".opus")):
        notes = transcribe(audio_path, backend="basic-pitch").notes
        f = qc.music_features(decode_audio(audio_path, qc_corpus.SR), qc_corpus.SR, notes)
        reason = verdict(f, qc.DEFAULT_THRESHOLDS, classifier)
        out.append({"file": audio_path.name, "reason": None if reason == "ok" else reason,
                    "non_piano_share": qc.non_piano_share(f, qc.DEFAULT_THRESHOLDS, classifier),
                    **{k: v for k, v in asdict(f).items() if not k.startswith("segment_")}})
        print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-classifier", action="store_true",
                    help=f"refit and write {qc.CLASSIFIER_PATH.name} from the train pieces")
    ap.add_argument("--release-songs", type=int, default=300, help="release covers for the must-pass reference")
    ap.add_argument("--check-dir", type=Path, default=None,
                    help="also report the verdict on every cover audio in this folder (e.g. data/demo-source/covers)")
    ap.add_argument("--full-covers", action="store_true",
                    help="also render whole release covers (qc_corpus.FULL_COVERS) and report their verdicts")
    args = ap.parse_args()
    clips, feats, timing = corpus_features()
    train = np.array([c.split == "train" for c in clips])
    test = ~train
    labels = [c.label for c in clips]

    x_train, y_train = segment_training_set(clips, feats, train)
    fitted = fit_classifier(x_train, y_train)
    if args.write_classifier or qc.PIANO_CLASSIFIER is None:
        qc.CLASSIFIER_PATH.write_text(json.dumps(fitted, indent=1) + "\n")
    classifier = qc.PianoClassifier.from_dict(json.loads(qc.CLASSIFIER_PATH.read_text()))
    checked = check_dir(args.check_dir, classifier) if args.check_dir else None
    full = check_dir(qc_corpus.render_full_covers(qc_corpus.CACHE / "full_covers"), classifier) \
        if args.full_covers else None
    x_test, y_test = segment_training_set(clips, feats, test)

    # the one-feature baseline: a window is not piano when its notes do not decay (bowed, blown, sung, organ)
    decay_i = qc.TIMBRE_FEATURES.index("decay_db_per_s")
    decay_cut = best_f1_threshold(x_train[:, decay_i], ~y_train, reject_above=True)

    def window_scores(pred_not_piano, truth_piano):
        tp = (pred_not_piano & ~truth_piano).sum()
        return {"precision": float(tp / max(1, pred_not_piano.sum())),
                "recall": float(tp / max(1, (~truth_piano).sum())), "n_windows": int(len(truth_piano))}

    p_train = np.array([classifier.probability(t) for t in x_train])
    p_test = np.array([classifier.probability(t) for t in x_test])
    share = np.array([qc.non_piano_share(f, qc.DEFAULT_THRESHOLDS, classifier) for f in feats])
    decay_share = np.array([np.mean([t[decay_i] > decay_cut for t in f.segment_timbre]) if f.segment_timbre
                            else np.nan for f in feats])
    is_np = np.array([l == "non_piano" for l in labels])
    eligible = np.array([l in ("ok", "non_piano") for l in labels])  # clip level: piano covers vs non-piano

    def clip_scores(share_values, mask, cut):
        pred = share_values[mask] > cut
        truth = is_np[mask]
        tp = (pred & truth).sum()
        return {"precision": float(tp / max(1, pred.sum())), "recall": float(tp / max(1, truth.sum())),
                "n_clips": int(mask.sum())}

    non_piano_compare = {
        "logistic_regression": {"windows_train": window_scores(p_train < 0.5, y_train),
                                "windows_test": window_scores(p_test < 0.5, y_test),
                                "clips_test_ok_vs_non_piano": clip_scores(share, test & eligible,
                                                                          qc.DEFAULT_THRESHOLDS.max_non_piano_share)},
        "decay_slope_only": {"threshold_db_per_s": decay_cut,
                             "windows_train": window_scores(x_train[:, decay_i] > decay_cut, y_train),
                             "windows_test": window_scores(x_test[:, decay_i] > decay_cut, y_test),
                             "clips_test_ok_vs_non_piano": clip_scores(decay_share, test & eligible,
                                                                       qc.DEFAULT_THRESHOLDS.max_non_piano_share)},
    }
    scalars = fit_scalars(clips, feats, train, {"non_piano_share": share})
    release = release_reference(args.release_songs)
    for v in scalars.values():
        if v["feature"] in release:
            vals = release[v["feature"]]
            rejected = vals > v["default"] if v["reject"] == "above" else vals < v["default"]
            v["release_covers_rejected_share_at_default"] = float(np.mean(rejected))
            v["release_p01_p50_p99"] = [float(np.nanpercentile(vals, q)) for q in (1, 50, 99)]
    fitted_thresholds = replace(qc.DEFAULT_THRESHOLDS, **{k: v["fitted"] for k, v in scalars.items()
                                                          if v["fitted"] is not None})

    def verdicts(thresholds):
        return [verdict(f, thresholds, classifier) for f in feats]

    predicted = verdicts(qc.DEFAULT_THRESHOLDS)
    predicted_fitted = verdicts(fitted_thresholds)
    pick = lambda seq, m: [s for s, k in zip(seq, m) if k]  # noqa: E731
    per_clip = [{"clip": c.name, "split": c.split, "label": c.label, "kind": c.kind, "predicted": p,
                 "non_piano_share": float(sh),
                 "segment_piano_probability": [round(classifier.probability(t), 3) for t in f.segment_timbre],
                 **{k: v for k, v in asdict(f).items() if not k.startswith("segment_")}}
                for c, f, p, sh in zip(clips, feats, predicted, share)]
    confusion = {}
    for l, p in zip(pick(labels, test), pick(predicted, test)):
        confusion.setdefault(l, {}).setdefault(p, 0)
        confusion[l][p] += 1
    release_rejects = {}
    for name, qc_filter in (("implausible", qc.implausible), ("fragmented", qc.fragmented)):
        n = len(release["duration_s"])
        hits = 0
        for i in range(n):
            row = {k: release[k][i] for k in release}
            f = qc.MusicFeatures(**{**row, "n_notes": int(row["n_notes"])}, segment_start_s=(), segment_timbre=())
            hits += qc_filter(f, qc.DEFAULT_THRESHOLDS) is not None
        release_rejects[name] = hits / n
    result = {
        "benchmark": "music_qc",
        "inputs": {"pieces": [p for p, _, _ in qc_corpus.corpus_plan()], "n_clips": len(clips),
                   "n_train": int(train.sum()), "n_test": int(test.sum()), "transcriber": "basic-pitch",
                   "excerpt_s": qc_corpus.EXCERPT_S, "sample_rate": qc_corpus.SR, "segment_s": qc.SEGMENT_S,
                   "annotator_version": qc.ANNOTATOR_VERSION, "release_reference_songs": len(release["duration_s"])},
        "timing": timing,
        "held_out": scores(pick(labels, test), pick(predicted, test)),
        "held_out_confusion": confusion,
        "held_out_with_fitted_thresholds": scores(pick(labels, test), pick(predicted_fitted, test)),
        "train": scores(pick(labels, train), pick(predicted, train)),
        "release_covers_rejected_by_note_filters": release_rejects,
        "non_piano_classifier_vs_heuristic": non_piano_compare,
        "classifier": {"path": str(qc.CLASSIFIER_PATH.name), "refit_now": fitted,
                       "committed_equals_refit": bool(np.allclose(classifier.coef, fitted["coef"]))},
        "thresholds": {"defaults": asdict(qc.DEFAULT_THRESHOLDS), "fitted": scalars},
        "per_clip": per_clip,
    }
    if full is not None:
        result["full_release_covers"] = {"n": len(full), "rejected": {r["file"]: r["reason"] for r in full if r["reason"]},
                                         "verdicts": full}
    if checked is not None:
        result["check_dir"] = {"folder": str(args.check_dir), "n": len(checked),
                               "rejected": {r["file"]: r["reason"] for r in checked if r["reason"]}, "verdicts": checked}
    write_result("music_qc", result)
    print(json.dumps({k: result[k] for k in ("held_out", "held_out_confusion", "non_piano_classifier_vs_heuristic",
                                             "release_covers_rejected_by_note_filters", "timing")}, indent=1))
    for name, v in scalars.items():
        print(f"{name:24s} default {v['default']:8.3f} fitted {v['fitted']}  pass {v['train_pass_range']}"
              f"  reason {v['train_reason_range']}  release {v.get('release_p01_p50_p99')}"
              f" rej {v.get('release_covers_rejected_share_at_default')}")


if __name__ == "__main__":
    main()
