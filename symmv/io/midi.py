"""Notes <-> MIDI files: the one reader and writer every stage, model and evaluation uses."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from symmv.core.records import Note


def read_notes(path: str | Path, keep_tracks: bool = False) -> list[Note]:
    """All non-drum notes in seconds (pretty_midi applies the tempo map), sorted by onset then pitch.

    `keep_tracks`: each note's track is its instrument's name (as `write_notes` stores it), else "piano".
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity),
                  track=(inst.name or "piano") if keep_tracks else "piano")
             for inst in pm.instruments if not inst.is_drum for n in inst.notes if n.end > n.start]
    return sorted(notes, key=lambda n: (n.onset_s, n.pitch))


def write_notes(notes: Sequence[Note], path: str | Path, tempo_bpm: float = 120.0, resolution: int = 480,
                program: int = 0) -> Path:
    """One instrument per track (piano / melody / accompaniment; General MIDI `program`, 0 = piano),
    written atomically.

    pretty_midi writes no key signature, which also sidesteps muspy 0.5.0's broken key-signature writer.
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm, resolution=resolution)
    for track in sorted({n.track for n in notes}) or ["piano"]:
        inst = pretty_midi.Instrument(program=program, name=track)
        inst.notes = [pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch), start=float(n.onset_s),
                                       end=float(max(n.offset_s, n.onset_s + 1e-3)))
                      for n in notes if n.track == track]
        pm.instruments.append(inst)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pm.write(str(tmp))
    os.replace(tmp, path)
    return path
