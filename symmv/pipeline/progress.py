"""Progress of long work: a build's songs done / rejected / cached per stage, and plain ETA lines for any loop.

The batch runner reports each finished song through `song_finished`: to `CURRENT` when the build runs in
this process (the threads runner; the CLI renders it, symmv.console) and to the listener its Prefect task
registered (flows/build.py: one run-logger line per song, visible in the UI and build.log of a deployment
run too). Batches run elsewhere (processes, Dask, Ray) are counted when their summary comes back.

`progress_lines(total, label)` is the small helper for any other loop (training steps, evaluated songs):
timestamped lines with rate and ETA when the stream is not a terminal (a pipe, CI, a log file), one line
redrawn in place when it is. Nothing here imports rich or Prefect.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


def clock(seconds: float | None) -> str:
    """`mm:ss` or `h:mm:ss`; `--:--` for an unknown duration (no rate yet)."""
    if seconds is None:
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def eta_s(done: float, total: float, elapsed_s: float) -> float | None:
    """Seconds left at the mean rate so far; None before the first unit or past the total."""
    return (total - done) * elapsed_s / done if done > 0 and total >= done else None


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class BuildProgress:
    total: int = 0  # covers discovered
    started: float = field(default_factory=time.monotonic)
    pass_started: float | None = None  # the batches' second pass began (rate and ETA count from it)
    _songs: dict[int, Counter] = field(default_factory=dict)  # batch index -> counts of songs
    _stages: dict[int, dict[str, Counter]] = field(default_factory=dict)  # batch -> stage -> ran/cached/refused
    _lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "starting"

    def song(self, batch: int, accepted: bool, outcomes: dict[str, str]) -> None:
        """One song finished in batch `batch`; `outcomes` is stage -> "ran" | "cached" | "refused" | "error"."""
        with self._lock:
            self._songs.setdefault(batch, Counter())["done"] += 1
            self._songs[batch]["rejected"] += not accepted
            stages = self._stages.setdefault(batch, {})
            for stage, outcome in outcomes.items():
                stages.setdefault(stage, Counter())[outcome] += 1

    def batch(self, summary: dict) -> None:
        """A batch's summary: replaces what was counted live for it (or counts a remote batch at once)."""
        with self._lock:
            index = summary["index"]
            self._songs[index] = Counter(done=summary["songs"] + summary["rejects"], rejected=summary["rejects"])
            stages: dict[str, Counter] = {}
            for stage, n in summary.get("cache_hits", {}).items():
                stages.setdefault(stage, Counter())["cached"] += n
            for stage, n in summary.get("cache_misses", {}).items():
                stages.setdefault(stage, Counter())["ran"] += n
            for reason, n in summary.get("reject_reasons", {}).items():
                stages.setdefault(reason.split(":", 1)[0], Counter())["refused"] += n
            self._stages[index] = stages

    def restart_batches(self, phase: str) -> None:
        """A second pass over the batches (small-dataset splits): every song counts again from zero."""
        with self._lock:
            self._songs, self._stages, self.phase = {}, {}, phase
            self.pass_started = time.monotonic()

    def snapshot(self) -> dict:
        with self._lock:
            songs = sum(self._songs.values(), Counter())
            stages: dict[str, Counter] = {}
            for per_batch in self._stages.values():
                for stage, counts in per_batch.items():
                    stages.setdefault(stage, Counter()).update(counts)
        now = time.monotonic()
        elapsed, in_pass = now - self.started, now - (self.pass_started or self.started)
        done = songs["done"]
        return {"total": self.total, "done": done, "rejected": songs["rejected"], "elapsed_s": elapsed,
                "songs_per_s": done / in_pass if in_pass > 0 else 0.0, "eta_s": eta_s(done, self.total, in_pass),
                "stages": {s: dict(c) for s, c in stages.items()}, "phase": self.phase}


def snapshot_line(snap: dict, label: str = "build-symmv") -> str:
    """One plain line of a build's snapshot (piped output, logs): no markup, no bar."""
    done, total = snap["done"], snap["total"]
    share = f" ({100 * done / total:.0f}%)" if total else ""
    return (f"{label} {snap['phase']}: {done}/{total} songs{share}, {snap['rejected']} rejected, "
            f"{snap['songs_per_s']:.2f} songs/s, elapsed {clock(snap['elapsed_s'])}, ETA {clock(snap['eta_s'])}")


CURRENT: BuildProgress | None = None  # set by whoever displays it (the CLI), for the batches in this process

# batch index -> callable(song_id, accepted, outcomes, reject) registered by the batch's Prefect task
_SONG_LISTENERS: dict[int, Callable] = {}


def song_finished(batch: int, song_id: str, reject, outcomes: dict[str, str]) -> None:
    """Called by the batch runner after each song: counts it for the display and tells the batch's listener."""
    if CURRENT is not None:
        CURRENT.song(batch, reject is None, outcomes)
    listener = _SONG_LISTENERS.get(batch)
    if listener is not None:
        listener(song_id, reject, outcomes)


class song_listener:
    """`with song_listener(index, fn):` -- `fn(song_id, reject, outcomes)` after each song of batch `index`."""

    def __init__(self, batch: int, fn: Callable):
        self.batch, self.fn = batch, fn

    def __enter__(self):
        _SONG_LISTENERS[self.batch] = self.fn
        return self

    def __exit__(self, *exc) -> None:
        _SONG_LISTENERS.pop(self.batch, None)


class progress_lines:
    """Progress of a loop of `total` units, as plain lines a pipe or a log file keeps.

        with progress_lines(total=steps, label="train chord", unit="steps") as p:
            for step in range(steps):
                ...
                p.advance(loss=f"{loss:.3f}")   # extra key=value pairs end the line

    Not a terminal (pipe, CI, file): a timestamped line at most every `interval_s` seconds, and always for the
    first unit and the last -- `2025-01-01 12:00:00 train chord: 40/300 steps (13%), 1.9 steps/s, elapsed
    00:21, ETA 02:16, loss=2.314`. A terminal: the same text redrawn in place on one line, then a newline.
    `stream` defaults to stderr (stdout stays for results); `report(line)` overrides where lines go (a logger).
    """

    def __init__(self, total: int, label: str, unit: str = "", interval_s: float = 10.0,
                 stream: TextIO | None = None, report: Callable[[str], None] | None = None):
        self.total, self.label, self.unit, self.interval_s = total, label, unit, interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.report = report
        self.tty = report is None and bool(getattr(self.stream, "isatty", lambda: False)())
        self.done, self.started, self._last = 0, time.monotonic(), float("-inf")

    def line(self, **info) -> str:
        elapsed = time.monotonic() - self.started
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        unit = f" {self.unit}" if self.unit else ""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        extra = "".join(f", {k}={v}" for k, v in info.items())
        return (f"{self.label}: {self.done}/{self.total}{unit}{share}, {rate:.2f}{unit or ' units'}/s, "
                f"elapsed {clock(elapsed)}, ETA {clock(eta_s(self.done, self.total, elapsed))}{extra}")

    def advance(self, n: int = 1, **info) -> None:
        self.done += n
        now = time.monotonic()
        last = self.done >= self.total
        if self.tty:
            self.stream.write(f"\r\x1b[2K{self.line(**info)}" + ("\n" if last else ""))
            self.stream.flush()
        elif last or self.done == n or now - self._last >= self.interval_s:
            self._emit(self.line(**info))
        else:
            return
        self._last = now

    def _emit(self, text: str) -> None:
        if self.report is not None:
            self.report(text)
        else:
            print(f"{timestamp()} {text}", file=self.stream, flush=True)

    def __enter__(self) -> progress_lines:
        return self

    def __exit__(self, *exc) -> None:
        if self.tty and 0 < self.done < self.total:  # stopped early: end the redrawn line
            self.stream.write("\n")
            self.stream.flush()
