"""The model rows of Table 2 (paper sec. 6.1 and 6.4): how each is trained and how it writes a piece.

    symmv variants --data ROOT --out ckpt/table2 --size cpu       # train every row (run_variants)
    symmv evaluate --data ROOT --ckpt '' --variants-dir ckpt/table2   # score them

Every row is a set of checkpoint folders under one directory plus a generation pipeline. Rows share
folders where the paper's ablation leaves a stage as it is, so each folder is trained once:

    folder                     stage          switches                 rows
    chord                      chord          -                        V-MusProd, w/o motion, Video2chord2music
    melody, accompaniment      melody, acc.   -                        V-MusProd, w/o semantic, w/o color, w/o video
    chord-no-semantic          chord          use_semantic=False       w/o semantic
    chord-no-color             chord          use_color=False          w/o color
    melody-no-timing, ...      melody, acc.   timing_encoding=False    w/o motion (+ fixed tempo at generation)
    chord-unconditional        chord          video=False              w/o video
    music                      music          -                        Video2music
    notes                      notes          -                        Video2chord2music
    music-unconditional        music          video=False              CMT (+ rule-based rhythm, models/generation/rhythm.py)

`train_all_variants` gives every folder of a stage kind the same budget (`steps`, or the size's default),
on the same data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from models.networks.checkpoint import load_model, read_config
from models.config import ALL_STAGES, DEFAULT_TEMPO_BPM, SIZES, VariantsConfig, configs_for, save_json
from models.generation.generate import generate_chord2music, generate_music, generate_one_stream
from models.generation.rhythm import RhythmConfig
from symmv.core.records import Note


@dataclass(frozen=True)
class StageRun:
    """One checkpoint folder: which stage it trains, with which ablation switches (models.training.train flags)."""

    folder: str
    stage: str
    video: bool = True
    semantic: bool = True
    color: bool = True
    timing_encoding: bool = True

    @property
    def switches(self) -> dict:
        return dict(video=self.video, semantic=self.semantic, color=self.color, timing_encoding=self.timing_encoding)


RUNS = {r.folder: r for r in [
    StageRun("chord", "chord"),
    StageRun("melody", "melody"),
    StageRun("accompaniment", "accompaniment"),
    StageRun("chord-no-semantic", "chord", semantic=False),
    StageRun("chord-no-color", "chord", color=False),
    StageRun("melody-no-timing", "melody", timing_encoding=False),
    StageRun("accompaniment-no-timing", "accompaniment", timing_encoding=False),
    StageRun("chord-unconditional", "chord", video=False),
    StageRun("music", "music"),
    StageRun("notes", "notes"),
    StageRun("music-unconditional", "music", video=False),
]}

# A row's generation pipeline (models/generation/generate.py); its `models` dict is keyed by role (= stage name).
PIPELINES: dict[str, Callable[..., list[Note]]] = {
    "decoupled": generate_music,  # chord -> melody -> accompaniment
    "one-stream": generate_one_stream,  # one decoder writes chords and all notes
    "chord2music": generate_chord2music,  # chord -> one decoder for melody + accompaniment
}


@dataclass(frozen=True)
class Row:
    """A Table 2 row: role -> checkpoint folder, the pipeline, and what generation fixes."""

    name: str
    folders: dict[str, str]  # role (the pipeline's stage name) -> folder under the checkpoint directory
    pipeline: str
    fixed_tempo_bpm: float | None = None  # w/o motion: this tempo instead of the video's motion tempo
    options: dict = field(default_factory=dict)  # extra pipeline arguments (CMT: the rhythm rules)
    about: str = ""

    def load(self, ckpt_dir: str | Path, device: str = "cpu") -> dict:
        return {role: load_model(Path(ckpt_dir) / folder, device=device) for role, folder in self.folders.items()}

    def reads_video(self, ckpt_dir: str | Path) -> bool:
        """Whether any of its stages cross-attends the video's semantic / color features."""
        return any(read_config(Path(ckpt_dir) / f).video_conditioned for f in self.folders.values())

    def generate(self, features: dict, ckpt_dir: str | Path, seed: int = 0, *, models: dict | None = None,
                 **sampling) -> list[Note]:
        """One piece for one video: the same `features` as models.generation.generate.generate_music gets (CMT also
        reads `motion` and `shot_boundaries_s`); `sampling`: temperature, top_p, device, max_tokens, sampling."""
        if self.fixed_tempo_bpm is not None:
            features = {**features, "video_tempo_bpm": self.fixed_tempo_bpm}
        models = models or self.load(ckpt_dir, sampling.get("device", "cpu"))
        return PIPELINES[self.pipeline](features, ckpt_dir, seed=seed, models=models, **self.options, **sampling)


@dataclass(frozen=True)
class Variant:
    """One evaluated model: a registry row trained under `ckpt_dir`, or a checkpoint folder given by name."""

    name: str
    ckpt_dir: str
    fixed_tempo_bpm: float | None = None  # None: the video's motion tempo (sec. 4.1)
    row: str | None = None  # a ROWS name, its stages in sub-folders of ckpt_dir; None: chord/melody/acc.


DECOUPLED = {"melody": "melody", "accompaniment": "accompaniment"}
ROWS = {r.name: r for r in [
    Row("V-MusProd", {"chord": "chord", **DECOUPLED}, "decoupled", about="the full model (sec. 4)"),
    Row("w/o semantic", {"chord": "chord-no-semantic", **DECOUPLED}, "decoupled",
        about="controller without semantic input (sec. 6.4)"),
    Row("w/o color", {"chord": "chord-no-color", **DECOUPLED}, "decoupled",
        about="controller without color input (sec. 6.4)"),
    Row("w/o motion", {"chord": "chord", "melody": "melody-no-timing", "accompaniment": "accompaniment-no-timing"},
        "decoupled", fixed_tempo_bpm=DEFAULT_TEMPO_BPM,
        about="fixed tempo, no Timing Encoding in melody / accompaniment (sec. 6.4)"),
    Row("w/o video", {"chord": "chord-unconditional", **DECOUPLED}, "decoupled",
        about="unconditional chord stage (sec. 6.5)"),
    Row("Video2music", {"music": "music"}, "one-stream",
        about="fusion encoder -> one decoder for the whole music (sec. 6.4)"),
    Row("Video2chord2music", {"chord": "chord", "notes": "notes"}, "chord2music",
        about="chords, then one decoder for melody + accompaniment (sec. 6.4)"),
    Row("CMT", {"music": "music-unconditional"}, "one-stream", options={"rhythm": RhythmConfig()},
        about="unconditional compound-word model + rule-based rhythm from the video (Di et al. 2021; sec. 6.1)"),
]}


def folders_of(rows) -> list[str]:
    """The checkpoint folders the rows need, each once, in RUNS order."""
    needed = {f for name in rows for f in ROWS[name].folders.values()}
    return [f for f in RUNS if f in needed]


def stage_budget(steps: int | dict | None, stage: str) -> int | None:
    """Optimizer steps for a stage kind: one number for all, a dict per stage, or None (size default)."""
    return steps.get(stage) if isinstance(steps, dict) else steps


def train_folder(folder: str, out_dir: str | Path, size: str, steps: int | dict | None, *, tables: dict | None = None,
                 data_root: str | Path | None = None, train_overrides: dict | None = None,
                 progress: bool = True) -> dict:
    """Train (or resume) one checkpoint folder of RUNS -> its training summary (without the history)."""
    from models.training import data as D
    from models.training.train import apply_switches, train_stage

    run = RUNS[folder]
    model_cfg, train_cfg = configs_for(run.stage, size)
    apply_switches(model_cfg, **run.switches)
    for name, value in (train_overrides or {}).items():
        setattr(train_cfg, name, value)
    budget = stage_budget(steps, run.stage)
    if budget:
        train_cfg.max_steps = budget
    tables = tables if tables is not None else D.load_tables(data_root)
    summary = train_stage(run.stage, out_dir, tables=tables, model_cfg=model_cfg, train_cfg=train_cfg,
                          folder=folder, progress=progress,
                          provenance={"variants": "models.evaluation.variants", "size": size, "folder": folder})
    return {k: v for k, v in summary.items() if k != "history"}


def train_all_variants(data_root: str | Path | None, out_dir: str | Path, size: str = "tiny",
                       steps: int | dict | None = None, rows=tuple(ROWS), *, tables: dict | None = None,
                       train_overrides: dict | None = None, progress: bool = True, jobs: int = 1) -> dict:
    """Train every folder the rows need (each once; re-running resumes) -> {folder: training summary}.

    Same data for all (`tables`, else loaded once from `data_root`) and the same budget per stage kind:
    `steps` (see `stage_budget`) or the size's default. `train_overrides`: TrainConfig fields for every run
    (tests: tiny windows). `jobs` > 1: that many folders train at once in worker processes (each loads the
    data itself; give each one torch thread, `num_threads` in `train_overrides`). Writes
    `<out_dir>/variants.json`: rows -> folders, and each folder's run.
    """
    from models.training import data as D

    unknown = set(rows) - set(ROWS)
    if unknown:
        raise ValueError(f"unknown Table 2 rows {sorted(unknown)}; rows: {list(ROWS)}")
    folders = folders_of(rows)
    kw = dict(train_overrides=train_overrides, progress=progress and jobs <= 1)
    if jobs > 1 and data_root is not None and tables is None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # the longest stages first, so the pool does not end on one long job
        order = sorted(folders, key=lambda f: RUNS[f].stage == "chord")
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {f: pool.submit(train_folder, f, out_dir, size, steps, data_root=data_root, **kw) for f in order}
            summaries = {f: futures[f].result() for f in folders}
    else:
        tables = tables if tables is not None else D.load_tables(data_root)
        summaries = {f: train_folder(f, out_dir, size, steps, tables=tables, **kw) for f in folders}
    save_json({"rows": {name: asdict(ROWS[name]) for name in rows},
               "runs": {f: asdict(RUNS[f]) for f in summaries}, "size": size, "steps": steps,
               "summaries": summaries}, Path(out_dir) / "variants.json")
    return summaries


def eval_variants(ckpt_dir: str | Path, rows=tuple(ROWS)) -> list:
    """The rows as Variants (rows whose folders are missing under ckpt_dir are left out)."""
    present = [n for n in rows if all((Path(ckpt_dir) / f / "config.json").exists() for f in ROWS[n].folders.values())]
    return [Variant(name, str(ckpt_dir), ROWS[name].fixed_tempo_bpm, row=name) for name in present]


def run_variants(cfg: VariantsConfig, progress: bool = True) -> dict:
    """`symmv variants`: every folder the chosen rows need, trained with the run's budget -> {folder: summary}."""
    rows = tuple(r.strip() for r in cfg.rows.split(",") if r.strip()) or tuple(ROWS)
    if cfg.size not in SIZES:
        raise ValueError(f"unknown --size {cfg.size!r}; sizes: {', '.join(SIZES)}")
    steps: int | dict | None = cfg.steps or None
    if cfg.chord_steps:
        steps = {stage: cfg.chord_steps if stage == "chord" else (cfg.steps or None) for stage in ALL_STAGES}
    return train_all_variants(cfg.data, cfg.out, cfg.size, steps, rows, progress=progress, jobs=cfg.jobs,
                              train_overrides={"num_threads": cfg.threads} if cfg.threads else None)
