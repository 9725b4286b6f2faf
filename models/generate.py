"""Video features -> background music: Chord -> Melody -> Accompaniment, then merge (paper eq. 1).

`generate_music` takes the features the video annotators produce (semantic / color frame arrays, fps,
the motion tempo `video_tempo_bpm`, duration) and the checkpoint folder written by `models.train`
(`<ckpt_dir>/{chord,melody,accompaniment}/`). The piece has ceil(duration * tempo / 240) bars of 4/4, so
it covers the whole video at the tempo derived from motion (sec. 4.1); notes past the video's end are
dropped and the last ones cut at its end. `write_midi` and `render_and_mux` (fluidsynth + ffmpeg) turn
the notes into a music video.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from models import tokens as tk
from models.checkpoint import load_model
from models.sample import Grammar, SamplingConfig, condition_context, sample_sequence, video_context
from symmv.io import media
from symmv.io.midi import write_notes
from symmv.core.records import Note

# Frames per second the semantic/color features are sampled at for generation. The dataset uses 6 fps, but
# the chord stage strides any video to `max_frames` (512) and places frames by timing bucket, so 2 fps
# loses little and makes the semantic encoder, the bulk of `symmv generate`'s time, 3x cheaper.
GENERATE_FPS = 2.0
# The checkpoints `make train-all` writes and the repository ships (CC BY-NC-SA 4.0, see their LICENSE.md).
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints" / "cpu"
DEFAULT_TEMPO_BPM = 110.0  # middle of the paper's motion->tempo range [90, 130], used when none is given
VELOCITY = {"melody": 90, "accompaniment": 70}


def tempo_from_motion(motion_mean: float, motion_min: float, motion_max: float,
                      tempo_range: tuple[float, float] = (90.0, 130.0)) -> float:
    """Paper sec. 4.1: the mean RGB difference of a video, mapped linearly from the [min, max] seen over
    the dataset's videos onto [90, 130] BPM (clipped)."""
    lo, hi = tempo_range
    if motion_max <= motion_min:
        return (lo + hi) / 2
    frac = min(max((motion_mean - motion_min) / (motion_max - motion_min), 0.0), 1.0)
    return lo + frac * (hi - lo)


def bars_for(duration_s: float, tempo_bpm: float) -> int:
    """Bars of 4/4 needed to cover `duration_s` at `tempo_bpm`."""
    return max(1, math.ceil(duration_s * tempo_bpm / 240.0 - 1e-9))


def clip_to(notes: list[Note], duration_s: float) -> list[Note]:
    kept = [n for n in notes if n.onset_s < duration_s]
    return [n if n.offset_s <= duration_s else Note(n.onset_s, duration_s, n.pitch, n.velocity, n.track, n.bar,
                                                    n.position, n.duration_16th) for n in kept]


def generate_music(features: dict, ckpt_dir: str | Path, seed: int = 0, temperature: float | dict = 1.0,
                   top_p: float | dict = 0.9, device: str = "cpu", max_tokens: int = 20000,
                   models: dict | None = None, sampling: SamplingConfig | None = None,
                   return_chords: bool = False) -> list[Note] | tuple[list[Note], list[tk.ChordEvent]]:
    """features: semantic (T, Ds), color (T, Dc) arrays, fps, video_tempo_bpm, duration_s -> merged notes.

    Without `video_tempo_bpm`, `motion_mean` + `motion_range` (dataset min, max) give it; else 110 BPM.

    `models` (stage -> model) skips loading from `ckpt_dir`, for benchmarks that reuse loaded models;
    `sampling` sets the grammar options (temperature / top-p come from the arguments); `return_chords`
    also returns the chord stage's chords.
    """
    tempo = features.get("video_tempo_bpm")
    if not tempo and "motion_mean" in features and "motion_range" in features:
        tempo = tempo_from_motion(features["motion_mean"], *features["motion_range"])
    tempo = float(tempo or DEFAULT_TEMPO_BPM)
    duration_s = float(features["duration_s"])
    n_bars = bars_for(duration_s, tempo)
    models = models or {s: load_model(Path(ckpt_dir) / s, device=device) for s in ("chord", "melody", "accompaniment")}
    cfg = replace(sampling or SamplingConfig(), temperature=temperature, top_p=top_p, max_tokens=max_tokens)

    def grammar(stage, chords=(), melody=()):
        pitch_range = cfg.pitch_range or getattr(models[stage].cfg, "pitch_range", (21, 108))
        return Grammar(stage, n_bars, tempo, chords, pitch_range=pitch_range, max_tokens=max_tokens,
                       chord_grid=cfg.chord_grid, melody=melody if cfg.below_melody else (),
                       max_notes_per_onset=cfg.max_notes_per_onset)

    chord_model = models["chord"]
    ctx = video_context(chord_model, features.get("semantic"), features.get("color"))
    chords = tk.decode_chords(sample_sequence(chord_model, ctx, grammar("chord"), cfg, seed))

    cond = tk.encode(chords=chords, n_bars=n_bars, tempo_bpm=tempo, bos_eos=False)
    ctx = condition_context(models["melody"], cond)
    melody_tokens = sample_sequence(models["melody"], ctx, grammar("melody", chords), cfg, seed + 1)
    melody = tk.decode_notes(melody_tokens, track="melody", tempo_bpm=tempo, velocity=VELOCITY["melody"])

    cond = tk.encode(melody, chords, n_bars=n_bars, tempo_bpm=tempo, bos_eos=False)
    ctx = condition_context(models["accompaniment"], cond)
    accomp_tokens = sample_sequence(models["accompaniment"], ctx, grammar("accompaniment", chords, melody), cfg,
                                    seed + 2)
    accomp = tk.decode_notes(accomp_tokens, track="accompaniment", tempo_bpm=tempo,
                             velocity=VELOCITY["accompaniment"])
    notes = sorted(clip_to(melody + accomp, duration_s), key=lambda n: (n.onset_s, n.pitch, n.track))
    return (notes, chords) if return_chords else notes


def write_midi(notes: list[Note], path: str | Path, tempo_bpm: float = 120.0) -> Path:
    """One piano instrument per track (melody, accompaniment); note times are seconds already."""
    return write_notes(notes, path, tempo_bpm=tempo_bpm, resolution=960)


def render_and_mux(midi_path: str | Path, video_path: str | Path, out_mp4: str | Path,
                   soundfont: str | None = None, sample_rate: int = 44100) -> Path:
    """Synthesize the MIDI with fluidsynth and replace the video's audio with it (video stream copied);
    the music is padded with silence to the video's length and cut at its end."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = media.render_midi(midi_path, Path(tmp) / "music.wav", sample_rate=sample_rate, soundfont=soundfont)
        return media.mux(video_path, wav, out_mp4)


def motion_range_of(dataset_root: str | Path | None) -> tuple[tuple[float, float], str]:
    """The motion -> tempo range a dataset build recorded (build_report.json), else the documented default."""
    import json

    from annotators.video import DEFAULT_MOTION_RANGE

    report = Path(dataset_root) / "build_report.json" if dataset_root else None
    if report and report.is_file():
        motion = json.loads(report.read_text()).get("motion_range") or {}
        if "motion_min" in motion:
            return (motion["motion_min"], motion["motion_max"]), f"{report}"
    return DEFAULT_MOTION_RANGE, "annotators.video.DEFAULT_MOTION_RANGE"


def generate_for_video(video: str | Path, out: str | Path, ckpt_dir: str | Path, *, seed: int = 0,
                       temperature: float = 1.0, top_p: float = 0.9, midi_only: bool = False,
                       encoder_name: str = "efficientnet-lite0", dataset_root: str | Path | None = None,
                       fps: float = GENERATE_FPS) -> dict:
    """The end product: a video in, its features extracted, three stages sampled, MIDI written, the
    music rendered with fluidsynth and muxed onto the video. Returns what was done, with provenance."""
    from symmv.features.video import video_features
    from models.checkpoint import read_config
    from symmv.features.encoders import make_encoder, provenance

    chord_cfg = read_config(Path(ckpt_dir) / "chord")
    encoder = make_encoder(encoder_name) if chord_cfg.video else None
    if encoder is not None and encoder.dim != chord_cfg.controller.semantic_dim:
        raise ValueError(f"{ckpt_dir} was trained on {chord_cfg.controller.semantic_dim}-d semantic features; "
                         f"encoder {provenance(encoder)} gives {encoder.dim}-d: pass the encoder it was trained with")
    t0 = time.perf_counter()
    feats = video_features(video, encoder, fps=fps)
    features_s = time.perf_counter() - t0
    motion_range, range_source = motion_range_of(dataset_root)
    tempo = tempo_from_motion(feats.motion_mean, *motion_range)
    features = {"semantic": feats.semantic, "color": feats.color, "fps": feats.fps, "duration_s": feats.duration_s,
                "video_tempo_bpm": tempo}
    t0 = time.perf_counter()
    notes = generate_music(features, ckpt_dir, seed=seed, temperature=temperature, top_p=top_p)
    music_s = time.perf_counter() - t0
    out = Path(out)
    midi = write_midi(notes, out.with_suffix(".mid") if not midi_only else out, tempo_bpm=tempo)
    result = {"video": str(video), "midi": str(midi), "notes": len(notes), "tempo_bpm": round(tempo, 2),
              "duration_s": feats.duration_s, "seed": seed, "temperature": temperature, "top_p": top_p,
              "semantic_encoder": feats.semantic_encoder or "none (unconditional model)",
              "motion_range": list(motion_range), "motion_range_from": range_source, "checkpoints": str(ckpt_dir),
              "features_fps": fps, "features_s": round(features_s, 2), "music_s": round(music_s, 2)}
    if not midi_only:
        result["mp4"] = str(render_and_mux(midi, video, out))
    return result
