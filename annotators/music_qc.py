"""Music/audio quality control of a cover: pure filters that return a reject reason or None.

The paper's three musicians removed "fragmented or undesirable MIDI files" by hand (sec. 3.1); these
filters do it from the decoded cover audio and its transcription, with thresholds measured on a labelled
corpus of real music (bench/bench_music_qc.py: piano renders of release covers and music21 scores, the same
excerpts on other General MIDI programs, espeak-ng speech before and over the music, fragments, short
clips, implausible piano material; figures in bench/results/music_qc.json).

    features = music_features(audio, sample_rate, notes)     # pure: numpy/librosa over arrays
    reason = music_qc(features)                               # first refusal in QC_FILTERS order, or None

Each filter is `name(features, thresholds) -> str | None` (a refusal is a value with a reason):
- `too_short`: the audio is shorter than a usable song.
- `non_piano`: speech, singing or another instrument. Every SEGMENT_S window with notes gets a piano
  probability from a logistic regression over timbre and transcription statistics (weights in
  music_qc_piano.json, fitted by the benchmark; Aria-MIDI also used a piano classifier); the cover is refused
  when too large a share of its windows is not piano. Windows, not the whole clip, so a talking intro or a
  sung verse shows however long the piano part is, and a short spoken hello does not sink a whole cover.
  Chosen over a one-feature decay heuristic because it wins on the held-out part.
- `implausible`: transcribed notes no pianist plays: one pitch, only the extreme register, clusters.
- `fragmented`: too much silence, a long gap, or too few notes per second.

The piano classifier's weights are package data read once at import; the filters themselves do no I/O.

Limits: the corpus is rendered with one GM soundfont (TimGM6mb) and transcribed with basic-pitch; singing is
stood in for by GM choir/voice programs; real recordings (rooms, microphones, digital pianos, a real voice)
and another transcriber (transkun, PTI: other velocities and note lengths) shift the timbre and note
statistics, so refit music_qc_piano.json on real audio when some is labelled (bench/bench_music_qc.py
--write-classifier with real clips in the corpus).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from symmv.core import schema as _schema
from symmv.core.records import Note

ANNOTATOR_VERSION = "music-qc 1 (5-s window piano logistic regression + note statistics)"

SAMPLE_RATE = 22050  # the classifier's training rate (basic-pitch's): MFCCs and contrast bands depend on it
SEGMENT_S = 5.0  # non-piano windows: long enough for a timbre estimate, short enough to catch a 10-s intro
MAX_SEGMENTS = 24  # at most 24 windows (2 min of audio) per cover, evenly spread: bounds the cost of long songs
MIN_SEGMENT_NOTES = 3  # a window with fewer notes is silence or a fragment, judged by `fragmented` instead
FRAME_S = 0.05  # grid of the note-based statistics (polyphony, silence): 20 Hz, finer than any musical gap
A0_MIDI = 21  # lowest piano key, first CQT bin of the decay measurement
PIANO_KEYS = 88

# the classifier's input, in this order (music_qc_piano.json names them too, and is checked against this)
TIMBRE_FEATURES = (
    "decay_db_per_s",  # median level slope of a note's own CQT bin after its attack: a piano string decays
    "attack_db",  # median level jump at onsets: hammers strike, bows and breath swell
    "flatness",  # median spectral flatness: speech and noise are flatter than tones
    "log_centroid",  # log2 median spectral centroid (Hz)
    "zcr",  # median zero-crossing rate: fricatives of speech
    "modulation_4hz",  # share of the envelope's modulation energy at 3-6 Hz: the syllable rate of speech
    *(f"mfcc{i}" for i in range(1, 13)),  # median MFCCs 1-12: the spectral envelope
    *(f"mfcc_std{i}" for i in range(1, 7)),  # their spread over time
    *(f"mfcc_delta{i}" for i in range(1, 7)),  # median frame-to-frame change: vibrato, glides, syllables
    *(f"contrast{i}" for i in range(1, 8)),  # median spectral contrast (peak vs valley) in 7 octave bands
    "log_bandwidth", "log_rolloff",  # log2 median spectral bandwidth and 85% roll-off (Hz)
    "mean_velocity",  # basic-pitch velocity = 127 x mean note activation: the transcriber's confidence
    "short_note_share",  # notes < 0.12 s: speech and vibrato break into short fragments
    "notes_per_sounding_s",
)


@dataclass(frozen=True, slots=True)
class MusicFeatures:
    """Everything the filters read; one row of MUSIC_QC_SCHEMA (with song_id and the verdict)."""

    duration_s: float
    n_notes: int
    silence_share: float  # share of the audio with no transcribed note sounding
    longest_gap_s: float  # longest stretch without a sounding note, the edges included
    note_density_per_s: float  # notes per second of audio
    pitch_span: float  # 95th - 5th percentile of the notes' pitches (semitones)
    median_pitch: float
    polyphony_p95: float  # 95th percentile of sounding notes over the frames where any sounds
    onsets_per_s_p95: float  # 95th percentile of note onsets per 1-s window (sounding windows)
    segment_start_s: tuple[float, ...]  # start of each SEGMENT_S window with >= MIN_SEGMENT_NOTES notes
    segment_timbre: tuple[tuple[float, ...], ...]  # TIMBRE_FEATURES of each of those windows, in order

    def timbre_dicts(self) -> list[dict[str, float]]:
        return [dict(zip(TIMBRE_FEATURES, t)) for t in self.segment_timbre]


@dataclass(frozen=True)
class QCThresholds:
    """Measured on bench/bench_music_qc.py's train pieces, with the note statistics of the SymMV release's
    real covers as what must pass (figures in bench/results/music_qc.json, `thresholds`)."""

    # 8 bars at 100 BPM are 19.2 s: the shortest clip that holds one key window and one training segment;
    # the demo's excerpts are 30 s, a real cover is minutes
    min_duration_s: float = 20.0
    # a window whose logistic piano probability is below this is not piano (the classifier's own boundary)
    min_piano_probability: float = 0.5
    # refuse when more than this share of the windows is not piano. Train clips: piano covers 0, non-piano
    # >= 0.5 (a 9-s talking intro in 22 s = 0.5); held out, covers <= 0.25 but for one. A 4-min cover that
    # opens with 10 s of talk (4% of its windows) stays; a sung, non-piano or talked-over cover does not
    max_non_piano_share: float = 0.4
    # silence share above this: mostly nothing (bursts between long silences). Release covers: p99 0.26;
    # corpus covers <= 0.13, fragments 0.17-0.64
    max_silence_share: float = 0.3
    # a hole longer than this, even in dense music. Release covers pause: median longest gap 3 s, p99 12.5 s
    # (a 4-s limit would refuse 32% of them), so only a long hole counts; short clips rely on the share
    max_gap_s: float = 15.0
    # fewer notes per second than this: scattered notes, not a performance. Release covers: p1 2.4/s;
    # corpus covers >= 4.2/s, sparse fragments 0.3-2.0/s
    min_note_density_per_s: float = 2.0
    # a cover spans more than an octave (release p1: 21 semitones); a drone spans 0, the top octave alone 4-9
    min_pitch_span: float = 10.0
    # median pitch above this: only the top of the keyboard. Release p99 74, corpus covers <= 72, top-octave
    # material 96-100: the midpoint
    max_median_pitch: float = 84.0
    # median pitch below this: only the bottom two octaves (not measured: no such material in the corpus)
    min_median_pitch: float = 36.0
    # sounding notes at the 95th percentile: release covers reach 13 with the pedal (p99), so only beyond;
    # 10-16-note clusters (11-12 here) are left to the onset rate
    max_polyphony_p95: float = 16.0
    # onsets per second at the 95th percentile: release p99 24.6, corpus covers <= 23.6, clusters 36-39
    max_onsets_per_s_p95: float = 30.0


DEFAULT_THRESHOLDS = QCThresholds()

MUSIC_QC_SCHEMA = _schema.MUSIC_QC  # declared in symmv.core.schema; tests check it matches MusicFeatures


# ------------------------------------------------------------------------------------ piano classifier
@dataclass(frozen=True)
class PianoClassifier:
    """p(piano) = sigmoid(coef . (x - mean) / scale + intercept) over TIMBRE_FEATURES."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, timbre: Sequence[float]) -> float:
        z = (np.asarray(timbre, np.float64) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(np.dot(self.coef, z) + self.intercept))))

    @classmethod
    def from_dict(cls, d: dict) -> "PianoClassifier":
        if tuple(d["features"]) != TIMBRE_FEATURES:
            raise ValueError(f"classifier features {d['features']} != TIMBRE_FEATURES")
        return cls(tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]), float(d["intercept"]))


CLASSIFIER_PATH = Path(__file__).with_name("music_qc_piano.json")
PIANO_CLASSIFIER = PianoClassifier.from_dict(json.loads(CLASSIFIER_PATH.read_text())) \
    if CLASSIFIER_PATH.exists() else None


# ------------------------------------------------------------------------------------ features
def _note_arrays(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    on = np.array([n.onset_s for n in notes], np.float64)
    off = np.array([max(n.offset_s, n.onset_s) for n in notes], np.float64)
    pitch = np.array([n.pitch for n in notes], np.int64)
    vel = np.array([n.velocity for n in notes], np.float64)
    return on, off, pitch, vel


def sounding_counts(notes: Sequence[Note], duration_s: float, frame_s: float = FRAME_S) -> np.ndarray:
    """Number of notes sounding in each `frame_s` frame of [0, duration_s)."""
    n_frames = max(1, int(np.ceil(duration_s / frame_s)))
    diff = np.zeros(n_frames + 1, np.int64)
    if notes:
        on, off, _, _ = _note_arrays(notes)
        a = np.clip(np.floor(on / frame_s).astype(int), 0, n_frames)
        b = np.clip(np.ceil(off / frame_s).astype(int), 0, n_frames)
        b = np.maximum(b, np.minimum(a + 1, n_frames))  # a note shorter than a frame still sounds in one
        np.add.at(diff, a, 1)
        np.add.at(diff, b, -1)
    return np.cumsum(diff)[:n_frames]


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
    return int((ends - starts).max())


def note_statistics(notes: Sequence[Note], duration_s: float) -> dict[str, float]:
    """The note-only part of MusicFeatures (fragmentation and plausibility)."""
    counts = sounding_counts(notes, duration_s)
    silent = counts == 0
    out = {"duration_s": float(duration_s), "n_notes": len(notes), "silence_share": float(silent.mean()),
           "longest_gap_s": _longest_run(silent) * FRAME_S, "note_density_per_s": len(notes) / max(duration_s, 1e-9)}
    if not notes:
        return out | {"pitch_span": 0.0, "median_pitch": float("nan"), "polyphony_p95": 0.0, "onsets_per_s_p95": 0.0}
    on, _, pitch, _ = _note_arrays(notes)
    per_s = np.bincount(np.clip(on.astype(int), 0, None), minlength=int(np.ceil(duration_s)))
    return out | {
        "pitch_span": float(np.percentile(pitch, 95) - np.percentile(pitch, 5)),
        "median_pitch": float(np.median(pitch)),
        "polyphony_p95": float(np.percentile(counts[~silent], 95)) if (~silent).any() else 0.0,
        "onsets_per_s_p95": float(np.percentile(per_s[per_s > 0], 95)),
    }


def _decay_and_attack(audio: np.ndarray, sr: int, notes: Sequence[Note], hop: int) -> tuple[float, float]:
    """Median dB/s slope of each long note's own CQT bin over its first second, and median onset jump (dB)."""
    import librosa

    if not notes:
        return 0.0, 0.0
    cqt = np.abs(librosa.cqt(audio, sr=sr, hop_length=hop, fmin=librosa.midi_to_hz(A0_MIDI), n_bins=PIANO_KEYS,
                             bins_per_octave=12))
    db = librosa.amplitude_to_db(cqt, ref=np.max, top_db=80.0)  # (88, T)
    frame_s = hop / sr
    slopes, attacks = [], []
    # at most 400 notes, evenly spread: the medians settle long before, and long songs stay cheap
    for n in list(notes)[:: max(1, len(notes) // 400)]:
        row = db[int(np.clip(n.pitch - A0_MIDI, 0, PIANO_KEYS - 1))]
        a = int(round(n.onset_s / frame_s))
        if a < 2 or a + 3 >= row.size:
            continue
        attacks.append(row[a:a + 3].max() - row[a - 2])
        end = min(int(n.offset_s / frame_s), a + int(1.0 / frame_s), row.size)
        start = a + 2  # past the attack's peak
        if end - start >= 6:
            t = np.arange(start, end) * frame_s
            slopes.append(np.polyfit(t, row[start:end], 1)[0])
    return (float(np.median(slopes)) if slopes else 0.0, float(np.median(attacks)) if attacks else 0.0)


def _modulation_4hz(audio: np.ndarray, sr: int) -> float:
    """Share of the RMS envelope's modulation energy (0.5-16 Hz) that lies at 3-6 Hz (speech syllables)."""
    import librosa

    env = librosa.feature.rms(y=audio, frame_length=1024, hop_length=220)[0]  # 100 Hz at 22.05 kHz
    rate = sr / 220
    env = env - env.mean()
    if env.size < 64 or not np.any(env):
        return 0.0
    spec = np.abs(np.fft.rfft(env * np.hanning(env.size))) ** 2
    freq = np.fft.rfftfreq(env.size, 1 / rate)
    band = spec[(freq >= 3) & (freq <= 6)].sum()
    total = spec[(freq >= 0.5) & (freq <= 16)].sum()
    return float(band / total) if total > 0 else 0.0


def timbre_features(audio: np.ndarray, sr: int, notes: Sequence[Note]) -> tuple[float, ...]:
    """TIMBRE_FEATURES of mono float audio and its transcription."""
    import librosa

    audio = np.asarray(audio, np.float32)
    hop = 512
    decay, attack = _decay_and_attack(audio, sr, notes, hop)
    spec = np.abs(librosa.stft(audio, n_fft=2048, hop_length=hop))
    loud = spec.sum(axis=0) > 1e-3 * spec.sum(axis=0).max() if spec.size else np.zeros(0, bool)
    spec = spec[:, loud] if loud.any() else spec
    flatness = float(np.median(librosa.feature.spectral_flatness(S=spec)))
    centroid = float(np.median(librosa.feature.spectral_centroid(S=spec, sr=sr)))
    zcr = float(np.median(librosa.feature.zero_crossing_rate(audio, frame_length=2048, hop_length=hop)))
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=spec**2, sr=sr)), n_mfcc=13)
    contrast = librosa.feature.spectral_contrast(S=spec, sr=sr)  # (7, T)
    bandwidth = float(np.median(librosa.feature.spectral_bandwidth(S=spec, sr=sr)))
    rolloff = float(np.median(librosa.feature.spectral_rolloff(S=spec, sr=sr)))
    durations = np.array([n.offset_s - n.onset_s for n in notes]) if notes else np.zeros(0)
    sounding_s = max(FRAME_S, float((sounding_counts(notes, len(audio) / sr) > 0).sum() * FRAME_S))
    values = [decay, attack, flatness, float(np.log2(max(centroid, 1.0))), zcr, _modulation_4hz(audio, sr),
              *np.median(mfcc[1:13], axis=1), *np.std(mfcc[1:7], axis=1),
              *(np.median(np.abs(np.diff(mfcc[1:7], axis=1)), axis=1) if mfcc.shape[1] > 1 else np.zeros(6)),
              *np.median(contrast, axis=1), float(np.log2(max(bandwidth, 1.0))), float(np.log2(max(rolloff, 1.0))),
              float(np.mean([n.velocity for n in notes])) if notes else 0.0,
              float((durations < 0.12).mean()) if notes else 0.0,
              len(notes) / sounding_s]
    return tuple(float(v) for v in values)


def segments(audio: np.ndarray, sample_rate: int, notes: Sequence[Note], segment_s: float = SEGMENT_S):
    """(start_s, audio slice, notes shifted to the slice) of each window with >= MIN_SEGMENT_NOTES onsets.

    A trailing window shorter than half a segment is left out (too little audio for a timbre estimate); of more
    than MAX_SEGMENTS windows, MAX_SEGMENTS evenly spread ones are kept."""
    duration_s = len(audio) / sample_rate
    onsets = np.array([n.onset_s for n in notes])
    out = []
    for start in np.arange(0.0, max(duration_s - segment_s / 2, 0.0) + 1e-9, segment_s):
        end = min(start + segment_s, duration_s)
        inside = [n for n, t in zip(notes, onsets) if start <= t < end]
        if len(inside) < MIN_SEGMENT_NOTES or end - start < segment_s / 2:
            continue
        shifted = [Note(n.onset_s - start, min(n.offset_s, end) - start, n.pitch, n.velocity) for n in inside]
        out.append((float(start), audio[int(start * sample_rate):int(end * sample_rate)], shifted))
    if len(out) > MAX_SEGMENTS:
        out = [out[i] for i in np.linspace(0, len(out) - 1, MAX_SEGMENTS).round().astype(int)]
    return out


def music_features(audio: np.ndarray, sample_rate: int, notes: Sequence[Note]) -> MusicFeatures:
    """All QC features of one cover: decoded mono audio (float32, SAMPLE_RATE) + its transcribed notes."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"music_features needs audio at {SAMPLE_RATE} Hz (the piano classifier's), not {sample_rate}")
    duration_s = len(audio) / sample_rate
    segs = segments(audio, sample_rate, notes)
    return MusicFeatures(**note_statistics(notes, duration_s), segment_start_s=tuple(s[0] for s in segs),
                         segment_timbre=tuple(timbre_features(a, sample_rate, n) for _, a, n in segs))


# ------------------------------------------------------------------------------------ filters
def too_short(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> str | None:
    return "too_short" if features.duration_s < thresholds.min_duration_s else None


def segment_piano_probability(features: MusicFeatures, classifier: PianoClassifier | None = None) -> list[float]:
    classifier = classifier or PIANO_CLASSIFIER
    if classifier is None:
        raise RuntimeError(f"no piano classifier: {CLASSIFIER_PATH} missing (run bench/bench_music_qc.py)")
    return [classifier.probability(t) for t in features.segment_timbre]


def non_piano_share(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS,
                    classifier: PianoClassifier | None = None) -> float:
    """Share of the windows with notes whose piano probability is below the threshold (NaN: no window)."""
    p = segment_piano_probability(features, classifier)
    return float(np.mean([x < thresholds.min_piano_probability for x in p])) if p else float("nan")


def non_piano(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS,
              classifier: PianoClassifier | None = None) -> str | None:
    share = non_piano_share(features, thresholds, classifier)
    # no window with notes: nothing to judge the timbre of (`fragmented` or the no_notes reject covers it)
    return "non_piano" if share > thresholds.max_non_piano_share else None


def fragmented(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> str | None:
    if (features.silence_share > thresholds.max_silence_share or features.longest_gap_s > thresholds.max_gap_s
            or features.note_density_per_s < thresholds.min_note_density_per_s):
        return "fragmented"
    return None


def implausible(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> str | None:
    if features.n_notes == 0:
        return None
    if (features.pitch_span < thresholds.min_pitch_span
            or not thresholds.min_median_pitch <= features.median_pitch <= thresholds.max_median_pitch
            or features.polyphony_p95 > thresholds.max_polyphony_p95
            or features.onsets_per_s_p95 > thresholds.max_onsets_per_s_p95):
        return "implausible"
    return None


# order matters: a 5-s clip is too short before it is anything else; a sung cover is refused as non-piano
# before its (then meaningless) note statistics are judged; a drone or the top octave alone is implausible
# before its sparse transcription reads as fragmented
QC_FILTERS = (too_short, non_piano, implausible, fragmented)
REASONS = tuple(f.__name__ for f in QC_FILTERS)


def music_qc(features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> str | None:
    """The first reason in QC_FILTERS order, or None (accepted)."""
    for qc_filter in QC_FILTERS:
        reason = qc_filter(features, thresholds)
        if reason:
            return reason
    return None


def qc_row(song_id: str, features: MusicFeatures, thresholds: QCThresholds = DEFAULT_THRESHOLDS,
           classifier: PianoClassifier | None = None) -> dict:
    """One MUSIC_QC_SCHEMA row: the figures, the per-window piano probabilities and the verdict."""
    probabilities = segment_piano_probability(features, classifier) if features.segment_timbre else []
    reason = None
    for qc_filter in QC_FILTERS:
        reason = qc_filter(features, thresholds, classifier) if qc_filter is non_piano else qc_filter(features, thresholds)
        if reason:
            break
    return {"song_id": song_id, **{k: v for k, v in asdict(features).items() if not k.startswith("segment_")},
            "segment_start_s": list(features.segment_start_s), "segment_piano_probability": probabilities,
            "non_piano_share": non_piano_share(features, thresholds, classifier) if probabilities else float("nan"),
            "qc_reason": reason, "qc_version": ANNOTATOR_VERSION}


def qc_detail(features: MusicFeatures) -> str:
    """Human-readable detail for a rejects row: the figures the filters looked at."""
    d = {k: v for k, v in asdict(features).items() if not k.startswith("segment_")}
    if PIANO_CLASSIFIER is not None and features.segment_timbre:
        d["non_piano_share"] = non_piano_share(features)
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())
