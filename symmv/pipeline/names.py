"""The registries' names, for `symmv build --help` without importing the registries (torch and Prefect:
seconds). Each tuple is checked against its registry by tests/test_user_facing.py, so it cannot go stale:
add a name here when you register one there."""
from __future__ import annotations

SOURCES = ("local", "youtube", "symmv-release")  # symmv.pipeline.sources.SOURCES
TRANSCRIBERS = ("basic-pitch", "midi-file", "pti", "transkun")  # symmv.transcription.backends.BACKENDS
BEAT_TRACKERS = ("joint", "madmom", "notes")  # symmv.pipeline.stages.BEAT_TRACKERS
SEMANTIC_ENCODERS = ("clip", "efficientnet-lite0")  # symmv.features.encoders.ENCODERS
TASK_RUNNERS = ("dask", "processes", "ray", "threads")  # symmv.pipeline.runners.RUNNERS
