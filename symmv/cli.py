"""`symmv` command line: one entry point, subcommands mapped onto the config dataclasses."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from symmv import __version__
from symmv.core import settings
from symmv.core.errors import BuildAborted, ConfigError, DatasetNotCommitted, write_failure, write_failure_line
from symmv.pipeline.config import BuildConfig, DemoConfig, add_dataclass_args, from_args, prefect_defaults

# Nothing heavy is imported at module level or while the parser is built (torch, Prefect, pandas): `--help`,
# `--version` and a one-line error answer in well under a second; each command imports what it runs.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")
MIDI_SUFFIXES = (".mid", ".midi")


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


def check_folder(flag: str, folder: Path) -> None:
    """A folder option names a folder, or a path where one can be made: a file there, or on the way there, is
    one line (not a FileExistsError or NotADirectoryError traceback from the first mkdir)."""
    for path in [folder, *folder.parents]:
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"{flag} {folder}: {path} is a file, not a folder" if path != folder
                                  else f"{flag} {folder} is a file, not a folder")
            return


def cmd_build(args: argparse.Namespace) -> int:
    """Validate, then run the flow with progress on stderr; the full log goes to <out>/build.log."""
    config = from_args(BuildConfig, args)
    for flag, folder in (("--out", config.out), ("--cache-dir", config.cache_dir), ("--card-dir", config.card_dir)):
        if folder:
            check_folder(flag, Path(folder))
    from symmv.console import print_summary, quiet_logging, run_with_progress
    from symmv.pipeline.writer import BuildLock
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


def check_generate_paths(args: argparse.Namespace) -> None:
    """Everything `symmv generate` would fail on after minutes of model loading, checked first (one line each)."""
    video, out = Path(args.video), Path(args.output)
    if not video.is_file():
        raise ConfigError(f"no video file {video}")
    if out.is_dir():
        raise ConfigError(f"-o {out} is a folder: name the file to write (e.g. {out / (video.stem + '-music.mp4')})")
    if not out.parent.is_dir():
        raise ConfigError(f"-o {out}: folder {out.parent} does not exist")
    wanted = MIDI_SUFFIXES if args.midi_only else VIDEO_SUFFIXES
    if out.suffix.lower() not in wanted:
        what = "--midi-only writes MIDI" if args.midi_only else "the output is a video (--midi-only writes MIDI)"
        raise ConfigError(f"-o {out}: {what}: name it {' or '.join(wanted)}")
    if out.resolve() == video.resolve():
        raise ConfigError(f"-o {out} is the input video: name another file")
    missing = [s for s in ("chord", "melody", "accompaniment") if not (Path(args.ckpt) / s / "model.safetensors").is_file()]
    if missing:
        raise ConfigError(f"no trained {', '.join(missing)} checkpoint in {args.ckpt}: pass --ckpt DIR "
                          "(make train-all writes them)")
    from symmv.io.video import VideoReadError, probe

    try:
        probe(video)
    except VideoReadError as exc:
        raise ConfigError(f"{video} is not a readable video ({str(exc).split(': ', 1)[-1][:200].strip()})") from exc


def generate_motion_range(dataset: str | None) -> str | None:
    """The dataset whose recorded motion range maps the video's motion to a tempo, said out loud: an explicit
    --dataset must hold a build report; without one, the default dataset's is used when it exists, else the
    documented default range (a notice on stderr names which)."""
    report = Path(dataset or settings.dataset_root()) / "build_report.json"
    if report.is_file():
        return str(report.parent)
    if dataset is not None:
        raise ConfigError(f"--dataset {dataset} has no build_report.json: name a built dataset (its motion range "
                          "sets the tempo), or leave --dataset out for the documented default range")
    from annotators.video import DEFAULT_MOTION_RANGE

    print(f"symmv generate: no dataset at {report.parent}: motion -> tempo uses the documented default motion "
          f"range [{DEFAULT_MOTION_RANGE[0]:g}, {DEFAULT_MOTION_RANGE[1]:g}] (pass --dataset to use a build's)",
          file=sys.stderr)
    return None


def cmd_generate(args: argparse.Namespace) -> int:
    """Video in -> MP4 with generated background music out (or MIDI only)."""
    check_generate_paths(args)
    dataset = generate_motion_range(args.dataset)
    import tempfile

    from models.generation.generate import generate_for_video

    out = Path(args.output)
    # generate_for_video writes its MIDI beside `out` before muxing: a temporary folder keeps the user's
    # folder free of a stray .mid when the MP4 is what was asked for (and of half a result when muxing fails).
    with tempfile.TemporaryDirectory(prefix=".symmv-generate-", dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        result = generate_for_video(args.video, staged, args.ckpt, seed=args.seed, temperature=args.temperature,
                                    top_p=args.top_p, midi_only=args.midi_only, encoder_name=args.encoder,
                                    dataset_root=dataset)
        staged.replace(out)
    result.update({"midi" if args.midi_only else "mp4": str(out)})
    if not args.midi_only:
        result.pop("midi", None)  # the intermediate MIDI lived in the temporary folder
    print(json.dumps(result, indent=2))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """A finished `make train-all` run becomes the checkpoints `symmv generate` uses by default."""
    from models.networks.checkpoint import promote

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
    from symmv.core.shards import MANIFEST, load

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


def cmd_card(args: argparse.Namespace) -> int:
    from symmv.card.writer import card_from_args

    return card_from_args(args)


def build_choices() -> dict[str, list[str]]:
    """Registry names for `symmv build --help` (symmv.pipeline.names: the registries' names, checked by a test)."""
    from symmv.pipeline import names

    return {"source": list(names.SOURCES), "transcriber": list(names.TRANSCRIBERS),
            "beat_tracker": list(names.BEAT_TRACKERS), "semantic_encoder": [*names.SEMANTIC_ENCODERS, "none"],
            "task_runner": list(names.TASK_RUNNERS)}


def args_correspondence(p: argparse.ArgumentParser, wants_help: bool) -> None:
    from symmv.sources.correspondence import CorrespondenceConfig

    add_dataclass_args(p, CorrespondenceConfig)


def args_build(p: argparse.ArgumentParser, wants_help: bool) -> None:
    # Only --help lists the registries' names (validate checks a value against the registry itself).
    add_dataclass_args(p, BuildConfig, build_choices() if wants_help else None)


def args_card(p: argparse.ArgumentParser, wants_help: bool) -> None:
    from symmv.card.writer import add_card_args

    add_card_args(p)


def args_generate(p: argparse.ArgumentParser, wants_help: bool) -> None:
    p.add_argument("video", help="the video to score (any format ffmpeg reads)")
    p.add_argument("-o", "--output", required=True,
                   help=f"the file to write: a video ({', '.join(VIDEO_SUFFIXES)}) with the music as its soundtrack, "
                        f"or with --midi-only a MIDI file ({', '.join(MIDI_SUFFIXES)}); its folder must exist")
    p.add_argument("--ckpt", default=str(settings.SHIPPED_CHECKPOINTS),
                   help="folder with the chord/, melody/ and accompaniment/ checkpoints "
                        "(default: the shipped CPU-recipe checkpoints, models/checkpoints/cpu)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed: the same seed gives the same music (default: 0)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature: below 1 safer, above 1 more adventurous (default: 1.0)")
    p.add_argument("--top-p", type=float, default=0.9,
                   help="nucleus sampling: keep the most likely tokens up to this probability mass (default: 0.9)")
    p.add_argument("--midi-only", action="store_true",
                   help="write only the generated MIDI (-o must end in .mid), no rendering or muxing")
    p.add_argument("--encoder", default="efficientnet-lite0",
                   help="semantic frame encoder the checkpoints were trained with (default: efficientnet-lite0)")
    p.add_argument("--dataset", default=None,
                   help="built dataset whose recorded motion range maps the video's motion to a tempo (default: "
                        f"{settings.DEFAULT_DATASET} when built there, else the documented default range, said on stderr)")


def args_promote(p: argparse.ArgumentParser, wants_help: bool) -> None:
    p.add_argument("run", help="the run folder `make train-all` wrote (default there: checkpoints/train-all-cpu)")
    p.add_argument("--into", default=str(settings.SHIPPED_CHECKPOINTS),
                   help="the shipped checkpoint folder (default: models/checkpoints/cpu)")


def args_info(p: argparse.ArgumentParser, wants_help: bool) -> None:
    p.add_argument("--root", default=str(settings.DEFAULT_DATASET),
                   help=f"dataset root, a build's --out (default: {settings.DEFAULT_DATASET})")


# name -> (help line, options, command); a command's options are added only when it is the one named
COMMANDS = {
    "demo-corpus": ("build the offline demo source (yt-dlp layout)",
                    lambda p, h: add_dataclass_args(p, DemoConfig), cmd_demo_corpus),
    "correspondence-source": ("the correspondence benchmark's source: release songs with videos rendered from "
                              "their music", args_correspondence, cmd_correspondence_source),
    "build": ("build a SymMV dataset (the build-symmv Prefect flow)", args_build, cmd_build),
    "card": ("write a dataset's data card (<root>/README.md, the paper's Fig. 3 plots); --into copies it",
             args_card, cmd_card),
    "generate": ("generate background music for a video with trained V-MusProd", args_generate, cmd_generate),
    "promote": ("make a finished training run the shipped checkpoints (models/checkpoints/cpu)", args_promote,
                cmd_promote),
    "info": ("summarise a built dataset", args_info, cmd_info),
}


def make_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symmv", description=__doc__)
    parser.add_argument("--version", action="version", version=f"symmv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    wants_help = bool({"-h", "--help"} & set(argv))
    for name, (text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == chosen:
            add_args(p, wants_help)
        p.set_defaults(func=run)
    # other commands register themselves (their modules load only what the parser needs)
    from symmv.sources import fetch  # FetchConfig and its command; yt-dlp loads only when it runs

    fetch.add_command(sub, add_dataclass_args, from_args)
    from flows import commands as model_commands  # train, variants, evaluate: options from models.config

    model_commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prefect_defaults()  # CLI runs keep their own Prefect database (in the user's cache), apart from a served server
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = make_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, BuildAborted, DatasetNotCommitted) as exc:  # the user's mistake or a deliberate stop
        print(f"symmv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        failed = write_failure(exc)  # a full or read-only disk: the machine's state, not a bug to trace
        if failed is None:
            raise
        folders = [getattr(args, name) for name in ("out", "cache_dir", "card_dir", "root", "into")
                   if getattr(args, name, None)]
        print(f"symmv {args.command}: error: {write_failure_line(failed, folders)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
