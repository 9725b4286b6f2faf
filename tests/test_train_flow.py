"""A real Prefect run of `train-all` (its own file: Prefect's start-up alone takes several seconds)."""
import pytest
import torch

from models.synthetic import write_synthetic_dataset

torch.set_num_threads(1)


@pytest.mark.slow  # Prefect start-up: 11-35 s on the shared 2-core box
def test_prefect_flow_trains_all_three_stages(tmp_path):
    from flows.train import train_all

    root = write_synthetic_dataset(tmp_path / "data", n_songs=5, semantic_dim=6, color_dim=4)
    summaries = train_all(data_root=str(root), out_dir=str(tmp_path / "ckpt"), size="tiny", epochs=1)
    assert list(summaries) == ["chord", "melody", "accompaniment"]
    for stage in summaries:
        assert (tmp_path / "ckpt" / stage / "model.safetensors").exists()
