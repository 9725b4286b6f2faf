"""A small labelled audio corpus built from real music, shared by the music-QC and alignment benchmarks.

Pieces are real: SymMV release piano-cover MIDI and music21's shipped scores. Each excerpt is rendered with
fluidsynth (the project's GM soundfont) as piano and as other General MIDI programs, mixed with espeak-ng
speech, cut into fragments and too-short clips, or turned into implausible piano material (clusters, a
drone, an extreme register). Everything lands under data/bench-cache/ (ignored), keyed by the variant's
name, so a re-run only transcribes what is new.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from symmv.core import settings
from symmv.core.records import Note
from symmv.io.media import render_midi
from symmv.io.midi import read_notes

ROOT = Path(__file__).resolve().parents[1]
RELEASE = settings.release_root()
CACHE = ROOT / "data" / "bench-cache"
SR = 22050  # basic-pitch's own rate: decode once, no resampling in the transcriber
EXCERPT_S = 22.0  # longer than QCThresholds.min_duration_s (20 s), short enough for a 10-minute corpus
SPEECH_INTRO_S = 9.0  # the talking intro of a speech_intro clip

# release covers (pop piano, the pipeline's target) and music21 scores (other styles, other textures)
RELEASE_PIECES = ("00007", "00106", "00209", "00315", "00417", "00522", "00628", "00730", "00831", "00934")
MUSIC21_PIECES = ("joplin/maple_leaf_rag.mxl", "mozart/k545/movement1_exposition.mxl",
                  "schumann_clara/polonaise_op1n3.mxl", "bach/bwv1.6.mxl", "schubert/Lindenbaum.xml",
                  "beach/prayer_of_a_tired_child.musicxml")

# General MIDI programs (0-based) that a crawl of "piano covers" also brings: bowed, plucked, blown, sung
OTHER_PROGRAMS = {48: "strings", 24: "nylon_guitar", 19: "church_organ", 61: "brass", 52: "choir_aahs",
                  40: "violin", 73: "flute", 16: "drawbar_organ", 25: "steel_guitar", 53: "voice_oohs",
                  0: "piano"}
SPEECH = (  # what a talking intro of a piano-tutorial channel says
    "Hi everyone and welcome back to my channel. Today I am going to play a song that many of you asked for.",
    "Before we start, please like and subscribe, and check the sheet music link in the description below.",
    "This arrangement is a little harder than usual, so I will go through the left hand slowly first.",
    "Okay, so here is the chorus. Watch my right hand, it crosses over at the end of this phrase.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m3", "en-us+f2")


@dataclass(frozen=True)
class Clip:
    name: str  # unique, also the cache file stem
    piece: str
    split: str  # "train" / "test" (by piece: variants of one piece never straddle)
    label: str  # "ok" or the expected reject reason
    kind: str  # how it was made (piano, strings, speech_over, bursts, ...)
    wav: Path | None = None
    notes: tuple[Note, ...] = ()  # the transcription (basic-pitch)


def piece_notes(piece: str, work: Path) -> list[Note]:
    if piece.isdigit():
        return read_notes(RELEASE / "midi" / f"{piece}.mid")
    from music21 import corpus

    mid = work / (piece.replace("/", "_") + ".mid")
    if not mid.exists():
        corpus.parse(piece).write("midi", fp=str(mid))
    return read_notes(mid)


def excerpt(notes: list[Note], start_s: float, length_s: float) -> list[Note]:
    """Notes starting inside [start, start + length), shifted to 0 and cut at the end."""
    out = [replace(n, onset_s=n.onset_s - start_s, offset_s=min(n.offset_s, start_s + length_s) - start_s)
           for n in notes if start_s <= n.onset_s < start_s + length_s - 0.05]
    return [n for n in out if n.offset_s > n.onset_s]


def music_start(notes: list[Note], length_s: float) -> float:
    """Skip an intro, but keep a full excerpt inside the piece (short scores start at their first note)."""
    end = max(n.offset_s for n in notes)
    first = min(n.onset_s for n in notes)
    return max(first, min(first + 12.0, end - length_s))


def write_midi(notes: list[Note], path: Path, program: int) -> Path:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(velocity=int(np.clip(n.velocity, 1, 127)), pitch=int(n.pitch),
                                   start=float(n.onset_s), end=float(max(n.offset_s, n.onset_s + 0.02)))
                  for n in notes]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def render(notes: list[Note], program: int, wav: Path, length_s: float) -> np.ndarray:
    """Rendered mono float32 at SR, exactly `length_s` long (fluidsynth adds a release tail)."""
    import soundfile as sf

    mid = wav.with_suffix(".mid")
    write_midi(notes, mid, program)
    render_midi(mid, wav, sample_rate=SR, gain=0.5)
    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == SR, sr
    audio = audio.mean(axis=1)
    n = int(round(length_s * SR))
    return np.pad(audio, (0, max(0, n - audio.size)))[:n]


def speech(seconds: float, seed: int, work: Path) -> np.ndarray:
    """espeak-ng sentences, one voice, concatenated with short pauses to `seconds`."""
    import librosa
    import soundfile as sf

    rng = np.random.default_rng(seed)
    voice = VOICES[seed % len(VOICES)]
    parts, total = [], 0
    while total < seconds * SR:
        text = SPEECH[int(rng.integers(len(SPEECH)))]
        wav = work / f"speech_{seed}_{len(parts)}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(140, 185))), "-w", str(wav), text],
                       check=True, capture_output=True)
        audio, sr = sf.read(str(wav), dtype="float32")
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SR) if sr != SR else audio
        parts += [audio, np.zeros(int(0.3 * SR), np.float32)]
        total += audio.size + int(0.3 * SR)
    return np.concatenate(parts)[: int(seconds * SR)]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def implausible_notes(kind: str, src: list[Note], length_s: float, rng) -> list[Note]:
    if kind == "clusters":  # a cat on the keyboard: dense 10-16-note clusters every 0.2 s
        return [Note(t, t + 0.4, int(p), 90) for t in np.arange(0, length_s - 0.5, 0.2)
                for p in rng.choice(np.arange(30, 100), size=int(rng.integers(10, 17)), replace=False)]
    if kind == "drone":  # one key repeated: a test tone or a metronome, not music
        return [Note(t, t + 0.3, 69, 80) for t in np.arange(0, length_s - 0.5, 0.5)]
    if kind == "extreme_register":  # the piece played 3+ octaves up: only the top octave of the keyboard
        shift = 100 - int(np.median([n.pitch for n in src]))
        return [replace(n, pitch=int(np.clip(n.pitch + shift, 96, 108))) for n in src]
    raise ValueError(kind)


def corpus_plan(length_s: float = EXCERPT_S) -> list[tuple[str, str, str]]:
    pieces = list(RELEASE_PIECES) + list(MUSIC21_PIECES)
    return [(p, "train" if i % 2 == 0 else "test", p.replace("/", "_").replace(".mxl", "").replace(".xml", ""))
            for i, p in enumerate(pieces)]


def build_clips(work: Path, length_s: float = EXCERPT_S) -> list[Clip]:
    """Render every variant (cached). Returns clips with wav paths, notes not yet filled."""
    import soundfile as sf

    work.mkdir(parents=True, exist_ok=True)
    programs = [p for p in OTHER_PROGRAMS if p != 0]
    implausible = ("clusters", "drone", "extreme_register")
    clips = []
    for i, (piece, split, stem) in enumerate(corpus_plan(length_s)):
        rng = np.random.default_rng(i)
        src_all = piece_notes(piece, work)
        src = excerpt(src_all, music_start(src_all, length_s), length_s)
        variants: list[tuple[str, str, callable]] = []

        def add(kind, label, make):
            variants.append((kind, label, make))

        add("piano", "ok", lambda: render(src, 0, wav, length_s))
        # softer playing on a brighter piano: still a piano cover
        add("piano_soft_bright", "ok", lambda: render([replace(n, velocity=max(20, int(n.velocity * 0.6)))
                                                        for n in src], 1, wav, length_s))
        for prog in (programs[(2 * i) % len(programs)], programs[(2 * i + 1) % len(programs)]):
            add(OTHER_PROGRAMS[prog], "non_piano", lambda prog=prog: render(src, prog, wav, length_s))
        add("speech_over", "non_piano", lambda: _mix_speech_over(src, length_s, i, wav, work))
        add("speech_intro", "non_piano", lambda: _speech_intro(src, length_s, i, wav, work))
        # bursts: 2.5 s of music, then 6.5 s of nothing; a transcription that kept a few islands
        add("bursts", "fragmented", lambda: render([n for n in src if (n.onset_s % 9.0) < 2.5], 0, wav, length_s))
        keep = rng.random(len(src)) < 0.08
        add("sparse", "fragmented", lambda: render([n for n, k in zip(src, keep) if k] or src[:3], 0, wav, length_s))
        short_s = (5.0, 9.0, 13.0)[i % 3]
        add("short", "too_short", lambda: render(excerpt(src, 0, short_s), 0, wav, short_s))
        kind = implausible[i % 3]
        add(kind, "implausible", lambda kind=kind: render(implausible_notes(kind, src, length_s, rng), 0, wav, length_s))
        for kind, label, make in variants:
            name = f"{stem}__{kind}"
            wav = work / f"{name}.wav"
            if not wav.exists():
                audio = make()
                sf.write(str(wav), audio / max(1e-9, np.abs(audio).max()) * 0.7, SR, subtype="FLOAT")
            clips.append(Clip(name=name, piece=piece, split=split, label=label, kind=kind, wav=wav))
    return clips


def _mix_speech_over(src, length_s, seed, wav, work):
    music = render(src, 0, wav, length_s)
    voice = speech(length_s, seed, work)
    return music + voice / rms(voice) * rms(music)  # speech as loud as the music (a voice-over tutorial)


def _speech_intro(src, length_s, seed, wav, work):
    intro_s = SPEECH_INTRO_S
    music = render(excerpt(src, 0, length_s - intro_s), 0, wav, length_s - intro_s)
    voice = speech(intro_s, seed, work)
    return np.concatenate([voice / rms(voice) * rms(music), music])


def transcribe_clips(clips: list[Clip], work: Path) -> list[Clip]:
    """basic-pitch notes of each clip, cached as JSON next to the wav."""
    from symmv.transcription import transcribe

    out = []
    for clip in clips:
        cached = clip.wav.with_suffix(".notes.json")
        if cached.exists():  # a cold corpus (160 clips, 3300 s) takes ~8 min of basic-pitch on 2 busy cores
            rows = json.loads(cached.read_text())
        else:
            notes = transcribe(clip.wav, backend="basic-pitch").notes
            rows = [[n.onset_s, n.offset_s, n.pitch, n.velocity] for n in notes]
            cached.write_text(json.dumps(rows))
        out.append(replace(clip, notes=tuple(Note(a, b, int(p), int(v)) for a, b, p, v in rows)))
    return out


def clear_cache(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


FULL_COVERS = ("00050", "00150", "00333", "00700", "00900")  # none of them in the corpus pieces


def render_full_covers(work: Path, ids: tuple[str, ...] = FULL_COVERS) -> Path:
    """Whole release covers rendered as piano (minutes long): what must pass, at full length. Returns the folder."""
    import soundfile as sf

    work.mkdir(parents=True, exist_ok=True)
    for song in ids:
        wav = work / f"{song}.wav"
        if not wav.exists() and (RELEASE / "midi" / f"{song}.mid").exists():
            notes = read_notes(RELEASE / "midi" / f"{song}.mid")
            audio = render(notes, 0, wav, max(n.offset_s for n in notes) + 1.0)
            sf.write(str(wav), audio / max(1e-9, np.abs(audio).max()) * 0.7, SR, subtype="FLOAT")
            wav.with_suffix(".mid").unlink(missing_ok=True)
    return work
