"""Prefect flow `train-all`: Chord -> Melody -> Accompaniment, each trained on its own (paper sec. 4.3).

    data root (Parquet tables) -> train chord -> train melody -> train accompaniment -> <out>/<stage>/

Thin wiring over `models.train.train_stage`; parameters map onto the same config dataclasses as the
`python -m models.train` CLI. Re-running resumes each stage from its last checkpoint.
"""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.config import STAGES, configs_for
from models.data import load_tables
from models.train import train_stage


@task(name="train-stage", cache_policy=NO_CACHE)
def train_one(stage: str, data_root: str, out_dir: str, size: str, epochs: int | None, device: str | None,
              unconditional: bool, resume: bool) -> dict:
    model_cfg, train_cfg = configs_for(stage, size)
    model_cfg.video = not unconditional
    if epochs is not None:
        train_cfg.epochs = epochs
    if device is not None:
        train_cfg.device = device
    summary = train_stage(stage, out_dir, tables=load_tables(data_root), model_cfg=model_cfg,
                          train_cfg=train_cfg, resume=resume, progress=False)
    get_run_logger().info("%s: best val %.3f (unigram %.3f) after %d epochs", stage, summary["best_val"],
                          summary["unigram_val"] or float("nan"), summary["epochs"])
    return {k: v for k, v in summary.items() if k != "history"}


@flow(name="train-all")
def train_all(data_root: str, out_dir: str = "ckpt", size: str = "tiny", epochs: int | None = None,
              device: str | None = None, unconditional: bool = False, resume: bool = True,
              chord_data_root: str | None = None) -> dict:
    """Train the three stages in the paper's order; returns stage -> summary.

    `chord_data_root`: where the video-conditioned Chord stage learns (it needs paired video features),
    when that differs from the music the Melody/Accompaniment stages learn from (offline: the demo's
    videos vs the SymMV release's 999 real piano covers, which ship no videos).
    """
    summaries = {}
    for stage in STAGES:  # sequential: each stage is independent, but one at a time keeps memory bounded
        root = chord_data_root if (stage == "chord" and chord_data_root) else data_root
        summaries[stage] = train_one(stage, str(root), str(out_dir), size, epochs, device, unconditional, resume)
    return summaries


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Prefect flow train-all")
    p.add_argument("--data", required=True), p.add_argument("--out", default="ckpt")
    p.add_argument("--size", default="tiny"), p.add_argument("--epochs", type=int), p.add_argument("--device")
    p.add_argument("--unconditional", action="store_true")
    p.add_argument("--chord-data", help="dataset with video features for the Chord stage (default: --data)")
    a = p.parse_args()
    from symmv.config import prefect_defaults

    prefect_defaults()
    print(train_all(a.data, a.out, a.size, a.epochs, a.device, a.unconditional, chord_data_root=a.chord_data))
