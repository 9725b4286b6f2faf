"""Audio -> piano notes: the backend registry (`backends`), Transkun, PTI, and MIDI-file sources.

`from symmv.transcription import transcribe, get_backend` is the public face; see `backends`.
"""
from symmv.transcription.backends import (  # noqa: F401
    BACKENDS,
    Transcription,
    TranscriptionError,
    default_backend,
    get_backend,
    transcribe,
)
