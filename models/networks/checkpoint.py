"""Checkpoints as safetensors + JSON (no pickle): `<dir>/<name>.safetensors` and `<dir>/config.json`.

The optimizer is saved the same way: its tensors in `optimizer.safetensors`, its param groups in JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models.config import ModelConfig, model_config_from_dict, model_config_to_dict, save_json
from models.networks.transformers import CompoundDecoder, build_model


def save_model(model: CompoundDecoder, directory: str | Path, name: str = "model", extra: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, directory / f"{name}.safetensors")
    save_json({"model": model_config_to_dict(model.cfg), **(extra or {})}, directory / "config.json")
    return directory / f"{name}.safetensors"


def read_config(directory: str | Path) -> ModelConfig:
    return model_config_from_dict(json.loads((Path(directory) / "config.json").read_text())["model"])


def load_model(directory: str | Path, name: str = "model", device: str = "cpu") -> CompoundDecoder:
    model = build_model(read_config(directory))
    model.load_state_dict(load_file(str(Path(directory) / f"{name}.safetensors"), device="cpu"))
    return model.to(device).eval()


def save_optimizer(opt: torch.optim.Optimizer, directory: str | Path) -> None:
    sd = opt.state_dict()
    tensors = {f"{idx}.{k}": v.detach().contiguous().cpu() for idx, st in sd["state"].items()
               for k, v in st.items() if torch.is_tensor(v)}
    scalars = {f"{idx}.{k}": v for idx, st in sd["state"].items() for k, v in st.items() if not torch.is_tensor(v)}
    save_file(tensors, Path(directory) / "optimizer.safetensors")
    save_json({"param_groups": sd["param_groups"], "scalars": scalars}, Path(directory) / "optimizer.json")


def load_optimizer(opt: torch.optim.Optimizer, directory: str | Path) -> None:
    meta = json.loads((Path(directory) / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    flat = {**load_file(str(Path(directory) / "optimizer.safetensors")), **meta["scalars"]}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# The performance models' files beside the stage folders of a run (models.training.train.fit_performance writes them,
# models.generation.generate.performance_models reads them); one harmony file per note stage.
FORM_FILE, DYNAMICS_FILE, CONTOUR_FILE = "form.json", "dynamics.json", "contour.json"
HARMONY_FILE, HARMONY_STAGES = "harmony-{stage}.json", ("melody", "accompaniment")
ARTICULATION_FILE, KEY_FILE = "articulation.json", "key.json"
CALIBRATION_FILE, PERFORMANCE_FILE = "calibration.json", "performance.json"  # summaries
PERFORMANCE_FILES = (FORM_FILE, DYNAMICS_FILE, CONTOUR_FILE, *(HARMONY_FILE.format(stage=s) for s in HARMONY_STAGES),
                     ARTICULATION_FILE, KEY_FILE, CALIBRATION_FILE, PERFORMANCE_FILE)

# What a run folder of `make train-all` holds that the shipped checkpoints keep (not the resume point:
# last.safetensors, optimizer.*).
PROMOTED_STAGE_FILES = ("model.safetensors", "config.json", "training.json", "state.json", "loss.png", "LICENSE.md")
REQUIRED_STAGE_FILES = ("model.safetensors", "config.json", "training.json")


def promote(run_dir: str | Path, shipped_dir: str | Path, stages=("chord", "melody", "accompaniment")) -> list[str]:
    """Copy a finished training run into the shipped checkpoint folder; returns the files written.

    Refuses (ValueError, one line) a run missing a stage's model, config or summary. Every file is copied to a
    temporary name first and then renamed into place, so a failure leaves the shipped set as it was or
    file-by-file new; files of the shipped folder that a run does not write are left alone."""
    import os
    import shutil

    run, shipped = Path(run_dir).resolve(), Path(shipped_dir).resolve()
    if run == shipped:
        raise ValueError(f"{run} is already the shipped checkpoint folder")
    missing = [f"{s}/{f}" for s in stages for f in REQUIRED_STAGE_FILES if not (run / s / f).is_file()]
    if missing:
        raise ValueError(f"{run} is not a finished training run (missing {', '.join(missing[:4])}"
                         f"{'...' if len(missing) > 4 else ''}); run `make train-all` to the end first")
    pairs = [(run / s / f, shipped / s / f) for s in stages for f in PROMOTED_STAGE_FILES if (run / s / f).is_file()]
    pairs += [(run / f, shipped / f) for f in PERFORMANCE_FILES if (run / f).is_file()]
    staged = []
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.promote-tmp")
        shutil.copy2(src, tmp)
        staged.append((tmp, dst))
    for tmp, dst in staged:
        os.replace(tmp, dst)
    return [str(dst) for _, dst in staged]
