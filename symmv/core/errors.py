"""The error contract of the build (issue 12): what becomes a reject row and what stops the run.

- `Refusal(reason, detail)`: a stage's verdict on one item ("no_video_match", "silent_audio", ...). It
  becomes a `rejects` row `<stage>:<reason>` and the build goes on.
- `MediaError`: a media file or network resource that cannot be read (ffmpeg/ffprobe failures, downloads).
  Also a reject row: broken input is the item's fault, not the program's.
- `ConfigError`: the user asked for something that does not exist (unknown backend, missing folder). Raised
  before the first song is processed; the CLI prints it as one line and exits non-zero.
- Anything else is a bug: recorded as `internal_error:<Type>` and, past `max_reject_fraction` of a batch,
  the build stops (symmv.pipeline.batch).
"""
from __future__ import annotations


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
