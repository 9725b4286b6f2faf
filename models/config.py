"""Configuration dataclasses of V-MusProd: model sizes per stage and training settings.

Sizes: `tiny` (CPU tests, seconds), `cpu` (the recipe `make train-all` runs: the 999 SymMV release
songs on 2 CPU cores in under an hour, `paper` and `gpu`. The paper's appendix (hyper-parameters) is not in
the text we have; `paper` follows the CP Transformer [21] / CMT [9] family it builds on (d_model 512,
8 heads, 12 decoder layers, window of 16 bars) and is marked as such; `gpu` is a larger-batch variant
for one modern GPU. No value is defined twice: the CLI and the Prefect flow map onto these fields.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

STAGES = ("chord", "melody", "accompaniment")  # V-MusProd's three stages (`models.training.train --stage all`)
# The one-decoder stages of the Table 2 ablations (paper sec. 6.4): "music" = the whole piece (chords and
# all notes in one stream) from the video, Video2music (or, without video, the CMT-style baseline's
# unconditional model); "notes" = melody + accompaniment in one stream over the chords, Video2chord2music.
ONE_STREAM_STAGES = ("music", "notes")
ALL_STAGES = (*STAGES, *ONE_STREAM_STAGES)
VIDEO_STAGES = ("chord", "music")  # stages whose decoder can cross-attend the video controller


@dataclass
class ControllerConfig:
    """Video controller (paper sec. 4.1): per-modality encoders, then a fusion encoder."""

    semantic_dim: int = 0  # read from the data (CLIP2Video gives 512; never assumed)
    color_dim: int = 0  # read from the data (color_bins^2 * 3 for the RGB-uv histogram)
    n_layer_modality: int = 1
    n_layer_fusion: int = 1
    max_frames: int = 512  # longer feature sequences are strided down to this many frames
    use_semantic: bool = True  # False = "w/o semantic" (sec. 6.4): no semantic encoder, the input is ignored
    use_color: bool = True  # False = "w/o color" (sec. 6.4): no color encoder, the input is ignored
    # Each frame's features standardised before the input layer (colour histograms: square root first).
    # Checkpoints from before this field load with False, as they were trained.
    input_norm: bool = True
    # A decoder token of bar b cross-attends the frames of bars b - bar_reach .. b + bar_reach (the video's
    # counterpart of the note stages' bar-level mask); -1 = every frame of the window (checkpoints from
    # before this field). Which frame lies in which bar: models.networks.controller.frame_bars.
    bar_reach: int = 1


@dataclass
class ModelConfig:
    stage: str = "chord"
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2  # decoder layers
    n_enc_layer: int = 1  # encoder layers (melody / accompaniment); unused by the chord stage
    d_ff_mult: int = 4
    dropout: float = 0.0
    max_bars: int = 256  # Bar Embedding size; later bars share the last row
    block_size: int = 256  # longest decoder sequence trained on
    video: bool = True  # chord / music stage: cross-attend the video controller; False = unconditional (sec. 6.5)
    # Timing Encoding (CMT [9], sec. 4.1): the token's place in the whole piece. False = the "w/o motion"
    # ablation (sec. 6.4: "fix tempo and do not add timing encoding"); the fixed tempo is set at generation.
    timing_encoding: bool = True
    attn_impl: str = "sdpa"  # "sdpa" or "naive" (materialised mask, for the benchmark)
    # MIDI pitches the sampler may draw for this stage's notes: the 0.5-99.5th percentile of the
    # training notes of the track, set by models.training.train from the data (the default is the piano's range).
    pitch_range: tuple[int, int] = (21, 108)
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    @property
    def encoder_decoder(self) -> bool:
        return self.stage in ("melody", "accompaniment", "notes")

    @property
    def video_conditioned(self) -> bool:
        return self.stage in VIDEO_STAGES and self.video


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    window_bars: int = 8  # training crop, in bars (the encoder sees one more bar each side)
    windows_per_song: int = 4  # random crops per song per epoch
    patience: int = 5  # early stopping: epochs without val improvement
    seed: int = 0
    device: str = "cpu"  # "cuda" enables bf16 autocast
    num_threads: int = 0  # torch CPU threads, 0 = leave torch's default
    max_steps: int = 0  # > 0: train this many optimizer steps (epochs follow from the data size)
    transpose: int = 0  # training windows shifted by a random -k..k semitones (pitches and chord roots)
    max_val_windows: int = 0  # validation on at most this many fixed windows (evenly spread), 0 = all
    # Share of training windows that start at the song's first bar. Generation always starts a piece at bar 0,
    # and random crops of ~100-bar songs almost never show one, so without this the model writes every
    # piece as if it were the middle of a song (denser than real openings: issue 14's PE / IOI gap).
    opening_share: float = 0.0
    # Chord stage with video: songs without video features (the SymMV release ships none) train with a
    # one-frame all-zero "null video" memory, so the chord language is learned from all songs and the
    # video pathway from the songs that have videos. False = such songs are skipped.
    null_video: bool = True


SIZES: dict[str, tuple[dict, dict]] = {  # size -> (ModelConfig overrides, TrainConfig overrides); cpu-long below
    "tiny": (dict(d_model=64, n_head=4, n_layer=2, n_enc_layer=1, block_size=256),
             dict(epochs=20, batch_size=8, lr=1e-3, window_bars=8)),
    # The CPU recipe (make train-all): ~0.6 M parameters per stage, 16-bar windows, 4 random windows per
    # song per epoch, a fixed number of steps per stage (CPU_STEPS). Small on purpose: on 2 shared cores
    # this model trains at ~2k tokens/s, so an hour buys ~5 M training tokens (the release has ~4 / 10 /
    # 16 chord / melody / accompaniment tokens per bar, ~100 bars per song); a wider model would see too
    # few of them to learn.
    "cpu": (dict(d_model=96, n_head=4, n_layer=3, n_enc_layer=1, block_size=512),
            dict(epochs=1000, batch_size=16, lr=1.5e-3, warmup_steps=100, window_bars=16, windows_per_song=4,
                 # one torch thread: on a busy 2-core machine two made a step ~6x slower (OpenMP waits); the
                 # 999-song recipe took 19.7 min on one (models/checkpoints/cpu/*/training.json)
                 patience=3, num_threads=1, max_val_windows=256, transpose=6)),
    # Assumed, not from the paper (appendix unavailable): CP-Transformer-like width, 200/200/400 epochs (sec. 4.3).
    "paper": (dict(d_model=512, n_head=8, n_layer=12, n_enc_layer=4, dropout=0.1, block_size=1024,
                   controller=ControllerConfig(n_layer_modality=2, n_layer_fusion=2)),
              dict(epochs=200, batch_size=4, lr=1e-4, window_bars=16, patience=20)),
    "gpu": (dict(d_model=512, n_head=8, n_layer=12, n_enc_layer=4, dropout=0.1, block_size=2048,
                 controller=ControllerConfig(n_layer_modality=2, n_layer_fusion=2, max_frames=1024)),
            dict(epochs=200, batch_size=32, lr=3e-4, window_bars=32, patience=20, device="cuda")),
}
SIZES["cpu-long"] = SIZES["cpu"]  # same model and optimiser; only the step budget (CPU_STEPS) differs
# sec. 4.3 gives 200 / 200 / 400 epochs for the three stages; the one-stream stages (not in the paper's
# text) get the accompaniment's budget: they predict at least its tokens per bar.
PAPER_EPOCHS = {"chord": 200, "melody": 200, "accompaniment": 400, "music": 400, "notes": 400}
PAPER_SIZES = ("paper", "gpu")
CPU_STEPS = {"cpu": {"chord": 800, "melody": 700, "accompaniment": 600,  # 65 / 373 / 655 s on the 999 songs
                     "music": 600, "notes": 600},
             # The shipped checkpoints since issue 20 (`make train-shipped`): the same model, ~3x the steps. Melody
             # pitch loss 2.62 -> 2.02 nats, accompaniment 2.59 -> 2.04; 198 / 1483 / 2059 s at one thread
             # (62 min of CPU, 35 min wall with the accompaniment in a second process beside chord + melody).
             "cpu-long": {"chord": 2000, "melody": 2800, "accompaniment": 1800, "music": 1800, "notes": 1800}}


def configs_for(stage: str, size: str) -> tuple[ModelConfig, TrainConfig]:
    if stage not in ALL_STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {ALL_STAGES}")
    model_kw, train_kw = SIZES[size]
    model = ModelConfig(stage=stage, **{k: (replace(v) if isinstance(v, ControllerConfig) else v)
                                        for k, v in model_kw.items()})
    train = TrainConfig(**train_kw)
    if size in PAPER_SIZES:
        train.epochs = PAPER_EPOCHS[stage]
    elif size in CPU_STEPS:
        train.max_steps = CPU_STEPS[size][stage]
    return model, train


def model_config_to_dict(cfg: ModelConfig) -> dict:
    return asdict(cfg)


def model_config_from_dict(d: dict) -> ModelConfig:
    d = dict(d)
    # fields added later default to the behaviour the old checkpoint was trained with
    controller = ControllerConfig(**{"input_norm": False, "bar_reach": -1, **d.pop("controller", {})})
    if "pitch_range" in d:
        d["pitch_range"] = tuple(d["pitch_range"])
    known = {f.name for f in fields(ModelConfig)}
    return ModelConfig(controller=controller, **{k: v for k, v in d.items() if k in known})


def save_json(obj: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True))


class JsonFile:
    """`save` / `load` of a dataclass as one compact JSON file (the performance models beside the stages)."""

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), separators=(",", ":")))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path):
        return cls(**json.loads(Path(path).read_text()))
