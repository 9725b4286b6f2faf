"""Dataset card of a built SymMV dataset: a Hugging Face style README.md plus the paper's Fig. 3 plots.

    symmv card --root data/symmv-demo                      # -> data/symmv-demo/README.md + *.png
    symmv card --root data/symmv-demo --into data_cards    # and a copy in data_cards/symmv-demo/

Everything in the card is read from the build itself (Parquet footers and tables, songs.provenance,
build_report.json) with stable ordering, fixed seeds and no timestamps, so regenerating the card for the
same build gives the same text and a rebuild shows up as a readable diff. Tables the build did not write
(or wrote empty) get a "not available in this build" line instead of a section or a plot.

The plots follow the paper's data analysis (sec. 3.3, Fig. 3): (a) BPM density per genre (KDE),
(b) t-SNE of per-video mean semantic features coloured by genre, (c) chord distribution per genre after
transposing every song to C major / A minor (annotators.stats).

The parts: symmv.card.reading (the build), symmv.card.sections (the text), symmv.card.plots (Fig. 3); this
module puts them together and writes the files.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from symmv.card import BUILD_ACCURACY_JSON, PLOT_FILES  # noqa: F401 - callers import both from here
from symmv.core import settings

# reading, sections and plots load pandas and matplotlib (a second or more): imported when a card is written,
# so `symmv card --help` and the parser of every other command stay fast.


def render_card(build, name: str, card_dir: Path, extra: dict | None = None) -> str:
    """The README text of a `symmv.card.reading.Build`; writes the plots into card_dir as a side effect."""
    from symmv.card import sections as S

    encoders = sorted(build.video["semantic_encoder"].dropna().unique()) if len(build.video) else []
    intro = (extra or {}).get("description")
    sections = [
        S.yaml_header(build, name),
        f"# SymMV: {name}",
        *([str(intro)] if intro else []),
        S.section_summary(build, name),
        S.section_tables(build),
        S.section_splits(build),
        S.section_genres(build),
        S.section_figures(build, card_dir),
        S.section_provenance(build),
        S.section_accuracy(extra, build),
        S.section_alignment(build),
        S.section_rejects(build),
        S.section_licenses(build),
        S.section_limitations(build, extra, encoders),
        S.section_usage(build, name),
        "## Citation\n\n```bibtex\n" + S.CITATION + "\n```",
    ]
    return "\n\n".join(sections) + "\n"


def write_card(root: Path, out_dir: Path | None = None, name: str | None = None, extra: dict | None = None) -> Path:
    """Generate the card of the build at `root`: `<root>/README.md` (+ Fig. 3 PNGs beside it), which makes the
    dataset root a Hugging Face dataset (`load_dataset(root, "<table>", split=...)` through its `configs:`),
    and, only when `out_dir` is given, a copy in `<out_dir>/<name>/` (the repository's `data_cards/` example is
    written by an explicit `symmv card --into data_cards`, never by a build). Returns the root's README.

    extra: optional {"annotator_accuracy": dict or JSON path, "limitations": [str], "description": str}.
    """
    import shutil

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset at {root}")
    name = name or root.resolve().name
    from symmv.card.reading import read_build

    text = render_card(read_build(root), name, root, extra)
    path = root / "README.md"
    path.write_text(text)
    if out_dir is not None:
        card_dir = Path(out_dir) / name
        card_dir.mkdir(parents=True, exist_ok=True)
        (card_dir / "README.md").write_text(text)
        for plot in PLOT_FILES.values():
            if (root / plot).is_file():
                shutil.copyfile(root / plot, card_dir / plot)
            else:
                (card_dir / plot).unlink(missing_ok=True)
    return path


def add_card_args(parser: argparse.ArgumentParser) -> None:
    """The card's options, shared by `python -m symmv.card.writer` and the `symmv card` subcommand."""
    parser.add_argument("--root", default=str(settings.DEFAULT_DATASET),
                        help=f"dataset root, the build's --out (default: {settings.DEFAULT_DATASET})")
    parser.add_argument("--into", "--out-dir", dest="into", default=None, metavar="DIR",
                        help="also copy the card to DIR/<name>/README.md, e.g. --into data_cards for the repository's "
                             "example (default: only <root>/README.md)")
    parser.add_argument("--name", default=None, help="card name (default: the root folder's name)")
    parser.add_argument("--accuracy", default=None, help="annotator evaluation JSON (default: the build's own "
                                                         "annotator_accuracy.json, else bench/results/eval_annotators.json)")
    parser.add_argument("--extra", default=None, help="JSON file with extra card inputs: annotator_accuracy, "
                                                      "limitations, description (default: none)")


def card_from_args(args: argparse.Namespace) -> int:
    from symmv.core.errors import ConfigError

    if not (Path(args.root) / "build_report.json").is_file() and not (Path(args.root) / "songs").is_dir():
        raise ConfigError(f"{args.root} is not a built SymMV dataset (no build_report.json)")
    extra = json.loads(Path(args.extra).read_text()) if args.extra else {}
    if args.accuracy:
        extra["annotator_accuracy"] = args.accuracy
    print(write_card(Path(args.root), Path(args.into) if args.into else None, args.name, extra or None))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="symmv card", description="write the dataset card of a SymMV build")
    add_card_args(parser)
    return card_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
