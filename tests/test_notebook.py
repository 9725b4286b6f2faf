"""notebooks/browse_symmv.ipynb runs top to bottom (nbclient, a real kernel) against a tiny build made on the fly."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from card_fixtures import SONGS, build_dataset, write_video

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("duckdb")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "browse_symmv.ipynb"


def run_notebook(monkeypatch, data: Path, source: Path, song_id: str | None = None):
    monkeypatch.setenv("SYMMV_DATA", str(data))
    monkeypatch.setenv("SYMMV_SOURCE", str(source))
    if song_id:
        monkeypatch.setenv("SYMMV_SONG", song_id)
    else:
        monkeypatch.delenv("SYMMV_SONG", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel must use the inline backend to emit figures
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def text_of(outputs) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_notebook_renders_song_with_chords_beats_audio_and_frames(tmp_path, monkeypatch):
    data = build_dataset(tmp_path / "symmv-tiny", write_midi=True)
    song_id, video_id = SONGS[0][0], "v0"  # the notebook's default pick: the first song with chords
    write_video(tmp_path / "source" / "videos" / f"{video_id}.mp4", seconds=2.0)

    outputs = run_notebook(monkeypatch, data, tmp_path / "source")

    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # piano roll, video frames, motion
    text = text_of(outputs)
    assert f"{song_id}: Song 0 by Artist 0 (train split, genre Pop)" in text
    assert "4 notes, 8 beats, 4 chords" in text
    assert "not available" not in text and "not found" not in text
    if shutil.which("fluidsynth") and Path("/usr/share/sounds/sf2/TimGM6mb.sf2").is_file():
        assert any("audio/wav" in o.get("data", {}) or "text/html" in o.get("data", {}) and "audio" in
                   o["data"]["text/html"] for o in outputs)


def test_notebook_on_a_build_without_annotations_or_videos(tmp_path, monkeypatch):
    data = build_dataset(tmp_path / "symmv-bare", tables=("songs", "notes", "rejects"))

    outputs = run_notebook(monkeypatch, data, tmp_path / "no-source", song_id="s3")

    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the piano roll still renders
    text = text_of(outputs)
    for line in ("beats: not available in this build", "chords: not available in this build",
                 "video_features: not available in this build", "video frames:"):
        assert line in text


def test_notebook_names_keys(tmp_path, monkeypatch):
    import symmv
    from annotators.key import key_name

    data = build_dataset(tmp_path / "symmv-keys", write_midi=True)
    outputs = run_notebook(monkeypatch, data, tmp_path / "source")
    songs = symmv.load("songs", root=data).dropna(subset=["key_tonic"])
    assert len(songs)
    text = text_of(outputs)
    for row in songs.head(3).itertuples():
        assert key_name(int(row.key_tonic), row.key_mode) in text  # "A minor", not 9 / minor


@pytest.mark.slow
def test_notebook_runs_with_jupyter_nbconvert(tmp_path, monkeypatch):
    import subprocess
    import sys

    data = build_dataset(tmp_path / "symmv-tiny", write_midi=True)
    env = {**__import__("os").environ, "SYMMV_DATA": str(data), "SYMMV_SOURCE": str(tmp_path / "source")}
    env.pop("MPLBACKEND", None)
    jupyter = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--output-dir", str(tmp_path),
                           str(NOTEBOOK)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
