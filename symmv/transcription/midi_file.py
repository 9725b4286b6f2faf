"""Transcription backend for sources that already are MIDI (the SymMV release): reads the notes."""
from __future__ import annotations

from pathlib import Path

from symmv.core.records import Note
from symmv.io.midi import read_notes


class MidiFile:
    """Transcription backend for sources that already are MIDI (the SymMV release): reads the notes."""

    name = "midi-file"

    def __init__(self):
        import pretty_midi

        self.version = f"pretty_midi {pretty_midi.__version__}"
        self.weights = None  # no model

    def transcribe(self, path: str | Path) -> list[Note]:
        return read_notes(path)
