"""`symmv` command line: one entry point, subcommands mapped onto the config dataclasses."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from symmv.core import settings
from symmv.core.errors import BuildAborted, ConfigError, DatasetNotCommitted, write_failure, write_failure_line
from symmv.pipeline.config import BuildConfig, DemoConfig, add_dataclass_args, from_args, prefect_defaults


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from symmv.sources.demo import DemoCorpusConfig, build_demo_corpus

    cfg = from_args(DemoConfig, args)
    summary = build_demo_corpus(DemoCorpusConfig(out=cfg.out, n_songs=cfg.n_songs, excerpt_s=cfg.excerpt_s,
                                                 symmv_release=cfg.symmv_release, clips_dir=cfg.clips_dir,
                                                 seed=cfg.seed))
    source = f"SymMV release at {cfg.symmv_release}" if cfg.symmv_release else "music21 corpus"
    print(f"demo source in {cfg.out} (music: {source}): {summary['covers']} covers, {summary['videos']} "
          f"official videos, {summary['distractors']} distractors, {len(summary['skipped'])} skipped")
    for s in summary["skipped"]:
        print(f"  skipped {s['key']}: {s['reason']}")
    return 0


def cmd_correspondence_source(args: argparse.Namespace) -> int:
    from symmv.sources.correspondence import CorrespondenceConfig, build_correspondence_source

    cfg = from_args(CorrespondenceConfig, args)
    summary = build_correspondence_source(cfg)
    print(f"correspondence source in {cfg.out}: {summary['songs']} songs with videos rendered from their music "
          f"({cfg.clip_s:g} s clips), {len(summary['skipped'])} skipped; scenes {summary['scenes']}")
    print(f"next: symmv build --source symmv-release --source-dir {cfg.out} --out <dataset>")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Validate, then run the flow with a live progress display; the full log goes to <out>/build.log."""
    from symmv.console import print_summary, quiet_logging, run_with_progress
    from symmv.pipeline.writer import BuildLock

    config = from_args(BuildConfig, args)
    log_file = Path(config.out) / "build.log"
    quiet_logging(None, config.verbose)
    # A busy --out or someone else's folder is refused here, in a second, before models or Prefect load and
    # before a line goes to the other build's log; the flow takes the same lock again (it is re-entrant).
    with BuildLock(config.out):
        from flows.build import build_symmv
        from symmv import watchdog
        from symmv.pipeline.build import validate

        validate(config)  # a typo costs one line, not a four-minute build (nor an --out folder: the lock removes it)
        quiet_logging(log_file, config.verbose)
        watchdog.start()  # a kill -9 of this process must not leave Prefect's server running
        summary = run_with_progress(lambda c: build_symmv(config=c), config, config.progress)
    print_summary(summary, Path(config.out), log_file)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Video in -> MP4 with generated background music out (or MIDI only)."""
    from models.generate import generate_for_video

    if not Path(args.video).is_file():
        raise ConfigError(f"no video file {args.video}")
    missing = [s for s in ("chord", "melody", "accompaniment") if not (Path(args.ckpt) / s / "model.safetensors").is_file()]
    if missing:
        raise ConfigError(f"no trained {', '.join(missing)} checkpoint in {args.ckpt}: pass --ckpt DIR "
                          "(make train-all writes them)")
    result = generate_for_video(args.video, args.output, args.ckpt, seed=args.seed, temperature=args.temperature,
                                top_p=args.top_p, midi_only=args.midi_only, encoder_name=args.encoder,
                                dataset_root=args.dataset)
    print(json.dumps(result, indent=2))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """A finished `make train-all` run becomes the checkpoints `symmv generate` uses by default."""
    from models.checkpoint import promote

    if not Path(args.run).is_dir():
        raise ConfigError(f"no training run folder {args.run}")
    try:
        written = promote(args.run, args.into)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"promoted {args.run} -> {args.into} ({len(written)} files); `git diff --stat {args.into}` shows the change")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print what a built dataset holds: per table and split, the row counts; then the rejects."""
    from symmv.core.schema import TABLES
    from symmv.core.shards import load

    from symmv.core.shards import MANIFEST

    root = Path(args.root)
    if not (root / MANIFEST).is_file() and not (root / "songs").is_dir():
        raise ConfigError(f"{root} is not a SymMV dataset (no {MANIFEST}); build one with `symmv build --out {root}`")
    print(f"SymMV dataset at {root}")
    for table in TABLES:
        frame = load(table, root=root)
        if len(frame):
            counts = frame.groupby("split").size().to_dict()
            print(f"  {table:15s} {len(frame):7d} rows  {counts}")
    songs = load("songs", root=root)
    if len(songs):
        print("  transcribed by:", ", ".join(sorted(songs["transcriber"].dropna().unique())))
    rejects = load("rejects", root=root)
    for r in rejects.itertuples():
        print(f"  rejected {r.item_id} at {r.stage}: {r.reason} - {r.detail[:120]}")
    print(f"\nopen it in pandas:  import symmv; symmv.load('notes', split='train', root='{root}')")
    return 0


def build_choices() -> dict[str, list[str]]:
    """Registry names for `symmv build --help` (the registries themselves, so the list cannot go stale)."""
    from symmv.features.encoders import ENCODERS
    from symmv.pipeline.sources import SOURCES
    from symmv.pipeline.runners import RUNNERS
    from symmv.pipeline.stages import BEAT_TRACKERS
    from symmv.transcription.backends import BACKENDS

    return {"source": list(SOURCES), "transcriber": sorted(BACKENDS), "beat_tracker": sorted(BEAT_TRACKERS),
            "semantic_encoder": [*sorted(ENCODERS), "none"], "task_runner": sorted(RUNNERS)}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prefect_defaults()  # CLI runs keep their own Prefect database (.prefect/cli), apart from a served server
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="symmv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo-corpus", help="build the offline demo source (yt-dlp layout)")
    add_dataclass_args(p, DemoConfig)
    p.set_defaults(func=cmd_demo_corpus)
    from symmv.sources.correspondence import CorrespondenceConfig

    p = sub.add_parser("correspondence-source",
                       help="the correspondence benchmark's source: release songs with videos rendered from their music")
    add_dataclass_args(p, CorrespondenceConfig)
    p.set_defaults(func=cmd_correspondence_source)
    from symmv.sources import fetch  # FetchConfig and its command; yt-dlp loads only when it runs

    fetch.add_command(sub, add_dataclass_args, from_args)
    p = sub.add_parser("build", help="run the build-symmv Prefect flow")
    # The registries import torch and Prefect (seconds on a busy machine): only --help lists their names, and
    # a busy --out is refused in about a second (validate checks the names either way).
    wants_help = {"-h", "--help"} & set(sys.argv[1:] if argv is None else argv)
    add_dataclass_args(p, BuildConfig, build_choices() if wants_help else None)
    p.set_defaults(func=cmd_build)
    from symmv.card.writer import add_card_args, card_from_args

    p = sub.add_parser("card", help="write data_cards/<name>/README.md with the paper's Fig. 3 plots")
    add_card_args(p)
    p.set_defaults(func=card_from_args)
    p = sub.add_parser("generate", help="generate background music for a video with trained V-MusProd")
    p.add_argument("video")
    p.add_argument("-o", "--output", required=True, help="out.mp4 (or out.mid with --midi-only)")
    p.add_argument("--ckpt", default=str(settings.SHIPPED_CHECKPOINTS),
                   help="folder with chord/ melody/ accompaniment/ (default: the shipped CPU-recipe checkpoints)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--midi-only", action="store_true")
    p.add_argument("--encoder", default="efficientnet-lite0", help="semantic encoder the checkpoints were trained with")
    p.add_argument("--dataset", default=str(settings.DEFAULT_DATASET), help="dataset whose motion range maps motion to tempo")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("promote", help="make a finished training run the shipped checkpoints (models/checkpoints/cpu)")
    p.add_argument("run", help="the run folder `make train-all` wrote (default there: checkpoints/train-all-cpu)")
    p.add_argument("--into", default=str(settings.SHIPPED_CHECKPOINTS),
                   help="the shipped checkpoint folder (default: models/checkpoints/cpu)")
    p.set_defaults(func=cmd_promote)
    p = sub.add_parser("info", help="summarise a built dataset")
    p.add_argument("--root", default=str(settings.DEFAULT_DATASET), help="dataset root (a build's --out)")
    p.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, BuildAborted, DatasetNotCommitted) as exc:  # the user's mistake or a deliberate stop
        print(f"symmv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        failed = write_failure(exc)  # a full or read-only disk: the machine's state, not a bug to trace
        if failed is None:
            raise
        folders = [getattr(args, name) for name in ("out", "cache_dir", "card_dir", "root") if hasattr(args, name)]
        print(f"symmv {args.command}: error: {write_failure_line(failed, folders)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
