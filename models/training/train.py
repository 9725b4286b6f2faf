"""Train one V-MusProd stage with teacher forcing (paper sec. 4.3: stages trained separately).

    symmv train --stage chord --size tiny --data DATASET_ROOT --out ckpt/      # the train-all Prefect flow
    python -m models.training.train --stage chord ...                          # the same, without Prefect

Writes `<out>/<stage>/`: model.safetensors (best validation loss), last.safetensors + optimizer.* +
state.json (resume point, one per epoch), config.json, loss.png. Re-running the same command resumes.
Validation loss per epoch (total and per attribute), early stopping after `patience` epochs without
improvement; `training.json` keeps the summary (best and unigram-baseline validation loss per attribute,
wall time, data, provenance).

Distributed: under `torchrun --nproc_per_node N -m models.training.train ...` every rank trains on its own
shard of each epoch's windows through DistributedDataParallel (gloo on CPU, NCCL on CUDA); rank 0 writes
the checkpoints. Without torchrun nothing changes.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.training import data as D
from models import tokens as tk
from models.networks.checkpoint import load_model, load_optimizer, save_model, save_optimizer
from models.config import (ALL_STAGES, SIZES, STAGES, ModelConfig, TrainConfig, TrainRunConfig, configs_for,
                           save_json)
from models.networks.transformers import CompoundDecoder, build_model, compound_loss


def autocast(device: str):
    # bf16 autocast on CUDA only (CPU autocast in bf16 is slower than fp32 on most CPUs).
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))


def evaluate(model: CompoundDecoder, items: list[dict], batch_size: int, device: str) -> float:
    """Mean compound loss over fixed validation windows (batch-size weighted)."""
    return evaluate_parts(model, items, batch_size, device)[0]


@torch.no_grad()
def evaluate_parts(model: CompoundDecoder, items: list[dict], batch_size: int,
                   device: str) -> tuple[float, dict[str, float]]:
    """(mean compound loss, attribute -> mean cross-entropy) over fixed validation windows."""
    model.eval()
    total, n, parts = 0.0, 0, {}
    for batch in D.batches(items, batch_size):
        with autocast(device):
            loss, batch_parts = model(D.to_device(batch, device))
        b = len(batch["tokens"])
        total, n = total + float(loss) * b, n + b
        for attr, ce in batch_parts.items():
            parts.setdefault(attr, []).append((ce, b))
    return total / max(n, 1), {a: sum(c * b for c, b in v) / sum(b for _, b in v) for a, v in parts.items()}


def unigram_log_probs(items: list[dict]) -> dict[str, torch.Tensor]:
    """Per-attribute unigram distribution (add-one) of the training targets, on the tokens using it."""
    targets = np.concatenate([it["tokens"][1:, : len(tk.ATTRIBUTES)] for it in items])
    used = tk.ATTRIBUTES_USED[targets[:, 0]]
    return {a: torch.log(torch.as_tensor(np.bincount(targets[used[:, i], i], minlength=tk.VOCAB[a]) + 1.0)
                         / (used[:, i].sum() + tk.VOCAB[a])).float()
            for i, a in enumerate(tk.ATTRIBUTES)}


def unigram_loss(log_probs: dict[str, torch.Tensor], items: list[dict], batch_size: int) -> float:
    """The same compound loss as `evaluate`, for a model that ignores its input (the baseline)."""
    return unigram_parts(log_probs, items, batch_size)[0]


def unigram_parts(log_probs: dict[str, torch.Tensor], items: list[dict],
                  batch_size: int) -> tuple[float, dict[str, float]]:
    total, n, parts = 0.0, 0, {}
    for batch in D.batches(items, batch_size):
        targets = batch["tokens"][:, 1:, : len(tk.ATTRIBUTES)]
        logits = {a: lp.expand(*targets.shape[:2], -1) for a, lp in log_probs.items()}
        loss, batch_parts = compound_loss(logits, targets)
        total, n = total + float(loss) * len(targets), n + len(targets)
        for attr, ce in batch_parts.items():
            parts.setdefault(attr, []).append((ce, len(targets)))
    return total / max(n, 1), {a: sum(c * b for c, b in v) / sum(b for _, b in v) for a, v in parts.items()}


# The tracks whose notes a stage generates ("music" / "notes": both, in one stream).
STAGE_TRACKS = {"chord": (), "melody": ("melody",), "accompaniment": ("accompaniment",),
                "music": D.TRACKS, "notes": D.TRACKS}


def track_pitch_range(examples: list[D.SongExample], stage: str) -> tuple[int, int]:
    """0.5-99.5th percentile of the stage's training pitches: the sampler's pitch range for the track."""
    pitches = [n.pitch for ex in examples for track in STAGE_TRACKS[stage] for n in getattr(ex, track)]
    if len(pitches) < 100:
        return (21, 108)
    lo, hi = np.percentile(pitches, [0.5, 99.5])
    return int(np.floor(lo)), int(np.ceil(hi))


def distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and os.environ.get("SYMMV_DDP_BACKEND") != "gloo"
                                else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shard(items: list, rank: int, world: int) -> list:
    """This rank's equal share of the epoch's windows (every rank runs the same number of steps)."""
    n = len(items) // world * world
    return items[rank:n:world] if world > 1 else items


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def plot_losses(history: list[dict], path: Path, baseline: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    if baseline is not None:
        ax.axhline(baseline, ls="--", c="gray", label="unigram baseline")
    ax.set_xlabel("epoch"), ax.set_ylabel("sum of attribute cross-entropies"), ax.legend()
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


def data_dims(examples: list[D.SongExample]) -> tuple[int, int]:
    for ex in examples:
        if ex.semantic is not None and ex.color is not None and ex.semantic.size and ex.color.size:
            return ex.semantic.shape[1], ex.color.shape[1]
    return 0, 0


def train_stage(stage: str, out_dir: str | Path, *, data_root: str | Path | None = None, tables: dict | None = None,
                size: str = "tiny", model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
                resume: bool = True, progress: bool = True, provenance: dict | None = None,
                folder: str | None = None) -> dict:
    """Train one stage; returns a summary (best/last validation loss, unigram baseline, history, paths).

    `provenance` (data sources, license, command) is stored with the checkpoint's config and summary.
    `folder` names the checkpoint sub-folder (default: the stage), so that ablations of one stage
    (models/evaluation/variants.py: "chord-no-semantic", ...) live next to V-MusProd's stages.
    """
    default_model, default_train = configs_for(stage, size)
    model_cfg, train_cfg = model_cfg or default_model, train_cfg or default_train
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    rank, world = distributed()
    tables = tables if tables is not None else D.load_tables(data_root)
    train_ex, val_ex = D.build_examples(tables, "train"), D.build_examples(tables, "val")
    if model_cfg.video_conditioned:
        sem, col = data_dims(train_ex)
        if not sem:
            raise ValueError("chord stage with video needs video_features for the training songs")
        model_cfg.controller = replace(model_cfg.controller, semantic_dim=sem, color_dim=col)
    if STAGE_TRACKS[model_cfg.stage]:
        model_cfg.pitch_range = track_pitch_range(train_ex, model_cfg.stage)
    out = Path(out_dir) / (folder or stage)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train_cfg.seed)
    device = train_cfg.device if world == 1 or not train_cfg.device.startswith("cuda") else f"cuda:{rank}"
    val_items = D.windows(val_ex, model_cfg, train_cfg, rng=None)
    n_video = sum(D.has_video(ex) for ex in train_ex)
    extra = {"train": asdict(train_cfg), "n_train_songs": len(train_ex), "n_val_songs": len(val_ex),
             "n_train_songs_with_video": n_video, "world_size": world, "provenance": provenance or {}}

    model = build_model(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    state = {"epoch": 0, "step": 0, "best_val": float("inf"), "bad_epochs": 0, "history": [], "wall_s": 0.0}
    if resume and (out / "state.json").exists():
        model = load_model(out, "last", device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
        load_optimizer(opt, out)
        state = {"wall_s": 0.0, **json.loads((out / "state.json").read_text())}
    step_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # The chord stage has no Note tokens, so the pitch/duration heads get no gradient: unused params.
        step_model = DistributedDataParallel(model, find_unused_parameters=True)

    first_items = D.windows(train_ex, model_cfg, train_cfg, np.random.default_rng(train_cfg.seed))
    baseline, baseline_parts = (unigram_parts(unigram_log_probs(first_items), val_items, train_cfg.batch_size)
                                if val_items else (None, {}))
    steps_per_epoch = math.ceil(len(shard(first_items, rank, world)) / train_cfg.batch_size)
    if train_cfg.max_steps:  # a step budget: as many epochs as it takes (the last one cut short)
        train_cfg = replace(train_cfg, epochs=math.ceil(train_cfg.max_steps / steps_per_epoch))
    total_steps = train_cfg.max_steps or steps_per_epoch * train_cfg.epochs
    while state["epoch"] < train_cfg.epochs and state["bad_epochs"] < train_cfg.patience:
        epoch = state["epoch"]
        rng = np.random.default_rng(train_cfg.seed + epoch)  # epoch-seeded: resuming replays the same data
        items = D.windows(train_ex, model_cfg, train_cfg, rng)
        items = shard([items[i] for i in rng.permutation(len(items))], rank, world)
        model.train()
        losses, n_tokens, t0 = [], 0, time.perf_counter()
        bar = tqdm(D.batches(items, train_cfg.batch_size, rng), total=math.ceil(len(items) / train_cfg.batch_size),
                   desc=f"{stage} epoch {epoch + 1}/{train_cfg.epochs}", disable=not progress or rank > 0,
                   leave=False)
        for batch in bar:
            if train_cfg.max_steps and state["step"] >= train_cfg.max_steps:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(state["step"], total_steps, train_cfg)
            with autocast(device):
                loss, _ = step_model(D.to_device(batch, device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            opt.step()
            state["step"] += 1
            losses.append(float(loss.detach()))
            n_tokens += int((batch["tokens"][:, 1:, 0] != tk.PAD).sum())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        train_s = time.perf_counter() - t0
        if val_items:
            val, val_parts = evaluate_parts(model, val_items, train_cfg.batch_size, device)
        else:
            val, val_parts = float(np.mean(losses)), {}
        state["wall_s"] += time.perf_counter() - t0
        state["history"].append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val,
                                 "val_attributes": val_parts, "tokens_per_s": n_tokens * world / train_s,
                                 "epoch_wall_s": time.perf_counter() - t0})
        if val < state["best_val"] - 1e-4:
            state["best_val"], state["best_val_attributes"], state["bad_epochs"] = val, val_parts, 0
            if rank == 0:
                save_model(model, out, "model", extra)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        if rank == 0:
            save_model(model, out, "last", extra)
            save_optimizer(opt, out)
            save_json(state, out / "state.json")
            plot_losses(state["history"], out / "loss.png", baseline)
    summary = {"stage": stage, "out": str(out), "best_val": state["best_val"], "unigram_val": baseline,
               "best_val_attributes": state.get("best_val_attributes", {}),
               "unigram_val_attributes": baseline_parts, "epochs": state["epoch"], "steps": state["step"],
               "wall_s": round(state["wall_s"], 1), "stopped_early": state["bad_epochs"] >= train_cfg.patience,
               "n_train_songs": len(train_ex), "n_train_songs_with_video": n_video, "n_val_windows": len(val_items),
               "n_parameters": sum(p.numel() for p in model.parameters()), "world_size": world,
               "provenance": provenance or {}}
    if rank == 0:
        save_json(summary, out / "training.json")
    return {**summary, "history": state["history"]}


def fit_performance(out_dir: str | Path, *, data_root: str | Path | None = None, tables: dict | None = None,
                    provenance: dict | None = None, calibration_rounds: int = 4, calibration_pieces: int = 96) -> dict:
    """Fit the performance models on the training split and write them beside the stage folders
    (models.networks.checkpoint.PERFORMANCE_FILES): the form plan (models/generation/form.py), dynamics and articulation
    (models/generation/dynamics.py) in closed form, seconds; the pitch / root corrections (models/training/corrections.py) teacher-forced
    on the trained stages, ~2 min; then calibrate the corrections on free-running pieces (models/training/calibrate.py;
    `calibration_rounds` 0 = skip; ~1.5 min a round of 96 pieces). `performance.json` is the summary."""
    from models.generation.contour import ContourModel
    from models.generation.dynamics import ArticulationModel, fit_dynamics
    from models.generation.form import FormModel
    from models.music import melody_line
    from models.networks.checkpoint import (ARTICULATION_FILE, CONTOUR_FILE, DYNAMICS_FILE, FORM_FILE, HARMONY_FILE,
                                            HARMONY_STAGES, KEY_FILE, PERFORMANCE_FILE)
    from models.training.corrections import fit_harmony, fit_key, fit_model_marginal

    tables = tables if tables is not None else D.load_tables(data_root)
    train_ex = D.build_examples(tables, "train")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    form = FormModel.fit(train_ex)
    form.save(out / FORM_FILE)
    dynamics = fit_dynamics([ex.melody + ex.accompaniment for ex in train_ex])
    dynamics.save(out / DYNAMICS_FILE)
    articulation = ArticulationModel.fit([melody_line(ex.melody) for ex in train_ex])
    articulation.save(out / ARTICULATION_FILE)
    trained = {s: load_model(out / s) for s in STAGES if (out / s / "model.safetensors").is_file()}
    contour = ContourModel.fit([[n.pitch for n in melody_line(ex.melody)] for ex in train_ex])
    if "melody" in trained:  # the correction is the trained melody model's
        fit_model_marginal(contour, trained["melody"], train_ex)
    contour.save(out / CONTOUR_FILE)
    key = None
    if "chord" in trained:
        key = fit_key(trained["chord"], train_ex)
        key.save(out / KEY_FILE)
    harmony = {}
    for stage in HARMONY_STAGES:  # each note stage's own harmony correction
        if stage in trained:
            harmony[stage] = fit_harmony(trained[stage], train_ex)
            harmony[stage].save(out / HARMONY_FILE.format(stage=stage))
    calibration = None
    if calibration_rounds and len(trained) == len(STAGES):
        from models.training.calibrate import calibrate

        calibration = calibrate(out, train_ex, rounds=calibration_rounds, n_pieces=calibration_pieces,
                                log=lambda m: None, stage_models=trained)
    summary = {"n_train_songs": len(train_ex), "form_songs": len(form.songs), "dynamics_songs": dynamics.n_songs,
               "dynamics_notes": dynamics.n_notes, "dynamics_profiles": len(dynamics.profiles),
               "bar_phi": dynamics.bar_phi, "contour_intervals": contour.n_intervals,
               "contour_model_notes": contour.n_model_notes,
               "harmony_notes": {stage: h.n_notes for stage, h in harmony.items()},
               "articulation_notes": articulation.n_notes, "key_chords": key.n_chords if key else 0,
               "calibration_gap_by_round": calibration["gap_by_round"] if calibration else None,
               "weights": dict(zip(dynamics.features, dynamics.weights)),
               "wall_s": round(time.perf_counter() - t0, 2), "provenance": provenance or {}}
    save_json(summary, out / PERFORMANCE_FILE)
    return summary


RELEASE_LICENSE = """# License of these checkpoints

These weights were trained on the SymMV release (Zhuo et al., ICCV 2023: piano-cover MIDI, chord and
tonality annotations), which is distributed under **CC BY-NC-SA 4.0**
(https://creativecommons.org/licenses/by-nc-sa/4.0/). As a derivative of it, the checkpoints are shared
under the same license: attribution, non-commercial use only, share-alike. The code that trained them
is the symmv project's. Training data and settings: `training.json` / `config.json` of each stage.
"""


def run_stages(cfg: TrainRunConfig) -> tuple[str, ...]:
    """The stages a `symmv train` run trains (none for --stage performance); a --folder names one of them."""
    if cfg.stage not in (*ALL_STAGES, "all", "performance"):
        raise ValueError(f"unknown --stage {cfg.stage!r}; stages: all, performance, {', '.join(ALL_STAGES)}")
    if cfg.size not in SIZES:
        raise ValueError(f"unknown --size {cfg.size!r}; sizes: {', '.join(SIZES)}")
    stages = STAGES if cfg.stage == "all" else () if cfg.stage == "performance" else (cfg.stage,)
    if cfg.folder and len(stages) != 1:
        raise ValueError("--folder names one stage's checkpoint folder: give one --stage")
    return stages


def stage_configs(stage: str, cfg: TrainRunConfig) -> tuple[ModelConfig, TrainConfig]:
    """The size's configs of one stage with the run's switches and overrides applied."""
    model_cfg, train_cfg = configs_for(stage, cfg.size)
    apply_switches(model_cfg, video=not cfg.unconditional, semantic=cfg.semantic, color=cfg.color,
                   timing_encoding=cfg.timing_encoding)
    if cfg.epochs:
        train_cfg.epochs, train_cfg.max_steps = cfg.epochs, 0
    if cfg.max_steps:
        train_cfg.max_steps = cfg.max_steps
    train_cfg.lr = cfg.lr or train_cfg.lr
    train_cfg.batch_size = cfg.batch_size or train_cfg.batch_size
    train_cfg.seed = cfg.seed
    train_cfg.num_threads = cfg.threads or train_cfg.num_threads
    train_cfg.device = cfg.device or train_cfg.device
    return model_cfg, train_cfg


def dataset_provenance(root: str | Path) -> dict:
    """Which data a stage learned from: the build's report (source, counts)."""
    report = Path(root) / "build_report.json"
    info = json.loads(report.read_text()) if report.is_file() else {}
    return {"root": str(root), "songs": info.get("songs"), "source": info.get("source"), "splits": info.get("splits")}


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def stage_data_roots(stage: str, cfg: TrainRunConfig) -> list[str]:
    """--data, plus --chord-data for a video-conditioned chord stage (its video pathway learns from those)."""
    roots = [str(cfg.data)]
    if stage == "chord" and cfg.chord_data and not cfg.unconditional and Path(cfg.chord_data) != Path(cfg.data):
        roots.append(str(cfg.chord_data))
    return roots


def train_configured_stage(stage: str, cfg: TrainRunConfig, progress: bool = True) -> dict:
    """One stage of a `symmv train` run: its data, configs, provenance and LICENSE.md -> summary (no history)."""
    model_cfg, train_cfg = stage_configs(stage, cfg)
    roots = stage_data_roots(stage, cfg)
    budget = f"max_steps={train_cfg.max_steps}" if train_cfg.max_steps else f"epochs={train_cfg.epochs}"
    provenance = {"data": [dataset_provenance(r) for r in roots], "size": cfg.size, "commit": git_commit(),
                  "license": "CC BY-NC-SA 4.0 (inherited from the SymMV release)",
                  "command": f"symmv train --stage {cfg.stage} --size {cfg.size}, {budget}, threads={train_cfg.num_threads}"}
    summary = train_stage(stage, cfg.out, tables=D.concat_tables(*(D.load_tables(r) for r in roots)),
                          model_cfg=model_cfg, train_cfg=train_cfg, resume=cfg.resume, progress=progress,
                          provenance=provenance, folder=cfg.folder or None)
    (Path(summary["out"]) / "LICENSE.md").write_text(RELEASE_LICENSE)
    return summary


def fit_configured_performance(cfg: TrainRunConfig) -> dict:
    """The performance models of a `symmv train` run (--stage all or performance), beside its stages."""
    provenance = {"data": [dataset_provenance(cfg.data)], "commit": git_commit(),
                  "license": "CC BY-NC-SA 4.0 (inherited from the SymMV release)"}
    return fit_performance(cfg.out, tables=D.load_tables(cfg.data), provenance=provenance,
                           calibration_rounds=cfg.calibration_rounds, calibration_pieces=cfg.calibration_pieces)


def main(argv: list[str] | None = None) -> None:
    """`python -m models.training.train`: the options of `symmv train` (the same dataclass), run in this process
    without Prefect, which is what torchrun needs (every rank runs it)."""
    import argparse

    from symmv.pipeline.config import add_dataclass_args, from_args

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataclass_args(p, TrainRunConfig)
    cfg = from_args(TrainRunConfig, p.parse_args(argv))
    try:
        stages = run_stages(cfg)
    except ValueError as exc:
        p.error(str(exc))
    for stage in stages:
        summary = train_configured_stage(stage, cfg)
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    if cfg.stage in ("all", "performance"):
        print(json.dumps(fit_configured_performance(cfg)))


def apply_switches(model_cfg: ModelConfig, *, video: bool = True, semantic: bool = True, color: bool = True,
                   timing_encoding: bool = True) -> ModelConfig:
    """The ablation switches of sec. 6.4 on a stage's config (in place; also returned)."""
    model_cfg.video, model_cfg.timing_encoding = video, timing_encoding
    model_cfg.controller = replace(model_cfg.controller, use_semantic=semantic, use_color=color)
    return model_cfg


if __name__ == "__main__":
    main()
