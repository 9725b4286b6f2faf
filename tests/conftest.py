"""Shared fixtures: a tiny offline demo source and one real `build-symmv` run over it (session-scoped)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_RELEASE = REPO.parent / "shared" / "data" / "symmv-release"

from symmv.pipeline.config import prefect_defaults  # noqa: E402

# Builds in tests use Basic Pitch unless a test names another backend: the CPU default is Transkun (the
# most accurate, ~0.6 CPU-s per audio second), which would make every test build minutes longer.
os.environ.setdefault("SYMMV_TRANSCRIBER", "basic-pitch")

prefect_defaults(PREFECT_HOME=str(REPO / ".prefect" / "tests"), PREFECT_LOGGING_LEVEL="WARNING")


@pytest.fixture(scope="session")
def symmv_release() -> Path:
    """The SymMV release checkout beside the repo (../shared/data), or skip."""
    path = Path(os.environ.get("SYMMV_RELEASE", SHARED_RELEASE))
    if not (path / "SymMV.csv").is_file():
        pytest.skip(f"SymMV release not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> Path:
    """Five 6-second covers from music21's corpus with videos and planted distractors/failures."""
    from symmv.sources.demo import DemoCorpusConfig, build_demo_corpus

    out = tmp_path_factory.mktemp("demo-source")
    build_demo_corpus(DemoCorpusConfig(out=out, n_songs=5, excerpt_s=6.0, clips_dir=REPO / ".cache" / "clips",
                                       width=320, height=180), progress=False)
    return out


# The tiny source's covers are 6 s: below the music QC's 20-s minimum, which is measured for real covers.
TINY = {"qc_min_duration_s": 3.0}
TINY_CLI = ["--qc-min-duration-s", "3"]


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory) -> Path:
    """One stage cache for the session's builds: a fresh one, so every test run computes for real once."""
    return tmp_path_factory.mktemp("build-cache")


@pytest.fixture(scope="session")
def tiny_build(tiny_source, build_cache, tmp_path_factory) -> tuple[Path, dict]:
    """A real Prefect run of build-symmv over the tiny source: (dataset root, summary)."""
    from flows.build import build_symmv
    from symmv.pipeline.config import BuildConfig

    out = tmp_path_factory.mktemp("dataset")
    cards = tmp_path_factory.mktemp("cards")
    summary = build_symmv(config=BuildConfig(source_dir=tiny_source, out=out, card_dir=cards, progress=False, **TINY,
                                             cache_dir=build_cache))
    return out, summary
