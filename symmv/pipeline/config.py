"""Configuration dataclasses and the one helper that maps them onto argparse.

Defaults run the embedded offline demo. The CLI (`symmv ...`) and the Prefect flow parameters both map
onto these classes, so no configuration value is defined twice.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from annotators.alignment import LOW_CONFIDENCE
from symmv.core import settings


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@dataclass
class BuildConfig:
    """`build-symmv`: source -> parse -> match -> transcribe -> annotate -> features -> filters -> shards."""

    source: str = "local"  # where covers come from: local (a yt-dlp-layout folder), youtube (a channel crawl), symmv-release (the SymMV release)
    source_dir: Path = Path("data/demo-source")  # local: covers/ + videos/; symmv-release: the release root
    channels_config: Path = Path("configs/channels.toml")  # youtube: channels to crawl
    out: Path = settings.DEFAULT_DATASET  # dataset root: Parquet shards, midi/, build_report.json
    card_dir: Path | None = None  # also copy the data card (always <out>/README.md) to <card_dir>/<out folder name>/
    # transcription backend; by default what the source implies (MIDI: read it), else the most accurate one this machine runs in reasonable time
    transcriber: str = field(default="", metadata={"default_text": "what the source implies"})

    # beats from the audio ("madmom"), the notes ("notes") or both ("joint", opt-in: README "Beats, downbeats and
    # meter"); by default what the source implies
    beat_tracker: str = field(default="", metadata={"default_text": "what the source implies"})
    semantic_encoder: str = "efficientnet-lite0"  # frame encoder of the semantic video features ("clip" needs its weights; "none" skips them)
    match_threshold: float = 0.55  # official-video matcher: minimum score to accept a candidate
    search_results: int = 10  # youtube: candidates per `ytsearchN:` query
    max_cover_s: float = 900.0  # longer covers (medleys, streams, broken files) are rejected as too_long
    min_cover_s: float = 3.0  # shorter covers (a 0.3 s blip, a broken download) are rejected as too_short
    qc_min_duration_s: float = 20.0  # music QC: shorter covers are too_short (a threshold measured on real covers)
    align: bool = True  # align the cover to the official video's soundtrack (the `alignment` table); --no-align skips it
    # cover <-> video soundtrack alignment confidence below this is alignment:low_confidence
    min_alignment_confidence: float = LOW_CONFIDENCE
    shazam: bool = False  # look genre/lyrics up with ShazamIO (needs the internet; never fatal)
    video_fps: float = 6.0  # paper sec. 4.1: semantic features at 6 fps (colour, text and shots use the same frames)
    semantic_stride: int = 1  # encode every n-th of those frames, holding each embedding (n x fewer encoder calls)
    split_seed: int = 0  # seed of the stable hash that assigns each official video to train/val/test (a small dataset's empty split is filled by hash rank)
    val_fraction: float = 0.1  # share of official videos (not songs) in the validation split
    test_fraction: float = 0.1  # share of official videos in the test split
    workers: int = 2  # batches processed concurrently
    task_runner: str = "threads"  # how batches run: threads (this process), processes, a Dask or a Ray cluster
    # dask/ray: a running scheduler (tcp://host:8786); by default a local cluster
    cluster_address: str = field(default="", metadata={"default_text": "a local cluster"})
    limit: int = 0  # process at most this many covers (0 = all)
    batch_size: int = 64  # songs per batch task: each batch writes its own Parquet parts (memory ~ one song)
    # per-song stage results, keyed on content: shared by every --out (in the user's cache, not the working folder)
    cache_dir: Path = field(default_factory=lambda: settings.user_cache() / "build",
                            metadata={"default_text": "~/.cache/symmv/build, or $XDG_CACHE_HOME/symmv/build"})
    max_reject_fraction: float = 0.5  # stop the build when internal errors (bugs) exceed this share of a batch
    # fail the build when fewer than this share of covers become songs (songs / (songs + rejected covers)); checked
    # before publishing, so nothing new is published and --out keeps its previous build readable (0 = off)
    min_accept_fraction: float = 0.0
    progress: bool = True  # live progress display on a terminal (songs, rejects, cache hits, ETA)
    verbose: bool = False  # show Prefect's per-task log lines and third-party warnings (always in <out>/build.log)


@dataclass
class DemoConfig:
    """`symmv demo-corpus`: the offline source (see symmv.sources.demo)."""

    out: Path = Path("data/demo-source")  # where the covers/ and videos/ folders (yt-dlp layout) go
    n_songs: int = 20  # songs to render (plus planted distractors and failures)
    excerpt_s: float = 30.0  # seconds of each piece
    symmv_release: Path | None = field(default_factory=lambda: _env_path("SYMMV_RELEASE"))  # take the music from this SymMV release checkout instead of music21's corpus
    clips_dir: Path = Path(".cache/clips")  # real sample video clips (scripts/fetch_clips.sh)
    seed: int = 0  # seed of the corpus generator


def _arg_type(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _arg_type(args[0])
    return tp


def field_docs(cls) -> dict[str, str]:
    """Each field's why-comment from the dataclass source -- trailing (`name: type = default  # why`) or on the
    lines just above it -- reused as its `--help`, so nothing is written twice."""
    import inspect
    import io
    import tokenize

    docs, pending, above = {}, None, []
    for tok in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        if tok.type == tokenize.COMMENT and tok.line.strip().startswith("#"):
            above.append(tok.string.lstrip("# ").strip())  # a comment line of its own: for the next field
        elif tok.type == tokenize.NAME and tok.start[1] == 4 and pending is None:
            pending = tok.string  # a field name at class-body indentation
            if above:
                docs[pending] = " ".join(above)
            above = []
        elif tok.type == tokenize.COMMENT and pending:
            docs[pending] = tok.string.lstrip("# ").strip()
        elif tok.type == tokenize.NEWLINE:
            pending = None
    return docs


def add_dataclass_args(parser: argparse.ArgumentParser, cls, choices: dict[str, list[str]] | None = None) -> None:
    """One `--field-name` option per dataclass field, typed and defaulted from the dataclass, its help from
    the field's comment and its valid values from `choices` (registry names)."""
    hints, docs, choices = typing.get_type_hints(cls), field_docs(cls), choices or {}
    for f in dataclasses.fields(cls):
        tp = _arg_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        text = docs.get(f.name, "")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        shown = f.metadata.get("default_text") or (f"{default}" if default not in ("", None) else "none")
        if f.name in choices:
            text += f" {{{', '.join(choices[f.name])}}}"
        # Valid values are listed, not enforced by argparse: symmv.pipeline.build.validate refuses a wrong one
        # in one line (argparse would print the whole usage first).
        parser.add_argument(flag, type=tp, default=default, metavar=tp.__name__.upper(), help=f"{text} (default: {shown})")


def from_args(cls, namespace: argparse.Namespace):
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})


PREFECT_DEFAULTS = {
    # A local run starts Prefect's temporary server; on a loaded 2-core machine it can need more than
    # the default 20 s to come up ("Timed out while attempting to connect to ephemeral Prefect API").
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",  # no telemetry notice on every CLI run (nothing can be sent from here anyway)
    "PREFECT_UI_ENABLED": "false",
    # Local runs (CLI, make targets) keep their own SQLite database in the user's cache, not in the working
    # folder (a run anywhere writes nothing there), and apart from the served server (scripts/serve.sh,
    # PREFECT_HOME=.prefect) so the two never share one ("database is locked").
    "PREFECT_HOME": str(settings.user_cache() / "prefect"),
}


def prefect_defaults(**overrides: str) -> None:
    """Set Prefect's environment for local runs, keeping anything the user already set."""
    for key, value in {**PREFECT_DEFAULTS, **overrides}.items():
        os.environ.setdefault(key, value)
    # Prefect's SQLite file cannot be opened in a folder that does not exist yet (a fresh clone).
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
