"""Checkpoints as safetensors + JSON (no pickle): `<dir>/<name>.safetensors` and `<dir>/config.json`.

The optimizer is saved the same way: its tensors in `optimizer.safetensors`, its param groups in JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models.config import ModelConfig, model_config_from_dict, model_config_to_dict, save_json
from models.transformers import CompoundDecoder, build_model


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
