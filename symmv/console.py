"""What a person at a terminal sees of a build: a live progress display, quiet logs, a closing summary.

Quiet by default: Prefect's per-task lines and third-party warnings go only to `<out>/build.log`;
`--verbose` shows them on the console too. The live display (rich) redraws twice a second on a terminal;
without one (CI, a pipe, a file) a timestamped plain line with ETA is printed every ten seconds instead,
and the summary is plain lines (no table to wrap at 80 columns).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

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


PLAIN_INTERVAL_S = 10.0  # piped output: one progress line at most this often (and at every phase change)


def bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return f"[{'#' * filled}{'.' * (width - filled)}]"


def progress_view(snap: dict) -> Group:
    """The live view: one line of totals (plain Text: rich would read `[###...]` as markup, and a table title
    wraps at the table's own width), then per stage how many songs ran, came from the cache, or were refused."""
    done, total = snap["done"], snap["total"]
    head = Text.assemble(("build-symmv", "bold"), f" {snap['phase']}  {bar(done, total)} {done}/{total} songs  "
                         f"{snap['rejected']} rejected  {snap['songs_per_s']:.2f} songs/s  "
                         f"elapsed {P.clock(snap['elapsed_s'])}  ETA {P.clock(snap['eta_s'])}",
                         no_wrap=True, overflow="ellipsis")
    table = Table(box=None, pad_edge=False)
    for col in ("stage", "ran", "cached", "refused", "errors"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    stages = snap["stages"]
    for name in [s for s in STAGE_ORDER if s in stages] + sorted(set(stages) - set(STAGE_ORDER)):
        c = stages[name]
        table.add_row(name, str(c.get("ran", 0)), str(c.get("cached", 0)), str(c.get("refused", 0)),
                      str(c.get("error", 0)))
    return Group(head, table)


def summary_table(summary: dict, out: Path) -> Group:
    head = Text.assemble((f"{summary['songs']} songs", "bold"), f" ({summary['hours_music']} h) in {out}   "
                         f"splits {summary['splits']}   {summary['rejects']} rejected   {summary['wall_s']} s")
    table = Table()
    table.add_column("reject reason")
    table.add_column("items", justify="right")
    table.add_column("example", overflow="fold")
    for reason, n in summary["reject_reasons"].items():
        table.add_row(reason, str(n), summary["reject_examples"].get(reason, "")[:100])
    return Group(head, table)


def summary_lines(summary: dict, out: Path) -> list[str]:
    """The closing summary as plain lines (a pipe or a file: nothing to wrap at 80 columns)."""
    order = sorted(summary["splits"], key=lambda s: (("train", "val", "test").index(s) if s in ("train", "val", "test")
                                                     else 3, s))
    splits = ", ".join(f"{s} {summary['splits'][s]}" for s in order) or "none"
    lines = [f"{summary['songs']} songs ({summary['hours_music']} h) in {out}: splits {splits}; "
             f"{summary['rejects']} rejected; {summary['wall_s']} s"]
    for reason, n in summary["reject_reasons"].items():
        lines.append(f"  rejected {reason}: {n}, e.g. {summary['reject_examples'].get(reason, '')[:160]}")
    return lines


def run_with_progress(build, config, show: bool) -> dict:
    """Run `build(config)` with the live display on a terminal, or plain timestamped lines with ETA on a pipe
    (both on stderr; `show` False: neither)."""
    console = Console(stderr=True)
    P.CURRENT = P.BuildProgress()
    if not show:
        try:
            return build(config)
        finally:
            P.CURRENT = None
    stop = threading.Event()
    display = _live(console, stop) if console.is_terminal else _plain_lines(sys.stderr, stop)
    ticker = threading.Thread(target=display, daemon=True)
    ticker.start()
    try:
        return build(config)
    finally:
        P.CURRENT.phase = "done"
        stop.set()
        ticker.join()
        P.CURRENT = None


def _live(console: Console, stop: threading.Event):
    def draw() -> None:
        with Live(progress_view(P.CURRENT.snapshot()), console=console, refresh_per_second=4) as live:
            while not stop.wait(0.5):
                live.update(progress_view(P.CURRENT.snapshot()))
            live.update(progress_view(P.CURRENT.snapshot()))
    return draw


def _plain_lines(stream, stop: threading.Event):
    def write() -> None:
        last_phase, last_done, last_at = None, -1, float("-inf")
        while True:
            stopped = stop.wait(0.5)
            snap = P.CURRENT.snapshot()
            now = time.monotonic()
            moved = snap["done"] != last_done and (last_done <= 0 or now - last_at >= PLAIN_INTERVAL_S)
            if snap["phase"] != last_phase or moved or stopped:
                print(f"{P.timestamp()} {P.snapshot_line(snap)}", file=stream, flush=True)
                last_phase, last_done, last_at = snap["phase"], snap["done"], now
            if stopped:
                return
    return write


def print_summary(summary: dict, out: Path, log_file: Path) -> None:
    """A table at the terminal's real width; plain lines into a pipe or a file."""
    files = f"report {out / 'build_report.json'}   card {summary.get('card', '')}   log {log_file}"
    if sys.stdout.isatty():
        console = Console(file=sys.stdout)
        console.print(summary_table(summary, out))
        console.print(Text(files))
    else:
        print("\n".join([*summary_lines(summary, out), files]), flush=True)
    if not summary["songs"]:  # a build of nothing succeeds (exit 0) but must not look like one that worked
        print(f"symmv build: warning: no cover was accepted ({summary['rejects']} rejected): {out} holds an empty "
              "dataset; the reject reasons above say why (--min-accept-fraction makes this an error)", file=sys.stderr)
