"""The error contract of the build (issue 12): what becomes a reject row and what stops the run.

- `Refusal(reason, detail)`: a stage's verdict on one item ("no_video_match", "silent_audio", ...). It
  becomes a `rejects` row `<stage>:<reason>` and the build goes on.
- `MediaError`: a media file or network resource that cannot be read (ffmpeg/ffprobe failures, downloads).
  Also a reject row: broken input is the item's fault, not the program's.
- `ConfigError`: the user asked for something that does not exist (unknown backend, missing folder). Raised
  before the first song is processed; the CLI prints it as one line and exits non-zero.
- Anything else is a bug: recorded as `internal_error:<Type>` and, past `max_reject_fraction` of a batch,
  the build stops (symmv.pipeline.batch).
- `BuildAborted`: a deliberate stop (a concurrent build, too many internal errors, too few accepted covers):
  one line, exit 2, like a ConfigError.
- An OSError that says the disk cannot take the dataset or the cache (`write_failure`: read-only, full,
  no permission, over quota) is the machine's state, not a bug: one line `cannot write <path>: <reason>`,
  exit 1, wherever in the build (and however deep in Prefect's wrapping) it surfaced.
- `DatasetNotCommitted`: `symmv.load` on a root whose build never committed (no `_manifest.json`).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class Refusal(ValueError):
    """A stage's refusal of one item, with a machine-readable reason code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class MediaError(Refusal):
    """A media file (or remote resource) cannot be read or decoded; `reason` says how."""

    default_reason = "unreadable_media"

    def __init__(self, detail: str = "", reason: str | None = None):
        super().__init__(reason or self.default_reason, detail)

    def __str__(self) -> str:
        return self.detail or self.reason


class ConfigError(ValueError):
    """A configuration mistake: shown to the user as one line, before any song is processed."""


class BuildAborted(RuntimeError):
    """The build stopped on purpose (too many internal errors in a batch, a concurrent build)."""


class DatasetNotCommitted(FileNotFoundError):
    """A dataset root with no committed generation (`_manifest.json`): never built, or its build stopped
    before publishing. Its files, read anyway, are a silently partial dataset (songs without notes)."""


# What a full, read-only or forbidden disk raises: the machine's state, reported as such (not a traceback).
WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}


def write_failure(exc: BaseException) -> OSError | None:
    """The OSError of WRITE_ERRNOS that caused `exc`, found through `__cause__`/`__context__` (Prefect and
    pyarrow re-raise I/O errors wrapped in their own), or None when `exc` is something else."""
    seen, todo = set(), [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return err
        todo += [err.__cause__, err.__context__, *getattr(err, "exceptions", ())]
    return None


def write_failure_line(err: OSError, folders: list) -> str:
    """`cannot write <path>: <reason>`. pyarrow's and `file.write`'s errors name no file: then the first of
    `folders` (the build's --out, its cache...) on a read-only or full filesystem names the place."""
    def full_or_read_only(folder: Path) -> bool:
        while not folder.exists() and folder != folder.parent:  # a folder not made yet: its filesystem
            folder = folder.parent
        st = os.statvfs(folder)
        return bool(st.f_flag & os.ST_RDONLY) or st.f_bavail * st.f_frsize < 1 << 20

    path = err.filename
    if path is None:
        path = next((f for f in folders if full_or_read_only(Path(f))), folders[0] if folders else "?")
    return f"cannot write {path}: {os.strerror(err.errno)}"
