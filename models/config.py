"""Configuration dataclasses of V-MusProd: model sizes per stage and training settings.

Sizes: `tiny` (CPU tests, seconds), `cpu` (the recipe `make train-all` runs: the 999 SymMV release
songs on 2 CPU cores in under an hour, `paper` and `gpu`. The paper's appendix (hyper-parameters) is not in
the text we have; `paper` follows the CP Transformer [21] / CMT [9] family it builds on (d_model 512,
8 heads, 12 decoder layers, window of 16 bars) and is marked as such; `gpu` is a larger-batch variant
for one modern GPU. No value is defined twice: the CLI and the Prefect flow map onto these fields.

The run configurations below (`TrainRunConfig`, `VariantsConfig`, `EvalConfig`) are what `symmv train`,
`symmv variants` and `symmv evaluate` take (flows/commands.py builds their options from the fields, the
flows and prefect.yaml take the same objects); this module imports no torch, so `--help` stays fast.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from symmv.core import settings
from symmv.core.constants import TEMPO_RANGE_BPM

STAGES = ("chord", "melody", "accompaniment")  # V-MusProd's three stages (`models.training.train --stage all`)
# The one-decoder stages of the Table 2 ablations (paper sec. 6.4): "music" = the whole piece (chords and
# all notes in one stream) from the video, Video2music (or, without video, the CMT-style baseline's
# unconditional model); "notes" = melody + accompaniment in one stream over the chords, Video2chord2music.
ONE_STREAM_STAGES = ("music", "notes")
ALL_STAGES = (*STAGES, *ONE_STREAM_STAGES)
VIDEO_STAGES = ("chord", "music")  # stages whose decoder can cross-attend the video controller
# Used where a video gives no tempo, and by "w/o motion": the middle of the motion -> tempo range (sec. 4.1; the
# mapping itself is annotators.video.motion_tempo_bpm over symmv.core.constants.TEMPO_RANGE_BPM).
DEFAULT_TEMPO_BPM = sum(TEMPO_RANGE_BPM) / 2


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


@dataclass
class SamplingConfig:
    """How a piece is sampled: every generator's defaults (symmv generate, evaluation, the Table 2 rows)."""

    temperature: float | dict = 1.0
    top_p: float | dict = 0.9
    max_tokens: int = 20000
    pitch_range: tuple[int, int] | None = None  # None = each stage's range from its checkpoint's config
    chord_grid: int = 4  # chords may start every this many 16ths (4 = on beats; 1 = anywhere)
    below_melody: bool = True  # accompaniment notes under the sounding melody note
    # Accompaniment notes starting together: the release's 30 s clips have at most ~4 with the melody;
    # uncapped, the CPU checkpoints stack up to 9 (bench/results/music.json, sweep in the README).
    max_notes_per_onset: int = 3
    # A scalar temperature is multiplied by these per attribute (a key "<stage>.<attr>" for one stage only).
    # Issue 14 had pitch at x0.8 to keep the piece in its key; that is what flattened the melody (issue 20,
    # models/generation/contour.py), and the key now comes from the scale correction. Chords at x0.85 stay in the piece's key more often (PE gap to Real +0.19 -> +0.09, SC 0.950 -> 0.960 on the
    # same 64 pieces; bench/results/music_seed5000_ct*.json).
    # Pitch at x1.0 and top-p 1.0 since issue 20: with the data-vs-model corrections below, any narrowing of the
    # pitch distribution shrinks the melody back towards repeated notes (bench/results/sweep_long_*.json).
    temperature_scale: dict = field(default_factory=lambda: {"root": 0.85, "quality": 0.85})
    # A scalar top-p is replaced by these per attribute: the rhythm (token type, onset position, duration) is
    # drawn from the model's whole distribution. Nucleus truncation keeps the most common choices, the
    # shortest steps to the next onset, so with top-p 0.9 everywhere the pieces had ~37% more notes than the
    # release's clips (IOI 0.12 s vs 0.19 s); with 1.0 on the rhythm, 0.15 s (bench/bench_music.py, README).
    top_p_override: dict = field(default_factory=lambda: {"type": 1.0, "barbeat": 1.0, "duration": 1.0, "pitch": 1.0})
    # One token per step is latency-bound: on a loaded 2-core box, intra-op threads made a tiny-model
    # step 7x slower (OpenMP waits) than one thread (bench/bench_models.py). 0 = leave torch's setting.
    cpu_threads: int = 1
    # The form plan (models/generation/form.py: bars restating earlier bars, drawn from a training song's form) and the
    # dynamics model (models/generation/dynamics.py: learned velocities), where the checkpoint folder has them.
    form: bool = True
    dynamics: bool = True
    articulation: bool = True  # melody durations drawn given the next onset (models/generation/dynamics.py)
    # Weights of the corrections fused into the note stages' pitch logits (models/generation/contour.py): the melodic
    # contour (melody) and the chord-relative harmony (melody, accompaniment); 0 = off.
    contour_weight: float = 1.0
    harmony_weight: float = 1.0
    key_weight: float = 1.0  # chord roots relative to the first chord (chord stage)



@dataclass
class TrainRunConfig:
    """`symmv train` / the train-all flow: V-MusProd's stages, each trained on its own (sec. 4.3), then the
    performance models beside them; re-running resumes each stage from its last checkpoint."""

    data: Path = settings.DEFAULT_DATASET  # dataset root (a build's --out): Hive-partitioned Parquet tables
    out: Path = Path("checkpoints/tiny")  # run folder: one sub-folder per stage, the performance models beside them
    size: str = "tiny"  # model and recipe size (SIZES): tiny, cpu, cpu-long, paper, gpu
    # all = chord -> melody -> accompaniment, then the performance models; one stage name trains only that stage
    # (music / notes: the one-decoder ablations); performance = only the performance models beside trained stages
    stage: str = "all"
    # a dataset with video features that the video-conditioned chord stage learns from too (songs of --data
    # without video train with a null video)
    chord_data: Path | None = None
    unconditional: bool = False  # chord / music stage without video (sec. 6.5)
    semantic: bool = True  # the controller reads the semantic features (off: the "w/o semantic" row, sec. 6.4)
    color: bool = True  # the controller reads the colour features (off: the "w/o color" row, sec. 6.4)
    timing_encoding: bool = True  # Timing Encoding in the decoder (off: "w/o motion", sec. 6.4, fixed tempo)
    # checkpoint sub-folder of a single stage (a Table 2 ablation's own folder); by default the stage's name
    folder: str = field(default="", metadata={"default_text": "the stage name"})
    epochs: int = 0  # > 0: train this many epochs instead of the size's budget
    max_steps: int = 0  # > 0: train this many optimizer steps instead of the size's budget
    lr: float = 0.0  # > 0: peak learning rate instead of the size's
    batch_size: int = 0  # > 0: windows per optimizer step instead of the size's
    device: str = field(default="", metadata={"default_text": "the size's"})  # cpu or cuda
    seed: int = 0  # training seed (window crops, initialisation)
    threads: int = 0  # torch CPU threads; 0 = the size's setting (on a busy machine 1 is fastest)
    resume: bool = True  # continue each stage from its last checkpoint in --out (--no-resume starts over)
    calibration_rounds: int = 4  # rounds of free-running calibration of the corrections (0 = none)
    calibration_pieces: int = 96  # free-running pieces per calibration round


@dataclass
class VariantsConfig:
    """`symmv variants`: train every checkpoint folder the Table 2 rows need (models/evaluation/variants.py),
    each once, with the same budget per stage kind; `symmv evaluate --variants-dir` scores them."""

    data: Path = settings.DEFAULT_DATASET  # dataset root (a build's --out) with video features
    out: Path = Path("checkpoints/tiny")  # checkpoint directory: one sub-folder per trained folder, variants.json
    size: str = "tiny"  # model and recipe size (SIZES): tiny, cpu, cpu-long, paper, gpu
    steps: int = 0  # optimizer steps for every stage; 0 = the size's budget
    chord_steps: int = 0  # steps for the chord stages (short sequences: cheap); 0 = as --steps
    threads: int = 0  # torch CPU threads per training step; 0 = the size's setting
    jobs: int = 1  # folders trained at once, in worker processes (2 on a 2-core machine with --threads 1)
    rows: str = field(default="", metadata={"default_text": "every row"})  # comma-separated Table 2 rows to train


@dataclass
class EvalConfig:
    """`symmv evaluate` / the evaluate flow: Table 2 of the paper (sec. 6.2) as a generated report."""

    data: Path = settings.DEFAULT_DATASET  # dataset root (a build's --out) with video features
    # V-MusProd checkpoint folder (chord/, melody/, accompaniment/); "" = only the --variants-dir rows
    ckpt: str = "checkpoints/tiny"
    # a `symmv variants` checkpoint directory: every Table 2 row trained there is evaluated
    variants_dir: str = field(default="", metadata={"default_text": "none"})
    # checkpoint whose chord stage was trained with --unconditional: the "w/o video (unconditional)" row
    unconditional_ckpt: str = field(default="", metadata={"default_text": "none"})
    out: Path = Path("reports/demo")  # report folder: README.md, table2.*, evaluation.json, midi/
    # VMCP preset: tiny (trains in seconds on the demo's pairs) or benchmark (the correspondence benchmark's)
    vmcp: str = "tiny"
    # folder of a trained VMCP to reuse; else one is trained on the train split's pairs and saved to <out>/vmcp
    vmcp_ckpt: str = field(default="", metadata={"default_text": "<out>/vmcp"})
    # eval_release JSON (models/evaluation/eval_release.py): the SymMV release's Real figures as an anchor row
    anchor_json: str = field(default="", metadata={"default_text": "none"})
    split: str = "test"  # or several, comma-separated ("val,test")
    seed: int = 0  # sampling seed (video i samples with seed + 3 i)
    m: int = 70  # VMCP candidate pool (paper: 70); M = min(m, videos in the split)
    vmcp_train_split: str = "train"  # the split whose real pairs VMCP is trained on
    temperature: float = SamplingConfig.temperature  # sampling temperature (per-attribute scales: SamplingConfig)
    top_p: float = SamplingConfig.top_p  # nucleus sampling mass (per-attribute overrides: SamplingConfig)
    fixed_tempo_ablation: bool = True  # add the "fixed tempo" row (same checkpoint, tempo fixed)
    fixed_tempo_bpm: float = DEFAULT_TEMPO_BPM  # the fixed tempo of that row and of "w/o motion"
    sigma_s: float = 0.1  # beat-alignment tolerance (a 16th at ~150 BPM)
    n_boot: int = 1000  # bootstrap resamples of the confidence intervals
    threads: int = 0  # torch CPU threads, 0 = torch's default (on a busy 2-core box, 1 is ~7x faster)


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
