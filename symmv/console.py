"""What a person at a terminal sees of a build: a live progress display, quiet logs, a closing summary.

Quiet by default: Prefect's per-task lines and third-party warnings go only to `<out>/build.log`;
`--verbose` shows them on the console too. The live display (rich) redraws twice a second on a terminal;
without one (CI, a pipe), nothing is drawn and only the summary is printed.
"""
from __future__ import annotations

import logging
import sys
import threading
import warnings
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from symmv.pipeline import progress as P

STAGE_ORDER = ("discover", "discover_videos", "measure", "match", "metadata", "video", "transcribe", "rhythm",
               "symbolic", "write")


def quiet_logging(log_file: Path | None, verbose: bool) -> None:
    """Everything at INFO into `log_file` (None: none yet); the console shows only what --verbose asks for."""
    root = logging.getLogger()
    handler = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        root.addHandler(handler)
        # On a full disk the log cannot be written either: the build then ends with one `cannot write` line
        # (symmv.cli), not with a "--- Logging error ---" traceback on stderr for every record.
        logging.raiseExceptions = False
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # warnings.warn(...) -> the log file, not the screen
    for h in root.handlers:
        if h is not handler and not verbose:
            h.setLevel(logging.CRITICAL + 1)
    if not verbose:
        warnings.filterwarnings("ignore")
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def progress_table(snap: dict) -> Table:
    """The live view: one line of totals, then per stage how many songs ran, came from the cache, or were refused."""
    done, total = snap["done"], snap["total"]
    width = 30
    filled = int(width * done / total) if total else 0
    title = (f"[bold]build-symmv[/] {snap['phase']}  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} songs  "
             f"{snap['rejected']} rejected  {snap['songs_per_s']:.2f} songs/s  "
             f"elapsed {_fmt_s(snap['elapsed_s'])}  ETA {_fmt_s(snap['eta_s'])}")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for col in ("stage", "ran", "cached", "refused", "errors"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    stages = snap["stages"]
    for name in [s for s in STAGE_ORDER if s in stages] + sorted(set(stages) - set(STAGE_ORDER)):
        c = stages[name]
        table.add_row(name, str(c.get("ran", 0)), str(c.get("cached", 0)), str(c.get("refused", 0)),
                      str(c.get("error", 0)))
    return table


def summary_table(summary: dict, out: Path) -> Table:
    title = (f"[bold]{summary['songs']} songs[/] ({summary['hours_music']} h) in {out}   "
             f"splits {summary['splits']}   {summary['rejects']} rejected   {summary['wall_s']} s")
    table = Table(title=title, title_justify="left")
    table.add_column("reject reason")
    table.add_column("items", justify="right")
    table.add_column("example")
    for reason, n in summary["reject_reasons"].items():
        table.add_row(reason, str(n), summary["reject_examples"].get(reason, "")[:100])
    return table


def run_with_progress(build, config, show: bool) -> dict:
    """Run `build(config)` with the live display (when `show` and stderr is a terminal)."""
    console = Console(stderr=True)
    P.CURRENT = P.BuildProgress()
    if not (show and console.is_terminal):
        try:
            return build(config)
        finally:
            P.CURRENT = None
    stop = threading.Event()
    with Live(progress_table(P.CURRENT.snapshot()), console=console, refresh_per_second=4, transient=False) as live:
        def refresh() -> None:
            while not stop.wait(0.5):
                live.update(progress_table(P.CURRENT.snapshot()))

        ticker = threading.Thread(target=refresh, daemon=True)
        ticker.start()
        try:
            summary = build(config)
        finally:
            stop.set()
            ticker.join()
            P.CURRENT.phase = "done"
            live.update(progress_table(P.CURRENT.snapshot()))
            P.CURRENT = None
    return summary


def print_summary(summary: dict, out: Path, log_file: Path) -> None:
    console = Console(file=sys.stdout)
    console.print(summary_table(summary, out))
    console.print(f"report {out / 'build_report.json'}   card {summary.get('card', '')}   log {log_file}")
    if not summary["songs"]:  # a build of nothing succeeds (exit 0) but must not look like one that worked
        print(f"symmv build: warning: no cover was accepted ({summary['rejects']} rejected): {out} holds an empty "
              "dataset; the reject reasons above say why (--min-accept-fraction makes this an error)", file=sys.stderr)
