"""`symmv train`, `symmv variants`, `symmv evaluate` (issue 23.4): options built from models.config's run
dataclasses, each default written once (in the dataclass), one-line errors, no torch for --help."""
import dataclasses
import json
import subprocess
import sys

import pytest

from models.config import EvalConfig, TrainRunConfig, VariantsConfig
from symmv.cli import main, make_parser
from symmv.pipeline.config import from_args

COMMANDS = {"train": TrainRunConfig, "variants": VariantsConfig, "evaluate": EvalConfig}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_lists_every_field_with_its_default(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in dataclasses.fields(COMMANDS[name]):
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        if f.type not in ("bool",) and not f.metadata.get("default_text") and f.default not in ("", None):
            assert f"{flag} " in text and f"(default: {f.default})" in text, flag


@pytest.mark.parametrize("name", COMMANDS)
def test_no_options_give_the_dataclass_defaults(name):
    args = make_parser([name]).parse_args([name])
    assert from_args(COMMANDS[name], args) == COMMANDS[name]()


def test_options_reach_the_config():
    argv = ["evaluate", "--split", "val,test", "--m", "10", "--no-fixed-tempo-ablation", "--temperature", "0.8"]
    cfg = from_args(EvalConfig, make_parser(argv).parse_args(argv))
    assert cfg == dataclasses.replace(EvalConfig(), split="val,test", m=10, fixed_tempo_ablation=False, temperature=0.8)


def test_sampling_defaults_are_the_sampling_configs():
    from models.config import SamplingConfig
    from models.generation.generate import generate_for_video, generate_music

    import inspect

    for fn in (generate_music, generate_for_video):
        params = inspect.signature(fn).parameters
        assert params["temperature"].default == SamplingConfig.temperature == EvalConfig.temperature
        assert params["top_p"].default == SamplingConfig.top_p == EvalConfig.top_p


def test_help_of_the_model_commands_loads_no_torch():
    code = ("import sys; from symmv.cli import make_parser\n"
            "for name in ('train', 'variants', 'evaluate'): make_parser([name, '--help'])\n"
            "print(sorted(m for m in ('torch', 'prefect', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv, message", [
    (["train", "--stage", "drums"], "unknown --stage 'drums'"),
    (["train", "--size", "huge"], "unknown --size 'huge'"),
    (["train", "--data", "no/such/dataset"], "--data no/such/dataset is not a built dataset"),
    (["variants", "--data", "no/such/dataset"], "--data no/such/dataset is not a built dataset"),
    (["train", "--stage", "all", "--folder", "x"], "--folder names one stage"),
])
def test_a_wrong_option_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_evaluate_refuses_a_missing_checkpoint_and_a_wrong_vmcp_preset(tmp_path, capsys):
    from model_fixtures import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", n_songs=4, semantic_dim=6, color_dim=4)
    assert main(["evaluate", "--data", str(root), "--ckpt", str(tmp_path / "none")]) == 2
    assert "--ckpt" in capsys.readouterr().err
    (tmp_path / "ckpt").mkdir()
    assert main(["evaluate", "--data", str(root), "--ckpt", str(tmp_path / "ckpt"), "--vmcp", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown VMCP preset 'huge'; presets: tiny, benchmark" in err


@pytest.mark.slow  # Prefect start-up: 11-35 s on the shared 2-core box
def test_symmv_train_trains_a_stage_through_the_flow(tmp_path):
    from model_fixtures import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", n_songs=6, semantic_dim=6, color_dim=4)
    proc = subprocess.run([sys.executable, "-m", "symmv.cli", "train", "--data", str(root), "--out", str(tmp_path / "ckpt"),
                           "--stage", "melody", "--epochs", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert list(summary) == ["melody"] and summary["melody"]["epochs"] == 1
    training = json.loads((tmp_path / "ckpt" / "melody" / "training.json").read_text())
    assert training["provenance"]["command"].startswith("symmv train --stage melody --size tiny")
    assert (tmp_path / "ckpt" / "melody" / "LICENSE.md").is_file()
