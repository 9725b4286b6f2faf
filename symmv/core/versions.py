"""Versions that go into provenance and cache keys: installed distributions and our own code."""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect


def package_version(dist: str) -> str:
    """The installed version of a distribution, or "unknown"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """A short hash of the source of the named modules: a code change changes it, nothing else does.

    Cache keys use it so an annotator fix recomputes exactly the stages that ran that annotator, and
    editing an unrelated module (a row formatter, the card) recomputes nothing.
    """
    import importlib

    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode())
        digest.update(inspect.getsource(importlib.import_module(name)).encode())
    return digest.hexdigest()[:12]


def file_sha256(path: str, chunk_bytes: int = 1 << 20) -> str:
    """Content hash of a file (weights, media): identity by content, not by name or mtime."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
