"""Video features -> background music: Chord -> Melody -> Accompaniment, then merge (paper eq. 1).

`generate_music` takes the features the video annotators produce (semantic / color frame arrays, fps,
the motion tempo `video_tempo_bpm`, duration) and the checkpoint folder written by `models.training.train`
(`<ckpt_dir>/{chord,melody,accompaniment}/`). The piece has ceil(duration * tempo / 240) bars of 4/4, so
it covers the whole video at the tempo derived from motion (sec. 4.1); notes past the video's end are
dropped and the last ones cut at its end. `write_midi` and `render_and_mux` (fluidsynth + ffmpeg) turn
the notes into a music video.

The Table 2 ablations generate through `generate_one_stream` (Video2music; CMT-style with a rhythm plan)
and `generate_chord2music` (Video2chord2music); models/evaluation/variants.py says which row uses which.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from models import tokens as tk
from models.networks.checkpoint import (ARTICULATION_FILE, CONTOUR_FILE, DYNAMICS_FILE, FORM_FILE, HARMONY_FILE, HARMONY_STAGES,
                               KEY_FILE, load_model)
from models.generation.contour import ContourModel, HarmonyModel, KeyModel
from models.generation.dynamics import ArticulationModel, DynamicsModel
from models.generation.form import FormModel
from models.generation.rhythm import RhythmConfig, apply_strength, cmt_rhythm
from models.config import DEFAULT_TEMPO_BPM, SamplingConfig
from models.generation.sample import Grammar, condition_context, sample_sequence, video_context
from symmv.core import settings
from symmv.io import media
from symmv.io.midi import write_notes
from symmv.core.records import Note

# Frames per second the semantic/color features are sampled at for generation. The dataset uses 6 fps, but
# the chord stage strides any video to `max_frames` (512) and places frames by timing bucket, so 2 fps
# loses little and makes the semantic encoder, the bulk of `symmv generate`'s time, 3x cheaper.
GENERATE_FPS = 2.0
# The checkpoints `make train-all` writes and the repository ships (CC BY-NC-SA 4.0, see their LICENSE.md).
SHIPPED_CHECKPOINTS = settings.SHIPPED_CHECKPOINTS
VELOCITY = {"melody": 90, "accompaniment": 70}  # without a dynamics model (checkpoints from before it)


def tempo_from_motion(motion_mean: float, motion_min: float, motion_max: float) -> float:
    """Paper sec. 4.1: the video's mean RGB difference mapped onto the tempo range (annotators.video's mapping,
    the one the build uses); a dataset whose videos all move alike (no range) gets DEFAULT_TEMPO_BPM."""
    from annotators.video import motion_tempo_bpm

    return motion_tempo_bpm(motion_mean, motion_min, motion_max) if motion_max > motion_min else DEFAULT_TEMPO_BPM


def bars_for(duration_s: float, tempo_bpm: float) -> int:
    """Bars of 4/4 needed to cover `duration_s` at `tempo_bpm`."""
    return max(1, math.ceil(duration_s * tempo_bpm / 240.0 - 1e-9))


def clip_to(notes: list[Note], duration_s: float) -> list[Note]:
    kept = [n for n in notes if n.onset_s < duration_s]
    return [n if n.offset_s <= duration_s else Note(n.onset_s, duration_s, n.pitch, n.velocity, n.track, n.bar,
                                                    n.position, n.duration_16th) for n in kept]


def piece_timing(features: dict) -> tuple[float, float, int]:
    """(tempo_bpm, duration_s, n_bars) of the piece for a video: the motion tempo of sec. 4.1, else the
    dataset-range mapping of `motion_mean`, else DEFAULT_TEMPO_BPM."""
    tempo = features.get("video_tempo_bpm")
    if not tempo and "motion_mean" in features and "motion_range" in features:
        tempo = tempo_from_motion(features["motion_mean"], *features["motion_range"])
    tempo = float(tempo or DEFAULT_TEMPO_BPM)
    duration_s = float(features["duration_s"])
    return tempo, duration_s, bars_for(duration_s, tempo)


def make_grammar(stage: str, model, n_bars: int, tempo: float, cfg: SamplingConfig, chords=(), melody=(),
                 rhythm=None, repeat_of=None, rhythm_of=None, contour=None, harmony=None, key=None) -> Grammar:
    pitch_range = cfg.pitch_range or getattr(model.cfg, "pitch_range", (21, 108))
    return Grammar(stage, n_bars, tempo, chords, pitch_range=pitch_range, max_tokens=cfg.max_tokens,
                   chord_grid=cfg.chord_grid, melody=melody if cfg.below_melody else (),
                   max_notes_per_onset=cfg.max_notes_per_onset, rhythm=rhythm, repeat_of=repeat_of,
                   rhythm_of=rhythm_of, contour=contour, contour_weight=cfg.contour_weight, harmony=harmony,
                   harmony_weight=cfg.harmony_weight, key=key, key_weight=cfg.key_weight)


def sampling_config(sampling: SamplingConfig | None, temperature, top_p, max_tokens: int) -> SamplingConfig:
    return replace(sampling or SamplingConfig(), temperature=temperature, top_p=top_p, max_tokens=max_tokens)


def sample_chords(chord_model, features: dict, n_bars: int, tempo: float, cfg: SamplingConfig,
                  seed: int, repeat_of: dict[int, int] | None = None, key=None) -> list[tk.ChordEvent]:
    """The Chord Transformer's progression for the video (the unconditional one ignores the video)."""
    ctx = video_context(chord_model, features.get("semantic"), features.get("color"), n_bars)
    grammar = make_grammar("chord", chord_model, n_bars, tempo, cfg, repeat_of=repeat_of, key=key)
    return tk.decode_chords(sample_sequence(chord_model, ctx, grammar, cfg, seed))


def performance_models(ckpt_dir: str | Path) -> dict:
    """The performance models fitted beside the stages (models.networks.checkpoint.PERFORMANCE_FILES: form plan, dynamics,
    articulation, the pitch / root corrections), by name; absent ones (older checkpoints) are left out."""
    found = {}
    for name, cls, file in (("form", FormModel, FORM_FILE), ("dynamics", DynamicsModel, DYNAMICS_FILE),
                            ("contour", ContourModel, CONTOUR_FILE),
                            ("articulation", ArticulationModel, ARTICULATION_FILE), ("key", KeyModel, KEY_FILE),
                            *((f"harmony.{s}", HarmonyModel, HARMONY_FILE.format(stage=s)) for s in HARMONY_STAGES)):
        if (Path(ckpt_dir) / file).is_file():
            found[name] = cls.load(Path(ckpt_dir) / file)
    return found


def bar_contents(events, key) -> dict[int, frozenset]:
    out: dict[int, set] = {}
    for e in events:
        out.setdefault(int(e.bar), set()).add(key(e))
    return {b: frozenset(v) for b, v in out.items()}


def agreeing(plan: dict[int, int], *layers: dict[int, frozenset]) -> dict[int, int]:
    """The planned repeats whose bars already agree in every earlier layer (a melody restates its bar only
    over the same chords)."""
    return {b: s for b, s in plan.items() if all(layer.get(b) == layer.get(s) for layer in layers)}


def generate_music(features: dict, ckpt_dir: str | Path, seed: int = 0,
                   temperature: float | dict = SamplingConfig.temperature, top_p: float | dict = SamplingConfig.top_p,
                   device: str = "cpu", max_tokens: int = SamplingConfig.max_tokens,
                   models: dict | None = None, sampling: SamplingConfig | None = None,
                   return_chords: bool = False) -> list[Note] | tuple[list[Note], list[tk.ChordEvent]]:
    """features: semantic (T, Ds), color (T, Dc) arrays, fps, video_tempo_bpm, duration_s -> merged notes.

    Without `video_tempo_bpm`, `motion_mean` + `motion_range` (dataset min, max) give it; else 110 BPM.

    `models` (stage -> model, and the performance models of `performance_models`) skips loading
    from `ckpt_dir`, for benchmarks that reuse loaded models; `sampling` sets the grammar options
    (temperature / top-p come from the arguments; `form`, `dynamics`, `articulation`, `contour_weight`,
    `harmony_weight` switch those models off);
    `return_chords` also returns the chord stage's chords.
    """
    tempo, duration_s, n_bars = piece_timing(features)
    if models is None:
        models = {s: load_model(Path(ckpt_dir) / s, device=device) for s in ("chord", "melody", "accompaniment")}
        models.update(performance_models(ckpt_dir))
    cfg = sampling_config(sampling, temperature, top_p, max_tokens)
    form = models.get("form") if cfg.form else None
    plan = form.sample(n_bars, np.random.default_rng(seed)) if form else {}
    tune, groove = plan.get("melody", {}), plan.get("rhythm", {})
    chords = sample_chords(models["chord"], features, n_bars, tempo, cfg, seed,
                           repeat_of={**plan.get("chord", {}), **tune},  # a restated tune brings its chords
                           key=models.get("key"))
    chord_bars = bar_contents(chords, lambda c: (c.position, c.root, c.quality))

    cond = tk.encode(chords=chords, n_bars=n_bars, tempo_bpm=tempo, bos_eos=False)
    ctx = condition_context(models["melody"], cond)
    grammar = make_grammar("melody", models["melody"], n_bars, tempo, cfg, chords,
                           repeat_of=agreeing(tune, chord_bars), rhythm_of=groove, contour=models.get("contour"),
                           harmony=models.get("harmony.melody"))
    melody_tokens = sample_sequence(models["melody"], ctx, grammar, cfg, seed + 1)
    melody = tk.decode_notes(melody_tokens, track="melody", tempo_bpm=tempo, velocity=VELOCITY["melody"])
    articulation = models.get("articulation") if cfg.articulation else None
    if articulation is not None:  # before the accompaniment, which stays under the melody as now held
        melody = articulation.apply(melody, seed=seed + 4, tempo_bpm=tempo)

    cond = tk.encode(melody, chords, n_bars=n_bars, tempo_bpm=tempo, bos_eos=False)
    ctx = condition_context(models["accompaniment"], cond)
    grammar = make_grammar("accompaniment", models["accompaniment"], n_bars, tempo, cfg, chords, melody,
                           rhythm_of={**groove, **tune}, harmony=models.get("harmony.accompaniment"))
    accomp_tokens = sample_sequence(models["accompaniment"], ctx, grammar, cfg, seed + 2)
    accomp = tk.decode_notes(accomp_tokens, track="accompaniment", tempo_bpm=tempo,
                             velocity=VELOCITY["accompaniment"])
    notes = sorted(clip_to(melody + accomp, duration_s), key=lambda n: (n.onset_s, n.pitch, n.track))
    dynamics = models.get("dynamics") if cfg.dynamics else None
    if dynamics is not None:
        notes = dynamics.apply(notes, seed=seed + 3)
    return (notes, chords) if return_chords else notes


def split_tracks(notes: list[Note], tempo_bpm: float, n_bars: int) -> list[Note]:
    """One-stream output -> melody / accompaniment by the dataset's own skyline (annotators/skyline.py),
    with V-MusProd's per-track velocities, so every Table 2 row is scored and rendered alike."""
    from annotators.skyline import skyline
    from symmv.core.records import Beat

    beat_s = 60.0 / tempo_bpm
    beats = [Beat(k * beat_s, k // 4, k % 4 + 1) for k in range(4 * n_bars + 1)]
    return [replace(n, velocity=VELOCITY[n.track]) for n in skyline(notes, beats)]


def generate_one_stream(features: dict, ckpt_dir: str | Path, seed: int = 0,
                        temperature: float | dict = SamplingConfig.temperature,
                        top_p: float | dict = SamplingConfig.top_p,
                        device: str = "cpu", max_tokens: int = SamplingConfig.max_tokens,
                        models: dict | None = None, sampling: SamplingConfig | None = None, stage: str = "music",
                        rhythm: RhythmConfig | None = None) -> list[Note]:
    """Video2music (sec. 6.4): the "music" stage writes chords and every note in one stream from the video.

    With an unconditional "music" checkpoint and `rhythm`, the CMT-style baseline: the video steers only
    the rhythm, through the rule-based plan of models/generation/rhythm.py (onsets, density, strength). `stage`
    names the checkpoint sub-folder / `models` key.
    """
    tempo, duration_s, n_bars = piece_timing(features)
    model = models[stage] if models and stage in models else load_model(Path(ckpt_dir) / stage, device=device)
    cfg = sampling_config(sampling, temperature, top_p, max_tokens)
    plan = None
    if rhythm is not None:
        plan = cmt_rhythm(features.get("motion"), features.get("shot_boundaries_s"), duration_s, tempo, n_bars, rhythm)
    ctx = video_context(model, features.get("semantic"), features.get("color"), n_bars)
    tokens = sample_sequence(model, ctx, make_grammar("music", model, n_bars, tempo, cfg, rhythm=plan), cfg, seed)
    notes = split_tracks(tk.decode_notes(tokens, tempo_bpm=tempo), tempo, n_bars)
    if plan is not None:
        notes = apply_strength(notes, plan)
    return sorted(clip_to(notes, duration_s), key=lambda n: (n.onset_s, n.pitch, n.track))


def generate_chord2music(features: dict, ckpt_dir: str | Path, seed: int = 0,
                         temperature: float | dict = SamplingConfig.temperature,
                        top_p: float | dict = SamplingConfig.top_p,
                         device: str = "cpu", max_tokens: int = SamplingConfig.max_tokens,
                         models: dict | None = None, sampling: SamplingConfig | None = None) -> list[Note]:
    """Video2chord2music (sec. 6.4): V-MusProd's chord stage, then one "notes" decoder over the chords
    writing melody and accompaniment together."""
    tempo, duration_s, n_bars = piece_timing(features)
    models = models or {s: load_model(Path(ckpt_dir) / s, device=device) for s in ("chord", "notes")}
    cfg = sampling_config(sampling, temperature, top_p, max_tokens)
    chords = sample_chords(models["chord"], features, n_bars, tempo, cfg, seed)
    ctx = condition_context(models["notes"], tk.encode(chords=chords, n_bars=n_bars, tempo_bpm=tempo, bos_eos=False))
    tokens = sample_sequence(models["notes"], ctx, make_grammar("notes", models["notes"], n_bars, tempo, cfg, chords),
                             cfg, seed + 1)
    notes = split_tracks(tk.decode_notes(tokens, tempo_bpm=tempo), tempo, n_bars)
    return sorted(clip_to(notes, duration_s), key=lambda n: (n.onset_s, n.pitch, n.track))


def write_midi(notes: list[Note], path: str | Path, tempo_bpm: float = 120.0) -> Path:
    """One piano instrument per track (melody, accompaniment); note times are seconds already."""
    return write_notes(notes, path, tempo_bpm=tempo_bpm, resolution=960)


def render_and_mux(midi_path: str | Path, video_path: str | Path, out_mp4: str | Path,
                   soundfont: str | None = None, sample_rate: int = 44100) -> Path:
    """Synthesize the MIDI with fluidsynth and replace the video's audio with it (video stream copied);
    the music is padded with silence to the video's length and cut at its end. `soundfont` None = the
    piano of `symmv.io.media.music_soundfont()` (FluidR3_GM when installed, else the small TimGM6mb)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = media.render_midi(midi_path, Path(tmp) / "music.wav", sample_rate=sample_rate,
                                soundfont=soundfont or media.music_soundfont())
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
                       temperature: float = SamplingConfig.temperature, top_p: float = SamplingConfig.top_p,
                       midi_only: bool = False,
                       encoder_name: str = "efficientnet-lite0", dataset_root: str | Path | None = None,
                       fps: float = GENERATE_FPS) -> dict:
    """The end product: a video in, its features extracted, three stages sampled, MIDI written, the
    music rendered with fluidsynth and muxed onto the video. Returns what was done, with provenance."""
    from symmv.features.video import video_features
    from models.networks.checkpoint import read_config
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
        result["soundfont"] = str(media.music_soundfont())
        result["mp4"] = str(render_and_mux(midi, video, out))
    return result
