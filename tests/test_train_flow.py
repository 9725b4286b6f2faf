"""A real Prefect run of `train-all` (its own file: Prefect's start-up alone takes several seconds)."""
import json
import shutil

import pytest
import torch

from model_fixtures import write_synthetic_dataset
from symmv.core.shards import commit_shards

torch.set_num_threads(1)


@pytest.mark.slow  # Prefect start-up: 11-35 s on the shared 2-core box
def test_prefect_flow_trains_all_three_stages(tmp_path):
    from flows.train import train_all
    from models.config import TrainRunConfig

    music = write_synthetic_dataset(tmp_path / "music", n_songs=6, seed=1, semantic_dim=6, color_dim=4)
    shutil.rmtree(music / "video_features")  # like the SymMV release: music, no videos
    commit_shards(music)
    videos = write_synthetic_dataset(tmp_path / "videos", n_songs=5, semantic_dim=6, color_dim=4)
    summaries = train_all(TrainRunConfig(data=music, out=tmp_path / "ckpt", size="tiny", epochs=1, chord_data=videos,
                                         calibration_rounds=1, calibration_pieces=3))
    assert list(summaries) == ["chord", "melody", "accompaniment", "performance"]
    for name in ("form", "dynamics", "contour", "articulation", "key", "harmony-melody", "harmony-accompaniment"):
        assert (tmp_path / "ckpt" / f"{name}.json").is_file(), name  # the performance models beside the stages
    performance = summaries.pop("performance")
    assert performance["n_train_songs"] == summaries["melody"]["n_train_songs"]
    assert len(performance["calibration_gap_by_round"]) == 2  # measured before and after the one round
    for stage in summaries:
        assert (tmp_path / "ckpt" / stage / "model.safetensors").exists()
        assert "CC BY-NC-SA 4.0" in (tmp_path / "ckpt" / stage / "LICENSE.md").read_text()
    chord = json.loads((tmp_path / "ckpt" / "chord" / "training.json").read_text())
    assert [d["root"] for d in chord["provenance"]["data"]] == [str(music), str(videos)]
    assert 0 < chord["n_train_songs_with_video"] < chord["n_train_songs"]  # release songs: null video
    assert summaries["melody"]["n_train_songs"] < chord["n_train_songs"]  # the notes stages: music only
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:  # each stage's loss curve is an artifact of the run
        for stage in summaries:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"train-{stage}"])))
            assert found and "| epoch | train loss | validation loss |" in found[0].data and "unigram" in found[0].data
