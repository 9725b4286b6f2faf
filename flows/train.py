"""Prefect flow `train-all`: Chord -> Melody -> Accompaniment, each trained on its own (paper sec. 4.3).

    data root (Parquet tables) [+ chord data root] -> train chord -> train melody -> train accompaniment
    -> fit the performance models, calibrate their corrections on free-running pieces (~8 min)
    -> <out>/<stage>/ (safetensors + config.json + training.json + LICENSE.md), <out>/<performance files>

Thin wiring over `models.training.train.train_stage`; parameters map onto the same config dataclasses as the
`python -m models.training.train` CLI. Re-running resumes each stage from its last checkpoint.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.config import STAGES, configs_for
from models.training.data import concat_tables, load_tables
from models.training.train import fit_performance, train_stage

RELEASE_LICENSE = """# License of these checkpoints

These weights were trained on the SymMV release (Zhuo et al., ICCV 2023: piano-cover MIDI, chord and
tonality annotations), which is distributed under **CC BY-NC-SA 4.0**
(https://creativecommons.org/licenses/by-nc-sa/4.0/). As a derivative of it, the checkpoints are shared
under the same license: attribution, non-commercial use only, share-alike. The code that trained them
is the symmv project's. Training data and settings: `training.json` / `config.json` of each stage.
"""


def dataset_provenance(root: str) -> dict:
    """Which data a stage learned from: the build's report (source, counts) and the code commit."""
    report = Path(root) / "build_report.json"
    info = json.loads(report.read_text()) if report.is_file() else {}
    return {"root": str(root), "songs": info.get("songs"), "source": info.get("source"),
            "splits": info.get("splits")}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


@task(name="train-stage", cache_policy=NO_CACHE)
def train_one(stage: str, data_roots: list[str], out_dir: str, size: str, epochs: int | None, device: str | None,
              unconditional: bool, resume: bool, threads: int | None = None) -> dict:
    model_cfg, train_cfg = configs_for(stage, size)
    model_cfg.video = not unconditional
    if epochs is not None:
        train_cfg.epochs, train_cfg.max_steps = epochs, 0
    if threads is not None:
        train_cfg.num_threads = threads
    if device is not None:
        train_cfg.device = device
    tables = concat_tables(*(load_tables(r) for r in data_roots))
    provenance = {"data": [dataset_provenance(r) for r in data_roots], "size": size, "commit": git_commit(),
                  "license": "CC BY-NC-SA 4.0 (inherited from the SymMV release)",
                  "command": f"python -m flows.train (train-all), size={size}, "
                             + (f"max_steps={train_cfg.max_steps}" if train_cfg.max_steps else f"epochs={train_cfg.epochs}")
                             + f", threads={train_cfg.num_threads}"}
    summary = train_stage(stage, out_dir, tables=tables, model_cfg=model_cfg, train_cfg=train_cfg,
                          resume=resume, progress=False, provenance=provenance)
    (Path(summary["out"]) / "LICENSE.md").write_text(RELEASE_LICENSE)
    get_run_logger().info("%s: best val %.3f (unigram %.3f) after %d epochs, %.0f s", stage, summary["best_val"],
                          summary["unigram_val"] or float("nan"), summary["epochs"], summary["wall_s"])
    publish_loss_artifact(stage, summary)
    return {k: v for k, v in summary.items() if k != "history"}


def publish_loss_artifact(stage: str, summary: dict) -> None:
    """The stage's loss curve (per epoch) and its validation loss per attribute against the unigram baseline,
    as a Prefect markdown artifact of this run."""
    from prefect.artifacts import create_markdown_artifact

    lines = [f"# {stage}: best validation loss {summary['best_val']:.3f} (unigram {summary['unigram_val'] or float('nan'):.3f})",
             "", "| attribute | validation | unigram |", "| --- | ---: | ---: |"]
    unigram = summary.get("unigram_val_attributes") or {}
    for name, value in (summary.get("best_val_attributes") or {}).items():
        lines.append(f"| {name} | {value:.3f} | {unigram.get(name, float('nan')):.3f} |")
    lines += ["", "| epoch | train loss | validation loss |", "| ---: | ---: | ---: |"]
    for h in summary.get("history", []):
        lines.append(f"| {h.get('epoch')} | {h.get('train_loss', float('nan')):.3f} | {h.get('val_loss', float('nan')):.3f} |")
    create_markdown_artifact(key=f"train-{stage}", markdown="\n".join(lines) + "\n",
                             description=f"V-MusProd {stage} stage: loss curve and per-attribute validation loss")


@task(name="fit-performance", cache_policy=NO_CACHE)
def fit_performance_models(data_root: str, out_dir: str, calibration_rounds: int = 4,
                           calibration_pieces: int = 96) -> dict:
    """The performance models (form, dynamics, articulation, corrections; models.training.train.fit_performance) from the
    training split, then the corrections calibrated on free-running pieces."""
    provenance = {"data": [dataset_provenance(data_root)], "commit": git_commit(),
                  "license": "CC BY-NC-SA 4.0 (inherited from the SymMV release)"}
    summary = fit_performance(out_dir, tables=load_tables(data_root), provenance=provenance,
                              calibration_rounds=calibration_rounds, calibration_pieces=calibration_pieces)
    get_run_logger().info("form of %d songs, dynamics of %d notes (bar AR %.2f), contour of %d intervals",
                          summary["form_songs"], summary["dynamics_notes"], summary["bar_phi"],
                          summary["contour_intervals"])
    return summary


@flow(name="train-all")
def train_all(data_root: str, out_dir: str = "ckpt", size: str = "tiny", epochs: int | None = None,
              device: str | None = None, unconditional: bool = False, resume: bool = True,
              chord_data_root: str | None = None, threads: int | None = None,
              stages: tuple[str, ...] = STAGES, calibration_rounds: int = 4, calibration_pieces: int = 96) -> dict:
    """Train the three stages in the paper's order; returns stage -> summary.

    `chord_data_root`: a dataset with video features (offline: the demo) that the video-conditioned
    Chord stage learns from *together with* `data_root` (the SymMV release's 999 real piano covers,
    which ship no videos: those songs train with a null video, `TrainConfig.null_video`). The chord
    language comes from the real music; the video pathway from the songs that have videos.
    `threads`: torch CPU threads (on a machine shared with other jobs, 1 thread is often faster than 2).
    """
    summaries = {}
    for stage in stages:  # sequential: each stage is independent, but one at a time keeps memory bounded
        roots = [str(data_root)]
        if stage == "chord" and chord_data_root and not unconditional and Path(chord_data_root) != Path(data_root):
            roots.append(str(chord_data_root))
        summaries[stage] = train_one(stage, roots, str(out_dir), size, epochs, device, unconditional, resume, threads)
    summaries["performance"] = fit_performance_models(str(data_root), str(out_dir), calibration_rounds,
                                                      calibration_pieces)
    return summaries


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Prefect flow train-all")
    p.add_argument("--data", required=True), p.add_argument("--out", default="ckpt")
    p.add_argument("--size", default="tiny"), p.add_argument("--epochs", type=int), p.add_argument("--device")
    p.add_argument("--unconditional", action="store_true")
    p.add_argument("--chord-data", help="dataset with video features the Chord stage also learns from")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the size's TrainConfig.num_threads)")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    a = p.parse_args()
    from symmv.pipeline.config import prefect_defaults

    prefect_defaults()
    print(json.dumps(train_all(a.data, a.out, a.size, a.epochs, a.device, a.unconditional,
                               chord_data_root=a.chord_data, threads=a.threads, stages=tuple(a.stages)),
                     indent=1, default=str))
