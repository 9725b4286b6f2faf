"""Key finding by profile correlation (paper sec. 3.2, "Tonality"), with music21's key-weight rules.

A duration-weighted pitch-class profile is correlated (Pearson) with the 24 rotated major/minor profiles of a
key-weight table and the best correlation wins, as music21's `analysis.discrete.KeyWeightKeyAnalysis`.

Default profile: Aarden-Essen, not Krumhansl-Kessler. The paper says "Krumhansl-Schmuckler algorithm", but the
SymMV release's tonality labels are what music21's `analyze("key")` returns, and music21's "key" method is
AardenEssen: on the 999 release songs, Aarden-Essen duration-weighted over all notes agrees with the labels on
0.987 of them, Krumhansl-Kessler on 0.742 (its misses: relative and dominant keys). Evidence and the table of
variants: annotators/KEY_AGREEMENT.md, bench/bench_key_variants.py. `profile="krumhansl_kessler"` gives the
paper's nominal method (music21's KrumhanslSchmuckler, identical results).

Differences from music21, on purpose:
- durations are seconds of the performance (music21 weights by quarterLength); on a constant tempo the two
  are proportional and the correlation, being scale-free, is identical.
- ties (exactly equal correlations) are broken like music21 (higher pitch class, then minor), but a flat
  profile (all 12 pitch classes equal, every correlation 0) raises ValueError instead of returning B minor.

Known failure modes (of the method, shared with music21): the dominant or relative key often wins on short or
chromatic music ("Strong tendency to identify the dominant key as the tonic", humdrum keycor); music21's KS
reads Chopin's C# minor Mazurka op. 6/2 as G# (A-) major, its dominant; a whole song's key hides modulations,
see `windowed_keys`. `confidence` is the winning correlation, `margin` its lead over the runner-up; a small
margin (< ~0.05) marks an ambiguous key.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from symmv.core.records import Note
from symmv.core import schema as _schema

ANNOTATOR_VERSION = "key 2 (Aarden-Essen profiles by default, as music21 analyze('key'); music21 key-weight rules)"

# (major, minor) weights per profile, as music21.analysis.discrete's classes return them from getWeights()
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # music21 AardenEssen (its default "key" method; what the SymMV release's labels come from)
    "aarden_essen": ((17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624,
                      8.15494, 0.232998, 4.95122),
                     (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621,
                      1.93186, 7.37619, 1.75623)),
    # music21 KrumhanslSchmuckler (Krumhansl-Kessler probe-tone ratings): the paper's nominal method
    "krumhansl_kessler": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                          (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # music21 TemperleyKostkaPayne
    "temperley_kostka_payne": ((0.748, 0.06, 0.488, 0.082, 0.67, 0.46, 0.096, 0.715, 0.104, 0.366, 0.057, 0.4),
                               (0.712, 0.084, 0.474, 0.618, 0.049, 0.46, 0.105, 0.747, 0.404, 0.067, 0.133, 0.33)),
    # music21 BellmanBudge
    "bellman_budge": ((16.8, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.8, 8.04, 0.62, 10.57),
                      (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21)),
}
DEFAULT_PROFILE = "aarden_essen"  # 0.987 agreement with the release labels vs 0.742 for Krumhansl-Kessler
# music21 spelling of tonics (KeyWeightKeyAnalysis.keysValidMajor/Minor after _bestKeyEnharmonic)
MAJOR_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")
MINOR_NAMES = ("c", "c#", "d", "e-", "e", "f", "f#", "g", "g#", "a", "b-", "b")
_STEP_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

KEY_WINDOW_SCHEMA = _schema.KEY_WINDOWS  # declared in symmv.core.schema (the one place every table is declared)


@dataclass(frozen=True, slots=True)
class KeyEstimate:
    tonic: int  # 0 = C .. 11 = B
    mode: str  # "major" / "minor"
    confidence: float  # Pearson correlation of the winning key profile
    margin: float  # confidence minus the runner-up's correlation
    bar_start: int | None = None  # windowed estimates only (bar_end exclusive)
    bar_end: int | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def name(self) -> str:
        return key_name(self.tonic, self.mode)


def _key_rows(major, minor) -> tuple[np.ndarray, np.ndarray]:
    """(24, 12) centred rows (0-11 major keys on tonic 0..11, 12-23 minor keys) and their norms."""
    rows = np.stack([np.roll(major, t) for t in range(12)] + [np.roll(minor, t) for t in range(12)])
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows, np.sqrt((rows**2).sum(axis=1))


_KEY_ROWS = {name: _key_rows(np.array(major), np.array(minor)) for name, (major, minor) in KEY_PROFILES.items()}


def _rows(profile: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _KEY_ROWS[profile]
    except KeyError:
        raise ValueError(f"unknown key profile {profile!r}; known: {sorted(KEY_PROFILES)}") from None


def pitch_class_profile(notes: Sequence[Note]) -> np.ndarray:
    """12 bins: total sounding seconds per pitch class."""
    if not notes:
        raise ValueError("no notes: key undefined")
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    dur = np.array([n.offset_s - n.onset_s for n in notes], dtype=np.float64)
    if np.any(dur < 0):
        raise ValueError("note offset before onset")
    return np.bincount(pitch % 12, weights=dur, minlength=12)


def key_correlations(profile: np.ndarray, key_profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """Pearson correlation of a 12-bin profile with the 24 keys (0-11 major, 12-23 minor) of `key_profile`."""
    rows, row_norms = _rows(key_profile)
    p = np.asarray(profile, dtype=np.float64) - np.mean(profile)
    norm = np.sqrt((p**2).sum())
    if norm == 0:
        raise ValueError("flat pitch-class profile (no sounding duration, or all 12 classes equal): key undefined")
    return rows @ p / (row_norms * norm)


def key_from_profile(profile: np.ndarray, key_profile: str = DEFAULT_PROFILE) -> KeyEstimate:
    r = key_correlations(profile, key_profile)
    # music21 sorts (r, pitch, mode) descending: on an exact tie the higher pitch class, then minor, wins
    tonic = np.arange(24) % 12
    is_minor = np.arange(24) >= 12
    best = int(np.lexsort((is_minor, tonic, r))[-1])
    runner_up = np.partition(r, -2)[-2]
    return KeyEstimate(tonic=best % 12, mode="minor" if best >= 12 else "major",
                       confidence=float(r[best]), margin=float(r[best] - runner_up))


def estimate_key(notes: Sequence[Note], key_profile: str = DEFAULT_PROFILE) -> KeyEstimate:
    """Whole-piece key. ValueError on no notes / zero total duration / a flat profile / an unknown profile."""
    return key_from_profile(pitch_class_profile(notes), key_profile)


def windowed_keys(notes: Sequence[Note], window_bars: int = 8, hop_bars: int | None = None,
                  key_profile: str = DEFAULT_PROFILE) -> list[KeyEstimate]:
    """Keys of `window_bars`-bar windows every `hop_bars` bars (default: non-overlapping), so modulations show.

    Needs quantized notes (a note belongs to the window of its onset bar, with its whole duration). Windows
    without notes, or with a flat profile, are left out."""
    if window_bars < 1 or (hop_bars is not None and hop_bars < 1):
        raise ValueError("window_bars and hop_bars must be >= 1")
    _rows(key_profile)  # an unknown profile fails before the first window
    if not notes:
        return []
    if any(n.bar is None for n in notes):
        raise ValueError("windowed_keys needs quantized notes (bar is None)")
    hop = hop_bars or window_bars
    bar = np.array([n.bar for n in notes], dtype=np.int64)
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    onset = np.array([n.onset_s for n in notes], dtype=np.float64)
    offset = np.array([n.offset_s for n in notes], dtype=np.float64)
    first = int(bar.min()) - int(bar.min()) % hop  # windows on multiples of hop (bar 0 starts one)
    out = []
    for start in range(first, int(bar.max()) + 1, hop):
        inside = (bar >= start) & (bar < start + window_bars)
        if not inside.any():
            continue
        profile = np.bincount(pitch[inside] % 12, weights=offset[inside] - onset[inside], minlength=12)
        try:
            k = key_from_profile(profile, key_profile)
        except ValueError:
            continue
        out.append(replace(k, bar_start=start, bar_end=start + window_bars,
                           start_s=float(onset[inside].min()), end_s=float(offset[inside].max())))
    return out


def key_name(tonic: int, mode: str) -> str:
    """music21 spelling, as in the SymMV release's SymMV.csv: 'E- major', 'c# minor'."""
    if mode == "major":
        return f"{MAJOR_NAMES[tonic]} major"
    if mode == "minor":
        return f"{MINOR_NAMES[tonic]} minor"
    raise ValueError(f"mode must be major or minor, not {mode!r}")


def parse_key_name(text: str) -> tuple[int, str]:
    """'E- major' / 'b- minor' / 'C# major' / 'Bb minor' -> (tonic pitch class, mode)."""
    parts = text.strip().split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor") or not parts[0] \
            or parts[0][0].upper() not in _STEP_PC:
        raise ValueError(f"not a key name: {text!r}")
    name = parts[0]
    alter = sum(+1 if c == "#" else -1 if c in "-b" else 0 for c in name[1:])
    if len(name) > 1 and any(c not in "#-b" for c in name[1:]):
        raise ValueError(f"not a key name: {text!r}")
    return (_STEP_PC[name[0].upper()] + alter) % 12, parts[1].lower()


def transposition_semitones(key: KeyEstimate | tuple[int, str]) -> int:
    """Semitones (-5..6) that move the key to C major / A minor, the paper's reference keys (sec. 3.3)."""
    tonic, mode = (key.tonic, key.mode) if isinstance(key, KeyEstimate) else key
    target = 0 if mode == "major" else 9
    shift = (target - tonic) % 12
    return shift - 12 if shift > 6 else shift


def transpose_notes(notes: Sequence[Note], semitones: int) -> list[Note]:
    """Notes shifted by `semitones`; ValueError if a pitch would leave 0..127."""
    out = [replace(n, pitch=n.pitch + semitones) for n in notes]
    if any(not 0 <= n.pitch <= 127 for n in out):
        raise ValueError(f"transposing by {semitones} leaves the MIDI pitch range")
    return out


def transpose_pitch_class(pc: int, semitones: int) -> int:
    """Root / bass pitch class shifted; -1 (no chord, no bass) stays -1."""
    return pc if pc < 0 else (pc + semitones) % 12
