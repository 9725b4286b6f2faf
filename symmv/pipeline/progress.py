"""Live progress of a build: songs done / rejected / cached per stage, throughput and ETA.

The batch runner reports each finished song to `CURRENT` when the build runs in this process (the threads
runner); batches run elsewhere (processes, Dask, Ray) are counted when their summary comes back. The CLI
renders it with rich (symmv.cli); nothing here prints.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class BuildProgress:
    total: int = 0  # covers discovered
    started: float = field(default_factory=time.monotonic)
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

    def snapshot(self) -> dict:
        with self._lock:
            songs = sum(self._songs.values(), Counter())
            stages: dict[str, Counter] = {}
            for per_batch in self._stages.values():
                for stage, counts in per_batch.items():
                    stages.setdefault(stage, Counter()).update(counts)
        elapsed = time.monotonic() - self.started
        done = songs["done"]
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 and self.total >= done else None
        return {"total": self.total, "done": done, "rejected": songs["rejected"], "elapsed_s": elapsed,
                "songs_per_s": rate, "eta_s": eta, "stages": {s: dict(c) for s, c in stages.items()},
                "phase": self.phase}


CURRENT: BuildProgress | None = None  # set by whoever displays it (the CLI), for the batches in this process
