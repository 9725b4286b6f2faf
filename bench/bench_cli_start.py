"""How long `symmv` takes to answer before any work: `--help`, `build --help` and a one-line error.

Each command runs `runs` times in a fresh interpreter (the way a user's shell starts it); the JSON holds every
wall time and the median. `--label before|after` names the entry, so one file keeps both sides of a change.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS, machine

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "help": ["--help"],
    "build_help": ["build", "--help"],
    "build_out_is_a_file": ["build", "--out", "/etc/passwd"],
    "version": ["--version"],
}


def wall_s(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "symmv.cli", *args], cwd=REPO, capture_output=True)
    return time.perf_counter() - started, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", default="after", help="name of this measurement in the JSON (default: after)")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default: 5)")
    args = parser.parse_args()
    entry = {}
    for name, cli in COMMANDS.items():
        times, codes = zip(*(wall_s(cli) for _ in range(args.runs)))
        entry[name] = {"argv": ["symmv", *cli], "wall_s": [round(t, 3) for t in times],
                       "median_s": round(statistics.median(times), 3), "exit_codes": sorted(set(codes))}
        print(f"{args.label:7s} {' '.join(cli):32s} median {entry[name]['median_s']:.3f} s  rc {sorted(set(codes))}")
    path = RESULTS / "cli_start.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    result[args.label] = {"machine": machine(), "runs": args.runs, "commands": entry}
    path.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
