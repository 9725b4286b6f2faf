"""`symmv train`, `symmv variants`, `symmv evaluate`: their options are the fields of models.config's run
dataclasses, built by the same bridge as `symmv build` (symmv.pipeline.config.add_dataclass_args), so each
default is written once, in the dataclass. Registering them imports no torch and no Prefect: each command
loads what it runs. They live beside the flows they start (train-all, evaluate), since nothing below the CLI
and the flows may import a flow (pyproject.toml's import contracts).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.config import SIZES, EvalConfig, TrainRunConfig, VariantsConfig
from symmv.core.errors import ConfigError
from symmv.pipeline.config import add_dataclass_args, from_args


def dataset_root(flag: str, root: Path) -> None:
    """A dataset option names a committed build: one line, before torch and Prefect load, if it does not."""
    from symmv.core.shards import MANIFEST

    if not (Path(root) / MANIFEST).is_file():
        raise ConfigError(f"{flag} {root} is not a built dataset (no {MANIFEST}): build one with "
                          f"`symmv build --out {root}`")


def refused(fn, *args):
    """A config's wrong value (a ValueError of the check that names the known ones) as the CLI's one-line error."""
    try:
        return fn(*args)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def cmd_train(args: argparse.Namespace) -> int:
    from models.training.train import run_stages

    cfg = from_args(TrainRunConfig, args)
    refused(run_stages, cfg)
    for flag, root in (("--data", cfg.data), ("--chord-data", cfg.chord_data)):
        if root:
            dataset_root(flag, root)
    from flows.train import train_all

    summaries = train_all(cfg)
    print(json.dumps({stage: {k: s.get(k) for k in ("best_val", "unigram_val", "epochs", "wall_s")}
                      for stage, s in summaries.items()}, indent=1, default=str))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    cfg = from_args(VariantsConfig, args)
    dataset_root("--data", cfg.data)
    from models.evaluation.variants import run_variants

    summaries = refused(run_variants, cfg)
    print(json.dumps({f: {k: s[k] for k in ("best_val", "unigram_val", "steps")} for f, s in summaries.items()}))
    print(f"next: symmv evaluate --data {cfg.data} --ckpt '' --variants-dir {cfg.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = from_args(EvalConfig, args)
    dataset_root("--data", cfg.data)
    for flag, folder in (("--ckpt", cfg.ckpt), ("--variants-dir", cfg.variants_dir),
                         ("--unconditional-ckpt", cfg.unconditional_ckpt)):
        if folder and not Path(folder).is_dir():
            raise ConfigError(f"{flag} {folder}: no such checkpoint folder")
    if not cfg.ckpt and not cfg.variants_dir and not cfg.unconditional_ckpt:
        raise ConfigError("nothing to evaluate: give --ckpt, --variants-dir or --unconditional-ckpt")
    from models.evaluation.evaluate import vmcp_preset

    refused(vmcp_preset, cfg.vmcp)
    from flows.evaluate import evaluate

    out = evaluate(cfg)
    print(json.dumps({k: out[k] for k in ("paths", "M", "not_run")}, indent=1))
    return 0


# name -> (help line, config dataclass, command)
COMMANDS = {
    "train": ("train V-MusProd's stages and performance models (the train-all Prefect flow)", TrainRunConfig,
              cmd_train),
    "variants": ("train every model row of Table 2 (sec. 6.1, 6.4), each checkpoint folder once", VariantsConfig,
                 cmd_variants),
    "evaluate": ("Table 2 as a report: generate for the split's videos and score every row (the evaluate flow)",
                 EvalConfig, cmd_evaluate),
}


def add_commands(subparsers) -> None:
    """Register the model commands on `symmv`'s subparsers."""
    for name, (text, config, run) in COMMANDS.items():
        parser = subparsers.add_parser(name, help=text, description=text)
        add_dataclass_args(parser, config, {"size": list(SIZES)} if "size" in config.__dataclass_fields__ else None)
        parser.set_defaults(func=run)
