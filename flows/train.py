"""Prefect flow `train-all`: Chord -> Melody -> Accompaniment, each trained on its own (paper sec. 4.3).

    data root (Parquet tables) [+ chord data root] -> train chord -> train melody -> train accompaniment
    -> fit the performance models, calibrate their corrections on free-running pieces (~8 min)
    -> <out>/<stage>/ (safetensors + config.json + training.json + LICENSE.md), <out>/<performance files>

Thin wiring over models.training.train (`symmv train` runs it; `python -m models.training.train` runs the same
steps without Prefect). Its one parameter is `models.config.TrainRunConfig`, as the CLI's options and
prefect.yaml's parameters are. Re-running resumes each stage from its last checkpoint.
"""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.config import TrainRunConfig
from models.training.train import fit_configured_performance, run_stages, train_configured_stage


@task(name="train-stage", cache_policy=NO_CACHE)
def train_one(stage: str, config: TrainRunConfig) -> dict:
    summary = train_configured_stage(stage, config, progress=False)
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
def fit_performance_models(config: TrainRunConfig) -> dict:
    """The performance models (form, dynamics, articulation, corrections; models.training.train.fit_performance)
    from the training split, then the corrections calibrated on free-running pieces."""
    summary = fit_configured_performance(config)
    get_run_logger().info("form of %d songs, dynamics of %d notes (bar AR %.2f), contour of %d intervals",
                          summary["form_songs"], summary["dynamics_notes"], summary["bar_phi"],
                          summary["contour_intervals"])
    return summary


@flow(name="train-all")
def train_all(config: TrainRunConfig = TrainRunConfig()) -> dict:
    """Train the run's stages in the paper's order, then the performance models; returns stage -> summary.

    `config.chord_data`: a dataset with video features (offline: the demo) that the video-conditioned Chord
    stage learns from *together with* `config.data` (the SymMV release's 999 real piano covers, which ship
    no videos: those songs train with a null video, `TrainConfig.null_video`). The chord language comes from
    the real music; the video pathway from the songs that have videos.
    """
    summaries = {}
    for stage in run_stages(config):  # sequential: one at a time keeps memory bounded
        summaries[stage] = train_one(stage, config)
    if config.stage in ("all", "performance"):
        summaries["performance"] = fit_performance_models(config)
    return summaries
