"""MIDI <-> notes, fluidsynth rendering and log-mel features for VMCP (paper sec. 4.3 and 5.1).

The paper synthesizes MIDI with fluidsynth before its audio encoder; we do the same with the General MIDI
soundfont Debian ships (TimGM6mb), at 16 kHz mono, then take a log-mel spectrogram with librosa.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from symmv.io import media
from symmv.io.midi import read_notes, write_notes
from symmv.core.records import Note

RENDERER = "fluidsynth"


def notes_from_midi(path: str | Path) -> list[Note]:
    """All non-drum notes of a MIDI file (track = instrument name), via symmv.io.midi."""
    return read_notes(path, keep_tracks=True)


def notes_to_midi(notes: Sequence[Note], path: str | Path) -> Path:
    """Write notes (seconds) as piano MIDI at 120 BPM, 480 tpq, via symmv.io.midi."""
    return write_notes(notes, path)


def render_midi(midi_path: str | Path, wav_path: str | Path, *, sample_rate: int = 16000,
                soundfont: str | None = None) -> Path:
    """fluidsynth rendering at the mel front end's rate (symmv.io.media.render_midi, gain 1.0), with the
    dataset's own soundfont unless told otherwise (symmv.core.settings)."""
    return media.render_midi(midi_path, wav_path, sample_rate=sample_rate, soundfont=soundfont, gain=1.0)


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 320  # 20 ms frames -> 50 frames per second
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 8000.0

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


def log_mel(wav: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """(n_frames, n_mels) float32 log-mel (dB, ref = 1.0, floor -100 dB) of a mono waveform at cfg.sample_rate."""
    import librosa

    mel = librosa.feature.melspectrogram(y=wav.astype(np.float32), sr=cfg.sample_rate, n_fft=cfg.n_fft,
                                         hop_length=cfg.hop_length, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                         fmax=cfg.fmax, power=2.0)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).clip(-100.0).T.astype(np.float32)


def midi_log_mel(midi_path: str | Path, cfg: MelConfig = MelConfig(), soundfont: str | None = None) -> np.ndarray:
    """Render a MIDI with fluidsynth and return its log-mel (n_frames, n_mels)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav_path = render_midi(midi_path, Path(tmp) / "render.wav", sample_rate=cfg.sample_rate, soundfont=soundfont)
        wav, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if sr != cfg.sample_rate:
        raise RuntimeError(f"fluidsynth wrote {sr} Hz, asked for {cfg.sample_rate}")
    return log_mel(wav.mean(axis=1), cfg)


def notes_log_mel(notes: Sequence[Note], cfg: MelConfig = MelConfig(), soundfont: str | None = None) -> np.ndarray:
    """Notes -> temporary MIDI -> fluidsynth -> log-mel (n_frames, n_mels)."""
    with tempfile.TemporaryDirectory() as tmp:
        midi = notes_to_midi(notes, Path(tmp) / "notes.mid")
        return midi_log_mel(midi, cfg, soundfont)
