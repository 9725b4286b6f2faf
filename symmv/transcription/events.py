"""What every audio backend shares: batching windows, and model events -> sorted Notes."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from symmv.core.records import Note
from symmv.io.audio import AudioError as TranscriptionError


def batched(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def notes_from_events(events, name: str) -> list[Note]:
    """(onset_s, offset_s, pitch, velocity) tuples -> sorted Notes; no notes at all is a reject."""
    notes = sorted(
        (Note(onset_s=round(float(on), 6), offset_s=round(float(max(off, on + 1e-3)), 6),
              pitch=int(p), velocity=int(np.clip(round(v), 1, 127)))
         for on, off, p, v in events if 0 <= int(p) <= 127),
        key=lambda n: (n.onset_s, n.pitch),
    )
    if not notes:
        raise TranscriptionError("no_notes", f"{name}: the transcriber found no notes")
    return notes
